"""``odeus-compliance schedule ...`` as a user runs it: clear one-line refusals, listing, history."""

from __future__ import annotations

import json
import subprocess

from odeus_compliance.settings import Settings
from tests.support.audit import CLI, cli_env


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "schedule", *args],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


BASE = ("--every", "month", "--day", "1", "--time", "06:00", "--policy", "default")


def test_bad_schedules_are_refused_in_one_line(migrated_settings: Settings) -> None:
    cases = [
        (("--timezone", "Europe/Atlantis"), "timezone is not a known IANA time zone"),
        (("--timezone", "Europe/Berlin", "--policy", "nope"), "policy is not a policy of the policy folder"),
        (("--timezone", "Europe/Berlin", "--day", "30"), "day must be a day of the month from 1 to 28"),
        (("--timezone", "Europe/Berlin", "--time", "6 am"), "time must be HH:MM"),
        (
            ("--timezone", "UTC", "--webhook-url", "https://h.example/S3CRET", "--webhook-secret-env", "k y"),
            "must name an environment variable",
        ),
    ]
    for extra, message in cases:
        result = run(migrated_settings, "set", "monthly", *BASE, *extra)
        assert result.returncode == 2, (extra, result.stderr)  # bad usage: nothing stored
        assert message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert "Atlantis" not in result.stderr
        assert "S3CRET" not in result.stderr
    listed = run(migrated_settings, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    # bad usage is click's exit 2
    assert (
        run(migrated_settings, "set", "monthly", *BASE, "--timezone", "UTC", "--every", "day").returncode == 2
    )
    assert run(migrated_settings, "run-due", "--now", "2026-12-01T06:00").returncode == 2  # no offset


def test_set_list_runs_and_nothing_due(migrated_settings: Settings) -> None:
    created = run(
        migrated_settings, "set", "q-report", *BASE, "--every", "quarter", "--timezone", "Asia/Kolkata"
    )
    assert created.returncode == 0, created.stderr
    assert "schedule q-report created" in created.stderr
    again = run(
        migrated_settings, "set", "q-report", *BASE, "--every", "quarter", "--timezone", "Asia/Kolkata"
    )
    assert "schedule q-report unchanged" in again.stderr
    listed = json.loads(run(migrated_settings, "list", "--json").stdout)
    assert [(s["name"], s["every"], s["timezone"], s["revision"]) for s in listed] == [
        ("q-report", "quarter", "Asia/Kolkata", 1)
    ]
    assert listed[0]["id"] == created.stdout.strip()
    assert listed[0]["next_period"].startswith("20")
    assert "-Q" in listed[0]["next_period"]
    assert listed[0]["next_due_at"].endswith("+05:30")
    # created now, so nothing has fallen due yet: an empty tick, an empty history
    tick = run(migrated_settings, "run-due")
    assert (tick.returncode, tick.stdout) == (0, ""), tick.stderr
    assert run(migrated_settings, "runs", "q-report").stdout == ""
    missing = run(migrated_settings, "runs", "no-such-schedule")
    assert missing.returncode == 1
    assert "there is no schedule of that name" in missing.stderr
