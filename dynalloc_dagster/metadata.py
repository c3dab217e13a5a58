"""Metadata helpers: the figures a stakeholder sees next to each materialization."""

from __future__ import annotations

from typing import Any

import dagster as dg
import polars as pl


def table_metadata(frame: pl.DataFrame, *, preview_rows: int = 10) -> dict[str, Any]:
    """Row count, column schema and a markdown preview of the first rows."""
    preview = frame.head(preview_rows)
    header = "| " + " | ".join(preview.columns) + " |"
    rule = "| " + " | ".join("---" for _ in preview.columns) + " |"
    rows = [
        "| " + " | ".join(_cell(v) for v in row) + " |" for row in preview.iter_rows()
    ]
    return {
        "dagster/row_count": frame.height,
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, str(dtype)) for name, dtype in frame.schema.items()]
        ),
        "preview": dg.MetadataValue.md("\n".join([header, rule, *rows])),
    }


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
