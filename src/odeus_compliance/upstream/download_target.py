"""Where a signed download may be fetched from: URL rules, a host-and-port allow-list, the pinned address.

A download URL is allowed when it is an ``http(s)`` URL without user credentials and one of:

1. on the Odeus API's own origin (the scheme, host and port of the configured base URL): the service already
   trusts that origin with its key, and the simulator of the demo and the tests lives there on loopback;
2. with a download allow-list (``download_hosts``): on a listed host *and* port, over ``https``, or over
   plain ``http`` (an entry without a port means the scheme's default port, 443 or 80; an entry starting
   with ``.`` also allows sub-domains). An entry naming an IP address (``127.0.0.1:9001``,
   ``[::1]:9001``) allows that exact address even when it is loopback or private: the operator named it,
   no name lookup is involved. A host name still has to resolve to public addresses only;
3. without an allow-list: ``https`` on port 443 of a host that resolves to public addresses only.

"Public" is :func:`odeus_compliance.upstream.address_guard.refusal`. Every address the name resolves to is
checked, and the request then goes to the first of them (:func:`pinned_address`), with the original
``Host`` header and TLS server name, so the address that was checked is the address that is connected to.
The client follows no redirect from the storage host, so no second URL needs checking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import httpx

from odeus_compliance.upstream.address_guard import (
    IPAddress,
    literal_address,
    refusal,
    refuse,
    resolve_public,
)
from odeus_compliance.upstream.errors import DownloadRefused, UpstreamProtocolError

DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_NAME_ENTRY: Final = re.compile(rf"(?P<host>\.?{_LABEL}(?:\.{_LABEL})*)(?::(?P<port>\d{{1,5}}))?")
_BRACKETED_ENTRY: Final = re.compile(r"\[(?P<host>[0-9a-f:.]+)\](?::(?P<port>\d{1,5}))?")
_PRINTABLE_HOST: Final = re.compile(r"[a-z0-9.:-]{1,253}")


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """One allow-list entry: a host (``.example.com``: its sub-domains) and a port (``None``: the default)."""

    host: str
    port: int | None
    address: IPAddress | None

    @property
    def suffix(self) -> bool:
        """Whether the entry allows the sub-domains of ``host`` (written with a leading ``.``)."""
        return self.host.startswith(".")

    def matches(self, host: str, port: int, scheme: str) -> bool:
        """Whether ``host:port`` over ``scheme`` is this entry."""
        if port != (self.port if self.port is not None else DEFAULT_PORTS[scheme]):
            return False
        if self.address is not None:
            return literal_address(host) == self.address
        return host.endswith(self.host) if self.suffix else host == self.host


def parse_entry(text: str) -> AllowEntry:
    """An allow-list entry from ``host``, ``host:port``, ``.domain[:port]``, ``[v6]:port`` or a bare IPv6
    address; raises ``ValueError`` for anything else."""
    entry = text.strip().lower()
    bare = literal_address(entry) if entry.count(":") > 1 and not entry.startswith("[") else None
    if bare is not None:
        return AllowEntry(str(bare), None, bare)
    found = _BRACKETED_ENTRY.fullmatch(entry) or _NAME_ENTRY.fullmatch(entry)
    if found is None:
        msg = f"download host {text!r} is not a host, host:port, .domain or [IPv6]:port"
        raise ValueError(msg)
    port = int(found["port"]) if found["port"] else None
    if port is not None and not 0 < port < 65536:
        msg = f"download host {text!r} has a port out of range"
        raise ValueError(msg)
    address = literal_address(found["host"])
    if entry.startswith("[") and address is None:
        msg = f"download host {text!r} is not an IPv6 address in brackets"
        raise ValueError(msg)
    return AllowEntry(str(address) if address is not None else found["host"], port, address)


@dataclass(frozen=True, slots=True)
class DownloadTarget:
    """A download URL that passed the URL rules. ``checked``: its addresses must still be resolved, checked
    and pinned (not for the API's own origin or an address the allow-list names)."""

    url: httpx.URL
    host: str
    port: int
    checked: bool

    @property
    def shown_host(self) -> str:
        """The host for a message (a host name that is not plain ASCII is not repeated)."""
        return shown_host(self.host)


def shown_host(host: str) -> str:
    """``'host'`` quoted for a message, or a neutral phrase when it holds anything but host characters."""
    return repr(host) if _PRINTABLE_HOST.fullmatch(host) else "(a host name that is not shown)"


def check_download_url(base_url: str, allow: tuple[AllowEntry, ...], url: str) -> DownloadTarget:
    """The target of ``url`` under the rules above; raises :class:`DownloadRefused` (or
    :class:`UpstreamProtocolError` for what is not a URL) naming the reason, never the URL's path or query."""
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii").lower()
    except (httpx.InvalidURL, TypeError, UnicodeDecodeError):
        msg = "Odeus sent a download URL that is not a URL"
        raise UpstreamProtocolError(msg) from None
    scheme = parsed.scheme
    if scheme not in DEFAULT_PORTS or not host:
        shown = shown_host(scheme or "(none)")
        msg = f"Odeus sent a download URL over {shown}, which is not allowed (only http(s) with a host)"
        raise DownloadRefused(msg)
    if parsed.userinfo:
        msg = "Odeus sent a download URL that carries user credentials, which is not allowed"
        raise DownloadRefused(msg)
    port = parsed.port or DEFAULT_PORTS[scheme]
    if _origin(httpx.URL(base_url)) == (scheme, host, port):
        return DownloadTarget(parsed, host, port, checked=False)
    where = f"host {shown_host(host)} port {port} over {scheme}"
    if allow:
        entry = next((e for e in allow if e.matches(host, port, scheme)), None)
        if entry is None:
            msg = (
                f"Odeus sent a download URL on {where}, which is not allowed (not on the download "
                "allow-list, which names hosts and ports)"
            )
            raise DownloadRefused(msg)
        return DownloadTarget(parsed, host, port, checked=entry.address is None)
    if scheme != "https" or port != DEFAULT_PORTS["https"]:
        msg = (
            f"Odeus sent a download URL on {where}, which is not allowed (without a download allow-list "
            "only https on port 443 is fetched)"
        )
        raise DownloadRefused(msg)
    address = literal_address(host)
    if address is not None and (reason := refusal(address)) is not None:
        raise refuse(reason)
    return DownloadTarget(parsed, host, port, checked=True)


async def pinned_address(target: DownloadTarget, *, timeout: float) -> IPAddress | None:
    """The checked address to connect to, or ``None`` when the target needs no check (see the module)."""
    if not target.checked:
        return None
    addresses = await resolve_public(target.host, target.port, timeout=timeout)
    return addresses[0]


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    host = url.raw_host.decode("ascii", "replace").lower()
    return url.scheme, host, url.port or DEFAULT_PORTS.get(url.scheme, 0)
