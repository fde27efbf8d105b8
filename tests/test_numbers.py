"""Numbers read from text are read strictly everywhere: ASCII digits, in range. str.isdigit() takes "²" (and int()
then raises), int() takes "١٢" and "1_000", and a 20-digit number overflows every database integer; each of those
used to be a traceback or a 500 somewhere. The CLI's options and the web app's parameters are tested in
tests/test_cli.py and tests/test_web.py."""

from __future__ import annotations

from datetime import date, timezone

import pytest

from tests.pubmed_xml import article_set, article_xml
from tracker.errors import ConfigError, ParseError, TransientEutilsError
from tracker.text import PMID_MAX, parse_pmid, whole_number

NOT_NUMBERS = ["", " ", "²", "\u0661\u0662", "1_000", "+5", "-5", "1e3", "0x10", "12a", "1 2", "99999999999999999999"]


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_only_ascii_digits_in_range_are_whole_numbers(text):
    assert whole_number(text) is None
    assert parse_pmid(text) is None


def test_whole_numbers_and_pmids():
    assert [whole_number(text) for text in ("0", " 42 ", "007", "9223372036854775807")] == [0, 42, 7, 2**63 - 1]
    assert whole_number("5", low=6) is None and whole_number("13", high=12) is None
    assert [parse_pmid(text) for text in ("1", "31415926", str(PMID_MAX))] == [1, 31415926, PMID_MAX]
    assert [parse_pmid(text) for text in ("0", str(PMID_MAX + 1))] == [None, None]


def test_settings_take_only_plain_numbers(tmp_path):
    from tracker.settings import Settings

    for value in ("inf", "nan", "1e3", "\u0661\u0662", "1_0", "²"):
        with pytest.raises(ConfigError) as caught:
            Settings.from_env(home=tmp_path, env={"TRACKER_TIMEOUT": value})
        assert str(caught.value) == f"TRACKER_TIMEOUT={value!r} is not a number: set it to a number"
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(home=tmp_path, env={"TRACKER_MAX_ATTEMPTS": "99999999999999999999"})
    assert str(caught.value) == ("TRACKER_MAX_ATTEMPTS='99999999999999999999' is not a number tracker can use: give "
                                 "one below 1,000,000,000,000")
    (tmp_path / "tracker.toml").write_text("[ncbi]\ntimeout = nan\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(home=tmp_path, env={})
    assert str(caught.value) == ("tracker.toml: [ncbi] timeout = nan is not a number tracker can use: give one below "
                                 "1,000,000,000,000")
    (tmp_path / "tracker.toml").unlink()
    assert Settings.from_env(home=tmp_path, env={"TRACKER_TIMEOUT": " 2.5 "}).timeout == 2.5


def test_a_cron_weekday_written_in_other_digits_is_refused_in_words():
    from tracker.cron import cron_trigger

    with pytest.raises(ValueError, match="weekday '²' is not 0-7 or a day name such as mon"):
        cron_trigger("0 6 * * ²", timezone.utc)
    with pytest.raises(ValueError, match="weekday step '²' is not a number"):
        cron_trigger("0 6 * * 1/²", timezone.utc)


def test_a_medline_pmid_that_is_not_one_is_refused_in_one_line(tmp_path):
    from tracker.ncbi.medline import read_medline_pmids

    for text in ("²", "99999999999999999999"):
        path = tmp_path / "export.nbib"
        path.write_text(f"PMID- 31000001\nTI  - A title.\n\nPMID- {text}\nTI  - Another.\n", encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            read_medline_pmids(path)
        assert str(caught.value) == (f"{path}: record 2 has the PMID {text!r}, which is not one (a number from 1 to "
                                     "2147483647): in PubMed use Save > Format: PubMed")


def test_an_efetch_record_whose_pmid_is_not_one_is_a_parse_error():
    from tracker.ncbi.pubmed import iter_papers

    for text, kind in (("²", "a non-numeric"), ("99999999999999999999", "an out-of-range")):
        body = article_set(article_xml(1, created=date(2024, 1, 1))).replace(
            b'<PMID Version="1">1</PMID>', f'<PMID Version="1">{text}</PMID>'.encode())
        with pytest.raises(ParseError) as caught:
            list(iter_papers(body))
        assert str(caught.value) == (f"a PubmedArticle with {kind} PMID {text!r} (a PMID is a whole number from 1 to "
                                     "2,147,483,647; record 1 of the efetch body)")


def test_publication_dates_in_other_digits_are_kept_as_text_without_a_day():
    from tracker.ncbi.pubmed import iter_papers

    body = article_set(article_xml(1, created=date(2024, 1, 1), pub_date={"Year": "2019", "Month": "²",
                                                                           "Day": "\u0661"}))
    [paper] = iter_papers(body)
    assert (paper.pub_date_text, paper.pub_date) == ("2019 ² \u0661", date(2019, 1, 1))
    body = article_set(article_xml(2, created=date(2024, 1, 1), pub_date={"Year": "²⁰¹⁹"}))
    [paper] = iter_papers(body)
    assert (paper.pub_date_text, paper.pub_date) == ("²⁰¹⁹", None)


def test_esearch_and_elink_answers_with_other_digits_are_damaged_bodies():
    from tracker.ncbi.eutils import parse_links, parse_search

    for count, pmid in (("²", "1"), ("1", "²"), ("1", "99999999999999999999"), ("\u0661", "1")):
        body = (f"<eSearchResult><Count>{count}</Count><RetMax>1</RetMax><RetStart>0</RetStart>"
                f"<IdList><Id>{pmid}</Id></IdList></eSearchResult>").encode()
        with pytest.raises(TransientEutilsError, match="esearch answer has a <Count> or <Id> that is not a number"):
            parse_search(body)
    links = ("<eLinkResult><LinkSet><DbFrom>pubmed</DbFrom><IdList><Id>1</Id></IdList><LinkSetDb><DbTo>pubmed</DbTo>"
             "<LinkName>pubmed_pubmed</LinkName><Link><Id>²</Id></Link></LinkSetDb></LinkSet></eLinkResult>")
    with pytest.raises(TransientEutilsError, match="elink answer has an <Id> or <Score> that is not a number"):
        parse_links(links.encode())
