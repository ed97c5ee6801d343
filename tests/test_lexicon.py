from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from models.controllist import ControlList
from models.lexicon import CATEGORIES, LexiconError, load, read


def test_lexicon_every_file_validates(data_dir: Path, controls: ControlList) -> None:
    families = load(data_dir, controls)
    assert len(families) >= 8
    assert sum(len(f.items) for f in families) >= 200


def test_lexicon_covers_every_category(data_dir: Path, controls: ControlList) -> None:
    categories = {item.category for f in load(data_dir, controls) for item in f.items}
    assert categories == set(CATEGORIES) - {"none"}


def test_lexicon_every_item_has_an_ordinary_twin_or_is_a_named_substance(data_dir: Path, controls: ControlList) -> None:
    lonely = [i.id for f in load(data_dir, controls) for i in f.items if not i.twins and not i.cas]
    total = sum(len(f.items) for f in load(data_dir, controls))
    assert len(lonely) <= total * 0.25, lonely


def test_lexicon_covers_the_named_families(data_dir: Path, controls: ControlList) -> None:
    entries = {code[:5] for f in load(data_dir, controls) for i in f.items for code in i.provisions}
    must = {"1C350", "1C450", "1C351", "1C353", "1C354", "2B350", "2B351", "2B352", "0B001", "0C001", "2B201",
            "1B201", "3A225", "2B230", "2B231", "1C216", "1C234", "1C230", "1C233", "1C232", "3A228", "1C111",
            "9A106", "7A103", "1C010"}  # fmt: skip
    assert must <= entries, sorted(must - entries)


def _write(tmp_path: Path, body: dict[str, object], name: str = "demo") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


ITEM = {
    "id": "demo_reactor",
    "category": "chemical",
    "provisions": ["2B350.a"],
    "names": ["REACTOR", "REACTION VESSEL"],
    "attributes": {"material": ["HASTELLOY C-276"]},
    "twins": [{"why": "stainless", "attributes": {"material": ["SS316L"]}}],
}


def test_lexicon_accepts_a_minimal_family(tmp_path: Path, controls: ControlList) -> None:
    family = read(_write(tmp_path, {"family": "demo", "title": "Demo", "items": [ITEM]}), controls)
    assert family.items[0].twins[0].attributes["material"] == ["SS316L"]


def test_lexicon_rejects_unknown_provision(tmp_path: Path, controls: ControlList) -> None:
    bad = {**ITEM, "provisions": ["2B350.z"]}
    with pytest.raises(LexiconError, match=r"provision '2B350\.z' is not in Annex I"):
        read(_write(tmp_path, {"family": "demo", "title": "Demo", "items": [bad]}), controls)


def test_lexicon_rejects_bad_cas(tmp_path: Path, controls: ControlList) -> None:
    bad = {**ITEM, "cas": "111-48-9"}
    with pytest.raises(LexiconError, match="fails its check digit"):
        read(_write(tmp_path, {"family": "demo", "title": "Demo", "items": [bad]}), controls)


def test_lexicon_rejects_unknown_category(tmp_path: Path, controls: ControlList) -> None:
    bad = {**ITEM, "category": "weapons"}
    with pytest.raises(LexiconError, match="category 'weapons' is not one of"):
        read(_write(tmp_path, {"family": "demo", "title": "Demo", "items": [bad]}), controls)


def test_lexicon_rejects_required_slot_without_values(tmp_path: Path, controls: ControlList) -> None:
    bad = {**ITEM, "required": ["capacity"]}
    with pytest.raises(LexiconError, match=r"required slots \['capacity'\]"):
        read(_write(tmp_path, {"family": "demo", "title": "Demo", "items": [bad]}), controls)


def test_lexicon_rejects_family_name_that_differs_from_file(tmp_path: Path, controls: ControlList) -> None:
    with pytest.raises(LexiconError, match="must equal the file name"):
        read(_write(tmp_path, {"family": "other", "title": "Demo", "items": [ITEM]}), controls)


def test_lexicon_rejects_twin_without_a_difference(tmp_path: Path, controls: ControlList) -> None:
    bad = {**ITEM, "twins": [{"why": "same"}]}
    with pytest.raises(LexiconError, match="a twin needs other names"):
        read(_write(tmp_path, {"family": "demo", "title": "Demo", "items": [bad]}), controls)
