"""Can this installation sign a report? The check behind ``/health/ready``, ``init`` and ``serve``'s start.

A trial, not a guess: the signer every report would get (:func:`.signing.load_signer`) signs a one-page PDF,
and the signature is verified against the trust anchors exactly as the worker verifies each report before it
is stored. So a certificate that does not chain to ``ODEUS_COMPLIANCE_TRUST_ANCHORS_FILE`` (every report
would fail its own verification), an expired one, a key that does not open, or the demo certificate outside
the demo all show up here, before anyone asks for a report. The trial never asks the
time-stamp authority (a TSA outage fails one report, not the installation, and a probe must not spend a
TSA's quota).

Two texts come back: ``reason``, short and fixed, for the public probe (no path, no certificate subject), and
``detail`` for the operator (variable names and paths, never a secret).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from odeus_compliance.errors import OdeusComplianceError
from odeus_compliance.keys.certificates import demo_paths, fingerprint
from odeus_compliance.reports.signing import (
    NO_SIGNER_CONFIGURED,
    ReportSigner,
    load_signer,
    sign_pdf,
)
from odeus_compliance.reports.verify import trust_anchors, verify_pdf
from odeus_compliance.settings import Settings

__all__ = ["SIGNING_CHECKS", "SigningCheck", "check_signing"]

SIGNING_CHECKS: Final = ("signature", "coverage", "certificate")
"""The verification checks a trial signature must pass (a trial PDF has no manifest to check)."""

NOT_CONFIGURED: Final = "no report-signing key is configured"
DEMO_MISSING: Final = "the demo signing certificate has not been made"
UNUSABLE: Final = "the report-signing key or certificate cannot be used"
NOT_TRUSTED: Final = "a signed report would not verify against the trust anchors"


@dataclass(frozen=True, slots=True)
class SigningCheck:
    """The outcome of :func:`check_signing`; neither text holds a secret."""

    ok: bool
    reason: str
    """Short and fixed, safe for a public probe: ``ok`` or what is wrong, without paths or names."""
    detail: str
    """For the operator: what is wrong and what to set (variable names and paths)."""
    demo: bool = False
    """Whether reports are signed with the self-signed demo certificate."""


def _trial_pdf() -> bytes:
    """A one-page blank PDF to sign: three objects and their cross-reference table."""
    objects = (
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] /Resources << >> >>",
    )
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _failed(reason: str, detail: str, *, demo: bool = False) -> SigningCheck:
    return SigningCheck(ok=False, reason=reason, detail=detail, demo=demo)


def check_signing(settings: Settings) -> SigningCheck:
    """Sign and verify a trial PDF as a report would be (synchronous: call it in a thread from async code).

    Writes nothing, except that in the ``demo`` command a missing demo certificate is made (as
    :func:`load_signer` does there). Never raises: any failure is a failed check.
    """
    try:
        return _check(settings)
    except Exception as exc:  # noqa: BLE001 - a probe answers "not ready", never a 500 or a traceback
        return _failed(UNUSABLE, f"the signing check failed unexpectedly ({type(exc).__name__})")


def _check(settings: Settings) -> SigningCheck:
    if not settings.signing_key_configured and not settings.demo_certificate_allowed:
        return _failed(NOT_CONFIGURED, NO_SIGNER_CONFIGURED)
    if (
        not settings.signing_key_configured
        and not settings.demo
        and not demo_paths(settings.data_dir).folder.exists()
    ):
        return _failed(
            DEMO_MISSING,
            "no report-signing key is configured and the demo certificate (allowed by "
            "ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE) has not been made: run 'odeus-compliance init'",
        )
    try:
        signer: ReportSigner = load_signer(settings)
    except OdeusComplianceError as exc:
        return _failed(UNUSABLE, str(exc))
    try:
        anchors = trust_anchors(settings)
        signed = sign_pdf(_trial_pdf(), signer, tsa_url=None)
    except OdeusComplianceError as exc:
        return _failed(UNUSABLE, str(exc), demo=signer.demo)
    result = verify_pdf(signed, anchors=anchors)
    failed = [c for c in result.checks if c.name in SIGNING_CHECKS and not c.ok]
    if failed:
        hint = (
            "set ODEUS_COMPLIANCE_TRUST_ANCHORS_FILE to the CA certificate(s) that issued the signing "
            "certificate"
            if any(c.name == "certificate" for c in failed)
            else "check the signing key and certificate"
        )
        checks = "; ".join(f"{c.name}: {c.detail}" for c in failed)
        return _failed(NOT_TRUSTED, f"a trial signature does not verify ({checks}); {hint}", demo=signer.demo)
    if signer.demo:
        detail = (
            "reports are signed with the self-signed demo certificate, not for production "
            "(ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE=true); configure ODEUS_COMPLIANCE_SIGNING_KEY_FILE "
            "and ODEUS_COMPLIANCE_SIGNING_CERT_FILE for reports others can rely on"
        )
    else:
        # the fingerprint, not the subject: a signing certificate may name a person
        detail = (
            f"reports are signed with the configured certificate, SHA-256 {fingerprint(signer.certificate)}"
        )
    return SigningCheck(ok=True, reason="ok", detail=detail, demo=signer.demo)
