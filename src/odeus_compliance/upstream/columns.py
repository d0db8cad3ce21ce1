"""The columns of every Odeus export type, as published in CONTRACT.md.

One table, shared by the client (typing and validating what arrives), the simulator (what it writes) and
the policy engine (which columns a policy must name). A column's kind says how its text is parsed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ExportType(enum.StrEnum):
    """An export endpoint. ``agents`` is an exact alias of ``assistants`` upstream."""

    USERS = "users"
    ASSISTANTS = "assistants"
    AGENTS = "agents"
    API_KEYS = "api-keys"
    PROJECTS = "projects"
    MODELS = "models"

    @property
    def data_type(self) -> str:
        """The ``dataType`` value Odeus answers with for this export."""
        return "api_keys" if self is ExportType.API_KEYS else self.value

    @property
    def canonical(self) -> ExportType:
        """The export whose columns this one has (agents share the assistants' columns)."""
        return ExportType.ASSISTANTS if self is ExportType.AGENTS else self


class Kind(enum.StrEnum):
    """How a cell's text is read."""

    STR = "str"  # free text, possibly empty
    INT = "int"  # whole number; upstream may write 12, 12.0 or "12"
    DECIMAL = "decimal"  # money and percentages, kept exact
    DATE = "date"  # YYYY-MM-DD
    DATETIME = "datetime"  # ISO 8601 instant
    BOOL = "bool"  # true/false
    JSON_MAP = "json_map"  # JSON object mapping an identifier to a count


class GroupBy(enum.StrEnum):
    """The ``group_by`` values of the contract."""

    MODEL = "model"
    SOURCE = "source"
    DEPLOYMENT = "deployment"


@dataclass(frozen=True, slots=True)
class Column:
    """One column of an export: its name, how it is parsed and what it means for privacy."""

    name: str
    kind: Kind
    identifying: bool = False  # names or reaches a person directly (name, email, user id, owner)
    byok_only: bool = False  # present only in bring-your-own-key workspaces
    rank: bool = False  # an individual performance ranking


def _c(name: str, kind: Kind = Kind.INT, **flags: bool) -> Column:
    return Column(name, kind, **flags)


_PERIOD = (_c("period_start", Kind.DATE), _c("period_end", Kind.DATE), _c("org_id", Kind.STR))

_USERS = (
    *_PERIOD,
    _c("user_id", Kind.STR, identifying=True),
    _c("name", Kind.STR, identifying=True),
    _c("email", Kind.STR, identifying=True),
    _c("role", Kind.STR),
    _c("joined_at", Kind.DATE),
    _c("department", Kind.STR),
    _c("company_name", Kind.STR),
    _c("license_type", Kind.STR),
    _c("payg_limit_current", Kind.DECIMAL),
    _c("payg_consumption_in_period", Kind.DECIMAL),
    _c("payg_utilization_pct_current", Kind.DECIMAL),
    _c("messages_total"),
    _c("messages_total_rank", rank=True),
    _c("messages_chat"),
    _c("messages_chat_rank", rank=True),
    _c("messages_assistants"),
    _c("messages_assistants_rank", rank=True),
    _c("assistants_messaged"),
    _c("assistants_to_messages", Kind.JSON_MAP),
    _c("messages_projects"),
    _c("messages_projects_rank", rank=True),
    _c("projects_messaged"),
    _c("projects_to_messages", Kind.JSON_MAP),
    _c("model_to_messages_total", Kind.JSON_MAP),
    _c("action_messages"),
    _c("action_messaged"),
    _c("action_to_messages", Kind.JSON_MAP),
    _c("total_input_tokens", byok_only=True),
    _c("total_output_tokens", byok_only=True),
    _c("cached_prompt_tokens", byok_only=True),
    _c("cache_creation_tokens", byok_only=True),
    _c("no_cache_tokens", byok_only=True),
    _c("total_cost_usd", Kind.DECIMAL, byok_only=True),
)

_ASSISTANTS = (
    *_PERIOD,
    _c("assistant_id", Kind.STR),
    _c("assistant_name", Kind.STR),
    _c("messages"),
    _c("unique_users"),
    _c("active_users"),
    _c("conversations"),
    _c("messages_per_user", Kind.DECIMAL),
    _c("assistant_description", Kind.STR),
    _c("assistant_url", Kind.STR),
    _c("assistant_owner_id", Kind.STR, identifying=True),
    _c("assistant_owner_email", Kind.STR, identifying=True),
    _c("sum_prompt_tokens", byok_only=True),
    _c("avg_prompt_tokens", Kind.DECIMAL, byok_only=True),
    _c("min_prompt_tokens", byok_only=True),
    _c("max_prompt_tokens", byok_only=True),
    _c("sum_completion_tokens", byok_only=True),
    _c("avg_completion_tokens", Kind.DECIMAL, byok_only=True),
    _c("min_completion_tokens", byok_only=True),
    _c("max_completion_tokens", byok_only=True),
)

_API_KEYS = (
    *_PERIOD,
    _c("api_key_id", Kind.STR),
    _c("api_key_name", Kind.STR),
    _c("requests"),
    _c("total_cost_usd", Kind.DECIMAL),
    _c("sum_prompt_tokens", byok_only=True),
    _c("sum_completion_tokens", byok_only=True),
    _c("cached_prompt_tokens", byok_only=True),
    _c("cache_creation_tokens", byok_only=True),
    _c("no_cache_tokens", byok_only=True),
)

_PROJECTS = (
    *_PERIOD,
    _c("project_id", Kind.STR),
    _c("project_name", Kind.STR),
    _c("project_owner_id", Kind.STR, identifying=True),
    _c("project_owner_email", Kind.STR, identifying=True),
    _c("messages"),
)

_MODELS = (
    *_PERIOD,
    _c("name", Kind.STR),
    _c("provider", Kind.STR),
    _c("bring_your_keys", Kind.BOOL),
    _c("requests"),
    _c("sum_prompt_tokens", byok_only=True),
    _c("sum_completion_tokens", byok_only=True),
    _c("sum_cached_prompt_tokens", byok_only=True),
    _c("sum_cache_creation_tokens", byok_only=True),
    _c("no_cache_tokens", byok_only=True),
    _c("total_cost_usd", Kind.DECIMAL, byok_only=True),
)

COLUMNS: dict[ExportType, tuple[Column, ...]] = {
    ExportType.USERS: _USERS,
    ExportType.ASSISTANTS: _ASSISTANTS,
    ExportType.AGENTS: _ASSISTANTS,
    ExportType.API_KEYS: _API_KEYS,
    ExportType.PROJECTS: _PROJECTS,
    ExportType.MODELS: _MODELS,
}

# With group_by=model, users/assistants/api-keys rows gain a "model" column; with source or deployment,
# models rows gain that column. It is inserted right after org_id.
GROUP_COLUMN: dict[GroupBy, Column] = {
    GroupBy.MODEL: _c("model", Kind.STR),
    GroupBy.SOURCE: _c("source", Kind.STR),
    GroupBy.DEPLOYMENT: _c("deployment", Kind.STR),
}

ALLOWED_GROUP_BY: dict[ExportType, frozenset[GroupBy]] = {
    ExportType.USERS: frozenset({GroupBy.MODEL}),
    ExportType.ASSISTANTS: frozenset({GroupBy.MODEL}),
    ExportType.AGENTS: frozenset({GroupBy.MODEL}),
    ExportType.API_KEYS: frozenset({GroupBy.MODEL}),
    ExportType.PROJECTS: frozenset(),
    ExportType.MODELS: frozenset({GroupBy.SOURCE, GroupBy.DEPLOYMENT}),
}

BYOK_ONLY_GROUP_BY = frozenset({GroupBy.DEPLOYMENT})

# Columns Odeus removes when a workspace disables user-level data (users keep name/email, emptied).
HIDDEN_WITHOUT_USER_LEVEL_DATA: dict[ExportType, frozenset[str]] = {
    ExportType.ASSISTANTS: frozenset(
        {"assistant_description", "assistant_url", "assistant_owner_id", "assistant_owner_email"}
    ),
    ExportType.AGENTS: frozenset(
        {"assistant_description", "assistant_url", "assistant_owner_id", "assistant_owner_email"}
    ),
    ExportType.PROJECTS: frozenset({"project_owner_email"}),
}


def columns_for(
    export_type: ExportType,
    *,
    byok: bool,
    group_by: GroupBy | None = None,
    user_level_data: bool = True,
) -> tuple[Column, ...]:
    """The columns, in order, that Odeus sends for one export under the given workspace settings."""
    hidden = frozenset() if user_level_data else HIDDEN_WITHOUT_USER_LEVEL_DATA.get(export_type, frozenset())
    columns = [c for c in COLUMNS[export_type] if (byok or not c.byok_only) and c.name not in hidden]
    if group_by is not None:
        columns.insert(3, GROUP_COLUMN[group_by])
    return tuple(columns)


def known_columns(export_type: ExportType) -> dict[str, Column]:
    """Every column this export type can carry, under any settings and grouping, by name."""
    known = {c.name: c for c in COLUMNS[export_type]}
    for group_by in ALLOWED_GROUP_BY[export_type]:
        column = GROUP_COLUMN[group_by]
        known[column.name] = column
    return known
