"""One report's console pages: its figures (HTML and SVG charts, the same numbers as the PDF), its
verification and its downloads."""

from __future__ import annotations

from collections.abc import Sequence

from litestar.types import ControllerRouterHandler

__all__ = ["REPORT_PAGES"]

REPORT_PAGES: Sequence[ControllerRouterHandler] = ()
"""Every page of this area (the console router registers them)."""
