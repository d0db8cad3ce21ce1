"""The verifier's tamper matrix: every damaged or foreign file is invalid, with the failing check named.

Each case starts from a real WeasyPrint PDF/A-3b signed with the demo certificate (``keys init``'s), and
``poppler``'s ``pdfsig`` is asked for its opinion where it has one, so our verdict is compared with an
implementation that is not ours.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import re
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers

from odeus_compliance.errors import ConfigurationError
from odeus_compliance.keys.certificates import demo_paths, ensure_demo_certificate
from odeus_compliance.reports import verify as verify_module
from odeus_compliance.reports.signing import ReportSigner, load_signer, sign_pdf
from odeus_compliance.reports.verify import VerificationResult, trust_anchors, verify_pdf
from odeus_compliance.settings import Settings
from tests.support.report_pdf import (
    REPORT_ID,
    SampleAttachment,
    build_manifest,
    default_attachments,
    render_test_pdf,
)
from tests.support.tsa import make_test_pki

ALL_CHECKS = ["signature", "coverage", "certificate", "manifest"]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings.for_tests(tmp_path_factory.mktemp("verify") / "data")
    ensure_demo_certificate(settings.data_dir, settings.require_master_key())
    return settings


@pytest.fixture(scope="module")
def anchors(settings: Settings) -> tuple[x509.Certificate, ...]:
    return trust_anchors(settings)


def signed(settings: Settings, attachments: list[SampleAttachment], manifest: bytes | None) -> bytes:
    return sign_pdf(render_test_pdf(attachments, manifest), load_signer(settings), tsa_url=None)


@pytest.fixture(scope="module")
def good(settings: Settings) -> bytes:
    attachments = default_attachments()
    return signed(settings, attachments, build_manifest(attachments))


def failed(result: VerificationResult) -> list[str]:
    assert not result.valid
    return [c.name for c in result.checks if not c.ok]


def pdfsig(tmp_path: Path, pdf: bytes) -> str:
    path = tmp_path / "candidate.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=60, check=False)
    return done.stdout + done.stderr


def contents_span(pdf: bytes) -> tuple[int, int]:
    """Where the signature's /Contents hex string is (the one part of the file the signature excludes)."""
    match = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert match is not None
    _, first_len, second_start, _ = (int(g) for g in match.groups())
    return first_len, second_start


def test_a_good_report_passes_every_check(good: bytes, anchors: tuple[x509.Certificate, ...]) -> None:
    result = verify_pdf(good, anchors=anchors)
    assert result.valid, result.render_text()
    assert [c.name for c in result.checks] == ALL_CHECKS
    assert result.report_id == REPORT_ID
    assert result.signer is not None
    assert "not for production" in result.signer
    assert not result.timestamped
    assert result.signed_at is not None
    assert "2 attachment(s)" in result.checks[-1].detail


def test_a_flipped_byte_in_the_signed_content_fails_the_signature(
    tmp_path: Path, good: bytes, anchors: tuple[x509.Certificate, ...]
) -> None:
    tampered = bytearray(good)
    tampered[len(good) // 4] ^= 0x01
    assert failed(verify_pdf(bytes(tampered), anchors=anchors))[0] == "signature"
    assert "Digest Mismatch" in pdfsig(tmp_path, bytes(tampered))


def test_a_changed_digit_in_the_signature_value_fails(
    tmp_path: Path, good: bytes, anchors: tuple[x509.Certificate, ...]
) -> None:
    start, _ = contents_span(good)
    hex_start = start + 1  # after the "<"
    assert good[hex_start : hex_start + 4] == b"3082"  # a DER SEQUENCE with a two-byte length
    der_length = 4 + int(good[hex_start + 4 : hex_start + 8], 16)
    # the RSA-3072 signature value is the last 384 bytes of the CMS (no unsigned attributes in B-B)
    index = hex_start + 2 * (der_length - 384) + 100
    tampered = bytearray(good)
    tampered[index] = ord("0") if tampered[index] != ord("0") else ord("1")
    result = verify_pdf(bytes(tampered), anchors=anchors)
    assert failed(result) == ["signature", "certificate"]
    assert result.checks[2].detail == "not evaluated: the signature value itself is invalid"
    assert "Signature is Invalid" in pdfsig(tmp_path, bytes(tampered))


def test_bytes_appended_after_the_signature_fail_the_coverage_check(
    tmp_path: Path, good: bytes, anchors: tuple[x509.Certificate, ...]
) -> None:
    appended = good + b"\n% appended after signing\n"
    assert failed(verify_pdf(appended, anchors=anchors)) == ["coverage"]
    # pdfsig still calls the signature valid and only notes the coverage: that is why we check it ourselves
    assert "Not total document signed" in pdfsig(tmp_path, appended)


def test_an_attachment_swapped_after_signing_fails_coverage_and_manifest(
    good: bytes, anchors: tuple[x509.Certificate, ...]
) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(good))
    names = writer.root["/Names"]["/EmbeddedFiles"]["/Names"]
    position = [str(names[i]) for i in range(0, len(names), 2)].index("data.csv")
    reference = names.raw_get(2 * position + 1)
    spec = reference.get_object()
    swapped = generic.StreamObject(stream_data=b"user,department,messages\npsn_7f3a,Sales,9999\n")
    swapped["/Type"] = generic.pdf_name("/EmbeddedFile")
    spec["/EF"] = generic.DictionaryObject({generic.pdf_name("/F"): writer.add_object(swapped)})  # type: ignore[no-untyped-call]
    writer.mark_update(reference)
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    result = verify_pdf(out.getvalue(), anchors=anchors)
    assert failed(result) == ["coverage", "manifest"]
    manifest = next(c for c in result.checks if c.name == "manifest")
    assert '"data.csv"' in manifest.detail
    assert "9999" not in result.render_text()  # the content itself is never shown


def test_a_deflate_bomb_attachment_is_refused_without_being_inflated(
    good: bytes, anchors: tuple[x509.Certificate, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    # anyone with a key may upload a file to verify: 64 MiB of deflated zeros must not become 64 GiB
    monkeypatch.setattr(verify_module, "MAX_ATTACHMENT_BYTES", 2**20)
    deflater = zlib.compressobj(9)
    bomb = b"".join(deflater.compress(bytes(2**20)) for _ in range(96)) + deflater.flush()
    assert len(bomb) < 2**20  # 96 MiB of zeros, as sent
    writer = IncrementalPdfFileWriter(io.BytesIO(good))
    names = writer.root["/Names"]["/EmbeddedFiles"]["/Names"]
    position = [str(names[i]) for i in range(0, len(names), 2)].index("data.csv")
    reference = names.raw_get(2 * position + 1)
    spec = reference.get_object()
    stream = generic.StreamObject(
        dict_data={generic.pdf_name("/Filter"): generic.pdf_name("/FlateDecode")}, encoded_data=bomb
    )
    spec["/EF"] = generic.DictionaryObject({generic.pdf_name("/F"): writer.add_object(stream)})  # type: ignore[no-untyped-call]
    writer.mark_update(reference)
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    tracemalloc.start()
    try:
        result = verify_pdf(out.getvalue(), anchors=anchors)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert failed(result) == ["coverage", "manifest"]
    assert "decode to more than" in result.checks[-1].detail
    assert peak < 32 * 2**20  # the 96 MiB were never materialised


@pytest.mark.parametrize(
    ("filters", "why"),
    [
        (generic.pdf_name("/LZWDecode"), "an encoding reports never use"),
        (generic.pdf_name("/FlateDecode"), "is damaged: its data does not decode"),
    ],
)
def test_an_attachment_in_a_foreign_or_damaged_encoding_fails_the_manifest(
    good: bytes, anchors: tuple[x509.Certificate, ...], filters: generic.NameObject, why: str
) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(good))
    names = writer.root["/Names"]["/EmbeddedFiles"]["/Names"]
    reference = names.raw_get(1)
    spec = reference.get_object()
    stream = generic.StreamObject(dict_data={generic.pdf_name("/Filter"): filters}, encoded_data=b"not zlib")
    spec["/EF"] = generic.DictionaryObject({generic.pdf_name("/F"): writer.add_object(stream)})  # type: ignore[no-untyped-call]
    writer.mark_update(reference)
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    result = verify_pdf(out.getvalue(), anchors=anchors)
    assert failed(result) == ["coverage", "manifest"]
    assert why in result.checks[-1].detail


def test_attachment_names_from_the_file_cannot_forge_lines_in_a_passing_manifest_check(
    good: bytes, anchors: tuple[x509.Certificate, ...]
) -> None:
    # a hostile file whose manifest lists its own attachments passes that check: the names it shows are
    # still the file's, so control characters in them are escaped
    hostile = "x\n  [ok] signature: intact\x1b[2J"
    writer = IncrementalPdfFileWriter(io.BytesIO(good))
    names = writer.root["/Names"]["/EmbeddedFiles"]["/Names"]
    listed = [str(names[i]) for i in range(0, len(names), 2)]
    data = b"psn_1,3\n"
    manifest = build_manifest([SampleAttachment(hostile, data, "text/csv")])
    for name, content in (("data.csv", data), ("manifest.json", manifest)):
        reference = names.raw_get(2 * listed.index(name) + 1)
        spec = reference.get_object()
        stream = generic.StreamObject(stream_data=content)
        spec["/EF"] = generic.DictionaryObject({generic.pdf_name("/F"): writer.add_object(stream)})  # type: ignore[no-untyped-call]
        if name == "data.csv":
            spec["/UF"] = spec["/F"] = generic.TextStringObject(hostile)
        writer.mark_update(reference)
    policy_reference = names.raw_get(2 * listed.index("policy.toml") + 1)
    policy_spec = policy_reference.get_object()
    del policy_spec["/EF"]  # so only the hostile name and the manifest are attached
    writer.mark_update(policy_reference)
    writer.root["/AF"] = generic.ArrayObject()
    writer.update_root()  # type: ignore[no-untyped-call]
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    result = verify_pdf(out.getvalue(), anchors=anchors)
    assert failed(result) == ["coverage"]
    manifest_check = result.checks[-1]
    assert manifest_check.ok
    assert "\\u000a  [ok] signature: intact\\u001b[2J" in manifest_check.detail
    text = result.render_text()
    assert "\x1b" not in text
    assert len(text.splitlines()) == 1 + len(result.checks) + 3  # verdict, checks, signer, time, id


def test_a_second_signature_added_later_is_refused_even_when_it_is_trusted_and_covers_the_file(
    settings: Settings, good: bytes, anchors: tuple[x509.Certificate, ...]
) -> None:
    # an incremental update signed by a trusted key may change what the report shows: one signature only
    writer = IncrementalPdfFileWriter(io.BytesIO(good))
    out = io.BytesIO()
    signers.sign_pdf(
        writer,
        signers.PdfSignatureMetadata(field_name="Later", md_algorithm="sha256"),
        signer=load_signer(settings)._pyhanko,
        output=out,
    )
    result = verify_pdf(out.getvalue(), anchors=anchors)
    assert failed(result) == ["signature"]
    assert result.checks[0].detail == "2 signatures, expected one"


def test_a_flipped_byte_in_a_compressed_attachment_names_it_and_still_reads_the_manifest(
    good: bytes, anchors: tuple[x509.Certificate, ...]
) -> None:
    reader = PdfFileReader(io.BytesIO(good), strict=False)
    names = reader.root["/Names"]["/EmbeddedFiles"]["/Names"]
    position = [str(names[i]) for i in range(0, len(names), 2)].index("data.csv")
    encoded = names[2 * position + 1]["/EF"]["/F"].encoded_data
    assert good.count(encoded) == 1
    tampered = bytearray(good)
    tampered[good.index(encoded) + len(encoded) // 2] ^= 0x01
    result = verify_pdf(bytes(tampered), anchors=anchors)
    assert failed(result) == ["signature", "manifest"]
    assert result.checks[-1].detail == '"data.csv" is damaged: its data does not decode'
    assert result.report_id == REPORT_ID  # the audit record of the upload still names the report


def test_an_attachment_that_differs_from_the_manifest_fails_even_under_a_valid_signature(
    settings: Settings, anchors: tuple[x509.Certificate, ...]
) -> None:
    original = default_attachments()
    manifest = build_manifest(original)
    swapped = [
        SampleAttachment("data.csv", b"user,department,messages\npsn_0000,HR,1\n", "text/csv"),
        original[1],
    ]
    result = verify_pdf(signed(settings, swapped, manifest), anchors=anchors)
    assert failed(result) == ["manifest"]
    assert "data.csv" in next(c.detail for c in result.checks if c.name == "manifest")


def test_an_unlisted_or_a_missing_attachment_fails_the_manifest(
    settings: Settings, anchors: tuple[x509.Certificate, ...]
) -> None:
    original = default_attachments()
    manifest = build_manifest(original)
    extra = [*original, SampleAttachment("notes.txt", b"an extra file", "text/plain")]
    result = verify_pdf(signed(settings, extra, manifest), anchors=anchors)
    assert failed(result) == ["manifest"]
    assert "not listed" in result.checks[-1].detail
    missing = verify_pdf(signed(settings, original[:1], manifest), anchors=anchors)
    assert failed(missing) == ["manifest"]
    assert "missing" in missing.checks[-1].detail
    no_manifest = verify_pdf(signed(settings, original, None), anchors=anchors)
    assert failed(no_manifest) == ["manifest"]


def test_a_name_tree_that_loops_back_on_itself_is_refused_not_followed_forever(
    settings: Settings, anchors: tuple[x509.Certificate, ...]
) -> None:
    attachments = default_attachments()
    writer = IncrementalPdfFileWriter(io.BytesIO(render_test_pdf(attachments, build_manifest(attachments))))
    tree_ref = writer.root["/Names"].raw_get("/EmbeddedFiles")
    tree = tree_ref.get_object()
    tree["/Kids"] = generic.ArrayObject([tree_ref, tree_ref])  # each node has itself twice as a kid
    writer.mark_update(tree_ref)
    looped = io.BytesIO()
    writer.write(looped)  # type: ignore[no-untyped-call]
    result = verify_pdf(sign_pdf(looped.getvalue(), load_signer(settings), tsa_url=None), anchors=anchors)
    assert failed(result) == ["manifest"]
    assert "malformed or too large" in result.checks[-1].detail


def test_a_wrong_trust_anchor_fails_the_certificate_check(good: bytes) -> None:
    other_root = make_test_pki("Stranger").root.certificate
    assert failed(verify_pdf(good, anchors=(other_root,))) == ["certificate"]
    assert failed(verify_pdf(good, anchors=())) == ["certificate"]


def test_an_untrusted_chain_leaves_stderr_clean_when_no_logging_is_configured(
    tmp_path: Path, good: bytes
) -> None:
    # pyHanko logs path-building failures with a traceback; the CLI (no handler) must not print it
    (tmp_path / "report.pdf").write_bytes(good)
    (tmp_path / "other.pem").write_bytes(
        make_test_pki("Other").root.certificate.public_bytes(serialization.Encoding.PEM)
    )
    script = (  # as the CLI runs it: its warning filters first (see warning_filters)
        "import sys\n"
        "from pathlib import Path\n"
        "from odeus_compliance import warning_filters\n"
        "warning_filters.install()\n"
        "from cryptography import x509\n"
        "from odeus_compliance.reports.verify import verify_pdf\n"
        "anchor = x509.load_pem_x509_certificate(Path(sys.argv[2]).read_bytes())\n"
        "result = verify_pdf(Path(sys.argv[1]).read_bytes(), anchors=(anchor,))\n"
        "print([c.name for c in result.checks if not c.ok])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "report.pdf"), str(tmp_path / "other.pem")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "['certificate']"
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("data", "check"),
    [
        (b"", "pdf"),
        (b"garbage that is not a PDF at all", "pdf"),
        (b"%PDF-1.7\nthis claims to be a PDF and is not\n%%EOF\n", "verifier"),
    ],
)
def test_a_garbage_file_is_invalid_and_never_raises(
    data: bytes, check: str, anchors: tuple[x509.Certificate, ...]
) -> None:
    assert failed(verify_pdf(data, anchors=anchors)) == [check]


def test_a_truncated_report_is_invalid(good: bytes, anchors: tuple[x509.Certificate, ...]) -> None:
    assert failed(verify_pdf(good[: len(good) // 2], anchors=anchors))


def test_an_unsigned_pdf_is_invalid_and_says_so(anchors: tuple[x509.Certificate, ...]) -> None:
    attachments = default_attachments()
    result = verify_pdf(render_test_pdf(attachments, build_manifest(attachments)), anchors=anchors)
    assert failed(result) == ["signature"]
    assert result.checks[0].detail == "the file is not signed"
    assert result.report_id == REPORT_ID  # the manifest is still read and checked


def test_any_flipped_byte_outside_the_signature_value_is_caught(
    good: bytes, anchors: tuple[x509.Certificate, ...]
) -> None:
    start, end = contents_span(good)
    rng = random.Random(20261125)
    positions = [p for p in (rng.randrange(len(good)) for _ in range(60)) if not start <= p < end][:30]
    for position in positions:
        tampered = bytearray(good)
        tampered[position] ^= 1 << rng.randrange(8)
        result = verify_pdf(bytes(tampered), anchors=anchors)
        assert not result.valid, f"a flipped bit at {position} went unnoticed"


def test_trust_anchors_come_from_the_configured_file_else_the_demo_ca(
    tmp_path: Path, settings: Settings
) -> None:
    demo_ca = x509.load_pem_x509_certificate(demo_paths(settings.data_dir).ca_cert.read_bytes())
    assert trust_anchors(settings) == (demo_ca,)
    root = make_test_pki("Configured").root.certificate
    anchors_file = tmp_path / "anchors.pem"
    anchors_file.write_bytes(
        root.public_bytes(serialization.Encoding.PEM) + demo_ca.public_bytes(serialization.Encoding.PEM)
    )
    configured = Settings.from_env(
        {
            "ODEUS_COMPLIANCE_DATA_DIR": str(settings.data_dir),
            "ODEUS_COMPLIANCE_TRUST_ANCHORS_FILE": str(anchors_file),
        },
        demo=True,
    )
    assert configured.trust_anchors_file == anchors_file
    assert trust_anchors(configured) == (root, demo_ca)
    assert trust_anchors(Settings.for_tests(tmp_path / "empty")) == ()
    with pytest.raises(ConfigurationError, match="TRUST_ANCHORS_FILE"):
        trust_anchors(Settings.for_tests(tmp_path, trust_anchors_file=tmp_path / "absent.pem"))
    anchors_file.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="no PEM certificate"):
        trust_anchors(configured)


def test_the_result_renders_as_text_and_json(good: bytes, anchors: tuple[x509.Certificate, ...]) -> None:
    result = verify_pdf(good + b"%x\n", anchors=anchors)
    document = result.to_json()
    assert document["valid"] is False
    assert [c["name"] for c in document["checks"] if not c["ok"]] == ["coverage"]
    assert document["report_id"] == REPORT_ID
    assert document["timestamped"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["signed_at"])
    text = result.render_text()
    assert text.startswith("report verification: INVALID\n")
    assert "  [FAIL] coverage: " in text
    assert "  [ok] signature: " in text
    assert f"report id: {REPORT_ID}" in text
    assert "claimed by the signer, not proven" in text


def test_a_forged_signer_name_cannot_forge_lines_or_terminal_codes_in_the_verdict() -> None:
    # the subject comes from the file under test: a newline would print a fake "[ok]" line, ESC codes
    # could clear the screen before the real verdict
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "evil\n  [ok] certificate: trusted\x1b[2J\u202e")]
    )
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    attachments = default_attachments()
    forged = sign_pdf(
        render_test_pdf(attachments, build_manifest(attachments)),
        ReportSigner(private_key=key, certificate=certificate, chain=()),
        tsa_url=None,
    )
    result = verify_pdf(forged, anchors=())
    assert failed(result) == ["certificate"]
    assert result.signer is not None
    assert result.signer.startswith("CN=evil\\u000a  [ok]")
    assert "\\u001b[2J\\u202e" in result.signer
    text = result.render_text()
    assert "\x1b" not in text
    assert "\u202e" not in text
    assert [line for line in text.splitlines() if line.startswith("  [")] == [
        f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in result.checks
    ]
