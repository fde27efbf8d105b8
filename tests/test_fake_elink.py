"""The fake server's elink.fcgi answers in NCBI's shapes: one LinkSet per id=, merged for a comma list, the date
window with cmd=neighbor only, XML and JSON, and the same faults and request log as esearch and efetch."""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest
from lxml import etree

from tests.fake_eutils import FakeEutils, FakeRecord
from tests.link_records import NOT_IN_PUBMED, linked_records
from tests.pubmed_xml import article_xml

ETIQUETTE = {"tool": "tracker-tests", "email": "dev@example.org", "api_key": "k3y"}
ELINK_DOCTYPE = ('<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eLinkResult PUBLIC "-//NLM//DTD elink 20101123//EN" '
                 '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20101123/elink.dtd">\n')


@pytest.fixture
def fake():
    server = FakeEutils().start()
    server.add(*linked_records())
    yield server
    server.stop()
    assert server.errors == []


@pytest.fixture
def client(fake):
    with httpx.Client(base_url=fake.url, verify=False, timeout=5.0) as c:
        yield c


def elink(client: httpx.Client, ids: list[str], *, method: str = "POST", **params) -> httpx.Response:
    form = {"dbfrom": "pubmed", "db": "pubmed", **ETIQUETTE, **params}
    if method == "GET":
        return client.get("elink.fcgi", params={**form, "id": ids})
    return client.post("elink.fcgi", data={**form, "id": ids})


def link_sets(response: httpx.Response) -> list[tuple[list[str], dict[str, list[str]]]]:
    """Each LinkSet as (its ids, {link name: linked ids with ':score' when scored}), from the XML."""
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    root = etree.fromstring(response.content)
    assert root.tag == "eLinkResult"
    found = []
    for link_set in root.iterfind("LinkSet"):
        assert link_set.findtext("DbFrom") == "pubmed"
        links = {}
        for db in link_set.iterfind("LinkSetDb"):
            assert db.findtext("DbTo") == "pubmed"
            links[db.findtext("LinkName")] = [
                link.findtext("Id") + (f":{link.findtext('Score')}" if link.find("Score") is not None else "")
                for link in db.iterfind("Link")]
        found.append(([i.text for i in link_set.iterfind("IdList/Id")], links))
    return found


def test_each_id_parameter_has_a_linkset_of_its_own_with_every_link_name_in_order(client):
    response = elink(client, ["101", "104"])
    assert response.text.startswith(ELINK_DOCTYPE + "<eLinkResult>\n")
    assert link_sets(response) == [
        (["101"], {"pubmed_pubmed": ["101", "103", "106", "102"], "pubmed_pubmed_citedin": ["106", "103", "102"],
                   "pubmed_pubmed_five": ["101", "103", "106", "102"]}),
        (["104"], {"pubmed_pubmed": ["104", "105", "107"], "pubmed_pubmed_citedin": ["105"],
                   "pubmed_pubmed_five": ["104", "105", "107"]}),
    ]


def test_a_comma_list_in_one_id_parameter_is_merged_into_one_linkset_newest_first(client):
    response = elink(client, ["101,104"], method="GET", linkname="pubmed_pubmed_citedin")
    assert link_sets(response) == [(["101", "104"], {"pubmed_pubmed_citedin": ["106", "105", "103", "102"]})]


def test_a_pmid_pubmed_does_not_hold_or_that_nothing_links_gives_a_linkset_with_its_ids_only(client):
    response = elink(client, ["42", "108"])
    assert link_sets(response) == [(["42"], {}), (["108"], {})]
    assert "<IdList>\n      <Id>42</Id>\n    </IdList>\n    \n  </LinkSet>" in response.text


def test_references_are_the_records_reference_list_without_pmids_pubmed_does_not_hold(client):
    response = elink(client, ["106", "102"], linkname="pubmed_pubmed_refs")
    assert link_sets(response) == [(["106"], {"pubmed_pubmed_refs": ["103", "101"]}),
                                   (["102"], {"pubmed_pubmed_refs": ["101"]})]
    assert str(NOT_IN_PUBMED) not in response.text


def test_neighbor_score_ranks_similar_articles_by_score_the_seed_first(client):
    scored = link_sets(elink(client, ["103"], cmd="neighbor_score"))
    plain = link_sets(elink(client, ["103"], linkname="pubmed_pubmed_citedin", cmd="neighbor_score"))
    similar = scored[0][1]["pubmed_pubmed"]
    assert [link.split(":")[0] for link in similar] == ["103", "101", "106", "102"]
    scores = [int(link.split(":")[1]) for link in similar]
    assert scores[0] == 2147483647 and scores == sorted(scores, reverse=True) and len(set(scores)) == 4
    assert scored[0][1]["pubmed_pubmed_citedin"] == ["106"]
    assert plain == [(["103"], {"pubmed_pubmed_citedin": ["106"]})]


def test_the_date_window_limits_linked_records_with_neighbor_and_is_ignored_with_neighbor_score(client):
    week = {"datetype": "edat", "mindate": "2024/06/08", "maxdate": "2024/06/14"}
    assert link_sets(elink(client, ["101", "104", "106"], **week)) == [
        (["101"], {"pubmed_pubmed": ["106"], "pubmed_pubmed_citedin": ["106"], "pubmed_pubmed_five": ["106"]}),
        (["104"], {"pubmed_pubmed": ["107"], "pubmed_pubmed_five": ["107"]}),
        (["106"], {}),
    ]
    ignored = link_sets(elink(client, ["101"], cmd="neighbor_score", linkname="pubmed_pubmed_citedin", **week))
    assert ignored == [(["101"], {"pubmed_pubmed_citedin": ["106", "103", "102"]})]


def test_the_window_reads_the_date_datetype_names_and_takes_months_and_years(fake, client):
    fake.add(FakeRecord(pmid=109, created=date(2024, 6, 9), entrez=date(2024, 7, 1),
                        xml=article_xml(109, created=date(2024, 6, 9), title="Reply citing the trial", abstract=None,
                                        references=[("Trial.", 101)])))
    cited = {"linkname": "pubmed_pubmed_citedin"}
    by_create = elink(client, ["101"], datetype="crdt", mindate="2024/06/08", maxdate="2024/06/14", **cited)
    by_entrez = elink(client, ["101"], datetype="edat", mindate="2024/06/08", maxdate="2024/06/14", **cited)
    july = elink(client, ["101"], datetype="edat", mindate="2024/07", maxdate="2024/07", **cited)
    year = elink(client, ["101"], datetype="crdt", mindate="2024", maxdate="2024", **cited)
    assert link_sets(by_create) == [(["101"], {"pubmed_pubmed_citedin": ["109", "106"]})]
    assert link_sets(by_entrez) == [(["101"], {"pubmed_pubmed_citedin": ["106"]})]
    assert link_sets(july) == [(["101"], {"pubmed_pubmed_citedin": ["109"]})]
    assert link_sets(year) == [(["101"], {"pubmed_pubmed_citedin": ["109", "106", "103", "102"]})]


def test_json_has_ncbis_shape_ids_as_strings_and_scored_links_as_objects(client):
    plain = elink(client, ["101", "42"], retmode="json", linkname="pubmed_pubmed")
    scored = elink(client, ["104"], retmode="json", cmd="neighbor_score", linkname="pubmed_pubmed")
    assert plain.headers["content-type"] == "application/json"
    assert json.loads(plain.content) == {"header": {"type": "elink", "version": "0.3"}, "linksets": [
        {"dbfrom": "pubmed", "ids": ["101"],
         "linksetdbs": [{"dbto": "pubmed", "linkname": "pubmed_pubmed", "links": ["101", "103", "106", "102"]}]},
        {"dbfrom": "pubmed", "ids": ["42"]},
    ]}
    [link_set] = json.loads(scored.content)["linksets"]
    [link_set_db] = link_set["linksetdbs"]
    assert [link["id"] for link in link_set_db["links"]] == ["104", "105", "107"]
    assert link_set_db["links"][0]["score"] == 2147483647
    assert all(isinstance(link["score"], int) for link in link_set_db["links"])


@pytest.mark.parametrize("params, message", [
    ({"id": ["101"], "dbfrom": "pmc"}, "Invalid db name specified: pmc"),
    ({"id": [""]}, "Empty id list - nothing todo"),
    ({"id": ["101"], "cmd": "acheck"}, "cmd=acheck is not simulated by the fake"),
    ({"id": ["101"], "mindate": "2024/13/01"}, "Invalid date limit: month must be in 1..12"),
])
def test_a_request_it_cannot_answer_is_an_error_inside_http_200_in_xml_and_json(client, params, message):
    form = {"dbfrom": "pubmed", **ETIQUETTE, **params}
    as_xml = client.post("elink.fcgi", data=form)
    as_json = client.post("elink.fcgi", data={**form, "retmode": "json"})
    assert as_xml.status_code == as_json.status_code == 200
    assert as_xml.text == f"{ELINK_DOCTYPE}<eLinkResult>\n<ERROR>{message}</ERROR>\n</eLinkResult>\n"
    assert json.loads(as_json.content) == {"header": {"type": "elink", "version": "0.3"}, "linksets": [], "ERROR": message}


def test_get_and_post_answer_alike_and_the_log_keeps_each_id_parameter(fake, client):
    by_post = elink(client, ["101", "104,105"], linkname="pubmed_pubmed")
    by_get = elink(client, ["101", "104,105"], method="GET", linkname="pubmed_pubmed")
    assert by_post.content == by_get.content
    assert [(entry.endpoint, entry.method, entry.params["id"], entry.id_params) for entry in fake.requests] == [
        ("elink", "POST", "101,104,105", ("101", "104,105")),
        ("elink", "GET", "101,104,105", ("101", "104,105")),
    ]
    assert fake.count("elink") == 2


def test_faults_are_injected_into_elink_as_into_the_other_endpoints(fake, client):
    fake.inject("502", endpoint="elink")
    fake.inject("backend-error", endpoint="elink")
    fake.inject("429", endpoint="elink")
    assert elink(client, ["101"]).status_code == 502
    backend = elink(client, ["101"])
    assert backend.text == (f"{ELINK_DOCTYPE}<eLinkResult>\n<ERROR>Search Backend failed: Unable to open connection to "
                            "#PMQuerySrv?dbaf=pubmed</ERROR>\n</eLinkResult>\n")
    limited = elink(client, ["101"])
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "1")
    assert link_sets(elink(client, ["104"], linkname="pubmed_pubmed_citedin")) == [
        (["104"], {"pubmed_pubmed_citedin": ["105"]})]
    assert [entry.fault for entry in fake.requests] == ["502", "backend-error", "429", None]
    with pytest.raises(ValueError, match="expected 'any', 'esearch', 'efetch' or 'elink'"):
        fake.inject("500", endpoint="espell")


def test_similar_articles_are_cut_to_the_limit_and_five_is_the_seed_and_the_first_five(fake, client, monkeypatch):
    monkeypatch.setattr("tests.fake_eutils.SIMILAR_LIMIT", 6)
    fake.add(*(FakeRecord(pmid=pmid, created=date(2024, 5, 1), xml=article_xml(
        pmid, created=date(2024, 5, 1), title=f"Norepinephrine infusion for spinal hypotension, trial {pmid}",
        abstract="Norepinephrine infusion prevented spinal hypotension at caesarean delivery.")) for pmid in range(201, 211)))
    [(_, links)] = link_sets(elink(client, ["201"], cmd="neighbor_score"))
    similar = [link.split(":")[0] for link in links["pubmed_pubmed"]]
    assert len(similar) == 7 and similar[0] == "201"
    assert links["pubmed_pubmed_five"] == links["pubmed_pubmed"][:6]
