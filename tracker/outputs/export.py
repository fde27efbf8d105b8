"""Exporting stored papers: CSV for spreadsheets and scripts, RIS for reference managers, JSON Lines for programs
(`jsonl_records`: the CSV's columns as typed values and each paper's study facts as the gold set's `labels`).

CSV columns, in this order (scripts depend on them; add new ones only at the end):

  pmid               PubMed ID
  title              article title, inline markup (<i>, <sup>) already dropped by the parser
  authors            every author in order: "Last Initials", collective names as written; "; "-separated
  journal            full journal title
  year               year of the issue's publication date; empty when PubMed gives none
  publication_date   the publication date as PubMed writes it ("2019 Jan 5", "2013 Jan-Mar", "2020 Winter")
  doi                DOI without a resolver prefix
  pmcid              PubMed Central ID ("PMC1234567")
  publication_types  "; "-separated ("Randomized Controlled Trial; Journal Article")
  mesh_terms         MeSH descriptors, "; "-separated; a trailing "*" marks a major topic ("Norepinephrine*")
  keywords           author keywords, "; "-separated
  topics             slugs of every topic the paper belongs to, sorted, "; "-separated
  first_seen         when the selected topics first saw the paper, ISO 8601 in UTC: "2024-03-01T06:00:00Z"
  late_arrival       "true" when PubMed created the record more than a day after its entry date, else "false"
  pubmed_url         https://pubmed.ncbi.nlm.nih.gov/<pmid>/
  status             what PubMed now says about the paper (tracker/runs/watch.py): "retracted", "expression of
                     concern", "deleted" (no longer in PubMed), or empty
  decision           the screening state in the exported topic (unscreened, awaiting, included, excluded, maybe,
                     conflict; tracker/review/screening.py); with several topics, "topic: state" for each of them
  reasons            the exclusion reasons behind an "excluded" state, "; "-separated ("topic: reason" with several)
  reviewers          each reviewer's current decision: "ana: include; ben: exclude (wrong population)" (with
                     several topics "topic/ana: include"); hidden in blind screening until both have decided
  notes              the reviewers' notes, "ana: check the dose"; hidden as `reviewers` is
  editors            a book's editors, as `authors` ("Last Initials", "; "-separated); empty for an article
  trial_ids          trial registration numbers, each once, "; "-separated ("NCT01234567; ISRCTN12345678"): the
                     record's DataBankList entries for trial registries, then numbers written in the title or
                     abstract (tracker/ncbi/registries.py)
  relevance          the paper's relevance in the exported topic (with several, the highest): a score in 0-1 learned
                     from the topic's own decisions (tracker/review/relevance.py), higher is more likely included; empty
                     before the topic has enough decisions to rank
  full_text          the full-text state of a paper included by title and abstract (unscreened, awaiting, included,
                     excluded, maybe, conflict, not-retrieved), as `decision` is given; empty for the others
  full_text_reasons  the full-text exclusion reasons behind an "excluded" full-text state, as `reasons` are given
  evidence           the evidence tier digests list it under (tracker/ncbi/evidence.py keys: guideline, meta-analysis,
                     rct, clinical, review, case-report, other): its publication types' tier, or, while they name
                     none, the tier of the design read from its abstract (evidence_source says which)
  design             the study design read from the title and abstract, or named by the publication types
                     (tracker/facts: rct, non-randomised trial, observational, case report, systematic review, review,
                     guideline, animal or laboratory, protocol, other)
  sample_size        the participants the study randomised or enrolled, as its abstract states them; empty when unstated
  population         "; "-separated: cesarean, elderly, sepsis, cardiac surgery, non-cardiac surgery, critical care,
                     pediatric, hepatorenal, other
  comparators        what the study compares norepinephrine with, generic names, "; "-separated ("phenylephrine; placebo")
  doses              every dose of a vasoactive drug the abstract states, "; "-separated: drug, amount and unit, then
                     bolus or infusion, prophylactic or rescue, and "received" for a dose reported rather than given
                     ("norepinephrine 2.5 µg/min infusion prophylactic; phenylephrine 50 µg/min infusion prophylactic")
  evidence_source    where `evidence` comes from: "publication types", "abstract", or empty for the tier "other"

The study facts are read by rules (tracker/facts, docs/facts.md), not by a person: check them against the paper.

The file is UTF-8 without a byte-order mark, rows end in CRLF (RFC 4180), and a cell holding a line
break, a comma or a double quote is quoted (doubled quotes inside). A text cell that begins with =, +,
-, @, a tab or a carriage return gets a leading "'" so a spreadsheet shows it instead of running it as
a formula (OWASP's CSV injection advice).

Rows stream from the database in chunks, reading only the columns they need (never the stored XML),
so exporting a hundred thousand papers takes seconds and little memory.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime
from itertools import islice
from typing import BinaryIO, cast

from tracker.errors import ConfigError
from tracker.facts import dose_text, export_cells
from tracker.ncbi.notices import describe_status
from tracker.ncbi.pubmed import Author, Paper
from tracker.ncbi.registries import TrialId, trial_ids
from tracker.review.states import Stage, check_state
from tracker.store.database import Store
from tracker.store.listing import NO_XML, ListedPaperRow, PaperFilter, Selection, count_selection, rows_of_pmids, select_batches
from tracker.store.models import PaperRow
from tracker.store.relevance import scores_of
from tracker.store.rows import row_to_paper, stored_trial_ids
from tracker.text import format_relevance, format_utc, pubmed_url
from tracker.topics import Topic

CSV_COLUMNS = (
    "pmid", "title", "authors", "journal", "year", "publication_date", "doi", "pmcid", "publication_types",
    "mesh_terms", "keywords", "topics", "first_seen", "late_arrival", "pubmed_url", "status",
    "decision", "reasons", "reviewers", "notes", "editors", "trial_ids", "relevance", "full_text", "full_text_reasons",
    "evidence", "design", "sample_size", "population", "comparators", "doses", "evidence_source",
)
FORMATS = ("csv", "ris", "xlsx", "jsonl")
# UTF-8's byte-order mark: Excel reads a CSV without it in the machine's legacy code page ("Sören" shows as
# "SÃ¶ren"). Files a person opens (-o FILE, the e-mail's attachment) begin with it; stdout does not.
UTF8_BOM = b"\xef\xbb\xbf"
CHUNK = 500
CSV_BATCH = 5000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Indexes in CSV_COLUMNS of the cells that hold record or reviewer text (a spreadsheet could run it as a formula).
_TEXT_CELLS = (1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 17, 18, 19, 20, 21, 24, 28, 29, 30)
SCREENING_COLUMNS = ("decision", "reasons", "reviewers", "notes", "full_text", "full_text_reasons")

# Plain text columns only: the JSON beside them would cost a decode per row (BENCHMARKS.md, export profile).
_CSV_FIELDS = ("pmid", "title", "author_names", "journal", "pub_year", "pub_date_text", "doi", "pmcid",
               "publication_types_text", "mesh_terms", "keywords_text", "late_arrival", "status", "editor_names",
               "trial_ids_text", "evidence_tier", "tier_from_abstract", "design", "sample_size", "facts")


# -- selecting -------------------------------------------------------------------------------

def selection_of(store: Store, topics: Sequence[Topic | str], *, since: date | None = None, state: str | None = None,
                 sort: str = "newest", filters: PaperFilter | None = None, reviewer: str | None = None,
                 stage: Stage = Stage.TITLE_ABSTRACT) -> Selection:
    """The papers of `topics` an export writes (tracker/store/listing.py): `filters` (the topic page's), with
    `since` and `state` (a state at `stage`) added when given; in blind screening the state is `reviewer`'s view."""
    from tracker.review.screening import rule_for

    chosen = as_topics(topics)
    filters = filters or PaperFilter()
    filters = replace(filters, since=since if since is not None else filters.since,
                      state=check_state(state, stage) if state is not None else filters.state)
    return Selection(topics=tuple(topic.slug for topic in chosen),
                     rules={topic.slug: rule_for(store, topic, stage) for topic in chosen}, filters=filters, sort=sort,
                     reviewer=reviewer if any(topic.screening.blind for topic in chosen) else None)


# -- CSV -------------------------------------------------------------------------------------

def export_rows(store: Store, topics: Sequence[Topic | str], since: date | None = None, *,
                state: str | None = None, sort: str = "newest", selection: Selection | None = None) -> Iterator[dict]:
    """One dict per paper linked to any of `topics` (first seen on or after `since`, in `state` in one of them; or
    the papers of `selection`), keyed by CSV_COLUMNS."""
    chosen = as_topics(topics)
    selection = selection or selection_of(store, chosen, since=since, state=state, sort=sort)
    for batch in select_batches(store, selection, _CSV_FIELDS):
        screening = screening_cells(store, chosen, [(row.pmid, _split(row.all_topics)) for row in batch],
                                    reviewer=selection.reviewer)
        for row in batch:
            yield _csv_row(row, row.first_seen, _split(row.all_topics), row.relevance) | screening[row.pmid]


def _export_cells(store: Store, topics: Sequence[Topic], selection: Selection) -> Iterator[list]:
    """`export_rows` as CSV_COLUMNS-ordered, neutralised cells, without a dict per row (BENCHMARKS.md)."""
    formula, text_cells = _FORMULA_START, _TEXT_CELLS
    for batch in select_batches(store, selection, _CSV_FIELDS):
        memberships = [(row[0], _split(row[-2])) for row in batch]
        screening = screening_cells(store, topics, memberships, reviewer=selection.reviewer)
        for (pmid, title, authors, journal, year, date_text, doi, pmcid, types, mesh, keywords, late, status, editors,
             trials, tier, from_abstract, design, size, facts, seen, _member, relevance), (_, member_of) in zip(
                batch, memberships, strict=True):
            marks = screening[pmid]
            cells = [pmid, title, authors, journal, "" if year is None else year, date_text, doi, pmcid, types,
                     mesh, keywords, "; ".join(member_of), format_utc(seen),
                     "true" if late else "false", pubmed_url(pmid),
                     describe_status(status) if status else "", marks["decision"], marks["reasons"],
                     marks["reviewers"], marks["notes"], editors, trials,
                     "" if relevance is None else format_relevance(relevance), marks["full_text"],
                     marks["full_text_reasons"], tier, design, "" if size is None else size, *export_cells(facts),
                     evidence_source(tier, from_abstract)]
            for index in text_cells:
                value = cells[index]
                if value is None:
                    cells[index] = ""
                elif value.startswith(formula):
                    cells[index] = "'" + value
            yield cells


def _split(all_topics: str | None) -> list[str]:
    return sorted(all_topics.split(" ")) if all_topics else []


def rows_for_pmids(store: Store, pmids: Sequence[int], topics: Sequence[Topic | str] | None = None, *,
                   screened: Sequence[Topic | str] | None = None) -> Iterator[dict]:
    """CSV rows for `pmids` in their order; first_seen is the earliest among `topics` (all when None), and the
    screening columns are those of `screened` (default `topics`; none when both are None)."""
    chosen = as_topics(topics) if topics is not None else None
    shown = as_topics(screened) if screened is not None else chosen
    batch: list[tuple[ListedPaperRow, datetime | None, list[str]]] = []
    for item in rows_of_pmids(store, pmids, [t.slug for t in chosen] if chosen is not None else None, _CSV_FIELDS):
        batch.append(item)
        if len(batch) == CHUNK:
            yield from _annotated(store, shown, batch)
            batch = []
    yield from _annotated(store, shown, batch)


def _annotated(store: Store, topics: Sequence[Topic] | None, batch) -> Iterator[dict]:
    screening = screening_cells(store, topics or (), [(row.pmid, member) for row, _seen, member in batch])
    # Relevance in the screened topics; with none named, in any topic of the paper.
    slugs = [topic.slug for topic in topics] if topics else sorted({slug for _row, _seen, member in batch for slug in member})
    scores = scores_of(store, slugs, [row.pmid for row, _seen, _member in batch]) if slugs and batch else {}
    for row, seen, member in batch:
        yield _csv_row(row, seen, member, scores.get(row.pmid)) | screening[row.pmid]


def as_topics(topics: Sequence[Topic | str]) -> list[Topic]:
    """Topic values for `topics`; a bare slug screens as a topic file without `screening` would (one reviewer)."""
    return [topic if isinstance(topic, Topic) else Topic(slug=topic, title=topic, query="") for topic in topics]


def screening_cells(store: Store, topics: Sequence[Topic], papers: Sequence[tuple[int, Sequence[str]]], *,
                    reviewer: str | None = None) -> dict[int, dict]:
    """The screening cells of each paper (pmid with all its topics) in the `topics` it belongs to, as `reviewer` may
    see them (see `screening_values`), joined as the CSV writes them."""
    several = len(topics) > 1
    cells: dict[int, dict] = {}
    for pmid, found in screening_values(store, topics, papers, reviewer=reviewer).items():
        cells[pmid] = {"decision": _joined_states(found["states"], several), "reasons": "; ".join(found["reasons"]),
                       "reviewers": "; ".join(found["reviewers"]), "notes": "; ".join(found["notes"]),
                       "full_text": _joined_states(found["full_text"], several),
                       "full_text_reasons": "; ".join(found["full_text_reasons"])}
    return cells


def _joined_states(states: dict[str, str], several: bool) -> str:
    return "; ".join(f"{slug}: {state}" if several else state for slug, state in states.items())


def screening_values(store: Store, topics: Sequence[Topic], papers: Sequence[tuple[int, Sequence[str]]], *,
                     reviewer: str | None = None) -> dict[int, dict]:
    """Each paper's screening in the `topics` it belongs to, as `reviewer` may see it (blind screening hides the
    other reviewer's decisions, and whether they gave one, until a paper is settled), as values: {"states": {slug:
    state}, "reasons": [...], "reviewers": [...], "notes": [...], "full_text": {slug: state}, "full_text_reasons":
    [...]} (with several topics, each reason "topic: reason", each reviewer and note "topic/name: ..."). The
    full-text state is given for the papers included by title and abstract."""
    from tracker.review.screening import describe_decision, screening_of
    from tracker.review.states import Stage, State

    if not topics or not papers:
        return {pmid: {"states": {}, "reasons": [], "reviewers": [], "notes": [], "full_text": {}, "full_text_reasons": []}
                for pmid, _ in papers}
    by_slug = {topic.slug: topic for topic in topics}
    several = len(topics) > 1
    held: dict[str, list[int]] = {}
    for pmid, member in papers:
        for slug in member:
            if slug in by_slug:
                held.setdefault(slug, []).append(pmid)
    first = {slug: screening_of(store, by_slug[slug], pmids, reviewer=reviewer) for slug, pmids in held.items()}
    reached = {slug: [pmid for pmid in pmids if first[slug][pmid].state == State.INCLUDED] for slug, pmids in held.items()}
    later = {slug: screening_of(store, by_slug[slug], pmids, reviewer=reviewer, stage=Stage.FULL_TEXT)
             for slug, pmids in reached.items() if pmids}
    values: dict[int, dict] = {}
    for pmid, member in papers:
        states: dict[str, str] = {}
        full_text: dict[str, str] = {}
        reasons, reviewers, notes, full_text_reasons = [], [], [], []
        for slug in member:
            if slug not in by_slug:
                continue
            prefix = f"{slug}: " if several else ""
            who = f"{slug}/" if several else ""
            for seen in (first[slug][pmid], later.get(slug, {}).get(pmid)):
                if seen is None:
                    continue
                if seen.stage == Stage.FULL_TEXT:
                    full_text[slug] = seen.state
                    full_text_reasons += [prefix + reason for reason in seen.reasons]
                else:
                    states[slug] = seen.state
                    reasons += [prefix + reason for reason in seen.reasons]
                reviewers += [who + describe_decision(decision) for decision in seen.decisions]
                notes += [f"{who}{decision.reviewer}: {decision.note}" for decision in seen.decisions if decision.note]
        values[pmid] = {"states": states, "reasons": reasons, "reviewers": reviewers, "notes": notes,
                        "full_text": full_text, "full_text_reasons": full_text_reasons}
    return values


def _csv_row(row: ListedPaperRow, seen: datetime | None, topics: list[str], relevance: float | None = None) -> dict:
    return {
        "pmid": row.pmid,
        "title": row.title,
        "authors": row.author_names,
        "journal": row.journal,
        "year": row.pub_year,
        "publication_date": row.pub_date_text,
        "doi": row.doi,
        "pmcid": row.pmcid,
        "publication_types": row.publication_types_text,
        "mesh_terms": row.mesh_terms,
        "keywords": row.keywords_text,
        "topics": "; ".join(topics),
        "first_seen": format_utc(seen),
        "late_arrival": "true" if row.late_arrival else "false",
        "pubmed_url": pubmed_url(row.pmid),
        "status": describe_status(row.status),
        "editors": row.editor_names,
        "trial_ids": row.trial_ids_text,
        "relevance": format_relevance(relevance),
        **facts_row(row),
    }


def facts_row(row: ListedPaperRow) -> dict:
    """The study-facts cells of a selected row (evidence_tier, tier_from_abstract, design, sample_size, facts)."""
    population, comparators, doses = export_cells(row.facts)
    return {"evidence": row.evidence_tier, "design": row.design,
            "sample_size": "" if row.sample_size is None else row.sample_size, "population": population,
            "comparators": comparators, "doses": doses,
            "evidence_source": evidence_source(row.evidence_tier, row.tier_from_abstract)}


def evidence_source(tier: str, from_abstract: bool) -> str:
    """Where a paper's tier comes from, for the `evidence_source` column."""
    if from_abstract:
        return "abstract"
    return "" if tier == "other" else "publication types"


def _cells(row: dict) -> list:
    return guarded([row[column] for column in CSV_COLUMNS])


def guarded(cells: list) -> list:
    """`cells` (changed in place) as a spreadsheet may open them: None empty, and a text cell a spreadsheet would run as
    a formula with a leading "'" (OWASP's CSV injection advice)."""
    for index, value in enumerate(cells):
        if value is None:
            cells[index] = ""
        elif value.__class__ is str and value.startswith(_FORMULA_START):
            cells[index] = "'" + value
    return cells


def write_csv(rows: Iterable[dict], file: BinaryIO) -> int:
    """Write `rows` (dicts keyed by CSV_COLUMNS) as CSV to a binary file; returns how many were written."""
    return write_table(CSV_COLUMNS, (_cells(row) for row in rows), file)


def write_table(header: Sequence[str], cells: Iterable[Sequence], file: BinaryIO) -> int:
    """`header`, then each row of `cells`, as RFC 4180 CSV (UTF-8, CRLF); returns how many rows were written."""
    # The standard library's writer: pandas' to_csv wrote the same bytes through it with a DataFrame per
    # batch on top, 0.7 s more per 100,000 rows (BENCHMARKS.md, export).
    text = io.TextIOWrapper(file, encoding="utf-8", newline="", write_through=True)
    try:
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(header)
        cells = iter(cells)
        count = 0
        while batch := list(islice(cells, CSV_BATCH)):
            writer.writerows(batch)
            count += len(batch)
        text.flush()
        return count
    finally:
        text.detach()  # the caller's file stays open


def csv_bytes(store: Store, pmids: Sequence[int], topics: Sequence[Topic | str] | None = None) -> bytes:
    """The CSV of `pmids` (in that order) as bytes, for an e-mail attachment."""
    buffer = io.BytesIO()
    write_csv(rows_for_pmids(store, pmids, topics), buffer)
    return buffer.getvalue()


# -- RIS -------------------------------------------------------------------------------------

_MONTH_DAY = re.compile(r"^\d{4} [A-Z][a-z]{2} \d{1,2}$")
_MONTH = re.compile(r"^\d{4} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)$")
_PAGE = re.compile(r"^([A-Za-z]*)(\d+)$")


def ris_records(store: Store, topics: Sequence[Topic | str], since: date | None = None, *,
                state: str | None = None, sort: str = "newest", selection: Selection | None = None
                ) -> Iterator[tuple[Paper, list[str], str | None, dict, tuple[TrialId, ...], str]]:
    """(paper without its XML, all its topics, its status, its screening cells, its stored trial ids, the note of its
    study facts) for the same selection and order as `export_rows`."""
    chosen = as_topics(topics)
    selection = selection or selection_of(store, chosen, since=since, state=state, sort=sort)
    for batch in select_batches(store, selection, NO_XML):
        screening = screening_cells(store, chosen, [(row.pmid, _split(row.all_topics)) for row in batch],
                                    reviewer=selection.reviewer)
        for row in batch:
            # row_to_paper only reads attributes, which the selected row has under the columns' names.
            paper = row_to_paper(cast(PaperRow, row))
            yield paper, _split(row.all_topics), row.status, screening[row.pmid], stored_trial_ids(row), facts_note(row)


def facts_note(row: ListedPaperRow) -> str:
    """"study facts: evidence rct (from the abstract); design rct; sample size 110; population cesarean; comparators
    phenylephrine; doses norepinephrine 2.5 µg/min infusion prophylactic, phenylephrine 50 µg/min ...": the CSV's
    study-facts columns as one RIS note."""
    cells = facts_row(row)
    source = cells["evidence_source"]
    parts = [f"evidence {cells['evidence']}" + (f" (from the {'abstract' if source == 'abstract' else source})"
                                                if source else ""),
             f"design {cells['design']}"]
    if cells["sample_size"] != "":
        parts.append(f"sample size {cells['sample_size']}")
    for name in ("population", "comparators"):
        if cells[name]:
            parts.append(f"{name} {cells[name].replace('; ', ', ')}")
    if cells["doses"]:
        parts.append(f"doses {cells['doses'].replace('; ', ', ')}")
    return "study facts: " + "; ".join(parts)


def ris_record(paper: Paper, topics: Sequence[str] = (), status: str | None = None,
               screening: dict | None = None, trials: Sequence[TrialId] | None = None, facts: str | None = None) -> str:
    """One RIS record with CRLF line ends, followed by a blank line; a `status` adds a note ("status: retracted"),
    `screening` (the CSV's four screening cells) a note of the state and reasons and a KW per topic state, `facts`
    (`facts_note`) a note of the paper's study facts.

    A book is TY BOOK, a part of one TY CHAP with its book's title as T2; either has its editors as A2, PB and CY
    for its publisher and place, ET its edition, SE its location label and a second UR for NCBI Bookshelf. Each
    trial registration (`trials`, default: found in the paper) is a note with its registry and record URL.
    """
    kind = ("CHAP" if paper.chapter else "BOOK") if paper.kind == "book" else "JOUR"
    fields: list[tuple[str, str | None]] = [("TY", kind), ("TI", paper.title)]
    fields += [("AU", _ris_author(author)) for author in paper.authors]
    fields += [("A2", _ris_author(editor)) for editor in paper.editors]
    fields += [
        ("PY", str(paper.pub_date.year) if paper.pub_date else None),
        ("DA", _ris_date(paper)),
        ("T2", paper.book_title if kind == "CHAP" else paper.journal),
        ("J2", paper.journal_iso),
        ("VL", paper.volume),
        ("IS", paper.issue),
        ("SE", paper.location_label),
        ("ET", paper.edition),
        ("PB", paper.publisher),
        ("CY", paper.publisher_location),
    ]
    start, end = _page_range(paper.pages)
    fields += [("SP", start), ("EP", end), ("AB", paper.abstract)]
    terms = dict.fromkeys([*paper.keywords, *(heading.descriptor for heading in paper.mesh_headings)])
    fields += [("KW", term) for term in terms]
    screened = screening.get("decision", "") if screening else ""
    fields += [("KW", f"screening: {state}") for state in screened.split("; ") if state]
    fields += [("DO", paper.doi), ("AN", str(paper.pmid)), ("UR", pubmed_url(paper.pmid)), ("UR", paper.bookshelf_url),
               ("C2", paper.pmcid)]
    fields += [("LA", language) for language in paper.languages]
    fields.append(("N1", f"topics: {'; '.join(topics)}" if topics else None))
    fields.append(("N1", f"status: {describe_status(status)} (PubMed)" if status else None))
    fields += [("N1", f"trial registration: {trial.number} ({trial.registry}) {trial.url}")
               for trial in (trial_ids(paper) if trials is None else trials)]
    if screened:
        reasons = screening.get("reasons") if screening else ""
        fields.append(("N1", f"screening: {screened}" + (f"; reasons: {reasons}" if reasons else "")))
    fields.append(("N1", facts))
    lines = [f"{tag}  - {' '.join(value.split())}\r\n" for tag, value in fields if value and value.strip()]
    return "".join(lines) + "ER  - \r\n\r\n"


def write_ris(records: Iterable[tuple], file: BinaryIO) -> int:
    """Write (paper, topics), (paper, topics, status, ...) records as RIS (the rest is `ris_record`'s arguments after
    topics); returns how many were written."""
    count = 0
    for paper, topics, *status in records:
        file.write(ris_record(paper, topics, *status).encode("utf-8"))
        count += 1
    return count


def _ris_author(author: Author) -> str:
    if author.collective_name:
        return author.collective_name
    given = author.fore_name or author.initials
    return f"{author.last_name}, {given}" if author.last_name and given else author.last_name or given or ""


def _ris_date(paper: Paper) -> str | None:
    """YYYY/MM/DD/ when PubMed gives the day, YYYY/MM// for a month; ranges and seasons are left to PY."""
    text, day = paper.pub_date_text or "", paper.pub_date
    if day is None:
        return None
    if _MONTH_DAY.match(text):
        return f"{day:%Y/%m/%d}/"
    if _MONTH.match(text):
        return f"{day:%Y/%m}//"
    return None


def _page_range(pages: str | None) -> tuple[str | None, str | None]:
    """("1234", "1241") for MEDLINE's abbreviated "1234-41"; the first range of a list."""
    if not pages:
        return None, None
    start, _, end = pages.split(",")[0].partition("-")
    start, end = start.strip(), end.strip()
    first, last = _PAGE.match(start), _PAGE.match(end)
    if first and last and last.group(1) in ("", first.group(1)) and len(last.group(2)) < len(first.group(2)):
        digits = first.group(2)
        end = first.group(1) + digits[:len(digits) - len(last.group(2))] + last.group(2)
    return start or None, end or None


# -- JSON Lines ------------------------------------------------------------------------------

def jsonl_records(store: Store, topics: Sequence[Topic | str], *, selection: Selection) -> Iterator[dict]:
    """One JSON object per selected paper, in the selection's order: every CSV column as a typed value (numbers as
    numbers, lists as lists, true/false, null for what is empty) and `facts`, the study facts in the shape of the
    gold set's `labels` (tracker/facts). `decision` is the state in the exported topic, or {topic: state} when several
    topics are exported."""
    chosen = as_topics(topics)
    several = len(chosen) > 1
    for batch in select_batches(store, selection, NO_XML):
        values = screening_values(store, chosen, [(row.pmid, _split(row.all_topics)) for row in batch],
                                  reviewer=selection.reviewer)
        for row in batch:
            yield jsonl_record(row, values[row.pmid], several=several)


def jsonl_record(row: ListedPaperRow, screening: dict, *, several: bool) -> dict:
    from tracker.store.studyfacts import facts_from_column

    states, full_text = screening["states"], screening["full_text"]
    facts = facts_from_column(row.facts)
    source = evidence_source(row.evidence_tier, row.tier_from_abstract)
    return {
        "pmid": row.pmid,
        "title": row.title,
        "authors": [_author_name(author) for author in row.authors],
        "journal": row.journal,
        "year": row.pub_year,
        "publication_date": row.pub_date_text,
        "doi": row.doi,
        "pmcid": row.pmcid,
        "publication_types": list(row.publication_types),
        "mesh_terms": [heading["descriptor"] + ("*" if heading.get("major") else "") for heading in row.mesh_headings],
        "keywords": list(row.keywords),
        "topics": _split(row.all_topics),
        "first_seen": format_utc(row.first_seen) or None,
        "late_arrival": bool(row.late_arrival),
        "pubmed_url": pubmed_url(row.pmid),
        "status": describe_status(row.status) or None,
        "decision": dict(states) if several else next(iter(states.values()), None),
        "reasons": screening["reasons"],
        "reviewers": screening["reviewers"],
        "notes": screening["notes"],
        "editors": [_author_name(editor) for editor in row.editors],
        "trial_ids": [number for _registry, number, _url in row.trial_ids],
        "relevance": format_relevance(row.relevance),
        "full_text": dict(full_text) if several else next(iter(full_text.values()), None),
        "full_text_reasons": screening["full_text_reasons"],
        "evidence": row.evidence_tier,
        "design": row.design,
        "sample_size": row.sample_size,
        "population": facts.population_values,
        "comparators": facts.comparator_values,
        "doses": [dose_text(dose) for dose in facts.doses],
        "evidence_source": source or None,
        "facts": facts.to_labels(),
    }


def _author_name(stored: dict) -> str:
    """"Last Initials" (the CSV's form) of a stored author or editor."""
    return Author(**{**stored, "affiliations": tuple(stored.get("affiliations", ()))}).display


def write_jsonl(records: Iterable[dict], file: BinaryIO) -> int:
    """One compact JSON object a line (UTF-8, "\n" after each); returns how many were written."""
    count = 0
    for record in records:
        file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
        count += 1
    return count


# -- output ----------------------------------------------------------------------------------

def export_papers(store: Store, topics: Sequence[Topic | str], file: BinaryIO, *, since: date | None = None,
                  fmt: str = "csv", state: str | None = None, bom: bool = False, sort: str = "newest",
                  filters: PaperFilter | None = None, reviewer: str | None = None,
                  stage: Stage = Stage.TITLE_ABSTRACT) -> int:
    """Write the papers of `topics` (in screening `state` in one of them, when given; passing `filters`, those of a
    topic page) to `file` as CSV, RIS, an Excel workbook (tracker/outputs/spreadsheet.py) or JSON Lines, in `sort` order;
    returns how many were written. In blind screening states are as `reviewer` sees them. `bom` starts a CSV with
    UTF-8's byte-order mark, for Excel."""
    chosen = as_topics(topics)
    selection = selection_of(store, chosen, since=since, state=state, sort=sort, filters=filters, reviewer=reviewer,
                             stage=stage)
    if fmt == "ris":
        return write_ris(ris_records(store, chosen, selection=selection), file)
    if fmt == "csv":
        if bom:
            file.write(UTF8_BOM)
        return write_table(CSV_COLUMNS, _export_cells(store, chosen, selection), file)
    if fmt == "jsonl":
        return write_jsonl(jsonl_records(store, chosen, selection=selection), file)
    if fmt == "xlsx":
        from tracker.outputs.spreadsheet import write_xlsx

        about = [(f"topic {topic.slug}", f"{topic.title}: {topic.query}") for topic in chosen]
        about += [("since", selection.filters.since.isoformat())] if selection.filters.since else []
        about += [("screening state", selection.filters.state)] if selection.filters.state else []
        about += [("order", SORT_WORDS[sort])] if sort != "newest" else []
        return write_xlsx(CSV_COLUMNS, export_rows(store, chosen, selection=selection), file, about=about,
                          expected=count_selection(store, selection))
    raise ConfigError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")


SORT_WORDS = {"newest": "newest first", "oldest": "oldest first", "tier": "strongest evidence first",
              "relevance": "most relevant first"}


def papers_frame(topics: Sequence[str] | None = None, *, since: date | None = None, state: str | None = None,
                 home=None):
    """The papers of `topics` (every topic when None) as a pandas DataFrame with the CSV's columns: lists as
    lists, `first_seen` as UTC datetimes, `pmid` and `year` as integers. Reads the tracker home the CLI would
    (`home`, else $TRACKER_HOME, else the current folder) and its settings; changes nothing.

        import tracker
        papers = tracker.papers_frame(["cesarean"], since=date(2025, 1, 1))
        papers.groupby("year").size()
    """
    from tracker.outputs.spreadsheet import rows_frame
    from tracker.settings import Settings
    from tracker.store import open_store
    from tracker.topics import scan_topics

    settings = Settings.from_env(home)
    chosen = scan_topics(settings.queries_dir).select(list(topics or ()))
    store = open_store(settings.database_url, readonly=True)
    try:
        return rows_frame(export_rows(store, chosen, since, state=state), CSV_COLUMNS)
    finally:
        store.close()


__all__ = [
    "CSV_COLUMNS", "FORMATS", "export_rows", "guarded", "rows_for_pmids", "write_csv", "write_table", "csv_bytes",
    "screening_cells", "as_topics",
    "ris_records", "ris_record", "write_ris", "export_papers", "papers_frame", "selection_of", "jsonl_records",
    "jsonl_record", "write_jsonl", "screening_values", "facts_row", "facts_note", "evidence_source",
    "UTF8_BOM",
]
