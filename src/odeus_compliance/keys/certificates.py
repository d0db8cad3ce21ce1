"""The demo's report-signing PKI: a self-signed CA and an RSA-3072 signing certificate, made by ``keys init``.

Only where no signing key is configured. Both certificates say what they are in their subject
(:data:`DEMO_LABEL`), so nobody mistakes a demo report for a production one. Why this shape:

- RSA, not ECDSA: pyHanko registers the ISO/TS 32002 extension for ECDSA signatures and raises the catalog
  version to PDF 2.0, which PDF/A-3 (based on PDF 1.7) does not allow.
- The CA's private key is thrown away once the signing certificate is issued: nothing more can be issued
  under the demo CA, so a stolen data dir cannot mint a second trusted signer.
- The signing key is stored as encrypted PKCS#8 (mode 0600) under a password derived from the master key
  with HKDF; the key never appears in clear on disk, on stdout or in a log line.
- The three files are written into a temporary folder that is renamed into place, so a crash leaves either
  the complete set or nothing (and ``keys init`` simply runs again).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from odeus_compliance.errors import ConfigurationError

__all__ = [
    "DEMO_LABEL",
    "DEMO_SIGNING_DIR",
    "DemoCertificate",
    "DemoCertificateStatus",
    "demo_paths",
    "ensure_demo_certificate",
    "fingerprint",
    "load_demo_certificate",
    "load_pem_certificates",
]

DEMO_LABEL: Final = "odeus-compliance demo - self-signed, not for production"
DEMO_SIGNING_DIR: Final = "report-signing"
RSA_BITS: Final = 3072
CA_YEARS: Final = 20
SIGNER_YEARS: Final = 10
_KEY_PASSWORD_INFO: Final = b"odeus-compliance/report-signing-key/v1"


@dataclass(frozen=True, slots=True)
class DemoPaths:
    """Where the demo PKI lives in the data dir."""

    folder: Path
    ca_cert: Path
    signer_cert: Path
    signer_key: Path


def demo_paths(data_dir: Path) -> DemoPaths:
    """The demo PKI's files under ``data_dir`` (they may not exist yet)."""
    folder = data_dir / DEMO_SIGNING_DIR
    return DemoPaths(
        folder=folder,
        ca_cert=folder / "demo-ca.pem",
        signer_cert=folder / "demo-signer.pem",
        signer_key=folder / "demo-signer.key.pem",
    )


@dataclass(frozen=True, slots=True)
class DemoCertificateStatus:
    """What :func:`ensure_demo_certificate` found or made (no secret in here)."""

    created: bool
    signer_cert: Path
    ca_cert: Path
    fingerprint: str
    """SHA-256 of the signing certificate's DER, hex with colons (what viewers show)."""


@dataclass(frozen=True, slots=True)
class DemoCertificate:
    """The demo signer, loaded: its private key is excluded from ``repr``."""

    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate
    ca_certificate: x509.Certificate


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 fingerprint of ``certificate``, upper-case hex bytes joined by colons."""
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def _key_password(master_key: bytes) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_PASSWORD_INFO).derive(
        master_key
    )
    return base64.b64encode(derived)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEMO_LABEL),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "odeus-compliance demo report signing"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(now: dt.datetime) -> tuple[x509.Certificate, x509.Certificate, rsa.RSAPrivateKey]:
    """A fresh CA certificate, and a signing certificate with its key; the CA key is dropped here."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    ca_name = _name("odeus-compliance demo CA - not for production")
    start = now - dt.timedelta(minutes=5)  # tolerate a verifier whose clock lags a little
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    signer_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    signer_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("odeus-compliance demo signer - not for production"))
        .issuer_name(ca_name)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=365 * SIGNER_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ca_cert, signer_cert, signer_key


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def ensure_demo_certificate(data_dir: Path, master_key: bytes) -> DemoCertificateStatus:
    """Make the demo CA and signing certificate unless they exist (idempotent; existing ones are kept).

    A folder holding only part of the set (edited by hand) is refused rather than overwritten.
    """
    paths = demo_paths(data_dir)
    if paths.folder.exists():
        loaded = load_demo_certificate(data_dir, master_key)
        return DemoCertificateStatus(
            created=False,
            signer_cert=paths.signer_cert,
            ca_cert=paths.ca_cert,
            fingerprint=fingerprint(loaded.certificate),
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    ca_cert, signer_cert, signer_key = _issue(dt.datetime.now(dt.UTC))
    encrypted_key = signer_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(_key_password(master_key)),
    )
    pem = serialization.Encoding.PEM
    staging = Path(tempfile.mkdtemp(prefix=f".{DEMO_SIGNING_DIR}-", dir=data_dir))
    try:
        _write_private(staging / paths.signer_key.name, encrypted_key)
        (staging / paths.signer_cert.name).write_bytes(
            signer_cert.public_bytes(pem) + ca_cert.public_bytes(pem)
        )
        (staging / paths.ca_cert.name).write_bytes(ca_cert.public_bytes(pem))
        staging.chmod(0o700)
        staging.rename(paths.folder)  # atomic: a second, concurrent init loses here and keeps the first set
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not paths.folder.exists():
            raise
        return ensure_demo_certificate(data_dir, master_key)
    return DemoCertificateStatus(
        created=True,
        signer_cert=paths.signer_cert,
        ca_cert=paths.ca_cert,
        fingerprint=fingerprint(signer_cert),
    )


def load_pem_certificates(path: Path, *, what: str) -> list[x509.Certificate]:
    """Every PEM certificate in ``path``; a missing, unreadable or empty file is a one-line error."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{what} {path} cannot be read ({type(exc).__name__})") from None
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigurationError(f"{what} {path} holds no PEM certificate") from None
    return certificates


def load_demo_certificate(data_dir: Path, master_key: bytes) -> DemoCertificate:
    """The demo signer made by :func:`ensure_demo_certificate`; one-line errors if it is missing or broken."""
    paths = demo_paths(data_dir)
    missing = [p.name for p in (paths.ca_cert, paths.signer_cert, paths.signer_key) if not p.is_file()]
    if missing:
        raise ConfigurationError(
            f"no report-signing key is configured and the demo one in {paths.folder} is incomplete "
            f"(missing {', '.join(missing)}); run 'odeus-compliance keys init' or configure "
            "ODEUS_COMPLIANCE_SIGNING_KEY_FILE and ODEUS_COMPLIANCE_SIGNING_CERT_FILE"
        )
    try:
        key = serialization.load_pem_private_key(
            paths.signer_key.read_bytes(), password=_key_password(master_key)
        )
    except (ValueError, TypeError):
        # a wrong master key and a damaged file look the same to the decoder; say both
        raise ConfigurationError(
            f"the demo report-signing key {paths.signer_key} does not open under this master key "
            "(or is damaged)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError(f"the demo report-signing key {paths.signer_key} is not an RSA key")
    chain = load_pem_certificates(paths.signer_cert, what="the demo signing certificate")
    ca = load_pem_certificates(paths.ca_cert, what="the demo CA certificate")
    if chain[0].public_key() != key.public_key():
        raise ConfigurationError(f"the demo signing certificate {paths.signer_cert} does not match its key")
    return DemoCertificate(private_key=key, certificate=chain[0], ca_certificate=ca[0])
