"""Decisions from a file (`tracker screen import`): the tracker's own CSV, or ASReview's export.

The tracker's CSV has a `pmid` and a `decision` column (include, exclude, maybe), and optionally `reason`
(one or several, "; "-separated, each a reason of the topic by name or by number), `note` and `reviewer`
(which overrides `--reviewer` for that row). ASReview's export is read by its label column (`included` or
`asreview_label`: 1 include, 0 exclude, empty not yet labelled, skipped) and its PMID column (`pmid` or
`pubmedID`; its `record_id` is taken as the PMID only when the file has neither). Column names are matched
without regard to case, and a UTF-8 byte-order mark (Excel's) is ignored.

An import is all or nothing: every row is checked before anything is stored, and the first bad row is one
line naming its line number; then every decision is recorded in one transaction. PMIDs the topic does not
hold are listed and skipped, or, with `add_missing`, fetched and linked to the topic first.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tracker.errors import ConfigError
from tracker.review.screening import check_reviewer, resolve_reasons
from tracker.review.states import DECISIONS
from tracker.store import Store
from tracker.store.decisions import NewDecision, save_decisions
from tracker.store.membership import topic_pmids
from tracker.topics import Topic

PMID_COLUMNS = ("pmid", "pubmedid", "pubmed_id")
ASREVIEW_LABELS = ("included", "asreview_label")
ASREVIEW_VALUES = {"1": "include", "0": "exclude", "1.0": "include", "0.0": "exclude"}
MAX_FILE_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class FileDecision:
    line: int
    decision: NewDecision


@dataclass(frozen=True)
class DecisionsFile:
    kind: str  # "tracker" or "asreview"
    decisions: tuple[FileDecision, ...]
    unlabelled: int = 0  # ASReview rows without a label yet


@dataclass(frozen=True)
class ImportResult:
    kind: str
    imported: int  # decisions recorded
    reviewers: tuple[str, ...]
    skipped: tuple[int, ...]  # PMIDs the topic does not hold (and, with add_missing, PubMed did not return)
    unlabelled: int
    added: int = 0  # papers fetched and linked first (add_missing)


def read_decisions_file(path: Path, topic: Topic, *, reviewer: str) -> DecisionsFile:
    """Every decision in the file, checked against `topic`; ConfigError naming the first bad line."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{path.name} is larger than {MAX_FILE_BYTES // 2**20} MB: split it into smaller files")
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"no file {path}: give the CSV of decisions to import") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name} is not UTF-8 text: save it as CSV UTF-8") from None
    except OSError as error:
        raise ConfigError(f"cannot read {path} ({error.strerror})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ConfigError(f"{path.name} is empty: it needs a header with pmid and decision columns") from None
    except csv.Error as error:
        raise ConfigError(f"{path.name} line 1: not CSV ({error})") from None
    columns = {name.strip().lower(): index for index, name in reversed(list(enumerate(header)))}
    label = next((name for name in ASREVIEW_LABELS if name in columns), None)
    kind = "tracker" if "decision" in columns else "asreview" if label else None
    if kind is None:
        raise ConfigError(f"{path.name} has no decision column: give a CSV with pmid and decision (include, exclude, "
                          "maybe) columns, or ASReview's export (included or asreview_label)")
    pmid_column = next((name for name in PMID_COLUMNS if name in columns), None)
    if pmid_column is None and kind == "asreview" and "record_id" in columns:
        pmid_column = "record_id"
    if pmid_column is None:
        raise ConfigError(f"{path.name} has no pmid column (pmid, pubmedID or, in ASReview's export, record_id)")

    def cell(row: list[str], name: str) -> str:
        index = columns.get(name)
        return row[index].strip() if index is not None and index < len(row) else ""

    decisions: list[FileDecision] = []
    unlabelled = 0
    line = 1
    try:
        for row in reader:
            line = reader.line_num
            if not any(value.strip() for value in row):
                continue
            where = f"{path.name} line {line}"
            text_pmid = cell(row, pmid_column)
            if not text_pmid.isdigit() or int(text_pmid) == 0:
                raise ConfigError(f"{where}: {pmid_column} {text_pmid!r} is not a PMID: nothing was imported")
            if kind == "asreview" and label is not None:
                value = cell(row, label)
                if not value:
                    unlabelled += 1
                    continue
                decision = ASREVIEW_VALUES.get(value)
                if decision is None:
                    raise ConfigError(f"{where}: {label} {value!r} is not 1, 0 or empty: nothing was imported")
            else:
                decision = cell(row, "decision").lower()
                if decision not in DECISIONS:
                    raise ConfigError(f"{where}: decision {cell(row, 'decision')!r} is not include, exclude or maybe: "
                                      "nothing was imported")
            reasons_text = cell(row, "reason") or cell(row, "reasons")
            if reasons_text and decision != "exclude":
                raise ConfigError(f"{where}: a reason goes with an exclusion, and the decision is {decision}: "
                                  "nothing was imported")
            try:
                reasons = resolve_reasons(topic, [reasons_text]) if reasons_text else ()
                who = check_reviewer(cell(row, "reviewer") or reviewer)
            except ConfigError as error:
                raise ConfigError(f"{where}: {error}: nothing was imported") from None
            decisions.append(FileDecision(line, NewDecision(
                pmid=int(text_pmid), reviewer=who, decision=decision, reasons=reasons,
                note=" ".join((cell(row, "note") or cell(row, "notes")).split()), source="import")))
    except csv.Error as error:
        raise ConfigError(f"{path.name} line {line}: not CSV ({error}): nothing was imported") from None
    return DecisionsFile(kind=kind, decisions=tuple(decisions), unlabelled=unlabelled)


def import_decisions(store: Store, topic: Topic, path: Path, *, reviewer: str,
                     add_missing: Callable[[Sequence[int]], None] | None = None) -> ImportResult:
    """Record the file's decisions in `topic` in one transaction. `add_missing(pmids)`, when given, fetches and
    links the papers the topic lacks first (tracker.runs.sync.import_pmids); otherwise they are skipped."""
    found = read_decisions_file(path, topic, reviewer=check_reviewer(reviewer))
    pmids = list(dict.fromkeys(item.decision.pmid for item in found.decisions))
    held = topic_pmids(store, topic.slug, pmids)
    missing = [pmid for pmid in pmids if pmid not in held]
    added = 0
    if missing and add_missing is not None:
        add_missing(missing)
        held = topic_pmids(store, topic.slug, pmids)
        added = len([pmid for pmid in missing if pmid in held])
        missing = [pmid for pmid in pmids if pmid not in held]
    kept = [item.decision for item in found.decisions if item.decision.pmid in held]
    save_decisions(store, topic.slug, kept)
    return ImportResult(kind=found.kind, imported=len(kept), reviewers=tuple(dict.fromkeys(d.reviewer for d in kept)),
                        skipped=tuple(missing), unlabelled=found.unlabelled, added=added)


__all__ = ["DecisionsFile", "FileDecision", "ImportResult", "read_decisions_file", "import_decisions"]
