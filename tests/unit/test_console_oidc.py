"""``console/oidc.py`` against a fake identity provider on loopback (discovery, JWKS and token endpoint served
by ``http.server``, keys made by ``cryptography``): everything the provider says is checked, nothing it can
send crashes the client or holds it for long, and the person's groups and name are read defensively.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from odeus_compliance.console.oidc import OidcClient, OidcFailure, new_pending
from odeus_compliance.settings import OidcSettings, Secret

CLIENT_ID = "odeus-console"
ROLE_MAP = {"compliance-officers": "officer", "compliance-admins": "admin"}


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "alg": "RS256", "use": "sig"}


@dataclasses.dataclass
class FakeProvider:
    """What the provider answers; the test changes it between calls."""

    issuer: str = ""
    discovery_issuer: str | None = None
    token_endpoint: str | None = None
    jwks: dict[str, Any] = dataclasses.field(default_factory=dict)
    id_token: str = ""
    token_body: bytes | None = None  # instead of {"id_token": ...}
    trickle: bool = False  # the token endpoint sends one byte every 0.1 s, for ever
    jwks_fetches: int = 0
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)


def _handler(provider: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _json(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                issuer = provider.discovery_issuer or provider.issuer
                self._json(
                    json.dumps(
                        {
                            "issuer": issuer,
                            "authorization_endpoint": f"{provider.issuer}/auth",
                            "token_endpoint": provider.token_endpoint or f"{provider.issuer}/token",
                            "jwks_uri": f"{provider.issuer}/jwks",
                        }
                    ).encode()
                )
            elif self.path == "/jwks":
                provider.jwks_fetches += 1
                self._json(json.dumps(provider.jwks).encode())
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if provider.trickle:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                while not provider.stop.wait(0.1):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                return
            self._json(provider.token_body or json.dumps({"id_token": provider.id_token}).encode())

    return Handler


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.stop.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
async def client(provider: FakeProvider) -> AsyncIterator[OidcClient]:
    settings = OidcSettings(
        issuer=provider.issuer, client_id=CLIENT_ID, client_secret=Secret("s3cret"), role_map=ROLE_MAP
    )
    async with httpx.AsyncClient(trust_env=False) as http:
        yield OidcClient(settings, http=http, deadline_seconds=2.0)


@dataclasses.dataclass
class Keys:
    current: rsa.RSAPrivateKey
    kid: str = "k1"


@pytest.fixture
def keys(provider: FakeProvider) -> Keys:
    signing = Keys(_rsa())
    provider.jwks = {"keys": [_jwk(signing.current, signing.kid)]}
    return signing


def _claims(provider: FakeProvider, nonce: str, /, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": provider.issuer,
        "aud": CLIENT_ID,
        "sub": "sub-1",
        "iat": now,
        "exp": now + 300,
        "nonce": nonce,
        "name": "Olive Officer",
        "groups": ["staff", "compliance-officers"],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(keys: Keys, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, keys.current, algorithm="RS256", headers={"kid": keys.kid})


async def _redeem(client: OidcClient, provider: FakeProvider, keys: Keys, **changes: Any) -> Any:
    pending = new_pending("/console/")
    provider.id_token = _sign(keys, _claims(provider, pending.nonce, **changes))
    return await client.redeem(code="c", pending=pending, redirect_uri="http://127.0.0.1/cb")


async def _refusal(coro: Any) -> str:
    with pytest.raises(OidcFailure) as failure:
        await coro
    return failure.value.code


async def test_a_good_answer_names_the_person_and_role(
    client: OidcClient, provider: FakeProvider, keys: Keys
) -> None:
    person = await _redeem(client, provider, keys)
    assert person.role == "officer"
    assert person.name == "Olive Officer"
    assert person.principal.startswith("oidc:")


async def test_the_issuer_of_discovery_must_be_the_configured_one(
    client: OidcClient, provider: FakeProvider, keys: Keys
) -> None:
    provider.discovery_issuer = "http://127.0.0.1:1"
    assert await _refusal(_redeem(client, provider, keys)) == "provider_issuer_mismatch"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"iss": "http://evil.example"}, "id_token_invalid"),
        ({"aud": "someone-else"}, "id_token_invalid"),
        ({"aud": [CLIENT_ID, "someone-else"]}, "id_token_invalid"),  # several audiences, no azp
        ({"exp": int(time.time()) - 3600}, "id_token_invalid"),
        ({"exp": None}, "id_token_invalid"),
        ({"sub": 123}, "id_token_invalid"),
        ({"sub": ""}, "id_token_invalid"),
        ({"nonce": "another"}, "id_token_nonce_mismatch"),
        ({"nonce": "nonce-\u00e9\u00e8"}, "id_token_nonce_mismatch"),  # not ASCII: no TypeError
        ({"nonce": None}, "id_token_nonce_mismatch"),
    ],
)
async def test_claims_that_are_refused(
    client: OidcClient, provider: FakeProvider, keys: Keys, changes: dict[str, Any], code: str
) -> None:
    assert await _refusal(_redeem(client, provider, keys, **changes)) == code


OCT_KEY = b"a shared secret of 32 bytes or more"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> bytes:
    def part(value: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    return part(header) + b"." + part(claims)


async def test_forged_algorithms_are_refused(client: OidcClient, provider: FakeProvider, keys: Keys) -> None:
    public_pem = keys.current.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forgeries = []
    pending = new_pending("/console/")
    claims = _claims(provider, pending.nonce)
    # alg none
    forgeries.append((_unsigned({"alg": "none", "kid": "k1"}, claims) + b".").decode())
    # HS256 keyed with the provider's public key (the classic confusion)
    signing_input = _unsigned({"alg": "HS256", "kid": "k1", "typ": "JWT"}, claims)
    mac = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    forgeries.append((signing_input + b"." + mac).decode())
    # an EC signature presented under the RSA key's kid (PyJWT raised TypeError here)
    forgeries.append(jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), "ES256", {"kid": "k1"}))
    # a symmetric key slipped into the JWKS
    provider.jwks["keys"].append({"kty": "oct", "kid": "k-oct", "k": _b64(OCT_KEY), "alg": "HS256"})
    forgeries.append(jwt.encode(claims, OCT_KEY, "HS256", {"kid": "k-oct"}))
    for forged in forgeries:
        provider.id_token = forged
        code = await _refusal(client.redeem(code="c", pending=pending, redirect_uri="http://x/cb"))
        assert code == "id_token_invalid", forged


async def test_an_unknown_key_fetches_the_keys_once_more(
    client: OidcClient, provider: FakeProvider, keys: Keys
) -> None:
    await _redeem(client, provider, keys)
    assert provider.jwks_fetches == 1
    # the provider rotates its key: the client fetches the new set once and carries on
    keys.current, keys.kid = _rsa(), "k2"
    provider.jwks = {"keys": [_jwk(keys.current, "k2")]}
    assert (await _redeem(client, provider, keys)).role == "officer"
    assert provider.jwks_fetches == 2
    assert (await _redeem(client, provider, keys)).role == "officer"
    assert provider.jwks_fetches == 2  # cached
    keys.kid = "k-unknown"
    assert await _refusal(_redeem(client, provider, keys)) == "id_token_unknown_key"
    assert provider.jwks_fetches == 3  # once per answer, no loop


@pytest.mark.parametrize("endpoint", ["http://[::1", "http://exa mple.test/token", "https://\u0000/x"])
async def test_a_malformed_endpoint_is_refused(
    client: OidcClient, provider: FakeProvider, keys: Keys, endpoint: str
) -> None:
    provider.token_endpoint = endpoint
    assert await _refusal(_redeem(client, provider, keys)) in {"provider_unreachable", "provider_bad_answer"}


async def test_a_provider_that_stalls_is_given_up(client: OidcClient, provider: FakeProvider) -> None:
    provider.trickle = True
    pending = new_pending("/console/")
    code = await _refusal(client.redeem(code="c", pending=pending, redirect_uri="http://x/cb"))
    assert code == "provider_unreachable"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[" * 2_000_000, "provider_answer_too_large"),
        (b'{"id_token": "' + b"a" * 100_000 + b'"}', "provider_no_id_token"),
        (b"[" * 100_000 + b"]" * 100_000, "provider_bad_answer"),
        (b"not json", "provider_bad_answer"),
        (b'["a list"]', "provider_bad_answer"),
        (b'{"id_token": 5}', "provider_no_id_token"),
        (b'{"id_token": "garbage"}', "id_token_invalid"),
    ],
)
async def test_bad_token_answers(
    client: OidcClient, provider: FakeProvider, keys: Keys, body: bytes, code: str
) -> None:
    provider.token_body = body
    pending = new_pending("/console/")
    assert await _refusal(client.redeem(code="c", pending=pending, redirect_uri="http://x/cb")) == code


@pytest.mark.parametrize(
    ("groups", "role"),
    [
        ("compliance-officers", "officer"),
        (["compliance-admins"], "admin"),
        (["staff", "compliance-officers", "compliance-admins"], "officer"),  # the map's first entry wins
        ({"compliance-admins": True}, None),  # an object is not a list of groups
        (5, None),
        ([5, 6.5, None], None),
        ([{"a": 1}, ["compliance-admins"]], None),
        ([{"a": 1}, "compliance-admins"], "admin"),
        (None, None),
        (True, None),
    ],
)
async def test_the_groups_claim_is_read_defensively(
    client: OidcClient, provider: FakeProvider, keys: Keys, groups: object, role: str | None
) -> None:
    answer = _redeem(client, provider, keys, groups=groups)
    if role is None:
        assert await _refusal(answer) == "no_console_role"
    else:
        assert (await answer).role == role


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Olive\u202e Officer\x07", "Olive Officer"),
        ("\u2066Olive\u2069 \u061cOfficer\u200f", "Olive Officer"),
        ("Olive\U000e0041\U000e0042 Officer", "Olive Officer"),  # tag characters
        ("Ol\ud800ive  \n Officer", "Olive Officer"),  # a lone surrogate (valid JSON: "\\ud800")
        ("O" * 300, "O" * 128),
    ],
)
async def test_the_name_is_cleaned(
    client: OidcClient, provider: FakeProvider, keys: Keys, raw: str, clean: str
) -> None:
    person = await _redeem(client, provider, keys, name=raw)
    assert person.name == clean
    person.name.encode("utf-8")  # storable and printable


async def test_a_name_of_nothing_visible_falls_back(
    client: OidcClient, provider: FakeProvider, keys: Keys
) -> None:
    person = await _redeem(client, provider, keys, name="\u200b\u202e\x00", preferred_username=None)
    assert person.name.startswith("oidc user ")
