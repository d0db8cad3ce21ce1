"""A real OpenID provider on loopback for the browser tests: ``tests/browser/oidc_provider.mjs`` (the npm
package ``oidc-provider``, OpenID-certified, installed by ``scripts/setup``) run by node.

``run_oidc_provider(redirect_uris=[...])`` starts it on a free loopback port with one confidential client
(authorization code, PKCE S256 required, ``client_secret_basic`` unless told otherwise) and the given
accounts (login name -> ``OidcAccount``; ``DEFAULT_ACCOUNTS`` has one per console role), waits for it to
say ``READY``, yields where it is, and stops it when the block ends. Its login form is oidc-provider's
development one: a login name (an unknown one is refused) and any password, then a consent page. The ID
token carries ``name``, ``email`` and ``groups`` for the scopes ``profile email groups`` (``SCOPES``).

In a browser that the relying party has sent to the provider, ``sign_in_at_provider(page, provider,
login)`` fills the login form, consents if asked, and returns once the browser has left the provider
(back at the redirect URI); ``submit_login`` only fills and submits the login form.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from playwright.async_api import Page

from tests.support.browser import screenshot

__all__ = [
    "DEFAULT_ACCOUNTS",
    "SCOPES",
    "OidcAccount",
    "RunningOidcProvider",
    "run_oidc_provider",
    "sign_in_at_provider",
    "submit_login",
]

BROWSER_TESTS = Path(__file__).resolve().parents[1] / "browser"
PROVIDER_SCRIPT = BROWSER_TESTS / "oidc_provider.mjs"
SCOPES = "openid profile email groups"


@dataclasses.dataclass(frozen=True)
class OidcAccount:
    """One person at the identity provider (all made up)."""

    sub: str
    name: str
    email: str
    groups: tuple[str, ...] = ()


DEFAULT_ACCOUNTS: Mapping[str, OidcAccount] = {
    "officer": OidcAccount("sub-officer-1", "Olive Officer", "olive@example.test", ("compliance-officers",)),
    "auditor": OidcAccount("sub-auditor-1", "Arthur Auditor", "arthur@example.test", ("auditors",)),
    "admin": OidcAccount("sub-admin-1", "Ada Admin", "ada@example.test", ("compliance-admins",)),
    "nobody": OidcAccount("sub-nobody-1", "Nora Nobody", "nora@example.test", ("staff",)),
}


@dataclasses.dataclass(frozen=True)
class RunningOidcProvider:
    """Where the provider listens and the client registered there."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    accounts: Mapping[str, OidcAccount]

    @property
    def discovery_url(self) -> str:
        """Its metadata: the endpoints (authorization, token, JWKS) a relying party reads from there."""
        return f"{self.issuer}/.well-known/openid-configuration"


@contextmanager
def run_oidc_provider(
    *,
    redirect_uris: Sequence[str],
    accounts: Mapping[str, OidcAccount] = DEFAULT_ACCOUNTS,
    client_id: str = "odeus-console",
    client_secret: str | None = None,
    token_endpoint_auth_method: str = "client_secret_basic",
    startup_timeout: float = 30.0,
) -> Iterator[RunningOidcProvider]:
    """Run the provider until the block ends (no process is left behind, even when the block raises)."""
    node = shutil.which("node")
    if node is None or not (BROWSER_TESTS / "node_modules" / "oidc-provider").is_dir():
        msg = "node or the browser tests' npm packages are missing: run scripts/setup"
        raise RuntimeError(msg)
    secret = client_secret if client_secret is not None else secrets.token_urlsafe(24)
    config = {
        "host": "127.0.0.1",
        "port": 0,  # the provider picks a free port and says which: no race for it
        "client": {
            "client_id": client_id,
            "client_secret": secret,
            "redirect_uris": list(redirect_uris),
            "token_endpoint_auth_method": token_endpoint_auth_method,
        },
        "accounts": {
            login: {"sub": a.sub, "name": a.name, "email": a.email, "groups": list(a.groups)}
            for login, a in accounts.items()
        },
    }
    with tempfile.TemporaryDirectory(prefix="oidc-provider-") as scratch:
        config_file = Path(scratch) / "config.json"
        config_file.write_text(json.dumps(config), encoding="utf-8")
        log_path = Path(scratch) / "stderr.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [node, str(PROVIDER_SCRIPT), str(config_file)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=BROWSER_TESTS,
            )
            try:
                issuer = _wait_for_ready(process, startup_timeout, log_path)
                yield RunningOidcProvider(
                    issuer=issuer,
                    client_id=client_id,
                    client_secret=secret,
                    redirect_uris=tuple(redirect_uris),
                    accounts=accounts,
                )
            finally:
                _stop(process)


def _wait_for_ready(process: subprocess.Popen[bytes], timeout: float, log_path: Path) -> str:
    """The issuer from the provider's ``READY <issuer>`` line, or RuntimeError with its stderr's tail."""
    stdout: IO[bytes] | None = process.stdout
    assert stdout is not None
    deadline = time.monotonic() + timeout
    received = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        while b"\n" not in received:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                break
            chunk = os.read(stdout.fileno(), 4096)
            if not chunk:  # the provider exited
                break
            received += chunk
    line = received.split(b"\n", 1)[0].decode("utf-8", "replace")
    if line.startswith("READY http"):
        return line.removeprefix("READY ").strip()
    tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
    msg = f"the OpenID provider did not start within {timeout:g} s; its stderr ends with:\n{tail}"
    raise RuntimeError(msg)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Close its stdin (it exits on that), then SIGTERM, then SIGKILL; always reap it."""
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def submit_login(page: Page, login: str, *, screenshot_as: str | None = None) -> None:
    """Fill the provider's login form (shown in ``page``) with ``login`` and a password, and submit it;
    ``screenshot_as`` names a screenshot of the filled form."""
    await page.get_by_placeholder("Enter any login").fill(login)
    await page.get_by_placeholder("and password").fill("any password will do")
    if screenshot_as is not None:
        await screenshot(page, screenshot_as)
    await page.get_by_role("button", name="Sign-in").click()


async def sign_in_at_provider(
    page: Page, provider: RunningOidcProvider, login: str, *, screenshot_as: str | None = None
) -> None:
    """Sign in as ``login`` on the provider's login page shown in ``page``, consent if asked, and wait
    until the browser has left the provider (redirected to the client's redirect URI) and loaded."""
    login_url = page.url
    await submit_login(page, login, screenshot_as=screenshot_as)
    # each step is a new interaction (a new URL): the consent page, or straight back to the client
    await page.wait_for_url(lambda url: url != login_url)
    if page.url.startswith(f"{provider.issuer}/interaction/"):
        await page.get_by_role("button", name="Continue").click()
    await page.wait_for_url(lambda url: not url.startswith(provider.issuer))
