"""Benchmark 11: suggestions beyond the query (tracker/runs/suggest.py) on the Cohen 2006 data.

Data: each Cohen 2006 dataset in ../shared/screening-datasets/cohen-2006/ (read in place) served by
tests/fake_eutils.py as PubMed: title, abstract and MeSH headings of every record, so that ELink's similar articles
are the fake's TF-IDF cosine of titles and abstracts (its top 100 per seed above a cosine of 0.1); the CSVs list
no references, so there are no citation links. Create dates follow PMID order (a fair proxy, SOURCES.md): the
newest 2 % of a dataset are "this week's" records, created 2024-06-08 to 06-14, and come into the fake only
before the weekly run; the rest spread from 2000 to 2024-05.

The topic's query matches a random 60 % of the records (seeds 0, 1, ...): its run stores them and their
title/abstract decisions are known (label1 = I included, anything else excluded). The included records the query
misses are the missed inclusions.

(a) Setup, through the tracker's own path: `sync_topic` (backfill), the decisions, `refresh_suggestions` (every
included paper a seed, asked without a date limit: its SIMILAR_PER_SEED best-scored similar articles), the
relevance refresh that scores them, and `list_suggestions` (most relevant first). Figures: the missed inclusions
among the first 20 and 50 suggestions, beside PubMed's own order (the same seeds' whole similar-article lists,
every article the topic does not hold ranked by its scores summed over the seeds) and random order of the
tracker's suggestions (the expectation: k x missed in them / suggestions). Target: ahead of PubMed's order on
the total of the four datasets' first-20 and first-50 counts.

(b) The design, simulated from the same seeds' scored similar lists and the same model (tracker.review.ranking fit
on the topic's decided papers with their vocabulary, as tracker/review/relevance.py does): the seeds (every
included paper; the 3 newest and 3 largest, Sampson et al. 2009; the 6 newest) and the similar articles kept per
seed (10, 20, 50, 100), and the order (the model; seeds linking, then summed score).

(c) Two weekly runs after the setup, through `sync_topic`: the week's records arrive (the first run asks every
seed for the window's new links only), then the week's matched records are decided and the next run asks the
new inclusions without a date limit. Figures: the requests the pass spent on links (ELink and the efetch of the
suggestions; the run's own esearch and efetch apart), against the target of at most 10 extra requests per topic
per weekly run, and the week's missed inclusions it suggested.
"""

from __future__ import annotations

import csv
import random
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

from benchmarks import Outcome, Row, Sizes, number
from benchmarks.ranking import DATASETS, require_datasets
from tracker.review import ranking
from tracker.runs.suggest import REQUEST_BUDGET, SIMILAR_PER_SEED, stated_participants

COMMAND = "python -m benchmarks --only suggest"
QUERY = "cohen benchmark topic"
MATCHED_SHARE = 0.6
WEEK_SHARE = 0.02
BEFORE = date(2024, 6, 7)  # the setup's day; the week's records are created 2024-06-08..14
WEEK_END = date(2024, 6, 14)
NEXT_WEEK = date(2024, 6, 21)
FIRST = (20, 50)
KEEP_PER_SEED = (10, 20, 50, 100)
SEED_CHOICES = ("every included paper", "3 newest + 3 largest", "6 newest")
ORDERS = ("model", "summed score", "seeds linking, then score", "model and summed score fused")


@dataclass(frozen=True)
class Entry:
    pmid: int
    title: str
    abstract: str
    mesh: tuple[str, ...]
    authors: tuple[str, ...]
    included: bool

    @property
    def record(self) -> ranking.Record:
        return ranking.Record(pmid=self.pmid, title=self.title, abstract=self.abstract, mesh_headings=self.mesh)


def load_entries(path: Path) -> list[Entry]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: int(row["pubmedID"]))
    return [Entry(int(row["pubmedID"]), row["title"], row["abstracts"],
                  tuple(term.strip() for term in row["keywords"].split(";") if term.strip()),
                  tuple(name.replace(",", "").strip() for name in row["authors"].split(";") if name.strip())[:6],
                  row["label1"] == "I")
            for row in rows]


def created_dates(entries: Sequence[Entry]) -> dict[int, date]:
    """PMID order as create order: the newest WEEK_SHARE in the week, the rest from 2000 to the end of May 2024."""
    week = max(1, round(len(entries) * WEEK_SHARE))
    older = len(entries) - week
    span = (date(2024, 5, 31) - date(2000, 1, 1)).days
    dates = {entry.pmid: date(2000, 1, 1) + timedelta(days=span * index // max(1, older - 1))
             for index, entry in enumerate(entries[:older])}
    dates.update({entry.pmid: date(2024, 6, 8) + timedelta(days=6 * index // max(1, week - 1))
                  for index, entry in enumerate(entries[older:])})
    return dates


def fake_record(entry: Entry, created: date, matched: bool):
    from tests.fake_eutils import FakeRecord
    from tests.pubmed_xml import article_xml

    xml = article_xml(entry.pmid, created=created, title=escape(entry.title), abstract=escape(entry.abstract) or None,
                      authors=entry.authors or ("Anonymous A",), mesh=entry.mesh, pub_date=created)
    return FakeRecord(pmid=entry.pmid, created=created, xml=xml, queries=frozenset({QUERY} if matched else ()))


@dataclass
class Trial:
    """One dataset under one random query split."""

    missed: int  # missed inclusions (before the week)
    suggestions: int  # the tracker's suggestions after the setup
    missed_suggested: int  # missed inclusions among them
    tracker: tuple[int, ...]  # missed inclusions in the first 20 and 50 suggestions
    pubmed: tuple[int, ...]
    random: tuple[float, ...]
    design: dict[tuple[str, int, str], tuple[int, ...]] = field(default_factory=dict)  # (seeds, keep, order): hits
    pools: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)  # (seeds, keep): (size, missed in it)
    setup_requests: int = 0
    # Each weekly run: (the pass's requests, its ELink requests, new seeds, missed inclusions it newly suggested).
    weekly: list[tuple[int, int, int, int]] = field(default_factory=list)
    week_missed: int = 0


def hits(order: Sequence[int], missed: set[int]) -> tuple[int, ...]:
    return tuple(sum(1 for pmid in order[:first] if pmid in missed) for first in FIRST)


def run_trial(entries: list[Entry], name: str, seed: int, folder: Path) -> Trial:
    from tests.fake_eutils import FakeEutils
    from tracker.ncbi.eutils import SIMILAR, EutilsClient, fetch_links
    from tracker.review.screening import decide
    from tracker.runs.suggest import list_suggestions, refresh_suggestions
    from tracker.runs.sync import sync_topic
    from tracker.settings import Settings
    from tracker.store import open_store
    from tracker.topics import Topic

    rng = random.Random(seed)
    dates = created_dates(entries)
    matched = {entry.pmid for entry in entries if rng.random() < MATCHED_SHARE}
    old = [entry for entry in entries if dates[entry.pmid] <= BEFORE]
    week = [entry for entry in entries if dates[entry.pmid] > BEFORE]
    by_pmid = {entry.pmid: entry for entry in entries}
    missed = {entry.pmid for entry in old if entry.included and entry.pmid not in matched}
    topic = Topic(slug=name.lower(), title=name, query=QUERY)
    home = Path(tempfile.mkdtemp(dir=folder))
    with FakeEutils() as fake:
        fake.add(*(fake_record(entry, dates[entry.pmid], entry.pmid in matched) for entry in old))
        settings = Settings(home=home, eutils_url=fake.url, email="bench@example.org", requests_per_second=1000.0,
                            backoff_initial=0.01, backoff_max=0.05, max_attempts=3, timeout=30.0)
        store = open_store(f"sqlite:///{home / 'tracker.sqlite3'}")
        with EutilsClient(settings) as client:
            assert sync_topic(store, client, topic, today=BEFORE).succeeded
            members = [entry for entry in old if entry.pmid in matched]
            decide_all(store, topic, members, decide)
            before = client.request_count
            refresh_suggestions(store, client, topic, today=BEFORE)
            setup_requests = client.request_count - before
            order = [view.pmid for view in list_suggestions(store, topic).items]
            seeds = [entry.pmid for entry in members if entry.included]
            scored = list(fetch_links(client, seeds, (SIMILAR,), with_scores=True))
            trial = Trial(missed=len(missed), suggestions=len(order), missed_suggested=len(missed & set(order)),
                          tracker=hits(order, missed), pubmed=hits(summed_order(scored, matched), missed),
                          random=tuple(first * len(missed & set(order)) / len(order) if order else 0.0
                                       for first in FIRST), setup_requests=setup_requests)
            simulate_design(trial, members, scored, by_pmid, matched, missed)

            fake.add(*(fake_record(entry, dates[entry.pmid], entry.pmid in matched) for entry in week))
            week_missed = {entry.pmid for entry in week if entry.included and entry.pmid not in matched}
            trial.week_missed = len(week_missed)
            suggested_before = set(order)
            still_missed = missed | week_missed
            for today in (WEEK_END, NEXT_WEEK):
                elinks_before = fake.count("elink")
                result = sync_topic(store, client, topic, today=today)
                assert result.succeeded, result.error
                now = {view.pmid for view in list_suggestions(store, topic).items}
                new_seeds = sum(1 for entry in week if entry.pmid in matched and entry.included) if today == NEXT_WEEK else 0
                trial.weekly.append((result.suggestion_requests, fake.count("elink") - elinks_before, new_seeds,
                                     len((now - suggested_before) & still_missed)))
                suggested_before |= now
                if today == WEEK_END:
                    decide_all(store, topic, [entry for entry in week if entry.pmid in matched], decide)
        store.close()
    return trial


def decide_all(store, topic, entries: Sequence[Entry], decide) -> None:
    for label, chosen in (("include", [e.pmid for e in entries if e.included]),
                          ("exclude", [e.pmid for e in entries if not e.included])):
        if chosen:
            decide(store, topic, chosen, label, reviewer="benchmark")


def summed_order(links, held: set[int]) -> list[int]:
    """PubMed's own order: every similar article of the seeds that the topic does not hold, by summed score."""
    summed: dict[int, int] = {}
    for link in links:
        if link.target_pmid not in held:
            summed[link.target_pmid] = summed.get(link.target_pmid, 0) + (link.score or 0)
    return sorted(summed, key=lambda pmid: (-summed[pmid], -pmid))


def choose(seeds: Sequence[Entry], how: str) -> list[Entry]:
    newest = sorted(seeds, key=lambda entry: -entry.pmid)
    if how == "every included paper":
        return list(seeds)
    if how == "6 newest":
        return newest[:6]
    largest = sorted(seeds, key=lambda entry: (-(stated_participants(entry.abstract) or 0), -entry.pmid))
    return list({entry.pmid: entry for entry in [*newest[:3], *largest[:3]]}.values())


def simulate_design(trial: Trial, members: list[Entry], scored, by_pmid: dict[int, Entry], held: set[int],
                    missed: set[int]) -> None:
    counted = ranking.count_tokens([entry.record for entry in members])
    model = ranking.fit(counted, ["include" if entry.included else "exclude" for entry in members], vocabulary=counted)
    by_seed: dict[int, list] = {}
    for link in scored:
        by_seed.setdefault(link.source_pmid, []).append(link)
    seeds = [entry for entry in members if entry.included]
    cache: dict[int, float] = {}
    for how in SEED_CHOICES:
        chosen = {entry.pmid for entry in choose(seeds, how)}
        for keep in KEEP_PER_SEED:
            kept = [link for seed in chosen
                    for link in sorted(by_seed.get(seed, []), key=lambda found: -(found.score or 0))[:keep]]
            pool = {link.target_pmid for link in kept} - held
            unscored = [pmid for pmid in pool if pmid not in cache]
            if unscored:
                cache.update(zip(unscored, ranking.score(model, [by_pmid[pmid].record for pmid in unscored]), strict=True))
            linking = {pmid: len({link.source_pmid for link in kept if link.target_pmid == pmid}) for pmid in pool}
            summed = {pmid: sum(link.score or 0 for link in kept if link.target_pmid == pmid) for pmid in pool}
            trial.pools[(how, keep)] = (len(pool), len(pool & missed))
            by_model = sorted(pool, key=lambda pmid: (-cache[pmid], -pmid))
            by_score = sorted(pool, key=lambda pmid: (-summed[pmid], -pmid))
            orders = {"model": by_model, "summed score": by_score,
                      "seeds linking, then score": sorted(pool, key=lambda pmid: (-linking[pmid], -summed[pmid], -pmid)),
                      "model and summed score fused": fused(by_model, by_score)}
            for label, order in orders.items():
                trial.design[(how, keep, label)] = hits(order, missed)


def fused(*orders: Sequence[int], k: int = 60) -> list[int]:
    """Reciprocal rank fusion (Cormack et al. 2009) of `orders`."""
    scores: dict[int, float] = {}
    for order in orders:
        for rank, pmid in enumerate(order):
            scores[pmid] = scores.get(pmid, 0.0) + 1 / (k + rank + 1)
    return sorted(scores, key=lambda pmid: (-scores[pmid], -pmid))


def mean(values) -> float:
    values = list(values)
    return statistics.fmean(values) if values else 0.0


def run(sizes: Sizes, folder: Path) -> Outcome:
    source = require_datasets()
    outcome = Outcome("suggest")
    names = DATASETS[:sizes.suggest_datasets]
    trials: dict[str, list[Trial]] = {}
    for name in names:
        entries = load_entries(source / f"{name}.csv")
        trials[name] = [run_trial(entries, name, seed, folder) for seed in range(sizes.suggest_runs)]
    runs = f"{sizes.suggest_runs} split{'' if sizes.suggest_runs == 1 else 's'}"

    def trio(values) -> str:
        return " / ".join(number(value, 1) for value in values)

    totals = {"tracker": [0.0, 0.0], "pubmed": [0.0, 0.0], "random": [0.0, 0.0]}
    for name in names:
        found = trials[name]
        tracker = [mean(t.tracker[i] for t in found) for i in range(len(FIRST))]
        pubmed = [mean(t.pubmed[i] for t in found) for i in range(len(FIRST))]
        randomly = [mean(t.random[i] for t in found) for i in range(len(FIRST))]
        for i in range(len(FIRST)):
            totals["tracker"][i] += tracker[i]
            totals["pubmed"][i] += pubmed[i]
            totals["random"][i] += randomly[i]
        outcome.rows.append(Row(
            what=f"suggestions {name}: missed inclusions in the first 20 / 50, tracker (relevance) vs PubMed's order "
                 "(summed similarity) vs random",
            size=f"{len(load_entries(source / f'{name}.csv')):,} records, query matches 60 %, mean of {runs}",
            figure=(f"tracker {trio(tracker)}; PubMed {trio(pubmed)}; random {trio(randomly)} (of "
                    f"{number(mean(t.missed for t in found), 1)} missed; {number(mean(t.missed_suggested for t in found), 1)} "
                    f"among the {number(mean(t.suggestions for t in found))} suggestions)"),
            ratio="tracker/PubMed " + " / ".join(f"{t / p:.2f}" if p else "-" for t, p in zip(tracker, pubmed, strict=True)),
            command=COMMAND))
    ahead = all(t >= p for t, p in zip(totals["tracker"], totals["pubmed"], strict=True)) and \
        sum(totals["tracker"]) > sum(totals["pubmed"])
    outcome.rows.append(Row(
        what="suggestions, all datasets: missed inclusions in the first 20 / 50 (summed over the datasets)",
        size=f"{len(names)} datasets, mean of {runs} each",
        figure=f"tracker {trio(totals['tracker'])}; PubMed {trio(totals['pubmed'])}; random {trio(totals['random'])}",
        ratio="tracker/PubMed " + " / ".join(f"{t / p:.2f}" if p else "-"
                                             for t, p in zip(totals["tracker"], totals["pubmed"], strict=True)),
        target="tracker/PubMed >= 1.00 on the total", met=ahead, command=COMMAND))

    every = [t for found in trials.values() for t in found]
    for how in SEED_CHOICES:
        cells = []
        for keep in KEEP_PER_SEED:
            model = [sum(mean(t.design[(how, keep, "model")][i] for t in trials[name]) for name in names)
                     for i in range(len(FIRST))]
            pool = sum(mean(t.pools[(how, keep)][0] for t in trials[name]) for name in names)
            cells.append(f"{keep}: {trio(model)} of {number(pool)}")
        outcome.rows.append(Row(
            what=f"suggestions design: seeds = {how}; similar articles kept per seed: missed inclusions in the first "
                 "20 / 50 by the model, of the suggestions (summed over the datasets)",
            size=f"{len(names)} datasets, mean of {runs} each", figure="; ".join(cells), command=COMMAND))
    for order in ORDERS:
        keep = SIMILAR_PER_SEED
        values = [sum(mean(t.design[("every included paper", keep, order)][i] for t in trials[name]) for name in names)
                  for i in range(len(FIRST))]
        outcome.rows.append(Row(
            what=f"suggestions design: order = {order} (every included paper a seed, {keep} similar articles each)",
            size=f"{len(names)} datasets, mean of {runs} each", figure=f"missed inclusions in the first 20 / 50: "
            f"{trio(values)}", command=COMMAND))

    for index, label in enumerate(("weekly run 1 (every seed asked for the window's new links)",
                                   "weekly run 2 (the week's inclusions asked without a date limit)")):
        spent = [t.weekly[index][0] for t in every]
        elinks = [t.weekly[index][1] for t in every]
        new_seeds = [t.weekly[index][2] for t in every]
        found = sum(t.weekly[index][3] for t in every)
        outcome.rows.append(Row(
            what=f"suggestions: requests a {label} spends on links (ELink + efetch of the suggestions)",
            size=f"{len(names)} datasets x {runs} (the setup's refresh: {number(mean(t.setup_requests for t in every), 1)} "
                 "requests)",
            figure=(f"mean {number(mean(spent), 1)}, most {max(spent)} ({number(mean(elinks), 1)} ELink; "
                    f"{number(mean(new_seeds), 1)} new seeds); missed inclusions newly suggested: {found} in all"
                    + (f" (the week's missed inclusions: {sum(t.week_missed for t in every)})" if index == 0 else "")),
            target=f"<= {REQUEST_BUDGET} per topic per weekly run", met=max(spent) <= REQUEST_BUDGET, command=COMMAND))
    outcome.notes.append(
        "Suggest: each Cohen 2006 dataset (ADHD, Antihistamines, NSAIDS, UrinaryIncontinence) served by "
        "tests/fake_eutils.py as PubMed (title, abstract and MeSH of every record; its ELink similarity is "
        "the TF-IDF cosine of title and abstract, its top 100 per seed above 0.1; no citations: the CSVs list "
        "no references), create dates in PMID order, the newest 2 % held back as the week's records; a query "
        "matching a random 60 % of each dataset (5 splits, seeds 0-4) whose label1 decisions are recorded, "
        "the included records it misses being the missed inclusions. (a) Through the tracker's own path: the "
        "backfill run, the decisions, `refresh_suggestions` (every included paper a seed, asked without a "
        "date limit: its 20 best-scored similar articles), the relevance refresh and `list_suggestions` (most "
        "relevant first); PubMed's order ranks every similar article of the same seeds (their whole lists, "
        "cmd=neighbor_score) that the topic lacks by its summed score; random order is the expectation over "
        "the tracker's suggestions (k x missed among them / suggestions). (b) The design, simulated from the "
        "same scored lists and the same model (fit on the topic's decided papers with their vocabulary): the "
        "seeds, the similar articles kept per seed and the order. (c) Two weekly runs through `sync_topic`: "
        "the week's records arrive (every seed is asked for the window's new links), then the week's matched "
        "records are decided and the next run asks the new inclusions without a date limit; the requests are "
        "the pass's own (ELink and the efetch of the suggestions), apart from the run's esearch and efetch.")
    return outcome


__all__ = ["run", "load_entries", "run_trial"]
