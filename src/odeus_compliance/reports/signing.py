"""PAdES signatures on report PDFs with pyHanko: baseline B-B, or B-T when a time-stamp authority is set.

- RSA only (3072 bits for the demo key): an ECDSA signature makes pyHanko raise the catalog version to
  PDF 2.0, past what PDF/A-3 allows. Keys below 2048 bits are refused.
- SHA-256, SubFilter ``ETSI.CAdES.detached``, an invisible signature field ``ReportSignature``.
- The document metadata is left as the renderer wrote it (see :mod:`odeus_compliance.reports.pdfmeta`), and
  every signed file is re-read: if signing made it less PDF/A than it was, :class:`SigningError` is raised.
- One time-stamp client per TSA URL is kept with the signer (see :meth:`ReportSigner.timestamper`).
- pyHanko's stock ``SimpleSigner`` re-parses the private key for each raw signature (about 110 ms for
  RSA-3072, twice per PDF); :class:`_ParsedKeySigner` keeps the parsed key.
- :func:`sign_pdf` is plain synchronous code that runs its own event loop inside pyHanko: async callers run
  it in a worker thread (``asyncio.to_thread``) so the event loop is never blocked (called inside a
  running loop it still works, see :mod:`odeus_compliance.reports.pyhanko_calls`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import HTTPTimeStamper, TimestampRequestError
from pyhanko_certvalidator.registry import SimpleCertificateStore

from odeus_compliance.errors import ConfigurationError, OdeusComplianceError
from odeus_compliance.keys.certificates import (
    ensure_demo_certificate,
    load_demo_certificate,
    load_pem_certificates,
)
from odeus_compliance.reports.pdfmeta import MetadataKeepingWriter, pdfa_problems, read_pdfa_metadata
from odeus_compliance.reports.pyhanko_calls import call_pyhanko
from odeus_compliance.settings import Settings

__all__ = [
    "NO_SIGNER_CONFIGURED",
    "SIGNATURE_FIELD",
    "ReportSigner",
    "SigningError",
    "load_signer",
    "sign_pdf",
]

SIGNATURE_FIELD: Final = "ReportSignature"
MIN_RSA_BITS: Final = 2048
TSA_TIMEOUT_SECONDS: Final = 20
_REASON: Final = "odeus-compliance usage report: issued and sealed"
# what a TSA round trip raises: refused or dropped connections, HTTP errors, timeouts, a bad reply
_TSA_FAILURES: Final = (TimestampRequestError, aiohttp.ClientError, TimeoutError, OSError)


class SigningError(OdeusComplianceError):
    """A report could not be signed; the message names the reason and never holds a secret."""


class _ParsedKeySigner(signers.SimpleSigner):
    """pyHanko's in-memory signer with the RSA key parsed once (PKCS#1 v1.5, as the signer advertises)."""

    def __init__(self, *, parsed_key: rsa.RSAPrivateKey, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._parsed_key = parsed_key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        if digest_algorithm.lower() != "sha256":
            msg = f"unexpected digest algorithm {digest_algorithm}"
            raise SigningError(msg)
        return self._parsed_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class ReportSigner:
    """The signing key and its certificate chain; ``repr`` shows the subject, never the key."""

    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate = field(repr=False)
    chain: tuple[x509.Certificate, ...] = field(repr=False)
    """Issuer certificates to embed in the signature (intermediates and, usefully, the root)."""
    demo: bool = False
    """Whether this is the self-signed demo signer ``keys init`` made."""
    _pyhanko: signers.SimpleSigner = field(init=False, repr=False, compare=False)
    _timestampers: dict[str, HTTPTimeStamper] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.private_key, rsa.RSAPrivateKey):
            raise ConfigurationError(
                "the report-signing key must be RSA: an ECDSA signature raises the PDF version past PDF/A-3"
            )
        if self.private_key.key_size < MIN_RSA_BITS:
            raise ConfigurationError(f"the report-signing key must have at least {MIN_RSA_BITS} bits")
        if self.certificate.public_key() != self.private_key.public_key():
            raise ConfigurationError("the report-signing certificate does not match the signing key")
        start, end = self.certificate.not_valid_before_utc, self.certificate.not_valid_after_utc
        if not start <= datetime.now(UTC) < end:
            # every report signed with it would fail verification: refuse now, with the dates
            raise ConfigurationError(
                "the report-signing certificate is not valid now "
                f"(valid from {start:%Y-%m-%d} to {end:%Y-%m-%d})"
            )
        key_der = self.private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        signer = _ParsedKeySigner(
            parsed_key=self.private_key,
            signing_cert=asn1_x509.Certificate.load(_der(self.certificate)),
            signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
            cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
                [asn1_x509.Certificate.load(_der(c)) for c in self.chain]
            ),
        )
        object.__setattr__(self, "_pyhanko", signer)
        object.__setattr__(self, "_timestampers", {})

    def timestamper(self, url: str) -> HTTPTimeStamper:
        """One client per TSA URL, kept: it caches the token it fetched to size the signature, so every PDF
        after the first costs one TSA request instead of two."""
        return self._timestampers.setdefault(url, HTTPTimeStamper(url, timeout=TSA_TIMEOUT_SECONDS))

    @property
    def subject(self) -> str:
        """The signing certificate's subject, RFC 4514 text (public information)."""
        return self.certificate.subject.rfc4514_string()

    def __repr__(self) -> str:
        return f"ReportSigner(subject={self.subject!r}, demo={self.demo})"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{what} {path} cannot be read ({type(exc).__name__})") from None


def _from_pkcs12(settings: Settings, path: Path) -> ReportSigner:
    password = settings.signing_pkcs12_password
    data = _read(path, "ODEUS_COMPLIANCE_SIGNING_PKCS12_FILE")
    try:
        key, certificate, extra = pkcs12.load_key_and_certificates(
            data, password.reveal().encode() if password else None
        )
    except (ValueError, TypeError):
        raise ConfigurationError(
            "ODEUS_COMPLIANCE_SIGNING_PKCS12_FILE cannot be opened (wrong password or not PKCS#12)"
        ) from None
    if key is None or certificate is None:
        raise ConfigurationError(
            "ODEUS_COMPLIANCE_SIGNING_PKCS12_FILE must hold a private key and its certificate"
        )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("the report-signing key must be RSA (PDF/A-3 forbids what ECDSA does)")
    return ReportSigner(private_key=key, certificate=certificate, chain=tuple(extra))


def _from_pem(settings: Settings) -> ReportSigner:
    if settings.signing_key_file is None or settings.signing_cert_file is None:
        raise ConfigurationError(
            "set both ODEUS_COMPLIANCE_SIGNING_KEY_FILE and ODEUS_COMPLIANCE_SIGNING_CERT_FILE, or neither"
        )
    data = _read(settings.signing_key_file, "ODEUS_COMPLIANCE_SIGNING_KEY_FILE")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigurationError(
            "ODEUS_COMPLIANCE_SIGNING_KEY_FILE must be an unencrypted PEM private key "
            "(or use a PKCS#12 file with a password)"
        ) from None
    certificates = load_pem_certificates(
        settings.signing_cert_file, what="ODEUS_COMPLIANCE_SIGNING_CERT_FILE"
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("the report-signing key must be RSA (PDF/A-3 forbids what ECDSA does)")
    return ReportSigner(private_key=key, certificate=certificates[0], chain=tuple(certificates[1:]))


NO_SIGNER_CONFIGURED: Final = (
    "no report-signing key is configured (ODEUS_COMPLIANCE_SIGNING_KEY_FILE and "
    "ODEUS_COMPLIANCE_SIGNING_CERT_FILE, or ODEUS_COMPLIANCE_SIGNING_PKCS12_FILE); the self-signed demo "
    "certificate signs outside the demo only with ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE=true (trials)"
)


def load_signer(settings: Settings) -> ReportSigner:
    """The configured signer (PKCS#12, else PEM key + certificate), else the demo one ``keys init`` made.

    The demo signer only where ``settings.demo_certificate_allowed``: a production report signed by a
    certificate that says "not for production" would be worthless, so without a signing key nothing is
    signed. With
    ``settings.demo`` (the ``demo`` command) a missing demo certificate is made here, as ``keys init``
    would; elsewhere its absence is a :class:`ConfigurationError` that says to run ``keys init``.
    """
    if settings.signing_pkcs12_file is not None:
        return _from_pkcs12(settings, settings.signing_pkcs12_file)
    if settings.signing_key_file is not None or settings.signing_cert_file is not None:
        return _from_pem(settings)
    if not settings.demo_certificate_allowed:
        raise ConfigurationError(NO_SIGNER_CONFIGURED)
    if settings.demo:
        ensure_demo_certificate(settings.data_dir, settings.require_master_key())
    demo = load_demo_certificate(settings.data_dir, settings.require_master_key())
    return ReportSigner(
        private_key=demo.private_key, certificate=demo.certificate, chain=(demo.ca_certificate,), demo=True
    )


def sign_pdf(pdf: bytes, signer: ReportSigner, *, tsa_url: str | None) -> bytes:
    """``pdf`` with a PAdES B-B signature appended (B-T with a token from ``tsa_url``); covers the whole file.

    Raises :class:`SigningError` if the PDF cannot be parsed, the time-stamp authority fails, or the signed
    file lost PDF/A properties the input had.
    """
    try:
        before = set(pdfa_problems(read_pdfa_metadata(pdf)))
        writer = MetadataKeepingWriter(io.BytesIO(pdf), strict=False)
    except Exception as exc:  # noqa: BLE001 - any parser failure means "not a PDF we can sign"
        raise SigningError(f"the PDF to sign cannot be read ({type(exc).__name__})") from None
    metadata = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=_REASON,
    )
    timestamper = signer.timestamper(tsa_url) if tsa_url else None
    output = io.BytesIO()
    try:
        call_pyhanko(
            lambda: signers.sign_pdf(
                writer,
                metadata,
                signer=signer._pyhanko,  # noqa: SLF001 - our own dataclass's cached pyHanko signer
                timestamper=timestamper,
                output=output,
            )
        )
    except _TSA_FAILURES as exc:
        raise SigningError(f"the time-stamp authority failed ({type(exc).__name__})") from None
    except Exception as exc:  # noqa: BLE001 - pyHanko and asn1crypto raise many kinds
        raise SigningError(f"signing failed ({type(exc).__name__})") from None
    signed = output.getvalue()
    introduced = [p for p in pdfa_problems(read_pdfa_metadata(signed)) if p not in before]
    if introduced:
        raise SigningError(f"signing broke PDF/A: {'; '.join(introduced)}")
    return signed
