"""Cutting an efetch body into its records as bytes arrive, before lxml parses them.

RecordFramer.feed() takes the body in pieces of any size and returns what the XML parser should get now: the
prolog, the text between records and each record whose end tag has arrived, with its <ReferenceList>
elements cut out. next_record() then gives each record's bytes exactly as received, in order, for Paper.xml.
The cutting is a byte search, exact only while every "<" is markup; at the first comment, CDATA section,
processing instruction, internal DTD subset, non-UTF-8 declared encoding or oversized record (or a PMID
next_record() does not find where it expects), the framer stops cutting and passes the rest of the body
through untouched, and the caller serialises records itself.
"""

from __future__ import annotations

import re
from collections import deque


class RecordFramer:
    """Cuts the byte stream into whole records before the parser sees them.

    Each record's bytes, as received, become Paper.xml: re-serialising with tostring() would cost about half
    of what parsing costs. The parser gets the record with its <ReferenceList> elements cut out: PaperParser
    reads nothing in them and they are most of a current record's bytes. A record is handed over only once its
    end tag has arrived, so a truncated body still reaches the parser whole, and fails there, at close().

    Cutting by byte search is exact when every "<" is markup, which holds for efetch output: no comments,
    CDATA, processing instructions or internal DTD subset. At the first sign of one, or of a record too large
    to hold, the framer passes everything through untouched and PaperParser serialises Paper.xml itself.
    A record counts as too large once more than largest_record of its bytes are held without its end tag (a
    record that arrives whole in one piece is framed whatever its size); likewise the prolog, when no record
    has started within largest_prolog bytes.
    """

    _RECORD_START = re.compile(rb"<(PubmedArticle|PubmedBookArticle)[\s>]")
    _LONGEST_RECORD_START = len(b"<PubmedBookArticle ")
    _END_TAGS = {b"PubmedArticle": b"</PubmedArticle", b"PubmedBookArticle": b"</PubmedBookArticle"}
    _END_TAG_CLOSE = re.compile(rb"\s*>")
    _XML_DECLARATION = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*<\?xml[^>]*\?>")
    _DECLARED_ENCODING = re.compile(rb"encoding\s*=\s*[\"']([A-Za-z0-9._-]+)")

    def __init__(self, *, largest_record: int = 16 * 1024 * 1024, largest_prolog: int = 1024 * 1024) -> None:
        self._largest_record = largest_record
        self._largest_prolog = largest_prolog
        self.passthrough = False
        self._buffer = bytearray()
        self._in_prolog = True
        self._record_start: int | None = None
        self._end_tag = b""
        self._scan_from = 0
        self._records: deque[bytes] = deque()

    def feed(self, chunk: bytes) -> bytes:
        """The bytes the parser should get now."""
        buffer = self._buffer
        if self.passthrough:
            if not buffer:
                return chunk
            held = bytes(buffer) + chunk
            buffer.clear()
            return held
        buffer += chunk
        for_parser = []
        handed_over = 0
        if self._in_prolog:
            first_record = self._RECORD_START.search(buffer, self._scan_from)
            if first_record is None:
                if len(buffer) > self._largest_prolog:
                    return self._pass_through([], 0)
                self._scan_from = max(0, len(buffer) - self._LONGEST_RECORD_START)
                return b""
            if not self._is_plain_prolog(buffer[:first_record.start()]):
                return self._pass_through([], 0)
            self._in_prolog = False
            for_parser.append(bytes(buffer[:first_record.start()]))
            self._scan_from = handed_over = first_record.start()
        while True:
            if self._record_start is None:
                start = self._RECORD_START.search(buffer, self._scan_from)
                if start is None:
                    # Keep what may be the beginning of a start tag, or the "<" of a "<!" still to come.
                    between = len(buffer) - self._LONGEST_RECORD_START
                    if buffer[between - 1:between] == b"<":
                        between -= 1
                else:
                    between = start.start()
                if between > handed_over:
                    with memoryview(buffer) as view:
                        between_records = view[handed_over:between].tobytes()
                    if has_markup_declaration(between_records):
                        return self._pass_through(for_parser, handed_over)
                    for_parser.append(between_records)
                    handed_over = between
                if start is None:
                    self._scan_from = handed_over
                    break
                self._record_start = start.start()
                self._end_tag = self._END_TAGS[start.group(1)]
                self._scan_from = start.end()
            end = buffer.find(self._end_tag, self._scan_from)
            close = None if end < 0 else self._END_TAG_CLOSE.match(buffer, end + len(self._end_tag))
            if close is None:
                if end >= 0 and buffer[end + len(self._end_tag):].strip():
                    self._scan_from = end + len(self._end_tag)
                    continue
                if len(buffer) - self._record_start > self._largest_record:
                    return self._pass_through(for_parser, handed_over)
                self._scan_from = max(self._scan_from, len(buffer) - len(self._end_tag)) if end < 0 else end
                break
            with memoryview(buffer) as view:
                record = view[self._record_start:close.end()].tobytes()
            if has_markup_declaration(record):
                return self._pass_through(for_parser, handed_over)
            self._records.append(record)
            for_parser.append(without_reference_lists(record))
            self._record_start = None
            self._scan_from = handed_over = close.end()
        if handed_over:
            del buffer[:handed_over]
            self._scan_from -= handed_over
            if self._record_start is not None:
                self._record_start -= handed_over
        return b"".join(for_parser)

    def close(self) -> bytes:
        """Whatever is still held (a prolog, a truncated record) for the parser to finish or fail on."""
        held = bytes(self._buffer)
        self._buffer.clear()
        return held

    def next_record(self, pmid: int) -> bytes | None:
        """The bytes of the record the parser completed next, or None once framing has stopped."""
        if not self._records:
            return None
        record = self._records.popleft()
        pmid_start = record.find(b">", record.find(b"<PMID")) + 1
        if record[pmid_start:record.find(b"</PMID>", pmid_start)].strip() != b"%d" % pmid:
            self.passthrough = True
            return None
        return record

    def _is_plain_prolog(self, prolog: bytearray) -> bool:
        """A UTF-8 XML declaration, a DOCTYPE naming the external DTD and the root start tag, nothing else."""
        declaration = self._XML_DECLARATION.match(prolog)
        rest = prolog
        if declaration:
            # Paper.xml is a slice of the body, so the body must be UTF-8 for the slice to stand alone as XML.
            encoding = self._DECLARED_ENCODING.search(declaration.group())
            if encoding and encoding.group(1).lower() not in (b"utf-8", b"utf8", b"us-ascii", b"ascii"):
                return False
            rest = prolog[declaration.end():]
        return b"<?" not in rest and b"[" not in rest and rest.count(b"<!") == rest.count(b"<!DOCTYPE") <= 1

    def _pass_through(self, for_parser: list[bytes], handed_over: int) -> bytes:
        self.passthrough = True
        for_parser.append(bytes(self._buffer[handed_over:]))
        self._buffer.clear()
        return b"".join(for_parser)


def has_markup_declaration(data: bytes) -> bool:
    """Whether data holds "<!" or "<?": a comment, CDATA section, DOCTYPE or processing instruction."""
    # "!" and "?" are rare in records while "<" is everywhere: looking for them first is several times faster.
    for mark in b"!?":
        found = data.find(mark, 1)
        while found > 0:
            if data[found - 1] == 0x3C:
                return True
            found = data.find(mark, found + 1)
    return False


_TAG_NAME_ENDS = (b">", b"/", b" ", b"\t", b"\n", b"\r")


def without_reference_lists(record: bytes) -> bytes:
    """The record without its (possibly nested) <ReferenceList> elements; as it was if they do not balance."""
    kept = []
    keep_from = depth = 0
    found = record.find(b"ReferenceList")
    while found >= 0:
        tag_end = record.find(b">", found)
        if tag_end < 0:
            return record
        after_name = found + len(b"ReferenceList")
        is_tag_name = record[after_name:after_name + 1] in _TAG_NAME_ENDS
        if is_tag_name and record[found - 1:found] == b"<":
            if depth == 0:
                kept.append(record[keep_from:found - 1])
            if record[tag_end - 1:tag_end] != b"/":
                depth += 1
            elif depth == 0:
                keep_from = tag_end + 1
        elif is_tag_name and record[found - 2:found] == b"</":
            depth -= 1
            if depth < 0:
                return record
            if depth == 0:
                keep_from = tag_end + 1
        found = record.find(b"ReferenceList", tag_end)
    if depth or not kept:
        return record
    kept.append(record[keep_from:])
    return b"".join(kept)
