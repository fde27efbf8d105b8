"""One paper as the web app shows it: its record, links, trial registrations, status changes, its study facts (the
line digests show, and the words of the title and abstract each fact came from, marked), and its screening in each
of its topics as the reader may see it (blind rules: tracker/review/states.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tracker.facts import StudyFacts, design_label, dose_text, facts_text, population_label, summary_line
from tracker.ncbi.pubmed import Paper
from tracker.ncbi.registries import TrialId
from tracker.review.screening import PaperScreening
from tracker.settings import Settings
from tracker.store import Store
from tracker.store.changes import EventView
from tracker.store.database import reads_on_one_connection
from tracker.store.decisions import ReviewerDecision
from tracker.store.studyfacts import StoredFacts
from tracker.text import doi_url, pmc_url, pubmed_url
from tracker.topics import TopicScan, scan_topics


@dataclass(frozen=True)
class PaperTopic:
    """One topic a paper belongs to, with its screening there as the reader may see it."""

    slug: str
    title: str
    first_seen_at: datetime
    screening: PaperScreening | None  # None: the topic's file does not load
    history: tuple[ReviewerDecision, ...]  # the decisions on the paper in this topic the reader may see, oldest first
    full_text: PaperScreening | None = None  # its screening at full text, once included by title and abstract


class PaperLinks:
    """The links a page shows beside a paper (the digest's, tracker/outputs/digest.py)."""

    paper: Paper | None

    @property
    def pubmed_url(self) -> str | None:
        return pubmed_url(self.paper.pmid) if self.paper else None

    @property
    def doi_url(self) -> str | None:
        return doi_url(self.paper.doi) if self.paper else None

    @property
    def pmc_url(self) -> str | None:
        return pmc_url(self.paper.pmcid) if self.paper else None


# -- study facts, marked in the text ----------------------------------------------------------------

@dataclass(frozen=True)
class Piece:
    """A run of a title's or an abstract section's text: plain (`kind` None), or the words a fact came from."""

    text: str
    kind: str | None = None  # design, size, population, comparator, dose, result
    note: str = ""  # what the fact is: "dose: norepinephrine 2.5 µg/min infusion prophylactic"


@dataclass(frozen=True)
class MarkedSection:
    label: str | None
    pieces: tuple[Piece, ...]


@dataclass(frozen=True)
class FactsView:
    """A paper's study facts as its pages show them: the digest's line, its tier on arrival, and its title and
    abstract sections cut into pieces, the words each fact came from marked."""

    facts: StudyFacts
    line: str
    tier: str
    tier_from_abstract: bool
    title: tuple[Piece, ...]
    sections: tuple[MarkedSection, ...]

    @property
    def kinds(self) -> list[str]:
        """The kinds of fact marked somewhere in the text, in the legend's order."""
        found = {piece.kind for piece in self.title} | {piece.kind for section in self.sections for piece in section.pieces}
        return [kind for kind in MARK_ORDER if kind in found]

    @property
    def design(self) -> str:
        return design_label(self.facts.design)

    @property
    def populations(self) -> list[str]:
        return [population_label(value) for value in self.facts.population_values]

    @property
    def doses(self) -> list[str]:
        return [dose_text(dose) for dose in self.facts.doses]

    @property
    def results(self) -> list[str]:
        return [f"{result.kind} of {result.drug}: {result.value:g} {result.unit}" for result in self.facts.results]


# Where marks overlap, the more specific fact keeps the words.
MARK_ORDER = ("dose", "result", "size", "comparator", "population", "design")
MARK_NAMES = {"dose": "dose", "result": "dose-finding result", "size": "sample size", "comparator": "comparator",
              "population": "population", "design": "design"}


def facts_view(paper: Paper, stored: StoredFacts | None) -> FactsView | None:
    """The paper's stored facts as its pages show them; None when the store holds none for it."""
    if stored is None:
        return None
    facts = stored.facts
    marks = _marks(facts, facts_text(paper.title, paper.abstract))
    title_end = len(paper.title)
    sections: list[MarkedSection] = []
    start = title_end + 1
    for section in paper.abstract_sections:
        prefix = len(f"{section.label}: ") if section.label else 0
        text_start = start + prefix
        sections.append(MarkedSection(section.label, _pieces(section.text, text_start, marks)))
        start = text_start + len(section.text) + 1  # the newline between sections
    return FactsView(facts=facts, line=summary_line(facts), tier=stored.tier, tier_from_abstract=stored.tier_from_abstract,
                     title=_pieces(paper.title, 0, marks), sections=tuple(sections))


def _marks(facts: StudyFacts, text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, kind, note) of every fact's words, without overlaps (MARK_ORDER decides), in text order. Spans that
    do not fit the text (facts of another text) are left out."""
    found: list[tuple[int, int, str, str]] = []
    for dose in facts.doses:
        if text[dose.span.start:dose.span.end] == dose.text:
            found.append((dose.span.start, dose.span.end, "dose", f"dose: {dose_text(dose)}"))
    for result in facts.results:
        if text[result.span.start:result.span.end] == result.text:
            found.append((result.span.start, result.span.end, "result",
                          f"{result.kind} of {result.drug}: {result.value:g} {result.unit}"))
    if facts.sample_size_span is not None:
        found.append((facts.sample_size_span.start, facts.sample_size_span.end, "size", f"sample size: {facts.sample_size}"))
    found += [(span.start, span.end, "comparator", f"comparator: {item.value}")
              for item in facts.comparators for span in item.spans]
    found += [(span.start, span.end, "population", f"population: {population_label(item.value)}")
              for item in facts.population for span in item.spans]
    if facts.design_span is not None:
        found.append((facts.design_span.start, facts.design_span.end, "design", f"design: {design_label(facts.design)}"))
    kept: list[tuple[int, int, str, str]] = []
    for mark in sorted(found, key=lambda mark: MARK_ORDER.index(mark[2])):
        start, end = mark[0], mark[1]
        if 0 <= start < end <= len(text) and all(end <= other[0] or start >= other[1] for other in kept):
            kept.append(mark)
    return sorted(kept)


def _pieces(text: str, offset: int, marks: Sequence[tuple[int, int, str, str]]) -> tuple[Piece, ...]:
    """`text`, which starts at `offset` of the facts' text, cut at the marks that fall in it."""
    pieces: list[Piece] = []
    at = 0
    for start, end, kind, note in marks:
        start, end = max(start - offset, 0), min(end - offset, len(text))
        if start >= end or start < at:
            continue
        if start > at:
            pieces.append(Piece(text[at:start]))
        pieces.append(Piece(text[start:end], kind, note))
        at = end
    if at < len(text):
        pieces.append(Piece(text[at:]))
    return tuple(pieces)


@dataclass(frozen=True)
class PaperView(PaperLinks):
    paper: Paper
    tier: str
    events: tuple[EventView, ...]
    topics: tuple[PaperTopic, ...]
    trials: tuple[TrialId, ...]
    facts: FactsView | None = None



@reads_on_one_connection
def paper_view(store: Store, settings: Settings, pmid: int, *, reviewer: str | None,
               scan: TopicScan | None = None) -> PaperView | None:
    """Everything the store knows of a paper, its screening in each topic as `reviewer` may see it (blind rules:
    tracker.review.screening.view_of); None when the store lacks it."""
    from tracker.ncbi.evidence import classify
    from tracker.review.screening import paper_stages
    from tracker.store.changes import list_events
    from tracker.store.membership import memberships
    from tracker.store.papers import load_papers
    from tracker.store.studyfacts import stored_facts

    found = load_papers(store, [pmid])
    if not found:
        return None
    paper = found[0]
    scan = scan or scan_topics(settings.queries_dir)
    topics = []
    for slug, seen in memberships(store, [pmid]).get(pmid, {}).items():
        topic = scan.topics.get(slug)
        if topic is None:
            topics.append(PaperTopic(slug, slug, seen, None, ()))
            continue
        first, later, shown = paper_stages(store, topic, pmid, reviewer=reviewer)
        topics.append(PaperTopic(slug, topic.title, seen, first, shown, later))
    events = tuple(list_events(store, pmids=[pmid]))
    facts = facts_view(paper, stored_facts(store, [pmid]).get(pmid))
    return PaperView(paper=paper, tier=facts.tier if facts else classify(paper.publication_types), events=events,
                     topics=tuple(topics), trials=paper_trials(paper), facts=facts)


def paper_trials(paper: Paper) -> tuple[TrialId, ...]:
    """The paper's trial registrations; a stored paper's DataBank accessions are read from its stored record."""
    from dataclasses import replace

    from tracker.ncbi.pubmed import iter_papers
    from tracker.ncbi.registries import trial_ids

    if not paper.databanks and paper.xml and b"<DataBankList" in paper.xml:
        parsed = next(iter_papers(b"<PubmedArticleSet>" + paper.xml + b"</PubmedArticleSet>"), None)
        if parsed is not None:
            paper = replace(paper, databanks=parsed.databanks)
    return trial_ids(paper)


__all__ = ["PaperTopic", "PaperLinks", "PaperView", "paper_view", "paper_trials", "FactsView", "Piece", "MarkedSection",
           "facts_view", "MARK_ORDER", "MARK_NAMES"]
