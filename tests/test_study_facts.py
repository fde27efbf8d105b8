"""Study facts in the store: read with every paper saved or refetched, the evidence tier on arrival, migration 12
(study-facts) and `tracker db migrate` reading again what an older extractor wrote."""

from __future__ import annotations

import json
import re
import threading

from sqlalchemy import text

from tests.conftest import cli_env, run_tracker, write_topic
from tests.test_store import drop_study_facts, make_paper
from tracker.facts import EXTRACTOR_VERSION, StudyFacts, extract_facts
from tracker.ncbi.pubmed import AbstractSection
from tracker.store import SCHEMA_VERSION, migrate_store, open_store
from tracker.store.changes import save_refreshed
from tracker.store.papers import save_papers
from tracker.store.rows import POPULATION_BITS
from tracker.store.schema import FACTS_SECONDS_PER_PAPER, describe_work
from tracker.store.studyfacts import count_stale_facts, stored_facts

RCT_TITLE = "Prophylactic norepinephrine infusion for caesarean delivery: a randomised trial"
RCT_SECTIONS = (
    AbstractSection("METHODS", "METHODS",
                    "110 women having spinal anaesthesia for caesarean delivery were randomly allocated to a "
                    "prophylactic infusion of norepinephrine 2.5 µg/min or phenylephrine 50 µg/min started "
                    "immediately after intrathecal injection."),
    AbstractSection("RESULTS", "RESULTS", "Hypotension was less frequent with norepinephrine (P = 0.03)."),
)
REVIEW_TITLE = "Vasopressors in septic shock: a narrative review"
REVIEW_SECTIONS = (AbstractSection(None, None, "This review discusses norepinephrine in sepsis and septic shock."),)


def rct_paper(pmid: int, publication_types=("Journal Article",)):
    """A new trial as it arrives before NLM indexes it: only "Journal Article" (unless told), an RCT's abstract."""
    return make_paper(pmid, title=RCT_TITLE, abstract_sections=RCT_SECTIONS, publication_types=tuple(publication_types),
                      mesh_headings=())


def paper_columns(store, pmid: int) -> dict:
    with store.engine.connect() as connection:
        row = connection.execute(text(
            "SELECT evidence_tier, tier_from_abstract, design, sample_size, population_bits, states_dose, facts, "
            "facts_version FROM paper WHERE pmid = :pmid"), {"pmid": pmid}).mappings().one()
    return {**row, "tier_from_abstract": bool(row["tier_from_abstract"]), "states_dose": bool(row["states_dose"])}


def test_a_saved_paper_keeps_its_facts_and_a_trial_without_publication_types_lands_in_the_rct_tier(store):
    paper = rct_paper(41)
    save_papers(store, [paper], topic="cesarean")
    facts = extract_facts(paper.title, paper.abstract, paper.publication_types)
    assert paper_columns(store, 41) == {
        "evidence_tier": "rct", "tier_from_abstract": True, "design": "rct", "sample_size": 110,
        "population_bits": POPULATION_BITS["cesarean"], "states_dose": True, "facts": facts.to_json(),
        "facts_version": EXTRACTOR_VERSION}
    assert stored_facts(store, [41, 999])[41].facts == facts
    assert (stored_facts(store, [41])[41].tier, stored_facts(store, [41])[41].tier_from_abstract) == ("rct", True)


def test_a_refetch_that_brings_publication_types_replaces_the_tier_read_from_the_abstract(store):
    save_papers(store, [rct_paper(42)], topic="cesarean")
    indexed = rct_paper(42, ("Randomized Controlled Trial", "Journal Article"))
    save_refreshed(store, [(indexed, ())], run_id=None)
    columns = paper_columns(store, 42)
    assert (columns["evidence_tier"], columns["tier_from_abstract"], columns["design"]) == ("rct", False, "rct")
    assert StudyFacts.from_json(columns["facts"]).design_source == "publication type"


def test_publication_types_that_name_a_design_decide_the_tier(store):
    review = make_paper(43, title=REVIEW_TITLE, abstract_sections=REVIEW_SECTIONS,
                        publication_types=("Journal Article", "Review"), mesh_headings=())
    typed_rct = rct_paper(44, ("Randomized Controlled Trial",))
    save_papers(store, [review, typed_rct], topic="sepsis")
    assert [(paper_columns(store, pmid)["evidence_tier"], paper_columns(store, pmid)["tier_from_abstract"])
            for pmid in (43, 44)] == [("review", False), ("rct", False)]


def test_facts_read_on_the_fetching_thread_are_the_ones_stored(store):
    """save_papers takes facts read beforehand (tracker/runs/ingest.py reads them on the prefetch thread)."""
    paper = rct_paper(45)
    read_elsewhere = {}
    thread = threading.Thread(target=lambda: read_elsewhere.update({45: extract_facts(paper.title, paper.abstract)}))
    thread.start()
    thread.join()
    save_papers(store, [paper], topic="cesarean", facts=read_elsewhere)
    assert paper_columns(store, 45)["facts"] == read_elsewhere[45].to_json()


def test_a_fault_in_a_rule_keeps_the_paper_and_stores_it_without_facts(store, monkeypatch, caplog):
    from tracker.facts import child

    def broken(*args, **kwargs):
        raise RuntimeError("a rule broke")

    monkeypatch.setattr(child, "extract_facts", broken)
    save_papers(store, [rct_paper(46)], topic="cesarean")
    columns = paper_columns(store, 46)
    assert (columns["design"], columns["evidence_tier"], columns["states_dose"]) == ("other", "other", False)
    assert "PMID 46: its study facts could not be read; it is stored without them" in caplog.text


# -- migration 12 and re-extraction -----------------------------------------------------------------

def make_schema_11(store) -> None:
    """Turn a database into one as schema 11 left it: no study facts, the evidence tier from publication types only."""
    with store.engine.begin() as connection:
        drop_study_facts(connection)
        connection.execute(text("UPDATE tracker_schema SET version = 11"))
        connection.execute(text("DELETE FROM tracker_migration WHERE version >= 12"))


def all_rows(store) -> dict[int, dict]:
    with store.engine.connect() as connection:
        return {row.pmid: dict(row._mapping) for row in connection.execute(text("SELECT * FROM paper ORDER BY pmid"))}


def test_migration_12_reads_every_stored_paper_s_facts_as_saving_them_does(db_url):
    papers = [rct_paper(51), rct_paper(52, ("Randomized Controlled Trial", "Journal Article")),
              make_paper(53, title=REVIEW_TITLE, abstract_sections=REVIEW_SECTIONS, mesh_headings=(),
                         publication_types=("Journal Article",)),
              make_paper(54, abstract_sections=(), title="")]
    store = open_store(db_url)
    save_papers(store, papers, topic="dosing")
    written = all_rows(store)
    make_schema_11(store)
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT pmid, evidence_tier FROM paper ORDER BY pmid")).all() == [
            (51, "other"), (52, "rct"), (53, "other"), (54, "rct")]
    store.close()

    migrated, applied = migrate_store(db_url)
    try:
        assert [(step.migration.version, step.migration.name) for step in applied] == [(12, "study-facts")]
        assert all_rows(migrated) == written
        assert [(row["evidence_tier"], row["tier_from_abstract"]) for row in written.values()] == [
            ("rct", True), ("rct", False), ("review", True), ("rct", False)]
        assert count_stale_facts(migrated) == 0
    finally:
        migrated.close()


def test_db_migrate_reads_again_what_an_older_extractor_wrote(tmp_path, db_url):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    store = open_store(db_url)
    save_papers(store, [rct_paper(61), rct_paper(62), make_paper(63)], topic="dosing")
    written = all_rows(store)
    with store.engine.begin() as connection:
        # As an extractor one version older left them: other facts, an older version.
        connection.execute(text("UPDATE paper SET facts_version = :old, facts = :facts, design = 'other', "
                                "evidence_tier = 'other', tier_from_abstract = false, states_dose = false "
                                "WHERE pmid IN (61, 62)"),
                           {"old": EXTRACTOR_VERSION - 1, "facts": StudyFacts(version=EXTRACTOR_VERSION - 1).to_json()})
    where = store.describe()
    assert count_stale_facts(store) == 2
    store.close()
    env = cli_env(home, None, TRACKER_DB_URL=db_url)

    older = f"2 papers hold study facts from an older extractor (this one is version {EXTRACTOR_VERSION})"
    check = run_tracker("db", "migrate", "--check", env=env)
    cost = describe_work(2, FACTS_SECONDS_PER_PAPER)
    assert (check.code, check.out) == (1, f"{where} is at schema {SCHEMA_VERSION}, this tracker's; {older}: "
                                          f"'tracker db migrate' reads them again ({cost})\n")
    exported = run_tracker("export", env=env)  # an older extractor's facts do not stop any command
    assert exported.code == 0, exported.err

    done = run_tracker("db", "migrate", env=env)
    assert done.code == 0, done.err
    first, second = done.out.splitlines()
    assert first == (f"{where} is at schema {SCHEMA_VERSION}, this tracker's; {older}: reading them again "
                     "(2 papers, a few seconds)")
    assert re.fullmatch(r"read the study facts of 2 papers again \(\d+\.\d s\)", second)
    reread = open_store(db_url)
    try:
        assert all_rows(reread) == written
    finally:
        reread.close()
    again = run_tracker("db", "migrate", "--check", env=env)
    assert (again.code, again.out) == (0, f"{where} is at schema {SCHEMA_VERSION}, this tracker's: nothing to do\n")


def test_the_stored_facts_json_is_the_extractor_s_own(store):
    save_papers(store, [rct_paper(71)], topic="cesarean")
    stored = json.loads(paper_columns(store, 71)["facts"])
    assert stored["v"] == EXTRACTOR_VERSION
    assert stored["design"][:2] == ["rct", "abstract"]


# -- digests and the e-mail ----------------------------------------------------------------------------------

FACTS_LINE = ("Randomised trial · 110 patients · caesarean · norepinephrine 2.5 µg/min infusion (prophylactic) vs "
              "phenylephrine 50 µg/min")


def digest_texts(store, topic) -> dict[str, str]:
    from tracker.outputs.digest import build_topic_digest, render_html, render_markdown, render_text
    from tracker.text import utcnow

    digest = build_topic_digest(store, topic, since=utcnow().replace(year=2000), until=utcnow(), baseline=False)
    return {"md": render_markdown(digest), "text": render_text(digest), "html": render_html(digest)}


def mail_texts(store, topic) -> dict[str, str]:
    from tracker.outputs.mail import build_message, plan_mailing
    from tracker.text import utcnow

    message = build_message(store, plan_mailing(store, topic.recipients[0], [topic], now=utcnow(), record=False),
                            sender="tracker@lab.example.org").message
    return {kind: message.get_body((kind,)).get_content().replace("\r\n", "\n") for kind in ("plain", "html")}


def test_a_trial_without_publication_types_is_in_the_rct_tier_marked_from_the_abstract_until_a_refetch(
        store, monkeypatch):
    from lxml import html as lxml_html

    from tracker.outputs.render import escape_markdown
    from tracker.store.runs import RunCounts, finish_run, start_run
    from tracker.topics import Topic

    monkeypatch.setattr("tracker.outputs.charts.chart_png", lambda store, slug, *, end: b"")
    topic = Topic(slug="cesarean", title="Norepinephrine in caesarean delivery", query="q", recipients=("a@example.org",))
    run = start_run(store, "cesarean", kind="fetch", query="q", window_start=None, window_end=None)
    save_papers(store, [rct_paper(81)], topic="cesarean", run_id=run.id)
    finish_run(store, run.id, RunCounts(new_papers=1))

    texts, mail = digest_texts(store, topic), mail_texts(store, topic)
    assert "## Randomized controlled trials (1)" in texts["md"]
    assert f"\n*{escape_markdown(FACTS_LINE)} (tier from the abstract)*\n" in texts["md"]
    assert ("RANDOMIZED CONTROLLED TRIALS (1)" in texts["text"]
            and "    Randomised trial · 110 patients · caesarean · norepinephrine 2.5 µg/min\n"
                "    infusion (prophylactic) vs phenylephrine 50 µg/min (tier from the\n    abstract)\n" in texts["text"])
    page = lxml_html.fromstring(texts["html"])
    [facts] = page.xpath('//section[@id="tier-rct"]/article[@data-pmid="81"]/p[@class="study-facts"]')
    assert (facts.text_content(), facts.xpath('span[@class="tier-mark"]')[0].text) == (
        f"{FACTS_LINE} tier from the abstract", "tier from the abstract")
    assert "  RANDOMIZED CONTROLLED TRIALS (1)" in mail["plain"]
    assert f"{FACTS_LINE} (tier from the abstract)" in " ".join(mail["plain"].split())
    assert f"{FACTS_LINE} <span" in mail["html"] and ">tier from the abstract</span>" in mail["html"]

    save_refreshed(store, [(rct_paper(81, ("Randomized Controlled Trial", "Journal Article")), ())], run_id=None)
    texts, mail = digest_texts(store, topic), mail_texts(store, topic)
    for rendered in (*texts.values(), *mail.values()):
        assert "from the abstract" not in rendered
    assert f"\n*{escape_markdown(FACTS_LINE)}*\n" in texts["md"] and "## Randomized controlled trials (1)" in texts["md"]
    [facts] = lxml_html.fromstring(texts["html"]).xpath('//section[@id="tier-rct"]//p[@class="study-facts"]')
    assert facts.text_content() == FACTS_LINE


# -- the web app -----------------------------------------------------------------------------------------------

DOSE_FREE = (AbstractSection(None, None, "We reviewed the charts of 40 patients with septic shock treated with "
                                         "norepinephrine in our intensive care unit."),)


def facts_library(tmp_path, db_url):
    from tracker.settings import Settings

    home = tmp_path / "home"
    write_topic(home, "cesarean", "norepinephrine cesarean")
    settings = Settings.from_env(home=home, env={"TRACKER_REVIEWER": "ana", "TRACKER_DB_URL": db_url})
    store = open_store(db_url)
    save_papers(store, [
        rct_paper(91),
        make_paper(92, title="Norepinephrine in septic shock: a retrospective cohort", abstract_sections=DOSE_FREE,
                   publication_types=("Journal Article", "Observational Study"), mesh_headings=()),
        make_paper(93, title=REVIEW_TITLE, abstract_sections=REVIEW_SECTIONS, publication_types=("Review",),
                   mesh_headings=()),
    ], topic="cesarean")
    return settings, store


def web_client(settings, store):
    from tests.test_web import personal

    return personal(settings, store)


def test_the_topic_page_shows_design_and_n_and_filters_on_design_population_and_a_stated_dose(tmp_path, db_url):
    from tests.test_web import listed

    settings, store = facts_library(tmp_path, db_url)
    try:
        client = web_client(settings, store)
        page = client.get("/topics/cesarean").text
        assert '<th scope="col">Design</th><th scope="col" class="num">N</th>' in page
        rows = {int(pmid): cells for pmid, cells in re.findall(
            r'<td><a href="/papers/(\d+)">\d+</a></td>(.*?)</tr>', page, re.S)}
        assert re.search(r"<td>Randomized controlled trials <span class=\"tier-mark\">from the abstract</span></td>\s*"
                         r"<td>Randomised trial</td>\s*<td class=\"num\">110</td>", rows[91])
        assert re.search(r"<td>Other clinical studies</td>\s*<td>Observational study</td>\s*<td class=\"num\">40</td>",
                         rows[92])
        assert re.search(r"<td>Reviews</td>\s*<td>Review</td>\s*<td class=\"num\"></td>", rows[93])
        cases = {
            "design=rct": [91], "design=observational": [92], "design=review": [93], "design=guideline": [],
            "population=cesarean": [91], "population=sepsis": [93, 92], "population=hepatorenal": [],
            "dose=1": [91], "dose=1&population=sepsis": [], "design=observational&population=sepsis": [92],
            "tier=rct": [91],
        }
        for query, pmids in cases.items():
            response = client.get(f"/topics/cesarean?{query}")
            assert (query, response.status_code, listed(response.text)) == (query, 200, pmids)
        # Exports pick the papers of an indexed filter first (tracker/store/listing.py _selection), with or
        # without a first-seen date.
        from datetime import date

        from starlette.requests import Request

        from tracker.outputs.export import selection_of
        from tracker.store.listing import select_batches
        from tracker.web.pages import read_filters

        for query, pmids in cases.items():
            exported = client.get(f"/topics/cesarean/export.csv?{query}").text.splitlines()
            assert (query, [int(line.split(",")[0]) for line in exported[1:]]) == (query, pmids)
            filters, _sort, _search = read_filters(Request({"type": "http", "query_string": query.encode(), "headers": []}))
            for since in (None, date(2000, 1, 1), date(2999, 1, 1)):
                selection = selection_of(store, ["cesarean"], since=since, filters=filters)
                found = [row.pmid for batch in select_batches(store, selection, ("pmid",)) for row in batch]
                assert (query, since, found) == (query, since, pmids if since != date(2999, 1, 1) else [])
        for query, message in (("design=cohort", "unknown study design 'cohort': use one of rct, non-randomised trial, "
                                                 "observational, case report, systematic review, review, guideline, "
                                                 "animal or laboratory, protocol, other"),
                               ("population=adults", "unknown population 'adults': use one of cesarean, elderly, sepsis, "
                                                     "cardiac surgery, non-cardiac surgery, critical care, pediatric, "
                                                     "hepatorenal, other")):
            refused = client.get(f"/topics/cesarean?{query}")
            assert refused.status_code == 400 and html_unescape(refused.text).count(message) == 1
        exported = client.get("/topics/cesarean/export.csv?dose=1").text.splitlines()
        assert [line.split(",")[0] for line in exported[1:]] == ["91"]
    finally:
        store.close()


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_the_paper_and_screening_pages_show_the_line_and_mark_the_words_each_fact_came_from(tmp_path, db_url):
    settings, store = facts_library(tmp_path, db_url)
    try:
        client = web_client(settings, store)
        for url in ("/papers/91", "/topics/cesarean/screen?pmid=91"):
            page = client.get(url).text
            assert f'<p class="study-facts">{FACTS_LINE}</p>' in page, url
            assert 'Randomized controlled trials <span class="tier-mark">tier from the abstract</span>' in page, url
            marks = re.findall(r'<mark class="fact (\w+)" title="([^"]*)">([^<]*)</mark>', html_unescape(page))
            assert marks == [
                ("population", "population: caesarean", "caesarean"),
                ("design", "design: Randomised trial", "randomised"),
                ("size", "sample size: 110", "110 women"),
                ("population", "population: caesarean", "caesarean"),
                ("dose", "dose: norepinephrine 2.5 µg/min infusion prophylactic", "2.5 µg/min"),
                ("comparator", "comparator: phenylephrine", "phenylephrine"),
                ("dose", "dose: phenylephrine 50 µg/min infusion prophylactic", "50 µg/min"),
            ], url
            assert '<strong>METHODS:</strong> <mark class="fact size"' in page, url
        paper = client.get("/papers/91").text
        assert "<th scope=\"row\">Doses</th><td><ul><li>norepinephrine 2.5 µg/min infusion prophylactic</li>" in paper
        assert "read from the title and abstract" in paper
        typed = client.get("/papers/93").text
        assert "tier-mark" not in typed and "from its publication types" in typed

        save_refreshed(store, [(rct_paper(91, ("Randomized Controlled Trial",)), ())], run_id=None)
        for url in ("/papers/91", "/topics/cesarean/screen?pmid=91", "/topics/cesarean"):
            assert "from the abstract" not in client.get(url).text, url
    finally:
        store.close()


# -- exports ---------------------------------------------------------------------------------------------------

def test_csv_excel_ris_and_jsonl_carry_the_facts(tmp_path, db_url):
    import csv
    import io

    from openpyxl import load_workbook

    from tracker.outputs.export import CSV_COLUMNS, export_papers

    settings, store = facts_library(tmp_path, db_url)
    try:
        def exported(fmt: str) -> bytes:
            buffer = io.BytesIO()
            export_papers(store, ["cesarean"], buffer, fmt=fmt, sort="oldest")
            return buffer.getvalue()

        assert CSV_COLUMNS[-7:] == ("evidence", "design", "sample_size", "population", "comparators", "doses",
                                    "evidence_source")
        rows = list(csv.DictReader(io.StringIO(exported("csv").decode("utf-8"))))
        assert [[row[name] for name in CSV_COLUMNS[-7:]] for row in rows] == [
            ["rct", "rct", "110", "cesarean", "phenylephrine",
             "norepinephrine 2.5 µg/min infusion prophylactic; phenylephrine 50 µg/min infusion prophylactic",
             "abstract"],
            ["clinical", "observational", "40", "sepsis", "", "", "publication types"],
            ["review", "review", "", "sepsis", "", "", "publication types"],
        ]
        sheet = load_workbook(io.BytesIO(exported("xlsx")), read_only=True)["papers"]
        header, *cells = [list(row) for row in sheet.iter_rows(values_only=True)]
        assert [dict(zip(header, row, strict=True))["sample_size"] for row in cells] == [110, 40, None]
        assert dict(zip(header, cells[0], strict=True))["doses"] == rows[0]["doses"]

        ris = exported("ris").decode("utf-8")
        assert ("N1  - study facts: evidence rct (from the abstract); design rct; sample size 110; population cesarean; "
                "comparators phenylephrine; doses norepinephrine 2.5 µg/min infusion prophylactic, phenylephrine 50 "
                "µg/min infusion prophylactic\r\n") in ris
        assert "N1  - study facts: evidence review (from the publication types); design review; population sepsis\r\n" in ris

        records = [json.loads(line) for line in exported("jsonl").decode("utf-8").splitlines()]
        first = records[0]
        assert list(first) == [*CSV_COLUMNS, "facts"]
        assert {name: first[name] for name in ("pmid", "year", "late_arrival", "decision", "reasons", "relevance",
                                               "authors", "topics", "publication_types", "mesh_terms", "status")} == {
            "pmid": 91, "year": 2019, "late_arrival": True, "decision": "unscreened", "reasons": [], "relevance": None,
            "authors": ["Ngan Kee WD", "NOR-CS Investigators"], "topics": ["cesarean"],
            "publication_types": ["Journal Article"], "mesh_terms": [], "status": None}
        assert {name: first[name] for name in CSV_COLUMNS[-7:]} == {
            "evidence": "rct", "design": "rct", "sample_size": 110, "population": ["cesarean"],
            "comparators": ["phenylephrine"],
            "doses": ["norepinephrine 2.5 µg/min infusion prophylactic", "phenylephrine 50 µg/min infusion prophylactic"],
            "evidence_source": "abstract"}
        paper = rct_paper(91)
        assert first["facts"] == extract_facts(paper.title, paper.abstract, paper.publication_types).to_labels()
        assert first["facts"]["doses"][0] == {"drug": "norepinephrine", "low": 2.5, "high": 2.5, "unit": "µg/min",
                                              "mode": "infusion", "timing": "prophylactic", "role": "given",
                                              "text": "2.5 µg/min"}
        assert [record["sample_size"] for record in records] == [110, 40, None]
        assert records[2]["evidence_source"] == "publication types" and records[2]["facts"]["design"] == "review"
    finally:
        store.close()


def test_tracker_export_format_jsonl_on_the_command_line(tmp_path, db_url):
    settings, store = facts_library(tmp_path, db_url)
    store.close()
    env = cli_env(settings.home, None, TRACKER_DB_URL=db_url)
    printed = run_tracker("export", "cesarean", "--format", "jsonl", env=env)
    assert printed.code == 0, printed.err
    assert [json.loads(line)["pmid"] for line in printed.out.splitlines()] == [93, 92, 91]
    written = run_tracker("export", "--format", "jsonl", "-o", str(tmp_path / "papers.jsonl"), env=env)
    assert (written.code, written.err) == (0, f"exported 3 papers to {tmp_path / 'papers.jsonl'}\n")
    assert (tmp_path / "papers.jsonl").read_text(encoding="utf-8") == printed.out
    wrong = run_tracker("export", "--format", "jsonl", "-o", str(tmp_path / "papers.csv"), env=env)
    assert wrong.code == 2 and "-o papers.csv names a csv file but the format is jsonl" in wrong.err


# -- hostile and empty text, end to end ------------------------------------------------------------------------

HOSTILE_RECORDS = {
    301: ("", ()),  # no title, no abstract
    302: ("<script>alert(1)</script> norepinephrine 2.5 µg/min <b>vs</b> phenylephrine",
          (AbstractSection("METHODS", "METHODS", '60 women <img src=x onerror=alert(1)> received norepinephrine 5 µg '
                                                 '"><script>x</script> boluses.'),)),
    303: ("Odd text", (AbstractSection(None, None, "µ·⁻¹–— \u200b\ufeff İİİ ẞ ǅ (((((" * 50),)),
    304: ("Long", (AbstractSection(None, None, "0.05 µg/kg/min norepinephrine or phenylephrine in 60 patients "
                                               "(n = 30). " * 1_400),)),
}


def test_hostile_and_empty_records_are_stored_shown_and_exported(tmp_path, db_url):
    settings, store = facts_library(tmp_path, db_url)
    try:
        save_papers(store, [make_paper(pmid, title=title, abstract_sections=sections, publication_types=(),
                                       mesh_headings=()) for pmid, (title, sections) in HOSTILE_RECORDS.items()],
                    topic="cesarean")
        facts = stored_facts(store, list(HOSTILE_RECORDS))
        assert facts[301].facts == StudyFacts(version=EXTRACTOR_VERSION) and facts[301].tier == "other"
        assert [(dose.drug, dose.text) for dose in facts[302].facts.doses] == [
            ("norepinephrine", "2.5 µg/min"), ("norepinephrine", "5 µg")]
        client = web_client(settings, store)
        for pmid in HOSTILE_RECORDS:
            page = client.get(f"/papers/{pmid}")
            assert page.status_code == 200, pmid
            assert "<script>" not in page.text and "<img src=x" not in page.text, pmid
        screen = client.get("/topics/cesarean/screen?pmid=302").text
        assert '<mark class="fact dose" title="dose: norepinephrine 2.5 µg/min infusion">2.5 µg/min</mark>' in screen
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in screen
        assert client.get("/topics/cesarean/doses").status_code == 200
        for fmt in ("csv", "jsonl", "ris"):
            assert client.get(f"/topics/cesarean/export.{fmt}").status_code == 200, fmt
        texts = digest_texts(store, Topic_of("cesarean"))
        assert "<script>" not in texts["html"] and "\\<script\\>" in texts["md"]
    finally:
        store.close()


def Topic_of(slug: str):
    from tracker.topics import Topic

    return Topic(slug=slug, title=slug, query="q")
