"""The admins' console pages (see navigation.SECTIONS): schedules and their runs, API keys, the policies in
force and the key epochs, each group in its own module."""

from __future__ import annotations

from collections.abc import Sequence

from litestar.types import ControllerRouterHandler

from odeus_compliance.console.admin_apikey_pages import APIKEY_PAGES
from odeus_compliance.console.admin_key_epoch_pages import KEY_EPOCH_PAGES
from odeus_compliance.console.admin_policy_pages import POLICY_PAGES
from odeus_compliance.console.admin_schedule_pages import SCHEDULE_PAGES

__all__ = ["ADMIN_PAGES"]

ADMIN_PAGES: Sequence[ControllerRouterHandler] = (
    *SCHEDULE_PAGES,
    *APIKEY_PAGES,
    *POLICY_PAGES,
    *KEY_EPOCH_PAGES,
)
"""Every page of this area (the console router registers them)."""
