"""The console's routes, collected for ``create_app``: its pages, sign-in, and the packaged assets."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from odeus_compliance.console.admin_pages import ADMIN_PAGES
from odeus_compliance.console.auditor_pages import AUDITOR_PAGES
from odeus_compliance.console.auth import check_csrf
from odeus_compliance.console.error_pages import console_exception_handlers
from odeus_compliance.console.home_page import console_home, console_not_found
from odeus_compliance.console.officer_pages import OFFICER_PAGES
from odeus_compliance.console.report_pages import REPORT_PAGES
from odeus_compliance.console.routing import console_public
from odeus_compliance.console.signin_pages import (
    oidc_callback,
    oidc_start,
    sign_in_page,
    sign_in_with_link,
    sign_out,
)
from odeus_compliance.console.templating import STATIC_PREFIX

__all__ = ["CONSOLE_PAGES", "console_routers"]

CONSOLE_PAGES: Sequence[ControllerRouterHandler] = (
    console_home,
    sign_in_page,
    sign_in_with_link,
    oidc_start,
    oidc_callback,
    sign_out,
    *OFFICER_PAGES,
    *REPORT_PAGES,
    *AUDITOR_PAGES,
    *ADMIN_PAGES,
    console_not_found,
)
"""Every console page: sign-in, the start page and each role's area."""


def console_routers(extra_pages: Sequence[ControllerRouterHandler] = ()) -> list[Router]:
    """The console's pages (errors as pages, CSRF checked before every handler) and its static assets
    (URLs carry a content hash, so they may be cached for a year)."""
    pages = Router(
        "/",
        route_handlers=[*CONSOLE_PAGES, *extra_pages],
        exception_handlers=console_exception_handlers(),
        before_request=check_csrf,
        include_in_schema=False,
    )
    static_dir = Path(str(resources.files("odeus_compliance.console").joinpath("static")))
    assets = create_static_files_router(
        path=STATIC_PREFIX,
        directories=[static_dir],
        opt=console_public(),
        cache_control=CacheControlHeader(max_age=31536000, public=True),
        exception_handlers=console_exception_handlers(),  # an unknown asset: the console's 404 page
        include_in_schema=False,
        name="console_static",
    )
    return [pages, assets]
