"""The auditor's console pages over a real server on loopback, compared with the auditor API.

An auditor signed in by link reads the log with a purpose (the same entries as the API for the same filter,
the same ``audit.read`` record with the person as actor), and nothing without one; refused filter values
give a 400 page with the message beside the field; an entry's proof equals the API's; verifying the log
records ``audit.verified``; an exported bundle verifies offline; deletion receipts show verified, as the
command line checks them. Officers and admins get the 403 page, a POST without its CSRF token is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import httpx
import pytest

from odeus_compliance.audit.bundle_verify import verify_bundle
from odeus_compliance.security import Role
from odeus_compliance.settings import Settings
from tests.support.audit import cli
from tests.support.auditor_console import HOLD_REASON, csrf_token, serve_with_receipts, sign_in_links
from tests.support.server import LiveServer

PURPOSE: Final = "quarterly access review"
AUDITOR_PAGES: Final = (
    "/console/audit",
    "/console/audit/verify",
    "/console/audit/checkpoint",
    "/console/audit/retention",
    "/console/audit/entries/0/proof",
)
_SEQ: Final = re.compile(r'<tr id="entry-(\d+)" data-seq="\d+">')


@pytest.fixture
def server(migrated_settings: Settings) -> Iterator[LiveServer]:
    with serve_with_receipts(migrated_settings) as live:
        yield live


@contextmanager
def signed_in(server: LiveServer, name: str, role: str) -> Iterator[httpx.Client]:
    """A browser-like client signed in by a one-time link (it keeps the session cookie)."""
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        (link,) = sign_in_links(server, [(name, role)])
        response = client.get(link)
        assert response.status_code in {200, 303}, response.text
        assert client.get("/console/").status_code == 200
        yield client


def api_entries(client: httpx.Client, server: LiveServer, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/audit/entries", params=params, headers=server.auth(Role.AUDITOR))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def console_records(client: httpx.Client, server: LiveServer, action: str) -> list[dict[str, Any]]:
    """The records of ``action`` whose actor is a console person, read through the API."""
    records = [
        e["record"] for e in api_entries(client, server, action=action, limit=1000)["entries"] if e["record"]
    ]
    return [r for r in records if str(r["actor_key_id"]).startswith("console:")]


def seqs(html: str) -> list[int]:
    return [int(s) for s in _SEQ.findall(html)]


def found(pattern: str, html: str) -> str:
    match = re.search(pattern, html)
    assert match is not None, pattern
    return match.group(1)


def field_error(html: str, field_id: str) -> str:
    """The message beside a field, checking the field points at it."""
    assert re.search(
        rf'id="{field_id}"[^>]*aria-invalid="true"[^>]*aria-describedby="[^"]*{field_id}-error', html
    ), f"{field_id} is not marked invalid"
    match = re.search(rf'<p class="field-error" id="{field_id}-error">([^<]+)</p>', html)
    assert match is not None, f"no message beside {field_id}"
    return match.group(1)


def test_auditor_reads_the_log_like_the_api(server: LiveServer) -> None:
    with signed_in(server, "Ada Auditor", "auditor") as ada, httpx.Client(base_url=server.base_url) as api:
        # no purpose: the form only, nothing read and nothing recorded
        first = ada.get("/console/audit")
        assert first.status_code == 200
        assert "audit-entries" not in first.text
        assert 'name="purpose"' in first.text
        unexplained = ada.get("/console/audit", params={"action": "console.sign_in"})
        assert unexplained.status_code == 400
        assert "required" in field_error(unexplained.text, "f-purpose")
        assert "audit-entries" not in unexplained.text
        assert console_records(api, server, "audit.read") == []

        # with a purpose: the API's entries for the same filter, page by page
        page = ada.get("/console/audit", params={"purpose": PURPOSE, "limit": "4"})
        assert page.status_code == 200, page.text
        want = api_entries(api, server, limit=4)
        assert seqs(page.text) == [e["seq"] for e in want["entries"]] == [0, 1, 2, 3]
        assert 'rel="next"' in page.text
        after = api_entries(api, server, limit=4, after=want["next_after"])
        following = ada.get(
            "/console/audit", params={"purpose": PURPOSE, "limit": "4", "after": str(want["next_after"])}
        )
        assert seqs(following.text) == [e["seq"] for e in after["entries"]]
        filtered = ada.get("/console/audit", params={"purpose": PURPOSE, "action": "console.sign_in"})
        expected = api_entries(api, server, action="console.sign_in")
        assert seqs(filtered.text) == [e["seq"] for e in expected["entries"]]
        assert len(expected["entries"]) >= 1
        assert "Ada Auditor" in filtered.text
        assert re.search(r"<time datetime=\"[0-9T:.-]+Z\">[0-9 :.-]+Z</time>", filtered.text)
        denied = ada.get("/console/audit", params={"purpose": PURPOSE, "outcome": "denied"})
        assert seqs(denied.text) == [e["seq"] for e in api_entries(api, server, outcome="denied")["entries"]]

        # each read is the API's audit.read record, with the person and the purpose
        reads = console_records(api, server, "audit.read")
        assert len(reads) == 4
        assert {r["resource"] for r in reads} == {"audit:entries"}
        assert {(r["actor_name"], r["role"], r["purpose"]) for r in reads} == {
            ("Ada Auditor", "auditor", PURPOSE)
        }
        assert reads[0]["details"] == {"entry_count": 4, "page_size": 4}

        # values the API refuses: a 400 page with the message beside the field, nothing recorded
        for params, field_id in (
            ({"purpose": PURPOSE, "after": "99999999999999999999"}, "f-after"),
            ({"purpose": "why\x07 not"}, "f-purpose"),
            ({"purpose": PURPOSE, "from": "yesterday"}, "f-from"),
            ({"purpose": PURPOSE, "action": "nope"}, "f-action"),
            ({"purpose": PURPOSE, "limit": "5000"}, "f-limit"),
        ):
            refused = ada.get("/console/audit", params=params)
            assert refused.status_code == 400, params
            assert refused.headers["content-type"].startswith("text/html")
            assert field_error(refused.text, field_id)
            assert "audit-entries" not in refused.text
            assert (
                api.get("/api/v1/audit/entries", params=params, headers=server.auth(Role.AUDITOR)).status_code
                == 400
            )
        assert len(console_records(api, server, "audit.read")) == 4

        # an entry's proof: the API's proof against the same checkpoint, recorded like it
        fragment = ada.get(
            "/console/audit/entries/3/proof", params={"purpose": PURPOSE}, headers={"HX-Request": "true"}
        )
        assert fragment.status_code == 200
        assert "<html" not in fragment.text
        assert "result-pass" in fragment.text
        size = int(found(r'<dd class="tree-size">(\d+)</dd>', fragment.text))
        proof = api.get(
            "/api/v1/audit/entries/3/proof", params={"size": size}, headers=server.auth(Role.AUDITOR)
        ).json()
        assert found(r'<code class="leaf-hash">([^<]+)</code>', fragment.text) == proof["leaf_hash"]
        path = re.findall(r"<li><code>([^<]+)</code></li>", fragment.text)
        assert path == proof["proof"]
        assert size == proof["tree_size"]
        proof_reads = [
            r for r in console_records(api, server, "audit.read") if r["resource"] == "audit:proof/3"
        ]
        assert [(r["purpose"], r["details"]) for r in proof_reads] == [(PURPOSE, {"from_seq": 3})]
        whole_page = ada.get("/console/audit/entries/3/proof", params={"purpose": PURPOSE})
        assert "<h1>" in whole_page.text
        assert ada.get("/console/audit/entries/3/proof").status_code == 400
        assert ada.get("/console/audit/entries/99999/proof", params={"purpose": PURPOSE}).status_code == 404


def test_auditor_verifies_reads_the_checkpoint_and_exports(server: LiveServer) -> None:
    with signed_in(server, "Ada Auditor", "auditor") as ada, httpx.Client(base_url=server.base_url) as api:
        verify_page = ada.get("/console/audit/verify")
        assert verify_page.status_code == 200
        assert ada.post("/console/audit/verify", data={}).status_code == 403
        assert console_records(api, server, "audit.verified") == []
        verdict = ada.post("/console/audit/verify", data={"csrf_token": csrf_token(verify_page)})
        assert verdict.status_code == 200, verdict.text
        assert "Valid." in verdict.text
        assert verdict.text.count('<span class="result-pass">Pass</span>') == 6
        assert "Fail</span>" not in verdict.text
        (verified,) = console_records(api, server, "audit.verified")
        assert verified["actor_name"] == "Ada Auditor"
        assert verified["details"]["valid"] is True
        assert verified["details"]["problem_count"] == 0

        # the checkpoint: the API's origin and vkey, read with a purpose
        assert 'class="vkey"' not in ada.get("/console/audit/checkpoint").text
        shown = ada.get("/console/audit/checkpoint", params={"purpose": "pin the verifier key"})
        assert shown.status_code == 200
        held = api.get("/api/v1/audit/checkpoint", headers=server.auth(Role.AUDITOR)).json()
        assert f'<code class="vkey">{held["vkey"]}</code>' in shown.text
        assert f'<code class="origin">{held["origin"]}</code>' in shown.text
        assert [r["purpose"] for r in console_records(api, server, "audit.read")] == ["pin the verifier key"]
        blank = ada.get("/console/audit/checkpoint", params={"purpose": " "})
        assert blank.status_code == 400
        assert field_error(blank.text, "checkpoint-purpose")

        # export: a bundle the offline verifier accepts, recorded with the purpose
        token = csrf_token(shown)
        form = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "purpose": "works council"}
        assert ada.post("/console/audit/export", data=form).status_code == 403
        assert console_records(api, server, "audit.exported") == []
        bundle = ada.post("/console/audit/export", data={**form, "csrf_token": token})
        assert bundle.status_code == 200, bundle.text
        assert bundle.headers["content-disposition"] == 'attachment; filename="audit-bundle.json"'
        report = verify_bundle(bundle.content.decode(), trusted_vkey=held["vkey"])
        assert report.valid, report.summary()
        assert report.entries > 0
        (exported,) = console_records(api, server, "audit.exported")
        assert exported["purpose"] == "works council"
        assert exported["details"]["entry_count"] == report.entries
        refused = ada.post(
            "/console/audit/export", data={**form, "to": "tomorrow", "purpose": "", "csrf_token": token}
        )
        assert refused.status_code == 400
        assert field_error(refused.text, "export-to")
        assert field_error(refused.text, "export-purpose")
        backwards = ada.post(
            "/console/audit/export",
            data={**form, "from": "2100-01-01T00:00:00Z", "to": "2000-01-01T00:00:00Z", "csrf_token": token},
        )
        assert backwards.status_code == 400
        assert "must not be before" in backwards.text
        assert len(console_records(api, server, "audit.exported")) == 1


def test_receipts_show_verified_like_the_command_line(server: LiveServer) -> None:
    listed = cli(server.settings, "retention", "receipts", "--json")
    assert listed.returncode == 0, listed.stderr
    receipts = json.loads(listed.stdout)
    assert receipts
    assert all(r["signature_valid"] for r in receipts)
    with signed_in(server, "Ada Auditor", "auditor") as ada:
        page = ada.get("/console/audit/retention")
        assert page.status_code == 200
        shown = re.findall(r'<tr data-receipt="(rcp_[0-9a-f]+)">', page.text)
        assert shown == [r["id"] for r in receipts]
        assert page.text.count('class="result-pass receipt-verified">Verified<') == len(receipts)
        assert "receipt-failed" not in page.text
        assert HOLD_REASON in page.text


def test_other_roles_and_strangers_are_refused(server: LiveServer) -> None:
    with httpx.Client(base_url=server.base_url) as stranger:
        for path in AUDITOR_PAGES:
            answer = stranger.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/console/sign-in")
    for name, role in (("Olga Officer", "officer"), ("Adam Admin", "admin")):
        with signed_in(server, name, role) as person:
            for path in AUDITOR_PAGES:
                answer = person.get(path, params={"purpose": PURPOSE})
                assert answer.status_code == 403, (role, path)
                assert answer.headers["content-type"].startswith("text/html")
                assert "<h1>" in answer.text
                assert "Traceback" not in answer.text
            token = csrf_token(person.get("/console/"))
            assert person.post("/console/audit/verify", data={"csrf_token": token}).status_code == 403
            assert (
                person.post(
                    "/console/audit/export",
                    data={"csrf_token": token, "from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
                ).status_code
                == 403
            )
    with httpx.Client(base_url=server.base_url) as api:
        assert console_records(api, server, "audit.verified") == []
        assert console_records(api, server, "audit.exported") == []
