"""``GET /api/v1/policies``: the policy files in force, with their hashes.

For now the hash is SHA-256 of the file's bytes; the policy engine will replace it with the hash of the
canonical policy (so reformatting a file does not change it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import msgspec
from litestar import get
from litestar.di import NamedDependency

from odeus_compliance.security import ALL_ROLES, requires_role
from odeus_compliance.settings import Settings

__all__ = ["PolicyFile", "PolicyList", "list_policies"]


class PolicyFile(msgspec.Struct, frozen=True):
    """One policy file."""

    name: str
    """The policy's name (file name without ``.toml``), as used in report requests."""
    sha256: str
    """SHA-256 of the file, hex."""
    size_bytes: int
    """The file's size."""


class PolicyList(msgspec.Struct, frozen=True):
    """The policies in the configured policy folder."""

    policies: list[PolicyFile]
    """Sorted by name."""


def _scan(policy_dir: Path) -> list[PolicyFile]:
    if not policy_dir.is_dir():
        return []
    files = []
    for path in sorted(policy_dir.glob("*.toml")):
        data = path.read_bytes()
        files.append(
            PolicyFile(name=path.stem, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
        )
    return files


@get(
    "/api/v1/policies",
    operation_id="listPolicies",
    tags=["policies"],
    opt=requires_role(*ALL_ROLES),
    sync_to_thread=True,
)
def list_policies(settings: NamedDependency[Settings]) -> PolicyList:
    """The policy files found in the policy folder, each with its SHA-256."""
    return PolicyList(policies=_scan(settings.policy_dir))
