"""Which network addresses a signed download may reach: public unicast ones only, checked after resolution.

Odeus names the download URL, so a hostile or compromised upstream could point it at the service's own
neighbourhood: loopback, a private network, a cloud metadata endpoint. The host is therefore resolved here,
*every* address it resolves to is checked (one bad address refuses the URL: a resolver may rotate them), and
the caller connects to the address that was checked (see :mod:`odeus_compliance.upstream.download_target`),
so a second lookup answering differently (DNS rebinding) never decides where the connection goes.

An IPv6 address that embeds an IPv4 one (IPv4-mapped, NAT64, 6to4, Teredo) is judged by the embedded
address too, so ``::ffff:127.0.0.1`` is loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Final

from odeus_compliance.upstream.errors import DownloadRefused, UpstreamUnavailable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance-metadata endpoints of the large clouds: AWS/GCP/Azure/OpenStack (IPv4 and AWS's IPv6), AWS ECS
# task metadata, Alibaba. Most are link-local or private anyway; naming them makes the reason exact.
_METADATA: Final = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)
_NAT64: Final = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one (``[::1]`` brackets, a ``%zone`` allowed), else None."""
    text = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, Teredo client), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def refusal(address: IPAddress) -> str | None:  # noqa: PLR0911 - one answer per kind of address
    """Why a download may not connect to ``address`` (words for an error message), or ``None`` if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = refusal(inner)
            # a mapped or NAT64 address is its IPv4 address (DNS64 gives every IPv4-only host one)
            if reason is not None or address.ipv4_mapped is not None or any(address in n for n in _NAT64):
                return reason
    if address in _METADATA:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private-network address"
    if not address.is_global:
        return "an address that is not publicly routable"
    return None


def refuse(reason: str) -> DownloadRefused:
    """The error for a download URL that leads to ``reason``; it names neither the URL nor its path."""
    msg = (
        f"Odeus sent a download URL that leads to {reason}, which is not allowed (downloads may reach only "
        "public addresses, the Odeus API's own origin, or an address named on the download allow-list)"
    )
    return DownloadRefused(msg)


async def resolve_public(host: str, port: int, *, timeout: float) -> tuple[IPAddress, ...]:
    """Every address ``host`` resolves to, each checked public; raises :class:`DownloadRefused` otherwise.

    ``host`` is the ASCII (IDNA) form. A name that does not resolve (or not in ``timeout`` seconds) is
    :class:`UpstreamUnavailable`, which is retried like a refused connection.
    """
    literal = literal_address(host)
    if literal is not None:
        addresses: tuple[IPAddress, ...] = (literal,)
    else:
        addresses = await _resolve(host, port, timeout)
    for address in addresses:
        reason = refusal(address)
        if reason is not None:
            raise refuse(reason)
    return addresses


async def _resolve(host: str, port: int, timeout: float) -> tuple[IPAddress, ...]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, TimeoutError, UnicodeError):
        msg = "the storage host's name could not be resolved (DNS failure or time-out)"
        raise UpstreamUnavailable(msg) from None
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = literal_address(str(sockaddr[0]))
        if address is not None and address not in found:
            found.append(address)
    if not found:
        msg = "the storage host's name resolved to no address"
        raise UpstreamUnavailable(msg)
    return tuple(found)
