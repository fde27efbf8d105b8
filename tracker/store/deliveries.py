"""The e-mail's bookkeeping: recipients, the outbox and the delivery ledger (tracker/outputs/mail/delivery.py: the design).

Each write is its own short transaction, because the order of commits is what makes delivery exactly-once:
the outbox row commits before SMTP sees the message, and the ledger rows commit together with the row's
`sent` mark right after the server accepts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import exists, func, select, update
from sqlmodel import col

from tracker.store.database import Store
from tracker.store.models import Delivery, EventDelivery, OutboxMessage, Recipient, TopicPaper


def recipient_dates(store: Store, address: str) -> tuple[datetime, datetime] | None:
    """(since, created_at) of a recipient: where their papers start and when they were first mailed (None for a reader
    who has never been mailed)."""
    with store.session() as session:
        row = session.execute(select(col(Recipient.since), col(Recipient.created_at))
                              .where(col(Recipient.address) == address)).first()
    return (row[0], row[1]) if row is not None else None


def ensure_recipient(store: Store, address: str, *, since: datetime, now: datetime) -> tuple[datetime, datetime]:
    """Record the recipient with `since` unless already known; returns their stored (since, created_at)."""
    with store.session() as session:
        store.upsert(session, Recipient.__table__, [{"address": address, "since": since, "created_at": now}],
                     ["address"], update=False)
        session.commit()
    found = recipient_dates(store, address)
    assert found is not None  # just written, and recipients are never deleted
    return found


def last_sent_at(store: Store, address: str) -> datetime | None:
    """When the server last accepted a message to `address` (None: never)."""
    with store.session() as session:
        return session.execute(select(func.max(col(OutboxMessage.sent_at))).where(
            col(OutboxMessage.recipient) == address, col(OutboxMessage.status) == "sent")).scalar_one_or_none()


def undelivered_papers(store: Store, address: str, topics: Sequence[str], *, since: datetime,
                       until: datetime) -> list[tuple[str, int]]:
    """(topic, pmid) for papers of `topics` first seen in [since, until) that `address` has not been sent.

    A paper in several topics is listed once per topic; ordered by topic, then first seen, then PMID.
    """
    if not topics:
        return []
    delivered = exists().where(col(Delivery.recipient) == address, col(Delivery.pmid) == col(TopicPaper.pmid))
    statement = (
        select(col(TopicPaper.topic), col(TopicPaper.pmid))
        .where(col(TopicPaper.topic).in_(list(topics)), col(TopicPaper.first_seen_at) >= since,
               col(TopicPaper.first_seen_at) < until, ~delivered)
        .order_by(col(TopicPaper.topic), col(TopicPaper.first_seen_at), col(TopicPaper.pmid))
    )
    with store.session() as session:
        return [(topic, pmid) for topic, pmid in session.execute(statement)]


def delivered_pmids(store: Store, address: str) -> set[int]:
    with store.session() as session:
        return set(session.execute(select(col(Delivery.pmid)).where(col(Delivery.recipient) == address)).scalars())


def save_pending(store: Store, *, message_id: str, recipient: str, subject: str, pmids: Sequence[int],
                 now: datetime) -> None:
    """The outbox row for a message about to be handed to SMTP, committed before the handing."""
    with store.session() as session:
        session.add(OutboxMessage(message_id=message_id, recipient=recipient, subject=subject, pmids=list(pmids),
                                  status="pending", created_at=now))
        session.commit()


def mark_sent(store: Store, message_id: str, *, recipient: str, topic_of: dict[int, str], now: datetime,
              event_ids: Sequence[int] = ()) -> None:
    """In one transaction: the outbox row becomes `sent`, and every paper and status event it carried enters
    its ledger."""
    rows = [{"recipient": recipient, "pmid": pmid, "topic": topic, "message_id": message_id, "delivered_at": now}
            for pmid, topic in topic_of.items()]
    told = [{"recipient": recipient, "event_id": event_id, "message_id": message_id, "delivered_at": now}
            for event_id in dict.fromkeys(event_ids)]
    with store.session() as session:
        session.execute(update(OutboxMessage).where(col(OutboxMessage.message_id) == message_id)
                        .values(status="sent", sent_at=now, error=None))
        # A paper already in the ledger (an overlapping run) is kept as it was: this write must not fail
        # after the server has accepted the message.
        store.upsert(session, Delivery.__table__, rows, ["recipient", "pmid"], update=False)
        store.upsert(session, EventDelivery.__table__, told, ["recipient", "event_id"], update=False)
        session.commit()


def mark_failed(store: Store, message_id: str, error: str) -> None:
    with store.session() as session:
        session.execute(update(OutboxMessage).where(col(OutboxMessage.message_id) == message_id)
                        .values(status="failed", error=error))
        session.commit()


def pending_messages(store: Store, *, recipients: Sequence[str] | None = None,
                     before: datetime | None = None) -> list[OutboxMessage]:
    """Outbox rows still `pending` (a run stopped between SMTP and the ledger), oldest first."""
    statement = select(OutboxMessage).where(col(OutboxMessage.status) == "pending")
    if recipients is not None:
        statement = statement.where(col(OutboxMessage.recipient).in_(list(recipients)))
    if before is not None:
        statement = statement.where(col(OutboxMessage.created_at) < before)
    with store.session() as session:
        return list(session.execute(statement.order_by(col(OutboxMessage.created_at), col(OutboxMessage.message_id))).scalars())


def outbox_messages(store: Store, recipient: str | None = None) -> list[OutboxMessage]:
    statement = select(OutboxMessage).order_by(col(OutboxMessage.created_at), col(OutboxMessage.message_id))
    if recipient is not None:
        statement = statement.where(col(OutboxMessage.recipient) == recipient)
    with store.session() as session:
        return list(session.execute(statement).scalars())


__all__ = [
    "recipient_dates", "ensure_recipient", "last_sent_at", "undelivered_papers", "delivered_pmids", "save_pending", "mark_sent",
    "mark_failed", "pending_messages", "outbox_messages",
]
