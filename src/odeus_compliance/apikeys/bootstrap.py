"""Issuing one API key per role at once: the demo's ``--serve`` and the integration tests need a full set."""

from __future__ import annotations

from odeus_compliance.apikeys.actions import issue_api_key
from odeus_compliance.audit.appender import SYSTEM_CLI
from odeus_compliance.audit.standalone import standalone_recorder
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.security import ApiKeyPepper, Role
from odeus_compliance.settings import Settings


async def issue_role_keys(settings: Settings, *, label: str) -> dict[Role, str]:
    """Create a key named ``"<label> <role>"`` for every role in the (migrated) database, each recorded;
    return the plaintext keys, which exist nowhere else afterwards."""
    pepper = ApiKeyPepper.from_master_key(settings.require_master_key())
    engine = create_engine_for(settings)
    keys: dict[Role, str] = {}
    try:
        async with (
            standalone_recorder(settings, engine, SYSTEM_CLI) as recorder,
            session_factory(engine)() as session,
        ):
            for role in Role:
                _record, plaintext = await issue_api_key(
                    recorder, session=session, pepper=pepper, name=f"{label} {role.value}", role=role
                )
                keys[role] = plaintext
    finally:
        await engine.dispose()
    return keys
