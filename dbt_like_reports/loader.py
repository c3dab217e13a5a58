"""Discover the SQL models, resolve their ``{{ ref('...') }}`` dependencies, run them.

A model is one ``models/**/<name>.sql`` file; its name is the file stem and its layer the
folder under ``models/`` (staging, intermediate, marts). ``{{ ref('name') }}`` (either
quote, any whitespace inside the braces) names an input: another model or a source table
(an upstream table the models read but do not build, e.g. ``strategy_evaluations``).
Rendering replaces each ref with the bare table name, and :func:`run_model` executes the
rendered SQL with polars SQL (:class:`polars.SQLContext`) over exactly the referenced
frames, so a model can read nothing it has not declared.

Pure Python: no Dagster import. ``dynalloc_dagster.assets.reports`` turns each model into
an asset.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

__all__ = [
    "MODELS_DIR",
    "CycleError",
    "Model",
    "ModelError",
    "UnknownRefError",
    "discover_models",
    "parse_refs",
    "render",
    "run_model",
    "run_models",
    "topological_order",
]

MODELS_DIR = Path(__file__).resolve().parent / "models"
"""The project's models: ``staging/``, ``intermediate/``, ``marts/``."""

_REF = re.compile(r"""\{\{\s*ref\(\s*(?P<quote>['"])(?P<name>[^'"]*)(?P=quote)\s*\)\s*\}\}""")
_TEMPLATE = re.compile(r"\{\{|\}\}|\{%|%\}")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_LAYER_RANK = {"staging": 0, "intermediate": 1, "marts": 2}


class ModelError(ValueError):
    """A model file, its refs or its SQL is invalid; the message names the model."""


class UnknownRefError(ModelError):
    """A model refs a name that is neither a model nor a source."""


class CycleError(ModelError):
    """The refs form a cycle; the message lists it, e.g. ``a -> b -> a``."""


@dataclass(frozen=True, slots=True)
class Model:
    """One SQL model.

    Attributes
    ----------
    name : the file stem; also the table name other models ref.
    path : the .sql file.
    sql : the raw text, refs included.
    refs : the names it refs, in order of first appearance, without repeats.
    layer : the folder under the models root ("staging", "intermediate", "marts"), or ""
        for a file at the root.
    """

    name: str
    path: Path
    sql: str
    refs: tuple[str, ...]
    layer: str

    @property
    def rendered_sql(self) -> str:
        """The SQL with every ref replaced by its table name."""
        return render(self.sql)

    @property
    def code_version(self) -> str:
        """A 12-hex-digit SHA-256 of the raw SQL text: it changes exactly when the SQL does."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()[:12]


def parse_refs(sql: str) -> tuple[str, ...]:
    """The names referenced by ``{{ ref('name') }}`` in ``sql``, first appearance first.

    Raises ModelError for a template expression that is not a well-formed ref (such as
    ``{{ source('a', 'b') }}`` or ``{% if %}``): the models use refs and nothing else.
    """
    names: list[str] = []
    for match in _REF.finditer(sql):
        name = match.group("name")
        if not _NAME.fullmatch(name):
            raise ModelError(f"ref({name!r}) is not a valid table name (lowercase, digits, _)")
        if name not in names:
            names.append(name)
    # Blank the refs out (same length, so offsets and line numbers are kept).
    leftover = _TEMPLATE.search(_REF.sub(lambda match: " " * len(match.group(0)), sql))
    if leftover:
        line = sql.count("\n", 0, leftover.start()) + 1
        raise ModelError(
            f"unsupported template expression at line {line}: only {{{{ ref('name') }}}}"
            " is understood"
        )
    return tuple(names)


def render(sql: str) -> str:
    """Replace each ``{{ ref('name') }}`` by ``name``."""
    return _REF.sub(lambda match: match.group("name"), sql)


def discover_models(models_dir: Path | str = MODELS_DIR) -> dict[str, Model]:
    """Every ``**/*.sql`` under ``models_dir`` as a Model, keyed by name, sorted by name.

    Raises ModelError when two files share a stem, a stem is not a lowercase identifier,
    or a file's template is invalid (the message names the file).
    """
    root = Path(models_dir)
    if not root.is_dir():
        raise ModelError(f"models directory {root} does not exist")
    models: dict[str, Model] = {}
    for path in sorted(root.rglob("*.sql")):
        name = path.stem
        if not _NAME.fullmatch(name):
            raise ModelError(
                f"model file {path} : its name {name!r} is not a lowercase identifier"
            )
        if name in models:
            raise ModelError(f"model {name!r} is defined twice: {models[name].path} and {path}")
        sql = path.read_text(encoding="utf-8")
        try:
            refs = parse_refs(sql)
        except ModelError as error:
            raise ModelError(f"model {name!r} ({path}): {error}") from None
        if name in refs:
            raise CycleError(f"model {name!r} refs itself: {name} -> {name}")
        relative = path.relative_to(root).parts
        layer = relative[0] if len(relative) > 1 else ""
        models[name] = Model(name=name, path=path, sql=sql, refs=refs, layer=layer)
    return dict(sorted(models.items()))


def topological_order(models: Mapping[str, Model], sources: Iterable[str] = ()) -> list[str]:
    """Model names with every model after the models it refs.

    Depth-first from the models sorted by (layer: staging, intermediate, marts, other;
    name), so the order is deterministic and reads layer by layer when refs respect the
    layers.

    Parameters
    ----------
    models : the models by name.
    sources : names of upstream tables the models may ref without defining them.

    Raises
    ------
    UnknownRefError : a model refs a name that is neither a model nor a source.
    CycleError : the refs form a cycle (the message lists it).
    """
    sources = set(sources)
    clash = sorted(sources & set(models))
    if clash:
        raise ModelError(f"{', '.join(clash)}: both a model and a source")
    for model in models.values():
        unknown = [ref for ref in model.refs if ref not in models and ref not in sources]
        if unknown:
            known = ", ".join(sorted({*models, *sources}))
            raise UnknownRefError(
                f"model {model.name!r} ({model.path}) refs unknown "
                f"{', '.join(repr(u) for u in unknown)}; known models and sources: {known}"
            )
    order: list[str] = []
    state: dict[str, str] = {}  # "visiting" while on the stack, "done" once placed

    def visit(name: str, stack: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = [*stack[stack.index(name) :], name]
            raise CycleError(
                f"models form a dependency cycle: {' -> '.join(cycle)}"
                f" (model {name!r}, {models[name].path})"
            )
        state[name] = "visiting"
        for ref in sorted(models[name].refs):
            if ref in models:
                visit(ref, [*stack, name])
        state[name] = "done"
        order.append(name)

    for name in sorted(models, key=lambda n: (_LAYER_RANK.get(models[n].layer, 3), n)):
        visit(name, [])
    return order


def run_model(model: Model, tables: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Execute ``model`` with polars SQL over ``tables`` (at least every name it refs).

    Only the referenced tables are registered. Raises ModelError naming the model when an
    input is missing or polars cannot run the SQL.
    """
    missing = [ref for ref in model.refs if ref not in tables]
    if missing:
        raise ModelError(f"model {model.name!r}: no input table for {', '.join(missing)}")
    frames = {ref: tables[ref] for ref in model.refs}
    with pl.SQLContext(frames=frames, eager=True) as context:
        try:
            result = context.execute(model.rendered_sql)
        except Exception as error:  # polars raises several types for SQL errors
            raise ModelError(
                f"model {model.name!r} ({model.path}) failed in polars SQL: {error}"
            ) from error
    return result


def run_models(
    sources: Mapping[str, pl.DataFrame], models_dir: Path | str = MODELS_DIR
) -> dict[str, pl.DataFrame]:
    """Run every model in topological order; the sources and each result feed the next.

    Returns the models' tables by name, in run order (sources not included).
    """
    models = discover_models(models_dir)
    tables: dict[str, pl.DataFrame] = dict(sources)
    results: dict[str, pl.DataFrame] = {}
    for name in topological_order(models, sources):
        results[name] = tables[name] = run_model(models[name], tables)
    return results
