"""The simulator's settings: one frozen object, so two simulators with equal settings behave identically."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Literal

# A simulator key, not a secret: printed by the CLI and used by tests and the demo.
DEFAULT_API_KEY = "sk-simulator-usage-export-0123456789abcdef"
# A valid key of the same workspace that lacks the USAGE_EXPORT_API scope (answered with 403).
DEFAULT_UNSCOPED_API_KEY = "sk-simulator-no-export-scope-fedcba9876543210"

Anonymisation = Literal["empty", "removed", "placeholder"]
NumberStyle = Literal["plain", "float", "quoted"]


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything that shapes a simulated Odeus workspace and the API in front of it.

    The ``variant_*`` knobs make the simulator answer in the other ways the real service may answer, so the
    client's tolerance can be tested; they are all off by default.
    """

    users: int = 200
    seed: int = 1
    api_key: str = DEFAULT_API_KEY
    unscoped_api_key: str = DEFAULT_UNSCOPED_API_KEY
    byok: bool = False
    user_level_data: bool = True
    anonymisation: Anonymisation = "empty"
    row_cap: int = 1_000_000
    requests_per_minute: int = 500
    url_ttl_seconds: float = 900.0
    today: date | None = None  # None: the real current UTC date
    workspace_age_days: int = 300  # the workspace was created this many days before today
    history_months: int = 12
    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port
    storage_port: int = 0
    clock: Callable[[], float] = time.time  # seconds since the epoch; tests inject a fake
    variant_shuffle_columns: bool = False  # known columns (after org_id) in another order
    variant_extra_column: bool = False  # a column the client does not know yet
    variant_offset_date_range: bool = False  # dateRange as +01:00 instead of Z
    variant_numbers: NumberStyle = "plain"  # whole numbers as 12, 12.0 or "12"
    variant_retry_after: bool = True  # False: 429 without a Retry-After header

    def __post_init__(self) -> None:
        if self.users < 1:
            msg = "a workspace needs at least one user"
            raise ValueError(msg)
        if self.anonymisation not in ("empty", "removed", "placeholder"):
            msg = f"unknown anonymisation {self.anonymisation!r}"
            raise ValueError(msg)
        if self.variant_numbers not in ("plain", "float", "quoted"):
            msg = f"unknown number style {self.variant_numbers!r}"
            raise ValueError(msg)
        if self.row_cap < 0 or self.requests_per_minute < 1 or self.url_ttl_seconds <= 0:
            msg = "row_cap, requests_per_minute and url_ttl_seconds must be positive"
            raise ValueError(msg)
        if self.workspace_age_days < 1:
            msg = "workspace_age_days must be at least 1"
            raise ValueError(msg)
