"""How every command prints what it lists, what it verified, and how far long work has got.

One shape everywhere (README, "Command line"):

- a **listing** prints a header row and one tab-separated row per item (``-`` for an empty value), or
  ``nothing yet`` on stderr when there is nothing; with ``--json``, one JSON array of objects (``[]`` when
  empty), the header's names being the objects' keys;
- a **verification** prints its verdict as text; with ``--json``, one JSON object with at least ``valid``;
- **progress** of long work goes to stderr, and only when stderr is a terminal: logs, pipes and CI stay clean.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, TextIO

import click

__all__ = ["NOTHING_YET", "Progress", "print_listing", "print_verdict", "ticking"]

NOTHING_YET: Final = "nothing yet"
_TICK_SECONDS: Final = 1.0


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    # a value with a tab or a line break would forge cells or rows of the table
    return " ".join(str(value).split())


def print_listing(rows: Sequence[Mapping[str, Any]], *, columns: Sequence[str], as_json: bool) -> None:
    """A listing: a JSON array (``--json``; every key of the rows), else a header of ``columns`` and one
    tab-separated row each, or ``nothing yet`` (stderr) when there are no rows."""
    if as_json:
        click.echo(json.dumps(list(rows), indent=2, sort_keys=True))
        return
    if not rows:
        click.echo(NOTHING_YET, err=True)
        return
    click.echo("\t".join(columns))
    for row in rows:
        click.echo("\t".join(_cell(row.get(column)) for column in columns))


def print_verdict(document: Mapping[str, Any], text: str, *, as_json: bool) -> None:
    """A verification's result: one JSON object (``--json``, it has ``valid``), else ``text``."""
    if as_json:
        if "valid" not in document:
            msg = "a verification's JSON states whether it is valid"
            raise ValueError(msg)
        click.echo(json.dumps(dict(document), indent=2, sort_keys=True))
    else:
        click.echo(text)


class Progress:
    """One self-overwriting line on stderr while long work runs, only if stderr is a terminal."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream)
        self.started = time.monotonic()
        self._shown = False
        self._status = ""
        self._lock = threading.Lock()

    def show(self, status: str | None = None) -> None:
        """Redraw the line: the label, the latest ``status`` and the seconds so far."""
        if not self.enabled:
            return
        with self._lock:
            if status is not None:
                self._status = status
            elapsed = int(time.monotonic() - self.started)
            line = f"{self.label} ... {self._status + ' ' if self._status else ''}({elapsed} s)"
            self.stream.write("\r\x1b[2K" + line)
            self.stream.flush()
            self._shown = True

    def clear(self) -> None:
        """Remove the line, so what is printed next starts on a clean line."""
        with self._lock:
            if self._shown:
                self.stream.write("\r\x1b[2K")
                self.stream.flush()
                self._shown = False


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def ticking(label: str) -> Iterator[Progress]:
    """Show ``label`` with the seconds elapsed, redrawn every second, while the block runs (work that does
    not report its own progress: a pull, a verification of a large log); cleared at the end."""
    progress = Progress(label)
    if not progress.enabled:
        yield progress
        return
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(_TICK_SECONDS):
            progress.show()

    progress.show()
    thread = threading.Thread(target=tick, name="cli-progress", daemon=True)
    thread.start()
    try:
        yield progress
    finally:
        stop.set()
        thread.join()
        progress.clear()
