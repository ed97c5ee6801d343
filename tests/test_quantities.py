from __future__ import annotations

import pytest

from models.controllist import ControlList
from models.quantities import Thresholds, limits, parse


def _values(text: str) -> list[tuple[str, float]]:
    return [(q.dimension, q.value) for q in parse(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GLASS LINED REACTOR 20 L", [("volume", 0.02)]),
        ("REACTOR 6.3 M3", [("volume", 6.3)]),
        ("1,200 KG", [("mass", 1200.0)]),
        ("WALL 0,5 MM", [("length", 0.0005)]),
        ("TID 5 KGY", [("dose", 5000.0)]),
        ("120 DEG C", [("temperature", 393.15)]),
        ("DENSITY 1.78 G/CC", [("density", 1780.0)]),
    ],
)
def test_quantities_parse_reads_units_into_si(text: str, expected: list[tuple[str, float]]) -> None:
    assert _values(text) == [(d, pytest.approx(v)) for d, v in expected]


def test_quantities_parse_carries_a_unit_back_over_a_range_and_dimensions() -> None:
    assert _values("4.8-6 GHZ") == [("frequency", pytest.approx(4.8e9)), ("frequency", pytest.approx(6e9))]
    assert [d for d, _ in _values("500 X 400 X 300 MM")] == ["length"] * 3


def test_quantities_parse_marks_shipped_amounts() -> None:
    shipped = {round(q.value, 6): q.shipped for q in parse("NET WT 180 KG, REACTOR 500 L, 25 KG DRUMS")}
    assert shipped == {180.0: True, 0.5: False, 25.0: True}


def test_quantities_parse_ignores_numbers_inside_codes() -> None:
    assert parse("SS316L DN50 HASTELLOY C-276") == []


def test_quantities_limits_reads_annex_comparisons(controls: ControlList) -> None:
    reactor = limits(controls.get("2B350.a").text)
    assert [(lim.dimension, lim.op, lim.value) for lim in reactor] == [
        ("volume", ">", pytest.approx(0.1)),
        ("volume", "<", pytest.approx(20.0)),
    ]


@pytest.mark.parametrize(
    ("text", "op", "value"),
    [
        ("contain an explosion equivalent to 2 kg of trinitrotoluene (TNT) or greater; and", ">=", 2.0),
        ("withstand a total radiation dose greater than 50 × 103 Gy(silicon)", ">", 5e4),
        ("within the range exceeding 4,8 GHz but not exceeding 31,8 GHz", "<=", 31.8e9),
    ],
)
def test_quantities_limits_reads_operator_phrases(text: str, op: str, value: float) -> None:
    last = limits(text)[-1]
    assert (last.op, last.value) == (op, pytest.approx(value))


def test_quantities_check_fails_a_reactor_below_the_volume_limit(controls: ControlList) -> None:
    check = Thresholds(controls).check(parse("GLASS LINED REACTOR 20 L"), "2B350.a")
    assert check.status == "failed"
    assert check.failed_share == 1.0
    assert check.limits[0].text == "0,1 m3"


def test_quantities_check_meets_a_reactor_inside_the_limits(controls: ControlList) -> None:
    check = Thresholds(controls).check(parse("GLASS LINED REACTOR 2000 L, NET WT 900 KG"), "2B350.a")
    assert check.status == "met"


def test_quantities_check_is_unknown_without_a_comparable_quantity(controls: ControlList) -> None:
    assert Thresholds(controls).check(parse("GLASS LINED REACTOR, 2 PCS"), "2B350.a").status == "unknown"


def test_quantities_check_combines_children_that_all_apply(controls: ControlList) -> None:
    # 1B234 asks for both of its sub-items; only 1B234.a has a number (2 kg TNT or greater).
    thresholds = Thresholds(controls)
    assert thresholds.check(parse("FIRING CHAMBER RATED 0.5 KG TNT"), "1B234").status == "failed"
    assert thresholds.check(parse("FIRING CHAMBER RATED 3 KG TNT"), "1B234").status == "met"
