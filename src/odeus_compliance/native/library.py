"""Loads the native helpers' shared library once per process and declares its functions' signatures.

A missing library, or one built from another version of the C sources (an editable install whose sources
changed since), is refused with how to rebuild it: running stale native code would silently produce wrong
pseudonyms.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

_HERE = Path(__file__).resolve().parent
LIBRARY_PATH = _HERE / "_odeus_native.so"
_REBUILD = "rebuild it with `pip install -e .` (scripts/setup does)"

c_bytes = ctypes.c_char_p
c_size = ctypes.c_size_t
c_address = ctypes.c_void_p


@dataclass(frozen=True, slots=True)
class StringBuffers:
    """Where an Arrow string array's buffers are, for native code (0 for an absent buffer)."""

    offsets: int  # at the array's own first offset
    data: int
    validity: int
    bit_offset: int  # the array's first bit in ``validity``
    data_size: int


def string_buffers(array: Any) -> StringBuffers:
    """The buffers of ``array`` (type ``string``); the caller keeps the array alive while they are used."""
    if array.type != pa.string():
        msg = f"expected strings, not {array.type}"
        raise TypeError(msg)
    validity, offsets, data = array.buffers()
    return StringBuffers(
        offsets=offsets.address + 4 * array.offset,
        data=data.address if data is not None else 0,
        validity=validity.address if validity is not None and array.null_count else 0,
        bit_offset=array.offset,
        data_size=data.size if data is not None else 0,
    )


class NativeLibraryError(RuntimeError):
    """The native helpers are missing or were built from other sources."""


def source_digest() -> str | None:
    """SHA-256 over the C sources and headers beside this module (in name order), as the build hook
    computes it."""
    sources = sorted([*_HERE.glob("*.c"), *_HERE.glob("*.h")], key=lambda path: path.name)
    if not sources:
        return None  # an installed wheel need not carry them
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()


@functools.cache
def native_library() -> ctypes.CDLL:
    """The loaded library (ctypes releases the GIL around each call into it)."""
    if not LIBRARY_PATH.is_file():
        msg = f"the native helpers are not built ({LIBRARY_PATH.name} is missing): {_REBUILD}"
        raise NativeLibraryError(msg)
    library = ctypes.CDLL(str(LIBRARY_PATH))
    library.odeus_native_source.restype = ctypes.c_char_p
    library.odeus_native_source.argtypes = []
    built_from = library.odeus_native_source().decode("ascii")
    expected = source_digest()
    if expected is not None and built_from != expected:
        msg = f"the native helpers were built from other C sources than those installed: {_REBUILD}"
        raise NativeLibraryError(msg)
    library.odeus_native_sha_extensions.restype = ctypes.c_int
    library.odeus_native_sha_extensions.argtypes = []
    library.odeus_sha256.restype = None
    library.odeus_sha256.argtypes = [c_bytes, c_size, ctypes.c_char_p, ctypes.c_int]
    library.odeus_hmac_tokens.restype = ctypes.c_int
    library.odeus_hmac_tokens.argtypes = [
        c_bytes, c_size,  # key
        c_bytes, c_size,  # message prefix
        c_address, c_address, ctypes.c_int64,  # offsets, data, count
        c_bytes, c_size, ctypes.c_int,  # token prefix, characters
        c_address, c_address,  # output data, output offsets
        ctypes.c_int,  # 1: portable SHA-256 even where the CPU has SHA extensions
    ]  # fmt: skip
    library.odeus_count_maps_scan.restype = ctypes.c_int64
    library.odeus_count_maps_scan.argtypes = [
        c_address, c_address, c_address, ctypes.c_int64, ctypes.c_int64, c_address,
    ]  # fmt: skip
    library.odeus_count_maps_keys.restype = ctypes.c_int
    library.odeus_count_maps_keys.argtypes = [
        c_address,
        c_address,
        ctypes.c_int64,
        c_address,
        c_address,
        c_address,
    ]
    library.odeus_count_maps_build.restype = ctypes.c_int64
    library.odeus_count_maps_build.argtypes = [
        c_address, c_address, ctypes.c_int64,  # cells
        c_address, c_address, c_address,  # pairs per cell, key index per pair, rank per key
        c_address, c_address, ctypes.c_int,  # mapped keys by rank, csv
        c_address, c_address, c_address,  # first row per key, output data, output offsets
    ]  # fmt: skip
    library.odeus_csv_lines.restype = ctypes.c_int64
    library.odeus_csv_lines.argtypes = [c_address, ctypes.c_int64, ctypes.c_int64, c_address, c_address]
    library.odeus_word_forms.restype = ctypes.c_int64
    library.odeus_word_forms.argtypes = [
        c_address, c_address, c_address, ctypes.c_int64, ctypes.c_int64,  # values
        ctypes.c_int64, ctypes.c_int64,  # minimum characters, minimum digits
        c_address, c_address, ctypes.c_int64,  # placeholders
        c_address, c_address, c_address,  # flags, output data, output offsets
    ]  # fmt: skip
    return library
