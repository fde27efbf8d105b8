"""tracker.ncbi.xmlframe: the record framer and the reference-list cutter, on bodies cut at every split point.

Each framing case states what the framer must make of its body, whatever the pieces it arrives in: the records
next_record() hands over (their bytes as received), everything feed() and close() give the parser, joined,
and whether framing stopped (passthrough) on the way.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import pytest

from tracker.ncbi.xmlframe import RecordFramer, has_markup_declaration, without_reference_lists

DECLARATION = b'<?xml version="1.0" ?>\n'
DOCTYPE = (b'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
           b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n')
PROLOG = DECLARATION + DOCTYPE + b"<PubmedArticleSet>\n"
END = b"</PubmedArticleSet>\n"
REFERENCES = (b'<ReferenceList><Reference><Citation>Smith J. A trial. BMJ. 2001;1:1.</Citation><ArticleIdList>'
              b'<ArticleId IdType="pubmed">11111111</ArticleId></ArticleIdList></Reference></ReferenceList>')
_PMID = re.compile(rb"<(?:MedlineCitation|BookDocument)[^>]*><PMID[^>]*>(\d+)</PMID>")


def article(pmid: int, inner: bytes = b"", *, data: bytes = b"", end_tag: bytes = b"</PubmedArticle>") -> bytes:
    """A small <PubmedArticle>: inner goes in MedlineCitation after the PMID, data in PubmedData."""
    return (b'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">%d</PMID>'
            b"<Article><ArticleTitle>Is it safe? Yes!</ArticleTitle></Article>%s</MedlineCitation>"
            b"<PubmedData><PublicationStatus>ppublish</PublicationStatus>%s</PubmedData>%s"
            % (pmid, inner, data, end_tag))


def book(pmid: int, inner: bytes = b"") -> bytes:
    return (b'<PubmedBookArticle><BookDocument><PMID Version="1">%d</PMID><Book><BookTitle>StatPearls</BookTitle>'
            b"</Book>%s</BookDocument></PubmedBookArticle>" % (pmid, inner))


def body(*records: bytes, prolog: bytes = PROLOG, between: bytes = b"\n", end: bytes = END) -> bytes:
    return prolog + b"".join(record + between for record in records) + end


@dataclass(frozen=True)
class Framed:
    records: tuple[bytes, ...]
    parser_input: bytes
    passthrough: bool


def frame(pieces: list[bytes], **limits: int) -> Framed:
    framer = RecordFramer(**limits)
    parser_input = b"".join(framer.feed(piece) for piece in pieces) + framer.close()
    passthrough = framer.passthrough
    records = []
    for pmid in _PMID.findall(b"".join(pieces)):
        record = framer.next_record(int(pmid))
        if record is None:
            break
        records.append(record)
    return Framed(tuple(records), parser_input, passthrough)


def splits(data: bytes, seed: int) -> list[list[bytes]]:
    """The body whole, in two pieces at every offset, a byte at a time, and in 3 to 12 pieces at random."""
    ways = [[data], [data[i:i + 1] for i in range(len(data))]]
    ways += [[data[:cut], data[cut:]] for cut in range(1, len(data))]
    chooser = random.Random(seed)
    for _ in range(60):
        cuts = sorted(chooser.sample(range(1, len(data)), min(len(data) - 1, chooser.randint(2, 11))))
        ways.append([data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True)])
    return ways


A1, A2, A3 = article(101), article(102), article(103)
A1_REFS, A2_REFS, A3_REFS = (article(pmid, data=REFERENCES) for pmid in (101, 102, 103))
BOOK_REFS = book(201, REFERENCES)
TRUNCATED = article(102)[:-len(b"</PubmedArticle>")]
COMMENTED, CDATA, INSTRUCTION = (article(102, inner) for inner in (
    b"<!-- </PubmedArticle> -->", b"<![CDATA[ <b> ]]>", b"<?page 7?>"))

CASES = {
    "plain efetch body: every record framed": (
        body(A1, A2, A3), Framed((A1, A2, A3), body(A1, A2, A3), False)),
    "reference lists are cut out of what the parser gets, kept in the records": (
        body(A1_REFS, A2, BOOK_REFS),
        Framed((A1_REFS, A2, BOOK_REFS), body(A1, A2, book(201)), False)),
    "nested reference lists go with the outer one": (
        body(article(101, data=b"<ReferenceList><Title>Refs</Title><ReferenceList><Reference><Citation>x"
                               b"</Citation></Reference></ReferenceList></ReferenceList>")),
        Framed((article(101, data=b"<ReferenceList><Title>Refs</Title><ReferenceList><Reference><Citation>x"
                                  b"</Citation></Reference></ReferenceList></ReferenceList>"),),
               body(A1), False)),
    "a self-closing reference list is cut": (
        body(article(101, data=b"<ReferenceList/>"), article(102, data=b"<ReferenceList />")),
        Framed((article(101, data=b"<ReferenceList/>"), article(102, data=b"<ReferenceList />")),
               body(A1, A2), False)),
    "an unbalanced reference list reaches the parser as it was": (
        body(article(101, data=b"<ReferenceList><Reference>"), article(102, data=b"</ReferenceList>")),
        Framed((article(101, data=b"<ReferenceList><Reference>"), article(102, data=b"</ReferenceList>")),
               body(article(101, data=b"<ReferenceList><Reference>"), article(102, data=b"</ReferenceList>")),
               False)),
    "end tags with whitespace before >": (
        body(article(101, end_tag=b"</PubmedArticle  >"), article(102, end_tag=b"</PubmedArticle\n\t>"),
             book(201).replace(b"</PubmedBookArticle>", b"</PubmedBookArticle\r\n>")),
        Framed((article(101, end_tag=b"</PubmedArticle  >"), article(102, end_tag=b"</PubmedArticle\n\t>"),
                book(201).replace(b"</PubmedBookArticle>", b"</PubmedBookArticle\r\n>")),
               body(article(101, end_tag=b"</PubmedArticle  >"), article(102, end_tag=b"</PubmedArticle\n\t>"),
                    book(201).replace(b"</PubmedBookArticle>", b"</PubmedBookArticle\r\n>")), False)),
    "the root's end tag is not a record's end tag: a truncated record is held for close()": (
        PROLOG + A1 + b"\n" + TRUNCATED + END, Framed((A1,), PROLOG + A1 + b"\n" + TRUNCATED + END, False)),
    "a body without XML declaration or DOCTYPE": (
        body(A1, A2, prolog=b"<PubmedArticleSet>"), Framed((A1, A2), body(A1, A2, prolog=b"<PubmedArticleSet>"),
                                                            False)),
    "a byte order mark and a UTF-8 declaration": (
        body(A1, prolog=b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n<PubmedArticleSet>'),
        Framed((A1,), body(A1, prolog=b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n<PubmedArticleSet>'),
               False)),
    "declared US-ASCII is a subset of UTF-8": (
        body(A1, prolog=b"<?xml version='1.0' encoding='us-ascii'?><PubmedArticleSet>"),
        Framed((A1,), body(A1, prolog=b"<?xml version='1.0' encoding='us-ascii'?><PubmedArticleSet>"), False)),
    "a DeleteCitation between records is passed along": (
        body(A1, b'<DeleteCitation><PMID Version="1">5</PMID></DeleteCitation>', A2),
        Framed((A1, A2), body(A1, b'<DeleteCitation><PMID Version="1">5</PMID></DeleteCitation>', A2), False)),
    "a body without records": (body(), Framed((), body(), False)),
    "an empty body": (b"", Framed((), b"", False)),
    # Framing stops: everything from the first sign of trouble on reaches the parser untouched.
    "a comment inside a record": (
        body(A1_REFS, COMMENTED, A3_REFS),
        Framed((A1_REFS,), PROLOG + A1 + b"\n" + COMMENTED + b"\n" + A3_REFS + b"\n" + END, True)),
    "a comment between records": (
        body(A1_REFS, A2_REFS, between=b"<!-- x -->"),
        Framed((A1_REFS,), PROLOG + A1 + b"<!-- x -->" + A2_REFS + b"<!-- x -->" + END, True)),
    "a CDATA section inside a record": (
        body(A1_REFS, CDATA, A3_REFS),
        Framed((A1_REFS,), PROLOG + A1 + b"\n" + CDATA + b"\n" + A3_REFS + b"\n" + END, True)),
    "a processing instruction inside a record": (
        body(A1_REFS, INSTRUCTION, A3_REFS),
        Framed((A1_REFS,), PROLOG + A1 + b"\n" + INSTRUCTION + b"\n" + A3_REFS + b"\n" + END, True)),
    "a processing instruction in the prolog": (
        body(A1_REFS, prolog=DECLARATION + b'<?xml-stylesheet href="a.xsl"?>\n<PubmedArticleSet>'),
        Framed((), body(A1_REFS, prolog=DECLARATION + b'<?xml-stylesheet href="a.xsl"?>\n<PubmedArticleSet>'),
               True)),
    "a DOCTYPE with an internal subset": (
        body(A1_REFS, prolog=DECLARATION + b'<!DOCTYPE PubmedArticleSet [<!ATTLIST x y CDATA "z">]>\n'
                                           b"<PubmedArticleSet>"),
        Framed((), body(A1_REFS, prolog=DECLARATION + b'<!DOCTYPE PubmedArticleSet [<!ATTLIST x y CDATA "z">]>\n'
                                                      b"<PubmedArticleSet>"), True)),
    "a comment in the prolog": (
        body(A1_REFS, prolog=DECLARATION + b"<!-- efetch -->" + DOCTYPE + b"<PubmedArticleSet>"),
        Framed((), body(A1_REFS, prolog=DECLARATION + b"<!-- efetch -->" + DOCTYPE + b"<PubmedArticleSet>"),
               True)),
    "a second DOCTYPE between records": (
        body(A1_REFS, A2_REFS, between=b"\n" + DOCTYPE),
        Framed((A1_REFS,), PROLOG + A1 + b"\n" + DOCTYPE + A2_REFS + b"\n" + DOCTYPE + END, True)),
    "a declared encoding other than UTF-8": (
        body(A1_REFS, prolog=b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<PubmedArticleSet>'),
        Framed((), body(A1_REFS, prolog=b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<PubmedArticleSet>'), True)),
    "a UTF-16 declaration": (
        body(A1_REFS, prolog=b"<?xml version='1.0' encoding='UTF-16'?><PubmedArticleSet>"),
        Framed((), body(A1_REFS, prolog=b"<?xml version='1.0' encoding='UTF-16'?><PubmedArticleSet>"), True)),
    # The framer does not track the root: what follows it is passed along, for the parser to reject.
    "text after the root": (
        body(A1_REFS) + b"trailing words",
        Framed((A1_REFS,), body(A1) + b"trailing words", False)),
    "a record after the root": (
        body(A1) + A2_REFS,
        Framed((A1, A2_REFS), body(A1) + A2, False)),
}


@pytest.mark.parametrize("case", CASES)
def test_framing_does_not_depend_on_where_the_body_is_cut(case):
    data, expected = CASES[case]
    for seed, pieces in enumerate(splits(data, seed=len(case)) if data else [[]]):
        assert frame(pieces) == expected, (case, seed, [len(piece) for piece in pieces])


def test_a_wrong_pmid_stops_framing_and_the_rest_passes_through():
    data = body(A1_REFS, A2_REFS, A3)
    cut = data.index(A3) + 40
    framer = RecordFramer()
    first = framer.feed(data[:cut])
    assert first == body(A1, A2, prolog=PROLOG, end=b"")
    assert framer.next_record(101) == A1_REFS
    assert framer.next_record(999) is None
    assert framer.passthrough
    assert framer.feed(data[cut:]) == data[len(first) + len(REFERENCES) * 2:]
    assert framer.close() == b""


def test_a_record_larger_than_the_limit_passes_through_once_held_without_its_end():
    big = article(102, b"<Abstract>" + b"x" * 500 + b"</Abstract>")
    data = body(A1, big, A3)
    # Fed in pieces, more than 400 bytes of the second record are held before its end tag: framing stops.
    for size in (1, 7, 64, 300):
        pieces = [data[offset:offset + size] for offset in range(0, len(data), size)]
        assert frame(pieces, largest_record=400) == Framed((A1,), data, True), size
    # Arriving whole, the record is complete as soon as it is seen, and framed.
    assert frame([data], largest_record=400) == Framed((A1, big, A3), data, False)


def test_a_prolog_larger_than_the_limit_passes_through():
    data = body(A1_REFS, prolog=DECLARATION + b" " * 300 + b"<PubmedArticleSet>")
    pieces = [data[offset:offset + 50] for offset in range(0, len(data), 50)]
    assert frame(pieces, largest_prolog=200) == Framed((), data, True)
    assert frame([data], largest_prolog=200) == Framed((A1_REFS,), data.replace(REFERENCES, b""), False)


@pytest.mark.parametrize(("record", "expected"), [
    (b"<R><PMID>1</PMID></R>", b"<R><PMID>1</PMID></R>"),
    (b"<R>a" + REFERENCES + b"b</R>", b"<R>ab</R>"),
    (b"<R>" + REFERENCES + b"m" + REFERENCES + b"</R>", b"<R>m</R>"),
    (b"<R><ReferenceList><ReferenceList><Reference/></ReferenceList><ReferenceList/></ReferenceList>z</R>",
     b"<R>z</R>"),
    (b"<R>a<ReferenceList/>b<ReferenceList />c</R>", b"<R>abc</R>"),
    (b'<R><ReferenceList Type="cited">r</ReferenceList\n>e</R>', b"<R>e</R>"),
    (b"<R><ReferenceList\n>r</ReferenceList >e</R>", b"<R>e</R>"),
    # Unbalanced, or not the element: the record as it was.
    (b"<R><ReferenceList><Reference></R>", b"<R><ReferenceList><Reference></R>"),
    (b"<R></ReferenceList>x</R>", b"<R></ReferenceList>x</R>"),
    (b"<R><ReferenceList>a</ReferenceList></ReferenceList></R>",
     b"<R><ReferenceList>a</ReferenceList></ReferenceList></R>"),
    (b"<R><ReferenceListing>a</ReferenceListing></R>", b"<R><ReferenceListing>a</ReferenceListing></R>"),
    (b"<R><Title>ReferenceList of the trial</Title></R>", b"<R><Title>ReferenceList of the trial</Title></R>"),
    (b"<R><ReferenceList", b"<R><ReferenceList"),
])
def test_reference_lists_are_cut_only_when_they_balance(record, expected):
    assert without_reference_lists(record) == expected


@pytest.mark.parametrize(("data", "expected"), [
    (b"<R>plain</R>", False),
    (b"<R>Is it safe? Yes! a<b, c>d</R>", False),
    (b"!<R>", False),
    (b"<R><!-- note --></R>", True),
    (b"<R><![CDATA[x]]></R>", True),
    (b"<R><?pi x?></R>", True),
    (b"<!DOCTYPE x>", True),
    (b"<?xml version='1.0'?>", True),
    (b"x<", False),
])
def test_markup_declarations_are_found(data, expected):
    assert has_markup_declaration(data) is expected
