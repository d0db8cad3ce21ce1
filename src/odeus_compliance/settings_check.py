"""Catch mistakes in the configuration: a variable of ours that no setting reads is most likely a typo.

``ODEUS_COMPLIANCE_DATADIR`` instead of ``ODEUS_COMPLIANCE_DATA_DIR`` would otherwise be ignored in silence,
and the service would start a second, empty installation in ``./data``. Which variables are ours is learnt
from :meth:`Settings.from_env` itself (every name it looks up is recorded), so the list of known names cannot
fall behind the settings.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any

from odeus_compliance.settings import WEBHOOK_KEY_PREFIX, Settings

__all__ = ["PREFIX", "settings_with_warnings"]

PREFIX = "ODEUS_COMPLIANCE_"


class _ReadRecorder(Mapping[str, str]):
    """The environment, noting every name looked up (iterating it notes nothing)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.looked_up: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.looked_up.add(name)
        return self._environ[name]

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.looked_up.add(name)
        return name in self._environ

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)

    def items(self) -> Any:
        return self._environ.items()


def settings_with_warnings(environ: Mapping[str, str], **options: Any) -> tuple[Settings, list[str]]:
    """:meth:`Settings.from_env` (same options), and one warning per ``ODEUS_COMPLIANCE_*`` variable that no
    setting reads, naming the closest known one."""
    recorder = _ReadRecorder(environ)
    settings = Settings.from_env(recorder, **options)
    known = sorted(name for name in recorder.looked_up if name.startswith(PREFIX))
    warnings = []
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name in recorder.looked_up or name.startswith(WEBHOOK_KEY_PREFIX):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else "; it is ignored"
        warnings.append(f"warning: {name} is not a setting of odeus-compliance{hint}")
    return settings, warnings
