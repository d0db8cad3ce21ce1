"""Configuration of the Odeus client: where Odeus is, how long to wait, how hard to retry, how fast to go.

One frozen object, built by the caller (from settings or a test), so no module holds configuration and two
clients in one process can talk to two workspaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from odeus_compliance.upstream.backoff import RetryPolicy
from odeus_compliance.upstream.csvstream import DEFAULT_BLOCK_BYTES
from odeus_compliance.upstream.download_target import AllowEntry, parse_entry

DEFAULT_BASE_URL = "https://api.odeus.ai"
# A users export at Odeus's cap of 1,000,000 rows is about 0.7 GB of CSV (66 MB per 100,000 BYOK users).
DEFAULT_MAX_ANSWER_BYTES = 2 << 30


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to wait for each phase of one HTTP exchange.

    ``read`` bounds the gap between two chunks of a download, not the whole download, so a large export
    over a slow line is fine as long as bytes keep arriving.
    """

    connect: float = 10.0
    read: float = 60.0
    write: float = 30.0
    pool: float = 10.0


@dataclass(frozen=True, slots=True)
class OdeusClientConfig:
    """Everything the client needs to know about one Odeus workspace.

    ``download_hosts`` is the allow-list of storage hosts *and ports* for signed download URLs (``host``,
    ``host:port``, ``.domain[:port]``, ``[v6]:port``; no port: the scheme's default). Empty: ``https`` on
    port 443 of a public address only. Non-empty: only the listed hosts and ports, over ``https`` or plain
    ``http``. A download on the base URL's own origin is always allowed; everything else must resolve to
    public addresses unless its entry names the address itself (tests list the simulator's
    ``127.0.0.1:<port>``); see :mod:`odeus_compliance.upstream.download_target`.
    ``max_answer_bytes`` bounds an export file (streamed, never held whole) and a JSON-route answer (held in
    memory); a CSV-route answer is a small envelope with a fixed, much smaller bound.
    ``requests_per_minute`` stays under Odeus's published 500 so bursts from several coroutines never earn
    a 429.
    """

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    download_hosts: frozenset[str] = frozenset()
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    requests_per_minute: int = 450
    block_bytes: int = DEFAULT_BLOCK_BYTES
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES
    allow_entries: tuple[AllowEntry, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        if not self.api_key:
            msg = "an Odeus API key is required"
            raise ValueError(msg)
        if not self.base_url.startswith(("https://", "http://")):
            msg = "the Odeus base URL must be an http(s) URL"
            raise ValueError(msg)
        if not 0 < self.requests_per_minute < 500:
            msg = "requests_per_minute must be between 1 and 499 (Odeus allows 500 a minute)"
            raise ValueError(msg)
        if self.block_bytes < 1 << 16:
            msg = "block_bytes must be at least 64 KiB"
            raise ValueError(msg)
        if self.max_answer_bytes < 1 << 16:
            msg = "max_answer_bytes must be at least 64 KiB"
            raise ValueError(msg)
        object.__setattr__(self, "download_hosts", frozenset(h.lower() for h in self.download_hosts))
        entries = tuple(parse_entry(h) for h in sorted(self.download_hosts))
        object.__setattr__(self, "allow_entries", entries)
