"""Configuration mistakes are caught: a mistyped variable is named with its fix, and a read-only command
never creates an installation where there is none."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

KEY = base64.b64encode(bytes(range(32))).decode()


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ODEUS_")}
    return subprocess.run(
        [sys.executable, "-m", "odeus_compliance", *args],
        capture_output=True,
        text=True,
        env={**base, **env},
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_a_mistyped_variable_is_named_with_the_closest_setting_and_nothing_is_created(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"ODEUS_COMPLIANCE_DATADIR": str(data), "ODEUS_COMPLIANCE_MASTER_KEY": KEY}
    done = _cli("report", "list", cwd=tmp_path, env=env)
    assert "ODEUS_COMPLIANCE_DATADIR is not a setting" in done.stderr
    assert "did you mean ODEUS_COMPLIANCE_DATA_DIR?" in done.stderr
    # the typo left the default ./data in place: a read-only command does not make it
    assert done.returncode == 1
    assert "there is no installation at data" in done.stderr
    assert not (tmp_path / "data").exists()
    assert not data.exists()
    assert KEY not in done.stderr + done.stdout


def test_a_mistyped_variable_in_dot_env_is_named_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ODEUS_COMPLIANCE_LOG_LEVELS=DEBUG\n", encoding="utf-8")
    done = _cli("report", "list", cwd=tmp_path, env={"ODEUS_COMPLIANCE_MASTER_KEY": KEY})
    assert "ODEUS_COMPLIANCE_LOG_LEVELS is not a setting" in done.stderr
    assert "did you mean ODEUS_COMPLIANCE_LOG_LEVEL?" in done.stderr


def test_known_variables_and_webhook_keys_give_no_warning(tmp_path: Path) -> None:
    env = {
        "ODEUS_COMPLIANCE_DATA_DIR": str(tmp_path / "data"),
        "ODEUS_COMPLIANCE_MASTER_KEY": KEY,
        "ODEUS_COMPLIANCE_LOG_LEVEL": "INFO",
        "ODEUS_COMPLIANCE_WEBHOOK_TEAM": "secret-value",
    }
    upgraded = _cli("db", "upgrade", cwd=tmp_path, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    listed = _cli("report", "list", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "warning" not in listed.stderr
    assert "secret-value" not in listed.stderr + listed.stdout
