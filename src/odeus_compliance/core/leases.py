"""Who holds a lease: one id per process, the same form for report jobs and schedule runs."""

from __future__ import annotations

import os
import re
import secrets
import socket

__all__ = ["host_name", "lease_owner_id"]


def host_name() -> str:
    """This machine's name as it appears in lease owner ids (letters, digits, ``.`` and ``-``)."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:64] or "host"


def lease_owner_id() -> str:
    """This process as a lease owner: ``host:pid:random`` (pids repeat across hosts and restarts; the random
    part tells two runs of one pid apart)."""
    return f"{host_name()}:{os.getpid()}:{secrets.token_hex(4)}"
