"""Amounts with units, as clinical abstracts write them, read from the normalised lower-cased text.

    values     "2.5", "0.05-0.1", "0.05 to 0.1", "between 0.05 and 0.1", "0.025, 0.05, 0.075 or 0.1", "≥10"
    spread     "0.5 (IQR 0.3-1.0)", "1.0 [0.5-2.0]", "0.12 ± 0.05" (the central value is the amount)
    unit       a mass or amount (µg, mcg, ug, [micro]g, micrograms, mg, ng, U, IU, units, mU, mL; joined by a
               hyphen too: "a 1-U bolus", "a 5-µg bolus"; molar µM, nM, pM and nmol for estimates) and up to three
               denominators: "/kg/min", " per kilogram of body weight per minute", "/(kg.min)", " kg-1 min-1",
               ".kg-1.min-1", "/h", " h-1", "/day"; "μg of norepinephrine per kilogram ..." names its drug inside.

Every pattern is anchored and bounded (no nested unbounded repetition), so reading is linear in the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tracker.facts.numbers import decimal

NUMBER = r"\d{1,7}(?:[.,]\d{1,6})?"
_SEPARATOR = (r"(?:\s{0,3}-\s{0,3}|\s{0,2},(?:\s{0,2}(?:and|or)\b)?\s{0,2}|\s{1,3}(?:to|up\s{1,2}to|and|or)\s{1,3}|"
              r"\s{1,3}(?:vs\.?|versus)\s{1,3})")
_SPREAD = (r"(?:\s{0,2}(?:±|\+/-|\+-)\s{0,2}" + NUMBER + r"|\s{0,2}\((?=[^()]{0,40}\d)[^()]{0,40}\)"
           r"|\s{0,2}\[(?=[^\[\]]{0,40}\d)[^\[\]]{0,40}\])")
VALUES = re.compile(rf"(?<![\w.,])({NUMBER}(?:{_SEPARATOR}{NUMBER}){{0,12}})({_SPREAD})?")
_VALUE_PARTS = re.compile(rf"{NUMBER}|{_SEPARATOR}")

_MASS = re.compile(
    r"(?:\s{0,2}|-)(µg|mcg|ug|\[micro\]\s?g|micro\s?grams?|micrograms?|micro\s?g|milligrams?|mg|nanograms?|ng|"
    r"picograms?|pg|grams?|g|milli-?units?|mu|international units?|i\.u\.|iu|units?|u|mmol|millilit(?:re|er)s?|ml|"
    # molar concentrations, which only an estimate (EC50) has: µM, nM, pM, nmol/L
    r"µm|um|nm|pm|µmol|umol|nmol|pmol|micromolar|nanomolar|picomolar)"
    r"(?![a-z\d])")
_MASS_CANONICAL = {"µg": "µg", "mcg": "µg", "ug": "µg", "mg": "mg", "ng": "ng", "pg": "pg", "g": "g", "mu": "mU",
                   "iu": "U", "i.u.": "U", "u": "U", "mmol": "mmol", "ml": "mL", "µm": "µM", "um": "µM", "nm": "nM",
                   "pm": "pM", "µmol": "µmol", "umol": "µmol", "nmol": "nmol", "pmol": "pmol", "micromolar": "µM",
                   "nanomolar": "nM", "picomolar": "pM"}
MOLAR_UNITS = frozenset({"µM", "nM", "pM"})
_DENOMINATOR = (r"(kg|kilograms?(?:\s{1,2}of\s{1,2}body\s{0,1}weight)?|kg\s{1,2}of\s{1,2}body\s{0,1}weight|kg\s?bw|"
                r"min|mins|minutes?|h|hr|hrs|hours?|d|days?|24\s?h|ml|millilit(?:re|er)s?|dl|l)")
_SLASH = re.compile(r"\s{0,2}(?:/|per\b)\s{0,2}" + _DENOMINATOR + r"(?![a-z\d])")
# Spaces up to eight wide: a masked tag ("kg<sup>-1</sup>") leaves its width in spaces.
_EXPONENT = re.compile(r"(?:\s{1,8}|\s{0,8}[.x*]\s{0,2})(kg|min|h|hr|d|day|ml)\s{0,6}\^?\s?-\s?1(?!\d)")
_PAIR = re.compile(r"\s{0,2}(?:/|per\b)\s{0,2}\(\s{0,2}(kg)\s{0,2}(?:[.x*]\s{0,2}|\s)(min|minutes?|h|hr|hours?)\s{0,2}\)")
_OF = re.compile(r"\s{1,2}of\s{1,2}")
_DENOMINATOR_CANONICAL = {"kg": "kg", "min": "min", "h": "h", "d": "day", "ml": "mL", "dl": "dL", "l": "L"}

GIVEN_UNITS = frozenset({"µg", "mg", "µg/kg", "mg/kg", "µg/min", "mg/h", "µg/h", "µg/kg/min", "µg/kg/h", "U", "U/min",
                         "U/h", "mg/min", "µg/mL", "mg/mL", "mL/h"})
MASS_BASES = frozenset({"µg", "mg", "ng", "U", "mU"})
TIME_DENOMINATORS = frozenset({"min", "h", "day"})


@dataclass(frozen=True)
class Amount:
    low: float
    high: float


@dataclass(frozen=True)
class Quantity:
    start: int  # the first digit
    end: int  # after the unit
    amounts: tuple[Amount, ...]
    unit: str
    spread: bool  # a dispersion stood between the value and the unit: a reported mean or median
    drug_start: int = -1  # "µg of norepinephrine per kg ...": where the drug inside the unit starts

    @property
    def base(self) -> str:
        return self.unit.split("/", 1)[0]

    @property
    def denominators(self) -> tuple[str, ...]:
        return tuple(self.unit.split("/")[1:])

    @property
    def is_rate(self) -> bool:
        return any(part in TIME_DENOMINATORS for part in self.denominators)

    @property
    def is_concentration(self) -> bool:
        return self.base in MASS_BASES and self.denominators == ("mL",)

    @property
    def is_volume_rate(self) -> bool:
        return self.base == "mL" and self.denominators[-1:] in (("h",), ("min",)) and "kg" not in self.denominators

    @property
    def is_volume(self) -> bool:
        return self.unit == "mL"

    @property
    def is_dose_unit(self) -> bool:
        """A unit the schema lists, or a clear mass rate outside it (ng/kg/min, mg/day, mg/kg/h stay as written)."""
        if self.unit in GIVEN_UNITS:
            return self.unit != "mL/h"
        return self.base in MASS_BASES and self.is_rate and "mL" not in self.denominators


def read_unit(low: str, position: int, drug_starts: frozenset[int]) -> tuple[str, int, int] | None:
    """The canonical unit at `position`, where it ends, and where a drug named inside it starts (-1 if none)."""
    mass = _MASS.match(low, position)
    if not mass:
        return None
    word = mass.group(1).replace(" ", "")
    if word.endswith("molar"):
        base = _MASS_CANONICAL[word]
    elif word.startswith(("[micro]", "micro")):
        base = "µg"
    elif word.startswith(("milligram",)):
        base = "mg"
    elif word.startswith("nanogram"):
        base = "ng"
    elif word.startswith("picogram"):
        base = "pg"
    elif word.startswith("gram"):
        base = "g"
    elif word.startswith(("milli-unit", "milliunit")):
        base = "mU"
    elif word.startswith(("international", "unit")):
        base = "U"
    elif word.startswith("millilit"):
        base = "mL"
    else:
        base = _MASS_CANONICAL[word]
    end = mass.end()
    drug_start = -1
    interposed = _OF.match(low, end)
    if interposed and interposed.end() in drug_starts:
        after_drug = _skip_word_run(low, interposed.end())
        if _SLASH.match(low, after_drug) or _EXPONENT.match(low, after_drug):
            drug_start, end = interposed.end(), after_drug
    denominators: list[str] = []
    for _ in range(3):
        pair = _PAIR.match(low, end)
        if pair:
            denominators += ["kg", _denominator(pair.group(2))]
            end = pair.end()
            continue
        step = _SLASH.match(low, end) or _EXPONENT.match(low, end)
        if not step:
            break
        denominators.append(_denominator(step.group(1)))
        end = step.end()
    if len(set(denominators)) != len(denominators):
        return None
    order = {"kg": 0, "min": 1, "h": 1, "day": 1, "mL": 2, "dL": 2, "L": 2}
    denominators.sort(key=lambda part: order.get(part, 3))
    return "/".join([base, *denominators]), end, drug_start


def _denominator(word: str) -> str:
    word = word.replace(" ", "")
    if word.startswith(("kg", "kilogram")):
        return "kg"
    if word.startswith("min"):
        return "min"
    if word in ("h", "hr", "hrs") or word.startswith("hour"):
        return "h"
    if word in ("d",) or word.startswith("day") or word == "24h":
        return "day"
    if word.startswith("millilit"):
        return "mL"
    return _DENOMINATOR_CANONICAL.get(word, word)


_WORD_RUN = re.compile(r"[a-zµ][\w-]{0,30}(?:\s[a-z][\w-]{0,30}){0,2}?(?=\s{0,2}(?:/|per\b)|\s{1,2}[a-z]{1,3}\s?-\s?1)")


def _skip_word_run(low: str, position: int) -> int:
    run = _WORD_RUN.match(low, position)
    return run.end() if run else position


def amounts_of(values: str, between: bool) -> tuple[Amount, ...]:
    """"0.05-0.1" one range; "0.025, 0.05 or 0.1" three amounts; "0.05 and 0.1" a range only after "between"."""
    parts = _VALUE_PARTS.findall(values)
    numbers: list[float] = []
    joins: list[str] = []
    for part in parts:
        if part[:1].isdigit():
            numbers.append(decimal(part))
        else:
            join = part.strip().strip(",").strip()
            # "from 0.02 up to 0.3" is a range; "0.2 vs 0.3" two values
            joins.append("to" if join.startswith("up") else "," if join.startswith("v") else join)
    amounts: list[Amount] = []
    index = 0
    while index < len(numbers):
        join = joins[index] if index < len(joins) else ""
        if index + 1 < len(numbers) and (join in ("-", "to") or (join == "and" and between and len(numbers) == 2)):
            if numbers[index] > numbers[index + 1]:
                # "decreased from 0.35 to 0.12": two values, not a range
                amounts += [Amount(numbers[index], numbers[index]), Amount(numbers[index + 1], numbers[index + 1])]
            else:
                amounts.append(Amount(numbers[index], numbers[index + 1]))
            index += 2
            if index < len(numbers) and joins[index - 1] in ("-", "to"):
                return ()  # "1-2-3": a date or a code, not an amount
            continue
        amounts.append(Amount(numbers[index], numbers[index]))
        index += 1
    if len(amounts) > 1:
        amounts = [amount for amount in amounts if amount.high > 0]
    return tuple(amounts)


_BETWEEN = re.compile(r"between\s{1,2}$")
_REPEATED_UNIT_RANGE = re.compile(r"\s{0,3}(?:-|to)\s{0,3}(?=\d)")


def quantities(low: str, drug_starts: frozenset[int] = frozenset(), start: int = 0, end: int | None = None) -> list[Quantity]:
    """Every amount with a unit in low[start:end], in text order."""
    end = len(low) if end is None else end
    found: list[Quantity] = []
    position = start
    while True:
        match = VALUES.search(low, position, end)
        if not match:
            break
        position = match.end()
        unit = read_unit(low, match.end(), drug_starts)
        if unit is None:
            continue
        name, unit_end, drug_start = unit
        between = bool(_BETWEEN.search(low, max(0, match.start() - 10), match.start()))
        amounts = amounts_of(match.group(1), between)
        if not amounts:
            continue
        quantity = Quantity(match.start(), unit_end, amounts, name, match.group(2) is not None, drug_start)
        joined = _REPEATED_UNIT_RANGE.match(low, unit_end)
        if joined and len(amounts) == 1 and amounts[0].low == amounts[0].high:
            second = VALUES.match(low, joined.end(), end)
            second_unit = read_unit(low, second.end(), drug_starts) if second else None
            if second and second_unit and second_unit[0] == name and second.group(2) is None:
                upper = amounts_of(second.group(1), False)
                if len(upper) == 1 and upper[0].low == upper[0].high:
                    quantity = Quantity(match.start(), second_unit[1], (Amount(amounts[0].low, upper[0].high),), name,
                                        False, drug_start)
        found.append(quantity)
        position = max(position, quantity.end)
    return found
