"""Grounding of a narrative: every number it shows must come from the report tables."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from dynalloc_dagster.bedrock.narrative import ReportTables

Unit = Literal["plain", "percent", "bps"]

_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?\b")
_LIST_MARKER = re.compile(r"^(\s*(?:#{1,6}\s+|[-*+]\s+)?)\d+(?:\.\d+)*[.)](?=\s)", re.MULTILINE)
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+(?![\d,])|\d+)(\.\d+)?")
_UNIT = re.compile(
    r"\s?%|\s?(?:percentage points?|percent|per cent|pp)\b"
    r"|\s?(?:bps|bp|basis points?)\b|x\b",
    re.IGNORECASE,
)
_EMBEDDED = re.compile(r"\d+(?:\.\d+)?")
_SIGN_AFTER = " \t\n([:=,;/~"


@dataclass(frozen=True, slots=True)
class NumberShown:
    """A number as the narrative shows it.

    Attributes
    ----------
    text : as written, e.g. ``"-12.3%"``.
    value : the number shown, e.g. -12.3.
    decimals : digits after the decimal point; the value stands for anything within
        half a unit of the last digit.
    unit : ``percent`` (%, percent, percentage points, pp), ``bps`` (bps, bp, basis
        points) or ``plain`` (including a multiplier ``x``).
    """

    text: str
    value: float
    decimals: int
    unit: Unit

    @property
    def tolerance(self) -> float:
        return 0.5 * 10.0 ** -self.decimals * (1.0 + 1e-9) + 1e-12


@dataclass(frozen=True, slots=True)
class GroundingResult:
    """Outcome of :func:`check_grounding`.

    Attributes
    ----------
    numbers_checked : numbers found in the narrative (each occurrence counts).
    unmatched : the numbers found in no table, as written, in order of first appearance,
        each once.
    """

    numbers_checked: int
    unmatched: list[str]

    @property
    def grounded(self) -> bool:
        return not self.unmatched


def check_grounding(text: str, tables: ReportTables) -> GroundingResult:
    """Check every number of ``text`` against the report tables, within the rounding shown.

    Notes
    -----
    A number shown with d decimals matches a table value v when |shown - v s| <= 0.5 10^-d,
    where s = 1 for plain numbers, s = 100 for percentages (12.3% matches 0.1234) and
    s in {1, 1e4} for basis points (10 bps matches tc_bps = 10 or a cost of 0.001). Signs
    must agree. Table values are every numeric cell, the objectives and the recommended
    rule. Numbers inside text cells (band labels such as ``6-11m``) and names (``var95``)
    match as shown, whatever the unit. A non-negative integer shown plainly is also
    grounded when it is a count the tables imply: any rank 1..n (n the configs), a
    table's row count, a column's distinct values (not for float columns), a boolean
    column's true values, the number of unmet objectives. Not checked: ISO dates, list
    markers and section numbers at the start of a line, config ids, digits inside words
    (``v1``, ``3f9c...``).
    """
    values, labels = _table_values(tables)
    counts = _counts(tables)
    cleaned = _strip_unchecked(text.replace("\u2212", "-"), tables)
    checked = 0
    unmatched: list[str] = []
    for number in extract_numbers(cleaned):
        checked += 1
        if not _matches(number, values, labels, counts) and number.text not in unmatched:
            unmatched.append(number.text)
    return GroundingResult(numbers_checked=checked, unmatched=unmatched)


def extract_numbers(text: str) -> Iterator[NumberShown]:
    """The numbers of ``text``: signed, with thousands separators, decimals and a unit.

    A sign counts when it follows a space, an opening bracket or punctuation (so the
    range ``6-24`` is two positive numbers). Digits glued to letters (an id, ``v1``)
    are skipped, except a unit written without a space (``12bps``, ``1.5x``).
    """
    for match in _NUMBER.finditer(text):
        start, end = match.span()
        unit_match = _UNIT.match(text, end)
        after = unit_match.end() if unit_match else end
        if after < len(text) and (text[after].isalnum() or text[after] == "_"):
            continue
        sign = ""
        before = text[start - 2] if start >= 2 else " "
        if start > 0 and text[start - 1] in "+-" and before in _SIGN_AFTER:
            sign = text[start - 1]
            start -= 1
        integer, fraction = match.group(1), match.group(2) or ""
        value = float(integer.replace(",", "") + fraction)
        yield NumberShown(
            text=text[start:after],
            value=-value if sign == "-" else value,
            decimals=max(len(fraction) - 1, 0),
            unit=_unit(unit_match.group(0) if unit_match else ""),
        )


def _unit(suffix: str) -> Unit:
    word = suffix.strip().lower()
    if word in {"", "x"}:
        return "plain"
    if word.startswith("b"):
        return "bps"
    return "percent"


def _matches(
    number: NumberShown, values: np.ndarray, labels: np.ndarray, counts: set[int]
) -> bool:
    if number.unit == "plain" and number.decimals == 0 and number.value in counts:
        return True
    if np.any(np.abs(labels - number.value) <= number.tolerance):
        return True
    scales = {"plain": (1.0,), "percent": (100.0,), "bps": (1.0, 1e4)}[number.unit]
    return any(
        bool(np.any(np.abs(values * scale - number.value) <= number.tolerance))
        for scale in scales
    )


def _strip_unchecked(text: str, tables: ReportTables) -> str:
    for config_id in sorted(_config_ids(tables), key=len, reverse=True):
        text = text.replace(config_id, " ")
    text = _ISO_DATE.sub(" ", text)
    return _LIST_MARKER.sub(r"\1", text)


def _config_ids(tables: ReportTables) -> set[str]:
    ids = {str(tables.recommended.get("config_id", ""))} - {""}
    for frame in tables.frames().values():
        for column in frame.columns:
            if column.endswith("config_id"):
                ids.update(str(v) for v in frame[column].drop_nulls().unique())
    return ids


def _table_values(tables: ReportTables) -> tuple[np.ndarray, np.ndarray]:
    """The numeric values, and the numbers written inside labels (matched as shown,
    whatever the unit: ``95%`` matches the 95 of ``var95``)."""
    numbers: list[float] = []
    labels: list[float] = []
    for frame in tables.frames().values():
        for column in frame.columns:
            labels += _embedded(column)
            series = frame[column]
            if series.dtype.is_numeric():
                numbers += series.drop_nulls().cast(pl.Float64).to_list()
            elif series.dtype == pl.String and not column.endswith("config_id"):
                for cell in series.drop_nulls().unique():
                    labels += _embedded(cell)
    for mapping in (tables.objectives, tables.recommended):
        for key, value in mapping.items():
            labels += _embedded(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                numbers.append(float(value))
    finite = [v for v in numbers if math.isfinite(v)]
    return np.array(finite, dtype=np.float64), np.array(labels, dtype=np.float64)


def _embedded(text: str) -> list[float]:
    """Numbers written inside a label: ``6-11m`` gives 6 and 11, ``var95`` gives 95."""
    return [float(m.group(0)) for m in _EMBEDDED.finditer(text)]


def _counts(tables: ReportTables) -> set[int]:
    frames = tables.frames()
    n_configs = max(tables.leaderboard.height, tables.optimisation_history.height)
    counts = set(range(1, n_configs + 1)) | {0, len(tables.unmet_objectives)}
    for frame in frames.values():
        counts.add(frame.height)
        for column in frame.columns:
            series = frame[column]
            if not series.dtype.is_float():
                counts.add(series.n_unique())
            if series.dtype == pl.Boolean:
                counts.add(int(series.sum()))
    return counts
