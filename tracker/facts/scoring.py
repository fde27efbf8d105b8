"""The gold set's scoring (SCHEMA.md, "Scoring"), written once for the tests and the benchmark.

    design         accuracy over records
    sample size    exact matches over the records whose label is not null; a number given where the label is null
                   is a false positive, counted in the denominator too (so guessing costs)
    population,    micro precision, recall and F1 over (record, value) pairs
    comparators
    doses          micro F1 over (record, drug, low, high, unit) tuples (amounts compared to six significant
                   digits); mode, timing and role accuracy over the matched tuples
    results        micro F1 over (record, kind, drug, value, unit) (not in the schema's scoring; reported apart)
    rct tier       recall and precision of the "rct" evidence tier over the records labelled rct, from designs
                   read with no publication types (a prediction's "tier" when it gives one, as the tracker's tier on
                   arrival does; else its design's)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker.facts.tiers import tier_of_design

Labels = Mapping[str, Any]


@dataclass(frozen=True)
class GoldRecord:
    id: str
    title: str
    abstract: str
    labels: Labels


@dataclass(frozen=True)
class PRF:
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positives + self.false_negatives
        return self.true_positives / wanted if wanted else 1.0

    @property
    def f1(self) -> float:
        precision, recall = self.precision, self.recall
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


@dataclass(frozen=True)
class Scores:
    records: int
    design: float
    sample_size: float
    sample_size_false_positives: int
    population: PRF
    comparators: PRF
    doses: PRF
    mode: float
    timing: float
    role: float
    results: PRF
    rct_tier: PRF
    misses: dict[str, list[str]] = field(default_factory=dict)  # field -> "record: expected / got", for reading


def load_gold(path: Path) -> list[GoldRecord]:
    records = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                records.append(GoldRecord(str(row["id"]), row.get("title") or "", row.get("abstract") or "",
                                          row["labels"]))
    return records


def _amount(value: float) -> float:
    return float(f"{float(value):.6g}")


def _dose_key(dose: Labels) -> tuple[str, float, float, str]:
    return (dose["drug"], _amount(dose["low"]), _amount(dose["high"]), dose["unit"])


def score(gold: Iterable[GoldRecord], predict: Callable[[GoldRecord], Labels]) -> Scores:
    """Scores of predict (gold record -> labels in the schema's shape) against the gold labels."""
    records = list(gold)
    design_right = 0
    size_right = size_wanted = size_false = 0
    counts: dict[str, list[int]] = {name: [0, 0, 0] for name in ("population", "comparators", "doses", "results", "rct")}
    matched = mode_right = timing_right = role_right = 0
    misses: dict[str, list[str]] = {}

    def miss(name: str, record: GoldRecord, expected: object, got: object) -> None:
        misses.setdefault(name, []).append(f"{record.id}: expected {expected!r}, got {got!r}")

    for record in records:
        expected, got = record.labels, predict(record)
        if got["design"] == expected["design"]:
            design_right += 1
        else:
            miss("design", record, expected["design"], got["design"])
        if expected["sample_size"] is None:
            if got["sample_size"] is not None:
                size_false += 1
                miss("sample_size", record, None, got["sample_size"])
        else:
            size_wanted += 1
            if got["sample_size"] == expected["sample_size"]:
                size_right += 1
            else:
                miss("sample_size", record, expected["sample_size"], got["sample_size"])
        for name in ("population", "comparators"):
            wanted, found = set(expected[name]), set(got[name])
            _add(counts[name], wanted, found)
            if wanted != found:
                miss(name, record, sorted(wanted), sorted(found))
        wanted_doses = {_dose_key(dose): dose for dose in reversed(expected["doses"])}
        found_doses = {_dose_key(dose): dose for dose in reversed(got["doses"])}
        _add(counts["doses"], set(wanted_doses), set(found_doses))
        if set(wanted_doses) != set(found_doses):
            miss("doses", record, sorted(set(wanted_doses) - set(found_doses)),
                 sorted(set(found_doses) - set(wanted_doses)))
        for key in set(wanted_doses) & set(found_doses):
            matched += 1
            for attribute, tally in (("mode", 0), ("timing", 1), ("role", 2)):
                right = wanted_doses[key].get(attribute, "given" if attribute == "role" else None) == \
                    found_doses[key][attribute]
                if right:
                    if tally == 0:
                        mode_right += 1
                    elif tally == 1:
                        timing_right += 1
                    else:
                        role_right += 1
                else:
                    miss(attribute, record, (key, wanted_doses[key].get(attribute)), found_doses[key][attribute])
        wanted_results = {(r["kind"], r["drug"], _amount(r["value"]), r["unit"]) for r in expected.get("results") or []}
        found_results = {(r["kind"], r["drug"], _amount(r["value"]), r["unit"]) for r in got.get("results") or []}
        _add(counts["results"], wanted_results, found_results)
        if wanted_results != found_results:
            miss("results", record, sorted(wanted_results), sorted(found_results))
        _add(counts["rct"], {record.id} if expected["design"] == "rct" else set(),
             {record.id} if got.get("tier", tier_of_design(got["design"])) == "rct" else set())
    total = len(records) or 1
    size_denominator = size_wanted + size_false
    return Scores(
        records=len(records),
        design=design_right / total,
        sample_size=size_right / size_denominator if size_denominator else 1.0,
        sample_size_false_positives=size_false,
        population=PRF(*counts["population"]),
        comparators=PRF(*counts["comparators"]),
        doses=PRF(*counts["doses"]),
        mode=mode_right / matched if matched else 1.0,
        timing=timing_right / matched if matched else 1.0,
        role=role_right / matched if matched else 1.0,
        results=PRF(*counts["results"]),
        rct_tier=PRF(*counts["rct"]),
        misses=misses,
    )


def _add(tally: list[int], wanted: set[Any], found: set[Any]) -> None:
    tally[0] += len(wanted & found)
    tally[1] += len(found - wanted)
    tally[2] += len(wanted - found)
