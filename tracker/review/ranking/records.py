"""What the relevance model reads about a paper: a Record built from plain values (no store import)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    """One paper as the relevance model sees it.

    `mesh_headings` are descriptor names ("Sepsis", "Norepinephrine"); major-topic flags are not used,
    because the labelled data the model was measured on (Cohen 2006) carries none to weigh them by.
    `keywords` are the author keywords and `publication_types` PubMed's ("Randomized Controlled Trial").
    """

    pmid: int
    title: str = ""
    abstract: str = ""
    mesh_headings: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    publication_types: tuple[str, ...] = ()
    journal: str | None = None

    @property
    def text(self) -> str:
        """Title and abstract as one text, the way ASReview's TF-IDF reads them."""
        return f"{self.title} {self.abstract}"

    @property
    def terms(self) -> list[str]:
        """Controlled and author terms as whole tokens: a MeSH heading and a keyword that read alike match."""
        terms = [_term(heading) for heading in self.mesh_headings]
        terms += [_term(keyword) for keyword in self.keywords]
        terms += [f"publication type: {_term(kind)}" for kind in self.publication_types]
        if self.journal:
            terms.append(f"journal: {_term(self.journal)}")
        return [term for term in terms if term and not term.endswith(": ")]


def _term(value: str) -> str:
    return " ".join(value.lower().split())
