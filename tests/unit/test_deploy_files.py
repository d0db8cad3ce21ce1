"""``deploy/``: the compose file, its proxy configuration and its settings agree with each other and with the
service (tests/e2e/test_replicas.py runs the same deployment as processes; no container runs here).

What could drift: a replica added to the compose file but not to the proxy, replicas whose settings differ
(any of them may run any job), a replica sharing another's data dir, a misspelt setting, the master key
passed as a plain variable, or a replica starting before ``init`` has prepared the database.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no stubs installed; only safe_load is used

from odeus_compliance.settings_check import settings_with_warnings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DATA_DIR = "/var/lib/odeus-compliance/data"
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z_]+)(?::[?-](?P<rest>[^}]*))?\}")
_EXAMPLE = {"POSTGRES_PASSWORD": "pw0123456789", "ODEUS_API_KEY": "sk-example"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))
    return loaded


def _interpolated(value: str) -> str:
    """Compose's ``${VAR:?message}`` and ``${VAR:-default}`` with the example values of env.example."""

    def one(match: re.Match[str]) -> str:
        if match["name"] in _EXAMPLE:
            return _EXAMPLE[match["name"]]
        return match["rest"] or ""

    return _INTERPOLATION.sub(one, value)


def _service_image_users(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services running the odeus-compliance image (built from the Containerfile)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("build", {}).get("dockerfile") == "Containerfile"
    }


def _replicas(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _service_image_users(compose).items() if name != "init"}


def test_two_or_more_replicas_start_after_init_and_probe_readiness(compose: dict[str, Any]) -> None:
    replicas = _replicas(compose)
    assert len(replicas) >= 2, sorted(replicas)
    init = compose["services"]["init"]
    assert init["command"] == ["init"]
    assert init["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert init["restart"] == "no"
    data_volumes = []
    for name, replica in replicas.items():
        assert replica["depends_on"] == {"init": {"condition": "service_completed_successfully"}}, name
        assert "/health/ready" in " ".join(replica["healthcheck"]["test"]), name
        assert "command" not in replica, name  # the image's own: serve on 0.0.0.0:8000
        (volume,) = replica["volumes"]
        source, target = volume.split(":")
        assert target == DATA_DIR, name
        data_volumes.append(source)
    assert len(set(data_volumes)) == len(data_volumes), data_volumes  # scratch: one volume per replica
    assert set(data_volumes) <= set(compose["volumes"])


def test_postgres_is_15_or_newer_with_a_volume_and_no_published_port(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    major = re.fullmatch(r"docker\.io/library/postgres:(\d+)(?:[.-].*)?", postgres["image"])
    assert major is not None, postgres["image"]
    assert int(major[1]) >= 15, postgres["image"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "ports" not in postgres
    assert compose["networks"]["backend"]["internal"] is True
    assert postgres["networks"] == ["backend"]


def test_every_service_container_has_the_same_valid_settings(compose: dict[str, Any], tmp_path: Path) -> None:
    users = _service_image_users(compose)
    environments = {name: service["environment"] for name, service in users.items()}
    first = next(iter(environments.values()))
    assert all(env == first for env in environments.values()), environments
    env = {name: _interpolated(str(value)) for name, value in first.items()}
    assert env["ODEUS_COMPLIANCE_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "ODEUS_COMPLIANCE_MASTER_KEY" not in env  # a secret file, never a variable
    secret_paths = {f"/run/secrets/{s}" for s in compose["secrets"]}
    for name in (
        "ODEUS_COMPLIANCE_MASTER_KEY_FILE",
        "ODEUS_COMPLIANCE_SIGNING_KEY_FILE",
        "ODEUS_COMPLIANCE_SIGNING_CERT_FILE",
        "ODEUS_COMPLIANCE_TRUST_ANCHORS_FILE",
    ):
        assert env[name] in secret_paths, name
    for name, service in users.items():
        assert sorted(service["secrets"]) == sorted(compose["secrets"]), name
    # the service reads the master key file when it starts: here, one with a key in it
    key_file = tmp_path / "master_key"
    key_file.write_text(base64.b64encode(bytes(32)).decode())
    settings, warnings = settings_with_warnings(
        {**env, "ODEUS_COMPLIANCE_MASTER_KEY_FILE": str(key_file)}, upstream=True
    )
    assert warnings == []  # every ODEUS_COMPLIANCE_* variable is one the service reads
    assert not settings.is_sqlite
    assert settings.signing_key_configured


def test_the_proxy_sends_to_every_replica_and_only_to_ready_ones(compose: dict[str, Any]) -> None:
    caddyfile = (DEPLOY / "Caddyfile").read_text("utf-8")
    (upstreams,) = re.findall(r"^\s*reverse_proxy ([^{]+)\{", caddyfile, re.MULTILINE)
    assert sorted(upstreams.split()) == sorted(f"{name}:8000" for name in _replicas(compose))
    assert re.search(r"^\s*health_uri /health/ready$", caddyfile, re.MULTILINE)
    assert re.search(r"^\s*lb_policy round_robin$", caddyfile, re.MULTILINE)
    proxy = compose["services"]["proxy"]
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert set(proxy["depends_on"]) == set(_replicas(compose))


def test_the_example_settings_name_what_the_compose_file_needs(compose: dict[str, Any]) -> None:
    example = (DEPLOY / "env.example").read_text("utf-8")
    defined = set(re.findall(r"^([A-Z_]+)=", example, re.MULTILINE))
    used = set(re.findall(r"\$\{([A-Z_]+)", (DEPLOY / "compose.yaml").read_text("utf-8")))
    assert used <= defined, used - defined
    ignored = (DEPLOY / ".gitignore").read_text("utf-8").split()
    assert {"/secrets/", "/.env"} <= set(ignored)
