"""How a paper's record XML is kept in the store (`paper.xml_gz`, `paper_revision.xml_gz`): compressed.

Written as a Zstandard frame at level 1; read as Zstandard or, for rows written before, zlib (told apart by
their first bytes: a Zstandard frame starts with its magic number, a zlib stream never does). On the real
sample records, Zstandard level 1 took 0.10 ms a record against zlib level 3's 0.39 ms (and decompressed in a
third of the time) for the same size, 30% of the XML (BENCHMARKS.md, ingest): compression had been the
largest single cost of storing a paper.
"""

from __future__ import annotations

import threading
import zlib

import zstandard

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_LEVEL = 1
# Compressor and decompressor contexts are not thread-safe: one of each per thread.
_contexts = threading.local()


def compress_xml(xml: bytes) -> bytes:
    compressor = getattr(_contexts, "compressor", None)
    if compressor is None:
        compressor = _contexts.compressor = zstandard.ZstdCompressor(level=_LEVEL)
    # python-zstandard returns its output in a buffer of the worst-case size (the input's and more): a copy keeps only
    # the compressed bytes, a third of that, for as long as a batch's rows are held (BENCHMARKS.md, backfill memory).
    return bytes(memoryview(compressor.compress(xml)))


def decompress_xml(stored: bytes) -> bytes:
    if not stored:
        return b""
    if stored[:4] != _ZSTD_MAGIC:
        return zlib.decompress(stored)
    decompressor = getattr(_contexts, "decompressor", None)
    if decompressor is None:
        decompressor = _contexts.decompressor = zstandard.ZstdDecompressor()
    return decompressor.decompress(stored)


__all__ = ["compress_xml", "decompress_xml"]
