"""The auditor HTTP API over a real server: entries, checkpoint, proofs (checked with the pure verifier),
consistency, verify, export; denials recorded; a failing audit write is a 503 and hands nothing out."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from odeus_compliance.audit.bundle_verify import verify_bundle
from odeus_compliance.audit.checkpoint import open_checkpoint
from odeus_compliance.audit.leaf import parse_leaf
from odeus_compliance.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from odeus_compliance.audit.note import parse_vkey
from odeus_compliance.audit.verdict import ProblemKind
from odeus_compliance.security import Role
from tests.support.audit import cli, sql
from tests.support.server import LiveServer


def b64d(text: str) -> bytes:
    return base64.b64decode(text)


def entries(client: httpx.Client, server: LiveServer, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/audit/entries", params=params, headers=server.auth(Role.AUDITOR))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_auditor_api(live_server: LiveServer) -> None:
    server = live_server
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        # a few records: denials (anonymous 401, officer 403) and auditor reads
        assert client.get("/api/v1/audit/entries").status_code == 401
        assert client.get("/api/v1/audit/entries", headers=server.auth(Role.OFFICER)).status_code == 403
        first = client.get("/api/v1/audit/checkpoint", headers=server.auth(Role.AUDITOR))
        assert first.status_code == 200, first.text
        held = first.json()
        verifier = parse_vkey(held["vkey"])
        held_cp = open_checkpoint(held["note"], verifier, origin=held["origin"])
        assert held_cp.size == held["size"] >= 3

        page = entries(client, server, limit=2)
        assert [e["seq"] for e in page["entries"]] == [0, 1]
        assert page["next_after"] == 1
        rest = entries(client, server, after=1, limit=1000)
        records = [e["record"] for e in page["entries"] + rest["entries"]]
        denied = [r for r in records if r["action"] == "access.denied"]
        assert [(r["role"], r["details"]["http_status"], r["outcome"]) for r in denied] == [
            ("anonymous", 401, "denied"),
            ("officer", 403, "denied"),
        ]
        assert denied[0]["actor_key_id"] is None
        assert denied[1]["details"]["route"] == "/api/v1/audit/entries"
        for entry in page["entries"] + rest["entries"]:
            leaf = parse_leaf(entry["leaf"])
            assert leaf.seq == entry["seq"] == entry["record"]["seq"]
        reads = [r for r in records if r["action"] == "audit.read"]
        assert reads
        assert all(r["role"] == "auditor" and r["purpose"] for r in reads)
        assert all(r["request_id"] for r in records if r["role"] != "system")

        # filters
        only_denied = entries(client, server, action="access.denied", outcome="denied")
        assert [e["record"]["action"] for e in only_denied["entries"]] == ["access.denied"] * 2
        by_resource = entries(client, server, resource="audit:checkpoint")
        assert {e["record"]["resource"] for e in by_resource["entries"]} == {"audit:checkpoint"}
        officer_id = denied[1]["actor_key_id"]
        assert [
            e["record"]["actor_key_id"] for e in entries(client, server, actor=officer_id)["entries"]
        ] == [officer_id]
        assert entries(client, server, **{"from": "2100-01-01T00:00:00Z"})["entries"] == []
        for bad in (
            {"action": "nope"},
            {"outcome": "maybe"},
            {"from": "yesterday"},
            {"to": "2026-01-01T00:00"},
        ):
            response = client.get("/api/v1/audit/entries", params=bad, headers=server.auth(Role.AUDITOR))
            assert response.status_code == 400, (bad, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        assert (
            client.get(
                "/api/v1/audit/entries", params={"limit": 5000}, headers=server.auth(Role.AUDITOR)
            ).status_code
            == 400
        )

        # inclusion proof, checked with the pure verifier against the signed checkpoint
        proof = client.get("/api/v1/audit/entries/1/proof", headers=server.auth(Role.AUDITOR)).json()
        cp = open_checkpoint(proof["checkpoint"], verifier, origin=held["origin"])
        assert cp.size == proof["tree_size"]
        assert b64d(proof["leaf_hash"]) == leaf_hash(proof["leaf"].encode())
        assert verify_inclusion(
            1, cp.size, leaf_hash(proof["leaf"].encode()), [b64d(h) for h in proof["proof"]], cp.root
        )
        at_held = client.get(
            "/api/v1/audit/entries/1/proof", params={"size": held_cp.size}, headers=server.auth(Role.AUDITOR)
        ).json()
        assert verify_inclusion(
            1,
            held_cp.size,
            leaf_hash(at_held["leaf"].encode()),
            [b64d(h) for h in at_held["proof"]],
            held_cp.root,
        )
        assert (
            client.get("/api/v1/audit/entries/999999/proof", headers=server.auth(Role.AUDITOR)).status_code
            == 404
        )

        # consistency from the held checkpoint to the newest
        cons = client.get(
            "/api/v1/audit/consistency", params={"from": held_cp.size}, headers=server.auth(Role.AUDITOR)
        ).json()
        new_cp = open_checkpoint(cons["to_checkpoint"], verifier, origin=held["origin"])
        assert cons["from"] == held_cp.size
        assert cons["to"] == new_cp.size > held_cp.size
        assert cons["from_checkpoint"] == held["note"]
        assert verify_consistency(
            held_cp.size, new_cp.size, held_cp.root, new_cp.root, [b64d(h) for h in cons["proof"]]
        )
        assert (
            client.get(
                "/api/v1/audit/consistency",
                params={"from": 1, "to": 999999},
                headers=server.auth(Role.AUDITOR),
            ).status_code
            == 404
        )

        # verify the whole log now
        verdict = client.get("/api/v1/audit/verify", headers=server.auth(Role.AUDITOR)).json()
        assert verdict["valid"] is True, verdict
        assert verdict["problems"] == []

        # export, verified offline against the trusted key and the held checkpoint
        exported = client.post(
            "/api/v1/audit/export",
            json={
                "from": "2000-01-01T00:00:00Z",
                "to": "2100-01-01T00:00:00+02:00",
                "since_checkpoint": held["note"],
            },
            headers=server.auth(Role.AUDITOR),
        )
        assert exported.status_code == 200, exported.text
        assert exported.headers["content-type"].startswith("application/json")
        assert "attachment" in exported.headers["content-disposition"]
        report = verify_bundle(exported.content, trusted_vkey=held["vkey"], previous_checkpoint=held["note"])
        assert report.valid, report.summary()
        assert report.first_seq == 0
        incomplete = client.post(
            "/api/v1/audit/export", json={"from": "2001-01-01T00:00:00Z"}, headers=server.auth(Role.AUDITOR)
        )
        assert incomplete.status_code == 400

        # every read above was itself recorded
        actions = [e["record"]["action"] for e in entries(client, server, limit=1000)["entries"]]
        assert actions.count("audit.verified") == 1
        assert actions.count("audit.exported") == 1
        assert actions.count("audit.read") >= 10


def _export(client: httpx.Client, server: LiveServer, start: str, end: str) -> bytes:
    response = client.post(
        "/api/v1/audit/export", json={"from": start, "to": end}, headers=server.auth(Role.AUDITOR)
    )
    assert response.status_code == 200, response.text
    return response.content


def test_exported_bundle_cut_at_either_end_is_named(live_server: LiveServer, tmp_path: Path) -> None:
    """A bundle exported over HTTP states its range, signed: cutting its last or first entry, a middle one,
    or editing the statement is each named, by the offline verifier in-process and by the CLI."""
    server = live_server
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        for _ in range(4):  # a few records to export
            assert (
                client.get("/api/v1/audit/checkpoint", headers=server.auth(Role.AUDITOR)).status_code == 200
            )
        data = _export(client, server, "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z")
    clean = json.loads(data)
    vkey = clean["vkey"]
    count = len(clean["entries"])
    assert count >= 4
    last = clean["entries"][-1]["seq"]
    assert f"\nfirst 0\nlast {last}\n" in clean["range"]

    def cut(index: int) -> Callable[[dict[str, Any]], object]:
        return lambda bundle: bundle["entries"].pop(index)

    def restate(bundle: dict[str, Any]) -> None:
        bundle["entries"].pop()
        bundle["range"] = bundle["range"].replace(f"\nlast {last}\n", f"\nlast {last - 1}\n")

    def downgrade(bundle: dict[str, Any]) -> None:
        del bundle["range"]
        bundle["format"] = "odeus-compliance-audit-bundle/1"

    cases: dict[str, tuple[Callable[[dict[str, Any]], object] | None, set[ProblemKind], str]] = {
        "untouched": (None, set(), "valid\n"),
        "last-removed": (
            cut(-1),
            {ProblemKind.TRUNCATED},
            f"truncated: seq {last}: 1 entries cut off at the tail",
        ),
        "first-removed": (cut(0), {ProblemKind.TRUNCATED}, "truncated: seq 0: 1 entries cut off at the head"),
        "middle-removed": (cut(2), {ProblemKind.MISSING}, "missing: seq 2: absent from the range"),
        "range-changed": (restate, {ProblemKind.BAD_SIGNATURE}, "bad-signature: the range statement"),
        "range-removed": (downgrade, {ProblemKind.UNPROVEN}, "unproven: the bundle does not state the range"),
    }
    for name, (tamper, kinds, said) in cases.items():
        bundle = json.loads(data)
        if tamper is not None:
            tamper(bundle)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(bundle), encoding="utf-8")
        report = verify_bundle(path.read_bytes(), trusted_vkey=vkey)
        assert {p.kind for p in report.problems} == kinds, (name, report.summary())
        result = cli(None, "audit", "verify", "--bundle", str(path), "--vkey", vkey, cwd=tmp_path)
        assert result.returncode == (1 if kinds else 0), (name, result.stdout, result.stderr)
        assert said in result.stdout, (name, result.stdout)

    # a narrower time range states exactly its own entries
    times = [parse_leaf(e["leaf"].encode()).time for e in clean["entries"]]
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        part = json.loads(_export(client, server, times[1], times[2]))
    seqs = [e["seq"] for e in part["entries"]]
    assert seqs
    assert f"\nfirst {seqs[0]}\nlast {seqs[-1]}\n" in part["range"]
    assert verify_bundle(json.dumps(part), trusted_vkey=vkey).valid


_FAIL_SQLITE = (
    "CREATE TRIGGER audit_fails BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'no'); END"
)
_FAIL_PG = [
    "CREATE FUNCTION audit_fails() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'no'; END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER audit_fails BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION audit_fails()",
]


def test_a_failing_audit_write_is_a_503_and_hands_nothing_out(live_server: LiveServer) -> None:
    server = live_server
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        ok = client.get("/api/v1/audit/entries", headers=server.auth(Role.AUDITOR))
        assert ok.status_code == 200
        assert ok.json()["entries"]
        statements = [_FAIL_SQLITE] if server.settings.is_sqlite else _FAIL_PG
        sql(server.settings, [(s, {}) for s in statements])
        for request in (
            client.build_request("GET", "/api/v1/audit/entries", headers=server.auth(Role.AUDITOR)),
            client.build_request("GET", "/api/v1/audit/checkpoint", headers=server.auth(Role.AUDITOR)),
            client.build_request(
                "POST",
                "/api/v1/audit/export",
                json={"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
                headers=server.auth(Role.AUDITOR),
            ),
            client.build_request("GET", "/api/v1/audit/entries"),  # a 401 that cannot be recorded
            client.build_request("GET", "/api/v1/audit/entries", headers=server.auth(Role.OFFICER)),
        ):
            response = client.send(request)
            assert response.status_code == 503, (request.url, response.text)
            body = response.json()
            assert body["type"].endswith("service-unavailable")
            assert set(body) <= {"type", "title", "status", "detail", "instance", "request_id"}
            assert "leaf" not in response.text
            assert "odeus-compliance/" not in response.text
        # whoami hands out no personal data and records nothing: unaffected
        assert client.get("/api/v1/whoami", headers=server.auth(Role.AUDITOR)).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/whoami"])
def test_wrong_key_401_is_recorded_without_the_key(live_server: LiveServer, path: str) -> None:
    server = live_server
    bogus = server.keys[Role.ADMIN] + "x"
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        assert client.get(path, headers={"Authorization": f"Bearer {bogus}"}).status_code == 401
        page = entries(client, server, action="access.denied")
    (record,) = [e["record"] for e in page["entries"]]
    assert record["role"] == "anonymous"
    assert record["details"]["reason"] == "invalid_key"
    assert record["resource"] == "/api/v1/whoami"
    assert bogus not in str(page)
    assert bogus.split("_", 2)[2][:12] not in str(page)


def test_a_purpose_that_was_not_utf8_is_refused_not_recorded_mangled(live_server: LiveServer) -> None:
    auditor = live_server.auth(Role.AUDITOR)
    with httpx.Client(base_url=live_server.base_url, timeout=30) as client:
        refused = client.get("/api/v1/audit/entries?purpose=review%FFof%20logs", headers=auditor)
        assert refused.status_code == 400
        assert [e["key"] for e in refused.json()["errors"]] == ["purpose"]
        listed = client.get(
            "/api/v1/audit/entries", params={"purpose": "check", "limit": 1000}, headers=auditor
        ).json()["entries"]
    records = [e["record"] for e in listed]
    assert records
    assert not [r for r in records if "\ufffd" in (r["purpose"] or "")]
