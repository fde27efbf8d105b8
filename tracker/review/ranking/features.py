"""Records into feature vectors: three TF-IDF blocks side by side, fitted on the records the model learns from.

    text   title + abstract, word 1-2 grams, sublinear tf, max_df 0.95 (ASReview's default extractor)
    title  the title alone, word 1-2 grams, sublinear tf, weight 0.5: a word in the title counts again
    terms  MeSH headings, keywords, publication types and journal, one token each, sublinear tf, weight 0.5

Each block is L2-normalised by TF-IDF and then scaled by its weight. The weights and the blocks were chosen on
the Cohen 2006 datasets (benchmarks/ranking.py): the terms block is what lifts work saved at 95 % recall
(NSAIDS +0.11, urinary incontinence +0.10), the title block recall in the first quarter screened.
Publication types and journal are in the terms block unmeasured: the Cohen files have neither.

Tokens are hashed (2^22 buckets for the 1-2 grams, 2^18 for terms) rather than kept in a vocabulary: on 10,000
records that makes the text block 2.6 times faster to build, and a collision between two rare bigrams is
the price. Document frequencies (for idf and max_df) come from the records the space is fitted on (a topic's
every paper, or by default the decided ones), and only the tokens they contain are columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer

from tracker.review.ranking.records import Record

WORD_PATTERN = r"(?u)\b\w\w+\b"  # scikit-learn's default, as ASReview's
TEXT_BUCKETS = 2**22
TERM_BUCKETS = 2**18


@dataclass(frozen=True)
class Block:
    name: str
    weight: float
    read: Callable[[Record], str | list[str]]
    vectorizer: HashingVectorizer
    max_df: float = 1.0


def _words(buckets: int) -> HashingVectorizer:
    return HashingVectorizer(ngram_range=(1, 2), token_pattern=WORD_PATTERN, n_features=buckets,
                             alternate_sign=False, norm=None)


def _tokens(buckets: int) -> HashingVectorizer:
    return HashingVectorizer(analyzer=lambda terms: terms, n_features=buckets, alternate_sign=False, norm=None)


BLOCKS = (
    Block("text", 1.0, lambda record: record.text, _words(TEXT_BUCKETS), max_df=0.95),
    Block("title", 0.5, lambda record: record.title, _words(TEXT_BUCKETS)),
    Block("terms", 0.5, lambda record: record.terms, _tokens(TERM_BUCKETS)),
)


@dataclass(frozen=True)
class TokenCounts:
    """Each block's hashed token counts, one row per record: what fitting and scoring start from.

    Counting is most of the work (tokenising and hashing 1-2 grams); a caller that retrains often on the same
    papers can count them once and `take` the rows each fit or score needs.
    """

    blocks: tuple[sparse.csr_matrix, ...]

    def __len__(self) -> int:
        return self.blocks[0].shape[0]

    def take(self, rows: Sequence[int] | np.ndarray) -> TokenCounts:
        return TokenCounts(tuple(block[np.asarray(rows, dtype=np.intp)] for block in self.blocks))

    def in_slices(self) -> Iterator[TokenCounts]:
        """The rows RECORDS_AT_ONCE at a time, in order."""
        for start in range(0, len(self), RECORDS_AT_ONCE):
            yield self.take(range(start, min(start + RECORDS_AT_ONCE, len(self))))


# Records counted or scored at once: their 1-2 grams are Python strings until hashed, and a 5,000-paper topic's
# vectors at once took 100 MB more at the relevance refresh's peak (benchmark 14).
RECORDS_AT_ONCE = 1_000


def count_tokens(records: Sequence[Record], blocks: Sequence[Block] = BLOCKS) -> TokenCounts:
    return TokenCounts(tuple(_count(block, records) for block in blocks))


def _count(block: Block, records: Sequence[Record]) -> sparse.csr_matrix:
    parts = [block.vectorizer.transform([block.read(record) for record in records[start:start + RECORDS_AT_ONCE]])
             for start in range(0, len(records), RECORDS_AT_ONCE)]
    return sparse.vstack(parts, format="csr")


@dataclass(frozen=True)
class FittedBlock:
    columns: np.ndarray  # the hash buckets kept as columns, in order
    dropped: np.ndarray  # buckets above max_df: out of the vectors and their norms, as a stop word is
    idf: np.ndarray  # per kept column
    unseen_idf: float  # what a token no fitted record has weighs in a scored record's norm


class FeatureSpace:
    """The blocks' columns and document frequencies, learned from one set of records; turns counts into vectors.

    Only the hash buckets that occur in the fitted records (and pass max_df) are columns: a linear model gives
    an unseen token no weight anyway. An unseen token still counts in its record's L2 norm, as the rarest
    token would (df 0, smoothed idf): a paper mostly about things no decided paper mentions keeps a small
    vector rather than one blown up from its few familiar words. Measured: dropping unseen tokens from the
    norm, as a fitted TfidfVectorizer does, cost the screening simulation 0.18 summed WSS@95 and 0.10
    summed recall@10 % (benchmarks/ranking.py).
    """

    def __init__(self, blocks: Sequence[Block] = BLOCKS) -> None:
        self.blocks = tuple(blocks)
        self._fitted: list[FittedBlock] = []

    def fit_transform(self, counted: TokenCounts, vocabulary: TokenCounts | None = None) -> sparse.csr_matrix:
        """Fit on `vocabulary` (default: `counted` itself) and transform `counted`."""
        self.fit(counted if vocabulary is None else vocabulary)
        return self.transform(counted)

    def fit(self, counted: TokenCounts) -> None:
        self._fitted = []
        for block, counts in zip(self.blocks, counted.blocks, strict=True):
            records = counts.shape[0]
            buckets, frequency = np.unique(counts.indices, return_counts=True)  # the buckets that occur, sorted
            common = frequency > block.max_df * records
            # scikit-learn's smoothed idf: ln((1 + n) / (1 + df)) + 1
            idf = np.log((1 + records) / (1 + frequency[~common])) + 1
            self._fitted.append(FittedBlock(buckets[~common].astype(np.intp), buckets[common].astype(np.intp), idf,
                                            float(np.log(1 + records) + 1)))

    def transform(self, counted: TokenCounts) -> sparse.csr_matrix:
        if not self._fitted:
            raise RuntimeError("FeatureSpace.transform before fit_transform: fit it on the training records first")
        parts = []
        for block, counts, fitted in zip(self.blocks, counted.blocks, self._fitted, strict=True):
            parts.append(block.weight * _tfidf(counts, fitted))
        return sparse.hstack(parts, format="csr")


def _tfidf(counts: sparse.csr_matrix, fitted: FittedBlock) -> sparse.csr_matrix:
    """Sublinear tf times idf over the kept columns, each row L2-normalised with its unseen tokens counted."""
    # Computed on the nonzeros (a sorted search of the kept buckets) rather than by slicing the matrix's 2^22 columns:
    # scipy's column slices made the web app's relevance refresh peak at 340 MB on a 5,000-paper topic (benchmark 14).
    records = counts.shape[0]
    rows = np.repeat(np.arange(records, dtype=np.intp), np.diff(counts.indptr))
    sublinear = 1 + np.log(counts.data.astype(np.float64))
    columns, kept = _positions(fitted.columns, counts.indices)
    _, dropped = _positions(fitted.dropped, counts.indices)
    unseen = ~kept & ~dropped
    weighted = sublinear[kept] * fitted.idf[columns[kept]]
    known = np.bincount(rows[kept], weights=weighted * weighted, minlength=records)
    unseen_squares = np.bincount(rows[unseen], weights=sublinear[unseen] ** 2, minlength=records)
    norms = np.sqrt(known + unseen_squares * fitted.unseen_idf**2)
    norms[norms == 0] = 1.0
    kept_rows = rows[kept]
    indptr = np.concatenate(([0], np.cumsum(np.bincount(kept_rows, minlength=records)))).astype(counts.indptr.dtype)
    matrix = sparse.csr_matrix((weighted / norms[kept_rows], columns[kept], indptr),
                               shape=(records, len(fitted.columns)))
    matrix.sort_indices()
    return matrix


def _positions(sorted_buckets: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of `indices` stands in `sorted_buckets`, and whether it is there at all."""
    if not len(sorted_buckets):
        return np.zeros(len(indices), dtype=np.intp), np.zeros(len(indices), dtype=bool)
    found = np.searchsorted(sorted_buckets, indices)
    found[found == len(sorted_buckets)] = 0
    return found, sorted_buckets[found] == indices
