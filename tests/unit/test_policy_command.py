"""``policy check``: exit codes 0/1/2, one problem per line, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from odeus_compliance.commands.policy import policy

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def test_valid_policies_exit_0_with_their_hashes() -> None:
    files = [str(POLICIES / f"{name}.toml") for name in ("default", "strict", "example")]
    result = CliRunner().invoke(policy, ["check", *files])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all(": ok: " in line and "sha256:" in line for line in lines)


def test_problems_exit_1_one_per_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    text = (POLICIES / "default.toml").read_text(encoding="utf-8").replace('name = "default"', 'name = "bad"')
    bad.write_text(text.replace('email = { op = "drop"', 'emial = { op = "drop"'), encoding="utf-8")
    good = POLICIES / "default.toml"
    result = CliRunner().invoke(policy, ["check", str(good), str(bad)])
    assert result.exit_code == 1
    problem_lines = [line for line in result.stdout.splitlines() if line.startswith(str(bad))]
    line = text[: text.index('email = { op = "drop"')].count("\n") + 1
    assert problem_lines == [f"{bad}:{line}: column 'emial' is not a users column; did you mean 'email'?"]
    assert "1 problem(s) in 1 of 2 policy file(s)" in result.stderr
    assert "Traceback" not in result.output


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(policy, ["check"]).exit_code == 2
    assert runner.invoke(policy, ["check", str(tmp_path / "missing.toml")]).exit_code == 2
    assert runner.invoke(policy, ["check", str(tmp_path)]).exit_code == 2


def test_runs_as_a_separate_process(tmp_path: Path) -> None:
    bad = tmp_path / "x.toml"
    bad.write_text("[policy\n", encoding="utf-8")
    code = "from odeus_compliance.commands.policy import policy; policy(prog_name='policy')"
    done = subprocess.run(
        [sys.executable, "-c", code, "check", str(bad)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert done.stdout.startswith(f"{bad}:1: not valid TOML")
    assert "Traceback" not in done.stderr
