"""The reaper: terminates the deployment's EC2 instances that nothing else will end.

A worker powers its instance off when its run ends, and run monitoring terminates the
instance of a run that outlives ``max_runtime_seconds`` or never starts. What is left:
an instance whose user data hung after the run ended, whose run the database no longer
knows (deleted, or launched against another instance), or whose run monitoring missed it
(the daemon was down). The ``ec2_instance_reaper`` sensor (aws environment only, every
5 minutes) lists the live instances tagged ``dynalloc/deployment=<deployment>`` and
terminates each one whose

* run finished more than ``FINISHED_GRACE_S`` ago,
* run is unknown and the instance was launched more than ``UNKNOWN_GRACE_S`` ago,
* run started more than the instance's ``run_monitoring.max_runtime_seconds`` +
  ``FINISHED_GRACE_S`` ago (when a maximum runtime is set),

and reports each on the sensor's tick (and on the run, as an engine event, when known).
It needs only the launcher policy's DescribeInstances and TerminateInstances.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster._core.events import EngineEventData

from dynalloc_dagster.aws.ec2_run_launcher import (
    DEPLOYMENT_TAG,
    LIVE_STATES,
    RUN_ID_TAG,
    Ec2RunLauncher,
)

FINISHED_GRACE_S = 600.0
"""Seconds a finished run's instance may live on (it normally powers off within ~30 s)."""
UNKNOWN_GRACE_S = 600.0
"""Seconds an instance whose run the database does not know may live (a launch in flight
tags the run right after RunInstances returns)."""
REAPER_INTERVAL_S = 300


@dataclass(frozen=True)
class Leak:
    """An instance to terminate and why."""

    instance_id: str
    run_id: str
    reason: str


def live_instances(launcher: Ec2RunLauncher) -> Iterator[dict[str, Any]]:
    """Every pending or running instance tagged with the launcher's deployment."""
    pages = launcher.ec2.get_paginator("describe_instances").paginate(Filters=[
        {"Name": f"tag:{DEPLOYMENT_TAG}", "Values": [launcher.deployment]},
        {"Name": "instance-state-name", "Values": sorted(LIVE_STATES)}])
    for page in pages:
        for reservation in page["Reservations"]:
            yield from reservation["Instances"]


def find_leaks(instance: dg.DagsterInstance, launcher: Ec2RunLauncher,
               now: float | None = None) -> list[Leak]:
    """The live instances of the deployment to terminate (rules in the module docstring);
    ``now`` in seconds since the epoch."""
    now = time.time() if now is None else now
    max_runtime = instance.run_monitoring_max_runtime_seconds or 0
    leaks = []
    for found in live_instances(launcher):
        tags = {t["Key"]: t["Value"] for t in found.get("Tags", [])}
        run_id = tags.get(RUN_ID_TAG, "")
        record = instance.get_run_record_by_id(run_id) if run_id else None
        launched = found["LaunchTime"].timestamp()
        reason = ""
        if record is None:
            if now - launched > UNKNOWN_GRACE_S:
                reason = (f"its run {run_id or '(untagged)'} is unknown to this Dagster"
                          f" instance, launched {now - launched:.0f} s ago")
        elif record.dagster_run.is_finished:
            ended = record.end_time or record.update_timestamp.timestamp()
            if now - ended > FINISHED_GRACE_S:
                reason = (f"its run ended ({record.dagster_run.status.value})"
                          f" {now - ended:.0f} s ago")
        elif max_runtime and record.start_time and (
                now - record.start_time > max_runtime + FINISHED_GRACE_S):
            reason = (f"its run has run {now - record.start_time:.0f} s, over the maximum"
                      f" runtime of {max_runtime} s")
        if reason:
            leaks.append(Leak(found["InstanceId"], run_id, reason))
    return leaks


def reap(instance: dg.DagsterInstance, launcher: Ec2RunLauncher,
         now: float | None = None) -> list[Leak]:
    """Terminate every leak :func:`find_leaks` finds; returns them."""
    leaks = find_leaks(instance, launcher, now)
    if leaks:
        launcher.ec2.terminate_instances(InstanceIds=[leak.instance_id for leak in leaks])
    for leak in leaks:
        run = instance.get_run_by_id(leak.run_id) if leak.run_id else None
        if run is not None:
            instance.report_engine_event(
                message=f"Reaper terminated EC2 instance {leak.instance_id}: {leak.reason}",
                dagster_run=run,
                engine_event_data=EngineEventData({"EC2 instance id": leak.instance_id}))
    return leaks


@dg.sensor(
    name="ec2_instance_reaper",
    minimum_interval_seconds=REAPER_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Terminate the deployment's EC2 instances whose run finished, is unknown"
    " or ran past the maximum runtime (dynalloc_dagster/aws/reaper.py).",
)
def ec2_instance_reaper(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    launcher = context.instance.run_launcher
    if not isinstance(launcher, Ec2RunLauncher):
        return dg.SkipReason(f"the run launcher is {type(launcher).__name__}, not EC2")
    leaks = reap(context.instance, launcher)
    for leak in leaks:
        context.log.warning(f"terminated {leak.instance_id} (run {leak.run_id or '-'}):"
                            f" {leak.reason}")
    return dg.SkipReason(f"terminated {len(leaks)} instance(s)" if leaks
                         else "no instance to terminate")
