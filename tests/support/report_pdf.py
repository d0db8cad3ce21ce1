"""Small PDF/A-3b reports made with WeasyPrint directly, for the signing and verification tests.

Not the real report (``reports.render`` builds that): a one-page document with the same kind of
attachments (``data.csv``, ``policy.toml`` and a ``manifest.json`` built by the real manifest builder), so
signing and verification are tested on what WeasyPrint really produces.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import weasyprint

from odeus_compliance.reports.manifest import MANIFEST_NAME, build_report_manifest

__all__ = ["REPORT_ID", "SampleAttachment", "build_manifest", "default_attachments", "render_test_pdf"]

REPORT_ID = "rep-2026-10-test"
_FIXED = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class SampleAttachment:
    """Has the fields of ``reports.render.Attachment``."""

    name: str
    data: bytes
    media_type: str
    description: str = "test attachment"


def default_attachments() -> list[SampleAttachment]:
    """A pseudonymised-looking dataset and a policy file."""
    return [
        SampleAttachment(
            "data.csv", b"user,department,messages\npsn_7f3a,Sales,12\npsn_19bc,Legal,4\n", "text/csv"
        ),
        SampleAttachment("policy.toml", b'[policy]\nname = "default"\nversion = "1"\n', "application/toml"),
    ]


def build_manifest(attachments: Sequence[SampleAttachment], *, report_id: str = REPORT_ID) -> bytes:
    """The real manifest builder, fed with plausible provenance."""
    return build_report_manifest(
        report_id=report_id,
        period={
            "from": "2026-10-01T00:00:00+02:00",
            "to": "2026-11-01T00:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
        policy={"name": "default", "version": "1", "hash": "sha256:" + "ab" * 32},
        upstream_export={"type": "users", "sha256": "cd" * 32, "rows": 2, "bytes": 321},
        transformation_manifest={"format": "odeus-compliance-transformation/1", "columns": {"email": "drop"}},
        attachments=attachments,
        template={"name": "monthly", "version": "test"},
        software={"name": "odeus-compliance", "version": "0.1.0"},
        audit_checkpoint=None,
        generated_at=_FIXED,
    )


def render_test_pdf(attachments: Sequence[SampleAttachment], manifest: bytes | None) -> bytes:
    """A PDF/A-3b page with ``attachments`` and, unless None, ``manifest`` as ``manifest.json``."""
    html = weasyprint.HTML(
        string="<html><head><title>Usage report (test)</title></head>"
        "<body><h1>AI usage report</h1><p>Test content.</p></body></html>"
    )
    embedded = [
        weasyprint.Attachment(
            string=a.data,
            name=a.name,
            description=a.description,
            created=_FIXED,
            modified=_FIXED,
            relationship="Data" if a.name.endswith(".csv") else "Source",
        )
        for a in attachments
    ]
    if manifest is not None:
        embedded.append(
            weasyprint.Attachment(
                string=manifest,
                name=MANIFEST_NAME,
                description="provenance and hashes",
                created=_FIXED,
                modified=_FIXED,
                relationship="Source",
            )
        )
    with warnings.catch_warnings():
        # WeasyPrint 70 opens its sRGB ICC profile for the PDF/A output intent and never closes it
        warnings.simplefilter("ignore", ResourceWarning)
        pdf: bytes = html.write_pdf(pdf_variant="pdf/a-3b", attachments=embedded)
    return pdf
