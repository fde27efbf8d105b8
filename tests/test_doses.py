"""The dose map (tracker/outputs/doses.py): `tracker doses` as a table, CSV, JSON and SVG, the web app's Doses page,
and the SVG drawn by headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from tests.conftest import cli_env, run_tracker, write_topic
from tests.test_store import make_paper
from tests.test_study_facts import RCT_SECTIONS, RCT_TITLE
from tracker.ncbi.pubmed import AbstractSection
from tracker.outputs.doses import CSV_COLUMNS, Scale, radius, render_svg, scale_for
from tracker.settings import Settings
from tracker.store import open_store
from tracker.store.papers import save_papers

SEPSIS_TITLE = "Norepinephrine versus vasopressin in septic shock: a randomised trial"
SEPSIS = (AbstractSection("METHODS", "METHODS",
                          "Sixty patients with septic shock were randomly assigned to norepinephrine started at "
                          "0.05 µg/kg/min and titrated up to 0.5 µg/kg/min, or to vasopressin 0.03 U/min."),)
COHORT_TITLE = "Rescue norepinephrine boluses during spinal anaesthesia for caesarean delivery: a retrospective cohort"
COHORT = (AbstractSection(None, None, "We reviewed the records of 240 women who received norepinephrine boluses of 4 to "
                                      "8 µg to treat hypotension during spinal anaesthesia for caesarean delivery."),)
NO_DOSE = (AbstractSection(None, None, "This review discusses norepinephrine in sepsis."),)


@pytest.fixture
def dose_home(tmp_path, db_url):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    store = open_store(db_url)
    save_papers(store, [
        make_paper(201, title=RCT_TITLE, abstract_sections=RCT_SECTIONS, publication_types=("Journal Article",),
                   mesh_headings=()),
        make_paper(202, title=SEPSIS_TITLE, abstract_sections=SEPSIS, publication_types=("Randomized Controlled Trial",),
                   mesh_headings=()),
        make_paper(203, title=COHORT_TITLE, abstract_sections=COHORT, publication_types=("Journal Article",),
                   mesh_headings=()),
        make_paper(204, title="Norepinephrine: a review", abstract_sections=NO_DOSE, publication_types=("Review",),
                   mesh_headings=()),
    ], topic="dosing")
    store.close()
    return home, cli_env(home, None, TRACKER_DB_URL=db_url)


TABLE = """\
6 stated doses in 3 papers of 'dosing'

norepinephrine · bolus · µg: 1 dose in 1 paper
dose    timing  role   pmid  year  design               N    title
------  ------  -----  ----  ----  -------------------  ---  ------------------------------------------------------------
4–8 µg  rescue  given  203   2019  Observational study  240  Rescue norepinephrine boluses during spinal anaesthesia for…

norepinephrine · infusion · µg/min: 1 dose in 1 paper
dose        timing        role   pmid  year  design            N    title
----------  ------------  -----  ----  ----  ----------------  ---  ------------------------------------------------------------
2.5 µg/min  prophylactic  given  201   2019  Randomised trial  110  Prophylactic norepinephrine infusion for caesarean delivery…

norepinephrine · infusion · µg/kg/min: 2 doses in 1 paper
dose            timing  role   pmid  year  design            N   title
--------------  ------  -----  ----  ----  ----------------  --  ------------------------------------------------------------
0.05 µg/kg/min  rescue  given  202   2019  Randomised trial  60  Norepinephrine versus vasopressin in septic shock: a random…
0.5 µg/kg/min   rescue  given  202   2019  Randomised trial  60  Norepinephrine versus vasopressin in septic shock: a random…

phenylephrine · infusion · µg/min: 1 dose in 1 paper
dose       timing        role   pmid  year  design            N    title
---------  ------------  -----  ----  ----  ----------------  ---  ------------------------------------------------------------
50 µg/min  prophylactic  given  201   2019  Randomised trial  110  Prophylactic norepinephrine infusion for caesarean delivery…

vasopressin · infusion · U/min: 1 dose in 1 paper
dose        timing  role   pmid  year  design            N   title
----------  ------  -----  ----  ----  ----------------  --  ------------------------------------------------------------
0.03 U/min  rescue  given  202   2019  Randomised trial  60  Norepinephrine versus vasopressin in septic shock: a random…
"""


def test_the_dose_map_as_a_table_csv_and_json(dose_home):
    home, env = dose_home
    table = run_tracker("doses", "dosing", env=env)
    assert (table.code, table.err) == (0, "")
    assert [line.rstrip() for line in table.out.splitlines()] == [line.rstrip() for line in TABLE.splitlines()]

    printed = run_tracker("doses", "dosing", "--format", "csv", env=env)
    rows = list(csv.DictReader(io.StringIO(printed.out)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(row["drug"], row["mode"], row["unit"], row["low"], row["high"], row["timing"], row["role"], row["pmid"],
             row["design"], row["sample_size"], row["text"]) for row in rows] == [
        ("norepinephrine", "bolus", "µg", "4", "8", "rescue", "given", "203", "observational", "240", "4 to 8 µg"),
        ("norepinephrine", "infusion", "µg/min", "2.5", "2.5", "prophylactic", "given", "201", "rct", "110", "2.5 µg/min"),
        ("norepinephrine", "infusion", "µg/kg/min", "0.05", "0.05", "rescue", "given", "202", "rct", "60",
         "0.05 µg/kg/min"),
        ("norepinephrine", "infusion", "µg/kg/min", "0.5", "0.5", "rescue", "given", "202", "rct", "60", "0.5 µg/kg/min"),
        ("phenylephrine", "infusion", "µg/min", "50", "50", "prophylactic", "given", "201", "rct", "110", "50 µg/min"),
        ("vasopressin", "infusion", "U/min", "0.03", "0.03", "rescue", "given", "202", "rct", "60", "0.03 U/min"),
    ]

    found = json.loads(run_tracker("doses", "dosing", "--format", "json", "--drug", "Noradrenaline", env=env).out)
    assert (found["topic"], found["drug"], found["state"], found["papers"]) == ("dosing", "norepinephrine", None, 3)
    assert [(group["drug"], group["mode"], group["unit"], group["papers"], len(group["doses"]))
            for group in found["groups"]] == [("norepinephrine", "bolus", "µg", 1, 1),
                                              ("norepinephrine", "infusion", "µg/min", 1, 1),
                                              ("norepinephrine", "infusion", "µg/kg/min", 1, 2)]
    assert found["groups"][0]["doses"] == [{
        "low": 4, "high": 8, "timing": "rescue", "role": "given", "pmid": 203, "year": 2019, "design": "observational",
        "sample_size": 240, "title": COHORT_TITLE, "text": "4 to 8 µg", "pubmed_url": "https://pubmed.ncbi.nlm.nih.gov/203/"}]


def test_state_limits_the_map_to_the_papers_in_it(dose_home, db_url):
    from tracker.review.screening import decide
    from tracker.topics import load_topic

    home, env = dose_home
    store = open_store(db_url)
    decide(store, load_topic(home / "queries" / "dosing.toml"), [202], "include", reviewer="ana")
    store.close()
    included = run_tracker("doses", "dosing", "--state", "included", "--format", "json", env=env)
    assert [group["unit"] for group in json.loads(included.out)["groups"]] == ["µg/kg/min", "U/min"]
    nothing = run_tracker("doses", "dosing", "--state", "excluded", env=env)
    assert (nothing.code, nothing.out) == (0, "No excluded paper of this topic states a dose.\n")


def test_bad_input_is_one_line_and_changes_nothing(dose_home, tmp_path):
    home, env = dose_home
    drug = run_tracker("doses", "dosing", "--drug", "bupivacaine", env=env)
    assert (drug.code, drug.out) == (2, "")
    assert drug.err.startswith("error: 'bupivacaine' is not a vasoactive drug the study facts record doses of: use one "
                               "of norepinephrine, epinephrine, phenylephrine, ")
    wrong = run_tracker("doses", "dosing", "-o", str(tmp_path / "map.svg"), env=env)
    assert wrong.code == 2 and "-o map.svg names a svg file but the format is table: pass --format svg" in wrong.err
    assert not (tmp_path / "map.svg").exists()
    unknown = run_tracker("doses", "nosuch", env=env)
    assert unknown.code == 2 and "nosuch" in unknown.err


def test_the_svg_has_a_dot_plot_per_unit_with_a_dot_per_dose(dose_home, tmp_path):
    from lxml import etree

    home, env = dose_home
    written = run_tracker("doses", "dosing", "--format", "svg", "-o", str(tmp_path / "doses.svg"), env=env)
    assert (written.code, written.err) == (0, f"wrote {tmp_path / 'doses.svg'}: 6 stated doses in 3 papers of 'dosing'\n")
    svg = etree.fromstring((tmp_path / "doses.svg").read_bytes())
    ns = {"s": "http://www.w3.org/2000/svg"}
    assert svg.get("role") == "img" and svg.findtext("s:title", namespaces=ns) == "Stated doses: Dosing topic"
    assert [panel.get("data-unit") for panel in svg.findall("s:g[@class='panel']", ns)] == [
        "µg", "µg/min", "µg/kg/min", "U/min"]
    dots = svg.findall(".//s:a[@class='dose']", ns)
    assert sorted(int(dot.get("data-pmid")) for dot in dots) == [201, 201, 202, 202, 202, 203]
    assert dots[0].get("href") == "https://pubmed.ncbi.nlm.nih.gov/203/"
    assert dots[0].findtext("s:title", namespaces=ns) == (
        f"PMID 203 (2019): {COHORT_TITLE} · Observational study · 240 patients · norepinephrine 4–8 µg bolus rescue")
    assert dots[0].find("s:line", ns) is not None  # a range: a line from 4 to 8 µg under its dot
    log_panel = svg.find("s:g[@data-unit='µg/kg/min']", ns)
    assert "(log scale)" in "".join(log_panel.itertext())  # 0.05 to 0.5: a decade


def test_scales_and_dot_sizes():
    assert scale_for([0.05, 0.5]) == Scale(0.01, 1.0, True)
    assert scale_for([2.5, 8]) == Scale(0.0, 10.0, False)
    assert scale_for([50]) == Scale(0.0, 60.0, False)
    assert scale_for([]) == Scale(0.0, 1.0, False)
    assert Scale(0.01, 1.0, True).ticks() == [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
    assert Scale(0.0, 10.0, False).ticks() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert Scale(0.01, 100.0, True).x(1.0) == pytest.approx((Scale(0.01, 100.0, True).x(0.01)
                                                              + Scale(0.01, 100.0, True).x(100.0)) / 2)
    assert (radius(None, 100), radius(100, 100), radius(25, 100)) == (3.0, 13.0, 8.0)


def test_record_text_cannot_break_out_of_the_svg():
    from tracker.outputs.doses import DoseGroup, DoseMap, DosePoint
    from tracker.topics import Topic

    hostile = '</title><script>alert(1)</script><a href="javascript:x">'
    point = DosePoint(1, hostile, 2020, "rct", 10, "norepinephrine", 1, 2, "µg/min", "infusion", "rescue", "given", hostile)
    svg = render_svg(DoseMap(Topic(slug="t", title=hostile, query="q"), None, None,
                             (DoseGroup("norepinephrine", "infusion", "µg/min", (point,)),)))
    from lxml import etree

    parsed = etree.fromstring(svg.encode("utf-8"))
    assert not parsed.findall(".//{http://www.w3.org/2000/svg}script")
    assert "<script>" not in svg and "&lt;script&gt;" in svg


# -- the web app ------------------------------------------------------------------------------------------------

def test_the_doses_page_and_its_downloads(dose_home, db_url):
    from tests.test_web import personal

    home, _env = dose_home
    settings = Settings.from_env(home=home, env={"TRACKER_REVIEWER": "ana", "TRACKER_DB_URL": db_url})
    store = open_store(db_url)
    try:
        client = personal(settings, store)
        assert '<a href="/topics/dosing/doses">Doses</a>' in client.get("/topics/dosing").text
        page = client.get("/topics/dosing/doses")
        assert page.status_code == 200
        assert "6 stated doses in 3 papers of &#39;dosing&#39;" in page.text
        assert page.text.count('<a href="/papers/202" class="dose" data-pmid="202">') == 3
        assert re.findall(r"<h2>([^<]*) <span", page.text) == [
            "norepinephrine · bolus · µg", "norepinephrine · infusion · µg/min", "norepinephrine · infusion · µg/kg/min",
            "phenylephrine · infusion · µg/min", "vasopressin · infusion · U/min"]
        assert " style=" not in page.text and "<script>" not in page.text
        only = client.get("/topics/dosing/doses?drug=vasopressin")
        assert "1 stated dose in 1 paper of &#39;dosing&#39; (vasopressin)" in only.text
        svg = client.get("/topics/dosing/doses.svg?drug=vasopressin")
        assert (svg.status_code, svg.headers["content-type"]) == (200, "image/svg+xml")
        assert svg.text.count('class="dose"') == 1
        table = client.get("/topics/dosing/doses.csv")
        assert table.text.splitlines()[0] == ",".join(CSV_COLUMNS) and len(table.text.splitlines()) == 7
        assert json.loads(client.get("/topics/dosing/doses.json?state=unscreened").text)["papers"] == 3
        refused = client.get("/topics/dosing/doses?drug=oxytocin")
        assert refused.status_code == 400 and "is not a vasoactive drug" in refused.text
        assert client.get("/topics/dosing/doses.png").status_code == 404
    finally:
        store.close()


@pytest.mark.browser
def test_headless_chromium_draws_the_dose_map(dose_home, db_url, tmp_path):
    from tests.test_web_browser import CHROMIUM, CHROMIUM_ARGS, served, shot

    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    home, env = dose_home
    assert run_tracker("doses", "dosing", "--format", "svg", "-o", str(tmp_path / "doses.svg"), env=env).code == 0
    settings = Settings.from_env(home=home, env={"TRACKER_REVIEWER": "ana", "TRACKER_DB_URL": db_url})
    store = open_store(db_url)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 900, "height": 900})
                page.goto((tmp_path / "doses.svg").as_uri())
                drawn = page.evaluate("""() => Array.from(document.querySelectorAll('a.dose circle')).map(c => {
                    const box = c.getBoundingClientRect(); return [box.width, box.height, box.left]; })""")
                assert len(drawn) == 6 and all(width > 4 and height > 4 for width, height, _left in drawn)
                assert all(210 <= left <= 740 for _width, _height, left in drawn)  # inside the plot area
                with served(settings, store) as (url, access):
                    page.goto(f"{url}/?token={access.token}")
                    page.goto(url + "/topics/dosing/doses")
                    expect(page.get_by_role("heading", name="Doses: Dosing topic")).to_be_visible()
                    expect(page.locator("figure.dose-map svg")).to_be_visible()
                    assert page.locator("figure.dose-map a.dose").count() == 6
                    shot(page, "doses")
                    page.locator('figure.dose-map a.dose[data-pmid="203"]').click()
                    expect(page).to_have_url(url + "/papers/203")
            finally:
                browser.close()
    finally:
        store.close()
