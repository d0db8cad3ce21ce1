"""Company-wide totals of a users export: what the demo prints before reports exist.

Only sums and counts leave this module; no name, e-mail, id or per-person figure does. It reads the typed
Arrow columns batch by batch, so it runs in constant memory over a stream.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from odeus_compliance.upstream.batches import ExportBatch

CHANNELS = ("messages_total", "messages_chat", "messages_assistants", "messages_projects", "action_messages")
BYOK_TOTALS = ("total_input_tokens", "total_output_tokens")


@dataclass(slots=True)
class UsageSummary:
    """Totals over every row of a users export."""

    rows: int = 0
    active_users: int = 0
    messages: Counter[str] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)
    agents_used: set[str] = field(default_factory=set)
    projects_used: set[str] = field(default_factory=set)
    payg_consumption: Decimal = Decimal(0)
    tokens: Counter[str] = field(default_factory=Counter)
    cost_usd: Decimal | None = None

    def add(self, batch: ExportBatch) -> None:
        """Fold one batch into the totals."""
        names = set(batch.column_names)
        self.rows += batch.num_rows
        if "messages_total" in names:
            self.active_users += _count_positive(batch.arrow_column("messages_total"))
        for channel in CHANNELS:
            if channel in names:
                self.messages[channel] += _sum_int(batch.arrow_column(channel))
        if "payg_consumption_in_period" in names:
            self.payg_consumption += _sum_decimal(batch.arrow_column("payg_consumption_in_period"))
        for column in BYOK_TOTALS:
            if column in names:
                self.tokens[column] += _sum_int(batch.arrow_column(column))
        if "total_cost_usd" in names:
            self.cost_usd = (self.cost_usd or Decimal(0)) + _sum_decimal(batch.arrow_column("total_cost_usd"))
        if "model_to_messages_total" in names:
            self.models.update(_map_totals(batch.arrow_column("model_to_messages_total")))
        if "assistants_to_messages" in names:
            self.agents_used.update(_map_totals(batch.arrow_column("assistants_to_messages")))
        if "projects_to_messages" in names:
            self.projects_used.update(_map_totals(batch.arrow_column("projects_to_messages")))

    def model_shares(self) -> list[tuple[str, int, float]]:
        """``(model, messages, share of all model messages)``, most used first."""
        total = sum(self.models.values())
        return [(model, count, count / total if total else 0.0) for model, count in self.models.most_common()]


def summarise(batches: Iterable[ExportBatch]) -> UsageSummary:
    """Totals over ``batches``."""
    summary = UsageSummary()
    for batch in batches:
        summary.add(batch)
    return summary


def _sum_int(array: pa.Array[Any]) -> int:
    value = pc.sum(array).as_py()
    return int(value) if value is not None else 0


def _sum_decimal(array: pa.Array[Any]) -> Decimal:
    value = pc.sum(array).as_py()
    return Decimal(value) if value is not None else Decimal(0)


def _count_positive(array: pa.Array[Any]) -> int:
    positive: Any = pc.greater(array, pa.scalar(0, array.type))
    value = pc.sum(positive).as_py()
    return int(value) if value is not None else 0


def _map_totals(array: pa.Array[Any]) -> Counter[str]:
    """Counts per key over a ``map<string, int64>`` column (keys with a zero total are left out)."""
    maps: Any = array
    # .keys/.items are the whole child arrays, even of a slice: take the slice's range by its offsets
    start, end = maps.offsets[0].as_py(), maps.offsets[-1].as_py()
    keys, counts = maps.keys.slice(start, end - start), maps.items.slice(start, end - start)
    if len(keys) == 0:
        return Counter()
    grouped = pa.table({"key": keys, "count": counts}).group_by("key").aggregate([("count", "sum")])
    names: list[Any] = grouped.column("key").to_pylist()
    totals: list[Any] = grouped.column("count_sum").to_pylist()
    return Counter({key: total for key, total in zip(names, totals, strict=True) if total})
