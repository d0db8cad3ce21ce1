"""The officers' console pages (see navigation.SECTIONS): the report archive (auditors read it too), the
request form, and cancelling a running job. One report's own page is in :mod:`.report_pages`."""

from __future__ import annotations

from collections.abc import Sequence

from litestar.types import ControllerRouterHandler

from odeus_compliance.console.officer_archive import report_archive
from odeus_compliance.console.officer_cancel import cancel_form, submit_cancel
from odeus_compliance.console.officer_request import request_form, submit_request

__all__ = ["OFFICER_PAGES"]

OFFICER_PAGES: Sequence[ControllerRouterHandler] = (
    report_archive,
    request_form,
    submit_request,
    cancel_form,
    submit_cancel,
)
"""Every page of this area (the console router registers them)."""
