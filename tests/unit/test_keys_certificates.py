"""The demo report-signing PKI that ``keys init`` makes: labelled, RSA-3072, encrypted at rest, idempotent."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from odeus_compliance.errors import ConfigurationError
from odeus_compliance.keys.certificates import (
    DEMO_LABEL,
    demo_paths,
    ensure_demo_certificate,
    fingerprint,
    load_demo_certificate,
)


@pytest.fixture
def master_key() -> bytes:
    return secrets.token_bytes(32)


def test_the_demo_certificates_say_what_they_are_and_chain(tmp_path: Path, master_key: bytes) -> None:
    status = ensure_demo_certificate(tmp_path, master_key)
    assert status.created
    demo = load_demo_certificate(tmp_path, master_key)
    for certificate in (demo.certificate, demo.ca_certificate):
        organisation = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
        common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert organisation == DEMO_LABEL
        assert "not for production" in str(common_name)
    assert demo.private_key.key_size == 3072
    assert isinstance(demo.certificate.public_key(), rsa.RSAPublicKey)
    demo.certificate.verify_directly_issued_by(demo.ca_certificate)
    assert demo.ca_certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = demo.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.content_commitment
    assert not demo.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert status.fingerprint == fingerprint(demo.certificate)


def test_the_key_is_encrypted_private_and_the_ca_key_is_not_kept(tmp_path: Path, master_key: bytes) -> None:
    ensure_demo_certificate(tmp_path, master_key)
    paths = demo_paths(tmp_path)
    assert sorted(p.name for p in paths.folder.iterdir()) == sorted(
        p.name for p in (paths.ca_cert, paths.signer_cert, paths.signer_key)
    )
    assert stat.S_IMODE(paths.signer_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.folder.stat().st_mode) == 0o700
    key_pem = paths.signer_key.read_bytes()
    assert key_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(key_pem, password=None)
    for public in (paths.ca_cert, paths.signer_cert):
        assert b"PRIVATE KEY" not in public.read_bytes()
    assert not list(tmp_path.glob(".report-signing-*"))  # no staging folder left behind


def test_a_second_run_keeps_the_existing_certificate(tmp_path: Path, master_key: bytes) -> None:
    first = ensure_demo_certificate(tmp_path, master_key)
    paths = demo_paths(tmp_path)
    before = {p.name: p.read_bytes() for p in paths.folder.iterdir()}
    second = ensure_demo_certificate(tmp_path, master_key)
    assert not second.created
    assert second.fingerprint == first.fingerprint
    assert {p.name: p.read_bytes() for p in paths.folder.iterdir()} == before


def test_another_master_key_does_not_open_the_key_and_says_so(tmp_path: Path, master_key: bytes) -> None:
    ensure_demo_certificate(tmp_path, master_key)
    other = secrets.token_bytes(32)
    with pytest.raises(ConfigurationError, match="does not open under this master key") as caught:
        load_demo_certificate(tmp_path, other)
    assert other.hex() not in str(caught.value)
    with pytest.raises(ConfigurationError):
        ensure_demo_certificate(tmp_path, other)  # and it is not silently replaced


def test_an_incomplete_set_is_refused_not_overwritten(tmp_path: Path, master_key: bytes) -> None:
    ensure_demo_certificate(tmp_path, master_key)
    paths = demo_paths(tmp_path)
    paths.signer_key.unlink()
    with pytest.raises(ConfigurationError, match="keys init") as caught:
        ensure_demo_certificate(tmp_path, master_key)
    assert paths.signer_key.name in str(caught.value)
    assert paths.signer_cert.is_file()


def test_a_certificate_that_does_not_match_the_key_is_refused(tmp_path: Path, master_key: bytes) -> None:
    ensure_demo_certificate(tmp_path, master_key)
    elsewhere = tmp_path / "other"
    ensure_demo_certificate(elsewhere, master_key)
    demo_paths(tmp_path).signer_cert.write_bytes(demo_paths(elsewhere).signer_cert.read_bytes())
    with pytest.raises(ConfigurationError, match="does not match"):
        load_demo_certificate(tmp_path, master_key)
