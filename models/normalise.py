"""Text normalisation shared by training and serving, with offsets back into the text as sent.

Declarations arrive with every trick and accident of typing: full-width digits, zero-width
spaces, Cyrillic letters that look Latin, letters spaced out to dodge a keyword filter, and a
dozen spellings of each unit. Everything downstream (the models, the watch list, the
explanations) reads the normalised text; ``origin`` maps each of its characters back to the
character of the original description, so that highlighted spans point at what was sent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

# Zero-width, joiners, soft hyphen, word joiner, BOM, and the bidirectional controls.
INVISIBLE = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069"
    "\u206a\u206b\u206c\u206d\u206e\u206f\u3164\ufeff\uffa0"
)

# Cyrillic and Greek letters that render like Latin ones (lower case; text is lower-cased first).
HOMOGLYPHS = {
    "а": "a", "в": "b", "с": "c", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j",
    "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "т": "t", "у": "y",
    "х": "x", "ԝ": "w", "ӏ": "l", "г": "r", "п": "n", "ь": "b",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "u", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ϲ": "c",
}  # fmt: skip

_LATIN = re.compile(r"[a-z]")
_FOREIGN = re.compile(r"[\u0370-\u03ff\u0400-\u04ff]")
_WORD = re.compile(r"\w+")
# Three or more single letters separated by one space, dot or hyphen: "s a r i n", "S.A.R.I.N".
_SPACED = re.compile(r"(?<![\w.\-])(?:[^\W\d_][ .\-]){2,}[^\W\d_](?![\w])")

_UNITS = {
    "kg": ("kg", "kgs", "kilo", "kilos", "kilogram", "kilograms", "kilogramme", "kilogrammes"),
    "g": ("g", "gr", "grs", "gram", "grams", "gramme"),
    "mg": ("mg",),
    "t": ("mt", "mts", "ton", "tons", "tonne", "tonnes"),
    "l": ("l", "lt", "ltr", "ltrs", "litre", "litres", "liter", "liters"),
    "ml": ("ml",),
    "m3": ("m3", "cbm", "m³"),
    "m2": ("m2", "m²", "sqm"),
    "mm": ("mm",),
    "um": ("um", "µm", "μm", "micron", "microns"),
    "pcs": ("pc", "pcs", "piece", "pieces", "nos"),
    "%": ("%", "pct", "percent"),
}
_UNIT_OF = {alias: canonical for canonical, aliases in _UNITS.items() for alias in aliases}
_UNIT_RE = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s?(" + "|".join(sorted(map(re.escape, _UNIT_OF), key=len, reverse=True)) + r")(?![\w])"
)
_SPACES = re.compile(r"\s+")
_THOUSANDS = re.compile(r"(?<=\d)[, ](?=\d{3}(?!\d))")
_DECIMAL_COMMA = re.compile(r"(?<=\d),(?=\d{1,2}(?!\d))")


@dataclass
class Normalised:
    """Normalised text, where each character came from in the original, and what was changed."""

    text: str
    origin: list[int]
    source_length: int
    notes: list[str] = field(default_factory=list)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a ``[start, end)`` span of the normalised text to a span of the original description."""
        if start >= end or not self.origin:
            return (0, 0)
        return (self.origin[start], self.origin[end - 1] + 1)


class _Builder:
    """Characters with their origins; each edit keeps the map to the original text."""

    def __init__(self, text: str) -> None:
        if text.isascii():  # NFKC leaves ASCII alone, and lower() maps it one to one
            self.chars: list[str] = list(text.lower())
            self.origin: list[int] = list(range(len(text)))
            return
        self.chars = []
        self.origin = []
        for i, ch in enumerate(text):
            for out in unicodedata.normalize("NFKC", ch).lower():
                self.chars.append(out)
                self.origin.append(i)

    @property
    def text(self) -> str:
        return "".join(self.chars)

    def drop(self, keep: Callable[[int, str], bool]) -> int:
        pairs = [(c, o) for i, (c, o) in enumerate(zip(self.chars, self.origin, strict=True)) if keep(i, c)]
        removed = len(self.chars) - len(pairs)
        self.chars = [c for c, _ in pairs]
        self.origin = [o for _, o in pairs]
        return removed

    def sub(self, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str]) -> int:
        text = self.text
        chars: list[str] = []
        origin: list[int] = []
        pos = count = 0
        for m in pattern.finditer(text):
            new = replace(m)
            if new == m.group(0):
                continue
            chars += self.chars[pos : m.start()]
            origin += self.origin[pos : m.start()]
            old = m.group(0)
            span = self.origin[m.start() : m.end()] or [self.origin[m.start() - 1] if m.start() else 0]
            # Characters kept at either end keep their own origin; the changed middle is spread over its span.
            head = 0
            while head < min(len(old), len(new)) and old[head] == new[head]:
                head += 1
            tail = 0
            while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
                tail += 1
            middle = span[head : len(span) - tail] or [span[min(head, len(span) - 1)]]
            width = len(new) - head - tail
            origin += span[:head]
            origin += [middle[min(len(middle) - 1, k * len(middle) // max(width, 1))] for k in range(width)]
            origin += span[len(span) - tail :] if tail else []
            chars += list(new)
            pos = m.end()
            count += 1
        chars += self.chars[pos:]
        origin += self.origin[pos:]
        self.chars, self.origin = chars, origin
        return count


def _fold_homoglyphs(b: _Builder) -> int:
    """Fold look-alike letters in words that mix scripts ("ТНIODIGLYCOL"); Russian or Greek words stay as written."""
    text = b.text
    folded = 0
    for m in _WORD.finditer(text):
        word = m.group(0)
        if not (_FOREIGN.search(word) and _LATIN.search(word)):
            continue
        for i in range(m.start(), m.end()):
            if b.chars[i] in HOMOGLYPHS:
                b.chars[i] = HOMOGLYPHS[b.chars[i]]
                folded += 1
    return folded


def normalise(description: str) -> Normalised:
    """NFKC, lower case, invisible and bidi characters removed, homoglyphs folded, spacing and units canonical."""
    b = _Builder(description)
    notes: list[str] = []
    if not description.isascii():
        removed = b.drop(lambda _, c: c not in INVISIBLE and unicodedata.category(c) != "Cf")
        if removed:
            notes.append(f"{removed} invisible or bidi character{'s' if removed > 1 else ''} removed")
        folded = _fold_homoglyphs(b)
        if folded:
            notes.append(f"{folded} look-alike letter{'s' if folded > 1 else ''} folded to Latin")
    rejoined = b.sub(_SPACED, lambda m: re.sub(r"[ .\-]", "", m.group(0)))
    if rejoined:
        notes.append("spaced-out letters re-joined")
    b.sub(_SPACES, lambda m: " ")
    b.sub(_THOUSANDS, lambda m: "")
    b.sub(_DECIMAL_COMMA, lambda m: ".")
    b.sub(_UNIT_RE, lambda m: f"{m.group(1)} {_UNIT_OF[m.group(2)]}")
    # Strip leading and trailing spaces.
    while b.chars and b.chars[-1] == " ":
        b.chars.pop()
        b.origin.pop()
    lead = 0
    while lead < len(b.chars) and b.chars[lead] == " ":
        lead += 1
    return Normalised(text="".join(b.chars[lead:]), origin=b.origin[lead:], source_length=len(description), notes=notes)
