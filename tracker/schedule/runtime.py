"""What the jobs of one scheduler process run with, held by the process and never stored with the jobs.

The `Runtime` holds the store and settings, the one NCBI rate limiter of the process, the token
that names this scheduler in the lease table, the last good version of each topic, the stop flag
the running fetch checks between batches, and the abandoned runs queued here to be taken over.
The executor (tracker/schedule/apscheduler3.py) passes it to every job it runs; `--run-now` makes
its own.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime

from tracker.errors import TopicFileError
from tracker.topics import Topic, TopicScan, load_topic, scan_topics

log = logging.getLogger("tracker.schedule")


class Runtime:
    """What the jobs need, held by the process, never stored with the jobs."""

    def __init__(self, store, settings):
        from tracker.ncbi.eutils import RateLimiter

        self.store, self.settings = store, settings
        self.limiter = RateLimiter(settings.rate_limit)  # one NCBI budget for every job of the process
        self.token = uuid.uuid4().hex  # this scheduler's id in the lease table
        self.takeovers: set[tuple[str, datetime]] = set()  # abandoned runs queued here, not yet finished
        self.stopping = False
        self.scheduler = None  # the running scheduler (apscheduler3.TrackerScheduler); None under --run-now
        self.topics: dict[str, Topic] = {}  # the last good version of each topic
        self._lock = threading.Lock()

    def remember(self, scan: TopicScan) -> None:
        with self._lock:
            for slug in [s for s in self.topics if s not in scan.topics and s not in scan.errors]:
                del self.topics[slug]
            self.topics.update(scan.topics)

    def topic(self, slug: str) -> Topic | None:
        """The topic as its file says now; its last good version if the file became bad; None if removed."""
        path = self.settings.queries_dir / f"{slug}.toml"
        if not path.exists():
            with self._lock:
                self.topics.pop(slug, None)
            return None
        try:
            topic = load_topic(path)
        except TopicFileError as error:
            with self._lock:
                last_good = self.topics.get(slug)
            if last_good is None:
                raise
            log.error("%s; running the last good version of topic '%s' until the file is fixed", error, slug)
            return last_good
        with self._lock:
            self.topics[slug] = topic
        return topic

    def all_topics(self) -> list[Topic]:
        scan = scan_topics(self.settings.queries_dir)
        with self._lock:
            for stem, error in scan.errors.items():
                if stem in self.topics:
                    log.error("%s; the e-mail uses the last good version of topic '%s'", error, stem)
                    scan.topics[stem] = self.topics[stem]
                else:
                    log.error("%s; the e-mail leaves this topic out until the file is fixed", error)
        self.remember(scan)
        return [scan.topics[slug] for slug in sorted(scan.topics)]

    def next_run_time(self, job_id: str) -> datetime | None:
        """When the running scheduler runs `job_id` next; None outside one (`--run-now`)."""
        return self.scheduler.next_run_time_of(job_id) if self.scheduler is not None else None

    def drop_job(self, job_id: str) -> None:
        if self.scheduler is not None:
            self.scheduler.drop_job(job_id)


__all__ = ["Runtime"]
