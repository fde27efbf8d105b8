"""Exports for spreadsheets and notebooks: an Excel workbook (`tracker export --format xlsx`) and a pandas DataFrame.

The workbook has one sheet, "papers", with the CSV's columns in the CSV's order (tracker/outputs/export.py), and a
second sheet, "about", saying what was exported, when, and the topics' queries. One sheet, not one per topic:
a paper in two topics is one row either way (its `topics` cell names both), the header's filters pick a
topic, and a sheet per topic would copy each shared paper and its screening into several places. The header
row is frozen with filters on every column; columns have widths that fit their usual content; PubMed and DOI
cells are links; `first_seen` is a date and time, `year`, `pmid` and `sample_size` numbers, `late_arrival` TRUE or
FALSE; every other cell is text written as text, so nothing a record holds can run as a formula.

Excel keeps at most 65,530 links on a sheet: a larger export writes its links as HYPERLINK formulas instead
(quotes doubled inside, so a record cannot break out of the string).

Written with XlsxWriter (a streaming writer, in constant memory whatever the size); openpyxl wrote the same
sheet about as fast, but keeps no formats, links or filters in its streaming mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import BinaryIO

from tracker._version import __version__
from tracker.text import whole_number

# Excel's own limit on hyperlinks in one worksheet.
MAX_LINKS = 65_530
WIDTHS = {
    "pmid": 10, "title": 60, "authors": 32, "journal": 30, "year": 6, "publication_date": 14, "doi": 26, "pmcid": 12,
    "publication_types": 28, "mesh_terms": 40, "keywords": 28, "topics": 20, "first_seen": 17, "late_arrival": 8,
    "pubmed_url": 40, "status": 12, "decision": 14, "reasons": 26, "reviewers": 32, "notes": 30, "editors": 26,
    "trial_ids": 18, "relevance": 10, "evidence": 12, "design": 18, "sample_size": 8, "population": 20,
    "comparators": 24, "doses": 60, "evidence_source": 16,
}


def write_xlsx(columns: Sequence[str], rows: Iterable[dict], file: BinaryIO, *, about: Sequence[tuple[str, str]] = (),
               max_links: int = MAX_LINKS, expected: int | None = None) -> int:
    """Write `rows` (dicts keyed by `columns`, as tracker.outputs.export.export_rows gives them) as a workbook to `file`.

    `about` are (label, value) lines for the "about" sheet. `expected` (the number of rows, when known before
    writing) decides between native links and HYPERLINK formulas; unknown, native links are used until
    `max_links` and formulas after. Returns how many rows were written.
    """
    import xlsxwriter

    book = xlsxwriter.Workbook(file, {"constant_memory": True, "strings_to_formulas": False,
                                      "strings_to_urls": False, "strings_to_numbers": False})
    try:
        header = book.add_format({"bold": True, "bg_color": "#dce6f2", "border": 1, "text_wrap": False})
        moment = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        link = book.add_format({"font_color": "#1a4d80", "underline": 1})
        sheet = book.add_worksheet("papers")
        for index, name in enumerate(columns):
            sheet.set_column(index, index, WIDTHS.get(name, 16))
            sheet.write_string(0, index, name, header)
        sheet.freeze_panes(1, 0)
        links = {name: columns.index(name) for name in ("pubmed_url", "doi") if name in columns}
        as_formulas = expected is not None and expected * len(links) > max_links
        written_links = 0
        count = 0
        for count, row in enumerate(rows, start=1):
            for index, name in enumerate(columns):
                value = row.get(name)
                if value is None or value == "":
                    continue
                if name in links:
                    target = value if name == "pubmed_url" else f"https://doi.org/{value}"
                    if not as_formulas and written_links < max_links:
                        sheet.write_url(count, index, target, link, string=str(value))
                        written_links += 1
                    else:
                        sheet.write_formula(count, index, f'=HYPERLINK("{_quoted(target)}","{_quoted(str(value))}")',
                                            link, str(value))
                elif name == "first_seen":
                    sheet.write_datetime(count, index, _parse_utc(value), moment)
                elif name in ("pmid", "year", "sample_size") and whole_number(str(value)) is not None:
                    sheet.write_number(count, index, int(value))
                elif name == "late_arrival":
                    sheet.write_boolean(count, index, value in (True, "true"))
                elif name == "relevance":
                    sheet.write_number(count, index, float(value))
                else:
                    sheet.write_string(count, index, str(value))
        sheet.autofilter(0, 0, max(count, 1), len(columns) - 1)
        info = book.add_worksheet("about")
        info.set_column(0, 0, 22)
        info.set_column(1, 1, 100)
        lines = [("exported by", f"tracker {__version__}"),
                 ("exported at (UTC)", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")),
                 ("papers", str(count)), *about]
        for number, (label, value) in enumerate(lines):
            info.write_string(number, 0, label, header)
            info.write_string(number, 1, value)
    finally:
        book.close()
    return count


def _quoted(text: str) -> str:
    return text.replace('"', '""')


def _parse_utc(text: str) -> datetime:
    """The CSV's "2024-03-01T06:00:00Z" as a naive datetime (Excel has no time zones; the column says UTC)."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


# -- pandas ------------------------------------------------------------------------------------

LIST_COLUMNS = ("authors", "publication_types", "mesh_terms", "keywords", "topics", "reasons", "trial_ids", "editors",
                "population", "comparators", "doses")


def rows_frame(rows: Iterable[dict], columns: Sequence[str]):
    """A DataFrame of export rows with proper dtypes: lists as lists, first_seen as UTC datetimes, numbers as
    nullable integers, late_arrival as booleans."""
    try:
        import pandas
    except ModuleNotFoundError:
        raise ModuleNotFoundError("pandas is not installed: pip install 'tracker[pandas]' (or pip install pandas)",
                                  name="pandas") from None
    records = []
    for row in rows:
        record = dict(row)
        for name in LIST_COLUMNS:
            if name in record:
                record[name] = [item for item in (record[name] or "").split("; ") if item]
        record["late_arrival"] = record.get("late_arrival") in (True, "true")
        records.append(record)
    frame = pandas.DataFrame.from_records(records, columns=list(columns))
    frame["first_seen"] = pandas.to_datetime(frame["first_seen"], utc=True, format="ISO8601")
    for name in ("pmid", "year", "sample_size"):
        if name in frame:
            frame[name] = pandas.to_numeric(frame[name].replace("", None), errors="coerce").astype("Int64")
    frame["late_arrival"] = frame["late_arrival"].astype(bool)
    if "relevance" in frame:
        frame["relevance"] = pandas.to_numeric(frame["relevance"].replace("", None), errors="coerce")
    text = [name for name in columns if name not in (*LIST_COLUMNS, "first_seen", "pmid", "year", "sample_size",
                                                         "late_arrival", "relevance")]
    frame[text] = frame[text].fillna("").astype("string")
    return frame


__all__ = ["write_xlsx", "rows_frame", "MAX_LINKS", "LIST_COLUMNS"]
