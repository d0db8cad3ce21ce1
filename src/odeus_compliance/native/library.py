"""Loads the native helpers' extension module once per process and refuses a stale or missing one.

The functions' signatures live only in ``odeus_native.h``; the build compiles cffi's binding against it.
:class:`NativeLibrary` passes Arrow buffer addresses (ints, 0 for none) and ``bytes`` to the pointer
parameters that header declares, so callers need no cffi. A module built from other C sources (an editable
install whose sources changed since) is refused with how to rebuild it: stale native code would silently
produce wrong pseudonyms.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

_HERE = Path(__file__).resolve().parent
MODULE = "odeus_compliance.native._odeus_native"
_REBUILD = "rebuild them with `pip install -e .` (scripts/setup does)"


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


class NativeLibrary:
    """The helpers as Python callables: ``library.odeus_csv_lines(...)`` with ints for addresses."""

    def __init__(self, module: Any) -> None:
        self._ffi = module.ffi
        self._lib = module.lib

    def __getattr__(self, name: str) -> Callable[..., Any]:
        function = getattr(self._lib, name)
        parameters = self._ffi.typeof(function).args
        ffi = self._ffi

        def call(*arguments: Any) -> Any:
            if len(arguments) != len(parameters):
                msg = f"{name} takes {len(parameters)} arguments, not {len(arguments)}"
                raise TypeError(msg)
            converted = [
                _pointer(ffi, parameter, argument) if parameter.kind == "pointer" else argument
                for parameter, argument in zip(parameters, arguments, strict=True)
            ]
            return function(*converted)

        call.__name__ = name
        setattr(self, name, call)  # built once per function
        return call


def _pointer(ffi: Any, parameter: Any, argument: Any) -> Any:
    if isinstance(argument, int):
        return ffi.cast(parameter, argument)
    if isinstance(argument, bytes):
        return ffi.from_buffer(parameter, argument)
    return argument


@functools.cache
def native_library() -> NativeLibrary:
    """The loaded helpers (each call releases the GIL while it runs)."""
    try:
        module = importlib.import_module(MODULE)
    except ImportError as error:
        msg = f"the native helpers are not built ({MODULE} cannot be imported): {_REBUILD}"
        raise NativeLibraryError(msg) from error
    library = NativeLibrary(module)
    built_from = module.ffi.string(module.lib.odeus_native_source()).decode("ascii")
    expected = source_digest()
    if expected is not None and built_from != expected:
        msg = f"the native helpers were built from other C sources than those installed: {_REBUILD}"
        raise NativeLibraryError(msg)
    return library
