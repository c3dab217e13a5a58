"""Metadata helpers: the figures a stakeholder sees next to each materialization, and the
code version a report is stamped with."""

from __future__ import annotations

import base64
import functools
import subprocess
from collections.abc import Mapping
from importlib import metadata as package_metadata
from typing import Any

import dagster as dg
import polars as pl

from dynalloc_dagster import PROJECT_ROOT

DISTRIBUTION = "dynalloc"


def column_schema(frame: pl.DataFrame, descriptions: dict[str, str] | None = None
                  ) -> dg.TableSchema:
    """Every column of ``frame`` with its dtype (and a description where given)."""
    descriptions = descriptions or {}
    return dg.TableSchema(columns=[dg.TableColumn(name, str(dtype), descriptions.get(name))
                                   for name, dtype in frame.schema.items()])


def markdown_preview(frame: pl.DataFrame) -> dg.MetadataValue:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return dg.MetadataValue.md("\n".join([header, rule, *rows]))


def table_metadata(frame: pl.DataFrame, *, preview_rows: int = 10,
                   descriptions: dict[str, str] | None = None) -> dict[str, Any]:
    """Row count, the full column schema and a markdown preview of the first rows."""
    return {
        "dagster/row_count": frame.height,
        "dagster/column_schema": column_schema(frame, descriptions),
        "preview": markdown_preview(frame.head(preview_rows)),
    }


def png_data_uri(png: bytes) -> str:
    """A PNG as a data URI, so markdown metadata shows the image in the Dagster UI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def chart_gallery(pngs: Mapping[str, bytes], captions: Mapping[str, str]) -> dg.MetadataValue:
    """Markdown showing each chart inline (a data URI, so no file link is needed to see
    it) under its name, with its caption."""
    return dg.MetadataValue.md("\n\n".join(
        f"### {name.replace('_', ' ')}\n\n![{name}]({png_data_uri(png)})\n\n*{captions[name]}*"
        for name, png in pngs.items()))


@functools.cache
def code_version() -> str:
    """'dynalloc <version>, git <commit>' (with '+ uncommitted changes' when the work tree
    differs from the commit), or the version alone where git or the repository is absent.
    The same checkout gives the same text, so identical runs stay byte-identical."""
    try:
        version = package_metadata.version(DISTRIBUTION)
    except package_metadata.PackageNotFoundError:
        version = "unknown version"
    text = f"{DISTRIBUTION} {version}"
    try:
        commit = _git("rev-parse", "--short=12", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return text + ", git commit unavailable"
    try:
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        dirty = False
    return f"{text}, git {commit}" + (" + uncommitted changes" if dirty else "")


def _git(*args: str) -> str:
    result = subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True,
                            text=True, timeout=10, check=True)
    return result.stdout.strip()


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
