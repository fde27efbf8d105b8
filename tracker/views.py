"""Views shared by every face: the rows and records that the CLI, the scheduler's logs and
a coming web app show.

A view reads the store and the topic files and returns plain data (a `Listing`: headers, rows of
text, and the errors met on the way); it never prints. Each face formats it its own way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

RESULT_WORDS = {"succeeded": "ok", "failed": "failed", "running": "running"}


@dataclass(frozen=True)
class Listing:
    headers: list[str]
    rows: list[list[str]]
    errors: list[str]


def topic_overview(store, settings, *, topic: str | None = None, now: datetime | None = None) -> Listing:
    """Per topic: its schedule, last run (UTC, as `tracker status` shows runs) and next scheduled run."""
    from tracker.schedule import describe_schedule, format_time, next_fire_time, zone_name
    from tracker.store.runs import last_runs
    from tracker.topics import scan_topics

    scan = scan_topics(settings.queries_dir)
    runs = last_runs(store)
    now = now or datetime.now(settings.zone)
    rows = []
    for slug in sorted(set(scan.topics) | set(scan.errors)):
        if topic and slug != topic:
            continue
        found, run = scan.topics.get(slug), runs.get(slug)
        rows.append([
            slug,
            describe_schedule(found.schedule, settings) if found else "(bad file)",
            (run.finished_at or run.started_at).strftime("%Y-%m-%d %H:%M") if run else "never",
            RESULT_WORDS.get(run.status, run.status) if run else "-",
            format_time(next_fire_time(found.schedule, settings, now), settings.zone) if found else "-",
        ])
    errors = [error for slug, error in scan.errors.items() if not topic or slug == topic]
    return Listing(["topic", "schedule", "last run (UTC)", "result", f"next run ({zone_name(settings.zone)})"],
                   rows, errors)


__all__ = ["Listing", "RESULT_WORDS", "topic_overview"]
