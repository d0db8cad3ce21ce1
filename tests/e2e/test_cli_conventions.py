"""The command line's conventions, as a user meets them (the installed command in a subprocess):

- every usage mistake (a bad time, zone or policy, a range that ends before it starts, a missing option) is
  exit 2 and one line, ``Error: ... (try '<command> --help')``, without click's usage block; a failed
  operation is exit 1 and one line;
- every listing prints a header, or ``nothing yet`` when empty, and with ``--json`` one JSON array; every
  verification with ``--json`` one JSON object with ``valid``;
- progress goes to stderr only when stderr is a terminal;
- shell completion works as the README says.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from odeus_compliance.settings import Settings
from tests.support.audit import CLI, cli, cli_env, init_ring

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

_ONE_LINE_USAGE = re.compile(r"^Error: .+ \(try 'odeus-compliance( [a-z-]+)* --help'\)$")


def _with_audit_records(settings: Settings) -> None:
    """``keys init``: the key ring, and its creation recorded in the audit log (a log that verifies)."""
    made = cli(settings, "keys", "init")
    assert made.returncode == 0, made.stderr


def _assert_usage_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, (result.args, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert _ONE_LINE_USAGE.match(lines[0]), lines[0]
    assert "Usage:" not in result.stderr
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])


@SQLITE
def test_every_usage_mistake_is_exit_2_in_one_line(migrated_settings: Settings, tmp_path: Path) -> None:
    init_ring(migrated_settings)
    s = migrated_settings
    out = str(tmp_path / "bundle.json")
    mistakes: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
        # bad times
        (("schedule", "run-due", "--now", "2026-12-01T06:00"), ("--now", "UTC offset")),
        (("retention", "run", "--now", "yesterday"), ("--now", "ISO 8601")),
        (("audit", "export", "--from", "last week", "--to", "2026-01-01", "--out", out), ("--from",)),
        (("report", "run", "--month", "2026-13"), ("--month", "YYYY-MM")),
        # bad zones
        (("report", "run", "--month", "2026-10", "--timezone", "Mars/Olympus"), ("--timezone",)),
        (
            (
                "schedule",
                "set",
                "m",
                "--day",
                "1",
                "--time",
                "06:00",
                "--timezone",
                "Mars/Olympus",
                "--policy",
                "default",
            ),
            ("timezone is not a known IANA time zone",),
        ),
        # unknown policies
        (("report", "run", "--month", "2026-10", "--policy", "nope"), ("--policy", "no policy named")),
        (
            (
                "schedule",
                "set",
                "m",
                "--day",
                "1",
                "--time",
                "06:00",
                "--timezone",
                "UTC",
                "--policy",
                "nope",
            ),
            ("policy",),
        ),
        # ranges that end before they start
        (("audit", "export", "--from", "2026-02-01", "--to", "2026-01-01", "--out", out), ("--to",)),
        (
            (
                "retention",
                "hold",
                "add",
                "--class",
                "reports",
                "--reason",
                "x",
                "--from",
                "2026-02-01T00:00Z",
                "--to",
                "2026-01-01T00:00Z",
            ),
            ("must end after it starts",),
        ),
        # click's own: a missing option, an unknown command or option, a value not among the choices
        (("report", "run"), ("Missing option '--month'",)),
        (("nosuch",), ("No such command",)),
        (("report", "list", "--bogus"), ("No such option",)),
        (("apikey", "create", "--role", "root", "--name", "x"), ("--role",)),
    ]
    for args, expected in mistakes:
        _assert_usage_error(cli(s, *args), *expected)
    assert not Path(out).exists()
    # nothing of it reached the audit log or the archive
    assert json.loads(cli(s, "report", "list", "--json").stdout) == []
    assert json.loads(cli(s, "schedule", "list", "--json").stdout) == []
    assert json.loads(cli(s, "retention", "hold", "list", "--json").stdout) == []


@SQLITE
def test_a_failed_operation_is_exit_1_in_one_line(migrated_settings: Settings) -> None:
    init_ring(migrated_settings)
    for args, expected in (
        (("report", "cancel", "rpt_000000000000000000000000", "--purpose", "tidy up"), "no report"),
        (("retention", "hold", "release", "hold_0000000000000000"), "no unreleased hold"),
        (("schedule", "runs", "no-such-schedule"), "no schedule of that name"),
    ):
        result = cli(migrated_settings, *args)
        assert result.returncode == 1, (args, result.stderr)
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("Error: "), line
        assert expected in line.lower(), line
        assert "--help" not in line  # not a usage mistake: no hint


def _listings(schedule: str) -> list[tuple[str, ...]]:
    return [
        ("report", "list"),
        ("apikey", "list"),
        ("schedule", "list"),
        ("schedule", "runs", schedule),
        ("retention", "receipts"),
        ("retention", "hold", "list"),
    ]


@SQLITE
def test_empty_listings_say_nothing_yet_and_json_is_an_empty_array(migrated_settings: Settings) -> None:
    init_ring(migrated_settings)
    s = migrated_settings
    created = cli(
        s, "schedule", "set", "m", "--day", "1", "--time", "06:00", "--timezone", "UTC", "--policy", "default"
    )
    assert created.returncode == 0, created.stderr
    for args in _listings("m"):
        if args == ("schedule", "list"):
            continue  # it has the schedule
        text = cli(s, *args)
        assert text.returncode == 0, (args, text.stderr)
        assert text.stdout == "", (args, text.stdout)
        assert "nothing yet" in text.stderr.splitlines(), (args, text.stderr)
        as_json = cli(s, *args, "--json")
        assert as_json.returncode == 0, (args, as_json.stderr)
        assert json.loads(as_json.stdout) == [], args


@SQLITE
def test_listings_have_headers_and_json_arrays_of_the_same_keys(migrated_settings: Settings) -> None:
    init_ring(migrated_settings)
    s = migrated_settings
    assert cli(s, "apikey", "create", "--role", "auditor", "--name", "Audit team").returncode == 0
    assert (
        cli(
            s,
            "schedule",
            "set",
            "m",
            "--day",
            "1",
            "--time",
            "06:00",
            "--timezone",
            "UTC",
            "--policy",
            "default",
        )
    ).returncode == 0
    held = cli(s, "retention", "hold", "add", "--class", "reports", "--reason", "case 1")
    assert held.returncode == 0, held.stderr
    for args, count in (
        (("apikey", "list"), 1),
        (("schedule", "list"), 1),
        (("retention", "hold", "list"), 1),
    ):
        text = cli(s, *args)
        assert text.returncode == 0, text.stderr
        header, *rows = text.stdout.splitlines()
        assert len(rows) == count, text.stdout
        columns = header.split("\t")
        assert columns[0] == "id", header
        assert all(len(row.split("\t")) == len(columns) for row in rows), text.stdout
        listed: list[dict[str, Any]] = json.loads(cli(s, *args, "--json").stdout)
        assert isinstance(listed, list)
        assert len(listed) == count
        assert set(columns) <= set(listed[0]), (columns, listed[0])
        assert rows[0].split("\t")[0] == listed[0]["id"]


@SQLITE
def test_verifications_print_one_json_object(migrated_settings: Settings) -> None:
    _with_audit_records(migrated_settings)
    verified = cli(migrated_settings, "audit", "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    verdict = json.loads(verified.stdout)
    assert verdict["valid"] is True
    assert verdict["problems"] == []
    assert verdict["entries"] >= 1
    policies = Path(__file__).parents[2] / "policies"
    checked = cli(None, "policy", "check", "--json", str(policies / "default.toml"))
    assert checked.returncode == 0, checked.stderr
    body = json.loads(checked.stdout)
    assert body["valid"] is True
    assert [f["name"] for f in body["files"]] == ["default"]
    broken = migrated_settings.data_dir.parent / "broken.toml"
    broken.write_text("[policy]\nname = 'broken'\n", encoding="utf-8")
    refused = cli(None, "policy", "check", "--json", str(broken))
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["valid"] is False


def _with_stderr_on_a_terminal(settings: Settings, *args: str) -> tuple[int, str, str]:
    """Run the command with stderr on a pseudo-terminal (stdout a pipe); its exit code, stdout, stderr."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [CLI, *args], env=cli_env(settings), stdout=subprocess.PIPE, stderr=terminal
        )
    finally:
        os.close(terminal)
    stdout, _ = process.communicate(timeout=120)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal's other end is closed and everything was read
            break
        if not chunk:
            break
        seen += chunk
    os.close(controller)
    return process.returncode, stdout.decode(), seen.decode()


@SQLITE
def test_progress_only_on_a_terminal(migrated_settings: Settings) -> None:
    _with_audit_records(migrated_settings)
    code, stdout, stderr = _with_stderr_on_a_terminal(migrated_settings, "audit", "verify")
    assert code == 0, stderr
    assert "verifying the audit log ..." in stderr
    assert stdout.startswith("valid\n")  # the verdict itself is not mixed with the progress line
    piped = cli(migrated_settings, "audit", "verify")
    assert piped.returncode == 0
    assert "verifying" not in piped.stderr
    assert "\r" not in piped.stderr


def test_shell_completion_as_documented(tmp_path: Path) -> None:
    env = {**cli_env(None), "_ODEUS_COMPLIANCE_COMPLETE": "bash_source"}
    source = subprocess.run(
        [CLI], env=env, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path
    )
    assert source.returncode == 0, source.stderr
    assert "complete " in source.stdout
    assert "_ODEUS_COMPLIANCE_COMPLETE=bash_complete" in source.stdout
    env = {
        **cli_env(None),
        "_ODEUS_COMPLIANCE_COMPLETE": "bash_complete",
        "COMP_WORDS": "odeus-compliance report l",
        "COMP_CWORD": "2",
    }
    words = subprocess.run(
        [CLI], env=env, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path
    )
    assert words.returncode == 0, words.stderr
    assert "plain,list" in words.stdout.splitlines()
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert "_ODEUS_COMPLIANCE_COMPLETE=bash_source odeus-compliance" in readme
