"""Verifying a signed report offline: signature, whole-file coverage, trust, time stamp, embedded manifest.

Every check is named in the result, so a failure says what failed. Rules learned the hard way (research
notes, ``pdf.md`` sections 4 and 8):

- pyHanko's ``valid`` stays true when the document digest does not match: the signature check requires
  ``intact`` and ``valid``.
- Bytes appended after the signature leave both pyHanko's bottom line and ``pdfsig``'s "Signature is Valid"
  untouched: coverage must be ``ENTIRE_FILE``, a check of its own.
- pyHanko raises on some malformed signatures instead of answering "invalid": :func:`verify_pdf` turns any
  exception into an invalid result (only ``MemoryError`` propagates: the process, not the file, failed).

Details never hold personal data: a report carries none in its signature or manifest, and names taken from
an untrusted file are escaped and shortened before they are shown.
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from odeus_compliance.keys.certificates import demo_paths, load_pem_certificates
from odeus_compliance.reports.manifest import MANIFEST_NAME, attachment_problems, parse_report_manifest
from odeus_compliance.reports.pyhanko_calls import call_pyhanko
from odeus_compliance.settings import Settings

__all__ = ["Check", "VerificationResult", "embedded_files", "trust_anchors", "verify_pdf"]

_MAX_TREE_NODES: Final = 256
_REPORT_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_MAX_SIGNER_CHARS: Final = 256
MAX_ATTACHMENT_BYTES: Final = 256 * 1024 * 1024
"""The most the attachments of one file may decode to, together: a 64 MiB upload of deflated zeros would
otherwise decode to tens of GiB in the verifying process (a report's dataset is far below this)."""


@dataclass(frozen=True, slots=True)
class Check:
    """One named check: ``signature``, ``coverage``, ``certificate``, ``timestamp``, ``manifest``, ..."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """The verdict on one file; ``valid`` is true only if there were checks and every one passed."""

    valid: bool
    checks: tuple[Check, ...]
    signer: str | None = None
    """The signing certificate's subject (RFC 4514), if a signature was found."""
    signed_at: datetime | None = None
    """The time-stamp token's time (B-T), else the time the signer claims (``/M``, unproven)."""
    timestamped: bool = False
    report_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: ``valid``, ``checks`` [{name, ok, detail}], ``signer``, ``signed_at``
        (RFC 3339 UTC or null), ``timestamped``, ``report_id``."""
        return {
            "valid": self.valid,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "signer": self.signer,
            "signed_at": _rfc3339(self.signed_at) if self.signed_at else None,
            "timestamped": self.timestamped,
            "report_id": self.report_id,
        }

    def render_text(self) -> str:
        """The verdict, one line per check, then signer, time and report id (no final newline)."""
        lines = [f"report verification: {'VALID' if self.valid else 'INVALID'}"]
        lines.extend(f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks)
        if self.signer is not None:
            lines.append(f"signer: {self.signer}")
        if self.signed_at is not None:
            source = "time-stamp token" if self.timestamped else "claimed by the signer, not proven"
            lines.append(f"signed at: {_rfc3339(self.signed_at)} ({source})")
        if self.report_id is not None:
            lines.append(f"report id: {self.report_id}")
        return "\n".join(lines)


def _rfc3339(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def trust_anchors(settings: Settings) -> tuple[x509.Certificate, ...]:
    """The configured trust anchors file's certificates, else the demo CA (if ``keys init`` made one).

    Needs no secret: verification works on any machine holding the CA certificate. Empty if there is none,
    which makes every certificate check fail.
    """
    if settings.trust_anchors_file is not None:
        return tuple(
            load_pem_certificates(settings.trust_anchors_file, what="ODEUS_COMPLIANCE_TRUST_ANCHORS_FILE")
        )
    ca = demo_paths(settings.data_dir).ca_cert
    if ca.is_file():
        return tuple(load_pem_certificates(ca, what="the demo CA certificate"))
    return ()


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def _shown(name: str) -> str:
    return json.dumps(name[:64], ensure_ascii=True)


def _printable(text: str, limit: int) -> str:
    """``text`` with every control, format or unassigned character escaped, cut to ``limit`` characters.

    A signing certificate's subject comes from the file under test: unescaped, a newline could forge a
    "[ok]" line in the verdict and an ESC sequence could clear the terminal (RFC 4514 escapes neither).
    """
    shown = "".join(f"\\u{ord(ch):04x}" if unicodedata.category(ch).startswith("C") else ch for ch in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _filespec_name(filespec: generic.DictionaryObject, fallback: str) -> str:
    for key in ("/UF", "/F"):
        if key in filespec:
            return str(filespec[key])
    return fallback


def _resolved(obj: Any) -> Any:
    # pyHanko resolves references on item access but not in array iteration or .get()
    return obj.get_object() if isinstance(obj, generic.IndirectObject) else obj  # type: ignore[no-untyped-call]


def _name_tree_leaves(root: generic.DictionaryObject) -> list[tuple[str, Any]]:
    """The (name, filespec) pairs of a name tree, visiting at most ``_MAX_TREE_NODES`` nodes.

    A budget, not only a depth limit: a hostile file can make kids point back at their parents, and a few
    levels of that would otherwise multiply into millions of visits.
    """
    leaves: list[tuple[str, Any]] = []
    pending = [root]
    visited = 0
    while pending:
        node = pending.pop()
        visited += 1
        if visited > _MAX_TREE_NODES or not isinstance(node, generic.DictionaryObject):
            msg = "the embedded-files name tree is malformed or too large"
            raise ValueError(msg)
        if "/Names" in node:
            pairs = node["/Names"]
            leaves.extend((str(pairs[i]), pairs[i + 1]) for i in range(0, len(pairs) - 1, 2))
        if "/Kids" in node:
            pending.extend(_resolved(kid) for kid in node["/Kids"])
    return leaves


def _filters(stream: generic.StreamObject) -> list[str]:
    named = _resolved(stream.get("/Filter"))
    if named is None:
        return []
    if isinstance(named, generic.NameObject):
        return [str(named)]
    if isinstance(named, generic.ArrayObject):
        return [str(_resolved(f)) for f in named]
    msg = "an attachment names its encoding in a malformed way"
    raise ValueError(msg)


class _DamagedData(ValueError):
    """An attachment's compressed data does not decode (a changed byte): that attachment fails, not the
    reading of the others (the manifest among them)."""

    def __init__(self) -> None:
        super().__init__("an attachment's compressed data is damaged")


def _bounded_data(stream: generic.StreamObject, budget: int) -> bytes:
    """The decoded bytes of an attachment stream, or ``ValueError`` once they pass ``budget``.

    Decoded here, not by pyHanko (which would inflate a deflate bomb in full before anyone could look at
    its size): only the encodings a report uses, plain or ``FlateDecode`` without predictors.
    """
    filters = _filters(stream)
    raw = stream.encoded_data
    if not filters:
        data = raw
    elif filters == ["/FlateDecode"] and "/DecodeParms" not in stream:
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(raw, budget + 1)
        except zlib.error:
            raise _DamagedData from None
    else:
        msg = "an attachment uses an encoding reports never use"
        raise ValueError(msg)
    if len(data) > budget:
        msg = f"the attachments decode to more than {MAX_ATTACHMENT_BYTES // 2**20} MiB; not inflated"
        raise ValueError(msg)
    return data


def embedded_files(reader: PdfFileReader) -> dict[str, bytes]:
    """Every embedded file of the newest revision (name tree and catalog ``/AF``) as name -> bytes.

    Raises ``ValueError`` if two different files share a name (one could hide behind the other), if the
    attachments decode to more than :data:`MAX_ATTACHMENT_BYTES` together or use an unexpected encoding,
    or if one of them is damaged.
    """
    found, damaged = _attachments(reader)
    if damaged:
        raise _DamagedData
    return found


def _attachments(reader: PdfFileReader) -> tuple[dict[str, bytes], set[str]]:
    """The decodable attachments (as :func:`embedded_files`), and the names of the damaged ones."""
    root = reader.root
    filespecs: list[tuple[str, Any]] = []
    names = _resolved(root.get("/Names"))
    if isinstance(names, generic.DictionaryObject) and "/EmbeddedFiles" in names:
        filespecs.extend(_name_tree_leaves(names["/EmbeddedFiles"]))
    if "/AF" in root:
        filespecs.extend(("", filespec) for filespec in root["/AF"])
    found: dict[str, bytes] = {}
    damaged: set[str] = set()
    budget = MAX_ATTACHMENT_BYTES
    decoded: dict[int, tuple[generic.StreamObject, bytes]] = {}  # holding the stream keeps its id unique
    for key, filespec in filespecs:
        spec = _resolved(filespec)
        if not isinstance(spec, generic.DictionaryObject) or "/EF" not in spec:
            continue
        ef = spec["/EF"]
        stream = next((ef[key] for key in ("/UF", "/F") if key in ef), None)  # item access resolves
        if not isinstance(stream, generic.StreamObject):
            continue
        name = _filespec_name(spec, key)
        known = decoded.get(id(stream))
        if known is None:  # listed in the name tree and in /AF: decoded and counted once
            try:
                known = decoded[id(stream)] = (stream, _bounded_data(stream, budget))
            except _DamagedData:
                damaged.add(name)
                continue
            budget -= len(known[1])
        data = known[1]
        if (name in found and found[name] != data) or name in damaged:
            msg = f"two different attachments are named {_shown(name)}"
            raise ValueError(msg)
        found[name] = data
    return found, damaged


def _manifest_check(reader: PdfFileReader) -> tuple[Check, str | None]:
    try:
        files, damaged = _attachments(reader)
    except ValueError as exc:
        return Check("manifest", ok=False, detail=str(exc)), None
    if MANIFEST_NAME in damaged:
        return Check("manifest", ok=False, detail=f"{MANIFEST_NAME} is damaged: it does not decode"), None
    if MANIFEST_NAME not in files:
        return Check("manifest", ok=False, detail=f"no {MANIFEST_NAME} is attached"), None
    try:
        manifest = parse_report_manifest(files.pop(MANIFEST_NAME))
    except ValueError as exc:
        return Check("manifest", ok=False, detail=str(exc)), None
    report_id = manifest.get("report_id")
    shown_id = report_id if isinstance(report_id, str) and _REPORT_ID.fullmatch(report_id) else None
    problems = attachment_problems(manifest, files, damaged=damaged)
    if problems:
        return Check("manifest", ok=False, detail="; ".join(problems)), shown_id
    listed = ", ".join(_printable(name, 64) for name in sorted(files)) or "none"
    detail = f"{len(files)} attachment(s) match their size and SHA-256 in {MANIFEST_NAME} ({listed})"
    return Check("manifest", ok=True, detail=detail), shown_id


@dataclass
class _Findings:
    checks: list[Check] = field(default_factory=list)
    signer: str | None = None
    signed_at: datetime | None = None
    timestamped: bool = False
    report_id: str | None = None

    def result(self) -> VerificationResult:
        valid = bool(self.checks) and all(c.ok for c in self.checks)
        return VerificationResult(
            valid=valid,
            checks=tuple(self.checks),
            signer=self.signer,
            signed_at=self.signed_at,
            timestamped=self.timestamped,
            report_id=self.report_id,
        )


def _verify(pdf: bytes, anchors: Sequence[x509.Certificate], findings: _Findings) -> None:
    checks = findings.checks
    if not pdf.startswith(b"%PDF-"):
        checks.append(Check("pdf", ok=False, detail="the file is not a PDF"))
        return
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    signatures = reader.embedded_signatures
    if len(signatures) != 1:
        detail = "the file is not signed" if not signatures else f"{len(signatures)} signatures, expected one"
        checks.append(Check("signature", ok=False, detail=detail))
        manifest, findings.report_id = _manifest_check(reader)
        checks.append(manifest)
        return
    roots = [_asn1(c) for c in anchors]
    context = ValidationContext(trust_roots=roots, allow_fetching=False)
    ts_context = ValidationContext(trust_roots=roots, allow_fetching=False)
    status = validate_pdf_signature(
        signatures[0], signer_validation_context=context, ts_validation_context=ts_context
    )
    subject = x509.load_der_x509_certificate(status.signing_cert.dump()).subject.rfc4514_string()
    findings.signer = _printable(subject, _MAX_SIGNER_CHARS)
    intact = bool(status.intact and status.valid)
    checks.append(
        Check(
            "signature",
            ok=intact,
            detail="intact: the signed bytes match the signature"
            if intact
            else "the signature does not match the signed bytes (file changed or signature damaged)",
        )
    )
    whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    checks.append(
        Check(
            "coverage",
            ok=whole,
            detail="the signature covers the whole file"
            if whole
            else "the signature does not cover the whole file (bytes were added after signing)",
        )
    )
    # judged apart from the digest: a tampered file still names who signed it and whether that is trusted
    trusted = status.trust_problem_indic is None and status.validation_path is not None and bool(anchors)
    if trusted:
        cert_detail = "the signing certificate chains to a trust anchor"
    elif not status.valid:
        cert_detail = "not evaluated: the signature value itself is invalid"
    elif not anchors:
        cert_detail = "no trust anchor is configured"
    else:
        cert_detail = (
            "the signing certificate does not chain to a configured trust anchor (or is not valid now)"
        )
    checks.append(Check("certificate", ok=trusted, detail=cert_detail))
    ts = status.timestamp_validity
    if ts is not None:
        findings.timestamped = True
        findings.signed_at = ts.timestamp
        ts_ok = bool(ts.intact and ts.valid and ts.trusted)
        checks.append(
            Check(
                "timestamp",
                ok=ts_ok,
                detail="the RFC 3161 time-stamp token is intact and its authority trusted"
                if ts_ok
                else "the time-stamp token is damaged or its authority is not a trust anchor",
            )
        )
    else:
        findings.signed_at = status.signer_reported_dt
    manifest, findings.report_id = _manifest_check(reader)
    checks.append(manifest)


def verify_pdf(pdf: bytes, *, anchors: Sequence[x509.Certificate]) -> VerificationResult:
    """Check ``pdf`` against ``anchors``; raises only ``MemoryError`` (any other failure inside the
    verifier means invalid).

    Plain synchronous code (pyHanko runs its own event loop): async callers run it in a worker thread;
    called inside a running loop it still works, in a one-off thread (see ``reports.pyhanko_calls``).
    """
    findings = _Findings()
    try:
        call_pyhanko(lambda: _verify(pdf, anchors, findings))
    except MemoryError:
        raise  # not a verdict on the file: the caller's process ran out (a capped worker says so)
    except Exception as exc:  # noqa: BLE001 - the promise: any failure inside the verifier is "invalid"
        findings.checks.append(
            Check("verifier", ok=False, detail=f"the file could not be verified ({type(exc).__name__})")
        )
    return findings.result()
