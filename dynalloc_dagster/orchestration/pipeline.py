"""Run the whole pipeline, stage after stage, as the chaining sensor would.

Two ways to execute a stage, one loop (:func:`run_pipeline`) over
:func:`dynalloc_dagster.orchestration.stages.next_stage_request`:

- :class:`WorkspaceLauncher` (``python -m dynalloc_dagster``, ``make run``): each stage is
  created for the code location of ``workspace.yaml`` (what ``dagster dev`` loads) and
  executed in this process as a run worker would, so the runs belong to that code location
  and appear on the UI's timeline and job pages like scheduled runs. The location is
  loaded once, in this process (Dagster's ``InProcessCodeLocation`` under the workspace
  location's name), instead of in a code server started for the pipeline (about 3 s of
  start-up and a gRPC call per job snapshot and execution plan); the runs record the
  workspace's own origin, so they are the runs the code server would have created;
- :class:`InProcessLauncher` (the default of :func:`run_pipeline`, used by the tests):
  ``execute_in_process`` on a given ``Definitions`` (e.g. one with a temporary data root).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import dagster as dg
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.execution.api import execute_run
from dagster._core.remote_origin import (
    CodeLocationOrigin,
    InProcessCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.remote_representation.code_location import InProcessCodeLocation
from dagster._core.workspace.load_target import WorkspaceFileTarget

from dynalloc_dagster import PROJECT_ROOT
from dynalloc_dagster.orchestration.run_config import validate_run_config
from dynalloc_dagster.orchestration.stages import next_stage_request, stage_request
from dynalloc_dagster.storage.io_managers import objects_kept_across_runs
from dynalloc_dagster.tags import START_JOB

MAX_STAGE_RUNS = 10_000
WORKSPACE_FILE = PROJECT_ROOT / "workspace.yaml"


class StageLauncher(Protocol):
    def __call__(self, request: dg.RunRequest) -> dg.DagsterRun:
        """Run the requested stage to its end and return the finished run."""
        ...


class InProcessLauncher:
    """Each stage executed in this process on ``defs`` (``execute_in_process``)."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance = defs, instance

    def __call__(self, request: dg.RunRequest) -> dg.DagsterRun:
        job = self.defs.resolve_job_def(request.job_name)
        result = job.execute_in_process(
            instance=self.instance, tags=request.tags,
            run_config=job_run_config(job, request.run_config), raise_on_error=False)
        return result.dagster_run


class WorkspaceLauncher:
    """Each stage created for the workspace's code location, as a scheduled run is, and
    executed in this process (what a run worker does with it, without starting a Python
    process per stage: about 5 s a stage here).

    ``location`` is the workspace location's definitions loaded in this process (job
    snapshots, execution plans and the job executed come from it); each run records
    ``origin``, the workspace's origin of that location, so the UI lists the runs on the
    timeline and the job pages and re-executes them on its own code server. The queue of
    the run coordinator is bypassed, so no daemon is needed."""

    def __init__(self, instance: dg.DagsterInstance, location: InProcessCodeLocation,
                 origin: CodeLocationOrigin) -> None:
        if location.name != origin.location_name:
            raise ValueError(f"code location {location.name} is not the workspace's"
                             f" {origin.location_name}")
        self.instance, self.location, self.origin = instance, location, origin
        (self.repository,) = location.get_repositories().values()

    def __call__(self, request: dg.RunRequest) -> dg.DagsterRun:
        repository = self.repository.name
        selector = JobSubsetSelector(location_name=self.location.name,
                                     repository_name=repository,
                                     job_name=request.job_name, op_selection=None)
        remote_job = self.location.get_job(selector)
        snapshot = remote_job.job_snapshot
        run_config = job_run_config_from_names(
            {op.name for op in snapshot.node_defs_snapshot.op_def_snaps},
            {r.name for r in snapshot.mode_def_snaps[0].resource_def_snaps},
            request.run_config)
        plan = self.location.get_execution_plan(remote_job, run_config, step_keys_to_execute=None,
                                                known_state=None, instance=self.instance)
        run = self.instance.create_run(
            job_name=request.job_name, run_id=None, run_config=run_config,
            resolved_op_selection=None, step_keys_to_execute=None, op_selection=None,
            status=None, root_run_id=None, parent_run_id=None,
            tags={**remote_job.tags, **request.tags},
            job_snapshot=snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot,
            parent_job_snapshot=remote_job.parent_job_snapshot,
            remote_job_origin=RemoteJobOrigin(RemoteRepositoryOrigin(self.origin, repository),
                                              request.job_name),
            job_code_origin=remote_job.get_python_origin(),
            asset_selection=None, asset_check_selection=None,
            asset_graph=self.repository.asset_graph,
        )
        execute_run(self.location.get_reconstructable_job(repository, request.job_name),
                    run, self.instance)
        finished = self.instance.get_run_by_id(run.run_id)
        assert finished is not None
        return finished


def run_pipeline(
    defs: dg.Definitions | None, instance: dg.DagsterInstance, *, pipeline: str = "manual",
    run_config: dict | None = None, launcher: StageLauncher | None = None,
) -> list[dg.DagsterRun]:
    """Run the stages in order (ingest and the scenario paths, the optimisation rounds
    until the agent stops, the reports); stop at the first run that
    does not succeed. Returns the finished runs. The runs share the stored objects they
    read while these are unchanged
    (:func:`dynalloc_dagster.storage.io_managers.objects_kept_across_runs`).

    The whole run config is validated before the first stage starts. ``launcher``
    executes one stage (default: :class:`InProcessLauncher` on ``defs``). Before each
    stage the objects alive are frozen out of the garbage collector
    (:func:`freeze_survivors`), and handed back when the pipeline ends."""
    run_config = run_config or {}
    validate_run_config(run_config)
    if launcher is None:
        if defs is None:
            raise ValueError("run_pipeline needs the Definitions or a launcher")
        launcher = InProcessLauncher(defs, instance)
    queue = [stage_request(START_JOB, instance, pipeline=pipeline, run_config=run_config)]
    seen: set[str | None] = set()
    runs: list[dg.DagsterRun] = []
    with objects_kept_across_runs(), heap_frozen():
        while queue and len(runs) < MAX_STAGE_RUNS:
            request = queue.pop(0)
            freeze_survivors()
            run = launcher(request)
            runs.append(run)
            if run.status != dg.DagsterRunStatus.SUCCESS:
                break
            following = next_stage_request(run, instance)
            if isinstance(following, list):
                fresh = [r for r in following if r.run_key not in seen]
                seen.update(r.run_key for r in fresh)
                queue.extend(fresh)
    return runs


def launch_pipeline(
    instance: dg.DagsterInstance, *, pipeline: str = "manual", run_config: dict | None = None,
    workspace_file: Path = WORKSPACE_FILE,
) -> list[dg.DagsterRun]:
    """:func:`run_pipeline` with every stage launched through the instance for the code
    location of ``workspace_file`` (:class:`WorkspaceLauncher`; the location is loaded in
    this process)."""
    validate_run_config(run_config or {})
    with workspace_launcher(instance, workspace_file) as launcher:
        return run_pipeline(None, instance, pipeline=pipeline, run_config=run_config,
                            launcher=launcher)


@contextmanager
def workspace_launcher(instance: dg.DagsterInstance,
                       workspace_file: Path = WORKSPACE_FILE) -> Iterator[WorkspaceLauncher]:
    """A :class:`WorkspaceLauncher` for the code location of ``workspace_file``, loaded in
    this process for as long as the block lasts."""
    origin = workspace_origin(workspace_file)
    in_process = InProcessCodeLocationOrigin(origin.loadable_target_origin,
                                             location_name=origin.location_name)
    with InProcessCodeLocation(in_process, instance) as location:
        yield WorkspaceLauncher(instance, location, origin)


def freeze_survivors() -> None:
    """Collect the garbage among the objects not frozen yet, then tell Python's cyclic
    garbage collector to skip every object that survived (``gc.freeze``): the modules,
    the loaded code location and what earlier runs left alive, some 500 000 objects that
    live as long as the process. A full collection walks every object it tracks, about
    0.3 s over those here, and a stage's run triggers one or two; then it walks only the
    run's own objects. Frozen objects are still freed when their last reference goes;
    only a cycle among them waits for the end of the :func:`heap_frozen` block. Forked
    chart workers inherit the frozen objects, so their collections do not write to the
    parent's pages either (no copy-on-write). :func:`run_pipeline` calls it before each
    stage."""
    gc.collect()
    gc.freeze()


@contextmanager
def heap_frozen() -> Iterator[None]:
    """The block in which :func:`freeze_survivors` may be called: at the end of the
    outermost such block every frozen object is handed back to the garbage collector
    (``gc.unfreeze``), so a process that goes on after a pipeline (a test worker, a
    notebook) collects what the pipeline left behind."""
    outermost = gc.get_freeze_count() == 0
    try:
        yield
    finally:
        if outermost:
            gc.unfreeze()


def workspace_origin(workspace_file: Path = WORKSPACE_FILE) -> CodeLocationOrigin:
    """The origin of the one code location ``workspace_file`` loads (what ``dagster dev``
    serves); ValueError naming the file when it lists none or several."""
    origins = WorkspaceFileTarget(paths=[str(workspace_file)]).create_origins()
    if len(origins) != 1:
        raise ValueError(f"{workspace_file} must load one code location, it loads"
                         f" {len(origins)}: {[o.location_name for o in origins]}")
    return origins[0]


def job_run_config(job: dg.JobDefinition, run_config: dict[str, Any]) -> dict[str, Any]:
    """The part of a pipeline-wide run config this job uses, with the console logger at
    INFO (a 500-key run's per-event DEBUG lines cost seconds)."""
    names = {node.name for node in job.graph.node_dict.values()}
    return job_run_config_from_names(names, set(job.resource_defs), run_config)


def job_run_config_from_names(op_names: set[str], resource_names: set[str],
                              run_config: dict[str, Any]) -> dict[str, Any]:
    """:func:`job_run_config` from the job's op and resource names; the run config's own
    ``loggers`` section, when given, replaces the console logger's INFO default."""
    config: dict[str, Any] = {
        "loggers": run_config.get("loggers") or {"console": {"config": {"log_level": "INFO"}}}}
    ops = {k: v for k, v in (run_config.get("ops") or {}).items() if k in op_names}
    if ops:
        config["ops"] = ops
    resources = {k: v for k, v in (run_config.get("resources") or {}).items()
                 if k in resource_names}
    if resources:
        config["resources"] = resources
    return config

