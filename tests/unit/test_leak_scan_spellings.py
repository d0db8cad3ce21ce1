"""The leak scan finds a name however an attacker spells it, and its folding agrees with Unicode's data."""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odeus_compliance.policy.fold_native import fold_column
from odeus_compliance.policy.leakscan import (
    MIN_CHARS,
    MIN_DIGITS,
    MIN_SURNAME,
    BidiControlFound,
    LeakFound,
    LeakScanner,
    identifying_keys,
    output_keys,
)
from odeus_compliance.policy.text_fold import OUTPUT_FOLDS, TRANSLITERATED, fold, has_bidi_control

_PEOPLE = ["Anna Meier", "Björn Müller", "Işıl Yıldız", "Γιώργος Παπαδάκης", "Светлана Кузнецова"]
_TRANSLITERATED = {  # as a person would write them in ASCII
    "Anna Meier": "Anna Meier",
    "Björn Müller": "Bjorn Muller",
    "Işıl Yıldız": "Isil Yildiz",
    "Γιώργος Παπαδάκης": "Giorgos Papadakis",
    "Светлана Кузнецова": "Svetlana Kuznetsova",
}
_EMAIL = "anna.meier+ai@example.com"
_ID = "usr_0218c0204ac1"


def _found(identifying: list[str], text: str) -> bool:
    keys = set(identifying_keys(pa.array(identifying, pa.string())).to_pylist())
    return bool(keys & output_keys(text))


def _cyrillic_lookalikes(text: str) -> str:
    return text.translate(str.maketrans("aeopcxAEOPCXMHKT", "аеорсхАЕОРСХМНКТ"))


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _decomposed(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def _with_inside(char: str) -> Callable[[str], str]:
    return lambda text: "".join(c + char if c.isalpha() else c for c in text).replace(char + " ", " ")


_RESPELLINGS: dict[str, Callable[[str], str]] = {
    "as is": lambda t: t,
    "upper case": str.upper,
    "decomposed": _decomposed,
    "Cyrillic look-alikes": _cyrillic_lookalikes,
    "full-width": _fullwidth,
    "soft hyphens inside": _with_inside("\u00ad"),
    "zero-width joiners inside": _with_inside("\u200d"),
    "zero-width spaces inside": _with_inside("\u200b"),
    "combining accents": lambda t: "".join(c + "\u0301" if c.isalpha() else c for c in t),
    "joined with dots": lambda t: t.replace(" ", "."),
    "joined with hyphens": lambda t: t.replace(" ", "-"),
    "joined with underscores": lambda t: t.replace(" ", "_"),
    "camel case": lambda t: "".join(w.capitalize() for w in t.split()),
    "camel case inside a word": lambda t: "teamOf" + "".join(w.capitalize() for w in t.split()),
    "no separator": lambda t: t.replace(" ", "").lower(),
    "Last, First": lambda t: f"{t.split()[-1]}, {' '.join(t.split()[:-1])}",
    "surname alone": lambda t: t.split()[-1],
    "in a sentence": lambda t: f"Licence held by {t} (see ticket)",
    "ASCII transliteration": lambda t: _TRANSLITERATED[t],
}


@pytest.mark.parametrize("person", _PEOPLE)
@pytest.mark.parametrize("how", list(_RESPELLINGS))
def test_a_name_is_found_in_every_spelling(person: str, how: str) -> None:
    spelt = _RESPELLINGS[how](person)
    if not spelt.strip() or (how == "surname alone" and len(fold(spelt).replace(" ", "")) < MIN_SURNAME):
        pytest.fail("the respelling left nothing to find")  # never: every surname above is long enough
    assert _found([person], spelt), how


@pytest.mark.parametrize(
    "text",
    [
        "ANNA.MEIER+ai@EXAMPLE.COM",
        "anna.meier@example.com",
        "anna.meier at example dot com",
        "mail: anna_meier+other@corp",
        "AnnaMeier",
        "Meier.Anna",
    ],
)
def test_an_e_mail_address_is_found_by_its_local_part_and_whole(text: str) -> None:
    assert _found([_EMAIL], text)


@pytest.mark.parametrize(
    "text", ["USR-0218C0204AC1", "usr 0218c0204ac1", "usr.0218c0204ac1", "0218c0204ac1", "usr0218c0204ac1"]
)
def test_an_id_is_found_with_any_separator(text: str) -> None:
    assert _found([_ID], text)


def test_turkish_and_greek_capitals_fold_like_their_small_letters() -> None:
    assert _found(["Işıl Yıldız"], "IŞIL YILDIZ")
    assert _found(["İpek Şahin"], "ipek sahin")
    assert _found(["Γιώργος Παπαδάκης"], "ΓΙΏΡΓΟΣ ΠΑΠΑΔΆΚΗΣ")
    assert _found(["Οδυσσέας Ελύτης"], "ΟΔΥΣΣΈΑΣ ΕΛΎΤΗΣ")  # final and medial sigma


def test_other_common_spellings_are_found() -> None:
    assert _found(["Jürgen Schröder"], "Juergen Schroeder")
    assert _found(["Jürgen Schröder"], "Jurgen Schroder")
    assert _found(["Γιώργος Παπαδόπουλος"], "Giorgos Papadopoulos")
    assert _found(["Γιώργος Παπαδόπουλος"], "Giorgos Papadopoylos")


@pytest.mark.parametrize(
    "text",
    ["Sales", "Research & Development", "gpt-4o", "Claude 3.5 Sonnet", "Anna", "Team Meiers", "usr_0218"],
)
def test_unrelated_text_and_parts_of_first_names_are_not_hits(text: str) -> None:
    assert not _found(["Anna Meier", _ID], text)


def test_a_reversed_name_in_a_right_to_left_override_is_refused() -> None:
    scanner = LeakScanner()
    scanner.add_identifying(pa.array(["Anna Meier"], pa.string()))
    scanner.observe_column("agent", pa.array(["ok", "\u202ereiem anna\u202c"], pa.string()), row_offset=10)
    with pytest.raises(BidiControlFound, match=r"column 'agent' \(data row 12\).*bidirectional"):
        scanner.verify()


def test_token_shaped_map_keys_are_read_too() -> None:
    scanner = LeakScanner()
    scanner.add_identifying(pa.array(["Anna Meier"], pa.string()))
    scanner.observe_keys("agents_used", {"u1_annameier": 0}, row_offset=4)
    with pytest.raises(LeakFound, match=r"column 'agents_used' \(data row 5\)"):
        scanner.verify()


def test_the_error_names_neither_the_value_nor_the_text() -> None:
    scanner = LeakScanner()
    scanner.add_identifying(pa.array(["Zygmunt Wróblewski"], pa.string()))
    scanner.observe_column("role", pa.array(["Deputy of Zygmunt WROBLEWSKI"], pa.string()), row_offset=0)
    with pytest.raises(LeakFound) as caught:
        scanner.verify()
    assert "zygmunt" not in str(caught.value).casefold()
    assert "wroblewski" not in str(caught.value).casefold()


# --- the native keys against a reference written from the rule -----------------------------------------


def _reference_keys(value: str) -> list[str]:
    def joined(text: str) -> str:
        return "".join(re.findall(r"[a-z0-9]+", text.lower()))

    def counts(key: str) -> bool:
        return len(key) >= MIN_CHARS and (not key.isdigit() or len(key) >= MIN_DIGITS)

    whole = joined(value)
    placeholders = {"anonymous", "anonymised", "anonymized", "anon", "redacted", "hidden", "na", "unknown"}
    if not counts(whole) or whole in placeholders:
        return []
    keys = [whole]
    name = value
    if "@" in value:
        local = value[: value.rindex("@")]
        keys += [joined(local)]
        name = local.split("+", 1)[0]
        if name != local:
            keys += [joined(name)]
    words = re.findall(r"[a-z0-9]+", name.lower())
    if len(words) >= 2 and len(words[-1]) >= MIN_SURNAME and counts(words[-1]) and words[-1] != whole:
        keys += [words[-1], words[-1] + "".join(words[:-1])]
    return [k for i, k in enumerate(keys) if i == 0 or (k != whole and counts(k))]


@given(st.lists(st.from_regex(r"[A-Za-z0-9 _'.@+\-]{0,24}", fullmatch=True), max_size=30))
@settings(max_examples=300, deadline=None)
def test_native_keys_follow_the_rule(values: list[str]) -> None:
    produced = identifying_keys(pa.array(values, pa.string())).to_pylist()
    assert produced == [key for value in values for key in _reference_keys(value)]


# --- the fold against Unicode's data (the character database compiled into Python) ----------------------

_ALL = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]


def test_every_format_character_and_combining_mark_vanishes() -> None:
    vanishing = [c for c in _ALL if unicodedata.category(c) in {"Cf", "Mn", "Me"}]
    assert len(vanishing) > 2000
    for table in OUTPUT_FOLDS:
        assert [c for c in vanishing if c.translate(table) != ""] == []
    spacing_marks = [c for c in _ALL if unicodedata.category(c) == "Mc"]
    assert [c for c in spacing_marks if fold(c) != ""] == []  # as written, one may look like a letter


def test_bidi_controls_are_exactly_unicodes() -> None:
    # Bidi_Control (PropList.txt): the embedding, override and isolate controls, and the three marks
    controls = {"LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI"}
    expected = {c for c in _ALL if unicodedata.bidirectional(c) in controls} | {"\u200e", "\u200f", "\u061c"}
    assert {unicodedata.name(c) for c in expected if unicodedata.bidirectional(c) not in controls} == {
        "LEFT-TO-RIGHT MARK",
        "RIGHT-TO-LEFT MARK",
        "ARABIC LETTER MARK",
    }
    assert {c for c in _ALL if has_bidi_control(c)} == expected


def test_every_letter_folds_like_its_decomposition_without_marks() -> None:
    checked = 0
    for char in _ALL:
        decomposed = unicodedata.normalize("NFKD", char)
        if (
            len(decomposed) < 2
            or not unicodedata.category(char).startswith("L")
            or not decomposed[0].isalnum()
        ):
            continue
        if len(char.casefold()) != len(char.lower()):  # Greek iota subscripts fold to a letter iota
            continue
        bases = "".join(c for c in decomposed if not unicodedata.category(c).startswith("M"))
        assert fold(char) == fold(bases), f"U+{ord(char):04X}"
        checked += 1
    assert checked > 3000


def test_full_width_and_mathematical_letters_fold_to_ascii() -> None:
    for offset in range(26):
        ascii_letter = chr(ord("a") + offset)
        assert fold(chr(0xFF21 + offset)) == ascii_letter  # FULLWIDTH LATIN CAPITAL LETTER
        assert fold(chr(0xFF41 + offset)) == ascii_letter
        assert fold(chr(0x1D400 + offset)) == ascii_letter  # MATHEMATICAL BOLD CAPITAL


def test_every_letter_and_digit_folds_to_ascii_under_every_fold() -> None:
    for char in _ALL:
        if unicodedata.category(char)[0] in "LN":
            for table in (TRANSLITERATED, *OUTPUT_FOLDS):
                assert char.translate(table).isascii(), f"U+{ord(char):04X}"


def test_case_pairs_fold_alike_when_transliterated() -> None:
    differing = [
        c
        for c in _ALL
        if unicodedata.category(c) == "Lu"
        and c.lower() != c
        and fold(c) != fold(c.lower())
        and len(c.lower()) == 1
    ]
    assert differing == []


def test_tr39_look_alikes_of_ascii_letters_read_as_those_letters() -> None:
    from confusable_homoglyphs.confusables import confusables_data  # noqa: PLC0415

    as_written = OUTPUT_FOLDS[1]
    checked = 0
    for char, entries in confusables_data.items():
        twins = {e["c"] for e in entries if len(e["c"]) == 1 and e["c"].isascii() and e["c"].isalpha()}
        if len(char) != 1 or char.isascii() or len(twins) != 1:
            continue
        twin = twins.pop()
        assert char.translate(as_written) == twin.lower(), f"U+{ord(char):04X}"
        checked += 1
    assert checked > 100


# --- the native fold against the Python one -----------------------------------------------------------


def _words(text: str | None) -> list[str] | None:
    return None if text is None else text.split()


@given(st.lists(st.one_of(st.none(), st.text(max_size=16)), max_size=40))
@settings(max_examples=200, deadline=None)
def test_the_native_fold_equals_the_python_fold(values: list[str | None]) -> None:
    folded = fold_column(pa.array(values, pa.string())).to_pylist()
    assert [_words(v) for v in folded] == [None if v is None else fold(v).split() for v in values]


def test_the_native_fold_equals_the_python_fold_for_every_code_point() -> None:
    texts = [f"a{char}b {char}{char}" for char in _ALL if char not in "\x00"]
    folded = fold_column(pa.array(texts, pa.string())).to_pylist()
    assert [_words(v) for v in folded] == [fold(t).split() for t in texts]
