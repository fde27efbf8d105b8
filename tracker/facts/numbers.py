"""Numbers as abstracts write them: digits ("0.05", "0,05", "1,747", "1, 747") and words ("Four hundred and
seventy-eight", "Ninety-two").

Hand-written rather than a library: word2number reads the same words but has had no release since 2017, and
number-parser took 3.3 ms a phrase against a few microseconds here (measured, docs in tracker/facts/__init__.py).
"""

from __future__ import annotations

import re

_UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
          "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
          "seventeen": 17, "eighteen": 18, "nineteen": 19}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1000}
_WORD = "|".join(sorted([*_UNITS, *_TENS, *_SCALES], key=len, reverse=True))
# At most eight words: "one thousand two hundred and thirty-four" is seven.
WORD_NUMBER = re.compile(rf"\b(?:a |an )?(?:{_WORD})(?:(?: and |[ -])(?:{_WORD})){{0,7}}\b")


def word_number(words: str) -> int | None:
    """The value of a run of number words, or None if they do not make one number."""
    total, current, seen = 0, 0, False
    for word in re.split(r"[\s-]+", words.lower().strip()):
        if word in ("and", ""):
            continue
        if word in ("a", "an"):
            current = max(current, 1)
        elif word in _UNITS:
            current += _UNITS[word]
            seen = True
        elif word in _TENS:
            current += _TENS[word]
            seen = True
        elif word == "hundred":
            current = max(current, 1) * 100
            seen = True
        elif word == "thousand":
            total += max(current, 1) * 1000
            current = 0
            seen = True
        else:
            return None
    return total + current if seen else None


def decimal(text: str) -> float:
    """A number as written in a dose: "0.05", "0,05" (a decimal comma), "1,000" (thousands), "12"."""
    text = text.strip()
    if "," in text:
        whole, _, part = text.partition(",")
        if len(part) == 3 and whole not in ("0", ""):
            return float(whole + part)
        return float(f"{whole or '0'}.{part}")
    return float(text)


def count(text: str) -> int | None:
    """A count as written: "1,747", "1, 747", "3 819" or number words; None when it is not a whole number."""
    digits = re.sub(r"(?<=\d)[,\s](?=\s?\d{3}\b)|\s", "", text)
    if digits.isdigit():
        return int(digits)
    return word_number(text)
