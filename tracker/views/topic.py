"""A topic's papers a page at a time, as the web app's topic page shows them: filtered, sorted, searched within,
with screening states as the reader may see them (tracker/store/listing.py reads them)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from tracker.errors import SearchSyntaxError, TimeLimitError, TopicFileError, UnknownTopicError
from tracker.review.screening import rule_for
from tracker.review.states import Stage
from tracker.settings import Settings
from tracker.store import Store
from tracker.store.database import reads_on_one_connection
from tracker.store.listing import Cursor, Page, PaperFilter
from tracker.topics import TopicScan
from tracker.views.status import TopicSummary, topic_summaries

TOPIC_PAGE_SIZE = 50
SEARCH_WITHIN = 500  # a search within a topic lists its best matches, at most this many, in the page's order


@dataclass(frozen=True)
class TopicPage:
    summary: TopicSummary
    page: Page
    sort: str
    filters: PaperFilter
    search: str
    matches: int | None  # with a search: how many of the topic's papers it found (at most SEARCH_WITHIN)
    # Filtered views cost a count over the topic; the page says "papers in this view" only when asked for.
    total: int
    ranking: str = ""  # "ordered by 48 earlier decisions in this topic" or "ranking starts after 2 more decisions"
    stage: Stage = Stage.TITLE_ABSTRACT  # the screening stage whose states the page shows
    search_error: str = ""  # the search could not be run: why, and what to change (no paper is listed)
    search_timed_out: bool = False  # ... because it took too long (rather than being malformed or too large)


def describe_search_failure(error: SearchSyntaxError | TimeLimitError) -> str:
    """What a page says about a search that was refused or stopped, with what to change."""
    if isinstance(error, TimeLimitError):
        return (f"This search took longer than {error.seconds:g} seconds and was stopped: use more specific words, "
                "fewer prefix* terms, or search within one topic.")
    text = str(error)
    return f"{text[0].upper()}{text[1:]}."


@reads_on_one_connection
def topic_page(store: Store, settings: Settings, slug: str, *, reviewer: str | None, filters: PaperFilter,
               sort: str = "newest", search: str = "", after: Cursor | None = None, before: Cursor | None = None,
               limit: int = TOPIC_PAGE_SIZE, scan: TopicScan | None = None,
               stage: Stage = Stage.TITLE_ABSTRACT) -> TopicPage:
    """One page of a topic's papers, filtered and sorted, with screening states at `stage` as `reviewer` may see them
    (at full text, the papers included by title and abstract)."""
    from tracker.store.listing import count_members, list_topic_page
    from tracker.store.search import search_pmids

    found: list[TopicSummary | None] = [*topic_summaries(store, settings, topic=slug, scan=scan)] or [None]
    [summary] = found
    if summary is not None and summary.file_error:
        raise TopicFileError(summary.file_error)  # the file's own line, not "no such topic"
    if summary is None or summary.topic is None:
        raise UnknownTopicError(f"no topic '{slug}': 'tracker topics' lists them", slug=slug)
    topic = summary.topic
    matches = None
    search_error, timed_out = "", False
    search = " ".join(search.split())
    if search:
        try:
            hits = search_pmids(store, search, topic=slug, limit=SEARCH_WITHIN)
        except (SearchSyntaxError, TimeLimitError) as error:
            hits, search_error, timed_out = [], describe_search_failure(error), isinstance(error, TimeLimitError)
        filters = replace(filters, pmids=tuple(hits))
        matches = None if search_error else len(hits)
    rule = rule_for(store, topic, stage)
    page = list_topic_page(store, slug, rule, filters=filters, sort=sort, blind_reviewer=reviewer if rule.blind else None,
                           after=after, before=before, limit=limit)
    ranking = ""
    if sort == "relevance":
        from tracker.review.relevance import ranking_status

        ranking = ranking_status(store, topic).sentence
    return TopicPage(summary=summary, page=page, sort=sort, filters=filters, search=search, matches=matches,
                     total=count_members(store, slug), ranking=ranking, stage=stage, search_error=search_error,
                     search_timed_out=timed_out)


__all__ = ["TOPIC_PAGE_SIZE", "SEARCH_WITHIN", "TopicPage", "topic_page", "describe_search_failure"]
