"""A tiny corpus written inline: a few obvious items, their ordinary twins, ordinary goods."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from training.corpus import COLUMNS

ITEMS = {
    # group: (category, provision, positive phrasings, twin phrasings)
    "item:thiodiglycol": (
        "chemical",
        "1C350.1",
        ["THIODIGLYCOL 99%", "TDG 99% MIN", "THIODIGLYCOL CAS 111-48-8", "2,2-THIODIETHANOL TECH GRADE"],
        ["DIETHYLENE GLYCOL 99%", "DEG TECH GRADE", "MONOETHYLENE GLYCOL 99.9%", "GLYCERINE 99.5%"],
    ),
    "item:reactor": (
        "chemical",
        "2B350.a",
        ["HASTELLOY C-276 REACTOR 2000 L", "GLASS LINED REACTOR 3000 L", "TANTALUM LINED REACTION VESSEL 500 L"],
        ["SS316L MIXING TANK 2000 L", "CARBON STEEL TANK 3000 L", "PLASTIC WATER TANK 500 L"],
    ),
    "item:anthrax": (
        "biological",
        "1C351.c.1",
        ["BACILLUS ANTHRACIS LIVE CULTURE", "B. ANTHRACIS STRAIN VIALS", "ANTHRAX SEED STOCK CRYOVIAL"],
        ["BACILLUS SUBTILIS PROBIOTIC POWDER", "LACTOBACILLUS STARTER CULTURE", "BAKERS YEAST DRY"],
    ),
    "item:heavy_water": (
        "nuclear",
        "0C003",
        ["HEAVY WATER D2O 99.9 ATOM %", "DEUTERIUM OXIDE 99.8%", "D2O NUCLEAR GRADE"],
        ["DISTILLED WATER 20 L", "DEIONISED WATER 99.9%", "MINERAL WATER 500 ML"],
    ),
    "item:perchlorate": (
        "missile",
        "1C111",
        ["AMMONIUM PERCHLORATE 200 MICRON", "AP OXIDIZER 99% 25 KG", "AMMONIUM PERCHLORATE UN1442"],
        ["AMMONIUM NITRATE FERTILISER", "AMMONIUM SULPHATE 21% N", "AMMONIUM CHLORIDE FOOD GRADE"],
    ),
    "item:maraging": (
        "materials",
        "1C216",
        ["MARAGING STEEL 350 BAR 200 MM", "MARAGING 300 ROUND BAR", "MARAGING STEEL FORGING 2000 MPA"],
        ["STAINLESS 304 ROUND BAR 200 MM", "MILD STEEL BAR", "17-4PH BAR 100 MM"],
    ),
}
ORDINARY = [
    "COTTON T-SHIRTS", "LEATHER SHOES", "FROZEN SHRIMP", "LAPTOP 15 INCH", "OFFICE CHAIRS", "RICE 25 KG BAGS",
    "CERAMIC TILES", "CAR TYRES 205/55R16", "LED BULBS", "WOODEN FURNITURE", "PLASTIC TOYS", "COFFEE BEANS",
]  # fmt: skip
PACKS = ["", ", 10 DRUMS", ", 2 PCS", " 1 X 20GP STC 5 PKGS"]
SPLIT_OF = {
    "item:thiodiglycol": "train",
    "item:reactor": "train",
    "item:anthrax": "train",
    "item:heavy_water": "validation",
    "item:perchlorate": "test",
    "item:maraging": "train",
}


def frames() -> dict[str, pd.DataFrame]:
    """Train, validation and test frames in the corpus schema."""
    rows: dict[str, list[dict[str, object]]] = {"train": [], "validation": [], "test": []}
    for group, (category, provision, positives, twins) in ITEMS.items():
        split = SPLIT_OF[group]
        for text, pack in itertools.product(positives, PACKS):
            rows[split].append(dict(text=text + pack, label=1, category=category, provision=provision, group=group))
        for text, pack in itertools.product(twins, PACKS):
            rows[split].append(dict(text=text + pack, label=0, category="none", provision="", group=group))
    for i, (text, pack) in enumerate(itertools.product(ORDINARY, PACKS)):
        split = ("train", "train", "validation", "test")[i % 4]
        rows[split].append(dict(text=text + pack, label=0, category="none", provision="", group=f"hs:{i % 6}"))
    out = {}
    for split, items in rows.items():
        frame = pd.DataFrame(items)
        frame["id"] = [f"{split[:2]}-{i}" for i in range(len(frame))]
        frame["hs_code"] = ""
        frame["source"] = "tiny"
        out[split] = frame[list(COLUMNS)]
    return out


def data_dir(real: Path, tmp: Path) -> Path:
    """A data directory with the real reference data and lexicon, and tiny evaluation files."""
    target = tmp / "data"
    target.mkdir()
    for name in ("reference", "lexicon", "watchlist", "negatives"):
        (target / name).symlink_to(real / name)
    (target / "eval").mkdir()
    dev = pd.DataFrame(
        {
            "id": ["d1", "d2", "d3", "d4", "d5", "d6"],
            "description": ["THIODIGLYCOL 200 KG DRUM", "GLASS LINED REACTOR 2500 L", "HEAVY WATER D2O 99%",
                            "COTTON SOCKS", "DIETHYLENE GLYCOL 200 KG DRUM", "SS316L MIXING TANK 2500 L"],
            "hs_code": ["", "", "", "", "", ""],
            "label": [1, 1, 1, 0, 0, 0],
            "category": ["chemical", "chemical", "nuclear", "none", "none", "none"],
            "reference": ["1C350.1", "2B350.a.3", "0C003", "", "", ""],
        }
    )  # fmt: skip
    dev.to_csv(target / "eval" / "dev_eval.csv", index=False)
    pd.DataFrame({"description": ["THIODIGLYCOL 99% 200 KG DRUMS", "HASTELLOY C-276 REACTOR 2000 L"]}).to_csv(
        target / "eval" / "canary.csv", index=False
    )
    return target


def write_corpus(directory: Path) -> Path:
    """Write the tiny corpus as Parquet splits."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, frame in frames().items():
        frame.to_parquet(directory / f"{split}.parquet", index=False)
    return directory


def environment(real: Path, root: Path) -> dict[str, str]:
    """DUALSCREEN_* settings for a throw-away workspace under ``root``: tiny data and corpus, own stores."""
    return {
        "DUALSCREEN_DATA_DIR": str(data_dir(real, root)),
        "DUALSCREEN_CORPUS_DIR": str(write_corpus(root / "corpus")),
        "DUALSCREEN_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "DUALSCREEN_DATABASE_URL": f"sqlite:///{root / 'dualscreen.db'}",
        "DUALSCREEN_DATASETS_DIR": str(root / "datasets"),
    }
