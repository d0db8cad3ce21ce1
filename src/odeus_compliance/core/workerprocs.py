"""Worker processes of the service: spawned fresh, capped in memory, and gone when their parent is gone.

The report renderer (:mod:`odeus_compliance.reports.worker`) and the PDF verifier
(:mod:`odeus_compliance.reports.verifier`) run their work in processes of their own, started with
``spawn`` (a fresh interpreter: no copied event loop, engine or keys of the parent). Each starts with
:func:`start_worker`:

- its address space is capped (``RLIMIT_AS``), so work that would need more fails alone instead of
  starving the machine;
- a watchdog thread ends the process as soon as its parent dies (a ``kill -9`` of the service leaves no
  renderer or verifier behind). It waits on the end of a pipe that only the parent holds open
  (multiprocessing's parent sentinel: end of file when the parent is gone, however it died), and checks
  that the parent process id is unchanged, for a process started otherwise.

Processes are started under :func:`worker_environment`: the system allocator and two malloc arenas, so the
cap measures memory in use rather than address space reserved up front.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import threading
from collections.abc import Iterator
from multiprocessing.connection import wait
from typing import Final

__all__ = [
    "ORPHAN_EXIT_CODE",
    "WORKER_ENVIRONMENT",
    "exit_with_parent",
    "limit_address_space",
    "start_worker",
    "worker_environment",
]

MIB: Final = 1 << 20
ORPHAN_EXIT_CODE: Final = 70
"""The exit status of a worker that ended because its parent died."""
_PARENT_POLL_SECONDS: Final = 1.0

WORKER_ENVIRONMENT: Final = {"ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "2"}
"""Set for worker processes only. An address-space cap counts reservations, not use: pyarrow's default
allocator (mimalloc) reserves 1 GiB up front and glibc reserves 64 MiB per thread arena, so an 80-user
report peaked at 1.8 GB of address space for 170 MB resident. With the system allocator and two arenas the
same report peaks at about 370 MB, and the cap bounds what is really used."""


@contextlib.contextmanager
def worker_environment() -> Iterator[None]:
    """The environment a new worker process inherits (both are read at process start, before any code of
    ours runs); restored in this process right after the worker is started."""
    saved = {name: os.environ.get(name) for name in WORKER_ENVIRONMENT}
    os.environ.update({k: v for k, v in WORKER_ENVIRONMENT.items() if saved[k] is None})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)


def limit_address_space(limit_bytes: int) -> None:
    """Cap this process's address space (soft and hard) so the kernel refuses more."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = limit_bytes if hard == resource.RLIM_INFINITY else min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _watch(sentinel: int | None, parent_pid: int) -> None:
    while True:
        if sentinel is not None:
            if wait([sentinel], timeout=_PARENT_POLL_SECONDS):
                break  # end of file: the parent's end of the pipe closed with the parent
        else:
            threading.Event().wait(_PARENT_POLL_SECONDS)
        if os.getppid() != parent_pid:
            break
    os._exit(ORPHAN_EXIT_CODE)  # now, whatever the main thread is doing (no cleanup is owed to anyone)


def exit_with_parent() -> None:
    """Start the watchdog thread that ends this process when its parent dies (see the module docstring)."""
    parent = multiprocessing.parent_process()
    sentinel = parent.sentinel if parent is not None else None
    thread = threading.Thread(
        target=_watch, args=(sentinel, os.getppid()), name="parent-watchdog", daemon=True
    )
    thread.start()


def start_worker(memory_mb: int) -> None:
    """A worker process's first act (a pool's ``initializer``): the memory cap and the parent watchdog."""
    exit_with_parent()
    limit_address_space(memory_mb * MIB)
