"""Large attachments, deflated in a thread while WeasyPrint lays out the pages, land intact and in place.

Two attachments above :data:`EARLY_DEFLATE_BYTES` of the same length but different bytes (so a match by
length alone would swap them), one below it, all read back with poppler's ``pdfdetach``.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from odeus_compliance.policy.loader import load_policy
from odeus_compliance.reports.content import build_content
from odeus_compliance.reports.render import EARLY_DEFLATE_BYTES, Attachment, render_pdf
from tests.support.reportdata import POLICIES, TEMPLATES, meta_for, run_policy, simulator_export

pytestmark = pytest.mark.slow


def _csv_like(seed: int, size: int) -> bytes:
    """Compressible but seed-specific CSV-ish bytes of exactly ``size`` bytes."""
    rng = random.Random(seed)
    lines = []
    total = 0
    while total < size:
        channel = rng.choice(["chat", "agents", "projects"])
        line = f"u_{rng.getrandbits(40):010x},{channel},{rng.randrange(999)}\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode("ascii")[:size]


def test_large_attachments_are_embedded_byte_for_byte_each_under_its_own_name(tmp_path: Path) -> None:
    policy_path = POLICIES / "default.toml"
    policy = load_policy(policy_path)
    run = run_policy(policy, simulator_export(tmp_path / "raw.csv", users=40, byok=False), tmp_path)
    content = build_content(
        dataset_csv=run.dataset, manifest=run.manifest, policy=policy, meta=meta_for(policy)
    )
    size = EARLY_DEFLATE_BYTES + 4096
    first, second = _csv_like(1, size), _csv_like(2, size)
    assert first != second
    small = policy_path.read_bytes()
    assert len(small) < EARLY_DEFLATE_BYTES
    attachments = [
        Attachment("first.csv", first, "text/csv", "first"),
        Attachment("policy.toml", small, "application/toml", "policy"),
        Attachment("second.csv", second, "text/csv", "second"),
    ]
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render_pdf(content, template_dir=TEMPLATES, attachments=attachments))

    assert pdf.stat().st_size < 2 * size  # both large files are stored deflated
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["pdfdetach", "-saveall", "-o", str(out), str(pdf)], check=True, timeout=60)
    assert (out / "first.csv").read_bytes() == first
    assert (out / "second.csv").read_bytes() == second
    assert (out / "policy.toml").read_bytes() == small
