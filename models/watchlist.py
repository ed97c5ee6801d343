"""The watch list: substances Annex I names, with CAS numbers and trade synonyms, and a fast matcher."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.cas import is_valid_cas
from models.controllist import ControlList
from models.controllist import load as load_controllist
from models.normalise import Normalised, normalise

Kind = Literal["chemical", "pathogen", "toxin", "nuclear_material", "missile_material"]

CHEMICAL_ENTRIES = ("1C350", "1C450")
AGENT_PARENTS = {
    "1C351.a": "pathogen",
    "1C351.c": "pathogen",
    "1C351.d": "toxin",
    "1C351.e": "pathogen",
    "1C354.a": "pathogen",
    "1C354.b": "pathogen",
    "1C354.c": "pathogen",
}
_CAS_IN_TEXT = re.compile(r"^(?P<name>.*?)\s*\(CAS (?P<cas>\d{2,7}-\d{2}-\d)\)")
_SEE_ML = re.compile(r"^SEE MILITARY GOODS CONTROLS (?:for|FOR)\s+", re.IGNORECASE)
_TRAILING_ABBREV = re.compile(r"^(?P<name>.*\S)\s+\((?P<abbr>[A-Z0-9]{2,8})\)$")
_CAS_RE = re.compile(r"(?<![\d-])(\d{2,7}-\d{2}-\d)(?![\d-])")
_TOKEN = re.compile(r"[^\W_]+")
# Words that make a short, ambiguous abbreviation (TEA, AP, DMP) count as a chemical.
_CHEMICAL_CONTEXT = re.compile(
    r"\bcas\b|\d{2,7}-\d{2}-\d|\d+(?:\.\d+)? ?%|\bpurity\b|\bgrade\b|\btech\b|\banhydrous\b|\breagent\b"
    r"|\bun ?\d{4}\b|\bdrums?\b|\bibc\b|\bmin\b|\bsolution\b|\baqueous\b|\bflakes\b|\bpowder\b|\bliquid\b"
)


@dataclass(frozen=True)
class Substance:
    """A watch-list substance: its Annex I provision, CAS number and the names it is declared under."""

    name: str
    provision: str
    kind: Kind
    cas: str | None = None
    synonyms: tuple[str, ...] = ()
    abbreviations: tuple[str, ...] = ()
    reference: str = ""

    @property
    def cites(self) -> str:
        """What an officer should look up: the Annex I provision, or the list that holds it instead."""
        return self.provision or self.reference


@dataclass(frozen=True)
class Hit:
    """A watch-list match, with offsets into the description as sent."""

    substance: str
    provision: str
    kind: str
    cas: str | None
    start: int
    end: int
    matched: str
    by: Literal["name", "abbreviation", "cas"]


class Curated(BaseModel):
    """One curated watch-list entry (data/watchlist/*.yaml)."""

    model_config = ConfigDict(extra="forbid")

    provision: str
    name: str
    kind: Kind
    cas: str | None = None
    synonyms: list[str] = Field(default_factory=list)
    abbreviations: list[str] = Field(default_factory=list)


class WatchlistError(ValueError):
    """A watch-list file that breaks its schema or disagrees with Annex I."""


def _split_names(raw: str) -> tuple[str, list[str], list[str]]:
    """Split an Annex I name into a main name, synonyms and abbreviations."""
    raw = _SEE_ML.sub("", raw.strip())
    synonyms: list[str] = []
    abbreviations: list[str] = []
    if ": " in raw:
        head, tail = raw.split(": ", 1)
        if len(head) <= 12 and head.replace("-", "").isalnum():  # "Amiton: O,O-Diethyl ...", "BZ: 3-Quinuclidinyl ..."
            abbreviations.append(head) if head.isupper() else synonyms.append(head)
            raw = tail
    m = _TRAILING_ABBREV.match(raw)
    if m:
        raw = m.group("name")
        abbreviations.append(m.group("abbr"))
    names = [n.strip() for n in re.split(r" or ", raw) if n.strip()]
    return names[0], names[1:] + synonyms, abbreviations


def _agent_names(text: str) -> tuple[str, list[str]]:
    text = text.strip().rstrip(";.").removesuffix(" or").removesuffix(", which are:").strip()
    text = text.split(":")[0].strip()
    synonyms: list[str] = []
    m = re.match(r"^(?P<name>[^(]*?)\s*\((?P<alt>[^)]*)\)", text)
    if m:
        for alt in re.split(r"[;,] ", m.group("alt")):
            if not re.match(r"(formerly|syn\.|strain)", alt):
                synonyms.append(alt.removeprefix("syn. ").strip())
        text = m.group("name")
    text = text.split(", ")[0].strip()
    return text, [s for s in synonyms if len(s) > 2]


def from_annex(controls: ControlList) -> list[Substance]:
    """The chemicals of 1C350/1C450 and the agents of 1C351/1C354, parsed from the regulation's own lines."""
    out: list[Substance] = []
    for p in controls:
        if p.entry in CHEMICAL_ENTRIES:
            m = _CAS_IN_TEXT.match(p.text)
            if m is None:
                continue
            name, synonyms, abbreviations = _split_names(m.group("name"))
            out.append(Substance(name, p.code, "chemical", m.group("cas"), tuple(synonyms), tuple(abbreviations)))
        elif p.parents and p.parents[-1] in AGENT_PARENTS and not p.text.startswith("Not used"):
            name, synonyms = _agent_names(p.text)
            kind: Kind = "toxin" if AGENT_PARENTS[p.parents[-1]] == "toxin" else "pathogen"
            out.append(Substance(name, p.code, kind, None, tuple(synonyms)))
    return out


def read_curated(path: Path) -> list[Curated]:
    """Read one curated synonyms file."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(raw, list):
        raise WatchlistError(f"{path.name}: expected a list of entries")
    try:
        return [Curated.model_validate(r) for r in raw]
    except ValidationError as err:
        raise WatchlistError(f"{path.name}: {err}") from None


def merge(annex: list[Substance], curated: Iterable[Curated], controls: ControlList) -> list[Substance]:
    """Add curated synonyms to the Annex substances; curated entries must agree with Annex I."""
    by_code = {s.provision: s for s in annex}
    problems: list[str] = []
    extra: dict[str, list[Curated]] = defaultdict(list)
    for c in curated:
        if c.provision not in controls:
            problems.append(f"{c.name}: provision {c.provision!r} is not in Annex I")
            continue
        if c.cas and not is_valid_cas(c.cas):
            problems.append(f"{c.name}: CAS {c.cas!r} fails its check digit")
            continue
        base = by_code.get(c.provision)
        if base is not None and base.cas and c.cas and c.cas != base.cas:
            problems.append(f"{c.name}: CAS {c.cas} disagrees with Annex I {c.provision} ({base.cas})")
            continue
        extra[c.provision].append(c)
    if problems:
        raise WatchlistError("\n".join(problems))
    merged: list[Substance] = []
    for s in annex:
        adds = extra.pop(s.provision, [])
        synonyms = _dedupe([*s.synonyms, *(x for c in adds for x in c.synonyms)], exclude=s.name)
        abbreviations = _dedupe([*s.abbreviations, *(x for c in adds for x in c.abbreviations)], exclude=s.name)
        cas = s.cas or next((c.cas for c in adds if c.cas), None)
        merged.append(Substance(s.name, s.provision, s.kind, cas, synonyms, abbreviations))
    for entries in extra.values():
        for c in entries:
            merged.append(
                Substance(
                    c.name,
                    c.provision,
                    c.kind,
                    c.cas,
                    _dedupe(c.synonyms, exclude=c.name),
                    _dedupe(c.abbreviations, exclude=c.name),
                )
            )
    return merged


def _dedupe(names: Iterable[str], exclude: str) -> tuple[str, ...]:
    seen = {exclude.casefold()}
    out = []
    for n in names:
        if n.casefold() not in seen:
            seen.add(n.casefold())
            out.append(n)
    return tuple(out)


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(text))


@dataclass
class Watchlist:
    """Every watch-list substance, indexed for matching in normalised text."""

    substances: list[Substance]
    _phrases: dict[str, list[tuple[tuple[str, ...], Substance, bool]]] = field(init=False, repr=False)
    _by_cas: dict[str, Substance] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._phrases = defaultdict(list)
        self._by_cas = {}
        for s in self.substances:
            if s.cas:
                self._by_cas.setdefault(s.cas, s)
            for phrase, ambiguous in (
                [(s.name, False)] + [(n, False) for n in s.synonyms] + [(a, True) for a in s.abbreviations]
            ):
                toks = _tokens(normalise(phrase).text)
                if toks:
                    self._phrases[toks[0]].append((toks, s, ambiguous))
        for candidates in self._phrases.values():
            candidates.sort(key=lambda c: -len(c[0]))

    def __len__(self) -> int:
        return len(self.substances)

    def by_cas(self, cas: str) -> Substance | None:
        """The substance with this CAS number, if listed."""
        return self._by_cas.get(cas)

    def match(self, description: str, normalised: Normalised | None = None) -> list[Hit]:
        """Every watch-list substance named, abbreviated or given by CAS number in ``description``."""
        norm = normalised or normalise(description)
        text = norm.text
        hits: list[Hit] = []
        for m in _CAS_RE.finditer(text):
            s = self._by_cas.get(m.group(1))
            if s is not None:
                start, end = norm.span(m.start(1), m.end(1))
                hits.append(Hit(s.name, s.provision, s.kind, s.cas, start, end, description[start:end], "cas"))
        tokens = list(_TOKEN.finditer(text))
        words = [t.group(0) for t in tokens]
        context = _CHEMICAL_CONTEXT.search(text) is not None
        i = 0
        while i < len(words):
            matched = 0
            for toks, s, ambiguous in self._phrases.get(words[i], ()):
                n = len(toks)
                if tuple(words[i : i + n]) == toks and (not ambiguous or context):
                    start, end = norm.span(tokens[i].start(), tokens[i + n - 1].end())
                    by: Literal["name", "abbreviation"] = "abbreviation" if ambiguous else "name"
                    hits.append(Hit(s.name, s.provision, s.kind, s.cas, start, end, description[start:end], by))
                    matched = n
                    break
            i += matched or 1
        hits.sort(key=lambda h: (h.start, -h.end))
        return hits


def crossref_cwc(substances: list[Substance], cwc_csv: Path) -> dict[str, list[str]]:
    """Compare the CWC schedules file with Annex I by CAS number; Annex I is the authority.

    Returns ``agree`` (CAS listed in 1C350/1C450), ``not_in_annex`` (CAS Annex I does not list as a
    precursor: the Schedule 1 agents, left to the military list) and ``bad_cas`` (check digit fails).
    """
    by_cas = {s.cas: s for s in substances if s.cas and s.kind == "chemical"}
    found: dict[str, list[str]] = {"agree": [], "not_in_annex": [], "bad_cas": []}
    with cwc_csv.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            cas = (row.get("cas") or "").strip()
            if not cas:
                continue
            if not is_valid_cas(cas):
                found["bad_cas"].append(cas)
            elif cas in by_cas:
                found["agree"].append(cas)
            else:
                found["not_in_annex"].append(cas)
    return found


def schedule_one(cwc_csv: Path, listed: set[str]) -> list[Substance]:
    """CWC Schedule 1 agents that Annex I leaves to the military list: named agents are never ignored."""
    out: list[Substance] = []
    with cwc_csv.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            cas = (row.get("cas") or "").strip()
            if row["schedule"] != "1" or not cas or cas in listed or not is_valid_cas(cas):
                continue
            common, _, systematic = re.sub(r"\s*(example listed.*|\[.*?\])$", "", row["name"]).rpartition(": ")
            synonyms = (systematic,) if common else ()
            name = common or systematic
            abbreviations: tuple[str, ...] = ()
            if name.isupper() and len(name) <= 4:  # VX, HN1: short codes need chemical context
                name, abbreviations, synonyms = systematic, (name,), ()
            reference = f"CWC Schedule 1{row['part']}.{row['item']} (EU Common Military List ML7)"
            out.append(Substance(name, "", "chemical", cas, synonyms, abbreviations, reference))
    return out


@lru_cache(maxsize=4)
def load(data_dir: Path) -> Watchlist:
    """The watch list: Annex I substances, curated synonyms, and the CWC Schedule 1 agents Annex I omits."""
    data_dir = Path(data_dir)
    controls = load_controllist(data_dir)
    curated = [c for p in sorted((data_dir / "watchlist").glob("*.yaml")) for c in read_curated(p)]
    substances = merge(from_annex(controls), curated, controls)
    listed = {s.cas for s in substances if s.cas}
    cwc = data_dir / "reference" / "cwc-schedules" / "cwc_schedules.csv"
    return Watchlist(substances + schedule_one(cwc, listed))
