"""The charts as PNG bytes, drawn several at once.

Each figure is built in this process (its data read from the tables: the plotting
functions of :mod:`~dynalloc_dagster.committee.plots`), then drawn to PNG (layout, Agg
rasterisation, PNG encoding: most of a chart's time) by worker processes forked from
this one, each drawing whole figures and sending back their bytes (or whatever the
caller's drawing makes of a figure: the report's charts also encode their charts.pdf page
there, :func:`~dynalloc_dagster.committee.pdf.png_and_page`). The workers fork when the
first figure is built and draw while this process builds the next: each figure is sent
to them pickled (matplotlib's own pickling of a figure, which a worker draws to the same
bytes as the figure drawn here) as soon as it is built, and the first worker free draws
it. Workers only run matplotlib: polars' thread pool is not usable in a forked child, so
every table is read here.

Where fork is not available (Windows) or one worker is asked for, the figures are drawn
here, each once built, to the same bytes. A chart that fails, built, sent or drawn, fails
the whole call with :class:`ChartError` naming it (the first in the builders' order): no
chart goes missing silently.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from dynalloc_dagster.committee.plots import png_bytes

MAX_WORKERS = 4
"""Workers at most, however many cores: past a few, forking costs more than it saves."""

_DRAW: list[Callable[[Figure], Any]] = []
"""The drawing a pool's workers run on each figure they receive: set before the workers
fork, read in them (so it need not pickle)."""

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
    ChartError : a builder, the pickling of its figure or a drawing raised (the first in
        ``builders``' order), or a worker died while drawing; it names the chart.
    """
    count = min(workers or default_workers(), len(builders))
    if count <= 1 or not can_fork():
        return {name: _draw_here(name, _built(name, build), draw)
                for name, build in builders.items()}
    return _draw_forked(builders, draw, count)


def _built(name: str, build: Callable[[], Figure]) -> Figure:
    try:
        return build()
    except Exception as error:
        raise ChartError(name, "being built", error) from error


def _draw_here(name: str, fig: Figure, draw: Callable[[Figure], Drawn]) -> Drawn:
    try:
        return draw(fig)
    except Exception as error:
        raise ChartError(name, "being drawn", error) from error
    finally:
        plt.close(fig)


def _pickled(name: str, build: Callable[[], Figure]) -> bytes:
    """The built figure as a worker receives it, closed here."""
    fig = _built(name, build)
    try:
        return pickle.dumps(fig, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        raise ChartError(name, "being sent to a worker process", error) from error
    finally:
        plt.close(fig)


def _draw_forked(builders: Mapping[str, Callable[[], Figure]],
                 draw: Callable[[Figure], Drawn], workers: int) -> dict[str, Drawn]:
    """The charts drawn by ``workers`` forked processes, each sent as soon as it is built.
    When a worker dies, every chart not drawn yet fails alike (the pool breaks), so each
    of those is drawn again alone: the one whose process dies again is named; a death that
    does not recur (memory pressure) costs only the redrawing."""
    _DRAW[:] = [draw]
    try:
        figures: dict[str, bytes] = {}
        drawn, unfinished = _pool_draw(_built_as_sent(builders, figures), workers)
        for name in unfinished:
            again, died = _pool_draw(iter([(name, figures[name])]), 1)
            if died:
                raise ChartError(name, "being drawn (its worker process died)",
                                 died[name]) from died[name]
            drawn.update(again)
        return {name: drawn[name] for name in builders}
    finally:
        _DRAW.clear()


def _built_as_sent(builders: Mapping[str, Callable[[], Figure]], figures: dict[str, bytes]):
    """(name, pickled figure) of each chart in turn, built when asked for, kept in
    ``figures`` for a redrawing."""
    for name, build in builders.items():
        figures[name] = _pickled(name, build)
        yield name, figures[name]


def _pool_draw(charts, workers: int) -> tuple[dict[str, Any], dict[str, BrokenProcessPool]]:
    """({chart: drawn} by a pool of forked workers, {chart: error} of the charts left
    undrawn because a worker died) of ``charts`` ((name, pickled figure) pairs, each sent
    once made); a drawing that raises fails the call naming it, and so does a chart that
    cannot be made, once the charts before it are drawn."""
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=_end_on_sigterm) as pool:
        futures: dict[str, Future[Any]] = {}
        unsent: dict[str, BrokenProcessPool] = {}
        broken: BrokenProcessPool | None = None
        unmade: ChartError | None = None
        try:
            for name, figure in charts:
                if broken is None:
                    try:
                        futures[name] = pool.submit(_draw_sent, figure)
                        continue
                    except BrokenProcessPool as error:  # a worker died already
                        broken = error
                unsent[name] = broken
        except ChartError as error:
            unmade = error
        drawn, unfinished = {}, {}
        for name, future in futures.items():
            try:
                drawn[name] = future.result()
            except BrokenProcessPool as error:
                unfinished[name] = error
            except Exception as error:
                pool.shutdown(cancel_futures=True)
                raise ChartError(name, "being drawn", error) from error
        if unmade is not None:
            raise unmade
        return drawn, unfinished | unsent


def _end_on_sigterm() -> None:
    """In a worker: SIGTERM ends it, whatever handler it inherited.

    A Dagster run worker catches SIGTERM to turn it into an interrupt it handles when
    it can; a worker forked from it would inherit that handler and survive the SIGTERM
    the pool sends its workers when one of them dies, and the pool would wait for it
    forever (blocked writing a PNG nobody reads any more).
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _draw_sent(figure: bytes) -> Any:
    """In a worker: the drawing of a figure built and pickled by the parent."""
    fig = pickle.loads(figure)
    try:
        return _DRAW[0](fig)
    finally:
        plt.close(fig)
