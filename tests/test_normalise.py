from __future__ import annotations

from models.normalise import normalise


def test_normalise_removes_and_reports_invisible_characters() -> None:
    result = normalise("THIO\u200bDI\u202eGLYCOL\ufeff")
    assert result.text == "thiodiglycol"
    assert result.notes == ["3 invisible or bidi characters removed"]


def test_normalise_folds_cyrillic_homoglyphs_in_latin_text() -> None:
    result = normalise("\u0422\u041dIODIGLY\u0421OL 99%")  # Т, Н and С are Cyrillic
    assert result.text == "thiodiglycol 99 %"
    assert "3 look-alike letters folded to Latin" in result.notes


def test_normalise_folds_greek_homoglyphs() -> None:
    assert normalise("S\u0391RIN").text == "sarin"  # Greek capital alpha


def test_normalise_leaves_russian_text_alone() -> None:
    assert normalise("Смартфоны 128 ГБ").text == "смартфоны 128 гб"


def test_normalise_rejoins_spaced_letters() -> None:
    assert normalise("s a r i n precursor").text == "sarin precursor"
    assert normalise("S.A.R.I.N").text == "sarin"


def test_normalise_keeps_quantities_with_single_letters() -> None:
    assert normalise("1 X 20GP STC").text == "1 x 20gp stc"


def test_normalise_canonicalises_units() -> None:
    assert normalise("25KGS").text == normalise("25 kg").text == "25 kg"
    assert normalise("200LTR DRUM").text == "200 l drum"
    assert normalise("99PCT").text == "99 %"
    assert normalise("1,000 KGS").text == "1000 kg"
    assert normalise("0,15 M2").text == "0.15 m2"


def test_normalise_full_width_characters() -> None:
    assert normalise("ＴＤＧ　９９％").text == "tdg 99 %"


def test_normalise_span_points_into_the_original() -> None:
    original = "XX \u0422\u041dIODIGLYCOL\u200b 25KGS"
    result = normalise(original)
    start = result.text.index("thiodiglycol")
    a, b = result.span(start, start + len("thiodiglycol"))
    assert original[a:b] == "\u0422\u041dIODIGLYCOL"


def test_normalise_every_origin_is_inside_the_input() -> None:
    original = "  Ｓ  A R I N\u200b 1,000 LTRS  "
    result = normalise(original)
    assert len(result.origin) == len(result.text)
    assert all(0 <= o < len(original) for o in result.origin)


def test_normalise_keeps_russian_words_inside_latin_text() -> None:
    assert "в заводской упаковке" in normalise("SMARTPHONES в заводской упаковке AS PER INVOICE").text
