"""Annex I of Regulation (EU) 2021/821 parsed into citable provisions."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

ANNEX_FILE = Path("reference") / "eu-annex-i-2021-821" / "annex.json"

CODE_RE = re.compile(r"^(?P<code>\d[A-E]\d{3}(?:\.[A-Za-z0-9]+)*)\s+(?P<text>.*)$")
NOTE_RE = re.compile(r"^(Notes?\b|N\.B\.|Technical Notes?\b|For .+,? see )")
ENTRY_RE = re.compile(r"^\d[A-E]\d{3}$")

PRODUCT_GROUPS = {
    "A": "Systems, equipment and components",
    "B": "Test, inspection and production equipment",
    "C": "Materials",
    "D": "Software",
    "E": "Technology",
}

REGIMES = {
    "0": "Wassenaar Arrangement",
    "1": "MTCR",
    "2": "Nuclear Suppliers Group",
    "3": "Australia Group",
    "4": "Chemical Weapons Convention",
    "5": "EU plurilateral",
}


class UnknownProvisionError(KeyError):
    """A provision code that Annex I does not contain."""


def regime(code: str) -> str:
    """Export-control regime an Annex I code derives from (category 0 is the NSG trigger list)."""
    if not CODE_RE.match(f"{code} x"):
        raise ValueError(f"not an Annex I code: {code!r} (expected a code like 2B350.d.3)")
    if code[0] == "0":
        return "Nuclear Suppliers Group"
    return REGIMES[code[2]]


@dataclass(frozen=True)
class Provision:
    """One line of Annex I: a dotted code, its verbatim text, its place and the notes that apply."""

    code: str
    text: str
    parents: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=(), repr=False)

    @property
    def entry(self) -> str:
        """The five-character control entry (``2B350``)."""
        return self.code[:5]

    @property
    def category(self) -> int:
        """Annex I category, 0 to 9."""
        return int(self.code[0])

    @property
    def group(self) -> str:
        """Product group letter, A to E."""
        return self.code[1]

    @property
    def regime(self) -> str:
        """The regime the provision comes from."""
        return regime(self.code)


@dataclass(frozen=True)
class ControlList:
    """All provisions of Annex I, looked up by code."""

    provisions: dict[str, Provision]
    version: str
    attribution: str

    def __iter__(self) -> Iterator[Provision]:
        return iter(self.provisions.values())

    def __len__(self) -> int:
        return len(self.provisions)

    def __contains__(self, code: object) -> bool:
        return code in self.provisions

    def get(self, code: str) -> Provision:
        """The provision with this exact code."""
        try:
            return self.provisions[code]
        except KeyError:
            raise UnknownProvisionError(
                f"provision {code!r} is not in Annex I ({self.version}); use a dotted code such as 2B350.d.3"
            ) from None

    def entries(self) -> list[Provision]:
        """The entry headings (``1C350``, ``2B350``, ...)."""
        return [p for p in self if ENTRY_RE.match(p.code)]

    def children(self, code: str) -> list[Provision]:
        """Provisions directly below ``code``."""
        return [p for p in self if p.parents and p.parents[-1] == code]

    def resolve(self, code: str) -> Provision:
        """The provision for ``code`` or, if Annex I has no line for it, its nearest listed ancestor."""
        parts = code.split(".")
        for i in range(len(parts), 0, -1):
            candidate = ".".join(parts[:i])
            if candidate in self.provisions:
                return self.provisions[candidate]
        return self.get(code)


def _ancestors(code: str) -> list[str]:
    parts = code.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def parse(annex: dict[str, object]) -> ControlList:
    """Parse the published Annex I JSON into provisions with parents and applicable notes."""
    texts: dict[str, list[str]] = {}
    own_notes: dict[str, list[str]] = {}
    entries = annex["entries"]
    if not isinstance(entries, list):
        raise ValueError("annex.json: 'entries' must be a list of control entries")
    for entry in entries:
        for line in str(entry["verbatim_text"]).split("\n"):
            m = CODE_RE.match(line)
            if m is None:
                raise ValueError(f"annex.json: entry {entry['entry_code']}: line without a code: {line[:60]!r}")
            code, text = m.group("code"), m.group("text").strip()
            if NOTE_RE.match(text):
                own_notes.setdefault(code, []).append(text)
            else:
                texts.setdefault(code, []).append(text)
    provisions: dict[str, Provision] = {}
    for code, lines in texts.items():
        chain = tuple(a for a in _ancestors(code) if a in texts)
        notes = [n for a in (*chain, code) for n in own_notes.get(a, [])]
        provisions[code] = Provision(code=code, text="\n".join(lines), parents=chain, notes=tuple(notes))
    return ControlList(
        provisions=provisions,
        version=str(annex.get("corpus_version", "")),
        attribution=str(annex.get("attribution", "")),
    )


@lru_cache(maxsize=4)
def load(data_dir: Path) -> ControlList:
    """Load and parse Annex I from ``data_dir``."""
    path = Path(data_dir) / ANNEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"Annex I not found at {path}; set DUALSCREEN_DATA_DIR to the project's data/ folder")
    return parse(json.loads(path.read_text(encoding="utf-8")))
