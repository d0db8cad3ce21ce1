"""``odeus-compliance policy``: work with policy files.

``policy check FILE...`` validates each file and explains every problem, one per line on stdout
(``file:line: what is wrong; what would be right``), then prints a one-line summary on stderr. Exit 0 when
all files are valid, 1 when any has a problem, 2 on bad usage (click's own, e.g. a missing file).

``policy apply --policy FILE --in RAW.csv --out OUT.csv`` runs the policy engine on an export file and
writes the pseudonymised CSV and its MAC-protected manifest (``OUT.manifest.json`` unless ``--manifest``
names another path). Exit 0 on success; 1 when the run fails (a bad policy, a malformed export, the
k-anonymity gate, a leak, a missing master key), leaving neither file behind; 2 on bad usage. Every error is
one line without a cell value or a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from cryptography.exceptions import InvalidTag

from odeus_compliance.commands._common import load_settings
from odeus_compliance.commands._output import print_verdict
from odeus_compliance.errors import OdeusComplianceError
from odeus_compliance.policy.canonical import policy_hash
from odeus_compliance.policy.columnar import CellRejected
from odeus_compliance.policy.crypto import CryptoError
from odeus_compliance.policy.disclosure import DisclosureError
from odeus_compliance.policy.engine import apply_to_file
from odeus_compliance.policy.keys import engine_keys
from odeus_compliance.policy.leakscan import LeakFound
from odeus_compliance.policy.loader import load_policy
from odeus_compliance.policy.memory import use_lean_arrow_pool
from odeus_compliance.policy.operations import OperationError
from odeus_compliance.policy.problems import PolicyError
from odeus_compliance.policy.rows import UnknownColumnError
from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.errors import DownloadIncomplete, MalformedExport

_RUN_FAILURES = (
    LeakFound,
    DisclosureError,
    CellRejected,
    OperationError,
    UnknownColumnError,
    MalformedExport,
    DownloadIncomplete,
    CryptoError,
)


@click.group()
def policy() -> None:
    """Validate and inspect policy files (policies/*.toml)."""


@policy.command()
@click.argument(
    "files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
def check(files: tuple[Path, ...], as_json: bool) -> None:
    """Check policy FILES; print each problem with its line, or each valid policy with its hash."""
    failed = 0
    problems = 0
    lines: list[str] = []
    checked: list[dict[str, Any]] = []
    for path in files:
        try:
            loaded = load_policy(path)
        except PolicyError as exc:
            failed += 1
            problems += len(exc.problems)
            lines.extend(str(problem) for problem in exc.problems)
            checked.append({"file": str(path), "valid": False, "problems": [str(p) for p in exc.problems]})
            continue
        digest = policy_hash(loaded)
        lines.append(f"{path}: ok: {loaded.name} {loaded.version} {digest}")
        checked.append(
            {
                "file": str(path),
                "valid": True,
                "name": loaded.name,
                "version": loaded.version,
                "hash": digest,
                "problems": [],
            }
        )
    print_verdict({"valid": not failed, "files": checked}, "\n".join(lines), as_json=as_json)
    if failed:
        click.echo(f"error: {problems} problem(s) in {failed} of {len(files)} policy file(s)", err=True)
        raise SystemExit(1)


@policy.command()
@click.option(
    "--policy",
    "policy_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    help="The policy file (policies/*.toml).",
)
@click.option(
    "--in",
    "source",
    required=True,
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    help="The raw export CSV, as Odeus delivers it.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where the pseudonymised CSV goes (written only if the whole run succeeds).",
)
@click.option(
    "--export-type",
    type=click.Choice([t.value for t in ExportType]),
    default=ExportType.USERS.value,
    show_default=True,
    help="Which export the file is.",
)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Where the manifest goes [default: OUT with .manifest.json].",
)
def apply(policy_file: Path, source: Path, out: Path, export_type: str, manifest: Path | None) -> None:
    """Apply a policy to an export file: pseudonymised CSV plus a MAC-protected manifest."""
    if not out.parent.is_dir():
        raise click.UsageError(f"the folder of --out does not exist: {out.parent}")
    if out.resolve() == source.resolve():
        raise click.UsageError("--out must not be the input file")
    manifest_path = manifest if manifest is not None else out.with_suffix(".manifest.json")
    settings = load_settings(demo=True)  # no upstream call here: only the master key is needed
    try:
        master_key = settings.require_master_key()
    except OdeusComplianceError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        loaded = load_policy(policy_file)
    except PolicyError as exc:
        raise click.ClickException(
            f"{policy_file}: the policy has {len(exc.problems)} problem(s); "
            "run 'odeus-compliance policy check'"
        ) from None
    kind = ExportType(export_type)
    if not loaded.covers(kind):
        raise click.ClickException(f"the policy {loaded.name!r} has no rules for the {kind.value} export")
    use_lean_arrow_pool()
    try:
        result = apply_to_file(
            loaded,
            kind,
            source=source,
            out=out,
            manifest_path=manifest_path,
            keys=engine_keys(master_key, loaded),
        )
    except _RUN_FAILURES as exc:
        raise click.ClickException(str(exc)) from None
    except (InvalidTag, EOFError):
        raise click.ClickException("the engine's encrypted spool could not be read back") from None
    except OSError as exc:
        raise click.ClickException(f"cannot read or write a file ({type(exc).__name__})") from None
    except Exception as exc:  # noqa: BLE001 - the CLI's promise: one line, no traceback, no data
        raise click.ClickException(
            f"unexpected failure ({type(exc).__name__}); nothing was written"
        ) from None
    disclosure = result.manifest["disclosure"]
    detail = ""
    if disclosure.get("k_anonymity") == "pass":
        detail = (
            f", k={disclosure['k']}, smallest class {disclosure['smallest_class']}, "
            f"{disclosure['rows_suppressed']} row(s) suppressed"
        )
    click.echo(
        f"{out}: {result.rows_out} of {result.rows_in} row(s) written{detail}; manifest {manifest_path}",
        err=True,
    )
