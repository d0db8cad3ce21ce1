"""Signing report PDFs: PAdES B-B with the demo certificate, B-T against a loopback RFC 3161 responder.

Checked with poppler's ``pdfsig`` (NSS, an implementation that is not ours), ``pdfdetach`` and ``pdfinfo``;
the PDF/A identification and Info/XMP consistency are read back from the signed file.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers

from odeus_compliance.errors import ConfigurationError
from odeus_compliance.keys.certificates import demo_paths, ensure_demo_certificate
from odeus_compliance.reports.manifest import MANIFEST_NAME
from odeus_compliance.reports.pdfmeta import pdfa_problems, read_pdfa_metadata
from odeus_compliance.reports.signing import ReportSigner, SigningError, load_signer, sign_pdf
from odeus_compliance.reports.verify import trust_anchors, verify_pdf
from odeus_compliance.settings import Secret, Settings
from tests.support.report_pdf import build_manifest, default_attachments, render_test_pdf
from tests.support.tsa import SigningPki, make_test_pki, run_tsa


@pytest.fixture(scope="module")
def unsigned_pdf() -> bytes:
    attachments = default_attachments()
    return render_test_pdf(attachments, build_manifest(attachments))


@pytest.fixture(scope="module")
def pki() -> SigningPki:
    return make_test_pki()


@pytest.fixture
def demo_settings(tmp_path: Path) -> Settings:
    settings = Settings.for_tests(tmp_path / "data")
    ensure_demo_certificate(settings.data_dir, settings.require_master_key())
    return settings


@pytest.fixture
def pki_settings(tmp_path: Path, pki: SigningPki) -> Settings:
    """Settings with a configured PEM signer and the test root as the trust anchor."""
    key_file, cert_file = pki.signer.write_pem(tmp_path, "signer", chain=(pki.root.certificate,))
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(pki.root.certificate.public_bytes(serialization.Encoding.PEM))
    return Settings.for_tests(
        tmp_path / "data", signing_key_file=key_file, signing_cert_file=cert_file, trust_anchors_file=anchors
    )


def run(*args: str | Path) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def nss_db(folder: Path, ca_pem: Path) -> Path:
    """An NSS database trusting ``ca_pem`` for signatures (the S/MIME trust bit pdfsig needs)."""
    folder.mkdir()
    run("certutil", "-N", "-d", f"sql:{folder}", "--empty-password")
    run("certutil", "-A", "-d", f"sql:{folder}", "-n", "report CA", "-t", ",C,", "-i", ca_pem)
    return folder


@pytest.fixture
def signed_demo(tmp_path: Path, demo_settings: Settings, unsigned_pdf: bytes) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(sign_pdf(unsigned_pdf, load_signer(demo_settings), tsa_url=None))
    return path


def test_pdfsig_finds_a_valid_pades_signature_over_the_whole_file(signed_demo: Path) -> None:
    out = run("pdfsig", signed_demo)
    assert "Signature Field Name: ReportSignature" in out
    assert "Signature Type: ETSI.CAdES.detached" in out
    assert "Signing Hash Algorithm: SHA-256" in out
    assert "Total document signed" in out
    assert "Signature Validation: Signature is Valid." in out
    assert "not for production" in out  # the demo certificate says what it is
    assert "Certificate issuer isn't Trusted." in out  # no NSS database trusts the demo CA yet


def test_pdfsig_trusts_the_certificate_when_the_demo_ca_is_in_its_nss_database(
    tmp_path: Path, demo_settings: Settings, signed_demo: Path
) -> None:
    db = nss_db(tmp_path / "nss", demo_paths(demo_settings.data_dir).ca_cert)
    out = run("pdfsig", "-nssdir", f"sql:{db}", signed_demo)
    assert "Signature Validation: Signature is Valid." in out
    assert "Certificate Validation: Certificate is Trusted." in out


def test_pdfsig_does_not_trust_a_ca_other_than_the_signers(
    tmp_path: Path, pki: SigningPki, signed_demo: Path
) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(pki.root.certificate.public_bytes(serialization.Encoding.PEM))
    out = run("pdfsig", "-nssdir", f"sql:{nss_db(tmp_path / 'nss', other)}", signed_demo)
    assert "Certificate is Trusted." not in out


def test_pdfdetach_lists_the_attachments_and_they_match_the_manifest(
    tmp_path: Path, signed_demo: Path
) -> None:
    listing = run("pdfdetach", "-list", signed_demo).splitlines()
    assert listing[0] == "3 embedded files"
    assert sorted(line.split(": ", 1)[1] for line in listing[1:]) == [
        "data.csv",
        MANIFEST_NAME,
        "policy.toml",
    ]
    out = tmp_path / "detached"
    out.mkdir()
    run("pdfdetach", "-saveall", "-o", out, signed_demo)
    manifest = json.loads((out / MANIFEST_NAME).read_bytes())
    assert [a["name"] for a in manifest["attachments"]] == ["data.csv", "policy.toml"]
    for entry in manifest["attachments"]:
        data = (out / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["bytes"]


def test_the_signed_file_stays_pdfa_3b_with_consistent_metadata(
    signed_demo: Path, unsigned_pdf: bytes
) -> None:
    signed = signed_demo.read_bytes()
    assert signed.startswith(unsigned_pdf)  # an incremental update: the rendered bytes are untouched
    meta = read_pdfa_metadata(signed)
    assert (meta.pdfaid_part, meta.pdfaid_conformance) == ("3", "B")
    assert meta.info["Producer"] == meta.xmp["pdf:Producer"]
    assert meta.info["Title"] == meta.xmp["dc:title"] == "Usage report (test)"
    assert meta.catalog_version in (None, "1.7")
    assert pdfa_problems(meta) == []
    info = run("pdfinfo", signed_demo)
    assert "PDF version:     1.7" in info
    assert "Form:            AcroForm" in info
    xmp = run("pdfinfo", "-meta", signed_demo)
    assert 'pdfaid:part="3"' in xmp
    assert 'pdfaid:conformance="B"' in xmp


def signer_info(pdf: bytes) -> Any:
    (signature,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    return signature.signer_info


def test_the_cms_has_exactly_the_pades_baseline_b_attributes(signed_demo: Path) -> None:
    info = signer_info(signed_demo.read_bytes())
    # PAdES B-B: content-type, message-digest, signing-certificate-v2; no CMS signing-time (the time is /M)
    assert [a["type"].native for a in info["signed_attrs"]] == [
        "content_type",
        "message_digest",
        "signing_certificate_v2",
    ]
    assert info["digest_algorithm"]["algorithm"].native == "sha256"
    assert info["signature_algorithm"]["algorithm"].native == "sha256_rsa"
    assert not info["unsigned_attrs"]  # no time-stamp token: B-B


def test_the_signature_is_invisible_and_printable_as_pdfa_requires(signed_demo: Path) -> None:
    reader = PdfFileReader(io.BytesIO(signed_demo.read_bytes()))
    form = reader.root["/AcroForm"]
    assert form["/SigFlags"] == 3  # signatures exist, append only
    assert "/NeedAppearances" not in form
    (field,) = (f.get_object() for f in form["/Fields"])
    assert field["/FT"] == "/Sig"
    assert field["/T"] == "ReportSignature"
    assert [float(x) for x in field["/Rect"]] == [0, 0, 0, 0]
    flags = int(field["/F"])
    assert flags & 4  # Print: PDF/A forbids annotations that would not print
    assert not flags & (1 | 2 | 32)  # not Invisible, Hidden or NoView


def test_pyhankos_stock_writer_would_break_pdfa_which_is_why_signing_keeps_the_metadata(
    demo_settings: Settings, unsigned_pdf: bytes
) -> None:
    signer = load_signer(demo_settings)
    out = io.BytesIO()
    signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(unsigned_pdf)),
        signers.PdfSignatureMetadata(
            field_name="S", md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES
        ),
        signer=signer._pyhanko,
        output=out,
    )
    problems = pdfa_problems(read_pdfa_metadata(out.getvalue()))
    assert any("Producer" in p for p in problems)


def test_b_t_with_a_loopback_tsa_carries_a_trusted_time_stamp(
    tmp_path: Path, pki: SigningPki, pki_settings: Settings, unsigned_pdf: bytes
) -> None:
    signer = load_signer(pki_settings)
    assert not signer.demo
    with run_tsa(pki) as tsa:
        signed = sign_pdf(unsigned_pdf, signer, tsa_url=tsa.url)
        first = tsa.requests
        assert first >= 1
        sign_pdf(unsigned_pdf, signer, tsa_url=tsa.url)
        assert tsa.requests == first + 1  # the kept client sizes the next signature without a second token
    unsigned_attributes = [a["type"].native for a in signer_info(signed)["unsigned_attrs"]]
    assert unsigned_attributes == ["signature_time_stamp_token"]  # B-T
    result = verify_pdf(signed, anchors=trust_anchors(pki_settings))
    assert result.valid, result.render_text()
    assert result.timestamped
    assert [c.name for c in result.checks] == [
        "signature",
        "coverage",
        "certificate",
        "timestamp",
        "manifest",
    ]
    assert result.signer is not None
    assert "Test Report Signer" in result.signer
    assert result.signed_at is not None
    path = tmp_path / "report-bt.pdf"
    path.write_bytes(signed)
    anchors = pki_settings.trust_anchors_file
    assert anchors is not None
    out = run("pdfsig", "-nssdir", f"sql:{nss_db(tmp_path / 'nss', anchors)}", path)
    assert "Signature Validation: Signature is Valid." in out
    assert "Certificate Validation: Certificate is Trusted." in out
    assert "Total document signed" in out
    assert pdfa_problems(read_pdfa_metadata(signed)) == []


def test_a_b_t_time_stamp_from_an_untrusted_tsa_is_reported(
    pki: SigningPki, pki_settings: Settings, unsigned_pdf: bytes
) -> None:
    other = make_test_pki("Other")
    with run_tsa(other) as tsa:
        signed = sign_pdf(unsigned_pdf, load_signer(pki_settings), tsa_url=tsa.url)
    result = verify_pdf(signed, anchors=trust_anchors(pki_settings))
    assert not result.valid
    failed = [c.name for c in result.checks if not c.ok]
    assert failed == ["timestamp"]


def test_a_failing_or_unreachable_tsa_makes_signing_fail_with_a_clear_reason(
    pki: SigningPki, pki_settings: Settings, unsigned_pdf: bytes
) -> None:
    signer = load_signer(pki_settings)
    with run_tsa(pki) as tsa:
        tsa.fail = True
        with pytest.raises(SigningError, match="time-stamp authority"):
            sign_pdf(unsigned_pdf, signer, tsa_url=tsa.url)
        assert tsa.requests >= 1
        url = tsa.url
    with pytest.raises(SigningError, match="time-stamp authority"):
        sign_pdf(unsigned_pdf, signer, tsa_url=url)  # the server is gone: connection refused


async def test_async_callers_sign_in_a_worker_thread(demo_settings: Settings, unsigned_pdf: bytes) -> None:
    signer = load_signer(demo_settings)
    signed = await asyncio.to_thread(sign_pdf, unsigned_pdf, signer, tsa_url=None)
    assert verify_pdf(signed, anchors=trust_anchors(demo_settings)).valid


async def test_a_direct_call_from_inside_the_event_loop_still_works(
    demo_settings: Settings, unsigned_pdf: bytes
) -> None:
    # pyHanko's sync API calls asyncio.run, which a running loop refuses; the call moves to a thread instead
    signed = sign_pdf(unsigned_pdf, load_signer(demo_settings), tsa_url=None)
    result = verify_pdf(signed, anchors=trust_anchors(demo_settings))
    assert result.valid, result.render_text()


def test_what_is_not_a_pdf_cannot_be_signed(demo_settings: Settings) -> None:
    with pytest.raises(SigningError, match="cannot be read"):
        sign_pdf(b"this is not a PDF", load_signer(demo_settings), tsa_url=None)


def test_the_signer_never_shows_its_key(demo_settings: Settings) -> None:
    signer = load_signer(demo_settings)
    assert signer.demo
    text = repr(signer) + str(signer)
    assert "not for production" in text
    assert "PRIVATE" not in text
    assert "RSAPrivateKey" not in text


def test_without_keys_init_or_configuration_there_is_no_signer(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="keys init"):
        load_signer(Settings.for_tests(tmp_path))


def test_the_demo_command_makes_its_own_demo_signer(tmp_path: Path) -> None:
    settings = Settings.for_tests(tmp_path, demo=True)
    signer = load_signer(settings)
    assert signer.demo
    assert load_signer(settings).certificate == signer.certificate  # made once, then reused


def test_an_ecdsa_key_is_refused_because_it_breaks_pdfa_3(tmp_path: Path, pki: SigningPki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "ec.key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    _, cert_file = pki.signer.write_pem(tmp_path, "signer")
    settings = Settings.for_tests(tmp_path, signing_key_file=key_file, signing_cert_file=cert_file)
    with pytest.raises(ConfigurationError, match="RSA"):
        load_signer(settings)


def test_a_key_that_does_not_match_the_certificate_is_refused(tmp_path: Path, pki: SigningPki) -> None:
    key_file, _ = pki.signer.write_pem(tmp_path, "signer")
    _, tsa_cert = pki.tsa.write_pem(tmp_path, "tsa")
    settings = Settings.for_tests(tmp_path, signing_key_file=key_file, signing_cert_file=tsa_cert)
    with pytest.raises(ConfigurationError, match="does not match"):
        load_signer(settings)


def test_an_expired_signing_certificate_is_refused_before_it_signs_anything(
    tmp_path: Path, pki: SigningPki
) -> None:
    now = dt.datetime.now(dt.UTC)
    expired = (
        x509.CertificateBuilder()
        .subject_name(pki.signer.certificate.subject)
        .issuer_name(pki.root.certificate.subject)
        .public_key(pki.signer.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now - dt.timedelta(days=1))
        .sign(pki.root.key, hashes.SHA256())
    )
    key_file, _ = pki.signer.write_pem(tmp_path, "signer")
    cert_file = tmp_path / "expired.pem"
    cert_file.write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    settings = Settings.for_tests(tmp_path, signing_key_file=key_file, signing_cert_file=cert_file)
    with pytest.raises(ConfigurationError, match="not valid now"):
        load_signer(settings)


def test_only_half_a_pem_configuration_is_refused(tmp_path: Path, pki: SigningPki) -> None:
    key_file, _ = pki.signer.write_pem(tmp_path, "signer")
    with pytest.raises(ConfigurationError, match="both"):
        load_signer(Settings.for_tests(tmp_path, signing_key_file=key_file))


def test_a_pkcs12_bundle_signs_and_a_wrong_password_is_refused_without_echoing_it(
    tmp_path: Path, pki: SigningPki, unsigned_pdf: bytes
) -> None:
    bundle = tmp_path / "signer.p12"
    bundle.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"signer",
            pki.signer.key,
            pki.signer.certificate,
            [pki.root.certificate],
            serialization.BestAvailableEncryption(b"correct horse"),
        )
    )
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(pki.root.certificate.public_bytes(serialization.Encoding.PEM))
    good = Settings.for_tests(
        tmp_path,
        signing_pkcs12_file=bundle,
        signing_pkcs12_password=Secret("correct horse"),
        trust_anchors_file=anchors,
    )
    signer = load_signer(good)
    assert isinstance(signer, ReportSigner)
    assert verify_pdf(sign_pdf(unsigned_pdf, signer, tsa_url=None), anchors=trust_anchors(good)).valid
    bad = Settings.for_tests(
        tmp_path, signing_pkcs12_file=bundle, signing_pkcs12_password=Secret("Tr0ub4dor-guess")
    )
    with pytest.raises(ConfigurationError) as caught:
        load_signer(bad)
    assert "Tr0ub4dor" not in str(caught.value)
