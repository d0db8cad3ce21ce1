"""Period figures of the simulated workspace: the rows of every export, before CSV/JSON rendering.

Rules the client relies on when it merges split exports (they hold exactly):

* Day attribution. Usage happens in UTC days. A user's (or API key's) usage of UTC day ``d`` happens at one
  instant: ``d`` 00:00 UTC plus that user's fixed time of day (``offset_ms``, spread over all 24 hours).
  A period ``[from, to]`` (both inclusive, to the millisecond) contains that day's usage iff the instant lies
  within it. So every count is additive: a period's figure is the sum of its days' figures, and splitting a
  period at any instant and adding the parts gives the unsplit figure. Because the instants are spread over
  the day, a Europe/Berlin month differs from the UTC month. Days from ``today`` on have no usage yet.
* Rows. users: one row per user who joined (``joined_at`` 00:00 UTC) by the period's end, zeros if idle;
  with ``group_by=model`` one row per (user, model) with messages > 0 in the period. assistants/agents,
  projects, api-keys and models: one row per entity (zeros if idle); with a ``group_by`` one row per
  (entity, group value) with activity > 0. A period before the workspace existed has no rows at all (404).
* Sums. ``messages_total = messages_chat + messages_assistants + messages_projects``; agents' ``messages``
  summed over agents equal the users' ``assistants_to_messages`` summed over users; the same holds for
  projects and ``projects_to_messages``; users' ``model_to_messages_total`` summed per model equals the
  models export's ``requests`` (API-key traffic is reported only in the api-keys export). With
  ``group_by=source`` the sources are ``chat``, ``assistants`` and ``projects``.
* Ranks (``*_rank``): competition ranking ("1224") of the figure, descending, among all rows of the export;
  1 is the most.
* ``payg_consumption_in_period`` is the user's cost in the period; ``payg_utilization_pct_current =
  round(100 * payg_consumption_in_period / payg_limit_current, 2)`` (half up), 0 if the limit is 0.
  ``messages_per_user`` and the ``avg_*`` columns are rounded to 2 places the same way.
* ``*_messaged`` is the number of keys with a count > 0 in the matching ``*_to_messages`` map. The maps'
  keys are agent ids, project ids, model names and action ids; only counts > 0 appear.
* ``unique_users`` of an agent: users with at least one message to it in the period; ``active_users``:
  those with at least 5. ``min_*``/``max_*`` token columns are empty when the agent had no messages.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from odeus_compliance.upstream.columns import Column, ExportType, GroupBy, columns_for
from odeus_compliance.upstream.simulator.workspace import (
    ASSISTANT,
    CHAT,
    DAY_MS,
    PROJECT,
    SOURCES,
    Workspace,
)

ACTIVE_USER_MESSAGES = 5
PLACEHOLDER = "Anonymous"
_CENT = Decimal("0.01")

Value = str | int | bool | Decimal | dict[str, int] | None


@dataclass(frozen=True, slots=True)
class Period:
    """A requested period: UTC instants in ms (both inclusive) and the wall-clock dates of its ends."""

    start_ms: int
    end_ms: int
    start_date: date
    end_date: date


@dataclass(frozen=True, slots=True)
class Privacy:
    """How identifying values are written: real, or anonymised in one of the three upstream ways."""

    user_level_data: bool = True
    anonymisation: str = "empty"


@dataclass(frozen=True, slots=True)
class Table:
    """An export's columns (every column the settings allow, before hiding) and its rows in that order."""

    columns: tuple[Column, ...]
    rows: list[list[Value]]


class Slot(NamedTuple):
    """One strand of one user's messages in the period."""

    kind: int
    target: int  # agent or project index, -1 for chat
    model: int
    deployment: str
    messages: int
    conversations: int
    action: int  # -1: none
    action_count: int


def money(cents: int) -> Decimal:
    """Cents as an exact 2-place decimal."""
    return Decimal(f"{cents // 100}.{cents % 100:02d}")


def ratio(numerator: int, denominator: int) -> Decimal:
    """``round(numerator / denominator, 2)`` half up, exact; 0 when the denominator is 0."""
    if denominator == 0:
        return Decimal("0.00")
    return (Decimal(numerator) / Decimal(denominator)).quantize(_CENT, rounding=ROUND_HALF_UP)


def competition_ranks(values: list[int]) -> list[int]:
    """Competition ranking ("1224"), largest value first."""
    first_position: dict[int, int] = {}
    for position, value in enumerate(sorted(values, reverse=True), start=1):
        first_position.setdefault(value, position)
    return [first_position[v] for v in values]


def _intensity(
    cumulative: tuple[int, ...], first_day: int, offset_ms: int, rel_from: int, rel_to: int
) -> int:
    """Sum of daily intensities of the days whose usage instant (day start + offset) lies in the period."""
    lo = max(-((offset_ms - rel_from) // DAY_MS), first_day)
    hi = min((rel_to - offset_ms) // DAY_MS, len(cumulative) - 2)
    return cumulative[hi + 1] - cumulative[lo] if hi >= lo else 0


class _Usage:
    """Period usage of one workspace, computed slot by slot from the cumulative intensity tables."""

    def __init__(self, ws: Workspace, period: Period) -> None:
        self.ws = ws
        self.period = period
        self.rel_from = period.start_ms - ws.created_ms
        self.rel_to = period.end_ms - ws.created_ms

    def joined(self, user: int) -> bool:
        return self.ws.users.join_day[user] * DAY_MS <= self.rel_to

    def user_slots(self, i: int) -> list[Slot]:
        """The user's slots with messages in the period."""
        u = self.ws.users
        cum = self.ws.cumulative
        group, offset, first = u.group[i], u.offset_ms[i], u.join_day[i]
        k0 = _intensity(cum[0][group], first, offset, self.rel_from, self.rel_to)
        k1 = _intensity(cum[1][group], first, offset, self.rel_from, self.rel_to)
        if k0 == 0 and k1 == 0:
            return []
        slots: list[Slot] = []
        for kind, target, model, deployment, pattern, unit, conversations, action, action_unit in u.strands[
            i
        ]:
            k = k1 if pattern else k0
            if k:
                slots.append(
                    Slot(
                        kind, target, model, deployment, k * unit, k * conversations, action, k * action_unit
                    )
                )
        return slots

    def all_slots(self) -> Iterator[tuple[int, Slot]]:
        for i in range(len(self.ws.users)):
            for slot in self.user_slots(i):
                yield i, slot

    def tokens(self, user: int, kind: int, model: int) -> tuple[int, int, int, int, int]:
        """Per-message (prompt, completion, cached prompt, cache creation, uncached prompt) tokens."""
        m = self.ws.models[model]
        jitter = self.ws.users.jitter[user]
        prompt = m.prompt_tokens + jitter * 35 + (0, 400, 800)[kind]
        cached = prompt * m.cached_pct // 100
        creation = prompt * 5 // 100
        return prompt, m.completion_tokens + jitter * 20, cached, creation, prompt - cached - creation


def _fill_ranks(columns: tuple[Column, ...], rows: list[list[Value]]) -> None:
    names = [c.name for c in columns]
    for position, column in enumerate(columns):
        if column.rank:
            figure = names.index(column.name.removesuffix("_rank"))
            ranks = competition_ranks([row[figure] for row in rows])  # type: ignore[misc]
            for row, rank in zip(rows, ranks, strict=True):
                row[position] = rank


class _Builder:
    """Builds one export's table; one method per export type."""

    def __init__(self, ws: Workspace, period: Period, byok: bool, privacy: Privacy) -> None:
        self.ws = ws
        self.usage = _Usage(ws, period)
        self.byok = byok
        self.privacy = privacy
        self.prefix: list[Value] = [period.start_date.isoformat(), period.end_date.isoformat(), ws.org_id]
        self._money: dict[int, Decimal] = {}
        self._dates: dict[int, str] = {}
        self.lookups = (
            [a.id for a in ws.agents],
            [p.id for p in ws.projects],
            [m.name for m in ws.models],
            [m.cents_per_message for m in ws.models],
        )

    def date_of(self, day: int) -> str:
        """The ISO date of a day number, cached."""
        text = self._dates.get(day)
        if text is None:
            text = self._dates[day] = self.ws.date_of(day).isoformat()
        return text

    def money(self, cents: int) -> Decimal:
        """``money`` with a cache: many users share the same amounts."""
        value = self._money.get(cents)
        if value is None:
            value = self._money[cents] = money(cents)
        return value

    def user_id(self, user: int) -> str:
        return self.ws.users.ids[user] if self.privacy.user_level_data else self.ws.anon_id(user)

    def identifying(self, value: str) -> str:
        if self.privacy.user_level_data:
            return value
        return PLACEHOLDER if self.privacy.anonymisation == "placeholder" else ""

    # users ---------------------------------------------------------------------------------------------
    def _user_figures(self, user: int, slots: list[Slot]) -> list[Value]:
        u = self.ws.users
        agent_ids, project_ids, model_names, cents_per_message = self.lookups
        chat = assistants = projects = cents = 0
        tok = [0, 0, 0, 0, 0]
        to_agents: dict[str, int] = {}
        to_projects: dict[str, int] = {}
        to_models: dict[str, int] = {}
        to_actions: dict[str, int] = {}
        for kind, target, model, _, count, _, action, action_count in slots:
            if kind == CHAT:
                chat += count
            elif kind == ASSISTANT:
                assistants += count
                key = agent_ids[target]
                to_agents[key] = to_agents.get(key, 0) + count
            else:
                projects += count
                key = project_ids[target]
                to_projects[key] = to_projects.get(key, 0) + count
            name = model_names[model]
            to_models[name] = to_models.get(name, 0) + count
            if action_count:
                action_id = self.ws.actions[action]
                to_actions[action_id] = to_actions.get(action_id, 0) + action_count
            cents += count * cents_per_message[model]
            if self.byok:
                for n, per_message in enumerate(self.usage.tokens(user, kind, model)):
                    tok[n] += count * per_message
        limit = u.payg_limit_cents[user]
        row: list[Value] = [
            self.money(limit),
            self.money(cents),
            ratio(100 * cents, limit),
            chat + assistants + projects,
            None,
            chat,
            None,
            assistants,
            None,
            len(to_agents),
            to_agents,
            projects,
            None,
            len(to_projects),
            to_projects,
            to_models,
            sum(to_actions.values()),
            len(to_actions),
            to_actions,
        ]
        if self.byok:
            row += [tok[0], tok[1], tok[2], tok[3], tok[4], self.money(cents)]
        return row

    def users(self, group_by: GroupBy | None) -> list[list[Value]]:
        u = self.ws.users
        rows: list[list[Value]] = []
        for i in range(len(u)):
            if not self.usage.joined(i):
                continue
            person: list[Value] = [
                self.user_id(i),
                self.identifying(u.names[i]),
                self.identifying(u.emails[i]),
                u.roles[i],
                self.date_of(u.join_day[i]),
                u.departments[i],
                u.companies[i],
                u.licenses[i],
            ]
            slots = self.usage.user_slots(i)
            if group_by is None:
                rows.append(self.prefix + person + self._user_figures(i, slots))
                continue
            for model in sorted({s.model for s in slots}):
                mine = [s for s in slots if s.model == model]
                rows.append([*self.prefix, self.ws.models[model].name, *person, *self._user_figures(i, mine)])
        return rows

    # assistants / agents --------------------------------------------------------------------------------
    def assistants(self, group_by: GroupBy | None) -> list[list[Value]]:
        ws = self.ws
        acc: dict[tuple[int, int], list[int]] = {}
        per_user: defaultdict[tuple[int, int], defaultdict[int, int]] = defaultdict(lambda: defaultdict(int))
        for user, s in self.usage.all_slots():
            if s.kind != ASSISTANT:
                continue
            key = (s.target, s.model if group_by is not None else -1)
            prompt, completion, *_ = self.usage.tokens(user, s.kind, s.model)
            a = acc.get(key)
            if a is None:
                acc[key] = [
                    s.messages,
                    s.conversations,
                    s.messages * prompt,
                    s.messages * completion,
                    prompt,
                    prompt,
                    completion,
                    completion,
                ]
            else:
                a[0] += s.messages
                a[1] += s.conversations
                a[2] += s.messages * prompt
                a[3] += s.messages * completion
                a[4], a[5] = min(a[4], prompt), max(a[5], prompt)
                a[6], a[7] = min(a[6], completion), max(a[7], completion)
            per_user[key][user] += s.messages
        keys = sorted(acc) if group_by is not None else [(n, -1) for n in range(len(ws.agents))]
        rows: list[list[Value]] = []
        for key in keys:
            agent = ws.agents[key[0]]
            a = acc.get(key, [0, 0, 0, 0])
            users: dict[int, int] = per_user.get(key, {})
            unique = len(users)
            active = sum(1 for n in users.values() if n >= ACTIVE_USER_MESSAGES)
            row: list[Value] = list(self.prefix)
            if group_by is not None:
                row.append(ws.models[key[1]].name)
            row += [
                agent.id,
                agent.name,
                a[0],
                unique,
                active,
                a[1],
                ratio(a[0], unique),
                agent.description,
                agent.url,
                self.user_id(agent.owner),
                self.identifying(ws.users.emails[agent.owner]),
            ]
            if self.byok:
                has = a[0] > 0
                row += [
                    a[2],
                    ratio(a[2], a[0]),
                    a[4] if has else None,
                    a[5] if has else None,
                    a[3],
                    ratio(a[3], a[0]),
                    a[6] if has else None,
                    a[7] if has else None,
                ]
            rows.append(row)
        return rows

    # projects -------------------------------------------------------------------------------------------
    def projects(self) -> list[list[Value]]:
        ws = self.ws
        messages = [0] * len(ws.projects)
        for _, s in self.usage.all_slots():
            if s.kind == PROJECT:
                messages[s.target] += s.messages
        return [
            [
                *self.prefix,
                p.id,
                p.name,
                self.user_id(p.owner),
                self.identifying(ws.users.emails[p.owner]),
                messages[n],
            ]
            for n, p in enumerate(ws.projects)
        ]

    # api keys -------------------------------------------------------------------------------------------
    def api_keys(self, group_by: GroupBy | None) -> list[list[Value]]:
        ws = self.ws
        rows: list[list[Value]] = []
        for key in ws.api_keys:
            k = _intensity(
                ws.cumulative[0][key.group],
                key.created_day,
                key.offset_ms,
                self.usage.rel_from,
                self.usage.rel_to,
            )
            parts = []
            for model, unit in zip(key.models, key.units, strict=True):
                m = ws.models[model]
                requests = k * unit
                cached = m.prompt_tokens * m.cached_pct // 100
                creation = m.prompt_tokens * 5 // 100
                parts.append(
                    (
                        model,
                        requests,
                        requests * m.cents_per_message,
                        [
                            requests * m.prompt_tokens,
                            requests * m.completion_tokens,
                            requests * cached,
                            requests * creation,
                            requests * (m.prompt_tokens - cached - creation),
                        ],
                    )
                )
            groups = [[p] for p in parts if p[1] > 0] if group_by is not None else [parts]
            for group in groups:
                row: list[Value] = list(self.prefix)
                if group_by is not None:
                    row.append(ws.models[group[0][0]].name)
                cents = sum(p[2] for p in group)
                row += [key.id, key.name, sum(p[1] for p in group), money(cents)]
                if self.byok:
                    row += [sum(p[3][n] for p in group) for n in range(5)]
                rows.append(row)
        return rows

    # models ---------------------------------------------------------------------------------------------
    def models(self, group_by: GroupBy | None) -> list[list[Value]]:
        ws = self.ws
        acc: dict[tuple[int, str], list[int]] = {}
        for user, s in self.usage.all_slots():
            if group_by is GroupBy.SOURCE:
                label = SOURCES[s.kind]
            elif group_by is GroupBy.DEPLOYMENT:
                label = s.deployment
            else:
                label = ""
            a = acc.setdefault((s.model, label), [0, 0, 0, 0, 0, 0, 0])
            a[0] += s.messages
            prompt, completion, cached, creation, no_cache = self.usage.tokens(user, s.kind, s.model)
            a[1] += s.messages * prompt
            a[2] += s.messages * completion
            a[3] += s.messages * cached
            a[4] += s.messages * creation
            a[5] += s.messages * no_cache
            a[6] += s.messages * ws.models[s.model].cents_per_message
        keys = sorted(acc) if group_by is not None else [(n, "") for n in range(len(ws.models))]
        rows: list[list[Value]] = []
        for key in keys:
            m = ws.models[key[0]]
            a = acc.get(key, [0] * 7)
            row: list[Value] = list(self.prefix)
            if group_by is not None:
                row.append(key[1])
            row += [m.name, m.provider, m.bring_your_keys, a[0]]
            if self.byok:
                row += [a[1], a[2], a[3], a[4], a[5], money(a[6])]
            rows.append(row)
        return rows


def build_table(
    ws: Workspace,
    export_type: ExportType,
    period: Period,
    *,
    byok: bool,
    group_by: GroupBy | None,
    privacy: Privacy,
) -> Table:
    """Every row of one export over ``period``, with every column the settings allow (before hiding)."""
    builder = _Builder(ws, period, byok, privacy)
    columns = columns_for(export_type, byok=byok, group_by=group_by)
    kind = export_type.canonical
    if kind is ExportType.USERS:
        rows = builder.users(group_by)
    elif kind is ExportType.ASSISTANTS:
        rows = builder.assistants(group_by)
    elif kind is ExportType.PROJECTS:
        rows = builder.projects()
    elif kind is ExportType.API_KEYS:
        rows = builder.api_keys(group_by)
    else:
        rows = builder.models(group_by)
    _fill_ranks(columns, rows)
    return Table(columns, rows)
