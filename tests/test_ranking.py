"""The relevance model (tracker/review/ranking) on small built topics, and the benchmark's protocol on real data."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from tracker.review import ranking
from tracker.review.ranking import EXCLUDE, INCLUDE, MAYBE, Record

SCREENING_DATASETS = REPO.parent / "shared" / "screening-datasets"

INCLUDED = [
    Record(1, "Vasopressin in septic shock", "Low-dose vasopressin added to norepinephrine in adults with shock."),
    Record(2, "Vasopressin versus placebo after cardiac surgery", "Vasopressin for vasoplegia in the ICU."),
    Record(3, "Early vasopressin in sepsis", "A randomised trial of vasopressin started within six hours."),
]
EXCLUDED = [
    Record(11, "Knee arthroplasty rehabilitation", "Physiotherapy after total knee replacement."),
    Record(12, "Dental caries in children", "Fluoride varnish in primary schools."),
    Record(13, "Statins and muscle pain", "A cohort of outpatients taking atorvastatin."),
    Record(14, "Hip fracture surgery timing", "Operating within 48 hours in older adults."),
    Record(15, "Migraine prophylaxis with topiramate", "A crossover trial in adolescents."),
]
UNSCREENED = [
    Record(21, "Asthma inhaler technique", "Education in general practice."),
    Record(22, "Vasopressin dosing in shock", "Titration of vasopressin in the emergency department."),
    Record(23, "Cataract surgery outcomes", "Visual acuity one year after phacoemulsification."),
    Record(24, "Terlipressin or vasopressin", "Vasopressin analogues compared in hepatorenal syndrome."),
    Record(25, "Obesity and sleep apnoea", "Weight loss and the apnoea-hypopnoea index."),
]


def decided() -> tuple[list[Record], list[str]]:
    return INCLUDED + EXCLUDED, [INCLUDE] * len(INCLUDED) + [EXCLUDE] * len(EXCLUDED)


def ranked_pmids(records: list[Record], scores: list[float]) -> list[int]:
    return [records[i].pmid for i in ranking.screening_order(scores, seed=0, explore=0.0)]


def test_inclusions_that_share_a_word_rank_first():
    model = ranking.fit(*decided())
    scores = ranking.score(model, UNSCREENED)
    assert set(ranked_pmids(UNSCREENED, scores)[:2]) == {22, 24}
    assert all(0.0 < value < 1.0 for value in scores)


def test_the_same_decisions_give_the_same_scores():
    assert ranking.score(ranking.fit(*decided()), UNSCREENED) == ranking.score(ranking.fit(*decided()), UNSCREENED)


def test_mesh_headings_and_publication_types_count():
    included = [Record(31 + i, f"Study {i}", publication_types=("Randomized Controlled Trial",),
                       mesh_headings=("Shock, Septic",)) for i in range(3)]
    excluded = [Record(41 + i, f"Study {i}", publication_types=("Editorial",), mesh_headings=("Knee",))
                for i in range(3)]
    model = ranking.fit(included + excluded, [INCLUDE] * 3 + [EXCLUDE] * 3)
    trial, editorial = ranking.score(model, [Record(51, "Study 9", publication_types=("Randomized Controlled Trial",)),
                                             Record(52, "Study 9", publication_types=("Editorial",))])
    assert trial > editorial
    septic, knee = ranking.score(model, [Record(53, "Study 9", mesh_headings=("Shock, Septic",)),
                                         Record(54, "Study 9", mesh_headings=("Knee",))])
    assert septic > knee


def test_record_terms_put_every_controlled_field_in_one_token_each():
    record = Record(1, "T", mesh_headings=("Shock, Septic", "Humans"), keywords=("  septic   shock ",),
                    publication_types=("Journal Article",), journal="Critical Care Medicine")
    assert record.terms == ["shock, septic", "humans", "septic shock", "publication type: journal article",
                            "journal: critical care medicine"]


def test_cold_start_counts_the_inclusions_and_exclusions_still_missing():
    assert (ranking.MIN_INCLUDED, ranking.MIN_EXCLUDED) == (1, 1)
    assert [ranking.decisions_needed(included, excluded) for included, excluded in
            [(0, 0), (0, 7), (3, 0), (1, 1), (40, 200)]] == [2, 1, 1, 0, 0]


def test_fit_below_the_cold_start_says_what_to_check():
    with pytest.raises(ValueError) as refused:
        ranking.fit(EXCLUDED, [EXCLUDE] * len(EXCLUDED))
    assert str(refused.value) == ("ranking needs at least 1 included and 1 excluded paper (these decisions have 0 "
                                  "and 5): check decisions_needed() before fit")


def test_maybe_is_left_out_of_training():
    records, decisions = decided()
    with_maybes = ranking.fit(records + UNSCREENED[:2], decisions + [MAYBE, MAYBE])
    without = ranking.fit(records, decisions)
    assert ranking.score(with_maybes, UNSCREENED) == ranking.score(without, UNSCREENED)
    assert (with_maybes.included, with_maybes.excluded) == (3, 5)
    with pytest.raises(ValueError) as refused:
        ranking.fit(INCLUDED[:1] + EXCLUDED[:1], [INCLUDE, MAYBE])
    assert "(these decisions have 1 and 0)" in str(refused.value)


def test_unknown_decisions_and_mismatched_lengths_are_refused():
    with pytest.raises(ValueError) as unknown:
        ranking.fit(INCLUDED[:2], [INCLUDE, "relevant"])
    assert str(unknown.value) == "unknown decision 'relevant': a decision is one of include, exclude, maybe"
    with pytest.raises(ValueError) as lengths:
        ranking.fit(INCLUDED, [INCLUDE])
    assert str(lengths.value) == "fit got 3 papers and 1 decisions: pass one decision per paper"


def test_retraining_after_an_import_learns_the_new_inclusions():
    records, decisions = decided()
    terlipressin = Record(61, "Terlipressin infusion", "Continuous terlipressin, cirrhosis.")
    asthma = Record(62, "Asthma inhaler technique", "Education, general practice.")
    before = ranking.score(ranking.fit(records, decisions), [terlipressin, asthma])
    assert before[0] == before[1]  # neither shares a token with any decided paper
    imported = [Record(71, "Terlipressin for hepatorenal syndrome", "Terlipressin plus albumin."),
                Record(72, "Terlipressin bolus or infusion", "Terlipressin given as a bolus in variceal bleeding."),
                Record(73, "Pressure ulcers in nursing homes", "Repositioning every four hours.")]
    retrained = ranking.fit(records + imported, decisions + [INCLUDE, INCLUDE, EXCLUDE])
    after = ranking.score(retrained, [terlipressin, asthma])
    assert after[0] > after[1]
    assert (retrained.included, retrained.excluded) == (5, 6)


def test_counted_once_fits_and_scores_as_records_do():
    records, decisions = decided()
    everything = records + UNSCREENED
    counts = ranking.count_tokens(everything)
    rows = list(range(len(records)))
    from_counts = ranking.fit(counts.take(rows), decisions)
    scores = ranking.score(from_counts, counts.take(range(len(records), len(everything))))
    assert scores == ranking.score(ranking.fit(records, decisions), UNSCREENED)
    assert ranking.score(from_counts, []) == []


def test_screening_order_without_exploration_is_best_first_ties_in_input_order():
    assert ranking.screening_order([0.2, 0.9, 0.5, 0.9, 0.1], seed=3, explore=0.0) == [1, 3, 2, 0, 4]


def test_screening_order_mixes_in_lower_scored_papers_the_same_way_for_a_seed():
    scores = [index / 100 for index in range(100)]  # paper 99 is the most relevant
    order = ranking.screening_order(scores, seed=7, explore=0.2)
    assert order == ranking.screening_order(scores, seed=7, explore=0.2)
    assert sorted(order) == list(range(100)) and order[0] == 99
    best_first = sorted(range(100), key=lambda index: -scores[index])
    assert order != best_first
    # an exploratory pick comes from the lower-scored half of the papers still unplaced
    for position in range(1, 100):
        left = sorted((index for index in range(100) if index not in order[:position]), key=lambda i: -scores[i])
        if order[position] != left[0]:
            assert left.index(order[position]) >= len(left) // 2
    assert ranking.screening_order(scores, seed=7) != ranking.screening_order(scores, seed=8)


def test_screening_order_refuses_a_share_outside_0_to_1():
    with pytest.raises(ValueError) as refused:
        ranking.screening_order([0.5], seed=0, explore=1.5)
    assert str(refused.value) == "explore is a share between 0 and 1, not 1.5"


@pytest.fixture
def urinary_incontinence():
    folder = SCREENING_DATASETS / "cohen-2006"
    if not folder.is_dir():
        pytest.skip(f"screening datasets not found at {folder} (they are read in place, never copied)")
    from benchmarks import ranking as benchmark

    return benchmark.load_dataset(folder / "UrinaryIncontinence.csv")


def test_on_a_real_dataset_the_ranking_beats_random_order(urinary_incontinence):
    from benchmarks import ranking as benchmark

    tracker, _asreview, random_order = benchmark.rankers()
    weekly = benchmark.weekly_batches(urinary_incontinence, tracker)
    weekly_random = benchmark.weekly_batches(urinary_incontinence, random_order, seed=0)
    assert weekly.recall > weekly_random.recall and weekly.auc > weekly_random.auc
    screened = benchmark.screening_simulation(urinary_incontinence, tracker, seed=0)
    screened_random = benchmark.screening_simulation(urinary_incontinence, random_order, seed=0)
    assert screened.wss95 > screened_random.wss95
    assert screened.recall10 > screened_random.recall10 and screened.recall25 > screened_random.recall25


def test_scored_and_counted_in_slices_as_all_at_once(monkeypatch):
    from tracker.review.ranking import features

    records, decisions = decided()
    everything = records + UNSCREENED
    whole = ranking.count_tokens(everything)
    fitted = ranking.fit(records, decisions)
    at_once = ranking.score(fitted, everything)
    monkeypatch.setattr(features, "RECORDS_AT_ONCE", 3)
    sliced = ranking.count_tokens(everything)
    assert [(block != part).nnz for block, part in zip(whole.blocks, sliced.blocks, strict=True)] == [0, 0, 0]
    assert ranking.score(fitted, everything) == at_once
