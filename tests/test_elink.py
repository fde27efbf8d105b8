"""ELink in the client: the requests it sends (httpx.MockTransport), the answers it reads (recorded ones from
../shared/pubmed-samples where present), and the whole path against the fake server."""

from __future__ import annotations

import logging
from datetime import date
from urllib.parse import parse_qs

import httpx
import pytest

from tests.fake_eutils import FakeEutils
from tests.link_records import WEEK, linked_records
from tracker.errors import EutilsError
from tracker.ncbi.eutils import CITED_IN, REFERENCES, SIMILAR, EutilsClient, Link, fetch_links, parse_links
from tracker.settings import Settings

ETIQUETTE = {"db": ["pubmed"], "tool": ["tracker"], "email": ["lib@example.org"], "api_key": ["SECRET-KEY-123"]}
HEAD = ('<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eLinkResult PUBLIC "-//NLM//DTD elink 20101123//EN" '
        '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20101123/elink.dtd">\n')


def settings(**overrides) -> Settings:
    values = dict(home=".", eutils_url="http://eutils.test/entrez/eutils/", email="lib@example.org",
                  api_key="SECRET-KEY-123", backoff_initial=0.01, backoff_max=0.02, max_attempts=4,
                  requests_per_second=1000.0)
    values.update(overrides)
    return Settings(**values)


def elink_body(*link_sets: tuple[str, dict[str, list[str]]], error: str = "") -> bytes:
    """An <eLinkResult> of (ids, {link name: [Id or 'Id:Score']}) LinkSets."""
    parts = [HEAD, "<eLinkResult>"]
    for ids, by_name in link_sets:
        parts.append("<LinkSet><DbFrom>pubmed</DbFrom><IdList>")
        parts.extend(f"<Id>{pmid}</Id>" for pmid in ids.split(","))
        parts.append("</IdList>")
        for name, links in by_name.items():
            parts.append(f"<LinkSetDb><DbTo>pubmed</DbTo><LinkName>{name}</LinkName>")
            for link in links:
                pmid, _, score = link.partition(":")
                parts.append(f"<Link><Id>{pmid}</Id>{f'<Score>{score}</Score>' if score else ''}</Link>")
            parts.append("</LinkSetDb>")
        parts.append("</LinkSet>")
    parts.append(f"{error}</eLinkResult>\n")
    return "".join(parts).encode()


class Recorder:
    """Answers from a queue (the last answer repeats) and keeps every request's form, repeated keys included."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.forms: list[dict[str, list[str]]] = []
        self.methods: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.forms.append({"endpoint": [request.url.path.rsplit("/", 1)[-1]], **parse_qs(request.content.decode())})
        self.methods.append(request.method)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer


def client_for(handler, **overrides) -> EutilsClient:
    sleeps: list[float] = []
    client = EutilsClient(settings(**overrides), transport=httpx.MockTransport(handler), sleep=sleeps.append)
    client.sleeps = sleeps
    return client


def answer_each_seed(request: httpx.Request) -> httpx.Response:
    """One LinkSet per id= asked, each with one similar article: the seed plus 1000."""
    seeds = parse_qs(request.content.decode())["id"]
    return httpx.Response(200, content=elink_body(*((seed, {SIMILAR: [seed, str(int(seed) + 1000)]}) for seed in seeds)))


# the requests


def test_one_post_carries_the_etiquette_and_every_seed_as_an_id_of_its_own():
    handler = Recorder(httpx.Response(200, content=elink_body(
        ("101", {SIMILAR: ["101", "103"], CITED_IN: ["106"], "pubmed_pubmed_five": ["101", "103"]}),
        ("104", {REFERENCES: ["100"]}))))
    links = list(fetch_links(client_for(handler), [101, 104]))
    assert links == [Link(101, SIMILAR, 103), Link(101, CITED_IN, 106), Link(104, REFERENCES, 100)]
    assert handler.methods == ["POST"]
    assert handler.forms == [{"endpoint": ["elink.fcgi"], **ETIQUETTE, "dbfrom": ["pubmed"], "cmd": ["neighbor"],
                              "retmode": ["xml"], "id": ["101", "104"]}]


def test_a_window_asks_neighbors_entered_between_its_first_and_last_day():
    handler = Recorder(httpx.Response(200, content=elink_body(("101", {CITED_IN: ["106"]}))))
    links = list(fetch_links(client_for(handler), [101], (CITED_IN,), window=(date(2024, 6, 8), date(2024, 6, 14))))
    assert links == [Link(101, CITED_IN, 106)]
    assert handler.forms == [{"endpoint": ["elink.fcgi"], **ETIQUETTE, "dbfrom": ["pubmed"], "cmd": ["neighbor"],
                              "retmode": ["xml"], "datetype": ["edat"], "mindate": ["2024/06/08"],
                              "maxdate": ["2024/06/14"], "id": ["101"], "linkname": ["pubmed_pubmed_citedin"]}]


def test_scores_ask_neighbor_score_without_dates_one_request_per_link_name():
    handler = Recorder(
        httpx.Response(200, content=elink_body(("101", {SIMILAR: ["101:2147483647", "103:64040533", "102:33314544"]}))),
        httpx.Response(200, content=elink_body(("101", {CITED_IN: ["106"]}))))
    links = list(fetch_links(client_for(handler), [101], (SIMILAR, CITED_IN), with_scores=True))
    assert links == [Link(101, SIMILAR, 103, 64040533), Link(101, SIMILAR, 102, 33314544), Link(101, CITED_IN, 106)]
    assert [(form["cmd"], form["linkname"]) for form in handler.forms] == [
        (["neighbor_score"], ["pubmed_pubmed"]), (["neighbor_score"], ["pubmed_pubmed_citedin"])]
    assert not any({"datetype", "mindate", "maxdate", "reldate"} & form.keys() for form in handler.forms)


def test_seeds_are_sent_a_batch_at_a_time_each_once_in_order():
    handler = Recorder(answer_each_seed)
    seeds = [*range(1, 251), 7, 250]
    links = list(fetch_links(client_for(handler), seeds, (SIMILAR,)))
    assert [form["id"] for form in handler.forms] == [
        [str(p) for p in range(1, 101)], [str(p) for p in range(101, 201)], [str(p) for p in range(201, 251)]]
    assert handler.methods == ["POST"] * 3
    assert links == [Link(seed, SIMILAR, seed + 1000) for seed in range(1, 251)]


def test_a_smaller_batch_makes_more_requests_and_no_seed_makes_none():
    handler = Recorder(answer_each_seed)
    client = client_for(handler)
    assert len(list(fetch_links(client, range(1, 13), batch=5))) == 12
    assert [len(form["id"]) for form in handler.forms] == [5, 5, 2]
    assert list(fetch_links(client, [])) == []
    assert client.request_count == 3


@pytest.mark.parametrize("arguments, message", [
    ({"window": (date(2024, 6, 8), date(2024, 6, 14)), "with_scores": True},
     "ELink limits dates only with cmd=neighbor and would silently ignore the window with cmd=neighbor_score: "
     "ask for scores or for a window, not both"),
    ({"linknames": ("pubmed_pubmed", "pubmed_pmc")},
     "link names must be some of pubmed_pubmed, pubmed_pubmed_citedin, pubmed_pubmed_refs; got pubmed_pmc"),
    ({"linknames": ()},
     "link names must be some of pubmed_pubmed, pubmed_pubmed_citedin, pubmed_pubmed_refs; got none"),
    ({"window": (date(2024, 6, 14), date(2024, 6, 8))}, "the window starts after it ends (2024-06-14 > 2024-06-08)"),
    ({"batch": 0}, "batch must be at least 1, not 0"),
])
def test_requests_elink_cannot_answer_as_meant_are_refused_before_any_is_sent(arguments, message):
    handler = Recorder(answer_each_seed)
    client = client_for(handler)
    with pytest.raises(ValueError) as caught:
        fetch_links(client, [101], **arguments)
    assert str(caught.value) == message
    assert client.request_count == 0


# the answers


def test_an_error_inside_http_200_is_retried_wherever_ncbi_puts_it_then_reported():
    handler = Recorder(
        httpx.Response(200, content=elink_body(error="<ERROR>Search Backend failed: Unable to open connection</ERROR>")),
        httpx.Response(200, content=f"{HEAD}<eLinkResult><LinkSet><DbFrom>pubmed</DbFrom><IdList><Id>101</Id></IdList>"
                                    "<ERROR>BLOB ID IS NOT IMPLEMENTED</ERROR><LinkSetDb><DbTo>pubmed</DbTo>"
                                    "<LinkName>pubmed_pubmed</LinkName><ERROR>NCBI C++ Exception: Error: UNK_MODULE"
                                    "</ERROR></LinkSetDb></LinkSet></eLinkResult>".encode()))
    client = client_for(handler, max_attempts=2)
    with pytest.raises(EutilsError) as caught:
        list(fetch_links(client, [101]))
    assert str(caught.value) == ("elink failed after 2 attempts: PubMed reported an error inside HTTP 200: "
                                 "BLOB ID IS NOT IMPLEMENTED; NCBI C++ Exception: Error: UNK_MODULE")
    assert client.request_count == 2


@pytest.mark.parametrize("failure", [
    httpx.Response(429, json={"error": "API rate limit exceeded", "count": "11"}, headers={"Retry-After": "0"}),
    httpx.Response(500, text="<html>oops</html>"),
    httpx.Response(502, text="Bad Gateway"),
    httpx.Response(200, text="<html><head><title>Down for maintenance</title></head></html>",
                   headers={"content-type": "text/html"}),  # NCBI's Blocked Diagnostic page is not retried
    httpx.Response(200, content=b""),
    httpx.Response(200, content=elink_body(("101", {SIMILAR: ["103"]}))[:-40]),
    httpx.Response(200, content=elink_body(("101", {SIMILAR: ["10x3"]}))),
    httpx.Response(200, content=b"<eSearchResult><Count>0</Count></eSearchResult>"),
    httpx.ReadTimeout("timed out"),
])
def test_transient_failures_are_retried_by_the_clients_machinery(failure, caplog):
    handler = Recorder(failure, httpx.Response(200, content=elink_body(("101", {SIMILAR: ["103"]}))))
    client = client_for(handler)
    with caplog.at_level(logging.INFO, logger="tracker.eutils"):
        assert list(fetch_links(client, [101])) == [Link(101, SIMILAR, 103)]
    assert client.request_count == 2 and len(client.sleeps) == 1
    assert [record.getMessage().startswith("attempt 1 failed (") for record in caplog.records] == [True]


def test_a_429_waits_at_least_what_ncbi_asks():
    handler = Recorder(httpx.Response(429, json={"error": "API rate limit exceeded"}, headers={"Retry-After": "2"}),
                       httpx.Response(200, content=elink_body(("101", {}))))
    client = client_for(handler)
    assert list(fetch_links(client, [101])) == []
    assert client.sleeps[0] >= 2


def test_a_merged_linkset_or_links_of_a_pmid_not_asked_are_errors_and_not_retried():
    merged = Recorder(httpx.Response(200, content=elink_body(("101,104", {CITED_IN: ["106", "105"]}))))
    stranger = Recorder(httpx.Response(200, content=elink_body(("101", {}), ("555", {CITED_IN: ["106"]}))))
    with pytest.raises(EutilsError) as caught:
        list(fetch_links(client_for(merged), [101, 104]))
    assert str(caught.value) == "ELink merged the links of 2 PMIDs into one LinkSet (101, 104): the seed of each link is lost"
    with pytest.raises(EutilsError) as caught:
        list(fetch_links(client_for(stranger), [101]))
    assert str(caught.value) == "ELink answered for PMIDs that were not asked (555)"
    assert len(merged.forms) == len(stranger.forms) == 1


def test_the_recorded_answer_of_similar_and_citing_articles_without_a_linkname(samples_dir):
    # metapub's recording of elink dbfrom=pubmed id=14873513 (no linkname, no date limit): six link names,
    # the seed first among its own 76 similar articles.
    body = (samples_dir / "metapub" / "sample_related_pmids_result.xml").read_bytes()
    links = parse_links(body)
    similar = [link for link in links if link.linkname == SIMILAR]
    assert [link for link in links if link.linkname == CITED_IN] == [
        Link(14873513, CITED_IN, pmid) for pmid in (22356836, 19791082, 15798120, 14904965, 13651711, 5691370)]
    assert len(similar) == 75 and len(links) == 81
    assert similar[:3] == [Link(14873513, SIMILAR, 16450204), Link(14873513, SIMILAR, 18567069),
                           Link(14873513, SIMILAR, 16086807)]
    assert similar[-1] == Link(14873513, SIMILAR, 15069009)
    assert parse_links(body, ("pubmed_pubmed_five",))[:2] == [Link(14873513, "pubmed_pubmed_five", 16450204),
                                                              Link(14873513, "pubmed_pubmed_five", 18567069)]


def test_the_recorded_answer_for_an_id_with_no_links_is_a_linkset_with_its_id_only(samples_dir):
    # metapub's recording of an elink with no link: <LinkSet><DbFrom/><IdList><Id>0</Id></IdList></LinkSet>.
    body = (samples_dir / "metapub" / "medgen_elink_pubmed_0_entries.xml").read_bytes()
    assert body.startswith(b"<eLinkResult><LinkSet>")
    assert parse_links(body) == []


def recorded(samples_dir, name: str) -> bytes:
    path = samples_dir / "biopython" / name
    if not path.is_file():
        pytest.skip(f"Biopython's ELink recording {name} is not among the samples at {path.parent}")
    return path.read_bytes()


def test_biopythons_recorded_neighbors_of_one_pmid_give_similar_citing_and_cited(samples_dir):
    # Tests/Entrez/elink1.xml: Bio.Entrez.elink(dbfrom="pubmed", id="9298984", cmd="neighbor")
    links = parse_links(recorded(samples_dir, "elink1.xml"))
    assert {link.linkname for link in links} == {SIMILAR, CITED_IN, REFERENCES}
    assert {link.source_pmid for link in links} == {9298984}
    assert Link(9298984, SIMILAR, 9298984) not in links and Link(9298984, SIMILAR, 8794856) in links
    assert all(link.score is None for link in links)


def test_biopythons_recorded_comma_list_answer_is_refused_as_merged(samples_dir):
    # Tests/Entrez/elink3.xml: Bio.Entrez.elink(dbfrom="pubmed", id="11812492,11774222", db="pubmed", mindate="1995",
    # datetype="pdat"): one LinkSet for the two PMIDs.
    with pytest.raises(EutilsError) as caught:
        parse_links(recorded(samples_dir, "elink3.xml"))
    assert str(caught.value) == ("ELink merged the links of 2 PMIDs into one LinkSet (11812492, 11774222): "
                                 "the seed of each link is lost")


# against the fake server


@pytest.fixture
def linked():
    with FakeEutils() as fake:
        fake.add(*linked_records())
        with EutilsClient(settings(eutils_url=fake.url)) as client:
            yield fake, client
        assert fake.errors == []


def test_similar_citing_and_cited_articles_of_a_few_records(linked):
    fake, client = linked
    assert list(fetch_links(client, [101, 104, 106, 108])) == [
        Link(101, SIMILAR, 103), Link(101, SIMILAR, 106), Link(101, SIMILAR, 102),
        Link(101, CITED_IN, 106), Link(101, CITED_IN, 103), Link(101, CITED_IN, 102),
        Link(104, SIMILAR, 105), Link(104, SIMILAR, 107), Link(104, CITED_IN, 105),
        Link(106, SIMILAR, 101), Link(106, SIMILAR, 103), Link(106, SIMILAR, 102),
        Link(106, REFERENCES, 103), Link(106, REFERENCES, 101),
    ]
    assert fake.count("elink") == 1


def test_a_weekly_window_yields_only_the_neighbors_that_entered_pubmed_that_week(linked):
    fake, client = linked
    assert list(fetch_links(client, [101, 102, 103, 104, 105], window=WEEK)) == [
        Link(101, SIMILAR, 106), Link(101, CITED_IN, 106),
        Link(102, SIMILAR, 106),
        Link(103, SIMILAR, 106), Link(103, CITED_IN, 106),
        Link(104, SIMILAR, 107),
        Link(105, SIMILAR, 107), Link(105, CITED_IN, 107),
    ]
    [request] = fake.requests
    assert (request.params["datetype"], request.params["mindate"], request.params["maxdate"]) == (
        "edat", "2024/06/08", "2024/06/14")


def test_twelve_seeds_take_one_request_and_unknown_pmids_give_no_links(linked):
    fake, client = linked
    seeds = [101, 102, 103, 104, 105, 106, 107, 108, 42, 43, 44, 45]
    links = list(fetch_links(client, seeds))
    assert [entry.id_params for entry in fake.requests] == [tuple(map(str, seeds))]
    assert {link.source_pmid for link in links} == {101, 102, 103, 104, 105, 106, 107}
    scored = list(fetch_links(client, seeds, with_scores=True))
    assert fake.count("elink") == 1 + 3
    assert [(link.source_pmid, link.linkname, link.target_pmid) for link in scored if link.linkname == SIMILAR] == [
        (link.source_pmid, link.linkname, link.target_pmid) for link in links if link.linkname == SIMILAR]
    assert all(link.score is not None for link in scored if link.linkname == SIMILAR)


def test_a_rate_limited_and_a_failed_answer_are_ridden_out(linked):
    fake, client = linked
    fake.inject("429", endpoint="elink")
    fake.inject("backend-error", endpoint="elink")
    assert list(fetch_links(client, [104], (CITED_IN,))) == [Link(104, CITED_IN, 105)]
    assert [(entry.status, entry.fault) for entry in fake.requests] == [(429, "429"), (200, "backend-error"), (200, None)]
