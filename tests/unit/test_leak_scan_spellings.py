"""The leak scan finds a name however an attacker spells it, and its folding agrees with Unicode's data."""

from __future__ import annotations

import itertools
import re
import sys
import unicodedata
from collections.abc import Callable

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odeus_compliance.policy import leakscan
from odeus_compliance.policy.fold_native import fold_column, other_spellings_column
from odeus_compliance.policy.leakscan import (
    MIN_CHARS,
    MIN_DIGITS,
    MIN_SURNAME,
    SUBSTRING_TEXT,
    BidiControlFound,
    LeakFound,
    LeakScanner,
    identifying_keys,
    output_keys,
)
from odeus_compliance.policy.text_fold import (
    OUTPUT_FOLDS,
    TRANSLITERATED,
    fold,
    fold_keeping_punctuation,
    has_bidi_control,
    other_spellings,
    skeleton,
)

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
    keys = set(identifying_keys(pa.array(identifying, pa.string()), skeletons=True).to_pylist())
    return bool(keys & output_keys(text))


def _scanned(identifying: list[str], text: str) -> bool:
    """Whether the scanner refuses ``text`` as a kept column value."""
    scanner = LeakScanner()
    scanner.add_identifying(pa.array(identifying, pa.string()))
    scanner.observe_column("department", pa.array([text], pa.string()), row_offset=0)
    try:
        scanner.verify()
    except LeakFound:
        return True
    return False


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


_VICTIM = ["Anna Meier", "anna.meier@corp.example", _ID]


@pytest.mark.parametrize(
    ("identifying", "text"),
    [
        (_VICTIM, "Team MElER"),  # small L for capital I
        (_VICTIM, "ME|ER"),
        (_VICTIM, "ME\u01c0ER"),  # LATIN LETTER DENTAL CLICK
        (_VICTIM, "ME\u2223ER"),  # DIVIDES
        (_VICTIM, "ME1ER"),
        (_VICTIM, "usr_O218cO2O4ac1"),  # letter O for zero
        (_VICTIM, "USR_O2I8CO2O4ACl"),
        (["123456789"], "l23456789"),
        (["Hermann Schmidt"], "Schrnidt"),  # rn for m
        (["Edward Vowell"], "Vovvell"),  # vv for w
        (["Claudia Dodd"], "Claudia Dodcl"),  # cl for d (Dodd alone is shorter than a surname key)
    ],
)
def test_ascii_look_alikes_are_read_alike(identifying: list[str], text: str) -> None:
    assert _found(identifying, text)
    assert _scanned(identifying, text)


@pytest.mark.parametrize(
    "text", ["AnnaMeier2024", "Meier01 GmbH", "Meier1", "teamannameier", "2024annameier", "TEAMANNAMEIERX"]
)
def test_digits_attached_and_run_together_words_are_found(text: str) -> None:
    assert _scanned(_VICTIM, text)


def test_a_count_map_key_with_digits_attached_is_found() -> None:
    scanner = LeakScanner()
    scanner.add_identifying(pa.array(_VICTIM, pa.string()))
    scanner.observe_keys("model_to_messages_total", {"gpt-4o": 0, "AnnaMeier2024": 3}, row_offset=10)
    with pytest.raises(LeakFound, match=r"column 'model_to_messages_total' \(data row 14\)"):
        scanner.verify()


@pytest.mark.parametrize(
    ("identifying", "text"),
    [
        (["Maria Berg"], "M.a.r.i.a.B.e.r.g"),
        (["Maria Berg"], "M.a.r.i.a B.e.r.g"),
        ([_ID], "u-s-r-0-2-1-8-c-0-2-0-4-a-c-1"),
        ([_ID], "usr 0 2 1 8 c 0 2 0 4 a c 1"),
        (["Hermann Schmidt"], "s c h r n i d t"),  # spelt out and a look-alike
    ],
)
def test_values_spelt_letter_by_letter_over_many_words_are_found(identifying: list[str], text: str) -> None:
    assert _scanned(identifying, text)


@pytest.mark.parametrize(
    ("identifying", "text"),
    [
        ([unicodedata.normalize("NFD", "Jürgen Müller")], "Mueller"),
        ([unicodedata.normalize("NFD", "Jürgen Müller")], "Juergen Mueller"),
        (["Jörg Düse"], "Joerg Duse"),
        (["Jörg Düse"], "Jorg Duese"),
        (["Søren Sørensen"], "Soerensen"),
        (["Åsa Åkesson"], "Aakesson"),
        (["Đorđe Đorđević"], "Djordjevic"),
        (["ÅSA ÅKESSON"], "aakesson"),
        (["Meier, Anna"], "Anna Meier"),
        (["Meier, Anna"], "Meier"),
        (["Müller, Jürgen"], "Jürgen Müller"),
        (["Müller, Jürgen"], "Mueller"),
        (["MEIER ANNA"], "Anna Meier"),
        (["Anna van der Berg"], "van der Berg, Anna"),
        (["Anna Meier Jr."], "Meier"),
        (["Anna Meier Jr."], "Anna Meier"),
        (["Anna Meier-Schmidt"], "Meier"),
        (["Anna Meier-Schmidt"], "Schmidt"),
        (["Maria García López"], "García"),
        (["Anna O'Brien"], "OBrien"),
        (["Anna O\u2019Brien"], "OBrien"),
        (["Zoë O\u2019Brien"], "OBrien"),
        (["AnnaMeier@example.com"], "Meier"),
        (["anna.meier2@example.com"], "Meier"),
        (["jürgen.müller@example.com"], "Mueller"),  # an address outside ASCII is read as one too
    ],
)
def test_other_spellings_orders_and_parts_of_a_value_are_found(identifying: list[str], text: str) -> None:
    assert _scanned(identifying, text)


def test_a_name_spelt_in_tag_characters_is_found() -> None:
    tagged = "x" + "".join(chr(0xE0000 + ord(c)) for c in "Anna Meier")
    assert _scanned(_VICTIM, tagged)


@pytest.mark.parametrize(
    ("identifying", "text"),
    [
        (["Claude Monet", "Monet, Claude"], "Claude 3.5 Sonnet"),  # a first name alone is no key
        (["Claude Monet"], "claude-3-5-sonnet-20241022"),
        (["Anna Meier"], "Hameiers Annapolis"),  # keys of 4-5 characters only as whole words
        (["Anna Meier"], "Team Meiers"),
        (["Ilse Lind"], "Research | Development"),
        (["Maria Berg"], "Marian Bergstrom"),
    ],
)
def test_first_names_and_short_keys_inside_words_are_not_hits(identifying: list[str], text: str) -> None:
    assert not _scanned(identifying, text)


def test_a_long_text_is_read_by_whole_words_only() -> None:
    long_text = "notes " * 100 + "teamannameier"
    assert len(long_text) > SUBSTRING_TEXT
    assert not _scanned(_VICTIM, long_text)  # the documented bound: no substrings past SUBSTRING_TEXT
    assert _scanned(_VICTIM, "notes " * 100 + "team anna meier")


@pytest.mark.parametrize("guess", [1, 3])
def test_keys_are_the_same_however_many_values_are_read_at_once(
    monkeypatch: pytest.MonkeyPatch, guess: int
) -> None:
    values = pa.array(["Anna Meier", None, "Jörg Düse", "anna.meier+x@corp.example", "", "usr_1"] * 5)
    whole = identifying_keys(values, skeletons=True).to_pylist()
    monkeypatch.setattr(leakscan, "_KEY_BYTES_GUESS", guess)  # room for a few values (or none) per round
    assert identifying_keys(values, skeletons=True).to_pylist() == whole
    fresh = pa.array(values.slice(6).to_pylist(), pa.string())  # the same values, not a slice
    assert identifying_keys(values.slice(6), skeletons=True).to_pylist() == (
        identifying_keys(fresh, skeletons=True).to_pylist()
    )


_RESPELLABLE = st.text(alphabet="äöüÄÖÜøØåÅđĐouοΟυΥόύ aeé-", max_size=12)


@given(st.lists(st.tuples(_RESPELLABLE, st.sampled_from(["NFC", "NFD"])), max_size=20))
@settings(max_examples=200, deadline=None)
def test_other_spellings_in_arrow_equal_the_python_ones(values: list[tuple[str, str]]) -> None:
    written = [unicodedata.normalize(form, value) for value, form in values]
    native = other_spellings_column(pa.array(written, pa.string())).to_pylist()
    expected = [fold(spelling) for value in written for spelling in other_spellings(value)]
    assert sorted(v.split() for v in native if v is not None) == sorted(e.split() for e in expected)


def test_other_spellings_vary_each_letter_and_stop_at_eight() -> None:
    assert sorted(fold(s) for s in other_spellings("Jörg Düse")) == [
        "joerg duese",
        "joerg duse",
        "jorg duese",
    ]
    assert len(other_spellings("äöüäöü")) == 7  # with the transliteration: 8


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


_SUFFIXES = {"jr", "sr", "ii", "iii", "iv", "phd", "md"}


def _joined(text: str) -> str:
    return "".join(re.findall(r"[a-z0-9]+", text.lower()))


def _counts(key: str) -> bool:
    return len(key) >= MIN_CHARS and (not key.isdigit() or len(key) >= MIN_DIGITS)


def _name_words(name: str, *, camel: bool) -> tuple[list[str], int]:
    """A name's words (suffixes dropped) and how many come before its first comma (0: none or all)."""
    spans = [(m.start(), m.group()) for m in re.finditer(r"[A-Za-z0-9]+(?:'[A-Za-z0-9]+)*", name)]
    if camel:
        split: list[tuple[int, str]] = []
        for at, word in spans:
            cuts = [0, *(m.start() for m in re.finditer(r"(?<=[a-z])(?=[A-Z])", word)), len(word)]
            split += [(at + begin, word[begin:end]) for begin, end in itertools.pairwise(cuts)]
        spans = split
    words = [_joined(word) for _, word in spans]
    while len(words) > 1 and words[-1] in _SUFFIXES:
        words.pop()
    comma = name.find(",")
    before_comma = sum(1 for at, _ in spans[: len(words)] if at < comma) if comma >= 0 else 0
    return words, before_comma if before_comma < len(words) else 0


def _name_keys(words: list[str], before_comma: int) -> list[str]:
    """Surnames (each also without trailing digits) and rotations, in the order the rule makes them."""
    surnames = words[:before_comma] if before_comma else words[1:]
    if before_comma > 1:
        surnames = ["".join(surnames), *surnames]
    keys: list[str] = []
    for word in surnames:
        if len(word) >= MIN_SURNAME:
            keys.append(word)
            letters = word.rstrip("0123456789")
            if letters != word and len(letters) >= MIN_SURNAME and letters.isalpha():
                keys.append(letters)
    firsts = list(range(len(words))) if len(words) <= 6 else [len(words) - 1]
    if len(words) > 6 and before_comma:
        firsts.append(before_comma)
    return keys + ["".join(words[first:] + words[:first]) for first in firsts]


def _reference_keys(value: str, *, skeletons: bool = False) -> list[str]:
    whole = _joined(value)
    placeholders = {"anonymous", "anonymised", "anonymized", "anon", "redacted", "hidden", "na", "unknown"}
    if not _counts(whole) or whole in placeholders:
        return []
    candidates = [whole]
    name, camel = value, False
    if "@" in value:
        local = value[: value.rindex("@")]
        name, camel = local.split("+", 1)[0], True
        candidates += [_joined(local)] + ([_joined(name)] if name != local else [])
    words, before_comma = _name_words(name, camel=camel)
    if len(words) >= 2:
        candidates += _name_keys(words, before_comma)
    keys: list[str] = []
    for candidate in candidates:
        key = skeleton(candidate) if skeletons and _counts(candidate) else candidate
        if _counts(candidate) and len(key) >= MIN_CHARS and key not in keys:
            keys.append(key)
    return keys


_NAME_PARTS = ["Anna", "Meier", "O'Brien", "van", "der", "Jr.", "PhD", "iii", "meier2", "Clive", "RnVv10i"]


@given(
    st.lists(
        st.one_of(
            st.from_regex(r"[A-Za-z0-9 _',.@+\-]{0,24}", fullmatch=True),
            st.lists(
                st.tuples(st.sampled_from(_NAME_PARTS), st.sampled_from([" ", ", ", ".", "@", "+", "", "-"])),
                max_size=8,
            ).map(lambda parts: "".join(word + separator for word, separator in parts)),
        ),
        max_size=30,
    ),
    st.booleans(),
)
@settings(max_examples=400, deadline=None)
def test_native_keys_follow_the_rule(values: list[str], skeletons: bool) -> None:
    produced = identifying_keys(pa.array(values, pa.string()), skeletons=skeletons).to_pylist()
    assert produced == [key for value in values for key in _reference_keys(value, skeletons=skeletons)]


# --- the fold against Unicode's data (the character database compiled into Python) ----------------------

_ALL = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]


_TAGS = [chr(c) for c in range(0xE0020, 0xE007F)]  # tag characters spelling printable ASCII


def test_every_format_character_and_combining_mark_vanishes() -> None:
    vanishing = [c for c in _ALL if unicodedata.category(c) in {"Cf", "Mn", "Me"} and c not in _TAGS]
    assert len(vanishing) > 2000
    for table in OUTPUT_FOLDS:
        assert [c for c in vanishing if c.translate(table) != ""] == []
    spacing_marks = [c for c in _ALL if unicodedata.category(c) == "Mc"]
    assert [c for c in spacing_marks if fold(c) != ""] == []  # as written, one may look like a letter


def test_tag_characters_read_as_the_ascii_they_spell() -> None:
    assert all(unicodedata.category(c) == "Cf" for c in _TAGS)
    for table in OUTPUT_FOLDS:
        assert [c.translate(table) for c in _TAGS] == [fold(chr(ord(c) - 0xE0000)) or " " for c in _TAGS]
    assert fold("\U000e0001\U000e007f") == ""  # the language tag and the cancel tag spell nothing


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


@given(
    st.lists(st.one_of(st.none(), st.text(alphabet=st.characters(codec="utf-8"), max_size=16)), max_size=40)
)
@settings(max_examples=200, deadline=None)
def test_the_native_fold_keeping_punctuation_equals_the_python_one(values: list[str | None]) -> None:
    values = [None if v is None else v + ",@+'\u2019" for v in values]
    folded = fold_column(pa.array(values, pa.string()), keep_punctuation=True).to_pylist()
    assert [_words(v) for v in folded] == [
        None if v is None else fold_keeping_punctuation(v).split() for v in values
    ]
