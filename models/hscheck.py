"""Does the declared HS code fit the description?

A listed precursor declared under a generic chapter ("chemical products n.e.s.", 3824) is the
classic misdeclaration. The expectations come from data, not from the model:
- a watch-list hit with a CAS number: the HS 2022 subheading of that chemical (the HS/CWC map,
  then the lexicon's CAS items);
- otherwise, for a flagged description: the HS headings the lexicon gives for goods of the cited
  Annex I entry (``2B350`` reactors: 8419, 8479).
A code that fits shares the expected heading (first four digits). Without an expectation the
check says so rather than guessing.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from models.controllist import load as load_controllist
from models.lexicon import load as load_lexicon
from models.watchlist import Hit

HS_CODE = re.compile(r"^\d{6}(\d{2}){0,2}$")


@dataclass(frozen=True)
class HsCheck:
    """The declared code, whether it fits the description (None: no basis to say), and why."""

    declared: str | None
    consistent: bool | None
    note: str
    expected: tuple[str, ...] = ()


def clean(code: str | None) -> str | None:
    """Digits only (``2930.70`` -> ``293070``); None when nothing was declared."""
    if code is None:
        return None
    digits = re.sub(r"[\s.\-]", "", code)
    return digits or None


class HsExpectations:
    """Expected HS subheadings by CAS number and by Annex I entry, with the nomenclature's wording."""

    def __init__(
        self, by_cas: dict[str, set[str]], by_entry: dict[str, set[str]], nomenclature: dict[str, str]
    ) -> None:
        self.by_cas = by_cas
        self.by_entry = by_entry
        self.nomenclature = nomenclature

    def describe(self, code: str) -> str:
        """The nomenclature's wording for a subheading or heading, or '' when unknown."""
        return self.nomenclature.get(code[:6]) or self.nomenclature.get(code[:4], "")

    def _label(self, code: str) -> str:
        text = self.describe(code)
        dotted = f"{code[:4]}.{code[4:6]}" if len(code) >= 6 else code
        if len(text) > 60:
            text = text[:60].rsplit(" ", 1)[0].rstrip(";,") + " ..."
        return f"{dotted} ({text})" if text else dotted

    def check(self, declared: str | None, hits: Sequence[Hit], provisions: Sequence[str], flagged: bool) -> HsCheck:
        """Whether ``declared`` fits what the hits and cited provisions say the goods are."""
        code = clean(declared)
        if code is None:
            return HsCheck(None, None, "no HS code declared")
        if not HS_CODE.match(code):
            return HsCheck(declared, False, "not an HS code: expected 6, 8 or 10 digits")
        if code[:6] not in self.nomenclature and code[:4] not in self.nomenclature:
            return HsCheck(code, False, f"{code[:6]} is not a subheading of HS 2022")
        for hit in hits:
            expected = self.by_cas.get(hit.cas or "")
            if expected:
                return self._compare(code, expected, f"{hit.substance} (CAS {hit.cas})")
        if flagged:
            for provision in provisions:
                entry = provision.split(".")[0]
                expected = self.by_entry.get(entry)
                if expected:
                    return self._compare(code, expected, f"goods of {entry}")
        return HsCheck(code, None, f"declared {self._label(code)}; no expected classification for this description")

    def _compare(self, code: str, expected: set[str], what: str) -> HsCheck:
        ordered = tuple(sorted(expected))
        if any(code[:4] == e[:4] for e in ordered):
            return HsCheck(code, True, f"declared {self._label(code)}, a heading that fits {what}", ordered)
        headings = sorted({e[:4] for e in ordered})
        wanted = ", ".join(self._label(e) for e in ordered[:3]) if len(headings) <= 3 else ", ".join(headings[:8])
        return HsCheck(code, False, f"{what} is expected under {wanted}; declared {self._label(code)}", ordered)


@lru_cache(maxsize=4)
def load(data_dir: Path) -> HsExpectations:
    """Expectations from the HS/CWC map, the lexicon and the HS 2022 nomenclature under ``data_dir``."""
    data_dir = Path(data_dir)
    by_cas: dict[str, set[str]] = {}
    by_entry: dict[str, set[str]] = {}
    cwc_map = data_dir / "reference" / "derived-hs2022-cwc-map" / "hs2022_cwc_chemicals.csv"
    with cwc_map.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["cas"]:
                by_cas.setdefault(row["cas"], set()).add(row["hs6"])
    for family in load_lexicon(data_dir, load_controllist(data_dir)):
        for item in family.items:
            if item.cas and item.hs and item.cas not in by_cas:
                by_cas[item.cas] = set(item.hs)
            for provision in item.provisions:
                by_entry.setdefault(provision.split(".")[0], set()).update(item.hs)
    nomenclature: dict[str, str] = {}
    with (data_dir / "reference" / "harmonized-system" / "harmonized-system.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            nomenclature[row["hscode"]] = row["description"]
    return HsExpectations(by_cas, {k: v for k, v in by_entry.items() if v}, nomenclature)
