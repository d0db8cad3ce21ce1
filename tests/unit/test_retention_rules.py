"""Retention rules from configuration, the dates a report cites, hold scopes and receipt signatures."""

from __future__ import annotations

import base64
import datetime as dt
import os
import pickle
from pathlib import Path

import pytest

from odeus_compliance.audit.note import Signer, sign_note
from odeus_compliance.errors import ConfigurationError
from odeus_compliance.retention.holds import Hold
from odeus_compliance.retention.receipts import RECEIPT_HEADER, ReceiptError, items_digest, verify_receipt
from odeus_compliance.retention_rules import DataClass, RetentionRules, retention_dates
from odeus_compliance.settings import Settings

MADE = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)


def _env(**extra: str) -> dict[str, str]:
    return {
        "ODEUS_COMPLIANCE_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "ODEUS_API_KEY": "k",
        **extra,
    }


def test_defaults_and_configured_periods() -> None:
    defaults = Settings.from_env(_env())
    assert (defaults.retention_dataset_days, defaults.retention_report_days) == (90, 3653)
    assert (defaults.retention_audit_days, defaults.retention_key_epoch_days) == (3653, 30)
    custom = Settings.from_env(
        _env(ODEUS_COMPLIANCE_RETENTION_DATASET_DAYS="30", ODEUS_COMPLIANCE_RETENTION_REPORT_DAYS="2192")
    )
    rules = RetentionRules.from_settings(custom)
    assert rules.dataset == dt.timedelta(days=30)
    assert rules.report == dt.timedelta(days=2192)
    for bad in ("0", "-5", "ten", "1.5"):
        with pytest.raises(ConfigurationError, match="ODEUS_COMPLIANCE_RETENTION_AUDIT_DAYS"):
            Settings.from_env(_env(ODEUS_COMPLIANCE_RETENTION_AUDIT_DAYS=bad))


def test_report_cites_the_dates_of_every_class(tmp_path: Path) -> None:
    dates = retention_dates(Settings.for_tests(tmp_path), MADE)
    assert set(dates) == {c.value for c in DataClass}
    assert dates["raw-exports"] == "never stored"
    assert pickle.loads(pickle.dumps(dates)) == dates  # the meta travels to the render worker process
    assert dates["datasets"] == "until 2027-02-28 (90 days)"
    assert dates["reports"] == "until 2036-11-30 (3653 days)"  # ten years, three leap days between
    assert dates["audit-payloads"] == "until at least 2036-11-30 (3653 days)"
    shorter = retention_dates(Settings.for_tests(tmp_path, retention_dataset_days=31), MADE)
    assert shorter["datasets"] == "until 2026-12-31 (31 days)"
    with pytest.raises(ValueError, match="timezone-aware"):
        retention_dates(Settings.for_tests(tmp_path), MADE.replace(tzinfo=None))


def _hold(**scope: object) -> Hold:
    fields: dict[str, object] = {
        "id": "hold_1",
        "data_class": DataClass.REPORTS,
        "report_id": None,
        "period_from": None,
        "period_to": None,
        "reason": "case",
        "created_by": "cli",
        "created_at": MADE,
        "expires_at": None,
        "released_at": None,
        **scope,
    }
    return Hold(**fields)  # type: ignore[arg-type]


def test_hold_scope_and_expiry() -> None:
    october = (dt.datetime(2026, 10, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    assert _hold().covers_report("rpt_a", *october)
    assert not _hold(report_id="rpt_b").covers_report("rpt_a", *october)
    assert _hold(period_from=dt.datetime(2026, 10, 31, tzinfo=dt.UTC)).covers_period(*october)
    assert not _hold(period_from=october[1]).covers_period(*october)  # the end is exclusive
    assert not _hold(period_to=october[0]).covers_period(*october)
    expiring = _hold(expires_at=MADE + dt.timedelta(days=1))
    assert expiring.active_at(MADE)
    assert not expiring.active_at(MADE + dt.timedelta(days=1))
    assert not _hold(released_at=MADE).active_at(MADE)


def test_receipt_verification_refuses_other_keys_and_other_notes() -> None:
    signer = Signer.generate("odeus-compliance/abc")
    items = ["rpt_2", "rpt_1"]
    body = (
        f'{{"count":2,"id":"rcp_1","items_sha256":"{items_digest(items)}","origin":"odeus-compliance/abc",'
        '"status":"done"}\n'
    )
    note = sign_note(RECEIPT_HEADER + "\n" + body, signer)
    assert verify_receipt(note, vkey=signer.verifier.vkey, items=items)["id"] == "rcp_1"
    assert items_digest(items) == items_digest(list(reversed(items)))
    with pytest.raises(ReceiptError, match="signature"):
        verify_receipt(note, vkey=Signer.generate("odeus-compliance/abc").verifier.vkey)
    with pytest.raises(ReceiptError, match="hash or count"):
        verify_receipt(note, vkey=signer.verifier, items=["rpt_1"])
    checkpoint = sign_note("odeus-compliance/abc\n5\n" + base64.b64encode(bytes(32)).decode() + "\n", signer)
    with pytest.raises(ReceiptError, match="not a deletion receipt"):
        verify_receipt(checkpoint, vkey=signer.verifier)
