"""A dataset deflated where it was written is embedded as it is: the PDF holds exactly the given zlib stream,
with the plain file's size and MD5 in its ``/Params``, and poppler's ``pdfdetach`` inflates it to the
dataset byte for byte."""

from __future__ import annotations

import hashlib
import io
import subprocess
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from odeus_compliance.policy.loader import load_policy
from odeus_compliance.reports.content import ReportContent, build_content
from odeus_compliance.reports.manifest import MANIFEST_NAME, build_report_manifest
from odeus_compliance.reports.render import AnyAttachment, Attachment, DeflatedAttachment, render_pdf
from odeus_compliance.reports.verify import verify_pdf
from tests.support.reportdata import POLICIES, TEMPLATES, meta_for, run_policy, simulator_export

pytestmark = pytest.mark.slow


def _embedded_files(pdf: bytes) -> dict[str, Any]:
    """File name -> (file specification, embedded file stream), read through the catalog's ``/AF``."""
    reader = PdfFileReader(io.BytesIO(pdf))
    found = {}
    for reference in reader.root["/AF"]:
        spec = reference.get_object()
        found[str(spec["/UF"])] = (spec, spec["/EF"]["/F"].get_object())
    return found


def _content(tmp_path: Path) -> tuple[ReportContent, Path]:
    policy = load_policy(POLICIES / "default.toml")
    run = run_policy(policy, simulator_export(tmp_path / "raw.csv", users=40, byok=True), tmp_path)
    content = build_content(
        dataset_csv=run.dataset, manifest=run.manifest, policy=policy, meta=meta_for(policy)
    )
    return content, run.dataset


def _deflated(name: str, plain: bytes, packed: bytes) -> DeflatedAttachment:
    return DeflatedAttachment(
        name=name,
        deflated=packed,
        size=len(plain),
        md5=hashlib.md5(plain, usedforsecurity=False).hexdigest(),
        sha256=hashlib.sha256(plain).hexdigest(),
        media_type="text/csv",
        description="Pseudonymised dataset",
    )


def test_a_deflated_dataset_is_embedded_as_given_and_inflates_to_the_dataset(tmp_path: Path) -> None:
    policy_path = POLICIES / "default.toml"
    content, dataset = _content(tmp_path)
    plain = dataset.read_bytes()
    packed = zlib.compress(plain, 6)  # not the renderer's own level: a re-compression would differ
    assert packed != zlib.compress(plain, 1)
    attachments: list[AnyAttachment] = [
        _deflated("data.csv", plain, packed),
        Attachment("policy.toml", policy_path.read_bytes(), "application/toml", "The policy in force"),
    ]
    pdf = render_pdf(content, template_dir=TEMPLATES, attachments=attachments)

    files = _embedded_files(pdf)
    assert sorted(files) == ["data.csv", "policy.toml"]
    spec, stream = files["data.csv"]
    assert stream.encoded_data == packed
    assert stream["/Filter"] == "/FlateDecode"
    assert stream["/Subtype"] == "/text/csv"
    assert int(stream["/Params"]["/Size"]) == len(plain)
    assert stream["/Params"]["/CheckSum"].original_bytes == hashlib.md5(plain, usedforsecurity=False).digest()
    assert spec["/AFRelationship"] == "/Data"
    assert files["policy.toml"][0]["/AFRelationship"] == "/Source"
    assert b"odeus-compliance deflated attachment" not in pdf  # the placeholder is gone

    source, out = tmp_path / "report.pdf", tmp_path / "out"
    source.write_bytes(pdf)
    out.mkdir()
    subprocess.run(["pdfdetach", "-saveall", "-o", str(out), str(source)], check=True, timeout=60)
    assert (out / "data.csv").read_bytes() == plain
    assert (out / "policy.toml").read_bytes() == policy_path.read_bytes()


def test_a_deflated_copy_that_is_not_the_dataset_fails_the_manifest_check(tmp_path: Path) -> None:
    content, dataset = _content(tmp_path)
    plain = dataset.read_bytes()
    other = plain.replace(b"\n", b"\r", 1)  # same length, other bytes
    dataset_attachment = _deflated("data.csv", plain, zlib.compress(other, 1))  # facts of the dataset
    manifest = build_report_manifest(
        report_id="rpt_0001",
        period={"from": "2026-10-01", "to": "2026-11-01", "timezone": "Europe/Berlin"},
        policy={"name": "default", "version": "1", "hash": "x"},
        upstream_export={},
        transformation_manifest={},
        attachments=[dataset_attachment],
        template={},
        software={},
        audit_checkpoint=None,
        generated_at=datetime(2026, 11, 2, tzinfo=UTC),
    )
    pdf = render_pdf(
        content,
        template_dir=TEMPLATES,
        attachments=[dataset_attachment, Attachment(MANIFEST_NAME, manifest, "application/json", "manifest")],
    )

    result = verify_pdf(pdf, anchors=())

    (check,) = [c for c in result.checks if c.name == "manifest"]
    assert not check.ok
    assert "data.csv" in check.detail
    assert "SHA-256" in check.detail
