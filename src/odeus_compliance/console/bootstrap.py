"""Making one-time sign-in links outside a request: the ``console link`` command and ``demo --serve``."""

from __future__ import annotations

from collections.abc import Sequence

from odeus_compliance.audit.appender import SYSTEM_CLI
from odeus_compliance.audit.standalone import standalone_recorder
from odeus_compliance.console.actions import make_sign_in_link
from odeus_compliance.console.tokens import ConsoleKeys
from odeus_compliance.core.clock import utcnow
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.settings import Settings

__all__ = ["SIGN_IN_PATH", "issue_sign_in_links"]

SIGN_IN_PATH = "/console/sign-in/"


async def issue_sign_in_links(
    settings: Settings, *, people: Sequence[tuple[str, str]], minutes: int, base_url: str
) -> list[str]:
    """One link per (name, role), each recorded as ``console.link_created`` by the command line; returns
    their URLs (which exist nowhere else: only a keyed hash of each token is stored)."""
    keys = ConsoleKeys(settings.require_master_key())
    engine = create_engine_for(settings)
    urls = []
    try:
        async with (
            standalone_recorder(settings, engine, SYSTEM_CLI) as recorder,
            session_factory(engine)() as session,
        ):
            for name, role in people:
                _link_id, token = await make_sign_in_link(
                    recorder, session=session, keys=keys, name=name, role=role, minutes=minutes, now=utcnow()
                )
                urls.append(f"{base_url.rstrip('/')}{SIGN_IN_PATH}{token}")
    finally:
        await engine.dispose()
    return urls
