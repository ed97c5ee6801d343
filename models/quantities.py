"""Physical quantities in descriptions and the numeric limits of Annex I provisions, and the check between them.

A glass-lined reactor of 20 L reads almost exactly like one of 2000 L; what tells them apart is the
number against the provision's own limit (2B350.a: "greater than 0,1 m3 (100 litres) and less than
20 m3"). ``parse`` reads quantities with their units into SI values; ``limits`` reads a provision's
comparisons ("exceeding 6,8 GHz", "2 kg TNT equivalent or more"); ``Thresholds.check`` says whether
the quantities a description states meet the limits of a provision, fail them, or cannot tell.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from models.controllist import ControlList

# unit (lower case, micro written as u) -> (dimension, factor to SI)
UNITS: dict[str, tuple[str, float]] = {
    **{u: ("length", f) for u, f in {"nm": 1e-9, "um": 1e-6, "micron": 1e-6, "microns": 1e-6, "mm": 1e-3,
                                      "cm": 1e-2, "m": 1.0, "km": 1e3}.items()},
    **{u: ("volume", f) for u, f in {"ml": 1e-6, "l": 1e-3, "ltr": 1e-3, "ltrs": 1e-3, "lt": 1e-3, "litre": 1e-3,
                                      "litres": 1e-3, "liter": 1e-3, "liters": 1e-3, "m3": 1.0, "cm3": 1e-6,
                                      "gal": 3.785e-3, "qt": 9.46e-4}.items()},
    **{u: ("mass", f) for u, f in {"mg": 1e-6, "g": 1e-3, "kg": 1.0, "kgs": 1.0, "t": 1e3, "mt": 1e3, "ton": 1e3,
                                    "tons": 1e3, "tonne": 1e3, "tonnes": 1e3}.items()},
    **{u: ("pressure", f) for u, f in {"pa": 1.0, "kpa": 1e3, "mpa": 1e6, "gpa": 1e9, "bar": 1e5, "barg": 1e5,
                                        "mbar": 1e2, "psi": 6894.76, "psig": 6894.76, "torr": 133.3,
                                        "atm": 101325.0}.items()},
    **{u: ("frequency", f) for u, f in {"hz": 1.0, "khz": 1e3, "mhz": 1e6, "ghz": 1e9, "thz": 1e12}.items()},
    **{u: ("power", f) for u, f in {"w": 1.0, "kw": 1e3, "mw": 1e6, "gw": 1e9}.items()},
    **{u: ("voltage", f) for u, f in {"v": 1.0, "kv": 1e3, "mv": 1e6}.items()},
    **{u: ("current", f) for u, f in {"a": 1.0, "ka": 1e3, "amp": 1.0, "amps": 1.0}.items()},
    **{u: ("time", f) for u, f in {"fs": 1e-15, "ps": 1e-12, "ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0,
                                    "sec": 1.0, "h": 3600.0, "hr": 3600.0, "hrs": 3600.0}.items()},
    **{u: ("energy", f) for u, f in {"j": 1.0, "kj": 1e3, "mj": 1e6}.items()},
    **{u: ("particle_energy", f) for u, f in {"ev": 1.0, "kev": 1e3, "mev": 1e6, "gev": 1e9}.items()},
    **{u: ("dose", f) for u, f in {"gy": 1.0, "kgy": 1e3, "mgy": 1e6, "rad": 1e-2, "krad": 10.0}.items()},
    **{u: ("temperature", 1.0) for u in ("°c", "ºc", "deg c", "degc", "deg. c", "c°")},
    **{u: ("density", f) for u, f in {"g/cm3": 1e3, "g/cc": 1e3, "g/ml": 1e3, "kg/m3": 1.0, "kg/l": 1e3}.items()},
    **{u: ("fraction", 1e-2) for u in ("%", "pct", "percent", "wt%", "wt.%", "% w/w")},
    **{u: ("fraction", f) for u, f in {"ppm": 1e-6, "ppb": 1e-9}.items()},
    **{u: ("inductance", f) for u, f in {"nh": 1e-9, "uh": 1e-6, "mh": 1e-3}.items()},
    **{u: ("capacitance", f) for u, f in {"pf": 1e-12, "nf": 1e-9, "uf": 1e-6}.items()},
    **{u: ("data_rate", f) for u, f in {"bit/s": 1.0, "kbit/s": 1e3, "mbit/s": 1e6, "gbit/s": 1e9, "tbit/s": 1e12,
                                         "kbps": 1e3, "mbps": 1e6, "gbps": 1e9, "tbps": 1e12}.items()},
    **{u: ("sample_rate", f) for u, f in {"sps": 1.0, "ksps": 1e3, "msps": 1e6, "gsps": 1e9, "ks/s": 1e3,
                                           "ms/s": 1e6, "gs/s": 1e9}.items()},
    **{u: ("speed", f) for u, f in {"m/s": 1.0, "km/s": 1e3, "km/h": 1 / 3.6}.items()},
    **{u: ("rotation", 1.0) for u in ("rpm", "r/min")},
    **{u: ("flow", f) for u, f in {"m3/h": 1 / 3600, "m3/hr": 1 / 3600, "l/h": 1e-3 / 3600, "l/hr": 1e-3 / 3600,
                                    "l/min": 1e-3 / 60, "lpm": 1e-3 / 60, "l/s": 1e-3, "m3/s": 1.0,
                                    "m3/min": 1 / 60}.items()},
    **{u: ("mass_rate", f) for u, f in {"kg/h": 1 / 3600, "kg/hr": 1 / 3600, "kg/24h": 1 / 86400,
                                         "kg/24 h": 1 / 86400, "kg/day": 1 / 86400, "t/h": 1e3 / 3600}.items()},
    **{u: ("bits", 1.0) for u in ("bit", "bits", "-bit")},
    **{u: ("angle", f) for u, f in {"urad": 1e-6, "mrad": 1e-3, "arcsec": 4.8481e-6, "arc sec": 4.8481e-6,
                                     "deg/h": 1.0, "deg/hr": 1.0}.items()},
}  # fmt: skip
# Prefixed units whose case carries the prefix (mW milliwatt, MW megawatt), as written in Annex I.
MILLI = {"mW": ("power", 1e-3), "mV": ("voltage", 1e-3), "mA": ("current", 1e-3), "mJ": ("energy", 1e-3),
         "mGy": ("dose", 1e-3), "MA": ("current", 1e6)}  # fmt: skip
# Spellings normalised before lookup.
_SPELLING = str.maketrans({"µ": "u", "μ": "u", "³": "3", "²": "2", "−": "-", "–": "-"})
_UNIT_ALT = "|".join(re.escape(u).replace(r"\ ", r"\s?") for u in sorted(UNITS, key=len, reverse=True))
_NUMBER = r"\d+(?:[.,]\d+)*"
_QUANTITY = re.compile(
    rf"(?<![\w.,])(?P<num>{_NUMBER})(?:\s*[x×]\s*10(?P<exp>[0-9−-]{{1,3}})(?!\d))?"
    rf"(?:\s*(?P<unit>{_UNIT_ALT})(?![\w/]))?",
    re.IGNORECASE,
)
# Between two numbers that share the unit written after the last: "4.8-6 GHZ", "500 X 400 X 300 MM".
_JOIN = re.compile(r"^\s*(?:-|~|to|x|×|/|and|or|,)\s*$", re.IGNORECASE)

Op = Literal[">", ">=", "<", "<="]


# A mass or volume that says how much is shipped, not what the goods are: "NET WT 180 KG", "25 KG DRUMS".
_SHIPPED_BEFORE = re.compile(r"(?:\b(?:net|gross|nw|gw|n\.w\.|g\.w\.|wt|weight|total|qty|quantity)\b[\s:.]*)$", re.I)
_SHIPPED_AFTER = re.compile(
    r"^[\s/]*(?:x\s*\d|net|gross|drums?|bags?|ibcs?|totes?|bottles?|cartons?|ctns|pails?|cans?|jerry|cylinders?|"
    r"boxes|box|sacks?|packs?|per\b|each|/drum|/bag)",
    re.I,
)


@dataclass(frozen=True)
class Quantity:
    """A number with a unit, in SI, and where it stands in the text."""

    value: float
    dimension: str
    start: int
    end: int
    # A shipped amount (net weight, drum size) rather than a property of the goods.
    shipped: bool = False


@dataclass(frozen=True)
class Limit:
    """A provision's comparison on one quantity: ``dimension op value`` in SI."""

    dimension: str
    op: Op
    value: float
    text: str

    def met(self, value: float) -> bool:
        """Whether ``value`` (SI) lies on the controlled side of the limit."""
        tolerance = 1e-9 * max(abs(self.value), 1e-30)
        if self.op == ">":
            return value > self.value + tolerance
        if self.op == ">=":
            return value >= self.value - tolerance
        if self.op == "<":
            return value < self.value - tolerance
        return value <= self.value + tolerance


def _number(raw: str, decimal_comma: bool) -> float | None:
    """A number as written: "0,1" in Annex I, "1,200" or "0,5" on an invoice."""
    if decimal_comma:
        cleaned = raw.replace(".", "").replace(",", ".") if raw.count(",") == 1 and "." not in raw else raw
        cleaned = cleaned.replace(",", "")
    else:
        parts = raw.split(",")
        # A comma before exactly three digits groups thousands; otherwise it is a decimal comma.
        if len(parts) > 1 and all(len(p) == 3 for p in parts[1:]) and "." not in parts[0]:
            cleaned = "".join(parts)
        elif len(parts) == 2:
            cleaned = f"{parts[0]}.{parts[1]}"
        else:
            cleaned = raw.replace(",", "")
    try:
        return float(cleaned)
    except ValueError:
        return None


def _unit(raw: str) -> tuple[str, float] | None:
    if raw in MILLI:
        return MILLI[raw]
    key = re.sub(r"\s+", " ", raw.translate(_SPELLING).lower())
    key = key.replace(" ", "") if key.replace(" ", "") in UNITS else key
    return UNITS.get(key)


def parse(text: str, annex: bool = False) -> list[Quantity]:
    """The quantities stated in ``text``, in SI; a number without a unit borrows that of a number joined to it.

    ``annex`` reads Annex I's conventions: decimal commas and powers of ten written "× 104" (10^4).
    """
    text = text.translate(_SPELLING)
    found: list[tuple[re.Match[str], float, tuple[str, float] | None]] = []
    for m in _QUANTITY.finditer(text):
        value = _number(m.group("num"), decimal_comma=annex)
        if value is None:
            continue
        if m.group("exp"):
            if not annex:
                continue
            try:
                value *= 10.0 ** int(m.group("exp").replace("−", "-"))
            except ValueError:
                continue
        unit = _unit(m.group("unit")) if m.group("unit") else None
        found.append((m, value, unit))
    # Right to left, so "20-30 KHZ" and "500 X 400 X 300 MM" carry the unit back.
    units: list[tuple[str, float] | None] = [u for _, _, u in found]
    for i in range(len(found) - 2, -1, -1):
        if units[i] is None and units[i + 1] is not None:
            between = text[found[i][0].end() : found[i + 1][0].start()]
            if _JOIN.match(between):
                units[i] = units[i + 1]
    out = []
    for (m, value, _), unit in zip(found, units, strict=True):
        if unit is None:
            continue
        dimension, factor = unit
        si = value + 273.15 if dimension == "temperature" else value * factor
        shipped = dimension in ("mass", "volume") and bool(
            _SHIPPED_BEFORE.search(text[max(0, m.start() - 16) : m.start()])
            or _SHIPPED_AFTER.match(text[m.end() : m.end() + 12])
        )
        out.append(Quantity(si, dimension, m.start(), m.end(), shipped))
    return out


_BEFORE_PHRASES: tuple[tuple[str, Op], ...] = (
    (r"equal to or (?:greater|more|higher|larger) than|not less than|at least|no less than|minimum of|≥|>=", ">="),
    (
        r"equal to or (?:less|lower|smaller)(?: \([a-z]+\))? than|not (?:more|greater) than|not exceeding"
        r"|up to(?: and including)?|no more than|maximum of|≤|<=",
        "<=",
    ),
    (r"greater than|more than|exceeding|exceeds|above|over|higher than|larger than|beyond|>", ">"),
    (r"less(?: \([a-z]+\))? than|lower than|below|under|fewer than|smaller than|shorter than|<", "<"),
)
_AFTER_PHRASES: tuple[tuple[str, Op], ...] = (
    (r"more|greater|higher|above|larger|longer|over", ">="),
    (r"less|lower|below|smaller|shorter|fewer|better", "<="),
)
# The phrase right before the number ("exceeding 6,8 GHz"), or an "or more" after it ("2 kg of TNT or greater").
_BEFORE = tuple((re.compile(rf"(?:{p})\s*$", re.IGNORECASE), op) for p, op in _BEFORE_PHRASES)
_AFTER = tuple((re.compile(rf"^[^0-9;:]{{0,45}}?\bor (?:{p})\b", re.IGNORECASE), op) for p, op in _AFTER_PHRASES)


def limits(text: str) -> list[Limit]:
    """The comparisons a provision's text makes on quantities ("greater than 0,1 m3", "2 kg or more")."""
    quantities = parse(text, annex=True)
    out: list[Limit] = []
    clean = text.translate(_SPELLING)
    opened = False  # the last limit read was "between X", so "and Y" closes the range
    for i, q in enumerate(quantities):
        before = clean[max(0, q.start - 40) : q.start]
        if i and quantities[i - 1].end > q.start - 40:
            before = clean[quantities[i - 1].end : q.start]
        after = clean[q.end : quantities[i + 1].start if i + 1 < len(quantities) else q.end + 40]
        op: Op | None = next((o for pattern, o in _BEFORE if pattern.search(before)), None)
        if op is None:
            op = next((o for pattern, o in _AFTER if pattern.search(after[:45])), None)
        between = re.search(r"\bbetween\s*$", before, re.IGNORECASE) is not None
        if op is None and between and i + 1 < len(quantities):
            op = ">="
        if op is None and opened and re.search(r"^\s*and\s*$", before):
            op = "<="
        if op is None:
            continue
        out.append(Limit(q.dimension, op, q.value, clean[q.start : q.end]))
        opened = between
    return out


Status = Literal["met", "failed", "unknown"]


@dataclass(frozen=True)
class Check:
    """What a description's quantities say against a provision's limits."""

    code: str
    status: Status
    # The limits every stated quantity of their kind fails (when failed), or the limits met.
    limits: tuple[Limit, ...] = ()
    # The share of the ways under the provision that a stated quantity rules out.
    failed_share: float = 0.0

    @property
    def stated(self) -> list[str]:
        """The limits concerned, as Annex I writes them, with what they measure ("volume > 0,1 m3")."""
        return [f"{lim.dimension.replace('_', ' ')} {lim.op} {lim.text}" for lim in self.limits]

    @property
    def note(self) -> str:
        """One sentence for an officer."""
        if self.status == "met":
            return f"the quantities stated meet the limits of {self.code}: {'; '.join(self.stated)}"
        if self.status == "failed":
            ways = "every way" if self.failed_share >= 1 else f"{self.failed_share:.0%} of the ways"
            return (
                f"no quantity stated meets {'; '.join(self.stated)}, which rules out {ways} under {self.code}; "
                "check the figure on the declaration and the provision's other conditions"
            )
        return f"nothing stated to compare with the numeric limits of {self.code}"


_ALL = re.compile(r"\b(?:all|both) of the following\b", re.IGNORECASE)
MAX_PATHS = 32


class Thresholds:
    """The numeric limits of every provision: its own, its parents', and its descendants' as alternatives.

    Children of a provision that asks for "all (both) of the following" are combined; otherwise each
    child is an alternative way to fall under the provision.
    """

    def __init__(self, controls: ControlList) -> None:
        self.controls = controls
        self._own: dict[str, list[Limit]] = {}
        self._children: dict[str, list[str]] = {}
        for p in controls:
            if p.parents:
                self._children.setdefault(p.parents[-1], []).append(p.code)
        self._paths: dict[str, list[list[Limit]]] = {}

    def own(self, code: str) -> list[Limit]:
        """The limits in a provision's own text."""
        if code not in self._own:
            self._own[code] = limits(self.controls.get(code).text) if code in self.controls else []
        return self._own[code]

    def paths(self, code: str) -> list[list[Limit]]:
        """Each way goods can fall under ``code``: the limits of its parents and itself, and of one way below it."""
        if code not in self._paths:
            resolved = self.controls.resolve(code)
            above = [limit for parent in resolved.parents for limit in self.own(parent)] + self.own(resolved.code)
            self._paths[code] = [above + below for below in self._below(resolved.code)]
        return self._paths[code]

    def _below(self, code: str) -> list[list[Limit]]:
        children = self._children.get(code, [])
        if not children:
            return [[]]
        ways = [[self.own(child) + below for below in self._below(child)] for child in children]
        if _ALL.search(self.controls.get(code).text):
            combined: list[list[Limit]] = [[]]
            for alternatives in ways:
                combined = [a + b for a in combined for b in alternatives][:MAX_PATHS]
            return combined
        return [way for alternatives in ways for way in alternatives][:MAX_PATHS]

    def check(self, quantities: Sequence[Quantity], code: str) -> Check:
        """Met if some way under ``code`` has all its checkable limits met; failed if every checkable way fails."""
        by_dimension: dict[str, list[float]] = {}
        for q in quantities:
            if not q.shipped:
                by_dimension.setdefault(q.dimension, []).append(q.value)
        paths = self.paths(code)
        failed: list[Limit] = []
        met: tuple[Limit, ...] | None = None
        unchecked = 0
        for path in paths:
            checked = [lim for lim in path if lim.dimension in by_dimension]
            if not checked:
                unchecked += 1
                continue
            broken = next((lim for lim in checked if not any(lim.met(v) for v in by_dimension[lim.dimension])), None)
            if broken is None:
                met = met or tuple(checked)
            else:
                failed.append(broken)
        if met is not None:
            return Check(code, "met", met, 0.0)
        if failed:
            return Check(code, "failed", tuple(dict.fromkeys(failed))[:3], len(failed) / len(paths))
        return Check(code, "unknown")


def checks(thresholds: Thresholds, text: str, codes: Iterable[str]) -> list[Check]:
    """Checks of one description against several provisions."""
    quantities = parse(text)
    return [thresholds.check(quantities, code) for code in codes]
