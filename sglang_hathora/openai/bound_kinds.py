"""The kinds of rule the bounds table (request_bounds.py) is made of, and what they depend on.

A rule checks one field's value (``check``), says how the published schema shows it (``schema``;
None leaves the field out) and describes itself for the README's bounds table (``describe``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    """What the bounds depend on: the served model and the server's settings."""

    context_length: int
    vocab_size: int
    max_n: int
    max_completion_tokens: int
    allowed_fields: frozenset[str] = frozenset()
    model_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    param: str
    message: str
    code: str | None = None


Bound = int | float | Callable[[Limits], int | float]


def _value(bound: Bound, limits: Limits) -> int | float:
    return bound(limits) if callable(bound) else bound


def max_tokens_cap(limits: Limits) -> int:
    return limits.max_completion_tokens


# ---- rule kinds ----
class Rule:
    source = ""

    def check(self, name: str, value: Any, limits: Limits) -> Problem | None:
        raise NotImplementedError

    def schema(self, limits: Limits) -> dict[str, Any] | None:
        """JSON-schema keywords merged into the published property; None drops the property."""
        return {}

    def describe(self) -> str:
        raise NotImplementedError


class Free(Rule):
    """Nothing that reaches the engine beyond its type (flags, the model name)."""

    def __init__(self, why: str) -> None:
        self.why = why

    def check(self, name: str, value: Any, limits: Limits) -> Problem | None:
        return None

    def describe(self) -> str:
        return f"accepted ({self.why})"


class Number(Rule):
    """A finite number in [low, high] (or (low, high] with low_open)."""

    def __init__(self, low: Bound, high: Bound, source: str, low_open: bool = False, integer: bool = False) -> None:
        self.low, self.high, self.source, self.low_open, self.integer = low, high, source, low_open, integer

    def check(self, name: str, value: Any, limits: Limits) -> Problem | None:
        low, high = _value(self.low, limits), _value(self.high, limits)
        if not self.integer:
            low, high = float(low), float(high)
        if isinstance(value, float) and not math.isfinite(value):
            return Problem(name, f"'{name}' must be a finite number; got {value}.")
        too_low = value <= low if self.low_open else value < low
        if too_low or value > high:
            return Problem(name, f"'{name}' must be {'>' if self.low_open else '>='} {low} and <= {high}; got {value}.")
        return None

    def schema(self, limits: Limits) -> dict[str, Any]:
        low_key = "exclusiveMinimum" if self.low_open else "minimum"
        return {low_key: _value(self.low, limits), "maximum": _value(self.high, limits)}

    def describe(self) -> str:
        low = self.low.__name__.strip("_") if callable(self.low) else self.low
        high = self.high.__name__.strip("_") if callable(self.high) else self.high
        return f"{'(' if self.low_open else '['}{low}, {high}]"


def Integer(low: Bound, high: Bound, source: str) -> Number:
    return Number(low, high, source, integer=True)


class Refused(Rule):
    """Not for clients of this server: 400 for any value other than the default."""

    def __init__(self, why: str) -> None:
        self.why = why
        self.source = "this server"

    def check(self, name: str, value: Any, limits: Limits) -> Problem | None:
        if name in limits.allowed_fields:
            return None
        return Problem(name, f"'{name}' is not supported on this server ({self.why}).", "unsupported_parameter")

    def schema(self, limits: Limits) -> dict[str, Any] | None:
        return None

    def describe(self) -> str:
        return f"refused unless ALLOW_REQUEST_FIELDS names it ({self.why})"


class Custom(Rule):
    def __init__(
        self,
        check: Callable[[str, Any, Limits], Problem | None],
        text: str,
        source: str,
        schema: Callable[[Limits], dict[str, Any]] | None = None,
    ) -> None:
        self._check, self._text, self.source, self._schema = check, text, source, schema

    def check(self, name: str, value: Any, limits: Limits) -> Problem | None:
        return self._check(name, value, limits)

    def schema(self, limits: Limits) -> dict[str, Any]:
        return self._schema(limits) if self._schema else {}

    def describe(self) -> str:
        return self._text
