"""The data-root lease on S3: the object ``<prefix>/_lease.json``, changed only by
conditional writes (moto 5 on 127.0.0.1 evaluates ``IfNoneMatch``/``IfMatch`` on
PutObject and ``IfMatch`` on DeleteObject, answering 412 as S3 does). Runs go through
Dagster (``execute_in_process``) with the project's Parquet IO manager on an S3 storage,
so the lease is taken where a real run takes it: when the IO manager starts. The
compare-and-swap promise is checked on the local store too (one logic, two stores)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from dagster_aws.s3 import S3Resource

from dynalloc_dagster.storage import S3Storage
from dynalloc_dagster.storage.io_managers import PolarsParquetIOManager
from dynalloc_dagster.storage.lease import (
    LEASE_OBJECT,
    DataRootInUseError,
    InstanceLeaseStore,
    Lease,
    S3LeaseStore,
    acquire_for_run,
    read_lease,
)
from dynalloc_dagster.tags import PIPELINE_ID_TAG, PIPELINE_TAG, REPORTS_JOB

STAGE_JOB = "some_stage_job"
IN_USE = "is in use by pipeline"


@pytest.fixture
def store(moto_s3: dict[str, str]) -> S3Storage:
    """An S3 data root under a fresh prefix of the session's bucket."""
    settings = {k: v for k, v in moto_s3.items() if k not in ("bucket", "kms_key_id")}
    return S3Storage(bucket=moto_s3["bucket"], prefix=f"lease-{uuid.uuid4().hex[:8]}/data",
                     kms_key_id=moto_s3["kms_key_id"], s3=S3Resource(**settings))


def definitions(store: S3Storage) -> dg.Definitions:
    """A stage job and a reports job, each writing one table to ``store``; the table
    records the lease the run saw while it ran."""

    @dg.asset
    def table(context) -> pl.DataFrame:
        held = read_lease(context.instance, store)
        return pl.DataFrame({"lease_holder": [held.pipeline_id if held else ""]})

    return dg.Definitions(
        assets=[table],
        jobs=[dg.define_asset_job(STAGE_JOB, [table]),
              dg.define_asset_job(REPORTS_JOB, [table])],
        resources={"io_manager": PolarsParquetIOManager(storage=store)})


def run(defs: dg.Definitions, job: str, instance: dg.DagsterInstance,
        tags: dict[str, str] | None = None) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=tags or {}, raise_on_error=False)


def messages(instance: dg.DagsterInstance, run_id: str) -> str:
    parts = []
    for entry in instance.all_logs(run_id):
        parts.append(entry.message or "")
        data = getattr(entry.dagster_event, "event_specific_data", None)
        if getattr(data, "error", None) is not None:
            parts.append(data.error.to_string())
    return "\n".join(parts)


def started_run(instance: dg.DagsterInstance, defs: dg.Definitions, tags: dict[str, str],
                pid: int) -> dg.DagsterRun:
    """A run recorded as STARTED by process ``pid`` (a pipeline stage in progress)."""
    created = instance.create_run_for_job(defs.resolve_job_def(STAGE_JOB), tags=tags)
    instance.report_dagster_event(dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_START.value, job_name=created.job_name,
        pid=pid), run_id=created.run_id)
    return instance.get_run_by_id(created.run_id)


def lease_object(store: S3Storage) -> dict[str, Any] | None:
    found = store.read_versioned(LEASE_OBJECT)
    return None if found is None else json.loads(found[0])


def data_keys(store: S3Storage) -> list[str]:
    return [k for k in store.list_keys() if k != LEASE_OBJECT]


def test_a_second_pipeline_on_the_prefix_is_refused_naming_the_first(
    store: S3Storage, instance: dg.DagsterInstance
) -> None:
    defs = definitions(store)
    weekly = started_run(instance, defs, {PIPELINE_TAG: "weekly"}, os.getpid())
    acquire_for_run(instance, weekly, store)
    assert lease_object(store)["pipeline_id"] == weekly.run_id  # the object in the bucket

    quarterly = run(defs, STAGE_JOB, instance, {PIPELINE_TAG: "quarterly"})
    assert not quarterly.success
    text = messages(instance, quarterly.run_id)
    assert (f"data root {store.location} {IN_USE} {weekly.run_id} started") in text, text[-2000:]
    assert f"(run {weekly.run_id}, {STAGE_JOB}); wait for it to finish" in text
    # a later stage of another pipeline must still hold the lease: it does not
    foreign = run(defs, STAGE_JOB, instance, {PIPELINE_TAG: "quarterly",
                                               PIPELINE_ID_TAG: "another-pipeline"})
    assert not foreign.success
    assert ("a stage of pipeline another-pipeline, but the data root is no longer leased"
            in messages(instance, foreign.run_id))
    assert lease_object(store)["pipeline_id"] == weekly.run_id  # untouched
    assert data_keys(store) == []  # neither wrote anything


def test_a_started_run_on_another_machine_keeps_the_lease_whatever_its_pid(
    store: S3Storage, instance: dg.DagsterInstance
) -> None:
    """An S3 root's workers run on other machines (EC2): a pid that is dead here says
    nothing, so the run stays live until Dagster's run monitoring ends it."""
    defs = definitions(store)
    dead_here = 2**22 + 1  # above Linux's pid_max default: no such process here
    remote = started_run(instance, defs, {PIPELINE_TAG: "weekly"}, dead_here)
    acquire_for_run(instance, remote, store)
    refused = run(defs, STAGE_JOB, instance)
    assert not refused.success
    assert f"{IN_USE} {remote.run_id}" in messages(instance, refused.run_id)


def test_a_stale_holder_is_taken_over_and_its_later_stage_refused(
    store: S3Storage, instance: dg.DagsterInstance
) -> None:
    defs = definitions(store)
    old = started_run(instance, defs, {PIPELINE_TAG: "weekly"}, os.getpid())
    acquire_for_run(instance, old, store)
    instance.report_run_failed(old)

    new = run(defs, STAGE_JOB, instance, {PIPELINE_TAG: "quarterly"})
    assert new.success
    assert (f"taking over the stale lease of {store.location}: pipeline {old.run_id}"
            f" (run {old.run_id}) is over (a stage failed, was canceled or its worker"
            " died)") in messages(instance, new.run_id)
    assert lease_object(store)["pipeline_id"] == new.run_id
    # the old pipeline's next stage finds the root no longer its own
    late = run(defs, STAGE_JOB, instance, {PIPELINE_TAG: "weekly", PIPELINE_ID_TAG: old.run_id})
    assert not late.success
    assert (f"is a stage of pipeline {old.run_id}, but the data root is no longer leased to"
            f" it (now: data root {store.location} {IN_USE} {new.run_id}"
            in messages(instance, late.run_id))


def test_a_pipeline_holds_the_lease_until_its_reports_stage_ends(
    store: S3Storage, instance: dg.DagsterInstance
) -> None:
    defs = definitions(store)
    first = run(defs, STAGE_JOB, instance, {PIPELINE_TAG: "weekly"})
    assert first.success
    pipeline = {PIPELINE_TAG: "weekly", PIPELINE_ID_TAG: first.run_id}
    assert run(defs, STAGE_JOB, instance, pipeline).success
    assert lease_object(store)["pipeline_id"] == first.run_id  # held between stages
    reports = run(defs, REPORTS_JOB, instance, pipeline)
    assert reports.success
    assert reports.output_for_node("table")["lease_holder"][0] == first.run_id
    assert lease_object(store) is None  # given back at the reports stage's end
    assert read_lease(instance, store) is None


def test_a_lone_run_holds_the_lease_while_it_runs_and_gives_it_back(
    store: S3Storage, instance: dg.DagsterInstance
) -> None:
    lone = run(definitions(store), STAGE_JOB, instance)
    assert lone.success
    assert lone.output_for_node("table")["lease_holder"][0] == lone.run_id
    assert lease_object(store) is None
    assert data_keys(store) == ["table.parquet"]


@pytest.mark.parametrize("kind", ["s3", "local"])
def test_conditional_writes_lose_to_a_change_since_the_read(
    kind: str, store: S3Storage, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """Two processes deciding at once: both read the root free; only the first create
    wins. A holder releasing (or taking over) with a version (the ETag on S3) read before
    someone else's takeover changes nothing. Both stores keep this promise."""
    leases = (S3LeaseStore(store) if kind == "s3"
              else InstanceLeaseStore(instance, str(tmp_path / "data")))
    mine = _lease("mine")
    assert leases.swap(mine, None)
    assert not leases.swap(_lease("theirs"), None)  # IfNoneMatch='*': 412
    assert leases.read()[0] == mine
    _, seen = leases.read()
    assert leases.swap(_lease("theirs"), seen)  # a takeover with the current ETag
    assert not leases.swap(None, seen)  # a release with the old ETag: 412, kept
    assert not leases.swap(_lease("third"), seen)  # a takeover with the old ETag: kept
    assert leases.read()[0].pipeline_id == "theirs"


def test_a_takeover_that_loses_the_race_reports_the_winner(
    store: S3Storage, instance: dg.DagsterInstance
) -> None:
    """Between this run's read of a stale lease and its takeover, another pipeline takes
    it over: the IfMatch put fails, the run reads again and is refused naming the
    winner."""
    defs = definitions(store)
    old = started_run(instance, defs, {PIPELINE_TAG: "weekly"}, os.getpid())
    acquire_for_run(instance, old, store)
    instance.report_run_failed(old)
    winner = started_run(instance, defs, {PIPELINE_TAG: "quarterly"}, os.getpid())
    client = store.client()

    def winner_first(params: dict[str, Any], **_: Any) -> None:
        if "IfMatch" in params:
            client.meta.events.unregister("before-parameter-build.s3.PutObject", winner_first)
            acquire_for_run(instance, winner, store)

    client.meta.events.register("before-parameter-build.s3.PutObject", winner_first)
    loser = instance.create_run_for_job(defs.resolve_job_def(STAGE_JOB),
                                        tags={PIPELINE_TAG: "monthly"})
    with pytest.raises(DataRootInUseError, match=f"{IN_USE} {winner.run_id}"):
        acquire_for_run(instance, loser, store)
    assert lease_object(store)["pipeline_id"] == winner.run_id


def _lease(holder: str) -> Lease:
    return Lease(pipeline_id=holder, kind="pipeline", run_id=holder, job_name=STAGE_JOB,
                 started_at="2026-12-07T00:00:00+00:00", host="h", pid=1)
