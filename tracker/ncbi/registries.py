"""Clinical trial registration numbers: which registry issued one, its canonical form, the URL of its record.

trial_ids(paper) gives a paper's trial registrations, each once: first the accessions PubMed lists in the
record's DataBankList under a trial registry (ClinicalTrials.gov, ISRCTN, EudraCT, ANZCTR, ChiCTR, ...), in
document order, then the registration numbers written in its title and abstract ("Trial registration:
NCT01234567"), in the order they appear. Accessions of banks that are not trial registries (GenBank, GEO,
Dryad, figshare, PubChem...) are never trial ids, nor are PROSPERO review protocols (CRD...).

A number is written in its registry's canonical form ("NCT 01234567", "nct-01234567" -> "NCT01234567"), upper
case except where the registry's own prefix is not (ChiCTR, jRCT, JapicCTI, ReBEC's RBR-xxxxxx). In text a
number counts only as a whole word of its exact shape; a EudraCT number only as YYYY-NNNNNN-CC with its
hyphens, or after the word "EudraCT". A DataBank accession in none of its registry's shapes is kept as
written, under the bank's name, with a WHO ICTRP search link.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from tracker.ncbi.pubmed import Paper

_ICTRP = "https://trialsearch.who.int/Trial2.aspx?TrialID={}"


@dataclass(frozen=True)
class TrialId:
    registry: str  # "ClinicalTrials.gov", "ISRCTN", "EudraCT", ...: PubMed's DataBankName where it has one
    number: str  # canonical: "NCT01234567"
    url: str  # the registry's record, or the WHO ICTRP entry where the registry has no stable address


@dataclass(frozen=True)
class _Registry:
    name: str
    banks: tuple[str, ...]  # the DataBankName spellings PubMed uses, compared without case and punctuation
    pattern: re.Pattern[str]
    canonical: Callable[[re.Match[str]], str]
    url: str  # {} is the canonical number
    in_text: bool = True  # False: a shape too common in prose to be taken for a registration outside DataBankList
    # What every match in text contains (one of them), searched (case-sensitive) in the text upper-cased: a pattern
    # starting with a lookbehind is tried at every position, so running all of them on an abstract took about 1 ms;
    # the hints take a few microseconds, and only the patterns whose hint is there run. Alternatives are separate
    # hints: one starting with a literal is found by a fast scan for it, and "EUDRACT|-\d{6}-" as one pattern
    # lost that (12 us an abstract against 1.7 us as two, the most of all hints together).
    hints: tuple[str, ...] = ()
    hint_patterns: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hint_patterns", tuple(re.compile(hint) for hint in self.hints))


def _shape(expression: str, *, ignore_case: bool = True) -> re.Pattern[str]:
    # A whole word: no letter or digit just before or after (a "/" before is fine: ".../show/NCT01234567").
    return re.compile(rf"(?<![A-Za-z0-9])(?:{expression})(?![A-Za-z0-9])", re.IGNORECASE if ignore_case else 0)


def _joined(prefix: str, separator: str = "") -> Callable[[re.Match[str]], str]:
    return lambda match: prefix + separator.join(group for group in match.groups() if group is not None)


def _eudract(match: re.Match[str]) -> str:
    year, number, check = (group for group in match.groups() if group is not None)
    return f"{year}-{number}-{check}"


def _chictr(match: re.Match[str]) -> str:
    kind, number = match.groups()
    return f"ChiCTR-{kind.upper()}-{number}" if kind else f"ChiCTR{number}"


_SEPARATOR = r"[\s:#-]*"  # "NCT 01234567", "NCT-01234567", "NCT: 01234567", "NCT#01234567"
_JPRN = _ICTRP.format("JPRN-{}")

_REGISTRIES = (
    _Registry("ClinicalTrials.gov", ("ClinicalTrials.gov",), _shape(rf"NCT{_SEPARATOR}(\d{{8}})"),
              _joined("NCT"), "https://clinicaltrials.gov/study/{}", hints=(rf"NCT{_SEPARATOR}\d",)),
    _Registry("ISRCTN", ("ISRCTN",), _shape(rf"ISRCTN{_SEPARATOR}(\d{{8}})"), _joined("ISRCTN"),
              "https://www.isrctn.com/{}", hints=(rf"ISRCTN{_SEPARATOR}\d",)),
    # EU CT numbers (CTIS, since 2023) add a two-digit part to the EudraCT shape.
    _Registry("CTIS", ("CTIS", "EU CT"), _shape(r"(20[2-9]\d)-(\d{6})-(\d{2})-(\d{2})(?!-)"), _joined("", "-"),
              "https://euclinicaltrials.eu/ctis-public/view/{}", hints=(r"-\d{6}-",)),
    # After the word EudraCT the parts may be spaced; alone, only the exact hyphenated shape (with the country
    # suffix of an EU register entry, "-ES", "-3RD", left out).
    _Registry("EudraCT", ("EudraCT", "EUCTR"), _shape(
        r"(?:EudraCT\D{0,25}?(20[0-3]\d)[\s-]?(\d{6})[\s-]?(\d{2})|(?<![\w./-])(20[0-3]\d)-(\d{6})-(\d{2}))"
        r"(?:-(?:[A-Z]{2}|3RD))?(?![\w-])"), _eudract,
        "https://www.clinicaltrialsregister.eu/ctr-search/search?query={}", hints=("EUDRACT", r"-\d{6}-")),
    _Registry("ANZCTR", ("ANZCTR",), _shape(rf"ACTRN{_SEPARATOR}(\d{{14}})"), _joined("ACTRN"),
              "https://www.anzctr.org.au/{}.aspx", hints=(rf"ACTRN{_SEPARATOR}\d",)),
    _Registry("ChiCTR", ("ChiCTR",), _shape(r"ChiCTR[\s:-]*(?:([A-Z]{3,4})-)?(\d{8,10})"), _chictr, _ICTRP,
              hints=("CHICTR",)),
    _Registry("CTRI", ("CTRI",), _shape(r"CTRI[\s:]*/\s*(20\d{2})\s*/\s*(\d{2,3})\s*/\s*(\d{6})"),
              _joined("CTRI/", "/"), _ICTRP, hints=(r"CTRI[\s:]*/",)),
    _Registry("DRKS", ("DRKS",), _shape(rf"DRKS{_SEPARATOR}(\d{{8}})"), _joined("DRKS"),
              "https://drks.de/search/en/trial/{}", hints=(rf"DRKS{_SEPARATOR}\d",)),
    _Registry("UMIN-CTR", ("UMIN-CTR", "UMIN", "JPRN"), _shape(rf"UMIN{_SEPARATOR}(?:CTR{_SEPARATOR})?(\d{{9}})"),
              _joined("UMIN"), _JPRN, hints=(rf"UMIN{_SEPARATOR}(?:CTR{_SEPARATOR})?\d",)),
    _Registry("jRCT", ("jRCT", "JPRN"), _shape(r"jRCT([a-z]?\d{9,10})"),
              lambda match: "jRCT" + match.group(1).lower(), _JPRN, hints=(r"JRCT[A-Z]?\d",)),
    _Registry("JapicCTI", ("JapicCTI", "JPRN"), _shape(rf"Japic{_SEPARATOR}CTI{_SEPARATOR}(\d{{6}})"),
              _joined("JapicCTI-"), _JPRN, hints=("JAPIC",)),
    _Registry("CRiS", ("CRiS",), _shape(rf"KCT{_SEPARATOR}(\d{{7}})"), _joined("KCT"), _ICTRP,
              hints=(rf"KCT{_SEPARATOR}\d",)),
    _Registry("IRCT", ("IRCT",), _shape(rf"IRCT{_SEPARATOR}(\d{{10,14}}N\d{{1,3}})"),
              lambda match: "IRCT" + match.group(1).upper(), _ICTRP, hints=(rf"IRCT{_SEPARATOR}\d",)),
    _Registry("PACTR", ("PACTR",), _shape(rf"PACTR{_SEPARATOR}(\d{{15}})"), _joined("PACTR"), _ICTRP,
              hints=(rf"PACTR{_SEPARATOR}\d",)),
    _Registry("ReBec", ("ReBec",), _shape(r"RBR[\s-]*([0-9a-z]{6,8})"),
              lambda match: "RBR-" + match.group(1).lower(), "https://ensaiosclinicos.gov.br/rg/{}", hints=("RBR",)),
    _Registry("TCTR", ("TCTR",), _shape(rf"TCTR{_SEPARATOR}(20\d{{9}})"), _joined("TCTR"), _ICTRP,
              hints=(rf"TCTR{_SEPARATOR}20",)),
    # "NL" is also a unit and a country code: only the register's shapes in capitals, and never a CCMO dossier
    # number ("NL41789.078.13") or a year-number pair ("NL-2012-302759").
    _Registry("NTR", ("NTR", "LTR"),
              _shape(r"(NTR)[\s:-]*(\d{3,4})|(NL)-?(\d{4,5})(?![.-]\d)|(NL-OMON)(\d{4,6})", ignore_case=False),
              _joined(""), _ICTRP, hints=(r"NTR[\s:-]*\d", r"NL-?(?:\d|OMON)")),
    _Registry("SLCTR", ("SLCTR",), _shape(r"SLCTR[\s:]*/\s*(20\d{2})\s*/\s*(\d{3})"), _joined("SLCTR/", "/"),
              _ICTRP, hints=(r"SLCTR[\s:]*/",)),
    _Registry("RPCEC", ("RPCEC",), _shape(rf"RPCEC{_SEPARATOR}(\d{{8}})"), _joined("RPCEC"), _ICTRP,
              hints=(rf"RPCEC{_SEPARATOR}\d",)),
    _Registry("LBCTR", ("LBCTR",), _shape(rf"LBCTR{_SEPARATOR}(20\d{{8}})"), _joined("LBCTR"), _ICTRP,
              hints=(rf"LBCTR{_SEPARATOR}20",)),
    # "PER-100-00" is as likely a rate as a Peruvian registration.
    _Registry("REPEC", ("REPEC",), _shape(r"PER-(\d{3})-(\d{2})", ignore_case=False), _joined("PER-", "-"), _ICTRP,
              in_text=False),
)
_TEXT_REGISTRIES = tuple(registry for registry in _REGISTRIES if registry.in_text)
# Every hint with its registry, in the registries' order: one loop over them, not a generator for each registry.
_TEXT_HINTS = tuple((pattern, registry) for registry in _TEXT_REGISTRIES for pattern in registry.hint_patterns)


def _bank_key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


_BANKS = {key: tuple(registry for registry in _REGISTRIES if key in map(_bank_key, registry.banks))
          for key in {_bank_key(bank) for registry in _REGISTRIES for bank in registry.banks}}


def trial_ids(paper: Paper) -> tuple[TrialId, ...]:
    """The paper's trial registrations: DataBank accessions of trial registries, then numbers in its text."""
    found = [accession_trial_id(bank, accession) for bank, accession in paper.databanks]
    found += find_trial_ids(paper.title)
    found += find_trial_ids(paper.abstract)
    return tuple(dict.fromkeys(trial for trial in found if trial is not None))


def accession_trial_id(bank: str, accession: str) -> TrialId | None:
    """The trial id a DataBank accession stands for, or None when the bank is not a trial registry."""
    registries = _BANKS.get(_bank_key(bank))
    if not registries:
        return None
    written = " ".join(accession.split())
    for registry in registries:
        # search(), not fullmatch(): JPRN accessions can carry the network's prefix ("JPRN-UMIN000012345").
        match = registry.pattern.search(written)
        if match:
            return _trial_id(registry, match)
    return TrialId(bank.strip(), written, _ICTRP.format(quote(written, safe="/-")))


def find_trial_ids(text: str) -> list[TrialId]:
    """The registration numbers written in text, in order of appearance (an overlapped match is dropped)."""
    if not text:
        return []
    upper = text.upper()
    hinted = dict.fromkeys([registry for pattern, registry in _TEXT_HINTS if pattern.search(upper)])
    matches = sorted(((match.start(), -match.end(), registry, match) for registry in hinted
                      for match in registry.pattern.finditer(text)),
                     key=lambda found: found[:2])
    trials, covered = [], 0
    for start, negative_end, registry, match in matches:
        if start >= covered:
            trials.append(_trial_id(registry, match))
            covered = -negative_end
    return trials


def _trial_id(registry: _Registry, match: re.Match[str]) -> TrialId:
    number = registry.canonical(match)
    return TrialId(registry.name, number, registry.url.format(quote(number, safe="/-")))
