"""Schedule definitions: every rule refuses with a clear message that never repeats the value given."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from odeus_compliance.scheduling.model import CatchUp, Delivery, ScheduleError, ScheduleSpec
from odeus_compliance.scheduling.periods import Every
from odeus_compliance.scheduling.runner import RunSettings

GOOD: dict[str, Any] = {
    "name": "monthly-default",
    "every": "month",
    "day": 1,
    "time": "06:00",
    "timezone": "Europe/Berlin",
    "policy": "default",
}


def build(**changes: Any) -> ScheduleSpec:
    return ScheduleSpec.build(**{**GOOD, **changes})


def test_a_good_schedule() -> None:
    spec = build(catch_up="skip-and-record")
    assert (spec.every, spec.day, spec.time, spec.catch_up) == (
        Every.MONTH,
        1,
        dt.time(6, 0),
        CatchUp.SKIP_AND_RECORD,
    )
    assert spec.purpose == "scheduled monthly report monthly-default"
    assert build(every="week", day=7).purpose.startswith("scheduled weekly report")
    assert build().catch_up is CatchUp.RUN_MISSED_ONCE


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"timezone": "Europe/Berlinn"}, "timezone is not a known IANA time zone"),
        ({"timezone": "../../etc/passwd"}, "timezone is not a known IANA time zone"),
        ({"timezone": "localtime"}, "timezone is not a known IANA time zone"),
        ({"timezone": ""}, "timezone must be an IANA time zone name"),
        ({"every": "fortnight"}, "every must be one of: month, quarter, week"),
        ({"day": 29}, "day must be a day of the month from 1 to 28"),
        ({"day": 0}, "day must be a day of the month from 1 to 28"),
        ({"day": True}, "day must be a day of the month"),
        ({"every": "week", "day": 8}, "day must be an ISO weekday (1 = Monday) from 1 to 7"),
        ({"time": "24:00"}, "time must be HH:MM"),
        ({"time": "6:00"}, "time must be HH:MM"),
        ({"time": "06:00:00"}, "time must be HH:MM"),
        ({"policy": "../default"}, "policy must be the name of a policy file"),
        ({"name": "has space"}, "name must be 1-64 characters"),
        ({"name": "x" * 65}, "name must be 1-64 characters"),
        ({"catch_up": "always"}, "catch_up must be one of: run-missed-once, skip-and-record"),
    ],
)
def test_bad_schedules_are_refused_with_a_clear_error(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ScheduleError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        build(**changes)
    for value in changes.values():
        if isinstance(value, str) and len(value) > 3 and value not in {"week", "month"}:
            assert value not in str(info.value)


def test_delivery_never_echoes_secrets_or_addresses() -> None:
    secret_url = "http://hooks.example.com/T0KEN-abc123"
    with pytest.raises(ScheduleError, match="https:// URL") as info:
        build(delivery={"webhook_url": secret_url, "webhook_secret_env": "ODEUS_COMPLIANCE_WEBHOOK_HOOK"})
    assert "T0KEN" not in str(info.value)
    with pytest.raises(ScheduleError, match="must name an environment variable") as info:
        build(delivery={"webhook_url": "https://hooks.example.com/x", "webhook_secret_env": "s3cr3t-value!"})
    assert "s3cr3t" not in str(info.value)
    with pytest.raises(ScheduleError, match="webhook_secret_env is required"):
        build(delivery={"webhook_url": "https://hooks.example.com/x"})
    with pytest.raises(ScheduleError, match="entry 2 is not an e-mail address") as info:
        build(delivery={"email_to": ["dpo@example.com", "Jane Doe"]})
    assert "Jane" not in str(info.value)
    with pytest.raises(ScheduleError, match="unknown fields: <unnamed>"):
        build(delivery={"password=hunter2": 1})
    with pytest.raises(ScheduleError, match="cannot be turned off"):
        build(delivery={"archive": False})


def test_delivery_description_hides_url_and_addresses() -> None:
    delivery = Delivery.from_json(
        {
            "webhook_url": "https://hooks.example.com/T0KEN",
            "webhook_secret_env": "ODEUS_COMPLIANCE_WEBHOOK_HOOK",
            "email_to": ["dpo@example.com"],
        }
    )
    shown = repr(delivery.describe())
    assert "T0KEN" not in shown
    assert "dpo@" not in shown
    assert delivery.describe() == {
        "archive": True,
        "webhook": True,
        "email_recipients": 1,
        "email_attach_pdf": False,
    }
    assert Delivery.from_json(delivery.to_json()) == delivery


def test_webhook_urls_and_key_variables() -> None:
    ok = build(
        delivery={
            "webhook_url": "http://127.0.0.1:9/hook",
            "webhook_secret_env": "ODEUS_COMPLIANCE_WEBHOOK_A",
        }
    )
    assert ok.delivery.webhook_url == "http://127.0.0.1:9/hook"
    with pytest.raises(ScheduleError, match="plain http only to this host's loopback"):
        build(
            delivery={
                "webhook_url": "http://10.0.0.1/hook",
                "webhook_secret_env": "ODEUS_COMPLIANCE_WEBHOOK_A",
            }
        )
    with pytest.raises(ScheduleError, match="without user or password"):
        build(
            delivery={
                "webhook_url": "https://user:pw@hooks.example.com/",
                "webhook_secret_env": "ODEUS_COMPLIANCE_WEBHOOK_A",
            }
        )
    # only variables under the webhook prefix: a schedule cannot make the service send its master key
    with pytest.raises(ScheduleError, match="ODEUS_COMPLIANCE_WEBHOOK_<NAME>"):
        build(
            delivery={
                "webhook_url": "https://hooks.example.com/",
                "webhook_secret_env": "ODEUS_COMPLIANCE_MASTER_KEY",
            }
        )


def test_webhook_signature_matches_the_standard_webhooks_vector() -> None:
    """Our signature of the specification library's test vector is the one that library expects."""
    from odeus_compliance.notify.webhook import secret_key, sign  # noqa: PLC0415
    from tests.support.webhooks import SPEC_VECTOR, verify_standard_webhook  # noqa: PLC0415

    key = secret_key(str(SPEC_VECTOR["secret"]))
    assert key is not None
    message_id, timestamp = str(SPEC_VECTOR["id"]), int(str(SPEC_VECTOR["timestamp"]))
    body = SPEC_VECTOR["body"]
    assert isinstance(body, bytes)
    header = sign(key, message_id, timestamp, body)
    assert header == SPEC_VECTOR["signature"]
    headers = {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": header}
    assert verify_standard_webhook(str(SPEC_VECTOR["secret"]), headers, body, now=timestamp + 100)
    assert not verify_standard_webhook(str(SPEC_VECTOR["secret"]), headers, body, now=timestamp + 301)
    assert not verify_standard_webhook(str(SPEC_VECTOR["secret"]), headers, body + b" ", now=timestamp)
    assert not verify_standard_webhook(
        str(SPEC_VECTOR["secret"]), {**headers, "webhook-id": "msg_other"}, body, now=timestamp
    )


def test_only_standard_webhooks_secrets_are_used() -> None:
    from odeus_compliance.notify.webhook import secret_key  # noqa: PLC0415
    from tests.support.webhooks import new_secret  # noqa: PLC0415

    assert secret_key(new_secret(32)) is not None
    assert secret_key(new_secret(24)) is not None
    assert secret_key(new_secret(23)) is None  # shorter than the specification allows
    assert secret_key(new_secret(65)) is None
    assert secret_key("key-of-at-least-16-bytes") is None  # no whsec_ prefix
    assert secret_key("whsec_not base64!") is None


def test_settings_collect_webhook_keys_and_never_show_them(tmp_path: Any) -> None:
    import base64  # noqa: PLC0415

    from odeus_compliance.settings import Settings  # noqa: PLC0415

    env = {
        "ODEUS_COMPLIANCE_MASTER_KEY": base64.b64encode(bytes(32)).decode(),
        "ODEUS_API_KEY": "upstream",
        "ODEUS_COMPLIANCE_DATA_DIR": str(tmp_path),
        "ODEUS_COMPLIANCE_WEBHOOK_TEAMS": "hook-key-value-1",
        "ODEUS_COMPLIANCE_WEBHOOK_": "no name: ignored",
        "ODEUS_COMPLIANCE_WEBHOOK_EMPTY": "",
    }
    settings = Settings.from_env(env)
    assert set(settings.webhook_keys) == {"ODEUS_COMPLIANCE_WEBHOOK_TEAMS"}
    assert settings.webhook_keys["ODEUS_COMPLIANCE_WEBHOOK_TEAMS"].reveal() == "hook-key-value-1"
    assert "hook-key-value-1" not in repr(settings)


def test_smtp_urls_never_send_a_password_in_clear_and_errors_never_echo_it() -> None:
    from odeus_compliance.notify.mail import MailSender, parse_smtp_url  # noqa: PLC0415
    from odeus_compliance.settings import Secret, Settings  # noqa: PLC0415

    relay = parse_smtp_url("smtp://relay.internal")
    assert (relay.host, relay.port, relay.security, relay.username) == ("relay.internal", 25, "plain", None)
    local = parse_smtp_url("smtp://user:pw@127.0.0.1:2525")
    assert local.password is not None
    assert local.password.reveal() == "pw"
    secure = parse_smtp_url("smtp+starttls://mailer:s3cr%40t@mail.example.com")
    assert (secure.port, secure.security, secure.username) == (587, "starttls", "mailer")
    assert "s3cr" not in repr(secure)
    for url in ("smtp://mailer:hunter2@mail.example.com:25", "smtp://:hunter2@mail.example.com"):
        with pytest.raises(ValueError, match="smtp\\+starttls:// or smtps://") as caught:
            parse_smtp_url(url)
        assert "hunter2" not in str(caught.value)
        assert "mail.example.com" not in str(caught.value)

    async def reason() -> str | None:
        sender = MailSender.from_settings(
            Settings.for_tests(
                Path("/nonexistent"), smtp_url=Secret("smtp://mailer:hunter2@mail.example.com")
            )
        )
        return await sender.send(recipients=["dpo@example.com"], subject="s", text="t")

    why = asyncio.run(reason())
    assert why is not None
    assert "smtp+starttls://" in why
    assert "hunter2" not in why


def test_the_documented_webhook_receiver_accepts_our_signature_and_refuses_others() -> None:
    import re  # noqa: PLC0415
    import time  # noqa: PLC0415

    from odeus_compliance.notify.webhook import secret_key, sign  # noqa: PLC0415
    from tests.support.webhooks import new_secret  # noqa: PLC0415

    doc = (Path(__file__).parents[2] / "docs" / "scheduling.md").read_text(encoding="utf-8")
    section = doc.split("## Webhook", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    assert "compare_digest" in code.group(1)
    scope: dict[str, Any] = {}
    exec(compile(code.group(1), "docs/scheduling.md", "exec"), scope)  # our own documentation
    verified = scope["verified"]
    secret = new_secret()
    key = secret_key(secret)
    assert key is not None
    body = b'{"data":{"run_id":"r1"},"timestamp":"2026-11-01T05:00:00Z","type":"scheduled_report.succeeded"}'
    now = int(time.time())

    def headers(message_id: str, timestamp: int, signature: str) -> dict[str, str]:
        return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}

    good = headers("run-1", now, sign(key, "run-1", now, body))
    assert verified(secret, good, body)
    assert not verified(new_secret(), good, body)
    assert not verified(secret, good, body + b" ")
    assert not verified(secret, {**good, "webhook-id": "run-2"}, body)
    old = now - 3600
    assert not verified(secret, headers("run-1", old, sign(key, "run-1", old, body)), body)
    assert not verified(secret, {k: v for k, v in good.items() if k != "webhook-id"}, body)


def test_a_webhook_is_signed_with_the_real_time_even_on_a_backfill_clock() -> None:
    """``run-due --now`` in the past must not send a signature the receiver takes for a replay; a key that
    is not a Standard Webhooks secret signs nothing."""
    import http.server  # noqa: PLC0415
    import threading  # noqa: PLC0415

    from odeus_compliance.notify.webhook import WebhookSender  # noqa: PLC0415
    from odeus_compliance.settings import Secret  # noqa: PLC0415
    from tests.support.webhooks import new_secret, verify_standard_webhook  # noqa: PLC0415

    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    secret = new_secret()
    try:
        weak = WebhookSender({"ODEUS_COMPLIANCE_WEBHOOK_T": Secret("short-key-not-whsec")})
        sender = WebhookSender({"ODEUS_COMPLIANCE_WEBHOOK_T": Secret(secret)})
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        body = b'{"type":"scheduled_report.succeeded"}'

        async def send(with_sender: WebhookSender) -> str | None:
            return await with_sender.send(
                url=url, key_variable="ODEUS_COMPLIANCE_WEBHOOK_T", body=body, message_id="run-1"
            )

        assert asyncio.run(send(sender)) is None
        refusal = asyncio.run(send(weak))
        assert refusal is not None
        assert refusal.startswith("the webhook key in ODEUS_COMPLIANCE_WEBHOOK_T is not a Standard Webhooks")
        assert "short-key" not in refusal
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    [(headers, got)] = received  # the weak one sent nothing
    assert got == body
    assert headers["webhook-id"] == "run-1"
    assert headers["content-type"] == "application/json"
    assert verify_standard_webhook(secret, headers, body)  # within five minutes of the real clock


def test_next_due_is_the_next_period_that_will_run_even_with_a_later_active_from() -> None:
    import json  # noqa: PLC0415
    import uuid  # noqa: PLC0415

    from odeus_compliance.db.schedule_tables import Schedule  # noqa: PLC0415
    from odeus_compliance.scheduling.schemas import schedule_out  # noqa: PLC0415

    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)

    def row(active_from: dt.datetime) -> Schedule:
        return Schedule(
            id=uuid.uuid4(), name="m", every="month", day=1, time_of_day="06:00", timezone="Europe/Berlin",
            policy="default", catch_up="run-missed-once", delivery=json.dumps({}), enabled=True,
            active_from=active_from, revision=1, created_at=now, updated_at=now,
        )  # fmt: skip

    soon = schedule_out(row(now), now=now)
    assert (soon.next_period, soon.next_due_at.isoformat()) == ("2026-11", "2026-12-01T06:00:00+01:00")
    # periods due before active_from never run: the next one is the first due at or after it
    later = schedule_out(row(dt.datetime(2027, 2, 10, tzinfo=dt.UTC)), now=now)
    assert (later.next_period, later.next_due_at.isoformat()) == ("2027-02", "2027-03-01T06:00:00+01:00")
    exact = schedule_out(row(dt.datetime(2027, 3, 1, 5, 0, tzinfo=dt.UTC)), now=now)
    assert exact.next_period == "2027-02"  # due exactly at active_from: it runs


def test_a_failed_run_is_retried_by_the_next_tick_then_with_waits_doubling_to_the_longest() -> None:
    settings = RunSettings(attempts_per_tick=3, retry_backoff_seconds=60, retry_after_seconds=3600)
    delays = [settings.retry_delay(attempts) for attempts in (1, 3, 4, 6, 9, 12, 15, 18, 21, 24, 27)]
    assert delays == [0, 0, 60, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    waited = sum(settings.retry_delay(ticks * 3) for ticks in range(1, settings.max_attempts // 3))
    assert waited >= 3 * 3600  # the default attempts outlast an outage of three hours
