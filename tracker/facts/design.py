"""The study design: from the publication types when they name one, else from the words of the title and abstract.

Words count by where they stand: in the title most, then in a Design or Methods section or a sentence about the
study at hand ("we", "this study", "patients were randomised"), least in other sentences; sentences about
earlier work ("several randomised trials have shown", a review's "randomized control studies have been
published") and a structured abstract's Background count not at all. The designs are then tried in an order
that settles the usual conflicts: a protocol before the trial it describes, a systematic review of randomised
trials before "randomised", animals before "prospective trial", a case report before "retrospective review",
"prospective observational" as observational, and "non-randomised" before "randomised".

Some words name a way of collecting data rather than a kind of paper: records, charts or patients "reviewed"
are a retrospective chart review (observational), writings reviewed a review; a series of more than five
patients is observational, a few a case report; a letter ("we read with interest") is a review; a text with
no data of its own (no counted participants, statistics, Methods or Results, nobody randomised or enrolled)
that mentions a randomised trial only outside a sentence about itself speaks of others' trials.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tracker.facts.model import Span
from tracker.facts.numbers import WORD_NUMBER, count
from tracker.facts.text import Document, Sentence

_BY_PUBLICATION_TYPE: tuple[tuple[str, frozenset[str]], ...] = (
    ("guideline", frozenset({"practice guideline", "guideline", "consensus development conference",
                             "consensus development conference, nih"})),
    ("systematic review", frozenset({"meta-analysis", "systematic review", "network meta-analysis"})),
    ("protocol", frozenset({"clinical trial protocol"})),
    ("rct", frozenset({"randomized controlled trial", "randomized controlled trial, veterinary"})),
    ("case report", frozenset({"case reports"})),
    ("observational", frozenset({"observational study", "observational study, veterinary"})),
    ("review", frozenset({"review", "scoping review", "editorial", "comment", "news", "newspaper article",
                          "historical article", "biography", "interview", "lecture", "address"})),
)
# Publication types that say "a trial" without saying whether it was randomised: the text decides which.
_TRIAL_TYPES = frozenset({"clinical trial", "clinical trial, phase i", "clinical trial, phase ii",
                          "clinical trial, phase iii", "clinical trial, phase iv", "controlled clinical trial",
                          "equivalence trial", "pragmatic clinical trial", "adaptive clinical trial",
                          "clinical trial, veterinary"})

_CUES: dict[str, re.Pattern[str]] = {
    "protocol": re.compile(r"\b(?:study protocol|trial protocol|protocol for an?|protocol of an?|this protocol|"
                           r"rationale and design|design and rationale|statistical analysis plan|will be (?:randomi[sz]ed|"
                           r"enrolled|recruited|assigned|allocated))\b"),
    "guideline": re.compile(r"\b(?:guidelines?|consensus statement|consensus recommendations?|expert consensus|"
                            r"position (?:statement|paper)|practice parameters?|delphi)\b"),
    "systematic review": re.compile(r"\b(?:systematic(?:al)?(?:ally)? (?:review|search|literature)|meta-?analy[sz]\w*|"
                                    r"metaanaly\w*|meta analy\w*|pooled analysis|network meta|umbrella review|"
                                    r"trial sequential analysis|prisma)\b"),
    "database search": re.compile(r"\b(?:searched|search of|searching)\b[^;]{0,120}\b(?:pubmed|medline|embase|"
                                  r"cochrane|web of science|scopus|cinahl|databases?|central)\b|\b(?:pubmed|medline|"
                                  r"embase|cochrane|web of science|scopus|cinahl)\b[^;]{0,120}\b(?:were|was) searched\b"),
    "animal or laboratory": re.compile(
        r"\b(?:rats?|mice|mouse|murine|rodents?|pigs?|piglets?|swine|porcine|sheep|ovine|lambs?|ewes?|dogs?|canine|"
        r"rabbits?|cats?|feline|horses?|equine|cattle|bovine|calves|monkeys?|primates?|baboons?|hamsters?|guinea pigs?|"
        r"zebrafish|animal models?|animals|in vitro|ex vivo|isolated (?:\w+ ){0,2}(?:arteries|artery|vessels?|hearts?|"
        r"tissues?|cotyledons?|rings?|cells?|muscles?|strips?|perfused)|cell cultures?|cultured (?:\w+ )?cells|"
        r"cell lines?|organ baths?|myograph\w*|placental model|perfused (?:human )?placenta|in silico|simulation model|"
        r"pharmacokinetic model)\b"),
    # Tissue studied outside the body: a laboratory study even when the tissue came from patients.
    "tissue": re.compile(r"\b(?:in vitro|ex vivo|isolated (?:\w+ ){0,2}(?:arteries|artery|vessels?|veins?|hearts?|tissues?|"
                         r"cotyledons?|rings?|muscles?|strips?)|organ baths?|myograph\w*|perfused (?:human )?placenta|"
                         r"placental model)\b"),
    "human volunteers": re.compile(r"\b(?:healthy (?:human )?(?:volunteers|subjects|adults|men|women)|volunteers|"
                                   r"patients|parturients|women|children|neonates)\b"),
    "case report": re.compile(r"\b(?:case reports?|case presentation|(?:a|an) (?:rare |unusual |unique |fatal |"
                              r"challenging |unexpected )?case of|(?:this|the present|our) (?:\w+ )?case\b(?!-)|"
                              r"(?:present|report|describe)\w* the (?:\w+ )?case of|"
                              r"cases? (?:is|are) (?:reported|described|presented)|"
                              r"(?:a|an) \d{1,3}-(?:year|month|week|day)-old|case series of (?:two|three|four|five|[1-5]) )"),
    "case described": re.compile(r"\bwe (?:have )?(?:report|reported|describe|described|present|presented) (?:a|an|two|three|"
                                 r"four|five|the first|\d) (?:\w+ ){0,4}?(?:case|patient|woman|man|girl|boy|infant|neonate|"
                                 r"parturient|course)s?\b|\b(?:a|an) (?:young|elderly|older|pregnant|previously healthy) "
                                 r"(?:\w+ ){0,3}?(?:man|woman|boy|girl|patient|infant|parturient|recipient)\b"),
    "non-randomised": re.compile(r"\b(?:non-?randomi[sz]ed|not randomi[sz]ed|without randomi[sz]ation|"
                                 r"non-?random)\b"),
    "rct": re.compile(r"\b(?:randomi[sz]ed(?! order| sequence| samples?\b| effects?\b)|randomi[sz]ation|"
                      r"randomly (?:assigned|allocated|divided|distributed|received|receive|split|chosen to receive|"
                      r"stratified)|random allocation|random-allocation|random assignment|random number|"
                      r"computer-generated random|(?:double|triple|single|quadruple)[- ]blind\w*|placebo-controlled|"
                      r"cross-?over (?:trial|study|design)|sealed envelope|rct)\b"),
    "dose-finding": re.compile(r"\b(?:up-and-down|up and down|up-down|updown|biased[- ]coin|sequential allocation|"
                               r"dixon|narayana|dose[- ]?finding|dose[- ]?response (?:study|trial)|dose[- ]?escalation|"
                               r"continual reassessment|isotonic regression|open[- ]?label|single[- ]?arm|"
                               r"phase (?:i|1|ii|2|i/ii) (?:trial|study)|"
                               r"pilot (?:trial|study)|feasibility (?:trial|study)|(?:prospective|interventional) "
                               r"(?:\w+ ){0,3}?(?:trial|study)|consecutive patients|crossover|healthy volunteers)\b"),
    "observational": re.compile(r"\b(?:retrospective\w*|cohort|case[- ]?control|cross[- ]?sectional|registry|"
                                r"registries|observational|chart review|medical records?|database|propensity|audit|"
                                r"before[- ]and[- ]after|prospectively collected|survey\w*|questionnaires?|"
                                r"respondents|response rate|epidemiolog\w*|population-based|real-world|"
                                r"secondary analysis|post hoc analysis|quality improvement|"
                                # "we reviewed the records of", "charts were reviewed": how the data were collected.
                                r"review(?:ed|ing)?\s(?:of\s)?(?:the\s|all\s)?(?:[\w,-]+\s){0,3}?(?:records|charts|"
                                r"notes|files|databases?|admissions)|(?:records|charts|notes|files)\s(?:\w+\s){0,6}?"
                                r"(?:were|was)\s(?:\w+\s)?reviewed)\b"),
    "review": re.compile(r"\b(?:review|reviews|overview|narrative|we discuss|this article|editorial|commentary|"
                         r"perspective|viewpoint|state of the art|update on|current (?:evidence|knowledge|concepts|"
                         r"literature)|literature|we summari[sz]e|summari[sz]es)\b"),
    # A text that calls itself a review: "this review", "we review", "a narrative review of", the title's "a review".
    "review itself": re.compile(r"\b(?:(?:this|the present|the current|our) (?:\w+ ){0,2}?(?:review|overview|article|"
                                r"paper|chapter|editorial|commentary)|we (?:\w+ ){0,2}?review\w*|(?:narrative|literature|"
                                r"comprehensive|critical|brief|clinical|updated|state-of-the-art|scoping|integrative|"
                                r"concise|short|mini) ?-?review|review of (?:the )?(?:current |recent |published )?"
                                r"(?:literature|evidence)|: a review\b|\breview article|"
                                # A letter on another paper: "we read with interest", "letter to the editor".
                                r"we read with (?:great )?interest|letter to the editor)"),
}
GATES: dict[str, tuple[str, ...]] = {
    "design.protocol": ("protocol", "rationale and design", "design and rationale", "analysis plan", "will be"),
    "design.guideline": ("guideline", "consensus", "position statement", "position paper", "practice parameter",
                         "recommendations", "delphi"),
    "design.systematic review": ("systematic", "meta", "pooled analysis", "umbrella review", "trial sequential",
                                 "prisma"),
    "design.database search": ("search", "pubmed", "medline", "embase", "cochrane", "web of science", "scopus",
                               "cinahl"),
    "design.animal or laboratory": (
        "rat ", "rats", "rat,", "rat.", "rat)", "mice", "mouse", "murine", "rodent", "pig", "swine", "porcine", "sheep",
        "ovine", "lamb", "ewe ", "ewes", "dog", "canine", "rabbit", "cat ", "cats", "cat,", "cat.", "feline", "horse",
        "equine", "cattle", "bovine", "calves", "monkey", "primate", "baboon", "hamster", "zebrafish", "animal",
        "in vitro", "ex vivo", "isolated", "cell culture", "cultured", "cell line", "organ bath", "myograph",
        "placental model", "perfused", "in silico", "simulation model", "pharmacokinetic model"),
    "design.tissue": ("in vitro", "ex vivo", "isolated", "organ bath", "myograph", "perfused", "placental model"),
    "design.human volunteers": ("volunteer", "patient", "parturient", "women", "children", "neonate", "healthy"),
    "design.case report": ("case report", "case presentation", "case of", "case is", "cases is", "case are",
                           "cases are", "-year-old", "-month-old", "-week-old", "-day-old", "case series", "this case",
                           "present case", "our case", "this rare case", "this unusual case", "this unexpected case",
                           " case"),
    "design.case described": ("we report", "we describe", "we present", "we have report", "we have describe",
                              "we have present", "young", "elderly", "older", "pregnant", "previously healthy"),
    "design.described": ("series", "we report", "we describe", "we present", "we have report", "we have describe",
                          "we have present", "cases are", "cases were", "patients are", "patients were"),
    "design.non-randomised": ("nonrandom", "non-random", "not randomi", "without randomi"),
    "design.rct": ("random", "blind", "placebo-controlled", "crossover", "cross-over", "cross over", "sealed envelope",
                   "rct"),
    "design.dose-finding": ("up-and-down", "up and down", "up-down", "updown", "biased", "sequential allocation",
                            "dixon", "narayana", "dose-finding", "dosefinding", "dose finding", "dose-response",
                            "doseresponse", "dose response", "dose-escalation", "doseescalation", "dose escalation",
                            "continual reassessment", "isotonic", "open-label", "openlabel", "open label", "single-arm",
                            "singlearm", "single arm", "phase ", "pilot", "feasibility", "prospective", "interventional",
                            "consecutive patients", "crossover", "healthy volunteers"),
    "design.observational": ("retrospective", "cohort", "case-control", "casecontrol", "case control",
                             "cross-sectional", "crosssectional", "cross sectional", "registry", "registries",
                             "observational", "chart review", "medical record", "database", "propensity", "audit",
                             "before-and-after", "before and after", "prospectively collected", "survey",
                             "questionnaire", "epidemiolog", "population-based", "real-world", "secondary analysis",
                             "post hoc analysis", "quality improvement", "respondents", "response rate",
                             "review"),
    "design.review itself": ("review", "overview", "article", "paper", "chapter", "editorial", "commentary",
                             "read with", "letter to"),
    "design.review": ("review", "overview", "narrative", "we discuss", "this article", "editorial", "commentary",
                      "perspective", "viewpoint", "state of the art", "update on", "current evidence",
                      "current knowledge", "current concepts", "current literature", "literature", "summari"),
    "design.other studies": ("studies", "trials", "have been", "have shown", "have demonstrated", "have reported",
                             "has been", "previous", "prior", "published", "literature", "recent", "earlier", "several",
                             "some", "evidence", "reported", "known"),
    "design.statistics": ("p<", "p <", "p=", "p =", "p>", "p >", "p≤", "p ≤", "p less", "p greater", "odds ratio",
                          "hazard ratio", "risk ratio", "95%", "95 %", "confidence interval", "±", "mean"),
    "design.results": ("p<", "p <", "p=", "p =", "p>", "p >", "p≤", "p ≤", "result", "were higher", "were lower",
                       "were similar", "were significant", "significant", "odds ratio", "hazard ratio", "95%", "mean",
                       "median", "incidence"),
    "design.this study": ("we ", "we,", "we'", "our ", "this ", "the present", "the current", "patients were",
                          "women were", "subjects were", "participants were", "parturients were", "children were"),
}

_OTHER_STUDIES = re.compile(r"\b(?:studies|trials|have (?:been|shown|demonstrated|reported)|has been|previous\w*|prior|"
                            r"published|literature|recent\w*|earlier|several|some|evidence|reported|known)\b")
_RESULTS_WORDS = re.compile(r"\b(?:p\s?[<=>≤]|results?:|were (?:higher|lower|similar|significant)|significant\w*|"
                            r"odds ratio|hazard ratio|95%|mean|median|incidence)\b")
_STATISTICS = re.compile(r"\bp\s?(?:[<=>≤]|less than|greater than)|\b(?:odds|hazard|risk) ratio|95\s?%|"
                         r"confidence interval|±|\bmean\b")
_COUNT_WORD = rf"\d{{1,4}}|{WORD_NUMBER.pattern[2:-2]}"
_OWN_STATISTICS = re.compile(r"\bp\s?(?:[<=>≤]|less than|greater than)|\b(?:odds|hazard|risk) ratio|95\s?%|"
                             r"confidence interval|±")
_NUMBER_BEFORE = re.compile(r"\d[\d,]*\s(?:[a-z-]+\s){0,3}?$")


@dataclass(frozen=True)
class DesignFinding:
    design: str
    source: str  # "publication type", "abstract" or "none"
    span: Span | None


def design_from_publication_types(publication_types: Sequence[str]) -> str | None:
    names = {name.strip().casefold() for name in publication_types}
    for design, types in _BY_PUBLICATION_TYPE:
        if names & types:
            return design
    return None


def read_design(document: Document, publication_types: Sequence[str] = (), mesh_terms: Sequence[str] = ()
                ) -> DesignFinding:
    names = {name.strip().casefold() for name in publication_types}
    typed = design_from_publication_types(publication_types)
    from_text = _design_from_text(document, {term.strip().casefold() for term in mesh_terms})
    if typed is None and names & _TRIAL_TYPES:
        if from_text.design in ("rct", "non-randomised trial"):
            return from_text
        return DesignFinding("non-randomised trial", "publication type", None)
    if typed == "review" and from_text.design in ("systematic review", "guideline"):
        return from_text  # "Review" is all a publisher may say of a systematic review before NLM indexes it
    if typed is not None:
        cue = from_text.span if from_text.design == typed else None
        return DesignFinding(typed, "publication type", cue)
    return from_text


@dataclass
class _Cue:
    strength: int  # 3 title, 2 design/methods section or a sentence about this study, 1 elsewhere
    span: Span


class _Cues:
    """The strongest cue of each design family, read only when the decision asks for that family."""

    def __init__(self, document: Document) -> None:
        self._document = document
        self._best: dict[str, _Cue | None] = {}
        self._about_others: dict[int, bool] = {}

    def get(self, name: str) -> _Cue | None:
        if name not in self._best:
            self._best[name] = self._read(name)
        return self._best[name]

    def strength(self, name: str) -> int:
        cue = self.get(name)
        return cue.strength if cue else 0

    def _read(self, name: str) -> _Cue | None:
        document, low, pattern = self._document, self._document.low, _CUES[name]
        best: _Cue | None = None
        for sentence in document.gated("design." + name):
            index = sentence.number
            for match in pattern.finditer(low, sentence.start, sentence.end):
                if index == 0:
                    strength = 3
                elif sentence.background:
                    # A labelled Background speaks of earlier work; an unlabelled opening may name the design.
                    strength = 0 if document.structured or self._others(sentence) else 1
                elif sentence.section == "methods" or document.search("design.this study", _THIS_STUDY,
                                                                       sentence.start, sentence.end):
                    strength = 2
                elif name in ("rct", "systematic review", "observational", "dose-finding") and self._others(sentence):
                    strength = 0
                else:
                    strength = 1
                if name == "rct" and _negated_randomisation(low, match.start()):
                    continue
                if strength and (best is None or strength > best.strength):
                    best = _Cue(strength, Span(match.start(), match.end()))
            if best is not None and best.strength == 3:
                break
        return best

    def _others(self, sentence: Sentence) -> bool:
        """Whether the sentence speaks of earlier work ("several randomised trials have shown")."""
        if sentence.number not in self._about_others:
            self._about_others[sentence.number] = self._document.search(
                "design.other studies", _OTHER_STUDIES, sentence.start, sentence.end)
        return self._about_others[sentence.number]


_THIS_STUDY = re.compile(r"\b(?:we|our|this|the present|the current|patients were|women were|subjects were|"
                         r"participants were|parturients were|children were)\b")


_LABORATORY_MATERIAL = re.compile(r"\b(?:specimens?|samples|chips|discs|disks|blocks|teeth|cultures?|cells|strips|"
                                  r"tissues?|wells|plates)\b")
_STUDY_ACTIONS = re.compile(r"\b(?:received|receiving|were (?:given|randomi[sz]ed|enrolled|included|allocated|assigned|"
                            r"infused|administered|studied|recruited|treated|analy[sz]ed|identified|followed)|"
                            r"was (?:given|infused|administered)|"
                            r"groups?|we (?:compared|studied|measured|enrolled|included|recruited|examined|"
                            r"investigated|assessed|evaluated|analy[sz]ed))\b")
_RECOMMENDS = re.compile(r"\b(?:recommend\w*|consensus)\b")
_RECORDS_REVIEWED = re.compile(r"(?:retrospective|chart|record|records|case-note|case note|notes)\s$")


_REVIEWED_PATIENTS = re.compile(r"[^.;]{0,80}?\b(?:patients|children|infants|neonates|adults|women|parturients|"
                                r"cases|admissions|episodes|deliveries|all (?:\w+ )?(?:who|with|admitted|undergoing))\b")
_REVIEWED_WRITINGS = re.compile(r"[^.;]{0,80}?\b(?:literature|evidence|studies|trials|articles|publications|"
                                r"guidelines|reports|papers|data on|knowledge|concepts|role|use of)\b")


def _reviewed_records(low: str, span: Span) -> bool:
    """"a retrospective review", "chart review", "we retrospectively reviewed all children admitted with ...": a
    way of collecting data, not a review article."""
    if _RECORDS_REVIEWED.search(low, max(0, span.start - 16), span.start) or \
            re.match(r"[^.;]{0,40}\b(?:records|charts|notes|files)\b", low[span.end:span.end + 60]):
        return True
    words = low[span.start:span.end]
    if "retrospectiv" in words:
        return True
    # "We reviewed 114 children ...": what a past "reviewed" reviewed is patients, not writings.
    return words.endswith("reviewed") and bool(_REVIEWED_PATIENTS.match(low, span.end, span.end + 90)) and \
        not _REVIEWED_WRITINGS.match(low, span.end, span.end + 90)


# More patients than "a few" described: a case series, which is observational ("a series of 14 patients").
_DESCRIBED = re.compile(rf"\b(?:case series|series) (?:of|including|comprising) ({_COUNT_WORD})\b|"
                        r"\bwe (?:have )?(?:report|reported|describe|described|present|presented) (?:a series of )?"
                        rf"({_COUNT_WORD}) (?:\w+ ){{0,2}}?(?:cases|patients)\b|"
                        rf"\b({_COUNT_WORD}) (?:\w+ ){{0,2}}?(?:cases|patients) (?:are|were) (?:reported|described|"
                        r"presented)\b")
_MOST_DESCRIBED_IN_A_CASE_REPORT = 5


def _many_described(document: Document) -> Span | None:
    for match in document.find("design.described", _DESCRIBED):
        number = count(next(group for group in match.groups() if group))
        if number is not None and number > _MOST_DESCRIBED_IN_A_CASE_REPORT:
            return Span(match.start(), match.end())
    return None


def _reports_data(document: Document) -> bool:
    """Whether the text reports data of its own: counted participants, statistics, a Methods or Results section,
    or a sentence about the study at hand that names a randomisation."""
    if _counts_participants(document) or document.search("design.statistics", _OWN_STATISTICS):
        return True
    if any(sentence.section in ("methods", "results") for sentence in document.sentences):
        return True
    return bool(re.search(r"\b(?:were|was) (?:\w+ )?(?:randomi[sz]ed|randomly|assigned|allocated|enrolled|"
                          r"included|recruited)\b", document.low))


def _counts_participants(document: Document) -> bool:
    """Whether a number stands before a participant noun ("42 patients", "110 healthy women")."""
    low = document.low
    for start, _end, _stem in document.hits.get("participants.noun", ()):
        if _NUMBER_BEFORE.search(low, max(0, start - 40), start):
            return True
    return False


def _negated_randomisation(low: str, position: int) -> bool:
    return bool(re.search(r"(?:non-?|not |without )$", low[max(0, position - 8):position]))


def _design_from_text(document: Document, mesh: set[str]) -> DesignFinding:
    if not document.low.strip():
        return DesignFinding("other", "none", None)
    cues = _Cues(document)
    low = document.low
    strength = cues.strength

    def found(design: str, cue_name: str) -> DesignFinding:
        cue = cues.get(cue_name)
        return DesignFinding(design, "abstract", cue.span if cue else None)

    if strength("protocol") >= 2 and not re.search(r"\bresults?:|\bp\s?[<=]\s?0?\.\d", low):
        return found("protocol", "protocol")
    if strength("guideline") >= 3 or (strength("guideline") >= 2 and _RECOMMENDS.search(low) and not strength("rct")):
        return found("guideline", "guideline")
    if strength("systematic review") >= 2 or (strength("systematic review") and strength("database search")):
        return found("systematic review", "systematic review")
    if strength("database search") >= 2:
        return found("systematic review", "database search")
    if strength("case report") >= 2 and strength("rct") < 2 and not _many_described(document):
        return found("case report", "case report")
    review_itself = cues.get("review itself")
    if review_itself and review_itself.strength >= 2 and not _reviewed_records(low, review_itself.span):
        return found("review", "review itself")
    animals = strength("animal or laboratory")
    mesh_animal = "animals" in mesh and "humans" not in mesh
    human = strength("human volunteers") if animals or mesh_animal else 0
    if animals == 3 or (animals >= 2 and human < 2) or (animals and not human) or (mesh_animal and not human):
        return found("animal or laboratory", "animal or laboratory")
    if animals >= 2 and strength("tissue") >= 2 and strength("rct") < 2:
        return found("animal or laboratory", "tissue")  # patients' tissue in an organ bath
    if strength("non-randomised") >= 1 and strength("non-randomised") >= strength("rct"):
        return found("non-randomised trial", "non-randomised")
    if strength("rct") == 1 and not _reports_data(document):
        pass  # a text with no data of its own that mentions a randomised trial speaks of others' trials
    elif strength("rct"):
        if _LABORATORY_MATERIAL.search(low) and not strength("human volunteers") and not _counts_participants(document):
            # Randomised samples, chips or specimens: a laboratory study.
            return found("animal or laboratory", "rct")
        return found("rct", "rct")
    many = _many_described(document) if strength("case report") or strength("case described") else None
    if many:
        return DesignFinding("observational", "abstract", many)  # a series of more than a few patients
    if strength("case report") or (strength("case described") >= 2 and strength("observational") < 2
                                   and strength("dose-finding") < 2):
        return found("case report", "case report" if strength("case report") else "case described")
    observational, trial = strength("observational"), strength("dose-finding")
    if observational and observational >= trial and not _prospective_intervention(low, cues):
        return found("observational", "observational")
    if trial:
        return found("non-randomised trial", "dose-finding")
    if observational:
        return found("observational", "observational")
    if strength("review"):
        return found("review", "review")
    # No word names a design: data reported (statistics, participants) make it a study of what was observed;
    # no data, a text about a subject.
    if not document.abstract_low.strip():
        return DesignFinding("other", "none", None)
    statistics = document.search("design.statistics", _STATISTICS)
    if statistics or (document.search("design.results", _RESULTS_WORDS) and _counts_participants(document)):
        return DesignFinding("observational", "abstract", None)
    if _STUDY_ACTIONS.search(low):
        return DesignFinding("other", "none", None)  # a study, of a design the text does not name
    return DesignFinding("review", "abstract", None)


def _prospective_intervention(low: str, cues: _Cues) -> bool:
    """A prospective dose-finding design outranks a passing "observational" word only when it is explicit."""
    trial, observational = cues.get("dose-finding"), cues.get("observational")
    if trial is None:
        return False
    words = low[trial.span.start:trial.span.end]
    return bool(re.search(r"up-?and-?down|up-?down|biased|sequential allocation|dose-?finding|dose-?escalation|"
                          r"continual reassessment|healthy volunteers", words)) and \
        (observational is None or trial.strength >= observational.strength)
