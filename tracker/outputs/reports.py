"""What `reports/<slug>/` holds, whichever way the tracker runs (`tracker run`, `tracker digest`, the scheduler's jobs):
each topic's digest of the day (`<YYYY-MM-DD>.md` and `.html`, tracker/outputs/digest.py) and its Atom feed
(`feed.xml`, tracker/outputs/feeds.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from tracker.outputs.digest import write_topic_digests
from tracker.outputs.feeds import write_topic_feed
from tracker.runs.watch import DEFAULT_QUIET_WEEKS
from tracker.settings import Settings
from tracker.store import Store
from tracker.topics import Topic


def write_topic_reports(store: Store, topics: Sequence[Topic], reports_dir: Path, *, today: date | None = None,
                        since: datetime | date | None = None, quiet_weeks: int = DEFAULT_QUIET_WEEKS,
                        feed_base_url: str | None = None) -> list[Path]:
    """Each topic's digest (recorded, so the next one starts where it ends) and feed; the paths written, three a topic.

    `feed_base_url` is the web app's address (`[web] public_url`), which the feeds link themselves to.
    """
    written: list[Path] = []
    for topic in topics:
        written += write_topic_digests(store, [topic], reports_dir, today=today, since=since, quiet_weeks=quiet_weeks)
        written.append(write_topic_feed(store, topic, reports_dir, base_url=feed_base_url))
    return written


def write_reports(store: Store, topics: Sequence[Topic], settings: Settings, *,
                  since: datetime | date | None = None) -> list[Path]:
    """`write_topic_reports` into the home's reports/ with the settings' quiet weeks and public address."""
    return write_topic_reports(store, topics, settings.reports_dir, since=since, quiet_weeks=settings.quiet_weeks,
                               feed_base_url=settings.web_public_url)


__all__ = ["write_topic_reports", "write_reports"]
