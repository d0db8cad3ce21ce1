"""The console's start page: who is signed in, with which role, and the sections that role may open; and
the answer to any other path under ``/console/`` (a 404 page)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from odeus_compliance.console.routing import ANY_PERSON, console_page, console_public
from odeus_compliance.console.web import page
from odeus_compliance.errors import NotFound

__all__ = ["console_home", "console_not_found"]


@get(["/console", "/console/"], opt=console_page(*ANY_PERSON), include_in_schema=False)
async def console_home(request: Request[Any, Any, Any]) -> Response[str]:
    """The start page of the signed-in person."""
    return page(request, "home.html", title="Overview")


@get("/console/{rest:path}", opt=console_public(), include_in_schema=False)
async def console_not_found(rest: FromPath[str]) -> Response[str]:
    """No such console page (the same page whoever asks, so it reveals nothing about other roles' pages)."""
    raise NotFound("There is no such page in the console.")
