"""The synthetic workspace: people, agents, projects, models, API keys and how intensely each one is used.

Everything comes from one seed through ``random.Random``, so the same seed always gives the same workspace.
Users are stored column-wise (parallel lists) because a benchmark workspace has 100,000 of them.

Usage model (the part ``usage.py`` turns into period figures): a user's messages come from a few fixed
*slots* (chat on a model, messages to an agent, messages in a project). A slot belongs to one of two
*patterns* and carries ``unit`` messages per unit of that pattern's daily intensity. The daily intensity of
pattern ``p`` on day ``d`` for a user is ``weights[p][group][d]``, shared by the user's activity group; its
running sums (``cumulative``) let any range of days be summed in constant time, which keeps every period's
figures exactly the sum of its days.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from itertools import accumulate
from typing import NamedTuple

from odeus_compliance.upstream.simulator import names

ACTIVITY_GROUPS = 32
PATTERNS = 2
DAY_MS = 86_400_000

# Slot kinds.
CHAT = 0
ASSISTANT = 1
PROJECT = 2
SOURCES = ("chat", "assistants", "projects")  # the models export's group_by=source values, by slot kind

ACTIONS = ("web-search", "image-generation", "code-interpreter", "document-analysis", "deep-research")

# Intensity tiers: (weight in %, base messages per unit). Heavy-tailed: few power users, many light ones.
_TIERS = ((10, 0), (50, 1), (28, 3), (10, 8), (2, 25))
# UTC hour at which a user's daily usage happens, weighted towards European office hours.
_CJK_START = 0x2E80
_HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 6, 4, 3, 2, 2, 2, 2, 2)


@dataclass(frozen=True, slots=True)
class Model:
    """A model offered in the workspace; per-message tokens and price make token and cost figures."""

    name: str
    provider: str
    bring_your_keys: bool
    deployments: tuple[str, ...]
    cents_per_message: int
    prompt_tokens: int
    completion_tokens: int
    cached_pct: int


MODELS: tuple[Model, ...] = (
    Model("gpt-4o", "openai", False, ("eu-west", "us-east"), 2, 900, 350, 30),
    Model("gpt-4o-mini", "openai", False, ("eu-west",), 1, 700, 300, 20),
    Model("o3-mini", "openai", False, ("us-east",), 3, 1200, 900, 10),
    Model("claude-3.5-sonnet", "anthropic", False, ("eu-central", "us-east"), 3, 1100, 400, 40),
    Model("claude-3-haiku", "anthropic", False, ("eu-central",), 1, 600, 250, 35),
    Model("mistral-large", "mistral", False, ("eu-west",), 2, 800, 320, 0),
    Model("gemini-1.5-pro", "google", False, ("europe-west4",), 2, 1000, 380, 25),
    Model(
        "azure-gpt-4o",
        "azure-openai",
        True,
        ("customer-westeurope", "customer-swedencentral"),
        2,
        950,
        360,
        30,
    ),
    Model("llama-3.1-70b", "self-hosted", True, ("customer-onprem",), 1, 850, 300, 0),
)
_MODEL_WEIGHTS = (30, 20, 5, 18, 8, 5, 6, 6, 2)


@dataclass(frozen=True, slots=True)
class Agent:
    """An agent (assistant) with its owner (a user index) and the models it runs on."""

    id: str
    name: str
    description: str
    url: str
    owner: int
    models: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Project:
    """A project and its owner (a user index)."""

    id: str
    name: str
    owner: int


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key: requests per unit of intensity on each of its models, on its own activity group."""

    id: str
    name: str
    created_day: int
    group: int
    offset_ms: int
    models: tuple[int, ...]
    units: tuple[int, ...]


class Strand(NamedTuple):
    """One of a user's usage slots, fixed for the workspace: what a unit of intensity produces."""

    kind: int
    target: int  # agent or project index, -1 for chat
    model: int
    deployment: str
    pattern: int
    unit: int  # messages per unit of intensity
    conversations: int  # conversations per unit of intensity
    action: int  # -1: none
    action_unit: int  # messages with an action per unit of intensity


@dataclass(frozen=True, slots=True)
class Users:
    """All users, column-wise; index ``i`` of every list describes user ``i``.

    Slots: ``chat`` (pattern 0, model ``chat_model``), ``chat2`` (pattern 1), ``agent_a`` (pattern 0) and
    ``agent_b`` (pattern 1) to an agent (-1: none), ``project`` (pattern 1, on ``chat2_model``); ``action``
    messages are the part of the ``chat`` slot that used an action.
    """

    ids: list[str]
    names: list[str]
    emails: list[str]
    roles: list[str]
    departments: list[str]
    companies: list[str]
    licenses: list[str]
    payg_limit_cents: list[int]
    join_day: list[int]
    group: list[int]
    offset_ms: list[int]
    jitter: list[int]
    chat_model: list[int]
    chat_unit: list[int]
    chat2_model: list[int]
    chat2_unit: list[int]
    agent_a: list[int]
    agent_a_unit: list[int]
    agent_b: list[int]
    agent_b_unit: list[int]
    project: list[int]
    project_unit: list[int]
    action: list[int]
    action_unit: list[int]
    strands: list[tuple[Strand, ...]] = field(default_factory=list)  # per user, the slots with a unit > 0

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Workspace:
    """One simulated Odeus workspace. ``day`` numbers count UTC days from ``created`` (day 0)."""

    seed: int
    workspace_id: str
    org_id: str
    created: date
    today: date
    users: Users
    agents: tuple[Agent, ...]
    projects: tuple[Project, ...]
    models: tuple[Model, ...]
    actions: tuple[str, ...]
    api_keys: tuple[ApiKey, ...]
    cumulative: tuple[tuple[tuple[int, ...], ...], ...]  # [pattern][group][d] = sum of weights of days < d
    anon_secret: bytes

    @property
    def days(self) -> int:
        """Days with usage: from ``created`` up to, not including, ``today``."""
        return (self.today - self.created).days

    @property
    def created_ms(self) -> int:
        """The workspace's creation instant (00:00 UTC of ``created``) in milliseconds since the epoch."""
        return (self.created - date(1970, 1, 1)).days * DAY_MS

    def date_of(self, day: int) -> date:
        """The calendar date of a day number."""
        return self.created + timedelta(days=day)

    def anon_id(self, user: int) -> str:
        """A stable opaque stand-in for a user id, used when user-level data is disabled."""
        digest = hashlib.blake2b(self.users.ids[user].encode(), key=self.anon_secret, digest_size=8)
        return "anon_" + digest.hexdigest()


def _hex_ids(prefix: str, count: int, salt: int) -> list[str]:
    """Unique ids: an odd multiplier and an xor are bijections on 48-bit numbers."""
    mask = (1 << 48) - 1
    return [f"{prefix}_{(((i + 1) * 0x9E3779B97F4B) ^ salt) & mask:012x}" for i in range(count)]


def _zipf_weights(count: int) -> list[float]:
    return [1.0 / (i + 1) for i in range(count)]


def _names_and_emails(rng: random.Random, count: int) -> tuple[list[str], list[str]]:
    cultures = rng.choices(names.CULTURES, [c.weight for c in names.CULTURES], k=count)
    spelled: dict[str, tuple[str, str]] = {}  # entry -> (display, e-mail part), computed once per entry

    def spell(entry: str) -> tuple[str, str]:
        known = spelled.get(entry)
        if known is None:
            known = spelled[entry] = (names.display(entry), names.email_part(entry))
        return known

    display: list[str] = []
    emails: list[str] = []
    seen: dict[str, int] = {}
    draws = iter([rng.random() for _ in range(2 * count)])
    for culture, r1, r2 in zip(cultures, draws, draws, strict=False):
        given, given_mail = spell(culture.given[int(r1 * len(culture.given))])
        family, family_mail = spell(culture.family[int(r2 * len(culture.family))])
        if culture.family_first:
            sep = "" if ord(family[0]) >= _CJK_START else " "  # CJK names are written without a space
            display.append(family + sep + given)
        else:
            display.append(f"{given} {family}")
        local = f"{given_mail}.{family_mail}"
        n = seen.get(local, 0) + 1
        seen[local] = n
        emails.append(f"{local}{n if n > 1 else ''}@{names.EMAIL_DOMAIN}")
    return display, emails


def _departments(rng: random.Random, count: int) -> list[str]:
    small = [dept for dept, size in names.SMALL_DEPARTMENTS for _ in range(size)]
    if count < len(small) * 3:  # a tiny workspace: keep only the smallest departments
        small = small[: count // 3]
    regular = rng.choices(
        [d for d, _ in names.DEPARTMENTS], [w for _, w in names.DEPARTMENTS], k=count - len(small)
    )
    everyone = small + regular
    rng.shuffle(everyone)
    return everyone


def _cumulative(rng: random.Random, created: date, days: int) -> tuple[tuple[tuple[int, ...], ...], ...]:
    workday = (0, 0, 1, 1, 2, 3)
    weekend = (0, 0, 0, 0, 0, 1)
    anyday = (0, 0, 0, 1, 1, 2)
    patterns = []
    for pattern in range(PATTERNS):
        groups = []
        for _ in range(ACTIVITY_GROUPS):
            weights = []
            for d in range(days):
                if pattern == 0:
                    weights.append(
                        rng.choice(workday if (created + timedelta(days=d)).weekday() < 5 else weekend)
                    )
                else:
                    weights.append(rng.choice(anyday))
            groups.append(tuple(accumulate(weights, initial=0)))
        patterns.append(tuple(groups))
    return tuple(patterns)


def _scaled(rng: random.Random, bases: list[int], factors: tuple[int, ...]) -> list[int]:
    picks = rng.choices(factors, k=len(bases))
    return [b * f for b, f in zip(bases, picks, strict=True)]


def _users(rng: random.Random, count: int, days: int, agents: int, projects: int) -> Users:
    ids = _hex_ids("usr", count, rng.getrandbits(48))
    display, emails = _names_and_emails(rng, count)
    roles = ["owner" if i == 0 else "member" for i in range(count)]
    for i in rng.sample(range(1, count), min(count - 1, max(1, count // 50))):
        roles[i] = "admin"
    licenses = rng.choices(("enterprise", "pro", "payg"), (70, 20, 10), k=count)
    payg_limit = [
        rng.choice((5000, 10000, 20000)) if lic == "payg" else rng.choice((0, 0, 0, 2500)) for lic in licenses
    ]
    onboarding = max(1, min(14, days // 4))
    join_day = [
        int(r2 * onboarding) if r1 < 0.75 else int(r2 * days)
        for r1, r2 in zip(
            [rng.random() for _ in range(count)], [rng.random() for _ in range(count)], strict=True
        )
    ]
    join_day[0] = 0  # the owner created the workspace
    hours = rng.choices(range(24), _HOUR_WEIGHTS, k=count)
    offsets = [h * 3_600_000 + int(rng.random() * 3600) * 1000 for h in hours]
    bases = rng.choices([b for _, b in _TIERS], [w for w, _ in _TIERS], k=count)
    model_ids = range(len(MODELS))
    chat_unit = _scaled(rng, bases, (1, 1, 2, 3))
    action_unit = [u * q // 4 for u, q in zip(chat_unit, rng.choices((0, 0, 1, 2), k=count), strict=True)]
    agent_weights = _zipf_weights(agents)
    project_weights = _zipf_weights(projects)
    return Users(
        ids=ids,
        names=display,
        emails=emails,
        roles=roles,
        departments=_departments(rng, count),
        companies=rng.choices([c for c, _ in names.COMPANIES], [w for _, w in names.COMPANIES], k=count),
        licenses=licenses,
        payg_limit_cents=payg_limit,
        join_day=join_day,
        group=rng.choices(range(ACTIVITY_GROUPS), k=count),
        offset_ms=offsets,
        jitter=rng.choices(range(9), k=count),
        chat_model=rng.choices(model_ids, _MODEL_WEIGHTS, k=count),
        chat_unit=chat_unit,
        chat2_model=rng.choices(model_ids, _MODEL_WEIGHTS, k=count),
        chat2_unit=_scaled(rng, bases, (0, 1, 1, 2)),
        agent_a=rng.choices(range(agents), agent_weights, k=count),
        agent_a_unit=_scaled(rng, bases, (0, 0, 1, 2)),
        agent_b=rng.choices(range(agents), agent_weights, k=count),
        agent_b_unit=_scaled(rng, bases, (0, 0, 0, 1)),
        project=rng.choices(range(projects), project_weights, k=count),
        project_unit=_scaled(rng, bases, (0, 0, 1, 1)),
        action=rng.choices(range(len(ACTIONS)), (6, 3, 2, 2, 1), k=count),
        action_unit=action_unit,
    )


def _strands(u: Users, agents: tuple[Agent, ...]) -> list[tuple[Strand, ...]]:
    """Each user's slots with a unit > 0, computed once so that period sums only multiply."""
    every = []
    for i in range(len(u.ids)):
        raw = [
            (CHAT, -1, u.chat_model[i], 0, u.chat_unit[i], u.action[i], u.action_unit[i]),
            (CHAT, -1, u.chat2_model[i], 1, u.chat2_unit[i], -1, 0),
            (ASSISTANT, u.agent_a[i], _agent_model(agents, u.agent_a[i], i), 0, u.agent_a_unit[i], -1, 0),
            (ASSISTANT, u.agent_b[i], _agent_model(agents, u.agent_b[i], i + 1), 1, u.agent_b_unit[i], -1, 0),
            (PROJECT, u.project[i], u.chat2_model[i], 1, u.project_unit[i], -1, 0),
        ]
        mine = []
        for number, (kind, target, model, pattern, unit, action, action_unit) in enumerate(raw):
            if unit:
                deployments = MODELS[model].deployments
                deployment = deployments[(i + number) % len(deployments)]
                conversations = max(1, unit // 3)
                mine.append(
                    Strand(kind, target, model, deployment, pattern, unit, conversations, action, action_unit)
                )
        every.append(tuple(mine))
    return every


def _agent_model(agents: tuple[Agent, ...], agent: int, salt: int) -> int:
    models = agents[agent].models
    return models[salt % len(models)]


def _named(topics: tuple[str, ...], i: int) -> str:
    topic = topics[i % len(topics)]
    return topic if i < len(topics) else f"{topic} {i // len(topics) + 1}"


def generate_workspace(*, users: int, seed: int, today: date, age_days: int) -> Workspace:
    """Build the workspace for ``seed``: the same arguments always give the same workspace."""
    rng = random.Random(f"odeus-simulator/{seed}")  # noqa: S311 - synthetic data, not crypto
    created = today - timedelta(days=age_days)
    ident = hashlib.sha256(f"odeus-simulator/{seed}".encode()).hexdigest()
    n_agents = max(6, min(users // 20, 5000))
    n_projects = max(4, min(users // 30, 3000))
    user_table = _users(rng, users, age_days, n_agents, n_projects)
    agent_ids = _hex_ids("asst", n_agents, rng.getrandbits(48))
    agents = tuple(
        Agent(
            id=agent_ids[i],
            name=_named(names.AGENT_TOPICS, i),
            description=f"Helps with: {_named(names.AGENT_TOPICS, i)}",
            url=f"https://app.odeus.ai/assistants/{agent_ids[i]}",
            owner=rng.randrange(users),
            models=tuple(sorted(set(rng.choices(range(len(MODELS)), _MODEL_WEIGHTS, k=rng.choice((1, 2)))))),
        )
        for i in range(n_agents)
    )
    project_ids = _hex_ids("proj", n_projects, rng.getrandbits(48))
    projects = tuple(
        Project(id=project_ids[i], name=_named(names.PROJECT_TOPICS, i), owner=rng.randrange(users))
        for i in range(n_projects)
    )
    n_keys = 3 + users // 2000
    key_ids = _hex_ids("key", n_keys, rng.getrandbits(48))
    api_keys = []
    for i in range(n_keys):
        key_models = tuple(sorted(set(rng.choices(range(len(MODELS)), _MODEL_WEIGHTS, k=2))))
        api_keys.append(
            ApiKey(
                id=key_ids[i],
                name=_named(names.API_KEY_NAMES, i),
                created_day=0 if i < 3 else rng.randrange(age_days),
                group=rng.randrange(ACTIVITY_GROUPS),
                offset_ms=rng.randrange(DAY_MS // 1000) * 1000,
                models=key_models,
                units=tuple(rng.choice((5, 20, 60, 150)) for _ in key_models),
            )
        )
    user_table = replace(user_table, strands=_strands(user_table, agents))
    return Workspace(
        seed=seed,
        workspace_id=f"ws-{ident[:12]}",
        org_id=f"org_{ident[12:24]}",
        created=created,
        today=today,
        users=user_table,
        agents=agents,
        projects=projects,
        models=MODELS,
        actions=ACTIONS,
        api_keys=tuple(api_keys),
        cumulative=_cumulative(rng, created, age_days),
        anon_secret=hashlib.sha256(f"odeus-simulator-anon/{seed}".encode()).digest(),
    )
