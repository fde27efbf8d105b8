"""Decisions from a file (`tracker screen import`): a CSV or Excel workbook of decisions, the tracker's own exports
as they come out (edited in a spreadsheet), or ASReview's export.

Columns, matched without regard to case
    `pmid` (or `pubmedID`); `decision`: a decision (include, exclude, maybe) or a state as the tracker's exports
    write it (included, excluded, maybe; unscreened, awaiting, conflict and an empty cell are no decision, and
    with several topics "cesarean: included; sepsis: excluded" gives this topic's part); `reason` or `reasons`
    (one or several, "; "-separated, each a reason of the topic by name or by number); `note` or `notes`;
    `reviewer` (overrides `--reviewer` for that row); and at full text `full_text` (include, exclude,
    not-retrieved, or the states included, excluded, not-retrieved) with `full_text_reasons`. ASReview's export is
    read by its label column (`included` or `asreview_label`: 1 include, 0 exclude, empty not yet labelled) and its
    PMID column (`pmid` or `pubmedID`; its `record_id` is taken as the PMID only when the file has neither).

Files
    CSV in UTF-8 (a byte-order mark, as Excel writes it, is ignored), its separator found from the header: comma,
    semicolon (a European Excel's "CSV") or tab, and said; or an Excel workbook (.xlsx, its first sheet), such as
    `tracker export --format xlsx` writes.

All or nothing
    Every row is checked before anything is written: a PMID that is not one, that the topic does not hold (unless
    `add_missing` fetches it first, and then one PubMed did not return), that stands twice in the file, a decision,
    reason or reviewer the topic does not know, a quote that opens and does not close: each is one line naming the
    file and its line, and nothing is stored. A row whose decision is the reviewer's current one already is left
    as it is (so the export of a topic can be edited and imported back, and importing a file again changes nothing).
    The decisions are then written in batches of short transactions (BATCH decisions each), so that reviewers
    deciding at the same time wait a moment at most; should the command be stopped midway, running it again with
    the same file writes what is left and nothing twice.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tracker.errors import ConfigError
from tracker.review.screening import check_account, check_note, check_reviewer, resolve_reasons, rule_for
from tracker.review.states import DECISIONS_AT, STATE_OF, Decision, Stage, State
from tracker.store import Store
from tracker.store.decisions import NewDecision, current_decisions, save_decisions, summaries
from tracker.store.membership import topic_pmids
from tracker.topics import Topic

PMID_COLUMNS = ("pmid", "pubmedid", "pubmed_id")
ASREVIEW_LABELS = ("included", "asreview_label")
ASREVIEW_VALUES = {"1": "include", "0": "exclude", "1.0": "include", "0.0": "exclude"}
MAX_FILE_BYTES = 200 * 1024 * 1024
BATCH = 1000  # decisions a transaction: about a second of SQLite's write lock on this machine
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}
# A cell's decision, as the tracker's CSV writes states: a state that settled nothing is no decision.
DECISION_OF_STATE = {str(state): str(decision) for decision, state in STATE_OF.items()}
NO_DECISION = {"", State.UNSCREENED, State.AWAITING, State.CONFLICT}


@dataclass(frozen=True)
class FileDecision:
    line: int
    decision: NewDecision


@dataclass(frozen=True)
class DecisionsFile:
    kind: str  # "tracker" or "asreview"
    decisions: tuple[FileDecision, ...]
    unlabelled: int = 0  # rows without a decision (ASReview's unlabelled, or states that settle nothing)
    separator: str = ","  # the CSV's separator (a workbook's cells need none)
    workbook: bool = False


@dataclass(frozen=True)
class ImportResult:
    kind: str
    imported: int  # decisions recorded
    reviewers: tuple[str, ...]
    unchanged: int  # rows whose decision was the reviewer's current one already
    unlabelled: int
    added: int = 0  # papers fetched and linked first (add_missing)
    separator: str = ","
    workbook: bool = False

    @property
    def source(self) -> str:
        """"CSV, semicolon-separated", "Excel workbook" or "ASReview export", as the command says it."""
        if self.kind == "asreview":
            return "ASReview export"
        if self.workbook:
            return "Excel workbook"
        return "CSV" if self.separator == "," else f"CSV, {SEPARATORS[self.separator]}-separated"


def read_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]], str, bool]:
    """The file's header, its rows with their line numbers, its separator and whether it is a workbook."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{path.name} is larger than {MAX_FILE_BYTES // 2**20} MB: split it into smaller files")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"no file {path}: give the CSV or Excel file of decisions to import") from None
    except OSError as error:
        raise ConfigError(f"cannot read {path} ({error.strerror})") from None
    if data[:4] == b"PK\x03\x04":
        header, rows = _workbook_rows(path, data)
        return header, rows, ",", True
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name} is not UTF-8 text: save it as CSV UTF-8, or as an Excel workbook") from None
    first = text.split("\n", 1)[0]
    separator = max(SEPARATORS, key=lambda mark: len(next(csv.reader([first], delimiter=mark), [])))
    return *_csv_rows(path, text, separator), separator, False


def _csv_rows(path: Path, text: str, separator: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ConfigError(f"{path.name} is empty: it needs a header with pmid and decision columns") from None
    except csv.Error as error:
        raise ConfigError(f"{path.name} line 1: not CSV ({error})") from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        start = 2
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                if "unexpected end of data" in str(error):
                    raise ConfigError(f"{path.name} line {start}: a quote opens and never closes: check the quotes in "
                                      "that row; nothing was imported") from None
                if reader.line_num > start:
                    raise ConfigError(_unclosed(path.name, start, reader.line_num)) from None
                raise ConfigError(f"{path.name} line {start}: not CSV ({error}): nothing was imported") from None
            # A quote that does not close swallows the lines after it into one cell: a row that spans lines
            # and no longer fits the header is that, not a note with a line break in it.
            if reader.line_num > start and len(row) != len(header):
                raise ConfigError(_unclosed(path.name, start, reader.line_num))
            yield start, row

    return header, rows()


def _unclosed(name: str, start: int, end: int) -> str:
    return (f"{name} line {start}: a quote opens here and does not close where its cell ends (the row runs on to line "
            f"{end}): check the quotes in that row; nothing was imported")


def _workbook_rows(path: Path, data: bytes) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    from openpyxl import load_workbook

    try:
        sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).worksheets[0]
    except Exception as error:  # openpyxl raises many kinds for a damaged or foreign file
        raise ConfigError(f"{path.name} is not an Excel workbook that can be read ({type(error).__name__}): save it "
                          "again as .xlsx, or as CSV UTF-8") from None
    cells = sheet.iter_rows(values_only=True)

    def text(value) -> str:
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    header = [text(value) for value in next(cells, ())]
    return header, ((line, [text(value) for value in row]) for line, row in enumerate(cells, start=2))


def read_decisions_file(path: Path, topic: Topic, *, reviewer: str) -> DecisionsFile:
    """Every decision in the file, checked against `topic`; ConfigError naming the first bad line."""
    path = Path(path)
    header, rows, separator, workbook = read_rows(path)
    columns = {name.strip().lower(): index for index, name in reversed(list(enumerate(header)))}
    label = next((name for name in ASREVIEW_LABELS if name in columns), None)
    kind = "tracker" if "decision" in columns else "asreview" if label else None
    if kind is None:
        said = f" (its header, read as {SEPARATORS[separator]}-separated, is {', '.join(header[:6])})" if header else ""
        raise ConfigError(f"{path.name} has no decision column{said}: give a CSV or workbook with pmid and decision "
                          "(include, exclude, maybe) columns, or ASReview's export (included or asreview_label)")
    pmid_column = next((name for name in PMID_COLUMNS if name in columns), None)
    if pmid_column is None and kind == "asreview" and "record_id" in columns:
        pmid_column = "record_id"
    if pmid_column is None:
        raise ConfigError(f"{path.name} has no pmid column (pmid, pubmedID or, in ASReview's export, record_id)")

    def cell(row: list[str], *names: str) -> str:
        for name in names:
            index = columns.get(name)
            if index is not None and index < len(row) and row[index].strip():
                return row[index].strip()
        return ""

    decisions: list[FileDecision] = []
    unlabelled = 0
    seen: dict[int, int] = {}
    for line, row in rows:
        if not any(value.strip() for value in row):
            continue
        where = f"{path.name} line {line}"
        text_pmid = cell(row, pmid_column)
        if not (text_pmid.isascii() and text_pmid.isdigit()) or not 0 < int(text_pmid) < 2**31:
            raise ConfigError(f"{where}: {pmid_column} {text_pmid!r} is not a PMID: nothing was imported")
        pmid = int(text_pmid)
        if pmid in seen:
            raise ConfigError(f"{where}: PMID {pmid} is already on line {seen[pmid]}: keep one row per paper; "
                              "nothing was imported")
        seen[pmid] = line
        try:
            who = check_reviewer(cell(row, "reviewer") or reviewer)
            note = check_note(cell(row, "note", "notes"))
            found = _row_decisions(topic, kind, label, row, cell, pmid, who, note)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}: nothing was imported") from None
        if not found:
            unlabelled += 1
        decisions += [FileDecision(line, decision) for decision in found]
    return DecisionsFile(kind=kind, decisions=tuple(decisions), unlabelled=unlabelled, separator=separator,
                         workbook=workbook)


def _row_decisions(topic: Topic, kind: str, label: str | None, row: list[str], cell: Callable[..., str], pmid: int,
                   reviewer: str, note: str) -> list[NewDecision]:
    """The row's decisions: by title and abstract, then at full text."""
    if kind == "asreview" and label is not None:
        value = cell(row, label)
        if not value:
            return []
        decision = ASREVIEW_VALUES.get(value)
        if decision is None:
            raise ConfigError(f"{label} {value!r} is not 1, 0 or empty")
        return [NewDecision(pmid=pmid, reviewer=reviewer, decision=decision, note=note, source="import")]
    found: list[NewDecision] = []
    for stage, column, reasons_column in ((Stage.TITLE_ABSTRACT, "decision", ("reason", "reasons")),
                                          (Stage.FULL_TEXT, "full_text", ("full_text_reasons",))):
        decision = _decision(topic, cell(row, column), stage, column)
        reasons_text = _this_topic(topic, cell(row, *reasons_column))
        if decision is None:
            if reasons_text and stage == Stage.TITLE_ABSTRACT:
                raise ConfigError("a reason goes with an exclusion, and the row gives no decision")
            continue
        if reasons_text and decision != Decision.EXCLUDE:
            raise ConfigError(f"a reason goes with an exclusion, and the {column} is {decision}")
        reasons = resolve_reasons(topic, [reasons_text], stage) if reasons_text else ()
        if stage == Stage.FULL_TEXT and decision == Decision.EXCLUDE and not reasons:
            raise ConfigError("a full-text exclusion needs its reason (full_text_reasons)")
        found.append(NewDecision(pmid=pmid, reviewer=reviewer, decision=decision, reasons=reasons,
                                 note=note if stage == Stage.TITLE_ABSTRACT or not found else "", source="import",
                                 stage=stage))
    return found


def _decision(topic: Topic, value: str, stage: Stage, column: str) -> str | None:
    """The decision a cell gives at `stage` (a decision, or a state the tracker's exports write), or None."""
    value = _this_topic(topic, value).lower()
    if value in NO_DECISION:
        return None
    value = DECISION_OF_STATE.get(value, value)
    allowed = DECISIONS_AT[stage]
    if value not in allowed:
        raise ConfigError(f"{column} {value!r} is not {', '.join(allowed[:-1])} or {allowed[-1]} (or a state such as "
                          "included)")
    return value


def _this_topic(topic: Topic, value: str) -> str:
    """A cell of an export of several topics ("cesarean: included; sepsis: excluded") read for `topic`."""
    if not re.search(r"^[a-z0-9][a-z0-9-]*: ", value):
        return value
    parts = [part.split(": ", 1) for part in value.split("; ")]
    return "; ".join(text for slug, text in (part for part in parts if len(part) == 2) if slug == topic.slug)


def import_decisions(store: Store, topic: Topic, path: Path, *, reviewer: str,
                     add_missing: Callable[[Sequence[int]], None] | None = None) -> ImportResult:
    """Record the file's decisions in `topic`: all of them or, on any bad row, none. `add_missing(pmids)`, when given,
    fetches and links the papers the topic lacks first (tracker.runs.sync.import_pmids); otherwise, and for those
    PubMed does not return, such a row is an error."""
    found = read_decisions_file(path, topic, reviewer=check_reviewer(reviewer))
    line_of = {item.decision.pmid: item.line for item in found.decisions}
    pmids = list(line_of)
    held = topic_pmids(store, topic.slug, pmids)
    missing = [pmid for pmid in pmids if pmid not in held]
    added = 0
    if missing and add_missing is not None:
        add_missing(missing)
        held = topic_pmids(store, topic.slug, pmids)
        added = len([pmid for pmid in missing if pmid in held])
        missing = [pmid for pmid in pmids if pmid not in held]
        if missing:
            raise ConfigError(f"{Path(path).name} line {line_of[missing[0]]}: PMID {missing[0]} was not returned by "
                              f"PubMed{_more(missing)}: check the PMIDs (a deleted record cannot be added); the papers "
                              "fetched stay in the topic, and no decision was imported")
    elif missing:
        raise ConfigError(f"{Path(path).name} line {line_of[missing[0]]}: PMID {missing[0]} is not in topic "
                          f"'{topic.slug}'{_more(missing)}: import again with --add-missing to fetch and add the "
                          "missing papers first; nothing was imported")
    new = _checked(store, topic, found, Path(path).name)
    for start in range(0, len(new), BATCH):
        save_decisions(store, topic.slug, new[start:start + BATCH])
    return ImportResult(kind=found.kind, imported=len(new), reviewers=tuple(dict.fromkeys(d.reviewer for d in new)),
                        unchanged=len(found.decisions) - len(new), unlabelled=found.unlabelled, added=added,
                        separator=found.separator, workbook=found.workbook)


def _more(missing: Sequence[int]) -> str:
    return f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""


def _checked(store: Store, topic: Topic, found: DecisionsFile, name: str) -> list[NewDecision]:
    """The file's decisions that change something, once each row is checked against what the topic holds: the
    reviewers (accounts in team mode, the topic's named reviewers), and at full text that the paper stands included
    by title and abstract, counting the file's own decisions."""
    rules = {stage: rule_for(store, topic, stage) for stage in Stage}
    current = {stage: current_decisions(store, [topic.slug], [item.decision.pmid for item in found.decisions],
                                        stage=stage) for stage in Stage}
    first = summaries(store, topic.slug, [item.decision.pmid for item in found.decisions])
    included_in_file = {item.decision.pmid for item in found.decisions
                        if item.decision.stage == Stage.TITLE_ABSTRACT and item.decision.decision == Decision.INCLUDE}
    accounts: set[str] = set()
    changed: list[NewDecision] = []
    for item in found.decisions:
        decision, where = item.decision, f"{name} line {item.line}"
        rule = rules[Stage(decision.stage)]
        try:
            if decision.reviewer not in accounts:
                accounts.add(check_account(store, decision.reviewer))
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}: nothing was imported") from None
        if rule.names and not rule.counts(decision.reviewer):
            raise ConfigError(f"{where}: {decision.reviewer} is not a reviewer of topic '{topic.slug}' (its reviewers: "
                              f"{', '.join(rule.names)}): nothing was imported")
        if decision.stage == Stage.FULL_TEXT:
            first_state = rules[Stage.TITLE_ABSTRACT].state(first.get(decision.pmid))
            if first_state != State.INCLUDED and not (decision.pmid in included_in_file and not rule.dual):
                raise ConfigError(f"{where}: PMID {decision.pmid} is not included by title and abstract ({first_state}), "
                                  "so it has no full-text decision yet: nothing was imported")
        mine = [given for given in current[Stage(decision.stage)].get((topic.slug, decision.pmid), ())
                if given.reviewer == decision.reviewer]
        if mine and (mine[0].decision, mine[0].reasons) == (decision.decision, decision.reasons) \
                and (not decision.note or mine[0].note == decision.note):
            continue
        changed.append(decision)
    return changed


__all__ = ["DecisionsFile", "FileDecision", "ImportResult", "read_rows", "read_decisions_file", "import_decisions",
           "BATCH", "SEPARATORS"]
