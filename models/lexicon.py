"""The curated trade lexicon: goods families, their controlled attributes and their ordinary twins."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from models.cas import is_valid_cas
from models.controllist import ControlList
from models.controllist import load as load_controllist

CATEGORIES = (
    "chemical",
    "biological",
    "nuclear",
    "missile",
    "military",
    "materials",
    "materials_processing",
    "electronics",
    "computers",
    "telecom_crypto",
    "sensors_lasers",
    "navigation_avionics",
    "marine",
    "aerospace_propulsion",
    "none",
)
LANGUAGES = ("de", "fr", "es", "it", "pt", "nl", "tr", "ru", "zh", "ar", "fa", "ja", "ko")

Phrase = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
HsCode = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
Slot = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]


class Twin(BaseModel):
    """An ordinary twin of a controlled item: below threshold, ordinary material or consumer use."""

    model_config = ConfigDict(extra="forbid")

    why: Phrase
    names: list[Phrase] = Field(default_factory=list)
    cas: str | None = None
    hs: list[HsCode] = Field(default_factory=list)
    attributes: dict[Slot, list[Phrase]] = Field(default_factory=dict)
    keep: list[Slot] | None = None
    uses: list[Phrase] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_difference(self) -> Twin:
        if not self.names and not any(self.attributes.values()):
            raise ValueError("a twin needs other names or at least one disqualifying attribute value")
        return self


class Item(BaseModel):
    """One kind of controlled goods, tied to the Annex I provisions it derives from."""

    model_config = ConfigDict(extra="forbid")

    id: Slot
    category: str
    provisions: list[str] = Field(min_length=1)
    names: list[Phrase] = Field(min_length=2)
    cas: str | None = None
    hs: list[HsCode] = Field(default_factory=list)
    translations: dict[str, list[Phrase]] = Field(default_factory=dict)
    attributes: dict[Slot, list[Phrase]] = Field(default_factory=dict)
    required: list[Slot] = Field(default_factory=list)
    uses: list[Phrase] = Field(default_factory=list)
    twins: list[Twin] = Field(default_factory=list)

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str) -> str:
        if value not in CATEGORIES or value == "none":
            raise ValueError(f"category {value!r} is not one of {', '.join(CATEGORIES[:-1])}")
        return value

    @field_validator("translations")
    @classmethod
    def _known_languages(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(LANGUAGES))
        if unknown:
            raise ValueError(f"translations: unknown language codes {unknown}; use {', '.join(LANGUAGES)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Item:
        missing = [s for s in self.required if s not in self.attributes]
        if missing:
            raise ValueError(f"required slots {missing} have no values under attributes")
        for twin in self.twins:
            unknown = [s for s in twin.keep or [] if s not in self.attributes]
            if unknown:
                raise ValueError(f"twin {twin.why!r}: keep names slots {unknown} the item does not have")
        return self


class Family(BaseModel):
    """One lexicon file: a family of goods."""

    model_config = ConfigDict(extra="forbid")

    family: Slot
    title: Phrase
    items: list[Item] = Field(min_length=1)


class LexiconError(ValueError):
    """A lexicon file that breaks the schema or cites what Annex I does not contain."""


def check(family: Family, controls: ControlList) -> list[str]:
    """Problems that the schema alone cannot see: unknown provisions, bad CAS numbers, duplicate ids."""
    problems: list[str] = []
    seen: set[str] = set()
    for item in family.items:
        where = f"{family.family}.yaml: item {item.id!r}"
        if item.id in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(item.id)
        problems += [
            f"{where}: provision {code!r} is not in Annex I" for code in item.provisions if code not in controls
        ]
        cases = [(item.cas, "cas")] + [(t.cas, f"twin {t.why!r} cas") for t in item.twins]
        problems += [
            f"{where}: {field} {cas!r} fails its check digit" for cas, field in cases if cas and not is_valid_cas(cas)
        ]
    return problems


def read(path: Path, controls: ControlList) -> Family:
    """Read and validate one lexicon file."""
    try:
        family = Family.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as err:
        raise LexiconError(f"{path.name}: {err}") from None
    if family.family != path.stem:
        raise LexiconError(f"{path.name}: 'family' is {family.family!r}; it must equal the file name {path.stem!r}")
    problems = check(family, controls)
    if problems:
        raise LexiconError("\n".join(problems))
    return family


def load(data_dir: Path, controls: ControlList | None = None) -> list[Family]:
    """Every lexicon family under ``data_dir/lexicon``, validated; ids unique across files."""
    controls = controls or load_controllist(data_dir)
    families = [read(p, controls) for p in sorted((Path(data_dir) / "lexicon").glob("*.yaml"))]
    ids = [item.id for f in families for item in f.items]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise LexiconError(f"item ids used in more than one family: {dupes}")
    return families


def _main(argv: list[str]) -> int:
    data_dir = Path(argv[0]) if argv else Path("data")
    controls = load_controllist(data_dir)
    failed = 0
    for path in sorted((data_dir / "lexicon").glob("*.yaml")):
        try:
            family = read(path, controls)
        except LexiconError as err:
            failed += 1
            print(f"FAIL {err}")
            continue
        twins = sum(len(i.twins) for i in family.items)
        print(f"ok   {path.name}: {len(family.items)} items, {twins} twins")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))


__all__ = ["CATEGORIES", "Family", "Item", "LexiconError", "Twin", "load", "read"]
