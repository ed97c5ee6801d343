from __future__ import annotations

import re

import pytest

from models.controllist import ControlList, UnknownProvisionError, regime

HEAT_EXCHANGERS = (
    "Heat exchangers or condensers with a heat transfer surface area greater than 0,15 m2, and less than 20 m2; "
    "and tubes, plates, coils or blocks (cores) designed for such heat exchangers or condensers, where all surfaces "
    "that come in direct contact with the chemical(s) being processed are made from any of the following materials:"
)


def test_controllist_2b350_d_text_is_verbatim(controls: ControlList) -> None:
    assert controls.get("2B350.d").text == HEAT_EXCHANGERS


def test_controllist_1c350_28_text_is_verbatim(controls: ControlList) -> None:
    assert controls.get("1C350.28").text == "Pinacolyl alcohol (CAS 464-07-3);"


def test_controllist_counts_every_entry(controls: ControlList) -> None:
    assert len(controls.entries()) == 384
    assert len(controls) > 3000


def test_controllist_provision_fields(controls: ControlList) -> None:
    p = controls.get("2B350.d.3")
    assert (p.entry, p.category, p.group, p.regime) == ("2B350", 2, "B", "Australia Group")
    assert p.parents == ("2B350", "2B350.d")
    assert p.text == "Glass (including vitrified or enamelled coatings or glass lining);"


def test_controllist_notes_of_the_entry_apply_to_children(controls: ControlList) -> None:
    notes = controls.get("1C350.28").notes
    assert any(n.startswith("Note 4: 1C350 does not control products identified as consumer goods") for n in notes)


def test_controllist_notes_do_not_leak_to_siblings(controls: ControlList) -> None:
    repair = "N.B. For prefabricated repair assemblies, see 2B350.k."
    assert repair in controls.get("2B350.a.3").notes
    assert repair not in controls.get("2B350.b.3").notes


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("0B001.b.1", "Nuclear Suppliers Group"),
        ("1C350.1", "Australia Group"),
        ("2B352.b", "Australia Group"),
        ("1C450.a.4", "Chemical Weapons Convention"),
        ("9A101", "MTCR"),
        ("7A103", "MTCR"),
        ("2B230", "Nuclear Suppliers Group"),
        ("3A228.b", "Nuclear Suppliers Group"),
        ("3A001.a.5", "Wassenaar Arrangement"),
        ("5A002", "Wassenaar Arrangement"),
        ("4A506", "EU plurilateral"),
    ],
)
def test_regime_by_code(code: str, expected: str) -> None:
    assert regime(code) == expected


def test_regime_rejects_malformed_code() -> None:
    with pytest.raises(ValueError, match="not an Annex I code"):
        regime("ML8")


def test_controllist_unknown_code_names_the_fix(controls: ControlList) -> None:
    with pytest.raises(UnknownProvisionError, match=re.escape("2B350.d.3")):
        controls.get("2B350.z")


def test_controllist_resolve_falls_back_to_listed_ancestor(controls: ControlList) -> None:
    assert controls.resolve("2B350.d.3.zz").code == "2B350.d.3"
