"""Validation at the edge: errors name the bad field and the allowed range."""

from __future__ import annotations

import math
from collections.abc import Iterable


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of its range."""


def check_range(
    owner: str,
    field: str,
    value: object,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float if it is a finite number within the range, else raise.

    The error message reads ``"<owner>.<field> = <value> is outside [low, high]"``.
    """
    lo = "[" if low_inclusive else "("
    hi = "]" if high_inclusive else ")"
    allowed = f"{lo}{low:g}, {high:g}{hi}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{owner}.{field} = {value!r} must be a number in {allowed}")
    number = float(value)
    too_low = number < low if low_inclusive else number <= low
    too_high = number > high if high_inclusive else number >= high
    if math.isnan(number) or too_low or too_high:
        raise ConfigError(f"{owner}.{field} = {value!r} is outside the allowed range {allowed}")
    return number


def check_int_range(owner: str, field: str, value: object, low: int, high: int) -> int:
    """Return ``value`` if it is an integer in ``[low, high]``, else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigError(
                f"{owner}.{field} = {value!r} must be an integer in [{low}, {high}]"
            )
    if not low <= value <= high:
        raise ConfigError(
            f"{owner}.{field} = {value!r} is outside the allowed range [{low}, {high}]"
        )
    return value


def check_choice(owner: str, field: str, value: object, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ConfigError listing them."""
    options = tuple(allowed)
    if value not in options:
        raise ConfigError(f"{owner}.{field} = {value!r} is not one of {', '.join(options)}")
    return str(value)
