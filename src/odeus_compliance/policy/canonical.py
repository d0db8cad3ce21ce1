"""The canonical form of a policy and its hash, the identity every output cites.

The form is built from the validated :class:`~odeus_compliance.policy.model.Policy`, not from the file's
text, so key order, whitespace, comments, ``1.0`` vs ``1.00`` and spelling a default out or leaving it
implicit do not change the hash; any change of meaning does. Defaults are written out explicitly, sets are
sorted, numbers are plain decimal text, and the JSON is UTF-8 with sorted keys and no whitespace.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from odeus_compliance.policy.model import (
    Drop,
    Encrypt,
    GeneralizeDate,
    GeneralizeNumber,
    Keep,
    MapKeys,
    Mask,
    Pseudonymize,
)
from odeus_compliance.policy.operations import format_number

if TYPE_CHECKING:
    from decimal import Decimal

    from odeus_compliance.policy.model import Operation, Policy

FORMAT = "odeus-compliance-policy/1"


def operation_form(operation: Operation) -> dict[str, Any]:
    """One operation as a JSON-ready dict, every parameter explicit."""
    form: dict[str, Any] = {"op": operation.op, "reason": operation.reason}
    match operation:
        case Keep():
            form["allow_identifying"] = operation.allow_identifying
            form["allow_ranking"] = operation.allow_ranking
        case Pseudonymize():
            form["domain"] = operation.domain.value
        case GeneralizeDate():
            form["date"] = operation.level.label
        case GeneralizeNumber():
            form["buckets"] = _numbers(operation.buckets)
            form["round"] = None if operation.round_to is None else format_number(operation.round_to)
            form["top_code"] = None if operation.top_code is None else format_number(operation.top_code)
        case MapKeys():
            form["keys"] = operation.keys.value
            form["domain"] = None if operation.domain is None else operation.domain.value
            form["allow"] = None if operation.allow is None else sorted(operation.allow)
            form["other"] = operation.other
        case Drop() | Encrypt() | Mask():
            pass
    return form


def _numbers(values: tuple[Decimal, ...] | None) -> list[str] | None:
    return None if values is None else [format_number(v) for v in values]


def canonical_form(policy: Policy) -> dict[str, Any]:
    """The policy as a JSON-ready dict (see module doc)."""
    disclosure = policy.disclosure
    return {
        "format": FORMAT,
        "policy": {
            "name": policy.name,
            "version": policy.version,
            "works_agreement": policy.works_agreement,
            "description": policy.description,
            "on_unknown_column": policy.on_unknown_column.value,
        },
        "pseudonymization": {
            "domain": policy.pseudonymization.domain,
            "linkability": policy.pseudonymization.linkability.value,
        },
        "disclosure": {
            "min_group_size": disclosure.min_group_size,
            "suppression_limit": format_number(disclosure.suppression_limit),
            "dominance_limit": format_number(disclosure.dominance_limit),
            "per_person_rows": disclosure.per_person_rows,
            "quasi_identifiers": sorted(disclosure.quasi_identifiers),
            "hierarchy": {qi: [step.label for step in steps] for qi, steps in disclosure.hierarchy.items()},
        },
        "report": {
            "person_rows": policy.report.person_rows,
            "person_rows_cap": policy.report.person_rows_cap,
        },
        "columns": {
            export.value: {name: operation_form(op) for name, op in rules.columns.items()}
            for export, rules in policy.exports.items()
        },
    }


def canonical_json(policy: Policy) -> str:
    """The canonical form as compact JSON text with sorted keys."""
    return json.dumps(canonical_form(policy), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def policy_hash(policy: Policy) -> str:
    """``sha256:<hex>`` of the canonical JSON: the identity every output cites."""
    digest = hashlib.sha256(canonical_json(policy).encode("utf-8")).hexdigest()
    return f"sha256:{digest}"
