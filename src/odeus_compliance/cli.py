"""The ``odeus-compliance`` command line.

Exit codes: 0 success, 1 a failed check or operation, 2 bad usage. Errors are one line on stderr, never a
traceback and never personal data. Each command's implementation lives in its domain package; this module
only wires them into one group.
"""

from __future__ import annotations

from odeus_compliance import warning_filters

# Before any command imports pyHanko; report workers spawned by a command import this module again.
warning_filters.install()

import click

from odeus_compliance import __version__
from odeus_compliance.commands import LazyGroup


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="odeus-compliance")
def main() -> None:
    """Privacy-compliance reporting for the Odeus AI workspace.

    Pulls usage exports from Odeus, pseudonymises them under your policies, keeps a tamper-evident audit
    log and serves reports to compliance officers and auditors. Configuration comes from the environment
    (ODEUS_COMPLIANCE_*, ODEUS_BASE_URL, ODEUS_API_KEY) and an optional .env file.
    """
