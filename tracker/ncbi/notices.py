"""What PubMed says about a record after its publication: retractions, expressions of concern, errata, updates.

PubMed marks them on the affected record itself. A retracted paper gets the publication type "Retracted
Publication" and a CommentsCorrections entry RefType="RetractionIn" naming the retraction notice's PMID;
an expression of concern gives "ExpressionOfConcernIn", an erratum "ErratumIn", a later version "UpdateIn",
a republication "RepublishedIn" (older records: "CorrectedandRepublishedIn"). The notices are records of
their own whose publication types ("Retraction of Publication", "Expression of Concern", "Published
Erratum") describe the notice, not the paper, so they are not read here.

No network, no database: Paper values in, notices and a status out.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.ncbi.pubmed import Paper

# RefType on the affected record -> the kind of change it announces.
NOTICE_KINDS = {
    "RetractionIn": "retraction",
    "PartialRetractionIn": "retraction",
    "RetractedandRepublishedIn": "retraction",
    "ExpressionOfConcernIn": "concern",
    "ErratumIn": "erratum",
    "UpdateIn": "update",
    "RepublishedIn": "republication",
    "CorrectedandRepublishedIn": "republication",
}
RETRACTED_TYPES = frozenset({"retracted publication"})

# Every kind of status event, as a reader reads it. "deleted" is found by tracker/runs/watch.py, not in a record.
KIND_LABELS = {
    "retraction": "Retracted",
    "concern": "Expression of concern",
    "erratum": "Erratum published",
    "update": "Updated version published",
    "republication": "Corrected and republished",
    "deleted": "Removed from PubMed",
}
# A paper's status (paper.status) as the CSV's `status` column and the marks in digests show it.
STATUS_LABELS = {"retracted": "retracted", "concern": "expression of concern", "deleted": "deleted"}
STATUS_MARKS = {"retracted": "RETRACTED", "concern": "EXPRESSION OF CONCERN", "deleted": "REMOVED FROM PUBMED"}


@dataclass(frozen=True)
class Notice:
    kind: str
    notice_pmid: int | None
    detail: str

    @property
    def key(self) -> tuple[str, int | None]:
        return self.kind, self.notice_pmid


def read_notices(paper: Paper) -> list[Notice]:
    """Every notice the record carries, in record order, each (kind, notice PMID) once."""
    found: dict[tuple[str, int | None], Notice] = {}
    for entry in paper.comments_corrections:
        kind = NOTICE_KINDS.get(entry.ref_type)
        if kind is None:
            continue
        source = " ".join((entry.source or "").split())
        detail = f"{KIND_LABELS[kind]}: {source}" if source else KIND_LABELS[kind]
        found.setdefault((kind, entry.pmid), Notice(kind, entry.pmid, detail))
    retracted_type = any(name.strip().casefold() in RETRACTED_TYPES for name in paper.publication_types)
    if retracted_type and not any(kind == "retraction" for kind, _ in found):
        found[("retraction", None)] = Notice("retraction", None, 'publication type "Retracted Publication"')
    return list(found.values())


def paper_status(paper: Paper) -> str | None:
    """"retracted", "concern" (an expression of concern) or None, from the record alone."""
    kinds = {notice.kind for notice in read_notices(paper)}
    if "retraction" in kinds:
        return "retracted"
    if "concern" in kinds:
        return "concern"
    return None


def new_notices(before: Paper, after: Paper) -> list[Notice]:
    """The notices `after` carries that `before` did not.

    A notice without a PMID (only the publication type said "Retracted Publication") is new only when
    `before` had no notice of its kind at all.
    """
    old = read_notices(before)
    old_keys = {notice.key for notice in old}
    old_kinds = {notice.kind for notice in old}
    return [notice for notice in read_notices(after)
            if notice.key not in old_keys and not (notice.notice_pmid is None and notice.kind in old_kinds)]


def describe_status(status: str | None) -> str:
    return STATUS_LABELS.get(status or "", "")


def status_mark(status: str | None) -> str | None:
    return STATUS_MARKS.get(status or "")


__all__ = [
    "NOTICE_KINDS", "KIND_LABELS", "STATUS_LABELS", "Notice", "read_notices", "paper_status", "new_notices",
    "describe_status", "status_mark",
]
