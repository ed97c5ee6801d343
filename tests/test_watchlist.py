from __future__ import annotations

from pathlib import Path

import pytest

from models.cas import is_valid_cas
from models.controllist import ControlList
from models.watchlist import Curated, Substance, Watchlist, WatchlistError, crossref_cwc, from_annex, merge


def test_cas_check_digit() -> None:
    assert is_valid_cas("111-48-8")
    assert is_valid_cas("7732-18-5")
    assert not is_valid_cas("111-48-9")
    assert not is_valid_cas("11-148-8")


def test_watchlist_every_cas_passes_its_check_digit(watchlist: Watchlist) -> None:
    bad = [(s.name, s.cas) for s in watchlist.substances if s.cas and not is_valid_cas(s.cas)]
    assert bad == []


def test_watchlist_every_provision_exists(watchlist: Watchlist, controls: ControlList) -> None:
    missing = [(s.name, s.provision) for s in watchlist.substances if s.provision and s.provision not in controls]
    assert missing == []


def test_watchlist_holds_every_chemical_of_1c350_and_1c450(watchlist: Watchlist, controls: ControlList) -> None:
    listed = {s.provision for s in watchlist.substances}
    expected = {p.code for p in controls if p.entry in ("1C350", "1C450") and "(CAS " in p.text}
    assert len(expected) > 100
    assert expected <= listed


def test_watchlist_holds_the_agents_of_1c351_to_1c354(watchlist: Watchlist) -> None:
    codes = {s.provision for s in watchlist.substances if s.kind in ("pathogen", "toxin")}
    assert {"1C351.a.14", "1C351.c.1", "1C351.d.4", "1C354.c.11"} <= codes


def test_watchlist_cwc_agrees_with_annex_on_precursors(watchlist: Watchlist, data_dir: Path) -> None:
    found = crossref_cwc(from_annex_only(watchlist), data_dir / "reference/cwc-schedules/cwc_schedules.csv")
    assert found["bad_cas"] == []
    # Every Schedule 2 and 3 chemical with a CAS number is an Annex I precursor; the file's
    # Schedule 1 agents are not (Annex I leaves them to the military list, and Annex I wins).
    assert len(found["agree"]) >= 29
    assert "107-44-8" in found["not_in_annex"]  # sarin
    assert "111-48-8" in found["agree"]  # thiodiglycol, Schedule 2B.13 and 1C350.1


def from_annex_only(watchlist: Watchlist) -> list[Substance]:
    return [s for s in watchlist.substances if s.provision]


def test_watchlist_curated_cas_conflicting_with_annex_is_refused(controls: ControlList) -> None:
    wrong = Curated(provision="1C350.1", name="Thiodiglycol", kind="chemical", cas="7732-18-5")
    with pytest.raises(WatchlistError, match=r"disagrees with Annex I 1C350\.1 \(111-48-8\)"):
        merge(from_annex(controls), [wrong], controls)


def test_watchlist_curated_bad_check_digit_is_refused(controls: ControlList) -> None:
    wrong = Curated(provision="0C003", name="Heavy water", kind="nuclear_material", cas="7789-20-1")
    with pytest.raises(WatchlistError, match="fails its check digit"):
        merge(from_annex(controls), [wrong], controls)


def test_watchlist_matches_name_and_cas_with_offsets(watchlist: Watchlist) -> None:
    text = "16 X 200KG DRUMS THIODIGLYCOL 99% CAS 111-48-8"
    hits = watchlist.match(text)
    assert {(h.substance, h.by) for h in hits} == {("Thiodiglycol", "name"), ("Thiodiglycol", "cas")}
    for h in hits:
        assert text[h.start : h.end] == h.matched
        assert h.provision == "1C350.1"


def test_watchlist_matches_through_homoglyphs_and_spacing(watchlist: Watchlist) -> None:
    text = "\u0422\u041dIODIGLYCOL\u200b 200 KG"
    (hit,) = watchlist.match(text)
    assert hit.substance == "Thiodiglycol"
    assert text[hit.start : hit.end] == "\u0422\u041dIODIGLYCOL"


def test_watchlist_ambiguous_abbreviation_needs_chemical_context(watchlist: Watchlist) -> None:
    assert watchlist.match("DMP 99% MIN, 200 KG DRUMS")
    assert not watchlist.match("DMP OFFICE SUPPLIES")


def test_watchlist_names_schedule_one_agents_not_in_annex(watchlist: Watchlist) -> None:
    (hit,) = watchlist.match("SARIN")
    assert hit.provision == ""
    sarin = next(s for s in watchlist.substances if s.name == "Sarin")
    assert sarin.cites.startswith("CWC Schedule 1A.1")


def test_watchlist_ignores_ordinary_goods(watchlist: Watchlist) -> None:
    assert watchlist.match("COTTON T-SHIRTS 1200 PCS, HS 610910") == []
