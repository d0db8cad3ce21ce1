"""The auditors' console pages (see navigation.SECTIONS)."""

from __future__ import annotations

from collections.abc import Sequence

from litestar.types import ControllerRouterHandler

__all__ = ["AUDITOR_PAGES"]

AUDITOR_PAGES: Sequence[ControllerRouterHandler] = ()
"""Every page of this area (the console router registers them)."""
