"""The console's Jinja2 environment: autoescape everywhere, ``StrictUndefined`` (a missing value is an
error, never an empty string), and asset URLs that carry their content hash."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

__all__ = ["STATIC_PREFIX", "ConsoleTemplates", "static_url"]

STATIC_PREFIX: Final = "/console/static"


@cache
def _asset_version(name: str) -> str:
    data = resources.files("odeus_compliance.console").joinpath("static", name).read_bytes()
    return hashlib.sha256(data).hexdigest()[:12]


def static_url(name: str) -> str:
    """The URL of a packaged asset, with its content hash (so a new version is never served stale)."""
    return f"{STATIC_PREFIX}/{name}?v={_asset_version(name)}"


class ConsoleTemplates:
    """The console's templates (``console/templates``), built once per app."""

    def __init__(self) -> None:
        self.environment = Environment(
            loader=PackageLoader("odeus_compliance.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.environment.globals["static_url"] = static_url

    def render(self, template: str, context: Mapping[str, Any]) -> str:
        """The page as HTML."""
        return self.environment.get_template(template).render(context)
