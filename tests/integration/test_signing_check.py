"""The signing check behind ``/health/ready``, ``init`` and ``serve``: a trial signature verified against
the trust anchors, so each way a report would fail to be signed (or to verify) shows before one is asked for.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from odeus_compliance.app import create_app
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.reports.signing_check import (
    DEMO_MISSING,
    NOT_CONFIGURED,
    NOT_TRUSTED,
    UNUSABLE,
    check_signing,
)
from odeus_compliance.settings import Settings
from tests.support.server import run_server
from tests.support.tsa import SigningPki, make_test_pki


@pytest.fixture(scope="module")
def pki() -> SigningPki:
    return make_test_pki("Signing check")


@pytest.fixture
def signing_files(tmp_path: Path, pki: SigningPki) -> tuple[Path, Path, Path]:
    key, cert = pki.signer.write_pem(tmp_path, "signer", chain=(pki.root.certificate,))
    anchors = tmp_path / "ca.pem"
    anchors.write_bytes(pki.root.certificate.public_bytes(serialization.Encoding.PEM))
    return key, cert, anchors


def test_a_configured_key_that_chains_to_the_anchors_is_ready(
    tmp_path: Path, signing_files: tuple[Path, Path, Path]
) -> None:
    key, cert, anchors = signing_files
    settings = Settings.for_tests(
        tmp_path / "data",
        signing_key_file=key,
        signing_cert_file=cert,
        trust_anchors_file=anchors,
        allow_demo_certificate=False,
    )
    check = check_signing(settings)
    assert check.ok, check.detail
    assert not check.demo
    assert "SHA-256" in check.detail
    assert "Signing check" not in check.detail  # the fingerprint, never the subject


def test_a_configured_key_without_its_trust_anchor_is_not_ready(
    tmp_path: Path, signing_files: tuple[Path, Path, Path]
) -> None:
    """The most likely production mistake: every report would be signed and then fail its own check."""
    key, cert, _anchors = signing_files
    settings = Settings.for_tests(tmp_path / "data", signing_key_file=key, signing_cert_file=cert)
    check = check_signing(settings)
    assert (check.ok, check.reason) == (False, NOT_TRUSTED)
    assert "ODEUS_COMPLIANCE_TRUST_ANCHORS_FILE" in check.detail


def test_a_key_file_that_cannot_be_read_is_not_ready(
    tmp_path: Path, signing_files: tuple[Path, Path, Path]
) -> None:
    _key, cert, anchors = signing_files
    settings = Settings.for_tests(
        tmp_path / "data",
        signing_key_file=tmp_path / "missing.key.pem",
        signing_cert_file=cert,
        trust_anchors_file=anchors,
    )
    check = check_signing(settings)
    assert (check.ok, check.reason) == (False, UNUSABLE)
    assert "ODEUS_COMPLIANCE_SIGNING_KEY_FILE" in check.detail


def test_the_demo_certificate_only_where_allowed_and_made(tmp_path: Path) -> None:
    allowed = Settings.for_tests(tmp_path / "data")
    assert check_signing(allowed).reason == DEMO_MISSING
    ensure_demo_certificate(allowed.data_dir, allowed.require_master_key())
    check = check_signing(allowed)
    assert check.ok, check.detail
    assert check.demo
    refused = check_signing(Settings.for_tests(allowed.data_dir, allow_demo_certificate=False))
    assert (refused.ok, refused.reason) == (False, NOT_CONFIGURED)


def test_ready_is_503_naming_the_signing_check(
    migrated_settings: Settings, signing_files: tuple[Path, Path, Path]
) -> None:
    key, cert, _anchors = signing_files
    settings = Settings.for_tests(
        migrated_settings.data_dir,
        database_url=migrated_settings.database_url,
        signing_key_file=key,
        signing_cert_file=cert,
    )
    with run_server(create_app(settings)) as base_url:
        ready = httpx.get(f"{base_url}/health/ready", timeout=30)
    assert ready.status_code == 503, ready.text
    body = ready.json()
    assert body["check"] == "signing"
    assert body["detail"] == f"Reports cannot be signed: {NOT_TRUSTED}."
    assert str(key.parent) not in ready.text
