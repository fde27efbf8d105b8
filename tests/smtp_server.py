"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives and refuses on request.

    with LoopbackSMTP() as server:                       # plain SMTP, no login
    with LoopbackSMTP(users={"u": "pw"}) as server:      # AUTH offered without TLS, required for MAIL
    with LoopbackSMTP(tls=cert_files) as server:         # STARTTLS offered (and required for AUTH)
    with LoopbackSMTP(implicit_tls=cert_files) as server:  # TLS from the first byte (port 465 style)

`server.reject["a@x.org"] = "550 mailbox unavailable"` refuses one recipient; `server.refuse_all = "421 ..."`
refuses every RCPT. `LoopbackSMTP(size_limit=N)` announces SIZE N and refuses larger messages (aiosmtpd's own
limit, 552); `server.refuse_larger_than = N` refuses them with 552 without announcing any limit, as some
relays do. `server.messages` holds each accepted message's envelope and bytes.
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str | None

    def parsed(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Verifies like the default context, trusting only this certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


def make_certificate(folder: Path, host: str = "127.0.0.1") -> CertFiles:
    """A self-signed certificate for `host` (an IP address), made with the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=tracker test",
         "-addext", f"subjectAltName=IP:{host}"],
        check=True, capture_output=True, timeout=30,
    )
    return CertFiles(cert, key)


class RecordingHandler:
    def __init__(self):
        self.messages: list[Received] = []
        self.reject: dict[str, str] = {}
        self.refuse_all: str | None = None
        self.refuse_larger_than: int | None = None
        self.refused_sizes: list[int] = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_all:
            return self.refuse_all
        refusal = self.reject.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        if self.refuse_larger_than is not None and len(data) > self.refuse_larger_than:
            self.refused_sizes.append(len(data))
            return "552 5.3.4 Message size exceeds fixed maximum message size"
        login = session.auth_data if session.authenticated else None
        with self.lock:
            self.messages.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos),
                                          envelope.original_content or envelope.content, login))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LoopbackSMTP:
    users: dict[str, str] | None = field(default=None, repr=False)
    tls: CertFiles | None = None
    implicit_tls: CertFiles | None = None
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    size_limit: int | None = None  # announced (ESMTP SIZE) and enforced by aiosmtpd; None: its default, 32 MiB

    def __post_init__(self):
        self.handler = RecordingHandler()
        options = {}
        if self.size_limit is not None:
            options["data_size_limit"] = self.size_limit
        if self.users is not None:
            options.update(authenticator=self._authenticate, auth_required=True,
                           auth_require_tls=self.tls is not None)
        if self.tls is not None:
            options["tls_context"] = self.tls.server_context()
        self.controller = Controller(
            self.handler, hostname=self.host, port=self.port, server_hostname="loopback.test",
            ssl_context=self.implicit_tls.server_context() if self.implicit_tls else None, **options,
        )

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        accepted = (isinstance(auth_data, LoginPassword)
                    and self.users.get(auth_data.login.decode()) == auth_data.password.decode())
        if not accepted:
            return AuthResult(success=False, handled=False)  # handled=False: the server answers 535
        return AuthResult(success=True, auth_data=auth_data.login.decode())

    @property
    def messages(self) -> list[Received]:
        return list(self.handler.messages)

    @property
    def reject(self) -> dict[str, str]:
        return self.handler.reject

    @property
    def refuse_larger_than(self) -> int | None:
        return self.handler.refuse_larger_than

    @refuse_larger_than.setter
    def refuse_larger_than(self, size: int | None) -> None:
        self.handler.refuse_larger_than = size

    @property
    def refused_sizes(self) -> list[int]:
        return list(self.handler.refused_sizes)

    @property
    def refuse_all(self) -> str | None:
        return self.handler.refuse_all

    @refuse_all.setter
    def refuse_all(self, reply: str | None) -> None:
        self.handler.refuse_all = reply

    def __enter__(self) -> LoopbackSMTP:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
