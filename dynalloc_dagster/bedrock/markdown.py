"""Compact markdown tables of report data for prompts, and the model's markdown made
safe to store and show."""

from __future__ import annotations

import datetime as dt
import html
import re
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


SAFE_SCHEMES = ("http", "https", "mailto")
"""Link targets kept in a narrative; any other scheme (javascript:, data:, vbscript:,
file:, ...) is dropped with its link, keeping the link's text."""
_SCRIPT = re.compile(r"<\s*(script|style|iframe|object|embed)\b.*?(<\s*/\s*\1\s*>|\Z)",
                     re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?(-->|\Z)", re.DOTALL)
_TAG = re.compile(r"</?\s*[A-Za-z!?][^<>]*>")
_IMAGE = re.compile(r"!\[([^\]]*)\]\s*(\([^)]*\)|\[[^\]]*\])")
_LINK = re.compile(r"\[([^\]]*)\]\(\s*<?([^)\s>]*)>?(\s+\"[^\"]*\")?\s*\)")
_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*<?(\S*?)>?([ \t].*)?$", re.MULTILINE)
_CONTROL = re.compile(r"[\x00-\x20\x7f]+")


def safe_markdown(text: str) -> str:
    """The model's markdown with nothing a viewer would run or fetch.

    Removed: HTML (``<script>``, ``<style>``, ``<iframe>``, ``<object>``, ``<embed>``
    elements with their content; every other tag and comment, keeping the text between
    tags); images (an external image is fetched by whoever opens the report: each becomes
    its alt text); links and reference definitions whose target's scheme is not one of
    :data:`SAFE_SCHEMES` (e.g. ``javascript:``, also when written with entities, case or
    control characters: each link becomes its text). Headings, emphasis, lists, tables and
    http(s) links are kept as written."""
    text = _SCRIPT.sub("", text)
    text = _COMMENT.sub("", text)
    text = _TAG.sub("", text)
    text = _IMAGE.sub(lambda m: m.group(1), text)
    text = _LINK.sub(lambda m: m.group(0) if _safe_target(m.group(2)) else m.group(1), text)
    return _DEFINITION.sub(lambda m: m.group(0) if _safe_target(m.group(1)) else "", text)


def _safe_target(target: str) -> bool:
    """A relative target or one whose scheme is allowed."""
    plain = _CONTROL.sub("", html.unescape(target)).lower()
    scheme = re.match(r"([a-z][a-z0-9+.-]*):", plain)
    return scheme is None or scheme.group(1) in SAFE_SCHEMES
