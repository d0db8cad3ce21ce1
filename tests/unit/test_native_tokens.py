"""The native token function: SHA-256 in both implementations, HMAC tokens, and the library's loading."""

from __future__ import annotations

import ctypes
import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odeus_compliance.native import library
from odeus_compliance.native.library import NativeLibraryError, native_library
from odeus_compliance.policy.bulktokens import hmac_tokens
from odeus_compliance.policy.crypto import TOKEN_CHARS, format_token, hmac_sha256


def _native_sha256(message: bytes, *, portable: bool) -> bytes:
    out = ctypes.create_string_buffer(32)
    native_library().odeus_sha256(message, len(message), out, int(portable))
    return out.raw


def _expected(key: bytes, values: list[str], *, message_prefix: bytes = b"", epoch: int = 3) -> list[str]:
    return [format_token("u", epoch, hmac_sha256(key, message_prefix + v.encode())) for v in values]


@pytest.mark.parametrize("portable", [True, False])
def test_sha256_equals_hashlib_at_every_length_around_the_block_boundaries(portable: bool) -> None:
    for size in [*range(200), 1000, 4095, 4096, 4097]:
        message = bytes((i * 31 + size) % 256 for i in range(size))
        assert _native_sha256(message, portable=portable) == hashlib.sha256(message).digest(), size


@given(st.binary(max_size=600))
@settings(max_examples=200, deadline=None)
def test_sha256_implementations_equal_hashlib(message: bytes) -> None:
    expected = hashlib.sha256(message).digest()
    assert _native_sha256(message, portable=True) == expected
    assert _native_sha256(message, portable=False) == expected


def test_the_sha_extensions_are_used_where_the_cpu_has_them() -> None:
    flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").split()
    assert native_library().odeus_native_sha_extensions() == int("sha_ni" in flags)


def test_rfc_4231_case_2_through_the_token_function() -> None:
    # RFC 4231 test case 2: key "Jefe", "what do ya want for nothing?"; the token is the MAC's base32 head
    mac = bytes.fromhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    for portable in (True, False):
        tokens = hmac_tokens(
            pa.array(["ya want for nothing?"], pa.string()),
            key=b"Jefe",
            token_prefix="x9_",
            chars=TOKEN_CHARS,
            message_prefix=b"what do ",
            portable=portable,
        )
        assert tokens.to_pylist() == [format_token("x", 9, mac)]


@given(
    st.lists(st.text(max_size=90), max_size=40),
    st.binary(min_size=1, max_size=140),  # keys longer than a block are hashed first
    st.sampled_from([b"", b"id\x00", b"a" * 70]),
    st.booleans(),
)
@settings(max_examples=120, deadline=None)
def test_tokens_equal_format_token_of_the_hmac(
    values: list[str], key: bytes, message_prefix: bytes, portable: bool
) -> None:
    tokens = hmac_tokens(
        pa.array(values, pa.string()),
        key=key,
        token_prefix="u3_",
        chars=TOKEN_CHARS,
        message_prefix=message_prefix,
        portable=portable,
    )
    assert tokens.to_pylist() == _expected(key, values, message_prefix=message_prefix)


def test_a_sliced_array_is_read_from_its_own_offset() -> None:
    key = bytes(range(32))
    values = [f"user-{i}" for i in range(50)]
    whole = pa.array(values, pa.string())
    got = hmac_tokens(whole.slice(7, 20), key=key, token_prefix="u3_", chars=TOKEN_CHARS)
    assert got.to_pylist() == _expected(key, values[7:27])


def test_empty_input_and_empty_strings() -> None:
    key = b"k" * 32
    empty = hmac_tokens(pa.array([], pa.string()), key=key, token_prefix="u3_", chars=TOKEN_CHARS)
    assert empty.to_pylist() == []
    blank = hmac_tokens(pa.array(["", ""], pa.string()), key=key, token_prefix="u3_", chars=TOKEN_CHARS)
    assert blank.to_pylist() == _expected(key, ["", ""])


def test_bad_input_is_refused_before_native_code_sees_it() -> None:
    key = b"k" * 32
    with pytest.raises(ValueError, match="not nulls"):
        hmac_tokens(pa.array(["a", None], pa.string()), key=key, token_prefix="", chars=TOKEN_CHARS)
    with pytest.raises(TypeError, match="large_string"):
        hmac_tokens(pa.array(["a"], pa.large_string()), key=key, token_prefix="", chars=TOKEN_CHARS)  # type: ignore[arg-type]
    for chars in (0, 52):
        with pytest.raises(ValueError, match="1 to 51"):
            hmac_tokens(pa.array(["a"], pa.string()), key=key, token_prefix="", chars=chars)


def test_threads_calling_at_once_each_get_their_own_tokens() -> None:
    keys = [bytes([i]) * 32 for i in range(4)]
    values = [f"id-{i}" for i in range(3000)]
    array = pa.array(values, pa.string())
    sizes = [1, 79, 120, 3000, 6, 2500] * 4

    def one(job: tuple[int, int]) -> bool:
        key, size = keys[job[0] % 4], job[1]
        got = hmac_tokens(array.slice(0, size), key=key, token_prefix="u3_", chars=TOKEN_CHARS)
        return got.to_pylist() == _expected(key, values[:size])

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(one, enumerate(sizes)))


def test_a_missing_library_is_refused_with_how_to_build_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(library, "LIBRARY_PATH", tmp_path / "_odeus_native.so")
    with pytest.raises(NativeLibraryError, match=r"not built .*pip install -e"):
        native_library.__wrapped__()


def test_a_library_built_from_other_sources_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library, "source_digest", lambda: "0" * 64)
    with pytest.raises(NativeLibraryError, match="other C sources"):
        native_library.__wrapped__()


def test_the_installed_library_was_built_from_these_sources() -> None:
    folder = Path(library.__file__).parent
    sources = sorted([*folder.glob("*.c"), *folder.glob("*.h")], key=lambda path: path.name)
    assert {"hmac_tokens.c", "arrow_view.h"} <= {source.name for source in sources}
    digest = hashlib.sha256(b"".join(source.read_bytes() for source in sources)).hexdigest()
    assert native_library().odeus_native_source().decode("ascii") == digest
