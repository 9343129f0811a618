"""Construction-time checks whose messages name the key, the value, the rule and the fix."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ConfigError(ValueError):
    """A configuration value breaks a rule; the message says which key and how to fix it."""


def check_open_unit(key: str, value: float) -> float:
    if not 0.0 < value < 1.0:
        raise ConfigError(f"{key} must be in (0, 1), got {value}; set {key}=0.8 or another value strictly between 0 and 1")
    return float(value)


def check_non_negative(key: str, value: float) -> float:
    if value is None or value < 0:
        raise ConfigError(f"{key} must be >= 0, got {value}; set {key} to a non-negative number")
    return float(value)


def check_positive(key: str, value: float) -> float:
    if value is None or value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value}; set {key} to a positive number")
    return value


def check_choice(key: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{key} must be one of {list(choices)}, got {value!r}")
    return value
