"""Sign-in through the company's identity provider: OpenID Connect, authorization code flow with PKCE.

The provider is an upstream like any other: every answer is bounded in size and time, and nothing it says is
trusted until checked. Discovery must name the configured issuer; the ID token must be signed by a key of the
provider's JWKS (PyJWT checks the signature, ``exp``, ``iat``, ``iss`` and ``aud``), carry the nonce of this
sign-in and, when it names several audiences, ``azp`` = our client id. The person's role comes from the
configured claim through the group -> role map, the first matching entry of the map winning.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

import httpx
import jwt

from odeus_compliance.console.actions import VerifiedPerson
from odeus_compliance.console.identity import clean_person_name
from odeus_compliance.console.store import PendingSignIn
from odeus_compliance.settings import OidcSettings

__all__ = ["OidcClient", "OidcFailure", "new_pending"]

_MAX_ANSWER: Final = 1024 * 1024
_TIMEOUT: Final = httpx.Timeout(10.0)
_DEADLINE_SECONDS: Final = 15.0
"""For a whole answer: httpx's timeout is per read, and a provider trickling bytes never trips it."""
_MAX_GROUPS: Final = 1000
_ALGORITHMS: Final = [
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
]
_LEEWAY_SECONDS: Final = 60


class OidcFailure(Exception):
    """The provider's answer could not be used; ``code`` is a stable reason (audit ``error_code``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclasses.dataclass(frozen=True, slots=True)
class _Provider:
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


def new_pending(return_to: str) -> PendingSignIn:
    """Fresh state, nonce and PKCE verifier for one sign-in."""
    return PendingSignIn(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(64),
        return_to=return_to,
    )


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcClient:
    """The provider as this service uses it; one per app (built in ``create_app``'s lifespan)."""

    def __init__(
        self, settings: OidcSettings, *, http: httpx.AsyncClient, deadline_seconds: float = _DEADLINE_SECONDS
    ) -> None:
        self._settings = settings
        self._http = http
        self._deadline = deadline_seconds
        self._provider: _Provider | None = None
        self._jwks: jwt.PyJWKSet | None = None

    async def _json(self, method: str, url: str, **kwargs: Any) -> Mapping[str, Any]:
        if not url.startswith(("https://", "http://")):
            raise OidcFailure("provider_bad_answer")
        try:
            async with asyncio.timeout(self._deadline):
                status, body = await self._fetch(method, url, **kwargs)
        except (httpx.HTTPError, httpx.InvalidURL, TimeoutError):
            raise OidcFailure("provider_unreachable") from None
        if status != 200:
            raise OidcFailure("provider_refused" if 400 <= status < 500 else "provider_error")
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            raise OidcFailure("provider_bad_answer") from None
        if not isinstance(parsed, dict):
            raise OidcFailure("provider_bad_answer")
        return parsed

    async def _fetch(self, method: str, url: str, **kwargs: Any) -> tuple[int, bytes]:
        async with self._http.stream(method, url, timeout=_TIMEOUT, **kwargs) as answer:
            body = bytearray()
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) > _MAX_ANSWER:
                    raise OidcFailure("provider_answer_too_large")
            return answer.status_code, bytes(body)

    async def _discover(self) -> _Provider:
        if self._provider is None:
            issuer = self._settings.issuer
            meta = await self._json("GET", f"{issuer}/.well-known/openid-configuration")
            if str(meta.get("issuer", "")).rstrip("/") != issuer:
                raise OidcFailure("provider_issuer_mismatch")
            endpoints = [meta.get(k) for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")]
            if not all(isinstance(e, str) and e.startswith(("https://", "http://")) for e in endpoints):
                raise OidcFailure("provider_bad_answer")
            self._provider = _Provider(*(str(e) for e in endpoints))
        return self._provider

    async def authorization_url(self, pending: PendingSignIn, *, redirect_uri: str) -> str:
        """Where to send the browser to sign in (state, nonce and the S256 code challenge included)."""
        provider = await self._discover()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._settings.client_id,
                "redirect_uri": redirect_uri,
                "scope": "openid profile email " + self._scope_for_claim(),
                "state": pending.state,
                "nonce": pending.nonce,
                "code_challenge": _challenge(pending.code_verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in provider.authorization_endpoint else "?"
        return f"{provider.authorization_endpoint}{separator}{query}"

    def _scope_for_claim(self) -> str:
        # providers commonly release a groups-like claim under a scope of the same name
        return self._settings.role_claim if self._settings.role_claim.isidentifier() else ""

    async def redeem(self, *, code: str, pending: PendingSignIn, redirect_uri: str) -> VerifiedPerson:
        """Exchange the code (with the PKCE verifier), check the ID token and map the person to a role."""
        provider = await self._discover()
        tokens = await self._json(
            "POST",
            provider.token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": pending.code_verifier,
            },
            auth=(self._settings.client_id, self._settings.client_secret.reveal()),
            headers={"Accept": "application/json"},
        )
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str) or len(id_token) > 64 * 1024:
            raise OidcFailure("provider_no_id_token")
        claims = await self._verified_claims(id_token, nonce=pending.nonce)
        return self._person(claims)

    async def _signing_key(self, id_token: str) -> jwt.PyJWK:
        try:
            kid = jwt.get_unverified_header(id_token).get("kid")
        except jwt.PyJWTError:
            raise OidcFailure("id_token_invalid") from None
        for refresh in (False, True):
            if self._jwks is None or refresh:
                provider = await self._discover()
                try:
                    self._jwks = jwt.PyJWKSet.from_dict(dict(await self._json("GET", provider.jwks_uri)))
                except jwt.PyJWTError:
                    raise OidcFailure("provider_bad_keys") from None
            matching = [k for k in self._jwks.keys if kid is None or k.key_id == kid]
            if len(matching) == 1:
                return matching[0]
        raise OidcFailure("id_token_unknown_key")

    async def _verified_claims(self, id_token: str, *, nonce: str) -> Mapping[str, Any]:
        key = await self._signing_key(id_token)
        # only the key's own algorithm: a token naming another one (HS256 with the public key as its
        # secret, or an EC algorithm for an RSA key, which PyJWT answers with a TypeError) is refused
        if key.algorithm_name not in _ALGORITHMS:
            raise OidcFailure("id_token_invalid")
        try:
            claims = jwt.decode(
                id_token,
                key=key.key,
                algorithms=[key.algorithm_name],
                audience=self._settings.client_id,
                issuer=self._settings.issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError:
            raise OidcFailure("id_token_invalid") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 255:
            raise OidcFailure("id_token_invalid")
        if not secrets.compare_digest(
            str(claims.get("nonce", "")).encode("utf-8", "surrogatepass"), nonce.encode()
        ):
            raise OidcFailure("id_token_nonce_mismatch")
        audiences = claims.get("aud")
        if (
            isinstance(audiences, list)
            and len(audiences) > 1
            and claims.get("azp") != self._settings.client_id
        ):
            raise OidcFailure("id_token_invalid")
        return claims

    def _person(self, claims: Mapping[str, Any]) -> VerifiedPerson:
        subject = str(claims["sub"])
        principal = hashlib.sha256(f"{self._settings.issuer}\n{subject}".encode()).hexdigest()[:32]
        groups = _groups(claims.get(self._settings.role_claim))
        role = next((r for g, r in self._settings.role_map.items() if g in groups), None)
        if role is None:
            raise OidcFailure("no_console_role")
        raw_name = next(
            (
                str(claims[k])
                for k in ("name", "preferred_username", "email")
                if isinstance(claims.get(k), str)
            ),
            "",
        )
        name = clean_person_name(raw_name) or f"oidc user {principal[:8]}"
        return VerifiedPerson(principal=f"oidc:{principal}", name=name, role=role)


def _groups(raw: object) -> frozenset[str]:
    """The person's groups: a string or a list of strings; anything else (an object, numbers) names none."""
    if isinstance(raw, str):
        return frozenset({raw})
    if isinstance(raw, list) and len(raw) <= _MAX_GROUPS:
        return frozenset(g for g in raw if isinstance(g, str))
    return frozenset()
