"""The manifest of one engine run: what the engine did, per column and as a whole, sealed with a MAC.

What: :func:`run_manifest` turns what a finished run knows (the policy and its column plan, the counts per
column, the output's rows and hash, the k gate's plan, what Odeus anonymised, the leak scan's figures) into
the manifest's members and seals them (:func:`~odeus_compliance.policy.manifest.seal`); the members are
described in docs/policy.md. It computes nothing about the data and writes nothing: the engine's
:meth:`~odeus_compliance.policy.engine.PolicyRun.finish` has run the gate and the write pass before it asks.

Why a module of its own: the manifest is a format that auditors and the report read, and it changes for
reasons of its own; kept apart from the engine's coordination (threads, passes, spool), each member is
found in one place and the engine reads as its flow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from odeus_compliance import __version__
from odeus_compliance.policy.aggregates import Aggregator
from odeus_compliance.policy.canonical import operation_form, policy_hash
from odeus_compliance.policy.columnar import ColumnCounts, ColumnPlan
from odeus_compliance.policy.crypto import Tokenizer
from odeus_compliance.policy.disclosure import KAnonymityPlan
from odeus_compliance.policy.keys import EngineKeys
from odeus_compliance.policy.leakscan import (
    MAX_WORDS,
    MIN_CHARS,
    MIN_DIGITS,
    MIN_SUBSTRING,
    MIN_SURNAME,
    SUBSTRING_TEXT,
    LeakScanner,
)
from odeus_compliance.policy.manifest import seal
from odeus_compliance.policy.model import (
    Drop,
    Encrypt,
    KeyAction,
    MapKeys,
    Operation,
    Policy,
    Pseudonymize,
    TokenDomain,
)
from odeus_compliance.policy.operations import ENCRYPT_LABEL, format_number, token_label
from odeus_compliance.upstream.anonymisation import ColumnAnonymisation
from odeus_compliance.upstream.columns import ExportType

AGGREGATE_COLUMNS = ("dimension", "group", "people")
"""The first columns of an aggregates table (then one per summed figure)."""


def run_manifest(
    *,
    policy: Policy,
    export_type: ExportType,
    keys: EngineKeys,
    tokenizer: Tokenizer,
    plan: ColumnPlan,
    counts: Mapping[str, ColumnCounts],
    rows_in: int,
    input_facts: Mapping[str, Any] | None,
    output_rows: int,
    output_sha256: str,
    aggregates: Aggregator | None,
    aggregate_groups: dict[str, Any] | None,
    kplan: KAnonymityPlan | None,
    anonymised: Sequence[ColumnAnonymisation],
    leak_scan: LeakScanner,
) -> dict[str, Any]:
    """The sealed manifest of a finished run.

    ``aggregates`` is the run's aggregator when only aggregates were written (``per_person_rows = false``),
    with ``aggregate_groups``, what its small-group rules suppressed per dimension; ``kplan`` the k gate's
    plan when per-person rows went through the gate. ``counts`` are the transformer's per-column counts.
    """
    k = policy.disclosure.min_group_size
    body = {
        "engine_version": __version__,
        "policy": {
            "name": policy.name,
            "version": policy.version,
            "hash": policy_hash(policy),
        },
        "export_type": export_type.value,
        "input": {"rows": rows_in, **(input_facts or {})},
        "output": {
            "kind": "aggregates" if aggregates is not None else "rows",
            "rows": output_rows,
            "sha256": output_sha256,
            "columns": (
                [*AGGREGATE_COLUMNS, *aggregates.figures] if aggregates is not None else list(plan.names)
            ),
        },
        "pseudonymization": {
            "domain": policy.pseudonymization.domain,
            "linkability": policy.pseudonymization.linkability.value,
            "epoch": keys.context.epoch,
            "report_salt": keys.context.report_salt.hex() if keys.context.report_salt else None,
        },
        "columns": _column_entries(
            policy,
            export_type,
            plan,
            column_counts=counts,
            tokenizer=tokenizer,
            anonymised=anonymised,
            kplan=kplan,
        ),
        # by position in the header, never by name (a header may be an e-mail address)
        "unknown_columns_dropped": [f"column {i}" for i in plan.unknown_positions],
        "upstream_anonymised": [
            {
                "column": a.column,
                "how": a.how.value,
                "cells": a.cells,
                "rows": a.rows,
                "complete": a.complete,
            }
            for a in anonymised
        ],
        "disclosure": _disclosure_entry(
            k, aggregate_groups=aggregate_groups, kplan=kplan, limit=policy.disclosure.suppression_limit
        ),
        "leak_scan": {
            "result": "pass",
            "identifying_values_checked": leak_scan.values_registered,
            "distinct_output_texts_read": leak_scan.texts_read,
            "rule": (
                "text folded to ASCII (NFKC, full case folding, format characters and marks removed, tag "
                "characters read as ASCII, TR39 look-alikes and transliteration; umlauts, o-slash, a-ring "
                "and d-stroke also respelt) and compared in ASCII skeletons (i/l/1, o/0, rn/m, vv/w, cl/d "
                "alike); values compared with their words joined, also e-mail local parts with and "
                f"without +tag, surnames of at least {MIN_SURNAME} characters and every rotation of a "
                f"name's words; runs of up to {MAX_WORDS} output words, also cut where letters meet "
                f"digits, and keys of {MIN_SUBSTRING} or more characters also inside the words of texts "
                f"up to {SUBSTRING_TEXT} characters; keys of at least {MIN_CHARS} characters (digits only: "
                f"{MIN_DIGITS}); upstream placeholders never count; kept text with a bidi control is "
                "refused"
            ),
        },
    }
    return seal(body, key=keys.manifest_key, key_id=keys.manifest_key_id)


def _column_entries(
    policy: Policy,
    export_type: ExportType,
    plan: ColumnPlan,
    *,
    column_counts: Mapping[str, ColumnCounts],
    tokenizer: Tokenizer,
    anonymised: Sequence[ColumnAnonymisation],
    kplan: KAnonymityPlan | None,
) -> list[dict[str, Any]]:
    """One entry per column of the policy that this export carried (or Odeus removed)."""
    upstream = {a.column: a for a in anonymised}
    present = set(plan.names) | set(plan.dropped)
    entries: list[dict[str, Any]] = []
    for name, rule in policy.rules_for(export_type).columns.items():
        found = upstream.get(name)
        if name not in present and found is None:
            continue  # a column this export did not carry (e.g. BYOK-only, or another group_by)
        form = operation_form(rule)
        domain, key_id = _key_of(tokenizer, rule, name)
        counts = column_counts.get(name)
        entry: dict[str, Any] = {
            "column": name,
            "operation": rule.op,
            "parameters": {k: v for k, v in form.items() if k not in ("op", "reason")},
            "reason": rule.reason,
            "domain": domain,
            "key_id": key_id,
            "effective": _effective(rule, found),
            "upstream": None
            if found is None
            else {"how": found.how.value, "cells": found.cells, "complete": found.complete},
            "transformed": counts.transformed if counts else 0,
            "kept": counts.kept if counts else 0,
            "empty": counts.empty if counts else 0,
            "upstream_anonymised_kept": counts.upstream_anonymised if counts else 0,
            "suppressed": counts.suppressed if counts else 0,
            "dropped": counts.dropped if counts else 0,
        }
        if kplan is not None and name in kplan.levels:
            level = kplan.levels[name]
            entry["k_gate_level"] = None if level is None else level.label
        entries.append(entry)
    return entries


def _key_of(tokenizer: Tokenizer, rule: Operation, column: str) -> tuple[str | None, str | None]:
    """The token domain and key id a column's rule uses (none for rules without a key)."""
    if isinstance(rule, Pseudonymize):
        label = token_label(rule.domain, column)
        return rule.domain.value, tokenizer.key_id(purpose="pseudonymize", label=label)
    if isinstance(rule, MapKeys) and rule.keys is KeyAction.PSEUDONYMIZE:
        domain = rule.domain or TokenDomain.COLUMN
        label = token_label(domain, column)
        return domain.value, tokenizer.key_id(purpose="pseudonymize", label=label)
    if isinstance(rule, Encrypt):
        return ENCRYPT_LABEL, tokenizer.key_id(purpose="encrypt", label=ENCRYPT_LABEL)
    return None, None


def _effective(rule: Operation, found: ColumnAnonymisation | None) -> str:
    """The stricter of the policy's rule and what Odeus did (see docs/policy.md)."""
    if found is None:
        return str(rule.op)
    if found.how.value == "removed":
        return "removed upstream"
    if isinstance(rule, Drop):
        return "drop"
    if found.how.value == "empty":
        return (
            "empty upstream, kept empty" if found.complete else f"{rule.op}; cells empty upstream kept empty"
        )
    if found.how.value == "placeholder":
        return f"{rule.op}; upstream placeholders kept as they came"
    return f"{rule.op} of upstream opaque ids (never linked to e-mails or names)"


def _disclosure_entry(
    k: int, *, aggregate_groups: dict[str, Any] | None, kplan: KAnonymityPlan | None, limit: Decimal
) -> dict[str, Any]:
    """What the disclosure control did: small-group rules of the aggregates, the k gate of the rows, or
    nothing to gate (no quasi-identifier in the output)."""
    if aggregate_groups is not None:
        audit = aggregate_groups.get("audit")
        groups = {d: facts for d, facts in aggregate_groups.items() if d != "audit"}
        return {"mode": "aggregates", "k": k, "groups": groups, **({"audit": audit} if audit else {})}
    if kplan is not None:
        return _gate_report(kplan, k, limit)
    return {
        "mode": "rows",
        "k": k,
        "k_anonymity": "not applicable: no quasi-identifier in the output",
    }


def _gate_report(kplan: KAnonymityPlan, k: int, limit: Decimal) -> dict[str, Any]:
    share = Decimal(kplan.suppressed_rows) / Decimal(kplan.rows) if kplan.rows else Decimal(0)
    return {
        "mode": "rows",
        "k": k,
        "k_anonymity": "pass",
        "quasi_identifiers": list(kplan.quasi_identifiers),
        "levels": {q: (None if level is None else level.label) for q, level in kplan.levels.items()},
        "classes": kplan.classes,
        "smallest_class": kplan.min_class_size,
        "rows_suppressed": kplan.suppressed_rows,
        "share_suppressed": format_number(share.quantize(Decimal("0.000001"))),
        "suppression_limit": format_number(limit),
    }
