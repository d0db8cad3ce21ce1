"""The one uvicorn configuration every command that serves HTTP uses (``serve``, ``demo --serve``).

No ``server`` header (it names the software), no access log (ours, :mod:`odeus_compliance.request_log`,
leaves out query strings and addresses), and no proxy headers: the client address the audit log records is
the socket's, never a client-supplied ``X-Forwarded-For`` (a proxy in front does its own logging).
"""

from __future__ import annotations

from typing import Any

import uvicorn

__all__ = ["serve_app", "uvicorn_config"]


def uvicorn_config(app: Any, *, host: str, port: int) -> uvicorn.Config:
    """The server options for ``app`` on ``host``:``port``."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        forwarded_allow_ips="",
        lifespan="on",
    )


def serve_app(app: Any, *, host: str, port: int) -> None:
    """Serve ``app`` until interrupted (SIGINT, SIGTERM)."""
    uvicorn.Server(uvicorn_config(app, host=host, port=port)).run()
