"""Helpers for audit-log tests: the key ring, appending records, the CLI as a subprocess, raw SQL."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import text

from odeus_compliance.audit.appender import SYSTEM_CLI, AuditAppender
from odeus_compliance.audit.records import Action
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.keys.ring import KeyEncryptionKey, KeyRingStatus, ensure_key_ring
from odeus_compliance.settings import Settings

__all__ = ["CLI", "append_records", "cli", "cli_env", "init_ring", "sql"]

CLI = str(Path(sys.executable).with_name("odeus-compliance"))


def cli_env(settings: Settings | None) -> dict[str, str]:
    """The process environment without ODEUS_* variables, plus ``settings``'s (none: no configuration).

    Like test settings, it allows the demo signing certificate unless ``settings`` does not.
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith("ODEUS_")}
    if settings is None:
        return base
    return {
        **base,
        "ODEUS_COMPLIANCE_MASTER_KEY": base64.b64encode(settings.require_master_key()).decode(),
        "ODEUS_API_KEY": "upstream-test-key",
        "ODEUS_COMPLIANCE_DATA_DIR": str(settings.data_dir),
        "ODEUS_COMPLIANCE_DATABASE_URL": settings.database_url,
        "ODEUS_COMPLIANCE_ALLOW_DEMO_CERTIFICATE": "true" if settings.allow_demo_certificate else "false",
    }


def cli(settings: Settings | None, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``odeus-compliance ARGS`` as a subprocess."""
    return subprocess.run(
        [CLI, *args], env=cli_env(settings), capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def init_ring(settings: Settings) -> KeyRingStatus:
    """``keys init`` in-process."""

    async def go() -> KeyRingStatus:
        engine = create_engine_for(settings)
        try:
            async with session_factory(engine)() as session:
                return await ensure_key_ring(
                    session=session, kek=KeyEncryptionKey(settings.require_master_key())
                )
        finally:
            await engine.dispose()

    return asyncio.run(go())


async def append_records(
    settings: Settings, *, writers: int, each: int, checkpoint: bool = True
) -> list[int]:
    """``writers`` concurrent tasks appending ``each`` records; returns the seqs given out."""
    seqs: list[int] = []
    async with AuditAppender.open(settings) as appender:

        async def writer(w: int) -> None:
            for i in range(each):
                record = await appender.append(
                    actor=SYSTEM_CLI,
                    action=Action.REPORT_VIEWED,
                    resource=f"report:w{w}-{i}",
                    details={"count": i},
                )
                seqs.append(record.seq)

        await asyncio.gather(*(writer(w) for w in range(writers)))
        if checkpoint:
            await appender.checkpoint()
    return seqs


def sql(settings: Settings, statements: Sequence[tuple[str, dict[str, Any]]]) -> list[list[Any]]:
    """Run raw statements in one transaction; returns each one's rows (empty for writes)."""

    async def go() -> list[list[Any]]:
        engine = create_engine_for(settings)
        out: list[list[Any]] = []
        try:
            async with engine.begin() as conn:
                for statement, params in statements:
                    result = await conn.execute(text(statement), params)
                    out.append([tuple(r) for r in result.all()] if result.returns_rows else [])
        finally:
            await engine.dispose()
        return out

    return asyncio.run(go())
