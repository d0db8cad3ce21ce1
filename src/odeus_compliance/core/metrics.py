"""Counters, gauges and histograms, and their Prometheus text exposition (format 0.0.4).

A small writer of the documented text format (``# HELP``, ``# TYPE``, one sample per line; histograms as
cumulative ``_bucket{le=...}`` lines with ``_sum`` and ``_count``), so the service needs no metrics library.
A :class:`Registry` belongs to one app (``create_app`` builds it): nothing here is module-level state.

Label values are escaped as the format requires (backslash, double quote, line feed); callers pass only
fixed vocabularies (stages, outcomes, error kinds), never data.
"""

from __future__ import annotations

import abc
import math
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Final, TypeVar

__all__ = ["CONTENT_TYPE", "Counter", "Gauge", "Histogram", "Registry"]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The media type of the text exposition format."""
_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

LabelValues = tuple[str, ...]


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value as the format writes it (``+Inf``, ``-Inf``, ``NaN``, integers without a point)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _labels(names: Sequence[str], values: Sequence[str], extra: tuple[str, str] | None = None) -> str:
    pairs = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True)]
    if extra is not None:
        pairs.append(f'{extra[0]}="{_escape_label(extra[1])}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


class _Family(abc.ABC):
    """A metric family: a name, help text, label names and one series per combination of label values."""

    kind: str = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        if not _NAME.fullmatch(name) or any(not _LABEL.fullmatch(n) or n.startswith("__") for n in labels):
            msg = f"invalid metric or label name in {name}"
            raise ValueError(msg)
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._lock = threading.Lock()  # the upstream client and the audit writer may report from threads

    def _key(self, labels: dict[str, str]) -> LabelValues:
        if set(labels) != set(self.label_names):
            msg = f"{self.name} takes the labels {', '.join(self.label_names) or 'none'}"
            raise ValueError(msg)
        return tuple(str(labels[n]) for n in self.label_names)

    @abc.abstractmethod
    def samples(self) -> Iterator[str]:
        """The family's sample lines (each kind writes its own)."""

    def render(self) -> str:
        """``# HELP``, ``# TYPE`` and the samples."""
        head = f"# HELP {self.name} {_escape_help(self.help)}\n# TYPE {self.name} {self.kind}\n"
        return head + "".join(line + "\n" for line in self.samples())


class Counter(_Family):
    """A value that only goes up (events so far). Its name ends in ``_total``."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[LabelValues, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` (not negative) to the series of ``labels``."""
        if amount < 0:
            msg = "a counter cannot go down"
            raise ValueError(msg)
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        """The series' current value (0 if never counted)."""
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def samples(self) -> Iterator[str]:
        """One line per series."""
        with self._lock:
            items = sorted(self._values.items())
        for key, value in items:
            yield f"{self.name}{_labels(self.label_names, key)} {format_value(value)}"


class Gauge(_Family):
    """A value that goes up and down (a queue's depth, a log's size)."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[LabelValues, float] = {}

    def set(self, value: float, **labels: str) -> None:
        """Set the series of ``labels`` to ``value``."""
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def value(self, **labels: str) -> float | None:
        """The series' value, ``None`` if never set."""
        with self._lock:
            return self._values.get(self._key(labels))

    def samples(self) -> Iterator[str]:
        """One line per series."""
        with self._lock:
            items = sorted(self._values.items())
        for key, value in items:
            yield f"{self.name}{_labels(self.label_names, key)} {format_value(value)}"


class Histogram(_Family):
    """Observations counted into fixed buckets (upper bounds, ascending; ``+Inf`` is added)."""

    kind = "histogram"

    def __init__(
        self, name: str, help_text: str, labels: Sequence[str] = (), *, buckets: Iterable[float]
    ) -> None:
        if "le" in labels:
            msg = "a histogram cannot have a label named le"
            raise ValueError(msg)
        super().__init__(name, help_text, labels)
        bounds = [float(b) for b in buckets if not math.isinf(b)]
        if not bounds or bounds != sorted(set(bounds)):
            msg = "histogram buckets must be ascending and distinct"
            raise ValueError(msg)
        self.buckets = (*bounds, math.inf)
        self._series: dict[LabelValues, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, **labels: str) -> None:
        """Count ``value`` into the series of ``labels``."""
        key = self._key(labels)
        with self._lock:
            counts, total = self._series.setdefault(key, ([0] * len(self.buckets), [0.0]))
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[index] += 1
                    break
            total[0] += value

    def count(self, **labels: str) -> int:
        """How many observations the series holds."""
        with self._lock:
            series = self._series.get(self._key(labels))
            return sum(series[0]) if series else 0

    def samples(self) -> Iterator[str]:
        """Cumulative buckets, then ``_sum`` and ``_count``, per series."""
        with self._lock:
            items = sorted((key, (list(c), t[0])) for key, (c, t) in self._series.items())
        for key, (counts, total) in items:
            cumulative = 0
            for bound, count in zip(self.buckets, counts, strict=True):
                cumulative += count
                labels = _labels(self.label_names, key, ("le", format_value(bound)))
                yield f"{self.name}_bucket{labels} {cumulative}"
            plain = _labels(self.label_names, key)
            yield f"{self.name}_sum{plain} {format_value(total)}"
            yield f"{self.name}_count{plain} {cumulative}"


_F = TypeVar("_F", bound=_Family)


class Registry:
    """The families of one app, rendered in the order they were added."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}

    def add(self, family: _F) -> _F:
        """Register ``family`` (its name must be new) and return it."""
        if family.name in self._families:
            msg = f"the metric {family.name} is registered twice"
            raise ValueError(msg)
        self._families[family.name] = family
        return family

    def render(self) -> str:
        """The whole exposition text."""
        return "".join(family.render() for family in self._families.values())
