"""Route access declarations, the guard and the key pepper, without a database."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from litestar import get

from odeus_compliance.app import create_app
from odeus_compliance.errors import ConfigurationError
from odeus_compliance.security import ApiKeyPepper, Role, public, requires_role
from odeus_compliance.settings import Settings


@get("/api/v1/forgotten", sync_to_thread=False)
def forgotten() -> str:
    return "open?"


@get("/api/v1/both", opt={**public(), **requires_role(Role.ADMIN)}, sync_to_thread=False)
def both() -> str:
    return "?"


@get("/api/v1/empty", opt={"roles": ()}, sync_to_thread=False)
def empty() -> str:
    return "?"


@pytest.mark.parametrize("handler", [forgotten, both, empty])
def test_app_refuses_a_route_without_a_clear_access_declaration(tmp_path: Path, handler: object) -> None:
    with pytest.raises(ConfigurationError, match="must declare exactly one"):
        create_app(Settings.for_tests(tmp_path), extra_route_handlers=[handler])  # type: ignore[list-item]


def test_app_refuses_to_build_without_master_key(tmp_path: Path) -> None:
    settings = dataclasses.replace(Settings.for_tests(tmp_path), master_key=None)
    with pytest.raises(ConfigurationError, match="ODEUS_COMPLIANCE_MASTER_KEY"):
        create_app(settings)


def test_requires_role() -> None:
    assert requires_role("officer", Role.AUDITOR) == {"roles": (Role.OFFICER, Role.AUDITOR)}
    with pytest.raises(ValueError):
        requires_role()
    with pytest.raises(ValueError):
        requires_role("root")


def test_pepper_is_keyed_and_hidden() -> None:
    a = ApiKeyPepper.from_master_key(b"\x01" * 32)
    b = ApiKeyPepper.from_master_key(b"\x02" * 32)
    assert a.digest("oc_x_y") != b.digest("oc_x_y")
    assert a.digest("oc_x_y") == ApiKeyPepper.from_master_key(b"\x01" * 32).digest("oc_x_y")
    assert "*" in repr(a)
