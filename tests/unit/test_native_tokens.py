"""The native token function (OpenSSL's HMAC), its known answers, and the helpers' loading."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
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

NATIVE = Path(library.__file__).parent


def _expected(key: bytes, values: list[str], *, message_prefix: bytes = b"", epoch: int = 3) -> list[str]:
    return [format_token("u", epoch, hmac_sha256(key, message_prefix + v.encode())) for v in values]


# RFC 4231 section 4: (key, data, HMAC-SHA-256); case 5 is the truncated one, a token is a head anyway
RFC_4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        b"\xaa" * 131,
        (
            b"This is a test using a larger than block-size key and a larger than block-size data. The key"
            b" needs to be hashed before being used by the HMAC algorithm."
        ),
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


@pytest.mark.parametrize(("key", "data", "mac"), RFC_4231)
def test_rfc_4231_known_answers_through_the_token_function(key: bytes, data: bytes, mac: str) -> None:
    whole = "x9_" + base64.b32encode(bytes.fromhex(mac)).decode("ascii").lower()[:51]
    # the message split between the prefix and the value at several points (binary data only as prefix)
    for cut in sorted({0, len(data) // 2, len(data)}):
        try:
            value = data[cut:].decode("utf-8")
        except UnicodeDecodeError:
            continue
        tokens = hmac_tokens(
            pa.array([value], pa.string()), key=key, token_prefix="x9_", chars=51, message_prefix=data[:cut]
        )
        assert tokens.to_pylist() == [whole], cut


def test_the_native_sources_hold_no_hash_function_of_their_own() -> None:
    # the MAC is OpenSSL's: no SHA-256 round constants or compression function in our C
    text = "\n".join(path.read_text() for path in [*NATIVE.glob("*.c"), *NATIVE.glob("*.h")])
    assert "0x428a2f98" not in text.lower()
    assert not re.search(r"compress|sha256rnds|ROTR", text)
    assert "EVP_MAC" in text


@given(
    st.lists(st.text(max_size=90), max_size=40),
    st.binary(min_size=1, max_size=140),  # keys longer than a block are hashed first
    st.sampled_from([b"", b"id\x00", b"a" * 70]),
)
@settings(max_examples=200, deadline=None)
def test_tokens_equal_pythons_hmac(values: list[str], key: bytes, message_prefix: bytes) -> None:
    tokens = hmac_tokens(
        pa.array(values, pa.string()),
        key=key,
        token_prefix="u3_",
        chars=TOKEN_CHARS,
        message_prefix=message_prefix,
    )
    assert tokens.to_pylist() == _expected(key, values, message_prefix=message_prefix)
    macs = [hmac.new(key, message_prefix + v.encode(), hashlib.sha256).digest() for v in values]
    assert tokens.to_pylist() == [format_token("u", 3, mac) for mac in macs]


def test_the_empty_key_is_the_empty_key() -> None:
    # OpenSSL reads a NULL key as "keep the last one": the empty key must still be HMAC's empty key
    got = hmac_tokens(pa.array(["x", ""], pa.string()), key=b"", token_prefix="u3_", chars=TOKEN_CHARS)
    assert got.to_pylist() == _expected(b"", ["x", ""])


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


def test_a_missing_module_is_refused_with_how_to_build_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library, "MODULE", "odeus_compliance.native._not_built")
    with pytest.raises(NativeLibraryError, match=r"not built .*pip install -e"):
        native_library.__wrapped__()


def test_a_library_built_from_other_sources_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library, "source_digest", lambda: "0" * 64)
    with pytest.raises(NativeLibraryError, match="other C sources"):
        native_library.__wrapped__()


def test_the_installed_library_was_built_from_these_sources() -> None:
    sources = sorted([*NATIVE.glob("*.c"), *NATIVE.glob("*.h")], key=lambda path: path.name)
    assert {"hmac_tokens.c", "odeus_native.h"} <= {source.name for source in sources}
    digest = hashlib.sha256(b"".join(source.read_bytes() for source in sources)).hexdigest()
    module = library.importlib.import_module(library.MODULE)
    assert module.ffi.string(module.lib.odeus_native_source()).decode("ascii") == digest


def test_a_call_with_the_wrong_number_of_arguments_is_refused_before_c() -> None:
    with pytest.raises(TypeError, match="takes 5 arguments"):
        native_library().odeus_csv_lines(0, 0, 0)
