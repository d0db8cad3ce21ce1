"""The officers' console pages (see navigation.SECTIONS)."""

from __future__ import annotations

from collections.abc import Sequence

from litestar.types import ControllerRouterHandler

__all__ = ["OFFICER_PAGES"]

OFFICER_PAGES: Sequence[ControllerRouterHandler] = ()
"""Every page of this area (the console router registers them)."""
