"""Who gets what: the recipients, the topics each follows, and the papers and updates each has not been sent.

A recipient follows the topics whose file lists them in `recipients = [...]`; every address in
TRACKER_MAIL_TO (comma-separated) follows every topic. Addresses are compared in lower case. `only`
(`tracker email --to ADDR`) limits a run to one known recipient; when no recipient is configured
anywhere, ADDR is taken as following every topic, so a first test mail needs no set-up.

A recipient's mail covers every paper linked to one of their topics that the delivery ledger (table
`delivery`, keyed by recipient + PMID) does not hold for them, and that the topic first saw at or after
the recipient's `since`. A new reader's `since` is the beginning: their first message covers everything
their topics stored that they have not been sent, a reader added a month after a topic's baseline included
(the message sums the baseline up in one line, shows each topic's strongest new papers and attaches them
all: tracker/outputs/mail/message.py). Readers recorded by earlier versions keep the `since` they had. A
paper in two of their topics is shown under each but counted, attached and recorded once (under the first
topic).

The status events (tracker/runs/watch.py) on papers of the reader's topics that the event ledger (table
`event_delivery`, recipient + event) does not hold for them open the mail as "Updates to papers you already
received": those detected from a week before the reader's first message on (an update to a paper they were
never sent is no news to them).

Once a week (`already_told`): a reader with nothing new and no update is sent nothing when a message reached
them earlier the same week (Monday to Sunday, UTC): the week's one message says so, not every send.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone

from tracker.errors import ConfigError
from tracker.review.screening import rule_for
from tracker.review.states import State
from tracker.settings import EMAIL_PATTERN, Settings
from tracker.store import Store
from tracker.store.changes import untold_events
from tracker.store.decisions import summaries
from tracker.store.deliveries import ensure_recipient, last_sent_at, recipient_dates, undelivered_papers
from tracker.text import as_utc
from tracker.topics import Topic

NEW_READER_PERIOD = timedelta(days=7)  # the status events a new reader is told: those of the week before
BEGINNING = datetime(1970, 1, 1, tzinfo=timezone.utc)  # a new reader's papers start here: everything not yet sent


@dataclass(frozen=True)
class Mailing:
    """What one recipient's message covers."""

    recipient: str
    topics: tuple[Topic, ...]
    since: datetime
    until: datetime
    pmids_by_topic: dict[str, tuple[int, ...]] = field(default_factory=dict)
    topic_of: dict[int, str] = field(default_factory=dict)  # each paper once, under its first topic
    event_ids: tuple[int, ...] = ()  # status events not yet told to the recipient

    @property
    def pmids(self) -> tuple[int, ...]:
        return tuple(self.topic_of)


def followers(settings: Settings, topics: Sequence[Topic]) -> dict[str, tuple[Topic, ...]]:
    """Each configured recipient (lower case) and the topics they follow, in the order of `topics`."""
    for address in settings.mail_to:
        if not EMAIL_PATTERN.match(address):
            raise ConfigError(f"TRACKER_MAIL_TO: {address!r} is not an e-mail address; "
                              "give comma-separated addresses such as a@example.org,b@example.org")
    everyone = {address.lower() for address in settings.mail_to}
    following: dict[str, list[Topic]] = {address: [] for address in everyone}
    for topic in topics:
        for address in sorted(everyone | {r.lower() for r in topic.recipients}):
            following.setdefault(address, []).append(topic)
    return {address: tuple(following[address]) for address in sorted(following)}


def select_audience(settings: Settings, topics: Sequence[Topic], only: str | None = None) -> dict[str, tuple[Topic, ...]]:
    audience = followers(settings, topics)
    if only is not None:
        address = only.strip().lower()
        if address in audience:
            return {address: audience[address]}
        if audience:
            raise ConfigError(f"{only} is not a recipient of any topic; known recipients: {', '.join(audience)}")
        if not EMAIL_PATTERN.match(address):
            raise ConfigError(f"--to {only!r} is not an e-mail address")
        return {address: tuple(topics)}
    if not audience:
        raise ConfigError("no recipients: add recipients = [...] to a topic file or set TRACKER_MAIL_TO")
    return audience


def plan_mailing(store: Store, recipient: str, topics: Sequence[Topic], *, now: datetime,
                 record: bool) -> Mailing:
    """The papers and status events `recipient` has not been sent. `record` stores a first-time reader."""
    dates = recipient_dates(store, recipient)
    if dates is None:
        dates = (BEGINNING, now)
        if record:
            dates = ensure_recipient(store, recipient, since=BEGINNING, now=now)
    since, first_mailed = as_utc(dates[0]), as_utc(dates[1])
    found = undelivered_papers(store, recipient, [topic.slug for topic in topics], since=since, until=now)
    by_topic: dict[str, list[int]] = {topic.slug: [] for topic in topics}
    for slug, pmid in found:
        by_topic[slug].append(pmid)
    for topic in topics:  # a paper its topic has already excluded is not news to that topic's readers
        rows = summaries(store, topic.slug, by_topic[topic.slug])
        by_topic[topic.slug] = [pmid for pmid in by_topic[topic.slug]
                                if rule_for(store, topic).state(rows.get(pmid)) != State.EXCLUDED]
    topic_of: dict[int, str] = {}
    for topic in topics:
        for pmid in by_topic[topic.slug]:
            topic_of.setdefault(pmid, topic.slug)
    events = untold_events(store, recipient, [topic.slug for topic in topics],
                           since=max(since, first_mailed - NEW_READER_PERIOD))
    return Mailing(recipient=recipient, topics=tuple(topics), since=since, until=now,
                   pmids_by_topic={slug: tuple(pmids) for slug, pmids in by_topic.items()}, topic_of=topic_of,
                   event_ids=tuple(events))


def already_told(store: Store, mailing: Mailing, *, now: datetime) -> datetime | None:
    """When a message reached this reader earlier in `now`'s week, if the mailing has nothing new for them: then
    nothing is sent (see the module docstring). None: send."""
    if mailing.pmids or mailing.event_ids:
        return None
    sent = last_sent_at(store, mailing.recipient)
    if sent is None:
        return None
    day = as_utc(now).date()
    monday = datetime.combine(day - timedelta(days=day.weekday()), time.min, timezone.utc)
    return as_utc(sent) if as_utc(sent) >= monday else None


__all__ = ["Mailing", "NEW_READER_PERIOD", "BEGINNING", "followers", "select_audience", "plan_mailing", "already_told"]
