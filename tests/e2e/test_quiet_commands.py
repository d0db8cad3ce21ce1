"""Commands print what they mean to print: no warning and no traceback reaches a user's terminal.

Run as a user runs them: the installed ``odeus-compliance`` script in a subprocess, with the environment's
own warning settings, and again with every warning turned into an error (so any warning other than the one
narrowly filtered dependency warning would fail the command).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

COMMAND = str(Path(sys.executable).with_name("odeus-compliance"))
NOISE = re.compile(r"Warning\b|warnings\.warn|Traceback|DeprecationWarning", re.IGNORECASE)


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COMMAND, *args], capture_output=True, text=True, timeout=300, env=env, check=False)


def _clean_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ODEUS", "PYTHONWARNINGS"))}
    return env | extra


@pytest.mark.parametrize("warnings", ["", "error"], ids=["as-configured", "every-warning-an-error"])
def test_demo_and_report_verify_write_no_warning_and_no_traceback(tmp_path: Path, warnings: str) -> None:
    env = _clean_environment(**({"PYTHONWARNINGS": warnings} if warnings else {}))
    demo = _run("demo", "--out", str(tmp_path / "out"), "--users", "40", env=env)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert not NOISE.search(demo.stderr), demo.stderr[-2000:]
    assert "report verification: VALID" in demo.stdout

    data = tmp_path / "out" / "data"
    env |= {"ODEUS_COMPLIANCE_DATA_DIR": str(data)}
    verify = _run("report", "verify", str(tmp_path / "out" / "report.pdf"), env=env)
    assert verify.returncode == 0, verify.stderr[-2000:]
    assert verify.stderr == ""


def test_the_filtered_warning_is_real_so_the_filter_is_still_needed() -> None:
    # without the CLI's filter, importing pyHanko warns (if this fails, drop warning_filters.py's filter)
    probe = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import pyhanko.sign"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_environment(),
        check=False,
    )
    assert "DSA is deprecated" in probe.stderr


def test_the_filter_lets_every_other_warning_through(tmp_path: Path) -> None:
    # narrow: the same category from our own code, or another message from pyHanko's modules, still warns
    script = (
        "import warnings\n"
        "from odeus_compliance import warning_filters\n"
        "from cryptography.utils import CryptographyDeprecationWarning as C\n"
        "warning_filters.install()\n"
        "warnings.warn('DSA is deprecated (ours)', C)\n"
        "warnings.warn_explicit('other', C, 'x.py', 1, module='pyhanko.sign.general')\n"
        "warnings.warn_explicit('DSA is deprecated', C, 'x.py', 1, module='pyhanko.sign.general')\n"
    )
    probe = subprocess.run(
        [sys.executable, "-W", "default", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_environment(),
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    assert "DSA is deprecated (ours)" in probe.stderr
    assert "other" in probe.stderr
    assert probe.stderr.count("DSA is deprecated") == 1
