"""What is left to find while screening in relevance order, and when it is safe to stop.

Pure functions of the screening history (no database): `estimate_stopping(history, total)` takes the decisions
in the order they were taken, True for a relevant record, and the number of records of the topic, screened or
not, and returns a StoppingEstimate (or TooFewDecisions); `describe(estimate)` phrases it for people.

Relevant: an inclusion or a maybe (`counts_as_relevant`). Counting a maybe as relevant is the conservative
side: a maybe found late keeps the test below from declaring the search done, and a maybe is a paper the review
still has to read in full, so the recall promised is over every paper that may matter.

The default method, `hypergeometric`, is the stopping criterion of Callaghan and Müller-Hansen, "Statistical
stopping criteria for automated screening in systematic reviews", Systematic Reviews 9:273 (2020),
doi:10.1186/s13643-020-01521-4, as their buscarpy/buscarR packages compute it. Each run of the last n_w screened
records is treated as a sample drawn without replacement from itself and the unscreened records (N - n + n_w
records). Under H0, "recall < target", the topic holds at least floor(found / target) + 1 relevant records, so
that population holds at least K_w = floor(found / target) + 1 - (relevant screened before the run); the
probability of seeing no more than the k_w relevant records the run holds is the hypergeometric CDF
P(X <= k_w; N - n + n_w, K_w, n_w). The p-value is the smallest over every run length n_w = 1 .. n, and H0 is
rejected (safe to stop) when it is below 1 - confidence. Relevance order makes the last records screened richer
in relevant ones than the unscreened, so a run read as a random sample overstates what is left: the test errs
towards screening on. That reading needs the recent decisions to have been taken in relevance order (or at
random, as before ranking starts); a run screened in an order that puts relevant records last, such as newest
first in a topic whose relevant papers are older, would understate what is left, so the estimate belongs on
pages that screen in relevance order.

One thing differs from buscarpy's arithmetic, not its result: only the longest run holding each count of
relevant records is computed (the one that starts just after a relevant record), because a longer run with the
same count always has the smaller CDF (a run one record longer adds an irrelevant record to both sample and
population, which can only make a low count less likely), so the minimum is the same over r + 1 runs as over
all n (tests/test_stopping.py checks it against the all-runs formula). The CDF is summed here
(`hypergeometric_cdf`) rather than taken from scipy.stats, whose import costs 0.6-2 s of a command's start-up.

The same statistic bounds what is left: the largest number of relevant records among the unscreened that the
test does not reject at 1 - confidence is the upper bound ("at most 11"), and the largest it does not reject
at one half the estimate ("about 3"); recall's lower bound at that confidence is found / (found + upper bound).
The bound at confidence c and the test at target t agree: the test says stop exactly when that lower bound
reaches t.

The other method, `knee`, is the knee method of Cormack and Grossman, "Engineering quality and reliability in
technology-assisted review", SIGIR 2016, doi:10.1145/2911451.2911510: the knee of the gain curve (relevant
found against records screened) is the point farthest above the straight line from its start to its end
(Satopää et al.'s Kneedle difference curve, unsmoothed); the slope ratio is the rate of relevant records
before the knee over the rate after it, one relevant record added after (rho = (r_knee / knee) /
((r - r_knee + 1) / (n - knee))); stop when rho >= 156 - min(r, 150) once at least 150 records are screened.
It promises no recall; its StoppingEstimate carries the hypergeometric figures of what is left beside its
own decision.

Measured on the Cohen 2006 datasets (`python -m benchmarks --only stopping`: 50 simulated screenings of each of
the four in the tracker's relevance order, every rule asked after every decision; BENCHMARKS.md, stopping): the
hypergeometric test said stop with records left in all 200 runs, and recall there reached its target in all 200.
At a target of 95 %: recall 0.990 on average, 0.962 at the lowest, with 0.180 of the records left unscreened on
average (0.070-0.363); at 90 %: 0.982, 0.946 and 0.281. The knee method never said stop before the last record:
with 78-92 relevant records found its slope ratio has to reach 64-78, and a topic of a few hundred records
leaves too few after the knee for the rate there (one relevant record added) to fall that far. Hence the
defaults: the hypergeometric test, and a target of 95 %, the recall systematic reviews conventionally report
(WSS@95) and Callaghan and Müller-Hansen's own; at 90 % the claim held too, but recall fell as low as 0.946 for
another 0.10 of the records saved. Either way the promise has a price: relevance order had found 95 % of these
topics' inclusions after 24-72 % of their records (BENCHMARKS.md, ranking), and the test stops only once the
rate of relevant records has stayed low for long enough to say so (after 69-91 % on average).

"About N left" overstates what is left while relevant records still come often: over whole runs by 35 relevant
records on average, by 6 once 90 % were found, because the last records screened, read as a sample of the rest,
are richer than the rest. "At most M" held after 99.9 % of the decisions. MIN_DECISIONS keeps figures built on
the first handful of decisions off the page; no count of decisions makes the early figure good (it depends on how
far the rate of relevant records has fallen, not on how many decisions there are), and the minimum held no stop
back: the earliest came after 230 decisions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

HYPERGEOMETRIC = "hypergeometric"
KNEE = "knee"
METHODS = (HYPERGEOMETRIC, KNEE)

TARGET_RECALL = 0.95
CONFIDENCE = 0.95
MIN_DECISIONS = 20

KNEE_SLOPE_RATIO = 156
KNEE_RELEVANT_CAP = 150
KNEE_MIN_SCREENED = 150

RELEVANT_DECISIONS = ("include", "maybe")
IRRELEVANT_DECISIONS = ("exclude",)


@dataclass(frozen=True)
class StoppingEstimate:
    """What the history says about the relevant records still unscreened, and whether to stop."""

    method: str
    screened: int
    unscreened: int
    found: int  # relevant records among the screened
    estimated_remaining: int  # among the unscreened: the largest count the test does not reject at one half
    remaining_upper: int  # the largest count it does not reject at 1 - confidence
    target_recall: float
    confidence: float
    p_value: float  # Callaghan and Müller-Hansen's, of H0 "recall < target_recall"
    slope_ratio: float  # Cormack and Grossman's knee slope ratio (0.0 before any relevant record)
    safe_to_stop: bool  # by `method`

    @property
    def estimated_recall(self) -> float:
        return _share(self.found, self.found + self.estimated_remaining)

    @property
    def recall_lower_bound(self) -> float:
        """Recall is at least this, with `confidence`."""
        return _share(self.found, self.found + self.remaining_upper)


@dataclass(frozen=True)
class TooFewDecisions:
    """Not enough history to say what is left: `needed` more decisions first."""

    screened: int
    needed: int

    @property
    def safe_to_stop(self) -> bool:
        return False


def counts_as_relevant(decision: str) -> bool:
    """A decision as the stopping estimate reads it: include and maybe are relevant, exclude is not."""
    if decision in RELEVANT_DECISIONS:
        return True
    if decision in IRRELEVANT_DECISIONS:
        return False
    known = ", ".join(RELEVANT_DECISIONS + IRRELEVANT_DECISIONS)
    raise ValueError(f"unknown decision {decision!r}: a decision is one of {known}")


def relevant_history(decisions: Iterable[str]) -> list[bool]:
    return [counts_as_relevant(decision) for decision in decisions]


def estimate_stopping(history: Sequence[bool], total: int, *, target_recall: float = TARGET_RECALL,
                      confidence: float = CONFIDENCE, method: str = HYPERGEOMETRIC,
                      min_decisions: int = MIN_DECISIONS) -> StoppingEstimate | TooFewDecisions:
    """The estimate after `history` (True: relevant, in the order screened) among `total` records in all."""
    _check(history, total, target_recall, confidence)
    if method not in METHODS:
        raise ValueError(f"unknown stopping method {method!r}: use one of {', '.join(METHODS)}")
    screened = len(history)
    if screened < min(min_decisions, total):
        return TooFewDecisions(screened, min(min_decisions, total) - screened)
    runs = _Runs.of(history, total)
    p_value = runs.p_value(target_recall)
    slope_ratio = knee_slope_ratio(history)
    if method == HYPERGEOMETRIC:
        safe = p_value < 1 - confidence
    else:
        safe = _knee_stops(screened, runs.found, slope_ratio, KNEE_MIN_SCREENED)
    return StoppingEstimate(method=method, screened=screened, unscreened=runs.unscreened, found=runs.found,
                            estimated_remaining=runs.largest_not_rejected(0.5) - runs.found,
                            remaining_upper=runs.largest_not_rejected(1 - confidence) - runs.found,
                            target_recall=target_recall, confidence=confidence, p_value=p_value,
                            slope_ratio=slope_ratio, safe_to_stop=safe)


def hypergeometric_p_value(history: Sequence[bool], total: int, target_recall: float = TARGET_RECALL) -> float:
    """Callaghan and Müller-Hansen's p-value of H0 "recall < target_recall" (1.0 before any decision)."""
    _check(history, total, target_recall, CONFIDENCE)
    return _Runs.of(history, total).p_value(target_recall)


def remaining_upper_bound(history: Sequence[bool], total: int, confidence: float = CONFIDENCE) -> int:
    """The most relevant records the unscreened can hold without the test rejecting it at 1 - confidence."""
    _check(history, total, TARGET_RECALL, confidence)
    runs = _Runs.of(history, total)
    return runs.largest_not_rejected(1 - confidence) - runs.found


def knee_slope_ratio(history: Sequence[bool]) -> float:
    """Cormack and Grossman's slope ratio at the knee of the gain curve (0.0 before any relevant record)."""
    gains = list(itertools.accumulate(int(relevant) for relevant in history))
    screened = len(gains)
    if screened < 2 or gains[-1] == 0:
        return 0.0
    found = gains[-1]
    knee = max(range(1, screened), key=lambda position: screened * gains[position - 1] - position * found)
    before = gains[knee - 1]
    return (before / knee) / ((found - before + 1) / (screened - knee))


def knee_says_stop(history: Sequence[bool], *, min_screened: int = KNEE_MIN_SCREENED) -> bool:
    return _knee_stops(len(history), int(sum(history)), knee_slope_ratio(history), min_screened)


def describe(estimate: StoppingEstimate | TooFewDecisions) -> str:
    """The estimate for people, as the screening page, `tracker screen list` and `tracker prisma` print it."""
    if isinstance(estimate, TooFewDecisions):
        return f"too few decisions in relevance order to estimate what is left: {estimate.needed:,} more"
    found, unscreened, upper = estimate.found, estimate.unscreened, estimate.remaining_upper
    if not unscreened:
        if not found:
            return f"every record screened ({estimate.screened:,}): no relevant paper among them"
        return f"every record screened ({estimate.screened:,}): all {found:,} relevant {_papers(found)} found"
    confidence, target = _percent(estimate.confidence), _percent(estimate.target_recall)
    if not upper:
        left = f"none left among {unscreened:,} unscreened"
    elif not estimate.estimated_remaining:
        left = f"probably none left among {unscreened:,} unscreened, at most {upper:,}"
    else:
        left = f"about {estimate.estimated_remaining:,} left among {unscreened:,} unscreened, at most {upper:,}"
    if found:
        share = _floor_percent(found, found + estimate.estimated_remaining)
        lowest = _floor_percent(found, found + upper)
        claim = "all are" if lowest == 100 else f"at least {lowest} % are"
        said = f"an estimated {share} % of the relevant papers found ({left}); {confidence} % confidence that {claim}"
    else:
        said = f"no relevant paper found yet ({left}, with {confidence} % confidence)"
    if estimate.method == KNEE:
        verdict = "stop" if estimate.safe_to_stop else "keep screening"
        return f"{said}; the knee method says {verdict} (slope ratio {estimate.slope_ratio:,.0f})"
    if estimate.safe_to_stop:
        return f"{said}: safe to stop at the {target} % target"
    return f"{said}: keep screening for the {target} % target"


@dataclass(frozen=True)
class _Runs:
    """The runs of the last screened records that the test reads: for each count of relevant records k, the
    longest run holding k, as (length, k) pairs, most recent first."""

    found: int
    unscreened: int
    runs: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, history: Sequence[bool], total: int) -> _Runs:
        screened = len(history)
        positions = [index for index, relevant in enumerate(history) if relevant]
        found = len(positions)
        # The run holding k relevant records at most starts just after the (k + 1)-th relevant from the end.
        starts = [positions[found - 1 - k] + 1 for k in range(found)] + [0]
        runs = tuple((screened - start, k) for k, start in enumerate(starts) if screened > start)
        return cls(found, total - screened, runs)

    def smallest_cdf(self, relevant_total: int, *, below: float = 1.0) -> float:
        """The test's statistic if the topic held `relevant_total` relevant records (at most found + unscreened):
        the smallest CDF over the runs, exact whenever it is below `below` (otherwise some value >= `below`)."""
        smallest = 1.0
        if relevant_total <= self.found:
            return smallest
        for length, relevant in self.runs:
            population, in_population = self.unscreened + length, relevant_total - self.found + relevant
            bound = min(smallest, below)
            if _cdf_lower_bound(relevant, population, in_population, length) >= bound:
                continue
            smallest = min(smallest, hypergeometric_cdf(relevant, population, in_population, length))
        return smallest

    def p_value(self, target_recall: float) -> float:
        least_under_h0 = math.floor(self.found / target_recall) + 1
        if least_under_h0 - self.found > self.unscreened:
            return 0.0  # the unscreened cannot hold enough relevant records for recall to be below target
        return self.smallest_cdf(least_under_h0)

    def largest_not_rejected(self, level: float) -> int:
        """The largest total of relevant records whose statistic is at least `level` (it falls as the total grows)."""
        low = self.found
        ceiling = self.found + self.unscreened
        step = 1
        while True:  # gallop up: bounds are usually small beside the unscreened
            high = min(low + step, ceiling)
            if high == low or self.smallest_cdf(high, below=level) >= level:
                if high == ceiling:
                    return ceiling
                low, step = high, 2 * step
            else:
                break
        while high - low > 1:  # statistic(low) >= level > statistic(high)
            middle = (low + high) // 2
            if self.smallest_cdf(middle, below=level) >= level:
                low = middle
            else:
                high = middle
        return low


def hypergeometric_cdf(successes_drawn: int, population: int, successes: int, draws: int) -> float:
    """P(X <= successes_drawn) for X the successes among `draws` drawn without replacement from `population`
    holding `successes`, as scipy.stats.hypergeom.cdf(k, M, n, N). Only the tail away from the mode is summed
    (below the mode, P(X <= k) from k down; above it, 1 - P(X > k) from k + 1 up), term by term from the one
    nearest the mode, until what is left is below 1e-16 of the sum: the distribution is log-concave, so the
    terms fall ever faster and a bound on the rest is the last term's geometric series."""
    failures = population - successes
    lowest, highest = max(0, draws - failures), min(draws, successes)
    if successes_drawn < lowest:
        return 0.0
    if successes_drawn >= highest:
        return 1.0
    mode = min(max((draws + 1) * (successes + 1) // (population + 2), lowest), highest)

    def log_probability(drawn: int) -> float:
        return (_log_choose(successes, drawn) + _log_choose(failures, draws - drawn)
                - _log_choose(population, draws))

    def ratio_up(drawn: int) -> float:  # P(drawn + 1) / P(drawn)
        return (successes - drawn) * (draws - drawn) / ((drawn + 1) * (failures - draws + drawn + 1))

    lower = successes_drawn < mode
    # The lower tail from successes_drawn down, or the upper tail from successes_drawn + 1 up (then 1 - it).
    drawn, last, step = (successes_drawn, lowest, -1) if lower else (successes_drawn + 1, highest, 1)
    term = math.exp(log_probability(drawn))
    tail = term
    while drawn != last:
        ratio = ratio_up(drawn) if step > 0 else 1 / ratio_up(drawn - 1)
        if ratio < 1 and term * ratio / (1 - ratio) < 1e-16 * tail:
            break
        term *= ratio
        drawn += step
        tail += term
    return min(1.0, tail) if lower else max(0.0, 1.0 - tail)


def _cdf_lower_bound(successes_drawn: int, population: int, successes: int, draws: int) -> float:
    """A cheap floor under hypergeometric_cdf: Hoeffding's P(X >= mean + t) <= exp(-2 t^2 / draws), which holds
    for draws without replacement (Hoeffding 1963, section 6). It lets the runs far above their mean, the old
    ones rich in relevant records, be skipped without changing the smallest CDF."""
    excess = successes_drawn + 1 - draws * successes / population
    return 1.0 - math.exp(-2 * excess * excess / draws) if excess > 0 else 0.0


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _knee_stops(screened: int, found: int, slope_ratio: float, min_screened: int) -> bool:
    return screened >= min_screened and slope_ratio >= KNEE_SLOPE_RATIO - min(found, KNEE_RELEVANT_CAP)


def _check(history: Sequence[bool], total: int, target_recall: float, confidence: float) -> None:
    if total < len(history):
        raise ValueError(f"{len(history):,} decisions among {total:,} records: the total counts every record of "
                         "the topic, screened or not")
    if not 0 < target_recall <= 1:
        raise ValueError(f"the target recall is a share above 0 and at most 1, not {target_recall}")
    if not 0 < confidence < 1:
        raise ValueError(f"the confidence is a share between 0 and 1, not {confidence}")


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 1.0


def _floor_percent(part: int, whole: int) -> int:
    return 100 * part // whole


def _percent(share: float) -> str:
    return f"{share * 100:g}"


def _papers(count: int) -> str:
    return "paper" if count == 1 else "papers"
