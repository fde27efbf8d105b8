"""Export: whole CSV and RIS documents, through the library and the command line."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import write_topic
from tests.pubmed_xml import article_set, article_xml, book_xml
from tracker.cli import cli
from tracker.files import OUTPUT_FILE_ADVICE, atomic_output
from tracker.ncbi.pubmed import AbstractSection, Author, MeshHeading, Paper, iter_papers
from tracker.outputs.export import CSV_COLUMNS, csv_bytes, export_papers, export_rows, ris_record, write_csv
from tracker.store import open_store
from tracker.store.models import TopicPaper
from tracker.store.papers import save_papers

HEADER = list(CSV_COLUMNS)


def make_paper(pmid: int, **changes) -> Paper:
    values = dict(
        pmid=pmid, kind="article", title=f"Vasopressor trial {pmid}",
        abstract_sections=(AbstractSection(None, None, "Abstract text."),),
        authors=(Author("Ngan Kee", "Warwick D", "WD"),),
        journal="Anesthesia and analgesia", journal_iso="Anesth Analg", volume="130", issue="2", pages="301-9",
        pub_date_text="2024 Mar 5", pub_date=date(2024, 3, 5), doi=f"10.1000/{pmid}",
        publication_types=("Journal Article",), languages=("eng",),
        history=(("entrez", "2024-02-28"), ("pubmed", "2024-02-28")),
    )
    values.update(changes)
    return Paper(**values)


def parsed_paper() -> Paper:
    xml = article_xml(
        101, created=date(2024, 2, 28), title="Norepinephrine versus <i>phenylephrine</i> for spinal hypotension",
        abstract=[("BACKGROUND", "BACKGROUND", "Hypotension is common."), ("RESULTS", "RESULTS", "Both <b>worked</b>.")],
        authors=({"last": "Kjørsvik", "fore": "Åse", "initials": "Å"}, {"last": "Sözeri", "fore": "Ömer", "initials": "Ö"}),
        mesh=(("Norepinephrine", "D009638", True), "Hypotension"), keywords=("vasopressor", "spinal anaesthesia"),
        doi="10.1213/ANE.101", pmcid="PMC101", pages="301-9", pub_date=date(2024, 3, 5),
        publication_types=("Randomized Controlled Trial", "Journal Article"),
    )
    [paper] = iter_papers(article_set(xml))
    return paper


PAPERS = {
    101: parsed_paper(),
    102: make_paper(
        102, title='<script>alert("x")</script> Vasopressors, a review',
        authors=(Author("-Dash", "Ann", "A"), Author(collective_name="NOR-CS Investigators")),
        pub_date_text=None, pub_date=None, doi=None, keywords=("line one\nline two",),
        mesh_headings=(MeshHeading("Vasoconstrictor Agents", "D014662", False),),
        history=(("entrez", "2019-01-05"), ("pubmed", "2024-03-01")),
    ),
    103: make_paper(103, title='=HYPERLINK("http://x")'),
    104: make_paper(104, title="+44 trial of vasopressin", keywords=("@risk",), pmcid="PMC104"),
    105: make_paper(105),
}
FIRST_SEEN = {
    ("dosing", 101): datetime(2024, 3, 2, 8, 0, tzinfo=timezone.utc),
    ("dosing", 102): datetime(2024, 3, 3, 9, 30, tzinfo=timezone.utc),
    ("dosing", 103): datetime(2024, 3, 1, 10, 0, tzinfo=timezone.utc),
    ("dosing", 105): datetime(2024, 3, 3, 9, 30, tzinfo=timezone.utc),
    ("elderly", 103): datetime(2024, 2, 20, 12, 0, tzinfo=timezone.utc),
    ("elderly", 104): datetime(2024, 2, 10, 7, 15, tzinfo=timezone.utc),
}


def url(pmid: int) -> str:
    return f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"


ROWS = {
    105: ["105", "Vasopressor trial 105", "Ngan Kee WD", "Anesthesia and analgesia", "2024", "2024 Mar 5",
          "10.1000/105", "", "Journal Article", "", "", "dosing", "2024-03-03T09:30:00Z", "false", url(105), ""],
    102: ["102", '<script>alert("x")</script> Vasopressors, a review', "'-Dash A; NOR-CS Investigators",
          "Anesthesia and analgesia", "", "", "", "", "Journal Article", "Vasoconstrictor Agents",
          "line one\nline two", "dosing", "2024-03-03T09:30:00Z", "true", url(102), ""],
    101: ["101", "Norepinephrine versus phenylephrine for spinal hypotension", "Kjørsvik Å; Sözeri Ö",
          "Anesthesia and analgesia", "2024", "2024 Mar 5", "10.1213/ANE.101", "PMC101",
          "Randomized Controlled Trial; Journal Article", "Norepinephrine*; Hypotension",
          "vasopressor; spinal anaesthesia", "dosing", "2024-03-02T08:00:00Z", "false", url(101), ""],
    103: ["103", "'=HYPERLINK(\"http://x\")", "Ngan Kee WD", "Anesthesia and analgesia", "2024", "2024 Mar 5",
          "10.1000/103", "", "Journal Article", "", "", "dosing; elderly", "2024-02-20T12:00:00Z", "false", url(103),
          ""],
    104: ["104", "'+44 trial of vasopressin", "Ngan Kee WD", "Anesthesia and analgesia", "2024", "2024 Mar 5",
          "10.1000/104", "PMC104", "Journal Article", "", "'@risk", "elderly", "2024-02-10T07:15:00Z", "false",
          url(104), ""],
}

MEMBERS = {pmid: sorted(topic for topic, paper in FIRST_SEEN if paper == pmid) for pmid in PAPERS}


def unscreened(pmid: int, exported: Sequence[str] = ("dosing", "elderly")) -> list[str]:
    """The four screening cells of a paper nobody has screened yet, exported with the topics `exported`."""
    member = [topic for topic in MEMBERS[pmid] if topic in exported]
    decision = "; ".join(f"{topic}: unscreened" for topic in member) if len(exported) > 1 else "unscreened"
    return [decision, "", "", ""]


# The study-facts cells (evidence, design, sample_size, population, comparators, doses, evidence_source): 101 is a typed
# RCT comparing with phenylephrine; 102's title calls it a review, which is its tier while its types name none; the
# others name no design (read as a review for want of data, which leaves the tier alone).
FACTS = {
    101: ["rct", "rct", "", "other", "phenylephrine", "", "publication types"],
    102: ["review", "review", "", "other", "", "", "abstract"],
    103: ["other", "review", "", "other", "", "", ""],
    104: ["other", "review", "", "other", "", "", ""],
    105: ["other", "review", "", "other", "", "", ""],
}


def row(pmid: int, exported: Sequence[str] = ("dosing", "elderly")) -> list[str]:
    # no editors, no trial ids, no relevance yet, not at full text
    return ROWS[pmid] + unscreened(pmid, exported) + ["", "", "", "", ""] + FACTS[pmid]


RIS_103 = (
    'TY  - JOUR\r\nTI  - =HYPERLINK("http://x")\r\nAU  - Ngan Kee, Warwick D\r\nPY  - 2024\r\nDA  - 2024/03/05/\r\n'
    "T2  - Anesthesia and analgesia\r\nJ2  - Anesth Analg\r\nVL  - 130\r\nIS  - 2\r\nSP  - 301\r\nEP  - 309\r\n"
    "AB  - Abstract text.\r\nKW  - screening: unscreened\r\nDO  - 10.1000/103\r\nAN  - 103\r\n"
    "UR  - https://pubmed.ncbi.nlm.nih.gov/103/\r\nLA  - eng\r\nN1  - topics: dosing; elderly\r\n"
    "N1  - screening: unscreened\r\nN1  - study facts: evidence other; design review; population other\r\n"
    "ER  - \r\n\r\n"
)


@dataclass(frozen=True)
class Home:
    path: Path
    url: str  # the database, on either back end (the db_url fixture)


@pytest.fixture
def home(tmp_path, db_url):
    path = tmp_path / "home"
    write_topic(path, "dosing", "norepinephrine dosing")
    write_topic(path, "elderly", "norepinephrine elderly")
    store = open_store(db_url)
    save_papers(store, [PAPERS[p] for p in (101, 102, 103, 105)], topic="dosing")
    save_papers(store, [PAPERS[p] for p in (103, 104)], topic="elderly")
    table = TopicPaper.__table__
    with store.engine.begin() as connection:
        for (topic, pmid), moment in FIRST_SEEN.items():
            connection.execute(table.update().where(table.c.topic == topic, table.c.pmid == pmid)
                               .values(first_seen_at=moment))
    store.close()
    return Home(path, db_url)


def invoke(home: Home, *args):
    result = CliRunner().invoke(cli, ["--home", str(home.path), *args], env={"TRACKER_DB_URL": home.url})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_csv_of_every_topic_lists_each_paper_once_newest_first(home):
    result = invoke(home, "export")
    assert result.exit_code == 0 and result.stderr == ""
    assert parse(result.stdout_bytes) == [HEADER] + [row(p) for p in (105, 102, 101, 103, 104)]
    assert result.stdout_bytes.startswith(",".join(HEADER).encode() + b"\r\n105,Vasopressor trial 105,")
    assert b'"line one\nline two"' in result.stdout_bytes


def test_library_rows_match_the_command_line(home):
    store = open_store(home.url)
    buffer = io.BytesIO()
    assert write_csv(export_rows(store, ["dosing", "elderly"]), buffer) == 5
    assert buffer.getvalue() == invoke(home, "export", "dosing", "elderly").stdout_bytes
    [first] = list(export_rows(store, ["elderly"], since=date(2024, 2, 15)))
    assert first == {
        "pmid": 103, "title": '=HYPERLINK("http://x")', "authors": "Ngan Kee WD", "journal": "Anesthesia and analgesia",
        "year": 2024, "publication_date": "2024 Mar 5", "doi": "10.1000/103", "pmcid": None,
        "publication_types": "Journal Article", "mesh_terms": "", "keywords": "", "topics": "dosing; elderly",
        "first_seen": "2024-02-20T12:00:00Z", "late_arrival": "false", "pubmed_url": url(103),
        "status": "", "decision": "unscreened", "reasons": "", "reviewers": "", "notes": "", "editors": "",
        "trial_ids": "", "relevance": None, "full_text": "", "full_text_reasons": "",
        "evidence": "other", "design": "review", "sample_size": "",
        "population": "other", "comparators": "", "doses": "", "evidence_source": "",
    }
    store.close()


def test_since_keeps_papers_the_selected_topics_first_saw_on_or_after_that_day(home):
    every_topic = invoke(home, "export", "--since", "2024-03-01")
    assert parse(every_topic.stdout_bytes) == [HEADER] + [row(p) for p in (105, 102, 101)]
    # Seen by 'dosing' on March 1 but by 'elderly' in February: new to 'dosing' alone.
    dosing = invoke(home, "export", "dosing", "--since", "2024-03-01")
    assert parse(dosing.stdout_bytes) == [HEADER] + [row(p, ["dosing"]) for p in (105, 102, 101)] + [
        ROWS[103][:12] + ["2024-03-01T10:00:00Z"] + ROWS[103][13:] + unscreened(103, ["dosing"]) + ["", "", "", "", ""]
        + FACTS[103]]
    assert parse(invoke(home, "export", "--since", "2024-03-04").stdout_bytes) == [HEADER]


def test_csv_bytes_for_mail_follows_the_given_pmids(home):
    store = open_store(home.url)
    assert parse(csv_bytes(store, [104, 101, 999], topics=["elderly"])) == [
        HEADER, row(104, ["elderly"]), ROWS[101][:12] + [""] + ROWS[101][13:] + ["", "", "", "", "", "", "", "", ""]
        + FACTS[101]]
    assert csv_bytes(store, []) == ",".join(HEADER).encode() + b"\r\n"
    store.close()


def test_ris_record_of_a_parsed_paper():
    assert ris_record(PAPERS[101], ["dosing"]) == (
        "TY  - JOUR\r\nTI  - Norepinephrine versus phenylephrine for spinal hypotension\r\n"
        "AU  - Kjørsvik, Åse\r\nAU  - Sözeri, Ömer\r\nPY  - 2024\r\nDA  - 2024/03/05/\r\n"
        "T2  - Anesthesia and analgesia\r\nJ2  - Anesth Analg\r\nVL  - 130\r\nIS  - 2\r\nSP  - 301\r\nEP  - 309\r\n"
        "AB  - BACKGROUND: Hypotension is common. RESULTS: Both worked.\r\n"
        "KW  - vasopressor\r\nKW  - spinal anaesthesia\r\nKW  - Norepinephrine\r\nKW  - Hypotension\r\n"
        "DO  - 10.1213/ANE.101\r\nAN  - 101\r\nUR  - https://pubmed.ncbi.nlm.nih.gov/101/\r\nC2  - PMC101\r\n"
        "LA  - eng\r\nN1  - topics: dosing\r\nER  - \r\n\r\n"
    )
    assert ris_record(make_paper(7, kind="book", journal=None, journal_iso=None, volume=None, issue=None, pages=None,
                                 pub_date_text="2024", pub_date=date(2024, 1, 1), doi=None, languages=())) == (
        "TY  - BOOK\r\nTI  - Vasopressor trial 7\r\nAU  - Ngan Kee, Warwick D\r\nPY  - 2024\r\nAB  - Abstract text.\r\n"
        "AN  - 7\r\nUR  - https://pubmed.ncbi.nlm.nih.gov/7/\r\nER  - \r\n\r\n"
    )


def test_ris_through_the_command_line(home):
    result = invoke(home, "export", "elderly", "--since", "2024-02-15", "--format", "ris")
    assert result.exit_code == 0
    assert result.stdout_bytes == RIS_103.encode("utf-8")


def test_output_file_is_written_whole_and_reported_on_stderr(home, tmp_path):
    target = tmp_path / "out" / "papers.csv"
    target.parent.mkdir()
    result = invoke(home, "export", "-o", str(target))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", f"exported 5 papers to {target}\n")
    assert target.read_bytes() == b"\xef\xbb\xbf" + invoke(home, "export").stdout_bytes  # a file for Excel: the BOM
    assert [p.name for p in target.parent.iterdir()] == ["papers.csv"]


def test_a_failed_export_leaves_the_old_file_untouched(tmp_path):
    target = tmp_path / "papers.csv"
    target.write_text("old export\n")
    with pytest.raises(RuntimeError):
        with atomic_output(target, advice=OUTPUT_FILE_ADVICE) as file:
            file.write(b"half a new export")
            raise RuntimeError("database went away")
    assert target.read_text() == "old export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["papers.csv"]


def test_unwritable_output_is_one_line_and_exit_2(home, tmp_path):
    missing = tmp_path / "no-such-folder" / "papers.csv"
    result = invoke(home, "export", "-o", str(missing))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (f"error: cannot write {missing} (No such file or directory): "
                             "choose a writable file for -o, or '-' for stdout\n")


def test_every_unwritable_output_is_the_same_error_with_advice_that_fits_the_command(home, tmp_path):
    missing = tmp_path / "no-such-folder" / "digest.md"
    result = invoke(home, "digest", "dosing", "-o", str(missing))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (f"error: cannot write {missing} (No such file or directory): "
                             "choose a writable file for -o, or '-' for stdout\n")
    reports = home.path / "reports"
    reports.write_text("a file where the reports folder belongs")
    result = invoke(home, "digest", "dosing")  # `tracker run` writes the same files, and has no -o
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"error: cannot write {reports}/dosing/")
    assert result.stderr.endswith(f"(Not a directory): make {reports} writable or choose another home with --home\n")


def test_unknown_topic_is_refused_before_anything_is_written(home, tmp_path):
    target = tmp_path / "papers.csv"
    target.write_text("old export\n")
    result = invoke(home, "export", "dosing", "nope", "-o", str(target))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "error: unknown topic 'nope'; known topics: dosing, elderly\n"
    assert target.read_text() == "old export\n"


def test_the_export_writes_what_the_row_dicts_say_even_for_hostile_text(home):
    """export_papers' fast path (cells, no dict per row) against write_csv(export_rows(...)), every selection."""
    store = open_store(home.url)
    try:
        written = []
        for topics, since in ((["dosing", "elderly"], None), (["elderly"], date(2024, 2, 15)), (["dosing"], None)):
            fast, slow = io.BytesIO(), io.BytesIO()
            assert export_papers(store, topics, fast, since=since) == write_csv(export_rows(store, topics, since), slow)
            assert fast.getvalue() == slow.getvalue()
            written.append(fast.getvalue())
        assert b"'=HYPERLINK" in written[0] and b"'+44 trial" in written[0] and b"'@risk" in written[0]
    finally:
        store.close()


# -- spreadsheets and notebooks ------------------------------------------------------------------

def test_a_file_for_excel_starts_with_a_bom_and_stdout_does_not(home, tmp_path):
    target = tmp_path / "papers.csv"
    assert invoke(home, "export", "-o", str(target)).exit_code == 0
    plain = invoke(home, "export").stdout_bytes
    assert target.read_bytes() == b"\xef\xbb\xbf" + plain and plain.startswith(b"pmid,")
    assert invoke(home, "export", "--bom").stdout_bytes == b"\xef\xbb\xbf" + plain
    assert invoke(home, "export", "--no-bom", "-o", str(target)).exit_code == 0
    assert target.read_bytes() == plain
    # What Excel would show: the bytes read as UTF-8 because of the BOM, accents intact.
    assert "Kjørsvik Å; Sözeri Ö" in (b"\xef\xbb\xbf" + plain).decode("utf-8-sig")
    refused = invoke(home, "export", "--format", "ris", "--bom")
    assert refused.exit_code == 2 and refused.stderr.startswith(
        "error: --bom and --no-bom go with CSV: leave them out for --format ris, xlsx or jsonl (see '")


def test_the_workbook_has_the_csvs_rows_and_cells_with_links_dates_and_filters(home, tmp_path):
    import openpyxl

    target = tmp_path / "papers.xlsx"
    result = invoke(home, "export", "--format", "xlsx", "-o", str(target))
    assert (result.exit_code, result.stderr) == (0, f"exported 5 papers to {target}\n")
    book = openpyxl.load_workbook(target)
    assert book.sheetnames == ["papers", "about"]
    sheet = book["papers"]
    cells = [[cell.value for cell in row] for row in sheet.iter_rows()]
    expected = parse(invoke(home, "export").stdout_bytes)
    assert cells[0] == expected[0]
    for got, want in zip(cells[1:], expected[1:], strict=True):
        as_text = ["" if value is None else value for value in got]
        as_text[0], as_text[4] = str(as_text[0]), str(as_text[4]) if as_text[4] != "" else ""
        as_text[12] = got[12].strftime("%Y-%m-%dT%H:%M:%SZ")
        as_text[13] = "true" if got[13] else "false"
        # The CSV guards formulas with a leading "'"; the workbook writes every text cell as text instead.
        assert as_text == [cell[1:] if cell.startswith("'") and index in (1, 2, 10) else cell
                           for index, cell in enumerate(want)], (got, want)
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:{sheet.cell(1, len(HEADER)).column_letter}6"
    pubmed = sheet.cell(2, HEADER.index("pubmed_url") + 1)
    assert pubmed.hyperlink.target == "https://pubmed.ncbi.nlm.nih.gov/105/" and pubmed.value == pubmed.hyperlink.target
    assert sheet.cell(2, HEADER.index("doi") + 1).hyperlink.target == "https://doi.org/10.1000/105"
    assert isinstance(sheet.cell(2, HEADER.index("first_seen") + 1).value, datetime)
    assert sheet.column_dimensions["B"].width > 40  # the title column
    about = {row[0].value: row[1].value for row in book["about"].iter_rows()}
    assert about["papers"] == "5" and about["topic dosing"] == "Dosing topic: norepinephrine dosing"
    refused = invoke(home, "export", "--format", "xlsx")
    assert refused.exit_code == 2 and refused.stderr.startswith(
        "error: an Excel workbook is a file, not text for a terminal: add -o FILE.xlsx (see '")


def test_past_excels_link_limit_links_are_formulas_that_no_record_can_break(tmp_path):
    import openpyxl

    from tracker.outputs.spreadsheet import write_xlsx

    rows = [{"pmid": 1, "doi": '10.1/"),cmd("x', "pubmed_url": "https://pubmed.ncbi.nlm.nih.gov/1/"},
            {"pmid": 2, "doi": "10.1/2", "pubmed_url": "https://pubmed.ncbi.nlm.nih.gov/2/"}]
    target = tmp_path / "many.xlsx"
    with open(target, "wb") as file:
        assert write_xlsx(["pmid", "doi", "pubmed_url"], rows, file, max_links=3, expected=2) == 2
    sheet = openpyxl.load_workbook(target)["papers"]
    assert sheet.cell(2, 2).value == '=HYPERLINK("https://doi.org/10.1/""),cmd(""x","10.1/""),cmd(""x")'
    assert sheet.cell(3, 3).value == '=HYPERLINK("https://pubmed.ncbi.nlm.nih.gov/2/","https://pubmed.ncbi.nlm.nih.gov/2/")'


def test_papers_frame_gives_the_csv_columns_with_proper_dtypes(home, monkeypatch):
    import pandas

    import tracker

    monkeypatch.setenv("TRACKER_DB_URL", home.url)
    frame = tracker.papers_frame(["dosing"], home=home.path)
    assert list(frame.columns) == HEADER
    assert list(frame["pmid"]) == [105, 102, 101, 103]
    assert str(frame["pmid"].dtype) == "Int64" and isinstance(frame["first_seen"].dtype, pandas.DatetimeTZDtype)
    assert str(frame["first_seen"].dt.tz) == "UTC"
    row = frame.set_index("pmid").loc[101]
    assert row["authors"] == ["Kjørsvik Å", "Sözeri Ö"] and row["mesh_terms"] == ["Norepinephrine*", "Hypotension"]
    assert row["first_seen"] == pandas.Timestamp("2024-03-02T08:00:00Z") and not row["late_arrival"]
    assert frame.set_index("pmid").loc[102, "late_arrival"]
    assert pandas.isna(frame.set_index("pmid").loc[102, "year"])


# -- books and trial registrations -------------------------------------------------------------

BOOKS_AND_TRIALS = (
    book_xml(30000031, created=date(2024, 3, 10), title="Vasopressors in shock", book_title="Critical Care Handbook",
             authors=["Smith JA"], book_authors=["Whole W"], editors=["=Editor E", "Holloway M"],
             location_label="Chapter 4", publisher="Oxford University Press", publisher_location="Oxford",
             edition="2nd edition", volume="2", pages="11-19", pub_date={"Year": "2022"}, accession="NBK531234"),
    book_xml(30000032, created=date(2024, 3, 10), title=None, book_title="Holland-Frei Cancer Medicine", authors=(),
             editors=["Kufe DW", "Pollock RE"], edition="6th edition", publisher="BC Decker",
             publisher_location="Hamilton (ON)", pub_date={"Year": "2003"}, accession="NBK12354", abstract=None),
    article_xml(30000033, created=date(2024, 3, 10), title="Early norepinephrine in septic shock",
                abstract="Trial registration: EudraCT 2019-001234-56.", authors=["Ng C"],
                databanks=[("ClinicalTrials.gov", ["NCT02149199"]), ("GENBANK", ["AB123456"])]),
)


@pytest.fixture
def library(tmp_path, db_url):
    path = tmp_path / "library"
    write_topic(path, "books", "vasopressor books")
    store = open_store(db_url)
    save_papers(store, list(iter_papers(article_set(*BOOKS_AND_TRIALS))), topic="books")
    store.close()
    return Home(path, db_url)


def test_books_and_trial_ids_in_the_csv(library):
    exported = {cells[0]: dict(zip(HEADER, cells, strict=True)) for cells in parse(invoke(library, "export").stdout_bytes)[1:]}
    chapter, book, article = exported["30000031"], exported["30000032"], exported["30000033"]
    assert (chapter["title"], chapter["authors"], chapter["editors"], chapter["journal"], chapter["trial_ids"]) == (
        "Vasopressors in shock", "Smith JA; Whole W", "'=Editor E; Holloway M", "", "")
    assert (book["title"], book["authors"], book["editors"]) == ("Holland-Frei Cancer Medicine", "", "Kufe DW; Pollock RE")
    assert (article["editors"], article["trial_ids"]) == ("", "NCT02149199; 2019-001234-56")
    assert HEADER[19:25] == ["notes", "editors", "trial_ids", "relevance", "full_text", "full_text_reasons"]


def test_books_and_trial_ids_in_ris(library):
    records = invoke(library, "export", "--format", "ris").stdout_bytes.decode("utf-8").split("ER  - \r\n\r\n")
    by_pmid = {next(line[6:] for line in record.split("\r\n") if line.startswith("AN  - ")): record
               for record in records if record}
    assert by_pmid["30000031"] == (
        "TY  - CHAP\r\nTI  - Vasopressors in shock\r\nAU  - Smith, JA\r\nAU  - Whole, W\r\nA2  - =Editor, E\r\n"
        "A2  - Holloway, M\r\nPY  - 2022\r\nT2  - Critical Care Handbook\r\nVL  - 2\r\nSE  - Chapter 4\r\n"
        "ET  - 2nd edition\r\nPB  - Oxford University Press\r\nCY  - Oxford\r\nSP  - 11\r\nEP  - 19\r\n"
        "AB  - Vasopressors raise blood pressure by vasoconstriction.\r\nKW  - screening: unscreened\r\n"
        "AN  - 30000031\r\nUR  - https://pubmed.ncbi.nlm.nih.gov/30000031/\r\n"
        "UR  - https://www.ncbi.nlm.nih.gov/books/NBK531234/\r\nLA  - eng\r\nN1  - topics: books\r\n"
        "N1  - screening: unscreened\r\n"
        "N1  - study facts: evidence review (from the publication types); design review; population critical care\r\n")
    assert by_pmid["30000032"] == (
        "TY  - BOOK\r\nTI  - Holland-Frei Cancer Medicine\r\nA2  - Kufe, DW\r\nA2  - Pollock, RE\r\nPY  - 2003\r\n"
        "ET  - 6th edition\r\nPB  - BC Decker\r\nCY  - Hamilton (ON)\r\nKW  - screening: unscreened\r\n"
        "AN  - 30000032\r\nUR  - https://pubmed.ncbi.nlm.nih.gov/30000032/\r\n"
        "UR  - https://www.ncbi.nlm.nih.gov/books/NBK12354/\r\nLA  - eng\r\nN1  - topics: books\r\n"
        "N1  - screening: unscreened\r\n"
        "N1  - study facts: evidence review (from the publication types); design review\r\n")
    assert by_pmid["30000033"] == (
        "TY  - JOUR\r\nTI  - Early norepinephrine in septic shock\r\nAU  - Ng, C\r\nPY  - 2024\r\nDA  - 2024/03/05/\r\n"
        "T2  - Anesthesia and analgesia\r\nJ2  - Anesth Analg\r\nVL  - 130\r\nIS  - 2\r\nSP  - 301\r\nEP  - 309\r\n"
        "AB  - Trial registration: EudraCT 2019-001234-56.\r\nKW  - screening: unscreened\r\nAN  - 30000033\r\n"
        "UR  - https://pubmed.ncbi.nlm.nih.gov/30000033/\r\nLA  - eng\r\nN1  - topics: books\r\n"
        "N1  - trial registration: NCT02149199 (ClinicalTrials.gov) https://clinicaltrials.gov/study/NCT02149199\r\n"
        "N1  - trial registration: 2019-001234-56 (EudraCT) "
        "https://www.clinicaltrialsregister.eu/ctr-search/search?query=2019-001234-56\r\n"
        "N1  - screening: unscreened\r\nN1  - study facts: evidence other; design review; population sepsis\r\n")
