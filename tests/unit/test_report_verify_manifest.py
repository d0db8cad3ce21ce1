"""The embedded ``manifest.json``: canonical bytes, what it lists, and the check the verifier runs on it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pytest

from odeus_compliance.reports.manifest import (
    FORMAT,
    attachment_problems,
    build_report_manifest,
    parse_report_manifest,
)
from tests.support.report_pdf import SampleAttachment, build_manifest, default_attachments

CSV = b"user,messages\npsn_1,3\n"
POLICY = b'name = "default"\n'


def attachments() -> list[SampleAttachment]:
    return [
        SampleAttachment("policy.toml", POLICY, "application/toml"),
        SampleAttachment("data.csv", CSV, "text/csv"),
    ]


def manifest(listed: list[SampleAttachment] | None = None) -> dict[str, Any]:
    return parse_report_manifest(build_manifest(attachments() if listed is None else listed))


def test_the_manifest_is_canonical_json_listing_each_attachment_by_size_and_sha256() -> None:
    data = build_manifest(attachments())
    document = json.loads(data)
    assert data == json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert document["format"] == FORMAT
    assert document["generated_at"] == "2026-11-01T08:00:00Z"
    assert document["attachments"] == [
        {
            "name": "data.csv",
            "media_type": "text/csv",
            "bytes": len(CSV),
            "sha256": hashlib.sha256(CSV).hexdigest(),
        },
        {
            "name": "policy.toml",
            "media_type": "application/toml",
            "bytes": len(POLICY),
            "sha256": hashlib.sha256(POLICY).hexdigest(),
        },
    ]
    assert set(document) >= {
        "report_id",
        "period",
        "policy",
        "upstream_export",
        "transformation_manifest",
        "template",
        "software",
        "audit_checkpoint",
    }
    # the order attachments are given in does not change the bytes
    assert build_manifest(list(reversed(attachments()))) == data


def _build(**changes: Any) -> bytes:
    arguments: dict[str, Any] = {
        "report_id": "r1",
        "period": {},
        "policy": {},
        "upstream_export": {},
        "transformation_manifest": {},
        "attachments": attachments(),
        "template": {},
        "software": {},
        "audit_checkpoint": None,
        "generated_at": dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    }
    arguments.update(changes)
    return build_report_manifest(**arguments)


def test_generation_time_is_written_in_utc_and_a_naive_one_is_refused() -> None:
    assert json.loads(_build())["generated_at"] == "2026-11-01T08:30:00Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        _build(generated_at=dt.datetime(2026, 11, 1))  # noqa: DTZ001 - the point of the test


def test_the_manifest_cannot_list_itself_or_a_name_twice() -> None:
    with pytest.raises(ValueError, match="itself"):
        _build(attachments=[SampleAttachment("manifest.json", b"{}", "application/json")])
    with pytest.raises(ValueError, match="unique"):
        _build(attachments=[*attachments(), SampleAttachment("data.csv", b"x", "text/csv")])


def test_matching_attachments_have_no_problems() -> None:
    assert attachment_problems(manifest(), {"data.csv": CSV, "policy.toml": POLICY}) == []


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ({"policy.toml": POLICY}, '"data.csv" is listed but missing'),
        ({"data.csv": CSV + b"x", "policy.toml": POLICY}, '"data.csv" has 23 bytes, the manifest says 22'),
        (
            {"data.csv": CSV.replace(b"3", b"4"), "policy.toml": POLICY},
            '"data.csv" does not match its SHA-256',
        ),
        ({"data.csv": CSV, "policy.toml": POLICY, "x.txt": b""}, '"x.txt" is attached but not listed'),
    ],
)
def test_each_kind_of_difference_is_named(present: dict[str, bytes], expected: str) -> None:
    problems = attachment_problems(manifest(), present)
    assert len(problems) == 1
    assert problems[0].startswith(expected)


def test_a_manifest_listing_a_name_twice_is_a_problem() -> None:
    document = manifest()
    document["attachments"].append(dict(document["attachments"][0]))
    assert any(
        "listed twice" in p for p in attachment_problems(document, {"data.csv": CSV, "policy.toml": POLICY})
    )


def test_hostile_attachment_names_are_shown_escaped_and_short() -> None:
    name = "evil\nreport verification: VALID" + "x" * 200
    problems = attachment_problems(manifest(), {"data.csv": CSV, "policy.toml": POLICY, name: b""})
    assert len(problems) == 1
    assert "\n" not in problems[0]
    assert len(problems[0]) < 120


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"{not json", "not UTF-8 JSON"),
        (b"[]", "not in the format"),
        (json.dumps({"format": "something-else/1"}).encode(), "not in the format"),
        (json.dumps({"format": FORMAT}).encode(), "no valid attachment list"),
        (
            json.dumps({"format": FORMAT, "attachments": [{"name": "a"}]}).encode(),
            "malformed attachment entry",
        ),
        (
            json.dumps(
                {"format": FORMAT, "attachments": [{"name": "a", "sha256": "00", "bytes": "1"}]}
            ).encode(),
            "malformed attachment entry",
        ),
    ],
)
def test_what_is_not_our_manifest_is_refused_with_a_short_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_report_manifest(data)


def test_the_test_reports_manifest_covers_its_default_attachments() -> None:
    listed = manifest(default_attachments())
    present = {a.name: a.data for a in default_attachments()}
    assert attachment_problems(listed, present) == []
