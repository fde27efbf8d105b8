"""Digests: tiers, excerpts, marks, header lines, escaping, periods, files, the chart, the CLI and a real browser."""

from __future__ import annotations

import base64
import shutil
import struct
import subprocess
from datetime import date, datetime, time, timedelta, timezone

import pytest
from click.testing import CliRunner
from lxml import html as lxml_html
from sqlalchemy import func, select, text, update

from tracker.cli import cli
from tracker.facts import extract_facts
from tracker.ncbi.pubmed import AbstractSection, Author, Paper
from tracker.outputs.charts import chart_png, render_chart_png
from tracker.outputs.digest import (
    DigestEntry,
    RunInfo,
    ScreeningLine,
    Tier,
    TopicDigest,
    abstract_excerpt,
    build_topic_digest,
    classify,
    render_html,
    render_markdown,
    render_text,
    write_topic_digests,
)
from tracker.outputs.render import escape_markdown
from tracker.store import open_store
from tracker.store.digests import monthly_counts, save_digest_record
from tracker.store.models import DigestRecord, TopicPaper
from tracker.store.papers import save_papers
from tracker.store.runs import RunCounts, finish_run, start_run
from tracker.text import utcnow
from tracker.topics import Topic

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NOW = utcnow().replace(microsecond=0)
DOSING = Topic(slug="dosing", title="Norepinephrine dosing", query='"Norepinephrine"[Mesh] AND dose*[tiab]')
TIER_KEYS = ["guideline", "meta-analysis", "rct", "clinical", "review", "case-report", "other"]
WEEK_AGO = NOW - timedelta(days=7)
HOSTILE_TITLE = 'Effect of <script>alert(1)</script> on <i>MAP</i> [see](javascript:x) =HYPERLINK("http://evil.example")'


def make_paper(pmid: int, **changes) -> Paper:
    values = dict(
        pmid=pmid, kind="article", title=f"Norepinephrine study {pmid}",
        abstract_sections=(AbstractSection("BACKGROUND", "BACKGROUND", "Why."),
                           AbstractSection("CONCLUSIONS", "CONCLUSIONS", "It works.")),
        authors=(Author("Ngan Kee", "Warwick D", "WD"),),
        journal="Anesthesiology", pub_date_text="2026 Mar", pub_date=date(2026, 3, 1),
        doi=f"10.1000/{pmid}", pmcid=None, publication_types=("Journal Article",),
        history=(("pubmed", "2026-03-02T06:00"), ("entrez", "2026-03-02T06:00")),
    )
    values.update(changes)
    return Paper(**values)


LATE = dict(pub_date_text="2019 Jan", pub_date=date(2019, 1, 1),
            history=(("pubmed", "2026-03-01T06:00"), ("entrez", "2019-01-05T06:00")))


def see(store, topic: str, papers: list[Paper], *, at: datetime, run_id: int | None = None) -> None:
    """Save papers into `topic` as first seen at `at` (save_papers stamps the wall clock)."""
    save_papers(store, papers, topic=topic, run_id=run_id)
    with store.engine.begin() as connection:
        connection.execute(update(TopicPaper).where(TopicPaper.topic == topic,
                                                    TopicPaper.pmid.in_([p.pmid for p in papers]))
                           .values(first_seen_at=at))


def succeeded_run(store, topic: str = "dosing", new: int = 0):
    run = start_run(store, topic, kind="fetch", query="q", window_start=None, window_end=NOW.date())
    return finish_run(store, run.id, RunCounts(new_papers=new))


def at_minute(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def tier_papers() -> list[Paper]:
    return [
        make_paper(1, publication_types=("Practice Guideline", "Journal Article")),
        make_paper(2, publication_types=("Systematic Review", "Meta-Analysis", "Review")),
        make_paper(3, publication_types=("Randomized Controlled Trial", "Clinical Trial, Phase III", "Multicenter Study"),
                   pub_date=date(2026, 5, 1)),
        make_paper(4, publication_types=("Observational Study",)),
        make_paper(5, publication_types=("Review",)),
        make_paper(6, publication_types=("Case Reports",)),
        make_paper(7, publication_types=("Editorial",)),
        make_paper(8, publication_types=("Clinical Trial, Phase II",)),
        make_paper(9, publication_types=("Randomized Controlled Trial",), pub_date=date(2025, 1, 1)),
        make_paper(10, publication_types=("Randomized Controlled Trial",), pub_date=date(2026, 5, 1)),
        make_paper(11, publication_types=("Randomized Controlled Trial",), pub_date=None, pub_date_text=None),
    ]


# -- building ---------------------------------------------------------------------------------

def test_papers_go_to_their_strongest_tier_newest_first_then_by_pmid(store):
    see(store, "dosing", tier_papers(), at=NOW - timedelta(hours=2))
    digest = build_topic_digest(store, DOSING, until=NOW)
    assert [(tier.key, tier.label, [e.paper.pmid for e in tier.entries]) for tier in digest.tiers] == [
        ("guideline", "Practice guidelines", [1]),
        ("meta-analysis", "Meta-analyses and systematic reviews", [2]),
        ("rct", "Randomized controlled trials", [3, 10, 9, 11]),
        ("clinical", "Other clinical studies", [4, 8]),
        ("review", "Reviews", [5]),
        ("case-report", "Case reports", [6]),
        ("other", "Other", [7]),
    ]
    assert [e.paper.pmid for e in digest.entries] == [1, 2, 3, 10, 9, 11, 4, 8, 5, 6, 7]


def test_publication_types_name_one_tier():
    assert [classify(types) for types in [
        ("Consensus Development Conference, NIH",), ("Network Meta-Analysis",), ("Systematic Review", "Review"),
        ("Pragmatic Clinical Trial",), ("Clinical Trial, Phase IV",), ("Clinical Trial",), ("Scoping Review",),
        ("Case Reports", "Review"), ("Letter", "Comment"), (),
    ]] == ["guideline", "meta-analysis", "meta-analysis", "rct", "clinical", "clinical", "review", "review",
           "other", "other"]


def test_a_digest_entry_carries_authors_excerpt_other_topics_and_the_late_mark(store):
    paper = make_paper(21, publication_types=("Randomized Controlled Trial",), **LATE, pmcid="PMC7654321",
                       authors=(Author("Müller", "Jörg", "J"), Author("Šimić", "Željka", "Ž"), Author("Øster", "Anna", "A"),
                                Author("García-López", "Íñigo", "Í")))
    seen = NOW - timedelta(hours=5)
    run = succeeded_run(store, new=1)
    see(store, "dosing", [paper], at=seen, run_id=run.id)
    see(store, "sepsis", [paper], at=NOW - timedelta(days=30))
    see(store, "elderly", [paper], at=NOW - timedelta(days=60))
    since = NOW - timedelta(days=1)

    digest = build_topic_digest(store, DOSING, since=since, until=NOW)

    entry = DigestEntry(paper=paper, tier="rct", first_seen_at=seen, other_topics=("elderly", "sepsis"),
                        excerpt="It works.", late_arrival=True, authors_short="Müller J, Šimić Ž, Øster A, et al.",
                        facts=extract_facts(paper.title, paper.abstract, paper.publication_types))
    assert digest == TopicDigest(
        topic=DOSING, period_start=since, period_end=NOW,
        last_run=RunInfo("succeeded", run.started_at, run.finished_at, None),
        total_new=1, late_arrivals=1, tiers=(Tier("rct", "Randomized controlled trials", (entry,)),),
        entries=(entry,), screening=ScreeningLine(to_screen=1, included=0, left_out=0), new_pmids=(21,),
    )
    assert (entry.url, entry.doi_url, entry.pmc_url, entry.late_mark) == (
        "https://pubmed.ncbi.nlm.nih.gov/21/", "https://doi.org/10.1000/21",
        "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC7654321/", "newly indexed, published 2019")


def test_digest_papers_are_read_without_their_xml(store):
    see(store, "dosing", [make_paper(31)], at=NOW - timedelta(hours=1))
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE paper SET xml_gz = :junk WHERE pmid = 31"), {"junk": b"\x00\xff\x00\xff"})  # not zlib
    assert [e.paper.pmid for e in build_topic_digest(store, DOSING, until=NOW).entries] == [31]


def test_excerpt_prefers_the_conclusions_section():
    S = AbstractSection
    assert abstract_excerpt((S("BACKGROUND", "BACKGROUND", "Why."), S("RESULTS", "RESULTS", "Mortality fell."),
                             S("CONCLUSIONS", "CONCLUSIONS", "Early norepinephrine shortened shock."))) \
        == "Early norepinephrine shortened shock."
    assert abstract_excerpt((S("FINDINGS", "RESULTS", "Numbers."), S("INTERPRETATION", None, "Use it early."))) \
        == "Use it early."
    assert abstract_excerpt((S("Conclusions and Relevance", "UNASSIGNED", "It is relevant."),
                             S("Trial Registration", "UNASSIGNED", "NCT0000."))) == "It is relevant."


def test_excerpt_without_conclusions_is_the_last_sentences_cut_at_a_word():
    sentences = [f"Sentence {i} reports one more finding about norepinephrine dosing." for i in range(12)]
    assert abstract_excerpt((AbstractSection(None, None, " ".join(sentences)),)) == " ".join(sentences[-4:])
    assert abstract_excerpt((AbstractSection(None, None, " ".join(["word"] * 120)),)) == " ".join(["word"] * 80) + "…"


def test_max_items_caps_the_list_strongest_first_and_says_where_the_rest_are(store):
    see(store, "dosing", tier_papers(), at=NOW - timedelta(hours=2))
    digest = build_topic_digest(store, DOSING, until=NOW, max_items=3, full_report="reports/dosing/2026-11-27.html")
    assert (digest.total_new, digest.shown, [e.paper.pmid for e in digest.entries]) == (11, 3, [1, 2, 3])
    assert ("- **11 new, 3 shown** (strongest evidence first; all 11 are in reports/dosing/2026-11-27.html); "
            "0 late arrivals (older papers newly indexed in PubMed)\n") in render_markdown(digest)
    uncapped = build_topic_digest(store, DOSING, until=NOW)
    assert "<strong>11 new, 11 shown</strong>; 0 late arrivals" in render_html([uncapped])


def test_pmids_restrict_the_digest_to_those_papers_whenever_seen(store):
    see(store, "dosing", [make_paper(41), make_paper(42)], at=NOW - timedelta(days=90))
    see(store, "dosing", [make_paper(43)], at=NOW - timedelta(hours=1))
    digest = build_topic_digest(store, DOSING, until=NOW, pmids=[41, 43, 99])
    assert ([e.paper.pmid for e in digest.entries], digest.period_start) == ([41, 43], NOW - timedelta(days=90))


# -- periods ----------------------------------------------------------------------------------

def test_default_period_starts_where_the_last_digest_before_today_ended(store):
    today_start = datetime.combine(NOW.date(), time.min, timezone.utc)
    earlier_end = today_start - timedelta(days=2, hours=-6)
    see(store, "dosing", [make_paper(51)], at=earlier_end - timedelta(hours=1))
    see(store, "dosing", [make_paper(52)], at=earlier_end + timedelta(minutes=1))
    assert build_topic_digest(store, DOSING, until=NOW).period_start == NOW - timedelta(days=7)

    save_digest_record(store, "dosing", period_start=None, period_end=earlier_end, papers=1, path="a.html")
    save_digest_record(store, "dosing", period_start=earlier_end, period_end=NOW, papers=1, path="today.html")
    digest = build_topic_digest(store, DOSING, until=NOW)
    assert (digest.period_start, [e.paper.pmid for e in digest.entries]) == (earlier_end, [52])


def test_reports_are_written_per_topic_and_a_same_day_rerun_overwrites_them(store, tmp_path):
    previous_end = NOW - timedelta(days=3)
    save_digest_record(store, "dosing", period_start=None, period_end=previous_end, papers=0, path="old.html")
    see(store, "dosing", tier_papers(), at=NOW - timedelta(hours=1))
    reports = tmp_path / "reports"
    day = utcnow().date().isoformat()

    first = write_topic_digests(store, [DOSING], reports)
    see(store, "dosing", [make_paper(60, title="Arrived later the same day")], at=utcnow())
    second = write_topic_digests(store, [DOSING], reports)

    assert first == second == [reports / "dosing" / f"{day}.md", reports / "dosing" / f"{day}.html"]
    assert sorted(p.name for p in (reports / "dosing").iterdir()) == [f"{day}.html", f"{day}.md"]
    assert "Arrived later the same day" in second[0].read_text(encoding="utf-8")
    with store.session() as session:
        records = list(session.execute(select(DigestRecord).order_by(DigestRecord.id)).scalars())
    assert [(r.topic, r.period_start, r.papers, r.path) for r in records] == [
        ("dosing", None, 0, "old.html"), ("dosing", previous_end, 12, str(reports / "dosing" / f"{day}.html"))]
    page = lxml_html.fromstring(second[1].read_bytes())
    [image] = page.xpath('//figure[@id="chart"]/img')
    assert base64.b64decode(image.get("src").removeprefix("data:image/png;base64,"))[:8] == PNG_MAGIC


def test_a_report_for_a_past_day_ends_at_that_days_midnight(store, tmp_path):
    yesterday = NOW.date() - timedelta(days=1)
    midnight = datetime.combine(NOW.date(), time.min, timezone.utc)
    see(store, "dosing", [make_paper(71)], at=midnight - timedelta(hours=1))
    see(store, "dosing", [make_paper(72)], at=midnight + timedelta(seconds=1))
    [markdown_path, _] = write_topic_digests(store, [DOSING], tmp_path, today=yesterday)
    body = markdown_path.read_text(encoding="utf-8")
    assert markdown_path.name == f"{yesterday.isoformat()}.md"
    assert ("Norepinephrine study 71" in body, "Norepinephrine study 72" in body) == (True, False)
    assert f"- Papers first seen {(yesterday - timedelta(days=6)).isoformat()} – {yesterday.isoformat()}\n" in body


# -- rendering --------------------------------------------------------------------------------

def one_paper_digest(store, **changes) -> TopicDigest:
    paper = make_paper(81, **{"authors": (Author("Müller", "Jörg", "J"), Author("Šimić", "Željka", "Ž")),
                              "pmcid": "PMC81", **LATE, **changes})
    see(store, "dosing", [paper], at=NOW - timedelta(hours=1))
    see(store, "elderly", [paper], at=NOW - timedelta(days=40))
    return build_topic_digest(store, DOSING, since=WEEK_AGO, until=NOW)


def test_markdown_digest_whole(store):
    run = succeeded_run(store, new=1)
    digest = one_paper_digest(store, publication_types=("Randomized Controlled Trial",))
    period = f"{WEEK_AGO.date().isoformat()} – {NOW.date().isoformat()}"
    assert render_markdown(digest) == f"""# Norepinephrine dosing

**Query:**

```text
"Norepinephrine"[Mesh] AND dose*[tiab]
```

- **Last run:** succeeded, finished {at_minute(run.finished_at)}
- **1 new, 1 shown**; 1 late arrival (older papers newly indexed in PubMed)
- Papers first seen {period}
- **Screening:** 1 new to screen; 0 included so far

## Randomized controlled trials (1)

### [Norepinephrine study 81](https://pubmed.ncbi.nlm.nih.gov/81/)

Müller J, Šimić Ž · *Anesthesiology* · 2019 Jan · PMID 81 · [doi:10.1000/81](https://doi.org/10.1000/81) · [free full text](https://www.ncbi.nlm.nih.gov/pmc/articles/PMC81/)

> It works.

Also in: elderly · **newly indexed, published 2019**
"""


def test_text_digest_whole(store):
    run = start_run(store, "dosing", kind="fetch", query="q", window_start=None, window_end=NOW.date())
    run = finish_run(store, run.id, RunCounts(), error="esearch failed: HTTP 500")
    digest = one_paper_digest(store, publication_types=("Review",))
    period = f"{WEEK_AGO.date().isoformat()} – {NOW.date().isoformat()}"
    failed = f"!! FAILED at {at_minute(run.finished_at)}: esearch failed: HTTP 500"
    assert render_text(digest) == f"""Norepinephrine dosing
=====================
Query: "Norepinephrine"[Mesh] AND dose*[tiab]
Last run: {failed} (this digest may be incomplete: run 'tracker run dosing' to retry)
1 new, 1 shown; 1 late arrival (older papers newly indexed in PubMed)
Papers first seen {period}
Screening: 1 new to screen; 0 included so far

REVIEWS (1)
-----------

  Norepinephrine study 81
    Müller J, Šimić Ž · Anesthesiology · 2019 Jan
    PubMed: https://pubmed.ncbi.nlm.nih.gov/81/
    DOI: https://doi.org/10.1000/81
    Free full text: https://www.ncbi.nlm.nih.gov/pmc/articles/PMC81/
    “It works.”
    Also in: elderly
    ** newly indexed, published 2019
"""


def books_and_trials_digest(store):
    succeeded_run(store, new=2)
    chapter = make_paper(82, kind="book", title="Vasopressors in shock", journal=None, doi=None, pub_date_text="2022",
                         pub_date=date(2022, 1, 1), publication_types=("Review",), editors=(
                             Author("Holloway", "Margaret", "M"), Author("Okafor", "C", "C")),
                         book_title="Critical Care Handbook", publisher="Oxford University Press",
                         publisher_location="Oxford", edition="2nd edition", book_accession="NBK531234",
                         location_label="Chapter 4", chapter=True)
    trial = make_paper(83, publication_types=("Randomized Controlled Trial",),
                       databanks=(("ClinicalTrials.gov", "NCT02149199"),), abstract_sections=(
                           AbstractSection("CONCLUSIONS", "CONCLUSIONS", "It works."),
                           AbstractSection("TRIAL REGISTRATION", None, "EudraCT 2019-001234-56.")))
    see(store, "dosing", [chapter, trial], at=NOW - timedelta(hours=1))
    return build_topic_digest(store, DOSING, since=WEEK_AGO, until=NOW)


def test_books_and_trial_registrations_in_markdown_and_text(store):
    digest = books_and_trials_digest(store)
    markdown = render_markdown(digest)
    assert """### [Norepinephrine study 83](https://pubmed.ncbi.nlm.nih.gov/83/)

Ngan Kee WD · *Anesthesiology* · 2026 Mar · PMID 83 · [doi:10.1000/83](https://doi.org/10.1000/83)

Trial registration: [NCT02149199](https://clinicaltrials.gov/study/NCT02149199) (ClinicalTrials.gov), \
[2019-001234-56](https://www.clinicaltrialsregister.eu/ctr-search/search?query=2019-001234-56) (EudraCT)
""".replace("\\\n", "") in markdown
    assert """### [Vasopressors in shock](https://pubmed.ncbi.nlm.nih.gov/82/)

Ngan Kee WD · 2022 · PMID 82

Chapter 4 in Critical Care Handbook, 2nd edition, edited by Holloway M, Okafor C; Oxford University Press, Oxford · \
[NCBI Bookshelf](https://www.ncbi.nlm.nih.gov/books/NBK531234/)
""".replace("\\\n", "") in markdown
    text = render_text(digest)
    assert """  Norepinephrine study 83
    Ngan Kee WD · Anesthesiology · 2026 Mar
    PubMed: https://pubmed.ncbi.nlm.nih.gov/83/
    DOI: https://doi.org/10.1000/83
    Trial registration: NCT02149199 (ClinicalTrials.gov) https://clinicaltrials.gov/study/NCT02149199
    Trial registration: 2019-001234-56 (EudraCT) https://www.clinicaltrialsregister.eu/ctr-search/search?query=2019-001234-56
""" in text
    assert """  Vasopressors in shock
    Ngan Kee WD · 2022
    PubMed: https://pubmed.ncbi.nlm.nih.gov/82/
    Chapter 4 in Critical Care Handbook, 2nd edition, edited by Holloway M,
    Okafor C; Oxford University Press, Oxford
    NCBI Bookshelf: https://www.ncbi.nlm.nih.gov/books/NBK531234/
""" in text


def test_books_and_trial_registrations_in_html(store):
    page = lxml_html.fromstring(render_html(books_and_trials_digest(store)))
    [trials] = page.xpath('//article[@data-pmid="83"]//p[@class="trials"]')
    assert [(link.text, link.get("href")) for link in trials.xpath("a")] == [
        ("NCT02149199", "https://clinicaltrials.gov/study/NCT02149199"),
        ("2019-001234-56", "https://www.clinicaltrialsregister.eu/ctr-search/search?query=2019-001234-56")]
    assert trials.text_content() == "Trial registration: NCT02149199 (ClinicalTrials.gov), 2019-001234-56 (EudraCT)"
    [book] = page.xpath('//article[@data-pmid="82"]//p[@class="book"]')
    assert book.text_content() == ("Chapter 4 in Critical Care Handbook, 2nd edition, edited by Holloway M, Okafor C; "
                                   "Oxford University Press, Oxford")
    [shelf] = page.xpath('//article[@data-pmid="82"]//a[@class="bookshelf"]')
    assert shelf.get("href") == "https://www.ncbi.nlm.nih.gov/books/NBK531234/"
    assert not page.xpath('//article[@data-pmid="83"]//p[@class="book"]')


def test_a_failed_last_run_is_flagged_with_its_error(store):
    run = start_run(store, "dosing", kind="fetch", query="q", window_start=None, window_end=NOW.date())
    run = finish_run(store, run.id, RunCounts(), error="esearch failed: HTTP 500")
    digest = one_paper_digest(store)
    expected = (f"FAILED at {at_minute(run.finished_at)}: esearch failed: HTTP 500 "
                "(this digest may be incomplete: run 'tracker run dosing' to retry)")
    assert f"- **Last run:** **⚠ {escape_markdown(expected)}**\n" in render_markdown(digest)
    page = lxml_html.fromstring(render_html([digest]))
    [item] = page.xpath('//header[@id="digest-header"]//li[contains(@class, "last-run")]')
    assert (item.get("class"), item.text_content()) == ("last-run run-failed", f"Last run: ⚠ {expected}")


def test_record_text_cannot_inject_html_or_markdown(store):
    digest = one_paper_digest(store, title=HOSTILE_TITLE, journal="J <b>Bold</b>",
                              abstract_sections=(
                                  AbstractSection("CONCLUSIONS", "CONCLUSIONS", "<img src=x onerror=alert(1)> *wow*"),),
                              authors=(Author("O'Brien <svg onload=alert(1)>", None, "C"),))
    page = lxml_html.fromstring(render_html([digest]))
    assert page.xpath("//script | //svg | //b | //i[not(ancestor::span[@class='journal'])] | //article//img") == []
    [title] = page.xpath('//article[@data-pmid="81"]//h3/a')
    assert (title.text_content(), title.get("href")) == (HOSTILE_TITLE, "https://pubmed.ncbi.nlm.nih.gov/81/")
    assert page.xpath('//article//blockquote')[0].text_content() == "<img src=x onerror=alert(1)> *wow*"

    markdown = render_markdown(digest)
    assert ("### [Effect of \\<script\\>alert(1)\\</script\\> on \\<i\\>MAP\\</i\\> \\[see\\](javascript:x) "
            "=HYPERLINK(\"http\\://evil.example\")](https://pubmed.ncbi.nlm.nih.gov/81/)\n") in markdown
    assert "> \\<img src=x onerror=alert(1)\\> \\*wow\\*\n" in markdown
    assert "O'Brien \\<svg onload=alert(1)\\> C · *J \\<b\\>Bold\\</b\\>*" in markdown
    assert HOSTILE_TITLE in " ".join(render_text(digest).split())  # the text format wraps long titles


HOSTILE_TEXTS = (
    "a_b *c* `d` [e](f) <g> &amp; ~~h~~ | #1 !x www.x.org https://z.org", "![img](x.png) [ref]: /u \\*not\\*",
    "# Heading", "- item", "+ item", "1. first", "3) third", "---", "===", "> quoted", "<https://x.org>",
    "_under_ __bold__ snake_case_name", "&#60;b&#62; &copy;", "[^1] footnote", "`` code ``", "x\\", "| a | b |",
    "TRACKER_MAIL_MAX_BYTES (10 MB) and 'tracker run dosing'", "HTTP 500 (Internal Server Error): retry later",
)
MARKDOWN_PLACES = ("{}", "### [{}](https://pubmed.ncbi.nlm.nih.gov/1/)", "- **Last run:** {}", "> {}", "*{}* · ",
                   "Before\n{}\nafter", "{} · PMID 1")


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_escaped_markdown_renders_as_its_text_and_nothing_else(text):
    """Rendered by GitHub's own cmark-gfm, an escaped value anywhere a template puts it is exactly its text: no
    emphasis, code, link, image, heading, list, rule, quote, table, strikethrough or HTML forms from it."""
    cmarkgfm = pytest.importorskip("cmarkgfm")
    from html import escape

    def rendered(markdown: str) -> str:
        return cmarkgfm.github_flavored_markdown_to_html(markdown)

    for place in MARKDOWN_PLACES:
        expected = rendered(place.format("PLACEHOLDER")).replace("PLACEHOLDER", escape(text, quote=True)
                                                                 .replace("&#x27;", "'"))
        assert rendered(place.format(escape_markdown(text))) == expected, place


def test_markdown_escapes_only_what_could_form_syntax():
    """A digest read as a text file: plain sentences, DOIs, settings names and parentheses keep no backslashes."""
    for sentence in ("FAILED at 2026-01-05 06:00 UTC: esearch failed after 3 attempts: HTTP 500 Internal Server Error "
                     "(this digest may be incomplete)", "10.1000/182", "TRACKER_MAIL_MAX_BYTES", "O'Brien (2019)!",
                     "2026 Mar", "a@b.org", "#1 tag"):
        assert escape_markdown(sentence) == sentence


def test_control_characters_never_reach_a_terminal(store):
    digest = one_paper_digest(store, title="Bold\x1b[1m title\x07 with\u202e override")
    assert "  Bold [1m title with override\n" in render_text(digest)


def test_html_has_stable_ids_and_one_section_per_tier_in_order(store):
    see(store, "dosing", tier_papers(), at=NOW - timedelta(hours=2))
    digest = build_topic_digest(store, DOSING, until=NOW)
    page = lxml_html.fromstring(render_html([digest], chart_pngs={"dosing": render_chart_png([(date(2026, 1, 1), 3)])}))
    assert [s.get("id") for s in page.xpath('//section[@class="tier"]')] == [f"tier-{k}" for k in TIER_KEYS]
    assert [a.get("data-pmid") for a in page.xpath('//article[@class="paper"]')] == \
        [str(e.paper.pmid) for e in digest.entries]
    assert page.xpath('//header[@id="digest-header"]/h1')[0].text_content() == "Norepinephrine dosing"
    assert page.xpath('//figure[@id="chart"]/img')[0].get("src").startswith("data:image/png;base64,iVBORw0KGgo")


def test_several_topics_share_one_page_with_prefixed_ids(store):
    elderly = Topic(slug="elderly", title="Norepinephrine in the elderly", query="elderly")
    digests = [build_topic_digest(store, DOSING, until=NOW), build_topic_digest(store, elderly, until=NOW)]
    page = lxml_html.fromstring(render_html(digests))
    assert [s.get("id") for s in page.xpath("//section[@data-topic]")] == ["topic-dosing", "topic-elderly"]
    assert [h.get("id") for h in page.xpath("//header")] == ["dosing-digest-header", "elderly-digest-header"]


def test_an_empty_period_says_the_query_ran_and_found_nothing(store):
    run = succeeded_run(store)
    digest = build_topic_digest(store, DOSING, until=NOW)
    line = f"No new papers in this period: the query ran at {at_minute(run.finished_at)} and found nothing new."
    assert f"\n{line}\n" in render_markdown(digest)
    assert f"\n{line}\n" in render_text(digest)
    assert lxml_html.fromstring(render_html([digest])).xpath('//p[@id="empty"]')[0].text_content() == line
    assert "- **0 new, 0 shown**; 0 late arrivals" in render_markdown(digest)


def test_a_topic_that_never_ran_says_so(store):
    markdown = render_markdown(build_topic_digest(store, DOSING, until=NOW))
    assert "- **Last run:** never run: run 'tracker run dosing' to fetch it\n" in markdown
    assert "\nNo new papers: this topic was never run; run 'tracker run dosing' to fetch it.\n" in markdown


# -- chart ------------------------------------------------------------------------------------

def test_monthly_counts_cover_each_month_of_the_period(store):
    see(store, "dosing", [make_paper(91), make_paper(92)], at=datetime(2026, 1, 31, 23, 59, tzinfo=timezone.utc))
    see(store, "dosing", [make_paper(93)], at=datetime(2026, 3, 1, tzinfo=timezone.utc))
    see(store, "sepsis", [make_paper(94)], at=datetime(2026, 3, 2, tzinfo=timezone.utc))
    assert monthly_counts(store, "dosing", datetime(2025, 12, 15, tzinfo=timezone.utc),
                          datetime(2026, 3, 20, tzinfo=timezone.utc)) == [
        (date(2025, 12, 1), 0), (date(2026, 1, 1), 2), (date(2026, 2, 1), 0), (date(2026, 3, 1), 1)]


def test_chart_is_a_small_deterministic_png(store):
    see(store, "dosing", [make_paper(95)], at=NOW - timedelta(days=40))
    first, second = chart_png(store, "dosing", end=NOW), chart_png(store, "dosing", end=NOW)
    assert first[:8] == PNG_MAGIC and first == second
    assert struct.unpack(">II", first[16:24]) == (700, 220)
    assert b"Software" not in first


# -- command line -----------------------------------------------------------------------------

@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    (home / "queries").mkdir(parents=True)
    (home / "queries" / "dosing.toml").write_text(
        'title = "Norepinephrine dosing"\nquery = \'"Norepinephrine"[Mesh] AND dose*[tiab]\'\n', encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    store = open_store(url)
    see(store, "dosing", [make_paper(101, title="Bolus <b>norepinephrine</b>")], at=utcnow() - timedelta(hours=1))
    store.close()
    return home, url


def digest_records(url: str) -> int:
    store = open_store(url)
    try:
        with store.session() as session:
            return session.execute(select(func.count()).select_from(DigestRecord)).scalar_one()
    finally:
        store.close()


def test_cli_prints_a_digest_without_recording_it(home):
    home, url = home
    result = CliRunner().invoke(cli, ["--home", str(home), "digest", "dosing", "--format", "md"],
                                env={"TRACKER_DB_URL": url})
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.startswith("# Norepinephrine dosing\n\n**Query:**\n")
    assert "### [Bolus \\<b\\>norepinephrine\\</b\\>](https://pubmed.ncbi.nlm.nih.gov/101/)\n" in result.stdout
    assert digest_records(url) == 0


def test_cli_writes_reports_and_one_file_with_o(home, tmp_path):
    home, url = home
    runner = CliRunner()
    result = runner.invoke(cli, ["--home", str(home), "digest"], env={"TRACKER_DB_URL": url})
    day = utcnow().date().isoformat()
    assert (result.exit_code, result.stdout) == (
        0, f"{home / 'reports' / 'dosing' / day}.md\n{home / 'reports' / 'dosing' / day}.html\n"
           f"{home / 'reports' / 'dosing' / 'feed.xml'}\n")
    out = tmp_path / "out.txt"
    result = runner.invoke(cli, ["--home", str(home), "digest", "-o", str(out), "--since", "2020-01-01"],
                           env={"TRACKER_DB_URL": url})
    assert (result.exit_code, result.stdout) == (0, f"{out}\n")
    assert out.read_text(encoding="utf-8").startswith("Norepinephrine dosing\n=====================\n")
    assert digest_records(url) == 2


def test_cli_asks_for_a_format_it_cannot_guess(home, tmp_path):
    home, url = home
    result = CliRunner().invoke(cli, ["--home", str(home), "digest", "-o", str(tmp_path / "out.pdf")],
                                env={"TRACKER_DB_URL": url})
    assert (result.exit_code, result.stderr) == (
        2, "error: cannot tell the format of out.pdf from its extension: pass --format md, html or text, "
           "or name the file .md, .html or .txt\n")
    assert not (tmp_path / "out.pdf").exists()


# -- a real browser ---------------------------------------------------------------------------

def test_chromium_renders_every_section(store, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed: apt-get install -y chromium")
    see(store, "dosing", tier_papers() + [make_paper(12, title=HOSTILE_TITLE, **LATE)], at=NOW - timedelta(hours=2))
    succeeded_run(store, new=12)
    digest = build_topic_digest(store, DOSING, until=NOW)
    page_path = tmp_path / "digest.html"
    page_path.write_text(render_html([digest], chart_pngs={"dosing": chart_png(store, "dosing", end=NOW)}),
                         encoding="utf-8")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]

    dom = subprocess.run([*flags, "--dump-dom", page_path.as_uri()], capture_output=True, timeout=90, check=True).stdout
    page = lxml_html.fromstring(dom)
    assert page.xpath("//script") == []
    assert len(page.xpath('//header[@id="digest-header"]/h1')) == 1
    assert page.xpath('//figure[@id="chart"]/img')[0].get("src").startswith("data:image/png;base64,")
    assert [s.get("id") for s in page.xpath('//section[@class="tier"]')] == [f"tier-{k}" for k in TIER_KEYS]
    assert sorted(int(a.get("data-pmid")) for a in page.xpath('//article[@class="paper"]')) == list(range(1, 13))
    assert HOSTILE_TITLE in [a.text_content() for a in page.xpath("//article//h3/a")]

    screenshot = tmp_path / "digest.png"
    subprocess.run([*flags, f"--screenshot={screenshot}", "--window-size=1000,1400", page_path.as_uri()],
                   capture_output=True, timeout=90, check=True)
    shot = screenshot.read_bytes()
    assert shot[:8] == PNG_MAGIC and struct.unpack(">II", shot[16:24]) == (1000, 1400)
