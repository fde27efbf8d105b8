"""The text the rules read: one string, normalised character for character, cut into sentences and sections.

Normalising never changes the length of the text, so an offset found in the normalised text is the same offset in
the text as given: every micro sign becomes "µ", every dash and minus "-", superscript digits and minus become
digits and "-", middle dots "." (so "µg·kg⁻¹·min⁻¹" reads "µg.kg-1.min-1" and the Lancet's "0·05" reads "0.05"),
odd spaces a space, and markup tags (<i>, <sup>) spaces of the same length. The rules then match the lower-cased
copy (lower-casing that would change a length keeps that character as it is).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from functools import cached_property
from typing import NamedTuple

_CHARACTERS = {
    "\u03bc": "µ", "\u039c": "µ",  # Greek mu (often typed for the micro sign)
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u207b\u208b\ufe63\uff0d\u2043", "-"),
    "\u00b9": "1", "\u00b2": "2", "\u00b3": "3", "\u2070": "0", "\u2074": "4", "\u2075": "5", "\u2076": "6",
    "\u2077": "7", "\u2078": "8", "\u2079": "9",
    **dict.fromkeys("\u00b7\u2022\u22c5\u2219\u30fb\u2027", "."),
    **dict.fromkeys("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u202f\u205f"
                    "\u3000\t\r\f\v", " "),
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00d7": "x",
    "\uff1c": "<", "\uff1e": ">", "\u2264": "≤", "\u2265": "≥", "\u2266": "≤", "\u2267": "≥",
    "\uff08": "(", "\uff09": ")", "\uff0c": ",", "\uff1a": ":", "\uff05": "%",
}
_ODD_CHARACTER = re.compile("[" + re.escape("".join(_CHARACTERS)) + "]")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]{0,15}(?:\s[^<>\n]{0,200})?/?>")

# A section label at the start of a line: "METHODS: ...", "Patients and methods: ...".
_SECTION_LABEL = re.compile(r"[ \t]{0,4}([A-Za-z][A-Za-z ,&/()-]{1,60}?)[ \t]{0,2}:[ \t]")
# A line end, or a full stop before a capital or a digit (so "0.05", "vs. the" and "e.g. a" go on).
_SENTENCE_END = re.compile(r"[.!?\n](?:(?<=\n)|(?=[\s\"')\]]{0,3}\s[\"'(\[]?[A-Z0-9]))")

SECTION_KINDS = {
    "background": ("background", "introduction", "context", "rationale", "importance", "significance", "aim",
                   "aims", "purpose", "objective", "objectives", "goal", "question", "hypothesis", "aim of work"),
    "methods": ("method", "methods", "design", "setting", "settings", "patients", "participants", "subjects",
                "intervention", "interventions", "measurement", "measurements", "materials", "data sources",
                "study selection", "data extraction", "study design", "population", "eligibility", "exposure",
                "main outcome", "outcome", "outcomes", "case", "case presentation", "case report", "case summary",
                "search", "review methods", "sources", "selection"),
    "results": ("result", "results", "findings", "data synthesis", "main results", "measurements and main results",
                "synthesis", "evidence synthesis"),
    "conclusions": ("conclusion", "conclusions", "interpretation", "discussion", "implications", "conclusion and "
                    "relevance", "conclusions and relevance", "summary", "significance", "clinical relevance"),
}
_LONGEST_UNLABELLED_BACKGROUND = 4  # sentences
_SECTION_OF_WORD = {word: kind for kind, words in SECTION_KINDS.items() for word in words}

# Sentences that speak about the study at hand (not about earlier work).
SELF_REFERENCE = re.compile(
    r"\b(?:we|our|this (?:(?:prospective|retrospective|randomi[sz]ed|double-blind(?:ed)?|observational|pilot|"
    r"multicent(?:re|er)|single-cent(?:re|er)|cohort|cross-sectional|clinical|systematic|secondary|registry|"
    r"case-control|population-based|national|nationwide|international|comparative|controlled|open-label) ){0,3}"
    r"(?:study|trial|review|analysis|meta-analysis|investigation|work|paper|article|report|audit|survey|series)|"
    r"(?:the )?(?:present|current) (?:study|trial|review|investigation|analysis)|aimed to|aims? to|was designed|"
    r"were (?:enrolled|randomi[sz]ed|recruited|included|studied)|(?:the|our) (?:aim|objective|purpose|goal)s? "
    r"(?:of|was|were))\b")
GATES: dict[str, tuple[str, ...]] = {
    "text.self": ("we ", "we,", "we'", "we\n", "our ", "our\n", "this ", "present ", "current ", "aimed to",
                  "aim to", "aims to", "was designed", "were enrolled", "were randomi", "were recruited",
                  "were included", "were studied", "aim of", "aims of", "aim was", "aims were", "objective",
                  "purpose", "goal"),
}


def normalise(text: str) -> str:
    """The text with odd characters replaced one for one and markup masked by spaces: the same length."""
    plain = _ODD_CHARACTER.sub(lambda match: _CHARACTERS[match.group()], text)
    if "<" in plain and _has_tag(plain):
        plain = _TAG.sub(lambda match: " " * len(match.group()), plain)
    return plain


def _has_tag(text: str) -> bool:
    position = text.find("<")
    while position >= 0:
        following = text[position + 1:position + 2]
        if following.isalpha() or following == "/":
            return True
        position = text.find("<", position + 1)
    return False


def lower_same_length(text: str) -> str:
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(char.lower() if len(char.lower()) == 1 else char for char in text)


class Sentence(NamedTuple):
    number: int  # its place in the text, the title 0
    start: int
    end: int
    section: str  # "title", "background", "methods", "results", "conclusions" or "none" (no label seen)
    background: bool  # about earlier work or the problem, not about the study at hand


class Document:
    """The text as given, its normalised and lower-cased copies, its sentences and its keywords."""

    def __init__(self, title: str, text: str, scan: Callable[[str], dict[str, list[tuple[int, int, str]]]]) -> None:
        """`scan(lower_case_text)`: every keyword stem the rules gate on, by family (tracker/facts/keywords.py)."""
        self.text = text
        self.title_end = len(title)
        self.plain = normalise(text)
        self.low = lower_same_length(self.plain)
        self.hits = scan(self.low)
        self.sentences = _sentences(self.plain, self.low, self.title_end, self.hits.get("text.self", []))
        self._starts = [sentence.start for sentence in self.sentences]
        self._gated: dict[str, list[Sentence]] = {}

    def sentence_at(self, offset: int) -> Sentence:
        return self.sentences[self.sentence_index(offset)]

    def sentence_index(self, offset: int) -> int:
        return max(0, bisect.bisect_right(self._starts, offset) - 1)

    def gated(self, family: str) -> list[Sentence]:
        """The sentences where a stem of the family stands, in text order."""
        gated = self._gated.get(family)
        if gated is None:
            hits = self.hits.get(family)
            if not hits:
                gated = []
            else:
                indexes = sorted({bisect.bisect_right(self._starts, start) - 1 for start, _end, _stem in hits})
                gated = [self.sentences[max(0, index)] for index in indexes]
            self._gated[family] = gated
        return gated

    def has(self, family: str) -> bool:
        return family in self.hits

    def find(self, family: str, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        """Every match of the pattern in the sentences the family gates (a match does not cross sentences)."""
        return [match for sentence in self.gated(family)
                for match in pattern.finditer(self.low, sentence.start, sentence.end)]

    def search(self, family: str, pattern: re.Pattern[str], start: int = 0, end: int | None = None) -> bool:
        """Whether the pattern matches in low[start:end], read only where the family has a stem."""
        end = len(self.low) if end is None else end
        hits = self.hits.get(family)
        if not hits or not any(start <= hit_start < end for hit_start, _end, _stem in hits):
            return False
        return pattern.search(self.low, start, end) is not None

    @cached_property
    def structured(self) -> bool:
        return any(sentence.section != "none" for sentence in self.sentences[1:])

    @cached_property
    def abstract_low(self) -> str:
        return self.low[self.title_end + 1:]

    @property
    def title_low(self) -> str:
        return self.low[:self.title_end]


def _section_kind(label: str) -> str:
    words = label.strip().lower()
    if words in _SECTION_OF_WORD:
        return _SECTION_OF_WORD[words]
    for part in re.split(r"\s*(?:,|&|/|\band\b)\s*", words):
        if part in _SECTION_OF_WORD:
            return _SECTION_OF_WORD[part]
    return "other"


def _sentences(plain: str, low: str, title_end: int, self_hits: list[tuple[int, int, str]]) -> list[Sentence]:
    sentences = [Sentence(0, 0, title_end, "title", False)]
    section = "none"
    pieces: list[tuple[int, int, str]] = []
    start = title_end + 1
    line_start = True
    ends = [match.end() for match in _SENTENCE_END.finditer(plain, start)]
    if not ends or ends[-1] < len(plain):
        ends.append(len(plain))
    for end in ends:
        if line_start:
            label = _SECTION_LABEL.match(plain, start, end)
            if label:
                kind = _section_kind(label.group(1))
                if kind != "other" or label.group(1)[:1].isupper():
                    section = kind if kind != "other" else "none"
        if not plain[start:end].isspace() and end > start:
            pieces.append((start, end, section))
        line_start = plain[end - 1] == "\n"
        start = end
    structured = any(piece_section != "none" for _start, _end, piece_section in pieces)
    if structured:
        for index, (start, end, piece_section) in enumerate(pieces):
            background = piece_section == "background" and not _refers_to_itself(low, self_hits, start, end)
            sentences.append(Sentence(index + 1, start, end, piece_section, background))
        return sentences
    # An unstructured abstract opens with its background when it turns to "this study"/"we" within a few
    # sentences; one that never does, or only late, is read as all about the study.
    opening = next((index for index, (start, end, _section) in enumerate(pieces[:_LONGEST_UNLABELLED_BACKGROUND + 1])
                    if _refers_to_itself(low, self_hits, start, end)), 0)
    sentences += [Sentence(index + 1, start, end, piece_section, index < opening)
                  for index, (start, end, piece_section) in enumerate(pieces)]
    return sentences


def _refers_to_itself(low: str, hits: list[tuple[int, int, str]], start: int, end: int) -> bool:
    """Whether the sentence speaks of the study at hand; read around its stems only (a match starts at most a few
    characters before its stem and ends within a few words after it)."""
    index = bisect.bisect_left(hits, (start,))
    while index < len(hits) and hits[index][0] < end:
        stem_start = hits[index][0]
        if SELF_REFERENCE.search(low, max(start, stem_start - 8), min(end, stem_start + 80)):
            return True
        index += 1
    return False
