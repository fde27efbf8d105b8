"""Settings: tracker.toml in the home, the environment over it, secrets only from the environment or owner-only files."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_tracker, write_topic
from tracker.errors import ConfigError
from tracker.settings import OPTIONS, Settings, render_settings_file

SECRET = "pw-S3cret-9"


def write_settings(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "tracker.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_file_is_read_and_the_environment_overrides_it(tmp_path):
    write_settings(tmp_path, '[ncbi]\nemail = "library@hospital.org"\nrate_limit = 2\n'
                             '[mail]\nsmtp_host = "smtp.hospital.org"\nsmtp_port = 2525\n'
                             'to = ["a@hospital.org", "b@hospital.org"]\n'
                             '[schedule]\ntimezone = "Europe/Berlin"\n[screening]\nreviewer = "ana"\n')
    settings = Settings.from_env(tmp_path, env={})
    assert (settings.email, settings.requests_per_second, settings.smtp_host, settings.smtp_port, settings.mail_to,
            settings.timezone, settings.reviewer, settings.settings_file) == (
        "library@hospital.org", 2.0, "smtp.hospital.org", 2525, ("a@hospital.org", "b@hospital.org"), "Europe/Berlin",
        "ana", tmp_path / "tracker.toml")
    overridden = Settings.from_env(tmp_path, env={"NCBI_EMAIL": "me@hospital.org", "TRACKER_SMTP_PORT": "587",
                                                  "TRACKER_MAIL_TO": "c@hospital.org"})
    assert (overridden.email, overridden.smtp_port, overridden.mail_to, overridden.smtp_host) == (
        "me@hospital.org", 587, ("c@hospital.org",), "smtp.hospital.org")


def test_tracker_config_names_another_file(tmp_path):
    path = write_settings(tmp_path / "etc", '[ncbi]\ntool = "hospital-library"\n')
    assert Settings.from_env(tmp_path, env={"TRACKER_CONFIG": str(path)}).tool == "hospital-library"
    with pytest.raises(ConfigError, match=r"TRACKER_CONFIG='/nowhere.toml' names no file"):
        Settings.from_env(tmp_path, env={"TRACKER_CONFIG": "/nowhere.toml"})


@pytest.mark.parametrize("text, message", [
    ('[ncbi]\nemial = "x@y.org"\n',
     "tracker.toml: unknown key 'emial' in [ncbi]; its keys are email, tool, api_key_file, rate_limit, eutils_url, "
     "max_attempts, timeout, backoff, backoff_max, efetch_batch, efetch_in_flight, "
     "efetch_in_flight_mb, esearch_page"),
    ('[smtp]\nhost = "x"\n', "tracker.toml: unknown section [smtp]; the sections are [database], [mail], [ncbi], "
                             "[runs], [schedule], [screening]"),
    ('email = "x@y.org"\n', "tracker.toml: 'email' is not a section; settings go in the sections"),
    ('[mail]\nsmtp_port = "abc"\n', "tracker.toml: [mail] smtp_port = 'abc' is not a number: write a number without quotes"),
    ('[mail]\nsmtp_port = 0\n', "tracker.toml: [mail] smtp_port = 0 must be greater than zero"),
    ('[mail]\nsmtp_security = "tls"\n', "tracker.toml: [mail] smtp_security = 'tls' is not one of starttls, ssl, none"),
    ('[mail]\nto = "a@b.org"\n', None),  # a single string is a list of one
    ('[ncbi]\neutils_url = "ftp://x"\n', "tracker.toml: [ncbi] eutils_url = 'ftp://x' is not an http(s) URL"),
    ('[ncbi]\nemail = "not-an-email"\n', "NCBI_EMAIL='not-an-email' is not an e-mail address: set it to yours"),
    ('[ncbi\n', "tracker.toml: not valid TOML"),
])
def test_a_bad_file_is_one_line_naming_the_file_and_key(tmp_path, text, message):
    write_settings(tmp_path, text)
    if message is None:
        assert Settings.from_env(tmp_path, env={}).mail_to == ("a@b.org",)
        return
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(tmp_path, env={})
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize("text", [f'[mail]\nsmtp_password = "{SECRET}"\n', f'[ncbi]\napi_key = "{SECRET}"\n',
                                  f'[mail]\npassword = "{SECRET}"\n'])
def test_a_secret_in_the_file_is_refused_without_repeating_it(tmp_path, text):
    write_settings(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(tmp_path, env={})
    message = str(caught.value)
    assert "is a secret, and tracker never reads secrets from tracker.toml" in message and SECRET not in message


def test_secrets_come_from_the_environment_or_an_owner_only_file(tmp_path):
    secret_file, key_file = tmp_path / "smtp-password", tmp_path / "ncbi-key"
    secret_file.write_text(f"{SECRET}\n")
    key_file.write_text("key-123\nignored second line\n")
    secret_file.chmod(0o600)
    key_file.chmod(0o400)
    write_settings(tmp_path, f'[mail]\nsmtp_user = "alerts"\nsmtp_password_file = "{secret_file}"\n'
                             f'[ncbi]\napi_key_file = "{key_file}"\n')
    settings = Settings.from_env(tmp_path, env={})
    assert (settings.smtp_password, settings.api_key, settings.rate_limit) == (SECRET, "key-123", 10.0)
    assert SECRET not in repr(settings)
    assert Settings.from_env(tmp_path, env={"TRACKER_SMTP_PASSWORD": "other"}).smtp_password == "other"
    secret_file.chmod(0o640)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(tmp_path, env={})
    assert str(caught.value) == (f"smtp_password_file: {secret_file} can be read by others (mode 0640): run 'chmod 600 "
                                 f"{secret_file}'; tracker reads secrets only from files their owner alone can read")
    secret_file.unlink()
    with pytest.raises(ConfigError, match=r"smtp_password_file: no file .*smtp-password: create it, or remove the setting"):
        Settings.from_env(tmp_path, env={})


def test_a_placeholder_address_is_a_warning_and_a_bad_one_an_error(tmp_path):
    assert Settings.from_env(tmp_path, env={"NCBI_EMAIL": "library@hospital.org"}).warnings == ()
    [warning] = Settings.from_env(tmp_path, env={"NCBI_EMAIL": "you@example.org"}).warnings
    assert warning.startswith("NCBI_EMAIL=you@example.org is a placeholder address that reaches nobody")
    with pytest.raises(ConfigError, match="NCBI_EMAIL='library' is not an e-mail address"):
        Settings.from_env(tmp_path, env={"NCBI_EMAIL": "library"})


def test_the_commented_file_names_every_setting_and_reads_as_no_setting(tmp_path):
    text = render_settings_file()
    assert tomllib.loads(text) == {option.section: {} for option in OPTIONS}
    for option in OPTIONS:
        assert f"# {option.key} = " in text and option.env in text
    write_settings(tmp_path, text)
    assert Settings.from_env(tmp_path, env={}) == Settings(home=tmp_path, settings_file=tmp_path / "tracker.toml")


def test_init_writes_the_settings_file_and_commands_read_it(tmp_path, fake_eutils):
    home = tmp_path / "home"
    home.mkdir()
    env = cli_env(home, None)
    env.pop("NCBI_EMAIL")
    done = run_tracker("init", str(home), env=env)
    assert done.code == 0 and f"created {home / 'tracker.toml'}" in done.out
    assert done.out.splitlines()[-1] == (
        f"tracker home ready at {home}: set your e-mail in {home / 'tracker.toml'} ([ncbi] email) or NCBI_EMAIL, "
        f"then run 'tracker --home {home} run' to fetch every topic and write its digest")
    for path in (home / "queries").iterdir():
        path.unlink()
    write_topic(home, "dosing", "norepinephrine dosing")
    settings = (home / "tracker.toml").read_text().replace('# email = "you@hospital.org"', 'email = "you@example.org"')
    (home / "tracker.toml").write_text(settings.replace('# eutils_url = "', f'eutils_url = "{fake_eutils.url}" # "'))
    fetched = run_tracker("fetch", env={key: value for key, value in env.items() if key != "TRACKER_EUTILS_URL"})
    assert fetched.code == 0, fetched.err
    assert fetched.err == ("warning: NCBI_EMAIL=you@example.org is a placeholder address that reaches nobody: set your "
                           "own, so that NCBI can reach you before blocking heavy use\n")
    assert all(request.params.get("email") == "you@example.org" for request in fake_eutils.requests)
    assert os.stat(home / "tracker.toml").st_size > 0
