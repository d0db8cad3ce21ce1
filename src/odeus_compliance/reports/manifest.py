"""The report's embedded ``manifest.json``: where the report came from, and the hash of every attachment.

The manifest is an attachment itself, so the PAdES signature covers it; it lists every *other* attachment by
name, media type, size and SHA-256. An auditor with only ``pdfdetach`` and ``sha256sum`` can then check the
attachments against it (``docs/report-verification.md``), and :func:`attachment_problems` is the same check
in code, used by the verifier.

Canonical JSON (UTF-8, sorted keys, no whitespace, no NaN) so the same inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol, runtime_checkable

__all__ = [
    "FORMAT",
    "MANIFEST_NAME",
    "AttachmentLike",
    "DigestedAttachment",
    "attachment_problems",
    "build_report_manifest",
    "parse_report_manifest",
]

FORMAT: Final = "odeus-compliance-report-manifest/1"
MANIFEST_NAME: Final = "manifest.json"
_MAX_LISTED: Final = 64  # a report has a handful of attachments; more is a malformed manifest


class AttachmentLike(Protocol):
    """An attachment given by its bytes."""

    @property
    def name(self) -> str: ...
    @property
    def data(self) -> bytes: ...
    @property
    def media_type(self) -> str: ...


@runtime_checkable
class DigestedAttachment(Protocol):
    """An attachment given by its size and SHA-256 (``reports.render.DeflatedAttachment``: the dataset,
    whose digest the policy engine took while writing it, so the worker never reads it whole)."""

    @property
    def name(self) -> str: ...
    @property
    def media_type(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...


def _size_and_sha256(attachment: AttachmentLike | DigestedAttachment) -> tuple[int, str]:
    if isinstance(attachment, DigestedAttachment):
        return attachment.size, attachment.sha256
    return len(attachment.data), hashlib.sha256(attachment.data).hexdigest()


def _canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _rfc3339_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        msg = "generated_at must be timezone-aware"
        raise ValueError(msg)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_report_manifest(
    *,
    report_id: str,
    period: Mapping[str, str | bool],
    policy: Mapping[str, str],
    upstream_export: Mapping[str, Any],
    transformation_manifest: Mapping[str, Any],
    attachments: Sequence[AttachmentLike | DigestedAttachment],
    template: Mapping[str, str],
    software: Mapping[str, str],
    audit_checkpoint: str | None,
    generated_at: datetime,
) -> bytes:
    """The canonical ``manifest.json`` bytes; ``attachments`` are all the report's attachments but this one.

    ``period``: e.g. ``{"from", "to", "timezone", "partial"}`` (and ``data_until`` if partial);
    ``policy``: ``{"name", "version", "hash"}``; ``upstream_export``: ``{"type", "sha256", "rows",
    "bytes"}`` of the raw export as received.
    """
    names = [a.name for a in attachments]
    if MANIFEST_NAME in names:
        msg = f"{MANIFEST_NAME} cannot list itself"
        raise ValueError(msg)
    if len(set(names)) != len(names):
        msg = "attachment names must be unique"
        raise ValueError(msg)
    listed = [
        {"name": a.name, "media_type": a.media_type, "bytes": size, "sha256": sha256}
        for a in sorted(attachments, key=lambda a: a.name)
        for size, sha256 in [_size_and_sha256(a)]
    ]
    return _canonical(
        {
            "format": FORMAT,
            "report_id": report_id,
            "generated_at": _rfc3339_utc(generated_at),
            "period": dict(period),
            "policy": dict(policy),
            "upstream_export": dict(upstream_export),
            "transformation_manifest": dict(transformation_manifest),
            "template": dict(template),
            "software": dict(software),
            "audit_checkpoint": audit_checkpoint,
            "attachments": listed,
        }
    )


def parse_report_manifest(data: bytes) -> dict[str, Any]:
    """The manifest as a dict, or ``ValueError`` (a short, data-free reason) if it is not one of ours."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        msg = f"{MANIFEST_NAME} is not UTF-8 JSON"
        raise ValueError(msg) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        msg = f"{MANIFEST_NAME} is not in the format {FORMAT}"
        raise ValueError(msg)
    listed = document.get("attachments")
    if not isinstance(listed, list) or len(listed) > _MAX_LISTED:
        msg = f"{MANIFEST_NAME} has no valid attachment list"
        raise ValueError(msg)
    for entry in listed:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("name"), str)
            and isinstance(entry.get("sha256"), str)
            and isinstance(entry.get("bytes"), int)
        ):
            msg = f"{MANIFEST_NAME} has a malformed attachment entry"
            raise ValueError(msg)
    return document


def _shown(name: str) -> str:
    # attachment names are ours ("data.csv"); an attacker's could be anything: print it tamed and short
    return json.dumps(name[:64], ensure_ascii=True)


def attachment_problems(
    manifest: Mapping[str, Any], attachments: Mapping[str, bytes], *, damaged: Collection[str] = ()
) -> list[str]:
    """How ``attachments`` (name -> bytes, the manifest itself excluded) differ from what ``manifest`` lists.

    Every listed attachment must be present with the listed size and SHA-256, and no other may exist;
    ``damaged`` names attachments that are present but do not decode. The problems name attachments, never
    their content. Empty means they match.
    """
    problems: list[str] = []
    listed: dict[str, Mapping[str, Any]] = {}
    for entry in manifest["attachments"]:
        if entry["name"] in listed or entry["name"] == MANIFEST_NAME:
            problems.append(f"{_shown(entry['name'])} is listed twice")
        listed[entry["name"]] = entry
    for name, entry in sorted(listed.items()):
        if name in damaged:
            problems.append(f"{_shown(name)} is damaged: its data does not decode")
            continue
        if name not in attachments:
            problems.append(f"{_shown(name)} is listed but missing")
            continue
        data = attachments[name]
        if len(data) != entry["bytes"]:
            problems.append(f"{_shown(name)} has {len(data)} bytes, the manifest says {entry['bytes']}")
        elif hashlib.sha256(data).hexdigest() != entry["sha256"].lower():
            problems.append(f"{_shown(name)} does not match its SHA-256 in the manifest")
    problems.extend(
        f"{_shown(name)} is attached but not listed in the manifest"
        for name in sorted({*attachments, *damaged})
        if name not in listed
    )
    return problems
