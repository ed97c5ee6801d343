"""Build the labelled corpus of goods descriptions from the lexicon, the watch list and real trade wording.

No public set of declarations labelled as controlled exists, so positives are composed from the
curated lexicon (goods, the attributes that make them controlled) and the watch list (named
substances, CAS-only lines), dressed the way traders write: quantities, packaging, bill-of-lading
boilerplate, HS codes, abbreviations, typos, case. Negatives are real trader wording (HMRC parcel
descriptions and trade terms), HS 2022 subheadings rewritten in trade style, hand-written ordinary
goods in other languages, and the hard negatives: every item's ordinary twins, dressed the same way
so that the dressing carries no signal.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import yaml

from models.controllist import ControlList
from models.controllist import load as load_controllist
from models.lexicon import Family, Item, Twin
from models.lexicon import load as load_lexicon
from models.normalise import normalise
from models.watchlist import Watchlist
from models.watchlist import load as load_watchlist

COLUMNS = ("id", "text", "hs_code", "label", "category", "provision", "source", "group")
SPLITS = {"train": 0.8, "validation": 0.1, "test": 0.1}
KIND_CATEGORY = {
    "chemical": "chemical",
    "pathogen": "biological",
    "toxin": "biological",
    "nuclear_material": "nuclear",
    "missile_material": "missile",
}
# HS headings whose goods are controlled as such (arms and munitions), or that name controlled
# materials outright: never used as negatives.
MILITARY_HS = ("93", "8710", "890610")
CONTROLLED_HS = ("2612", "2844", "2845", "3601", "3602", "3603", "8401", "880260")

POSITIVES_PER_ITEM = 36
ROWS_PER_TWIN = 12
ROWS_PER_SUBSTANCE = 6


@dataclass(frozen=True)
class Row:
    """One labelled description."""

    id: str
    text: str
    hs_code: str
    label: int
    category: str
    provision: str
    source: str
    group: str


# ---------------------------------------------------------------------------------------------
# Dressing: how goods words become a line on an invoice or a bill of lading.

BULK_PACKS = (
    "{n} KG DRUM",
    "{n}KG DRUMS",
    "{n} KG HDPE DRUMS X {m}",
    "{m} X {n} KG DRUMS",
    "{n} L DRUMS X {m}",
    "IBC {n} KG X {m}",
    "{m} IBC TOTES",
    "{n} KG BAGS X {m}",
    "{m} BAGS X {n} KGS",
    "JUMBO BAGS 1 MT X {m}",
    "{n} KGS NET",
    "NET WT {n} KG",
    "{m} DRUMS",
    "{m} CYLINDERS",
    "ISO TANK",
    "{n} MT",
    "{n} KG FIBRE DRUMS",
    "{n}KG/DRUM, {m} DRUMS",
    "{m} STEEL DRUMS",
    "{n} G BOTTLES X {m}",
    "{m} PAILS {n} KG",
)
VIAL_PACKS = (
    "{m} VIALS",
    "{m} CRYOVIALS",
    "1 ML X {m}",
    "{m} AMPOULES",
    "{n} UG",
    "{m} X 1 ML TUBES",
    "1 VIAL",
    "DRY ICE SHIPMENT, {m} VIALS",
    "{m} x 0.5 ML",
    "UN3373 {m} TUBES",
)
UNIT_PACKS = (
    "{m} PCS",
    "{m} PCS",
    "1 UNIT",
    "{m} UNITS",
    "1 SET",
    "{m} SETS",
    "QTY {m}",
    "{m} NOS",
    "1 LOT",
    "{m} PIECES",
    "2 PCS",
    "1 PC",
    "{m} EA",
    "QTY: {m} PCS",
    "{m} CRATES",
    "1 SKID",
    "{m} CASES",
)
PART_PACKS = ("{m} PCS", "REEL {m}", "{m} PCS TRAY", "{m} PCS", "QTY {m}", "{m} EA", "{m} UNITS", "1 BOX")
MATERIAL_PACKS = (
    "{n} KG",
    "{n} MT",
    "{m} ROLLS",
    "{m} BARS",
    "{m} PLATES",
    "{m} SHEETS",
    "{n} KGS NET",
    "{m} COILS",
    "{m} SPOOLS",
    "{n} KG CARTONS",
    "{m} PCS",
    "{m} BILLETS",
    "{n} MT NET",
)
CONTAINERS = ("20GP", "40HC", "40GP", "20'", "40'HC", "40OT", "20OT", "40FR")
PKG_WORDS = ("PKGS", "PACKAGES", "CTNS", "CARTONS", "PLTS", "PALLETS", "CASES", "WOODEN CASES", "CRATES", "SKIDS")
PORTS = ("SHANGHAI", "NINGBO", "JEBEL ALI", "HAMBURG", "ROTTERDAM", "MERSIN", "BUSAN", "NHAVA SHEVA", "FELIXSTOWE")
FREIGHT = ("FREIGHT PREPAID", "FREIGHT COLLECT", "SHIPPED ON BOARD", "CLEAN ON BOARD", "FRT PPD", "")
INCOTERMS = ("FOB", "CIF", "CFR", "EXW", "DAP", "FCA", "CIP")
COVERS = (
    ("SPARE PARTS", "847990"), ("MACHINERY PARTS", "848790"), ("INDUSTRIAL CHEMICALS", "382499"),
    ("LAB EQUIPMENT", "902780"), ("AUTO PARTS", "870899"), ("CLEANING AGENT", "340290"), ("ELECTRONIC PARTS", "854890"),
    ("GENERAL CARGO", ""), ("SAMPLES", ""), ("TEXTILE AUXILIARY", "380991"), ("HOUSEHOLD GOODS", "732393"),
    ("HARDWARE", "731829"), ("TOYS", "950300"), ("PLASTIC PRODUCTS", "392690"), ("KITCHEN EQUIPMENT", "841981"),
    ("COSMETIC RAW MATERIAL", "330499"), ("WATER TREATMENT CHEMICAL", "382499"), ("AGRICULTURAL MACHINERY", "843290"),
)  # fmt: skip


def _hs_text(rng: random.Random, hs: str) -> str:
    style = rng.randrange(5)
    if style == 0:
        return hs
    if style == 1:
        return f"{hs[:4]}.{hs[4:]}"
    if style == 2:
        return f"{hs[:4]} {hs[4:]}"
    if style == 3:
        return f"{hs[:4]}.{hs[4:]}.00"
    return hs[:4]


def _pack(rng: random.Random, kind: str) -> str:
    pool = {"bulk": BULK_PACKS, "vial": VIAL_PACKS, "unit": UNIT_PACKS, "part": PART_PACKS}.get(kind, MATERIAL_PACKS)
    n = rng.choice((1, 2, 5, 10, 20, 25, 50, 100, 180, 200, 250, 500, 1000, 1200, 5000, 20000))
    m = rng.choice((1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 40, 50, 80, 100, 200, 500, 1000, 2000))
    return rng.choice(pool).format(n=f"{n:,}" if n >= 1000 and rng.random() < 0.5 else n, m=m)


def _number(rng: random.Random, prefix: str = "") -> str:
    return f"{prefix}{rng.randrange(10, 99)}{rng.choice(('', '-', '/'))}{rng.randrange(1000, 99999)}"


def _container_no(rng: random.Random) -> str:
    letters = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(3))
    return f"{letters}U{rng.randrange(1000000, 9999999)}"


def _wrap(rng: random.Random, core: str, hs: str) -> str:
    """Bill-of-lading and invoice boilerplate around the goods words (the same for every label)."""
    hs_part = f"HS CODE: {_hs_text(rng, hs)}" if hs else ""
    n = rng.randrange(1, 60)
    pkg = rng.choice(PKG_WORDS)
    gw = rng.randrange(50, 26000)
    templates = (
        f"CONTAINER NO. {_container_no(rng)} SEAL {_number(rng)} 1 X {rng.choice(CONTAINERS)} FCL/FCL CY/CY "
        f"STC {n} {pkg} {core}",
        f"SHIPPER'S LOAD COUNT AND SEAL 1 X {rng.choice(CONTAINERS)} SAID TO CONTAIN {n} {pkg} {core}",
        f"MARKS & NOS: {rng.choice(('N/M', 'AS PER PACKING LIST', 'AS ADDRESSED', 'NO MARKS'))} {core} {hs_part} "
        f"INV NO. {_number(rng, 'INV')}",
        f"NATURE AND QUANTITY OF GOODS: {core} {n} {pkg} GW {gw} KG {hs_part}",
        f"{n} {pkg} / {core} / {hs_part} / PO NO. {rng.randrange(1000, 9999999)}",
        f"LCL STC {n} {pkg} {core} HTS {_hs_text(rng, hs) if hs else ''} NW {gw} KGS GW {gw + n} KGS",
        f"{core} AS PER PROFORMA INVOICE NO. {_number(rng)} DATED {rng.randrange(1, 28):02d}.{rng.randrange(1, 12):02d}"
        f".202{rng.randrange(2, 7)}",
        f"PART OF 1 X {rng.choice(CONTAINERS)} STC {n} {pkg} {core}",
        f"CONSOLIDATION AS PER ATTACHED MANIFEST HAWB {_number(rng, 'HAWB')} {core}",
        f"{core} {rng.choice(INCOTERMS)} {rng.choice(PORTS)}",
        f"{core} {hs_part}",
        f"{core} {hs_part} NET WT {gw} KG GROSS WT {gw + n * 7} KG {rng.choice(FREIGHT)}",
        f"{core} {rng.choice(INCOTERMS)} {rng.choice(PORTS)} L/C NO. {_number(rng, 'LC')} {rng.choice(FREIGHT)}",
        f"{n} {pkg} {core} TOTAL NW {gw} KGS TOTAL GW {gw + n * 5} KGS {rng.choice(FREIGHT)}",
    )
    return re.sub(r"\s+", " ", rng.choice(templates)).strip()


_VOWELS = "AEIOU"


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.randrange(5)
    if op == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == 1:
        return word[:i] + word[i + 1 :]
    if op == 2:
        return word[:i] + word[i] + word[i:]
    if op == 3 and word[i].upper() in _VOWELS:
        return word[:i] + rng.choice(_VOWELS) + word[i + 1 :]
    return word[:i] + " " + word[i:]  # a line break split the word


def _case(rng: random.Random, text: str) -> str:
    r = rng.random()
    if r < 0.7:
        return text.upper()
    if r < 0.85:
        return text.lower()
    return text.title()


def _roughen(rng: random.Random, text: str) -> str:
    """Case, typos, abbreviation: the accidents of manual entry."""
    if rng.random() < 0.15:
        text = " ".join(_typo(rng, w) if rng.random() < 0.2 else w for w in text.split(" "))
    if rng.random() < 0.05:
        text = text.replace(" WITH ", " W/ ").replace(" FOR ", " F/ ").replace(" AND ", " & ")
    return _case(rng, text)


# ---------------------------------------------------------------------------------------------
# Composition of goods words from lexicon entries.


def _pack_kind(item: Item) -> str:
    code = item.provisions[0]
    if item.cas or (item.category == "chemical" and code[1] == "C"):
        return "bulk"
    if item.category == "biological" and code[1] == "C":
        return "vial"
    if code[1] == "C":
        return "material"
    if item.category in ("electronics", "computers", "telecom_crypto"):
        return "part"
    return "unit"


_CLAUSE = re.compile(r"^(WITH|FOR|IN|AT|ON|TO|BY|W/|F/|ABOVE|BELOW|UP TO|MAX|MIN)\b", re.IGNORECASE)


def _compose(
    rng: random.Random,
    names: Sequence[str],
    attributes: dict[str, list[str]],
    must: Sequence[str],
    uses: Sequence[str],
) -> str:
    name = rng.choice(names)
    slots = [s for s in attributes if attributes[s] and (s in must or rng.random() < 0.55)]
    rng.shuffle(slots)
    values = [rng.choice(attributes[s]) for s in slots]
    # Short attributes may lead ("HASTELLOY C-276 REACTOR"); clauses ("WITH ...", "FOR ...") follow the noun.
    before = [v for v in values if len(v.split()) <= 3 and not _CLAUSE.match(v) and rng.random() < 0.35]
    after = [v for v in values if v not in before]
    sep = rng.choice((", ", " ", ", ", " - ", "; "))
    parts = [" ".join([*before, name]).strip(), *after]
    text = sep.join(p for p in parts if p)
    if uses and rng.random() < 0.3:
        text += f"{rng.choice((', ', ' ', ' - '))}{rng.choice(uses)}"
    return text


def _twin_parts(item: Item, twin: Twin) -> tuple[list[str], dict[str, list[str]], list[str]]:
    names = list(twin.names or item.names)
    if twin.keep is not None:
        kept = {s: item.attributes[s] for s in twin.keep}
    elif twin.names:
        kept = {}
    else:
        kept = {s: v for s, v in item.attributes.items() if s not in twin.attributes}
    attributes = {**kept, **twin.attributes}
    return names, attributes, list(twin.attributes)


def _dress(
    rng: random.Random, core: str, pack_kind: str, hs_choices: Sequence[str], cover: bool = True
) -> tuple[str, str]:
    """Add quantity, packaging, cover names and boilerplate; return the text and the declared HS code."""
    hs = rng.choice(hs_choices) if hs_choices else ""
    text = core
    if rng.random() < 0.75:
        pack = _pack(rng, pack_kind)
        text = f"{text}, {pack}" if rng.random() < 0.7 else f"{pack} {text}"
    if cover and rng.random() < 0.06:
        name, cover_hs = rng.choice(COVERS)
        text = f"{name} ({'HS ' + _hs_text(rng, cover_hs) if cover_hs else 'NOS'}) - {text}"
        hs = cover_hs or hs
    text = _roughen(rng, text)
    if rng.random() < 0.3:
        text = _wrap(rng, text, hs if rng.random() < 0.7 else "")
    elif hs and rng.random() < 0.15:
        text = f"{text} HS {_hs_text(rng, hs)}"
    declared = hs if rng.random() < 0.75 else ""
    return text, declared


# ---------------------------------------------------------------------------------------------
# Sources.


@dataclass
class _Draft:
    text: str
    hs_code: str
    label: int
    category: str
    provision: str
    source: str
    group: str


def cited_provision(codes: Sequence[str], controls: ControlList) -> str:
    """The most specific Annex I provision that covers all of ``codes`` (their common listed ancestor)."""
    split = [c.split(".") for c in codes]
    common: list[str] = []
    for parts in zip(*split, strict=False):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    return controls.resolve(".".join(common)).code if common else codes[0]


def _from_lexicon(
    rng: random.Random, families: list[Family], ordinary: list[str], controls: ControlList
) -> Iterator[_Draft]:
    for family in families:
        for item in family.items:
            group = f"item:{item.id}"
            kind = _pack_kind(item)
            cited = cited_provision(item.provisions, controls)
            for k in range(POSITIVES_PER_ITEM):
                names = item.names
                if item.translations and rng.random() < 0.15:
                    names = rng.choice(list(item.translations.values()))
                core = _compose(rng, names, item.attributes, item.required, item.uses)
                if item.cas and rng.random() < 0.15:
                    core = f"{core} CAS {item.cas}" if k % 2 else f"CAS {item.cas} {_pack(rng, kind)}"
                if ordinary and rng.random() < 0.08:
                    core = _mixed_line(rng, core, ordinary)
                text, hs = _dress(rng, core, kind, item.hs)
                yield _Draft(text, hs, 1, item.category, cited, family.family, group)
            for twin in item.twins:
                names, attributes, must_one = _twin_parts(item, twin)
                for _ in range(ROWS_PER_TWIN):
                    # Every twin row carries at least one disqualifying value.
                    must = [rng.choice(must_one)] if must_one else []
                    # Other goods keep only their own stated uses; the same goods may keep the item's.
                    uses = twin.uses or ([] if twin.names else item.uses)
                    core = _compose(rng, names, attributes, must, uses)
                    if twin.cas and rng.random() < 0.15:
                        core = f"{core} CAS {twin.cas}"
                    if ordinary and rng.random() < 0.08:
                        core = _mixed_line(rng, core, ordinary)
                    text, hs = _dress(rng, core, kind, twin.hs or item.hs)
                    yield _Draft(text, hs, 0, "none", "", f"twin:{family.family}", group)


def _mixed_line(rng: random.Random, core: str, ordinary: list[str]) -> str:
    """Several goods on one line, as on a consolidated bill of lading."""
    others = rng.sample(ordinary, k=rng.randrange(1, 4))
    parts = [*others, core]
    rng.shuffle(parts)
    return rng.choice(("ASSORTED: ", "", "MIXED CARGO: ", "")) + rng.choice((", ", "; ", " / ")).join(parts)


def _from_watchlist(
    rng: random.Random, watchlist: Watchlist, item_of: dict[str, str], covered: set[str]
) -> Iterator[_Draft]:
    """Name-only and CAS-only lines for every watch-list substance, grouped with the lexicon item citing it."""
    for s in watchlist.substances:
        category = KIND_CATEGORY[s.kind]
        # CWC Schedule 1 agents have no Annex I provision: they cite their schedule and group by CAS.
        group = item_of.get(s.provision, f"substance:{s.provision or s.cas or s.name}")
        kind = "bulk" if s.kind in ("chemical", "missile_material", "nuclear_material") else "vial"
        names = [s.name, *s.synonyms]
        n = ROWS_PER_SUBSTANCE if s.provision in covered else ROWS_PER_SUBSTANCE * 3
        for k in range(n):
            if s.cas and k % 3 == 2:
                core = rng.choice((f"CAS {s.cas}", f"CAS NO. {s.cas}", f"CAS# {s.cas}", s.cas))
            else:
                core = rng.choice(names)
                if s.abbreviations and rng.random() < 0.2:
                    core = f"{rng.choice(s.abbreviations)} ({core})"
            core = f"{core} {rng.choice(GRADES)}".strip() if kind == "bulk" else core
            text, hs = _dress(rng, core, kind, [])
            yield _Draft(text, hs, 1, category, s.provision, "watchlist", group)


def _trade_style(description: str) -> str:
    """An HS subheading description rewritten the way a trader would declare the goods."""
    text = re.sub(r"\([^)]*\)", "", description)
    segments = [s.strip(" ,.") for s in text.split(";") if s.strip(" ,.")]
    segments = [
        s for s in segments if not re.match(r"^(other|n\.e\.c|not elsewhere|whether or not|parts thereof)", s, re.I)
    ]
    if not segments:
        return ""
    head, *rest = segments
    words = " ".join([head, *rest[:1]]).split()
    return " ".join(words[:10]).strip(" ,").upper()


def _hs_rows(data_dir: Path) -> list[tuple[str, str]]:
    path = data_dir / "reference" / "harmonized-system" / "harmonized-system.csv"
    with path.open(encoding="utf-8") as fh:
        return [(r["hscode"], r["description"]) for r in csv.DictReader(fh) if r["level"] == "6"]


GRADES = ("", "", "", "99%", "98% MIN", "TECH GRADE", "REAGENT GRADE", "99.5%", "INDUSTRIAL GRADE", "AR GRADE")


def _hs_pack_kind(hs: str) -> str:
    """Packaging that suits an HS chapter, so packaging says nothing about the label."""
    chapter = int(hs[:2]) if hs[:2].isdigit() else 0
    if 25 <= chapter <= 40 or chapter <= 24:
        return "bulk"
    if 68 <= chapter <= 83 or 50 <= chapter <= 60:
        return "material"
    if chapter in (85, 90):
        return "part"
    return "unit"


def _graded(rng: random.Random, core: str, hs: str) -> str:
    """Chemicals of chapters 28, 29 and 38 carry a grade as often as the watch-list lines do."""
    if hs[:2] in ("28", "29", "38"):
        return f"{core} {rng.choice(GRADES)}".strip()
    return core


def _from_hs(rng: random.Random, data_dir: Path, watchlist: Watchlist, rejected: Counter[str]) -> Iterator[_Draft]:
    for hs, description in _hs_rows(data_dir):
        core = _trade_style(description)
        if not core:
            rejected["hs2022: nothing left after removing 'other'"] += 1
            continue
        if hs.startswith(CONTROLLED_HS):
            rejected["hs2022: heading names controlled goods"] += 1
            continue
        if watchlist.match(core):
            rejected["hs2022: names a watch-list substance"] += 1
            continue
        text, declared = _dress(rng, _graded(rng, core, hs), _hs_pack_kind(hs), [hs], cover=False)
        if hs.startswith(MILITARY_HS):
            yield _Draft(text, declared, 1, "military", "", "hs2022", f"hs:{hs[:4]}")
        else:
            yield _Draft(text, declared, 0, "none", "", "hs2022", f"hs:{hs[:4]}")


def _fpo_rows(data_dir: Path) -> Iterator[tuple[str, str, str]]:
    base = data_dir / "reference" / "uk-fpo-search-references"
    terms = json.loads((base / "search_references.json").read_text(encoding="utf-8"))
    for term, code in terms.items():
        yield term, str(code)[:6], "uk_fpo:terms"
    with (base / "extra_references.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            yield row["Goods Description"], row["Commodity Code"][:6], "uk_fpo:descriptions"
    with (base / "brands.csv").open(encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            yield row["GDSDESC"], row["CMDTYCODE"][:6], "uk_fpo:brands"


def _from_fpo(rng: random.Random, data_dir: Path, watchlist: Watchlist, rejected: Counter[str]) -> Iterator[_Draft]:
    for text, code, source in _fpo_rows(data_dir):
        text = text.strip()
        if len(text) < 3:
            rejected[f"{source}: shorter than 3 characters"] += 1
            continue
        if code.startswith(CONTROLLED_HS) or watchlist.match(text):
            rejected[f"{source}: names controlled goods"] += 1
            continue
        hs = code if len(code) == 6 and code.isdigit() else ""
        label, category = (1, "military") if code.startswith(MILITARY_HS) else (0, "none")
        if rng.random() < 0.5:
            dressed, declared = _dress(
                rng, _graded(rng, text, code), _hs_pack_kind(code), [hs] if hs else [], cover=False
            )
        else:
            dressed, declared = text, hs
        yield _Draft(dressed, declared, label, category, "", source, f"hs:{code[:4]}")


def _from_multilingual(rng: random.Random, data_dir: Path) -> Iterator[_Draft]:
    path = data_dir / "negatives" / "multilingual.yaml"
    if not path.is_file():
        return
    for entry in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
        for k in range(3):
            hs_choices = [entry["hs"]] if entry.get("hs") else []
            text, hs = _dress(rng, entry["text"], _hs_pack_kind(entry.get("hs", "")), hs_choices, cover=False)
            yield _Draft(
                text if k else entry["text"], hs, 0, "none", "", "multilingual", f"hs:{entry.get('hs', '')[:4]}"
            )


ROWS_PER_ORDINARY = 8


def _from_ordinary(rng: random.Random, data_dir: Path) -> Iterator[_Draft]:
    """Ordinary goods with specifications, composed and dressed exactly like controlled goods."""
    path = data_dir / "negatives" / "ordinary.yaml"
    if not path.is_file():
        return
    for family in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
        hs = [str(h) for h in family.get("hs", [])]
        attributes = {k: [str(v) for v in vs] for k, vs in (family.get("attributes") or {}).items()}
        for _ in range(ROWS_PER_ORDINARY):
            core = _compose(rng, family["names"], attributes, [], family.get("uses") or [])
            text, declared = _dress(rng, core, _hs_pack_kind(hs[0] if hs else ""), hs)
            yield _Draft(text, declared, 0, "none", "", "ordinary", f"ordinary:{family['id']}")


def _ordinary_snippets(data_dir: Path) -> list[str]:
    """Short ordinary goods names for consolidated lines."""
    return sorted(
        {t.upper() for t, code, src in _fpo_rows(data_dir) if src == "uk_fpo:terms" and not code.startswith("93")}
    )


# ---------------------------------------------------------------------------------------------
# Assembly: dedupe, split by group, write.


def _stable(seed: int, text: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{text}".encode()).digest()[:8], "big")


def _assign_splits(rows: list[_Draft], seed: int) -> dict[str, str]:
    """Whole groups to splits, 80/10/10 by rows within each category, every category in every split."""
    size: Counter[str] = Counter(r.group for r in rows)
    category_of: dict[str, str] = {}
    for r in rows:
        if r.label == 1 or r.group not in category_of:
            category_of[r.group] = r.category if r.label == 1 else category_of.get(r.group, "none")
    by_category: dict[str, list[str]] = defaultdict(list)
    for group, category in category_of.items():
        by_category[category].append(group)
    split_of: dict[str, str] = {}
    for _category, groups in sorted(by_category.items()):
        groups.sort(key=lambda g: _stable(seed, g))
        filled = dict.fromkeys(SPLITS, 0)
        # Seed each evaluation split with one group first, so small categories still appear everywhere.
        order = ["validation", "test"] if len(groups) >= 3 else []
        for group in groups:
            if order:
                split = order.pop(0)
            else:
                total = sum(filled.values()) + size[group]
                split = max(SPLITS, key=lambda s: SPLITS[s] * total - filled[s])
            split_of[group] = split
            filled[split] += size[group]
    return split_of


def build(data_dir: Path, seed: int = 13) -> tuple[dict[str, pd.DataFrame], Counter[str]]:
    """Build the corpus: three split frames and a count of rejected rows by reason."""
    rng = random.Random(seed)
    controls: ControlList = load_controllist(data_dir)
    families = load_lexicon(data_dir, controls)
    watchlist = load_watchlist(data_dir)
    ordinary = _ordinary_snippets(data_dir)
    rejected: Counter[str] = Counter()
    item_of = {code: f"item:{item.id}" for f in families for item in f.items for code in item.provisions}
    covered = set(item_of)

    drafts = [
        *_from_lexicon(rng, families, ordinary, controls),
        *_from_watchlist(rng, watchlist, item_of, covered),
        *_from_hs(rng, data_dir, watchlist, rejected),
        *_from_fpo(rng, data_dir, watchlist, rejected),
        *_from_multilingual(rng, data_dir),
        *_from_ordinary(rng, data_dir),
    ]
    for d in drafts:
        if d.provision and d.provision not in controls:
            raise ValueError(f"row from {d.source} cites {d.provision!r}, which is not in Annex I")

    # Deduplicate on normalised text; a text seen with both labels is ambiguous and leaves the corpus.
    labels: dict[str, set[int]] = defaultdict(set)
    keys = [normalise(d.text).text for d in drafts]
    for key, d in zip(keys, drafts, strict=True):
        labels[key].add(d.label)
    seen: set[str] = set()
    kept: list[_Draft] = []
    for key, d in zip(keys, drafts, strict=True):
        if not key:
            rejected[f"{d.source}: empty after normalisation"] += 1
        elif len(labels[key]) > 1:
            rejected[f"{d.source}: same text with both labels"] += 1
        elif key in seen:
            rejected[f"{d.source}: duplicate"] += 1
        else:
            seen.add(key)
            kept.append(d)

    split_of = _assign_splits(kept, seed)
    frames: dict[str, list[Row]] = {s: [] for s in SPLITS}
    for d in kept:
        split = split_of[d.group]
        row_id = f"{split[:2]}-{hashlib.sha256(d.text.encode()).hexdigest()[:12]}"
        frames[split].append(Row(row_id, d.text, d.hs_code, d.label, d.category, d.provision, d.source, d.group))
    return {s: pd.DataFrame([asdict(r) for r in rows], columns=list(COLUMNS)) for s, rows in frames.items()}, rejected


def write(frames: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    """Write each split as Parquet."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, frame in frames.items():
        path = out / f"{split}.parquet"
        frame.to_parquet(path, index=False)
        paths.append(path)
    return paths


def summary(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Counts by split, label, category and source."""
    parts = [f.assign(split=s) for s, f in frames.items()]
    both = pd.concat(parts, ignore_index=True)
    return (
        both.groupby(["split", "label", "category", "source"], observed=True)
        .size()
        .rename("rows")
        .reset_index()
        .sort_values(["split", "label", "category", "source"])
    )


def digest(frames: dict[str, pd.DataFrame]) -> str:
    """A sha256 over the corpus content, stable across runs with the same seed and data."""
    h = hashlib.sha256()
    for split in SPLITS:
        frame = frames[split]
        h.update(split.encode())
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def load(corpus_dir: Path) -> dict[str, pd.DataFrame]:
    """Read the three splits written by ``write``."""
    frames = {}
    for split in SPLITS:
        path = corpus_dir / f"{split}.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; build the corpus first with `dualscreen corpus`")
        frames[split] = pd.read_parquet(path)
    return frames
