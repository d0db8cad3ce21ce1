"""The platform's CLI commands: ``db upgrade``, ``apikey create/list/revoke``, ``serve``.

In-process through click's ``CliRunner`` (on the command objects) and as real subprocesses of the installed
``odeus-compliance`` entry point: exit codes, one-line errors, the key printed once on stdout.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from odeus_compliance.apikeys.service import authenticate
from odeus_compliance.commands.apikey import apikey
from odeus_compliance.commands.db import db
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.db.migrate import schema_status
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.security import ApiKeyIdentity, ApiKeyPepper, Role
from odeus_compliance.settings import Settings

CLI = str(Path(sys.executable).with_name("odeus-compliance"))


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment that makes the CLI use ``settings``'s database, master key and signing choice."""
    return {
        "ODEUS_COMPLIANCE_MASTER_KEY": base64.b64encode(settings.require_master_key()).decode(),
        "ODEUS_API_KEY": "upstream-test-key",
        "ODEUS_COMPLIANCE_DATA_DIR": str(settings.data_dir),
        "ODEUS_COMPLIANCE_DATABASE_URL": settings.database_url,
        "ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE": "true" if settings.allow_demo_certificate else "false",
    }


def subprocess_env(settings: Settings | None) -> dict[str, str]:
    """The test process's environment without any ODEUS_* variable, plus ``settings``'s (or only an
    upstream key, for the refusal tests)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ODEUS_")}
    return {**base, **(cli_env(settings) if settings else {"ODEUS_API_KEY": "upstream-test-key"})}


def lookup(settings: Settings, presented: str) -> ApiKeyIdentity | None:
    async def _go() -> ApiKeyIdentity | None:
        engine = create_engine_for(settings)
        try:
            async with session_factory(engine)() as session:
                pepper = ApiKeyPepper.from_master_key(settings.require_master_key())
                return await authenticate(session=session, pepper=pepper, presented=presented)
        finally:
            await engine.dispose()

    return asyncio.run(_go())


def at_head(settings: Settings) -> bool:
    async def _go() -> bool:
        engine = create_engine_for(settings)
        try:
            return (await schema_status(engine)).at_head
        finally:
            await engine.dispose()

    return asyncio.run(_go())


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory, so no ``.env`` of the developer's is read."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_db_upgrade_then_apikey_create(settings: Settings, in_tmp: Path) -> None:
    runner = CliRunner()
    env = cli_env(settings)
    refused = runner.invoke(apikey, ["create", "--role", "officer", "--name", "x"], env=env)
    assert refused.exit_code == 1
    assert "odeus-compliance init" in refused.stderr
    assert refused.stdout == ""

    upgraded = runner.invoke(db, ["upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert at_head(settings)

    created = runner.invoke(apikey, ["create", "--role", "auditor", "--name", "Audit team"], env=env)
    assert created.exit_code == 0, created.output
    lines = created.stdout.splitlines()
    assert len(lines) == 1
    key = lines[0]
    assert key.startswith("oc_auditor_")
    assert key not in created.stderr
    assert "will not be shown again" in created.stderr
    identity = lookup(settings, key)
    assert identity is not None
    assert identity.role is Role.AUDITOR
    assert identity.key_id in created.stderr

    listed = runner.invoke(apikey, ["list"], env=env)
    assert listed.exit_code == 0
    assert identity.key_id in listed.stdout
    assert key not in listed.stdout
    revoked = runner.invoke(apikey, ["revoke", identity.key_id], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert lookup(settings, key) is None


def test_apikey_bad_usage(settings: Settings, in_tmp: Path) -> None:
    runner = CliRunner()
    env = cli_env(settings)
    assert runner.invoke(apikey, ["create", "--role", "root", "--name", "x"], env=env).exit_code == 2
    assert runner.invoke(apikey, ["create", "--role", "admin"], env=env).exit_code == 2
    assert runner.invoke(apikey, ["create", "--role", "admin", "--name", " "], env=env).exit_code == 2
    assert runner.invoke(apikey, ["revoke", "not-a-uuid"], env=env).exit_code == 2


def test_apikey_without_master_key_is_one_line(in_tmp: Path) -> None:
    result = CliRunner().invoke(
        apikey, ["create", "--role", "admin", "--name", "x"], env={"ODEUS_API_KEY": "k"}
    )
    assert result.exit_code == 1
    assert "ODEUS_COMPLIANCE_MASTER_KEY" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def run_cli(*args: str, settings: Settings | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args],
        env=subprocess_env(settings),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_subprocess_db_upgrade_and_apikey_create(settings: Settings, tmp_path: Path) -> None:
    upgraded = run_cli("db", "upgrade", settings=settings, cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    created = run_cli(
        "apikey", "create", "--role", "officer", "--name", "ops", settings=settings, cwd=tmp_path
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert "\n" not in key
    assert key.startswith("oc_officer_")
    identity = lookup(settings, key)
    assert identity is not None
    assert identity.role is Role.OFFICER


def test_serve_refuses_without_master_key(tmp_path: Path) -> None:
    result = run_cli("serve", "--port", "1", settings=None, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "ODEUS_COMPLIANCE_MASTER_KEY" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_serve_refuses_an_unmigrated_database(settings: Settings, tmp_path: Path) -> None:
    result = run_cli("serve", "--port", "1", settings=settings, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "odeus-compliance init" in lines[0]


def test_serve_bad_usage(tmp_path: Path) -> None:
    result = run_cli("serve", "--port", "not-a-port", settings=None, cwd=tmp_path)
    assert result.returncode == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(migrated_settings: Settings, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    ensure_demo_certificate(migrated_settings.data_dir, migrated_settings.require_master_key())  # ready
    port = _free_port()
    process = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=subprocess_env(migrated_settings),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"serve exited early: {process.stderr.read() if process.stderr else ''}")
            try:
                httpx.get(f"{base_url}/health/live", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base_url, process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)
        for stream in (process.stdout, process.stderr):
            if stream is not None and not stream.closed:
                stream.close()


def test_serve_serves_and_logs_json(served: tuple[str, subprocess.Popen[str]]) -> None:
    base_url, process = served
    assert httpx.get(f"{base_url}/health/ready").json() == {"status": "ok"}
    assert httpx.get(f"{base_url}/api/v1/whoami?email=jane@example.com").status_code == 401
    process.terminate()
    _out, err = process.communicate(timeout=30)
    assert "jane@example.com" not in err
    assert '"event": "request"' in err
    assert '"route": "/api/v1/whoami"' in err


@pytest.mark.parametrize("name", ["ops\tteam", "ops\nfake-row", "bell\x07"])
def test_apikey_name_with_control_characters_is_bad_usage(
    settings: Settings, in_tmp: Path, name: str
) -> None:
    result = CliRunner().invoke(apikey, ["create", "--role", "admin", "--name", name], env=cli_env(settings))
    assert result.exit_code == 2
    assert result.stdout == ""


def test_a_broken_dotenv_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"ODEUS_API_KEY=\xff\xfe\n")
    result = run_cli("db", "upgrade", settings=None, cwd=tmp_path)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    (tmp_path / ".env").write_text('ODEUS_COMPLIANCE_MASTER_KEY="unterminated\n')
    result = run_cli("db", "upgrade", settings=None, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["Error: .env line 1 cannot be parsed"]


def test_every_command_has_help_as_a_subprocess(tmp_path: Path) -> None:
    commands = [
        [],
        ["serve"],
        ["db"],
        ["db", "upgrade"],
        ["apikey"],
        ["apikey", "create"],
        ["apikey", "list"],
    ]
    commands += [["apikey", "revoke"], ["simulator"], ["policy"], ["demo"]]
    for command in commands:
        result = run_cli(*command, "--help", settings=None, cwd=tmp_path)
        assert result.returncode == 0, (command, result.stderr)
        assert result.stdout.startswith("Usage: odeus-compliance"), command
    for bad in (
        ["nosuch"],
        ["db", "nosuch"],
        ["apikey", "create", "--role", "officer"],
        ["serve", "--port", "0"],
    ):
        result = run_cli(*bad, settings=None, cwd=tmp_path)
        assert result.returncode == 2, (bad, result.stderr)
        assert "Traceback" not in result.stderr
