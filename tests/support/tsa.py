"""A test PKI and a real RFC 3161 time-stamp responder over loopback HTTP, for PAdES B-T tests.

The PKI: a root CA (RSA-3072) that issues a document-signing certificate and a TSA certificate (critical
``timeStamping`` extended key usage, as RFC 3161 requires). The responder is our own small HTTP server: it
reads a ``TimeStampReq`` (``application/timestamp-query``), has pyHanko's ``DummyTimeStamper`` make the
token, and answers ``application/timestamp-reply``, exactly what a production TSA does on the wire. It can
also be told to fail, for the bad path.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

__all__ = ["Issued", "SigningPki", "TsaServer", "make_test_pki", "run_tsa"]

_BITS = 3072


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey = field(repr=False)

    def write_pem(
        self, folder: Path, stem: str, *, chain: tuple[x509.Certificate, ...] = ()
    ) -> tuple[Path, Path]:
        """Write ``stem.key.pem`` (unencrypted, 0600) and ``stem.pem`` (certificate + ``chain``)."""
        key_path, cert_path = folder / f"{stem}.key.pem", folder / f"{stem}.pem"
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_path.chmod(0o600)
        pem = serialization.Encoding.PEM
        cert_path.write_bytes(b"".join(c.public_bytes(pem) for c in (self.certificate, *chain)))
        return key_path, cert_path


@dataclass(frozen=True)
class SigningPki:
    """A root CA with a document signer and a TSA under it."""

    root: Issued
    signer: Issued
    tsa: Issued


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "odeus-compliance tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=sign,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _issue(
    subject: str, issuer: Issued | None, *, ca: bool, eku: x509.ObjectIdentifier | None = None
) -> Issued:
    key = rsa.generate_private_key(public_exponent=65537, key_size=_BITS)
    now = dt.datetime.now(dt.UTC)
    issuer_name = issuer.certificate.subject if issuer else _name(subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(_key_usage(sign=not ca, ca=ca), critical=True)
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=True)
    signing_key = issuer.key if issuer else key
    return Issued(certificate=builder.sign(signing_key, hashes.SHA256()), key=key)


def make_test_pki(name: str = "Test") -> SigningPki:
    """A fresh root, signer and TSA (a few hundred ms of RSA key generation)."""
    root = _issue(f"{name} Root CA", None, ca=True)
    signer = _issue(f"{name} Report Signer", root, ca=False)
    tsa = _issue(f"{name} TSA", root, ca=False, eku=ExtendedKeyUsageOID.TIME_STAMPING)
    return SigningPki(root=root, signer=signer, tsa=tsa)


def _asn1_cert(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


@dataclass
class TsaServer:
    """A running responder: its URL, how many requests it answered, and a switch to make it fail."""

    url: str
    requests: int = 0
    fail: bool = False


@contextmanager
def run_tsa(pki: SigningPki) -> Iterator[TsaServer]:
    """Serve RFC 3161 on ``http://127.0.0.1:<free port>/tsa`` until the block ends."""
    key_der = pki.tsa.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    stamper = DummyTimeStamper(
        tsa_cert=_asn1_cert(pki.tsa.certificate),
        tsa_key=asn1_keys.PrivateKeyInfo.load(key_der),
        certs_to_embed=SimpleCertificateStore.from_certs([_asn1_cert(pki.root.certificate)]),  # type: ignore[no-untyped-call]
    )
    state = TsaServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.requests += 1
            if state.fail or self.headers.get("Content-Type") != "application/timestamp-query":
                self.send_error(500 if state.fail else 415)
                return
            response = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(response)))
            self.end_headers()
            self.wfile.write(response)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/tsa"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
