"""The engine behind the real upstream client and on the simulator's files, in every privacy variant."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest

from odeus_compliance.policy.csvout import CsvSink
from odeus_compliance.policy.engine import apply_policy_async, apply_to_file
from odeus_compliance.policy.keys import engine_keys
from odeus_compliance.policy.loader import load_policy
from odeus_compliance.upstream.client import OdeusClient
from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.config import OdeusClientConfig
from odeus_compliance.upstream.request import ExportRequest
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.render import select, to_csv, visible_columns
from odeus_compliance.upstream.simulator.server import run_simulator
from odeus_compliance.upstream.simulator.usage import Period, Privacy, build_table
from odeus_compliance.upstream.simulator.workspace import generate_workspace
from tests.support.policies import GATED_ROWS

POLICIES = Path(__file__).resolve().parents[2] / "policies"
TODAY = date(2026, 11, 20)
MASTER = bytes(range(1, 33))
OCTOBER = Period(1_790_812_800_000, 1_793_491_199_999, date(2026, 10, 1), date(2026, 10, 31))


def simulator_csv(config: SimulatorConfig) -> tuple[bytes, list[str]]:
    """The users export for October 2026 and every identifying value the workspace holds."""
    workspace = generate_workspace(users=config.users, seed=config.seed, today=TODAY, age_days=300)
    privacy = Privacy(config.user_level_data, config.anonymisation)
    table = build_table(
        workspace, ExportType.USERS, OCTOBER, byok=config.byok, group_by=None, privacy=privacy
    )
    data = to_csv(select(table, visible_columns(ExportType.USERS, None, config)), config)
    users = workspace.users
    return data, [*users.ids, *users.emails, *users.names, *(workspace.anon_id(i) for i in range(len(users)))]


def assert_nothing_identifying(text: str, identifying: list[str]) -> None:
    lowered = text.casefold()
    for value in identifying:
        assert value.casefold() not in lowered


@pytest.mark.parametrize(
    ("user_level_data", "anonymisation", "expected"),
    [
        (True, "empty", {}),
        (False, "empty", {"user_id": "opaque_ids", "name": "empty", "email": "empty"}),
        (False, "removed", {"user_id": "opaque_ids", "name": "removed", "email": "removed"}),
        (False, "placeholder", {"user_id": "opaque_ids", "name": "placeholder", "email": "placeholder"}),
    ],
)
def test_every_upstream_privacy_variant(
    tmp_path: Path, user_level_data: bool, anonymisation: str, expected: dict[str, str]
) -> None:
    config = SimulatorConfig(users=300, seed=3, user_level_data=user_level_data, anonymisation=anonymisation)  # type: ignore[arg-type]
    data, identifying = simulator_csv(config)
    source = tmp_path / "raw.csv"
    source.write_bytes(data)
    policy = load_policy(GATED_ROWS)
    out = tmp_path / "out.csv"
    result = apply_to_file(
        policy,
        ExportType.USERS,
        source=source,
        out=out,
        manifest_path=tmp_path / "out.manifest.json",
        keys=engine_keys(MASTER, policy),
    )
    text = out.read_text(encoding="utf-8")
    assert_nothing_identifying(text, identifying)
    manifest = result.manifest
    assert {a["column"]: a["how"] for a in manifest["upstream_anonymised"]} == expected
    if anonymisation == "removed" and not user_level_data:
        entry = next(c for c in manifest["columns"] if c["column"] == "email")
        assert entry["effective"] == "removed upstream"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows
    assert all(r["user_id"].startswith("u1_") for r in rows)
    assert manifest["disclosure"]["smallest_class"] >= 5


async def test_the_service_path_streams_from_the_client_and_matches_the_file_path(tmp_path: Path) -> None:
    config = SimulatorConfig(users=120, seed=5, today=TODAY, workspace_age_days=300)
    policy = load_policy(GATED_ROWS)
    keys = engine_keys(MASTER, policy)
    with run_simulator(config) as sim:
        client_config = OdeusClientConfig(
            api_key=sim.api_key, base_url=sim.base_url, download_hosts=frozenset({sim.download_host})
        )
        request = ExportRequest.for_month(ExportType.USERS, 2026, 10, "UTC")
        async with OdeusClient(client_config) as client, client.open_export(request) as export:
            sink = CsvSink(tmp_path / "stream.csv")
            result = await apply_policy_async(
                policy, ExportType.USERS, export.batches(), keys=keys, sink=sink, spool_dir=tmp_path
            )
            sink.commit()
    streamed = (tmp_path / "stream.csv").read_text(encoding="utf-8")
    assert result.rows_out > 0
    _, identifying = simulator_csv(SimulatorConfig(users=120, seed=5))
    assert_nothing_identifying(streamed, identifying)
    tokens = {row["user_id"] for row in csv.DictReader(io.StringIO(streamed))}
    assert len(tokens) == result.rows_out
    assert json.loads(json.dumps(result.manifest))["input"]["source"] == "upstream"
