"""The charts as PNG bytes, drawn several at once.

Each figure is built in this process (its data read from the tables: the plotting
functions of :mod:`~dynalloc_dagster.committee.plots`), then drawn to PNG (layout, Agg
rasterisation, PNG encoding: most of a chart's time) by worker processes forked from
this one, each drawing whole figures and sending back their bytes (or whatever the
caller's drawing makes of a figure: the report's charts also encode their charts.pdf page
there, :func:`~dynalloc_dagster.committee.pdf.png_and_page`). A forked worker
inherits the built figures, so nothing is pickled on the way in and a figure drawn by a
worker is byte for byte the figure drawn here. Workers only run matplotlib: polars'
thread pool is not usable in a forked child, so every table is read before the fork.

Where fork is not available (Windows) or one worker is asked for, the figures are drawn
here, one after the other, to the same bytes. A chart that fails, built or drawn, fails
the whole call with :class:`ChartError` naming it: no chart goes missing silently.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any, TypeVar

from matplotlib.figure import Figure

from dynalloc_dagster.committee.plots import close, png_bytes

MAX_WORKERS = 4
"""Workers at most, however many cores: past a few, forking costs more than it saves."""

_BUILT: dict[str, Callable[[], Any]] = {}
"""The drawings of the built figures a pool's workers run: filled before the workers
fork, read in them."""

Drawn = TypeVar("Drawn")


class ChartError(RuntimeError):
    """A chart could not be built or drawn; the message names it."""

    def __init__(self, chart: str, stage: str, error: BaseException) -> None:
        super().__init__(f"chart {chart!r} failed while {stage}: "
                         f"{type(error).__name__}: {error}")
        self.chart = chart


def default_workers() -> int:
    """The cores this process may run on, at most :data:`MAX_WORKERS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def render_charts(builders: Mapping[str, Callable[[], Figure]], *,
                  workers: int | None = None,
                  draw: Callable[[Figure], Drawn] = png_bytes) -> dict[str, Drawn]:
    """Build every figure (``builders``: chart name -> a function returning its figure),
    draw each with ``draw`` (default: to PNG, :func:`plots.png_bytes`; whatever it returns
    must pickle) on ``workers`` forked processes (default :func:`default_workers`; 1:
    here, serially) and close them all.

    Returns
    -------
    {chart name: what ``draw`` returned}, in the order of ``builders``.

    Raises
    ------
    ChartError : a builder or a drawing raised (the first in ``builders``' order), or a
        worker died while drawing; it names the chart.
    """
    figures: dict[str, Figure] = {}
    try:
        for name, build in builders.items():
            try:
                figures[name] = build()
            except Exception as error:
                raise ChartError(name, "being built", error) from error
        count = min(workers or default_workers(), len(figures))
        drawings = {name: partial(draw, fig) for name, fig in figures.items()}
        if count <= 1 or not can_fork():
            return {name: _draw_here(name, drawing) for name, drawing in drawings.items()}
        return _draw_forked(drawings, count)
    finally:
        close(figures)


def _draw_here(name: str, drawing: Callable[[], Drawn]) -> Drawn:
    try:
        return drawing()
    except Exception as error:
        raise ChartError(name, "being drawn", error) from error


def _draw_forked(drawings: dict[str, Callable[[], Drawn]], workers: int) -> dict[str, Drawn]:
    """The charts drawn by ``workers`` forked processes. When a worker dies, every chart
    not drawn yet fails alike (the pool breaks), so each of those is drawn again alone:
    the one whose process dies again is named; a death that does not recur (memory
    pressure) costs only the redrawing."""
    _BUILT.clear()
    _BUILT.update(drawings)
    try:
        drawn, unfinished = _pool_draw(list(drawings), workers)
        for name in unfinished:
            again, died = _pool_draw([name], 1)
            if died:
                raise ChartError(name, "being drawn (its worker process died)",
                                 died[name]) from died[name]
            drawn.update(again)
        return {name: drawn[name] for name in drawings}
    finally:
        _BUILT.clear()


def _pool_draw(names: list[str], workers: int
               ) -> tuple[dict[str, Any], dict[str, BrokenProcessPool]]:
    """({chart: drawn} by a pool of forked workers, {chart: error} of the charts left
    undrawn because a worker died); a drawing that raises fails the call naming it."""
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=_end_on_sigterm) as pool:
        futures: dict[str, Future[Any]] = {
            name: pool.submit(_draw_built, name) for name in names}
        drawn, unfinished = {}, {}
        for name, future in futures.items():
            try:
                drawn[name] = future.result()
            except BrokenProcessPool as error:
                unfinished[name] = error
            except Exception as error:
                pool.shutdown(cancel_futures=True)
                raise ChartError(name, "being drawn", error) from error
        return drawn, unfinished


def _end_on_sigterm() -> None:
    """In a worker: SIGTERM ends it, whatever handler it inherited.

    A Dagster run worker catches SIGTERM to turn it into an interrupt it handles when
    it can; a worker forked from it would inherit that handler and survive the SIGTERM
    the pool sends its workers when one of them dies, and the pool would wait for it
    forever (blocked writing a PNG nobody reads any more).
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _draw_built(name: str) -> Any:
    """In a worker: the drawing of the figure built before the fork."""
    return _BUILT[name]()
