"""A topic as an Atom feed, for Zotero, Outlook, Thunderbird, Feedly and any other feed reader.

What it carries
    The topic's `FEED_ENTRIES` newest papers (what its runs found after the baseline), newest first, and its baseline's
    strongest few (as many as the topic's `max_per_digest`, else 25) dated when the baseline stored them, so a new
    topic's feed is not empty. A paper the topic has excluded in screening is left out, as the digests leave it out.
    Each entry is built from the same `DigestEntry` the digests use (tracker/outputs/digest.py) and its content is the
    HTML digest's own card of the paper (templates/_paper.html.j2): the title, authors, journal, links, the abstract's
    conclusion and marks, with the evidence tier as the entry's category and first line. Whatever a digest entry
    gains, the feed gains with it.

Never twice
    An entry's id is the paper's PubMed address and its date the moment the topic first saw it: both stay the same on
    every run, so a feed reader shows each paper once, in whichever of the user's feeds it appears. The feed's own id
    is derived from the topic's slug; its `updated` is its newest entry's date, so a run that found nothing writes the
    same bytes.

Where
    `reports/<slug>/feed.xml`, written beside each digest (`tracker run`, `tracker digest`, the scheduler's jobs), and
    `/topics/<slug>/feed.xml` in the web app behind a feed token (tracker/web/security.py). Built with feedgen, a
    maintained Atom writer over lxml that escapes every text and validates every date.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from tracker import files
from tracker._version import __version__
from tracker.ncbi.evidence import tier_label
from tracker.outputs.digest import BASELINE_SHOWN, DigestEntry, build_topic_digest, entry_order
from tracker.outputs.render import plain, render
from tracker.store import Store
from tracker.store.digests import latest_news, strongest_baseline
from tracker.text import as_utc, utcnow
from tracker.topics import Topic

FEED_ENTRIES = 100  # the newest papers a feed carries; a reader polling weekly or more often misses none
FEED_FILE = "feed.xml"
FEED_AUTHORS = 100  # authors listed per entry (a consortium paper can list a thousand)
MEDIA_TYPE = "application/atom+xml; charset=utf-8"
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def feed_entries(store: Store, topic: Topic, *, until: datetime | None = None) -> list[DigestEntry]:
    """The entries of `topic`'s feed, newest first (see the module docstring)."""
    until = as_utc(until) if until is not None else utcnow()
    news = latest_news(store, topic.slug, FEED_ENTRIES)
    shown = topic.max_per_digest or BASELINE_SHOWN
    pmids = [pmid for pmid, _ in news] + strongest_baseline(store, topic.slug, shown)
    if not pmids:
        return []
    digest = build_topic_digest(store, topic, pmids=pmids, until=until, max_items=max(shown, len(news)),
                                baseline=True)
    entries = list(digest.entries) + list(digest.baseline.entries if digest.baseline else ())
    # Newest first; papers seen at the same moment (a run's batch) strongest first, as in the digests.
    return sorted(sorted(entries, key=entry_order), key=lambda entry: entry.first_seen_at, reverse=True)


def feed_url(base: str, slug: str) -> str:
    """The feed's address under the web app's `base` (with its trailing slash), without any token."""
    return f"{base}topics/{quote(slug)}/{FEED_FILE}"


def render_feed(store: Store, topic: Topic, *, base_url: str | None = None, until: datetime | None = None) -> bytes:
    """`topic`'s Atom feed. With `base_url` (the web app's address, `[web] public_url`) the feed links to itself and
    to the topic's page there; otherwise its alternate link is the query on PubMed."""
    from feedgen.feed import FeedGenerator  # lxml underneath: imported only when a feed is written

    entries = feed_entries(store, topic, until=until)
    feed = FeedGenerator()
    feed.id(f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'tracker:topics/{topic.slug}/{FEED_FILE}')}")
    feed.title(xml_text(topic.title))
    feed.subtitle(xml_text(f"New PubMed papers of the query: {topic.query}"))
    feed.updated(entries[0].first_seen_at if entries else _EPOCH)
    feed.generator("tracker", version=__version__)
    if base_url:
        feed.link(href=feed_url(base_url, topic.slug), rel="self", type="application/atom+xml")
        feed.link(href=f"{base_url}topics/{quote(topic.slug)}", rel="alternate", type="text/html")
    else:
        feed.link(href=f"https://pubmed.ncbi.nlm.nih.gov/?term={quote(topic.query)}", rel="alternate",
                  type="text/html")
    for entry in entries:
        add_entry(feed, entry)
    return feed.atom_str(pretty=True)


def add_entry(feed, entry: DigestEntry) -> None:
    paper, tier = entry.paper, tier_label(entry.tier)
    item = feed.add_entry(order="append")
    item.id(entry.url)
    mark = f"[{entry.status_mark}] " if entry.status_mark else ""
    item.title(xml_text(mark + (paper.title or "(no title)")))
    # One link only: feedgen 1.0 writes an entry link's href without its rel, and a second link would then be a second
    # "alternate" (the DOI is in the content).
    item.link(href=entry.url, rel="alternate")
    item.updated(entry.first_seen_at)
    item.published(entry.first_seen_at)
    names = [xml_text(author.display) for author in paper.authors[:FEED_AUTHORS] if plain(author.display)]
    if names:
        item.author([{"name": name} for name in names])
    item.category(term=entry.tier, label=xml_text(tier))
    item.summary(xml_text(" · ".join(part for part in (tier, entry.authors_short, paper.journal or "",
                                                       paper.pub_date_text or "") if part)))
    item.content(xml_text(render("feed_entry.html.j2", entry=entry, tier=tier)), type="html")


def xml_text(text) -> str:
    """`text` as XML 1.0 can hold it: control characters gone (`plain`), and the code points XML forbids."""
    return _NOT_XML.sub("", plain(text))


def write_topic_feed(store: Store, topic: Topic, reports_dir: Path, *, base_url: str | None = None,
                     until: datetime | None = None) -> Path:
    """Write reports/<slug>/feed.xml (replaced only once complete)."""
    path = Path(reports_dir) / topic.slug / FEED_FILE
    files.write_output(path, render_feed(store, topic, base_url=base_url, until=until),
                       advice=files.home_advice(Path(reports_dir)), make_parents=True)
    return path


def write_topic_feeds(store: Store, topics: Sequence[Topic], reports_dir: Path, *,
                      base_url: str | None = None) -> list[Path]:
    return [write_topic_feed(store, topic, reports_dir, base_url=base_url) for topic in topics]


__all__ = ["FEED_ENTRIES", "FEED_FILE", "MEDIA_TYPE", "feed_entries", "feed_url", "render_feed", "write_topic_feed",
           "write_topic_feeds", "xml_text"]
