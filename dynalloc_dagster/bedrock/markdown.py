"""Compact markdown tables of report data for prompts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import polars as pl


def markdown_table(table: pl.DataFrame, columns: Sequence[str] | None = None) -> str:
    """``table`` as a markdown table; with ``columns``, those of them it has, in that order.
    Floats are shown to 4 decimals, booleans as yes/no, nulls as n/a."""
    shown = table.select([c for c in columns if c in table.columns]) if columns else table
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "---|" * len(shown.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in shown.iter_rows()]
    return "\n".join([header, rule, *rows])


def cell(value: Any) -> str:
    """One value as the prompt shows it."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
