"""Validation at the edge: errors name the bad field and the allowed range."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np


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

    Python and numpy real scalars are numbers (``np.int64(3)``, ``np.float32(0.1)``);
    booleans are not. The error message reads
    ``"<owner>.<field> = <value> is outside the allowed range [low, high]"``.
    """
    lo = "[" if low_inclusive else "("
    hi = "]" if high_inclusive else ")"
    allowed = f"{lo}{low:g}, {high:g}{hi}"
    if not _is_real(value):
        raise ConfigError(f"{owner}.{field} = {value!r} must be a number in {allowed}")
    number = float(value)
    too_low = number < low if low_inclusive else number <= low
    too_high = number > high if high_inclusive else number >= high
    if math.isnan(number) or too_low or too_high:
        raise ConfigError(
            f"{owner}.{field} = {_plain(value)!r} is outside the allowed range {allowed}"
        )
    return number


def check_int_range(owner: str, field: str, value: object, low: int, high: int) -> int:
    """Return ``value`` as an int if it is an integer in ``[low, high]``, else raise ConfigError.

    Integral floats (``6.0``) and numpy integer and float scalars are accepted.
    """
    if not _is_real(value) or not float(value).is_integer():  # type: ignore[arg-type]
        raise ConfigError(f"{owner}.{field} = {value!r} must be an integer in [{low}, {high}]")
    value = int(value)  # type: ignore[call-overload]
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


def _is_real(value: object) -> bool:
    """A real Python or numpy scalar, booleans excluded."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _plain(value: object) -> object:
    """A numpy scalar as the Python number it holds, for error messages."""
    return value.item() if isinstance(value, np.generic) else value
