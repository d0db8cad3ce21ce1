"""The engine's keys: the pseudonymisation root key and the manifest MAC key.

Reports take the root key from the key ring (the current ``pseudonymisation`` epoch, so ``keys rotate
pseudonymisation`` starts new tokens and destroying an epoch's key makes its tokens unlinkable for good).
``policy apply`` on a file runs without a database: its root key of epoch ``n`` is HKDF-SHA-256 of the master
key with its own info string. Key ids are HKDF-derived too, so publishing them reveals nothing about a key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from odeus_compliance.policy.crypto import KeyContext, new_report_salt
from odeus_compliance.policy.model import Linkability, Policy

ROOT_EPOCH = 1
_ROOT_INFO = b"odeus-compliance/pseudonymization-root/v1"
_MANIFEST_INFO = b"odeus-compliance/manifest-mac/v1"
_KEY_ID_INFO = b"odeus-compliance/key-id/v1"


def _hkdf(master_key: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master_key)


def pseudonymization_root_key(master_key: bytes, *, epoch: int = ROOT_EPOCH) -> bytes:
    """The pseudonymisation root key of ``epoch`` (to be replaced by the key ring's wrapped epoch keys)."""
    return _hkdf(master_key, _ROOT_INFO + b"\x00" + str(epoch).encode())


@dataclass(frozen=True, slots=True)
class EngineKeys:
    """Everything secret one run needs. Never printed: keys are excluded from ``repr``."""

    context: KeyContext
    manifest_key: bytes = field(repr=False)
    manifest_key_id: str


def engine_keys(
    master_key: bytes,
    policy: Policy,
    *,
    epoch: int = ROOT_EPOCH,
    root_key: bytes | None = None,
    report_salt: bytes | None = None,
) -> EngineKeys:
    """The keys of one run under ``policy``; ``per_report`` policies get a fresh report salt.

    ``root_key`` is the key ring's key of ``epoch``; without it the root key is derived from the master key.
    """
    if policy.pseudonymization.linkability is Linkability.PER_REPORT and report_salt is None:
        report_salt = new_report_salt()
    context = KeyContext(
        root_key=root_key if root_key is not None else pseudonymization_root_key(master_key, epoch=epoch),
        epoch=epoch,
        policy_domain=policy.pseudonymization.domain,
        report_salt=report_salt,
    )
    manifest_key = _hkdf(master_key, _MANIFEST_INFO)
    key_id = _hkdf(master_key, _KEY_ID_INFO + b"\x00" + _MANIFEST_INFO, 8).hex()
    return EngineKeys(context=context, manifest_key=manifest_key, manifest_key_id=key_id)


def manifest_key(master_key: bytes) -> tuple[bytes, str]:
    """The manifest MAC key and its id (for verifying a manifest later)."""
    return _hkdf(master_key, _MANIFEST_INFO), _hkdf(
        master_key, _KEY_ID_INFO + b"\x00" + _MANIFEST_INFO, 8
    ).hex()
