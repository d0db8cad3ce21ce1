"""Tokens for a whole column at once: HMAC-SHA-256 and base32 of every value in one native call.

The per-value work cannot be vectorised by Arrow; in C (``native/hmac_tokens.c``, the MAC from OpenSSL's
libcrypto) it runs without the GIL, beside the engine's other threads (figures in bench/policy). With
``chars`` = TOKEN_CHARS every token equals :func:`odeus_compliance.policy.crypto.format_token` of
:func:`odeus_compliance.policy.crypto.hmac_sha256` of ``message_prefix + value``; tests check it.
"""

from __future__ import annotations

from typing import Any, cast

import pyarrow as pa

from odeus_compliance.native.library import native_library, string_buffers

_OFFSET_LIMIT = 2**31 - 1  # Arrow's string arrays have 32-bit offsets
_MAX_CHARS = 51  # base32 characters of a whole SHA-256 MAC


def hmac_tokens(
    values: pa.StringArray,
    *,
    key: bytes,
    token_prefix: str,
    chars: int,
    message_prefix: bytes = b"",
) -> pa.StringArray:
    """``token_prefix`` + the first ``chars`` base32 characters (lower case) of
    HMAC-SHA-256(key, message_prefix + UTF-8 value), for every value (no nulls) in order."""
    array: Any = values
    if array.type != pa.string():
        msg = f"tokens are made of strings, not {array.type}"
        raise TypeError(msg)
    if array.null_count:
        msg = "tokens are made of values, not nulls"
        raise ValueError(msg)
    prefix = token_prefix.encode("utf-8")
    if not 1 <= chars <= _MAX_CHARS:
        msg = f"a token has 1 to {_MAX_CHARS} characters"
        raise ValueError(msg)
    if len(array) * (len(prefix) + chars) >= _OFFSET_LIMIT:
        msg = "too many tokens for one call: their text must stay under 2 GiB"
        raise ValueError(msg)
    return cast("pa.StringArray", _tokens(array, key, message_prefix, prefix, chars=chars))


def _tokens(array: Any, key: bytes, message_prefix: bytes, prefix: bytes, *, chars: int) -> Any:
    count = len(array)
    if count == 0:
        return pa.array([], pa.string())
    width = len(prefix) + chars
    out_data = pa.allocate_buffer(count * width)
    out_offsets = pa.allocate_buffer((count + 1) * 4)
    cells = string_buffers(array)
    status = native_library().odeus_hmac_tokens(
        key, len(key), message_prefix, len(message_prefix),
        cells.offsets, cells.data, count,
        prefix, len(prefix), chars,
        out_data.address, out_offsets.address,
    )  # fmt: skip
    if status != 0:  # pragma: no cover - the arguments are in range; -2 is OpenSSL out of memory
        msg = f"the native token function failed ({status})"
        raise RuntimeError(msg)
    return pa.StringArray.from_buffers(count, out_offsets, out_data)
