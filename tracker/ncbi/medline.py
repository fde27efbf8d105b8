"""PubMed's MEDLINE export format (.nbib, "Save > Format: PubMed") read with Biopython's Bio.Medline."""

from __future__ import annotations

from pathlib import Path

from Bio import Medline

from tracker.errors import ConfigError
from tracker.text import parse_pmid


def read_medline_pmids(path: Path) -> list[int]:
    """The PMIDs of a MEDLINE export, in file order, without repeats."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            records = list(Medline.parse(handle))
    except OSError as error:
        raise ConfigError(f"cannot read {path} ({error.strerror}): give the path of a PubMed export") from None
    except ValueError as error:  # Bio.Medline on a line it cannot place
        raise ConfigError(f"{path} is not a MEDLINE export ({error}): in PubMed use Save > Format: PubMed") from None
    if not any("PMID" in record for record in records):
        raise ConfigError(f"{path} holds no MEDLINE records (no 'PMID- ' lines): in PubMed use Save > Format: PubMed")
    pmids: list[int] = []
    for number, record in enumerate(records, start=1):
        text = str(record.get("PMID", "")).strip()
        if not text:
            raise ConfigError(f"{path}: record {number} has no PMID line; in PubMed use Save > Format: PubMed")
        pmid = parse_pmid(text)
        if pmid is None:
            raise ConfigError(f"{path}: record {number} has the PMID {text[:40]!r}, which is not one (a number from 1 "
                              "to 2147483647): in PubMed use Save > Format: PubMed")
        pmids.append(pmid)
    return list(dict.fromkeys(pmids))
