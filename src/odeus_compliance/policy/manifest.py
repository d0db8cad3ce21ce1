"""The transformation manifest: what the engine did to every column, with a MAC over all of it.

JSON with sorted keys and no whitespace (the canonical form the MAC is computed over), ``"mac"`` left out:
``mac = HMAC-SHA-256(manifest key, canonical JSON of every other member)``, hex. The manifest key is derived
from the master key (purpose ``manifest-mac``, see :mod:`odeus_compliance.policy.keys`) and named by
``mac_key_id``; no key appears in a manifest. Shares are decimal text, never floats, so the canonical form
is exact.
"""

from __future__ import annotations

import hmac
import json
from hashlib import sha256
from typing import Any

FORMAT = "odeus-compliance-manifest/1"


class ManifestError(ValueError):
    """A manifest that is not well-formed or whose MAC does not verify."""


def canonical(data: dict[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def seal(body: dict[str, Any], *, key: bytes, key_id: str) -> dict[str, Any]:
    """The manifest with ``format``, ``mac_key_id`` and its ``mac``."""
    unsigned = {**body, "format": FORMAT, "mac_algorithm": "HMAC-SHA-256", "mac_key_id": key_id}
    mac = hmac.new(key, canonical(unsigned), sha256).hexdigest()
    return {**unsigned, "mac": mac}


def verify(manifest: dict[str, Any], *, key: bytes) -> None:
    """Raise :class:`ManifestError` unless the MAC over the manifest verifies under ``key``."""
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("mac"), str):
        msg = "not an odeus-compliance manifest"
        raise ManifestError(msg)
    unsigned = {name: value for name, value in manifest.items() if name != "mac"}
    expected = hmac.new(key, canonical(unsigned), sha256).hexdigest()
    if not hmac.compare_digest(expected, str(manifest["mac"])):
        msg = "the manifest's MAC does not verify: it was changed, or another key made it"
        raise ManifestError(msg)


def dumps(manifest: dict[str, Any]) -> bytes:
    """The manifest file's bytes (canonical JSON and a line end)."""
    return canonical(manifest) + b"\n"


def loads(data: bytes) -> dict[str, Any]:
    """A manifest read back (not yet verified)."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ManifestError("the manifest is not JSON") from None
    if not isinstance(value, dict):
        raise ManifestError("the manifest is not a JSON object")
    return value
