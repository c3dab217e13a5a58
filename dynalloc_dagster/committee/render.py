"""The charts as PNG bytes, each drawn while the next ones are built.

Each figure is built in this process (its data read from the tables: the plotting
functions of :mod:`~dynalloc_dagster.committee.plots`), and as soon as it is built a
process forked from this one draws it to PNG (layout, Agg rasterisation, PNG encoding:
most of a chart's time) and sends back its bytes, while this process builds the next
figure. At most ``workers`` drawings run at once; a figure built while they are all busy
waits for the first to end. A forked drawer inherits the built figure, so nothing is
pickled on the way in and a figure drawn by a drawer is byte for byte the figure drawn
here. Drawers only run matplotlib: polars' thread pool is not usable in a forked child,
so every table is read here, before the fork.

Where fork is not available (Windows) or one worker is asked for, the figures are built
then drawn here, one after the other, to the same bytes. A chart that fails, built or
drawn, fails the whole call with :class:`ChartError` naming it (the first failing chart in
the builders' order): no chart goes missing silently.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from matplotlib.figure import Figure

from dynalloc_dagster.committee.plots import close, png_bytes

MAX_WORKERS = 4
"""Drawings at once at most, however many cores: past a few, forking costs more than it
saves."""


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
                  workers: int | None = None) -> dict[str, bytes]:
    """Build every figure (``builders``: chart name -> a function returning its figure),
    draw each to PNG (:func:`plots.png_bytes`) in a process forked once it is built, at
    most ``workers`` at once (default :func:`default_workers`; 1: here, serially), and
    close them all.

    Returns
    -------
    {chart name: PNG bytes}, in the order of ``builders``.

    Raises
    ------
    ChartError : a builder or a drawing raised, or a drawing process died; it names the
        first such chart in ``builders``' order.
    """
    count = min(workers or default_workers(), len(builders))
    figures: dict[str, Figure] = {}
    try:
        if count <= 1 or not can_fork():
            for name, build in builders.items():
                figures[name] = _build(name, build)
            return {name: _draw_here(name, fig) for name, fig in figures.items()}
        return _Drawers(list(builders), count).run(builders, figures)
    finally:
        close(figures)


def _build(name: str, build: Callable[[], Figure]) -> Figure:
    try:
        return build()
    except Exception as error:
        raise ChartError(name, "being built", error) from error


def _draw_here(name: str, fig: Figure) -> bytes:
    try:
        return png_bytes(fig)
    except Exception as error:
        raise ChartError(name, "being drawn", error) from error


class _Drawers:
    """The forked drawing processes of one call: each draws one built figure."""

    def __init__(self, order: list[str], workers: int) -> None:
        self.order = order
        self.workers = workers
        self.waiting: list[str] = []
        self.running: dict[Connection, tuple[str, BaseProcess]] = {}
        self.pngs: dict[str, bytes] = {}
        self.failures: dict[str, ChartError] = {}

    def run(self, builders: Mapping[str, Callable[[], Figure]],
            figures: dict[str, Figure]) -> dict[str, bytes]:
        try:
            for name, build in builders.items():
                try:
                    figures[name] = build()
                except Exception as error:
                    self.failures[name] = ChartError(name, "being built", error)
                    break
                self.waiting.append(name)
                self._collect(figures, block=False)
                if self.failures:
                    break
            while not self._decided():
                self._collect(figures, block=True)
        finally:
            self._stop()
        if self.failures:
            raise self.failures[self.order[self._first_failure()]]
        return {name: self.pngs[name] for name in self.order}

    def _first_failure(self) -> int:
        """The position of the first failed chart in the builders' order (their count
        when none failed)."""
        return min((self.order.index(name) for name in self.failures), default=len(self.order))

    def _decided(self) -> bool:
        """Every chart before the first failure (every chart: none failed) is drawn."""
        return all(name in self.pngs for name in self.order[:self._first_failure()])

    def _collect(self, figures: dict[str, Figure], *, block: bool) -> None:
        """Take the finished drawings' results (waiting for one when ``block``), then
        start drawings of built figures before the first failure while fewer than
        ``workers`` run."""
        if self.running:
            for reader in wait(list(self.running), timeout=None if block else 0):
                self._finish(reader)  # type: ignore[arg-type]
        first = self._first_failure()
        while (self.waiting and len(self.running) < self.workers
               and self.order.index(self.waiting[0]) < first):
            name = self.waiting.pop(0)
            self._start(name, figures[name])

    def _start(self, name: str, fig: Figure) -> None:
        context = multiprocessing.get_context("fork")
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(target=_draw_and_send, args=(fig, writer), daemon=True)
        process.start()
        writer.close()
        self.running[reader] = (name, process)

    def _finish(self, reader: Connection) -> None:
        name, process = self.running.pop(reader)
        try:
            ok, result = reader.recv()
        except EOFError:
            ok, result = False, None
        finally:
            reader.close()
        process.join()
        if ok:
            self.pngs[name] = result
        elif result is None:
            self.failures[name] = ChartError(
                name, "being drawn (its worker process died)",
                RuntimeError(f"exit code {process.exitcode}"))
        else:
            self.failures[name] = ChartError(name, "being drawn", result)

    def _stop(self) -> None:
        """End the drawings still running (after a failure or an interrupt)."""
        for reader, (_, process) in self.running.items():
            process.terminate()
            process.join()
            reader.close()
        self.running.clear()


def _draw_and_send(fig: Figure, writer: Connection) -> None:
    """In a drawing process: send (True, the figure's PNG) or (False, the error).

    SIGTERM ends the process whatever handler it inherited: a Dagster run worker catches
    SIGTERM to turn it into an interrupt it handles when it can, and a drawer forked from
    it would survive the SIGTERM sent to end it after another chart failed.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.disable()
    try:
        result: tuple[bool, object] = (True, png_bytes(fig))
    except Exception as error:
        result = (False, error)
    try:
        writer.send(result)
    except Exception:  # an error that does not pickle: its type and message
        writer.send((False, RuntimeError(f"{type(result[1]).__name__}: {result[1]}")))
