"""axe-core in a Playwright page: the WCAG 2.0/2.1/2.2 A and AA violations of what the page shows now.

How axe gets in: its source is evaluated through the DevTools protocol (``page.evaluate``), not added as a
``<script>`` element. The console's Content-Security-Policy (``script-src 'self'``, no inline script)
blocks a script element Playwright would add (``add_script_tag``), but the protocol's evaluation is not
subject to the page's CSP, so the page is checked exactly as served: no ``bypass_csp`` context, which
would also switch the CSP off for the page under test. ``tests/browser/test_browser_support.py`` checks
both halves on a page with that CSP.

axe-core comes from ``tests/browser/node_modules`` (pinned by ``package-lock.json``, installed by
``scripts/setup``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, cast

from playwright.async_api import Page

__all__ = ["AXE_SCRIPT", "WCAG_AA_TAGS", "axe_violations", "describe_violations"]

AXE_SCRIPT = Path(__file__).resolve().parents[1] / "browser" / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.2 AA as axe tags it: each version's A and AA rules (2.2 added AA rules only)
WCAG_AA_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")

_RUN_AXE = """async (tags) => {
  const results = await window.axe.run(document, {
    runOnly: { type: 'tag', values: tags },
    resultTypes: ['violations'],
  });
  return results.violations;
}"""


@functools.cache
def _axe_source() -> str:
    if not AXE_SCRIPT.is_file():
        msg = f"{AXE_SCRIPT} is missing: run scripts/setup (it installs the browser tests' npm packages)"
        raise RuntimeError(msg)
    # evaluated as an expression: the trailing `0` keeps axe's own completion value out of the result
    return AXE_SCRIPT.read_text(encoding="utf-8") + "\n;0"


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations (its result objects: ``id``, ``impact``, ``help``, ``nodes``, ...) for WCAG
    2.0, 2.1 and 2.2 at levels A and AA on the page as it is now; empty when it finds none."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(_axe_source())
    return cast("list[dict[str, Any]]", await page.evaluate(_RUN_AXE, list(WCAG_AA_TAGS)))


def describe_violations(violations: list[dict[str, Any]]) -> str:
    """One line per violation (rule, what to fix, the offending elements' selectors), for assert messages."""
    lines = []
    for violation in violations:
        targets = ", ".join(str(node.get("target")) for node in violation.get("nodes", []))
        lines.append(f"{violation['id']} ({violation.get('impact')}): {violation.get('help')} [{targets}]")
    return "\n".join(lines)
