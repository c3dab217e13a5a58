"""The EC2 run launcher against moto's server: the run_instances request (image, type,
subnet, profile, spot, tags, user data), the run's tags and engine event, no credentials
in user data, terminate, and worker health through to run monitoring."""

from __future__ import annotations

import logging
import os
import time

import dagster as dg
import pytest
from aws_test_support import (
    FAKE_CREDENTIALS,
    JOB,
    PG_SECRET_VALUE,
    REGION,
    create_run,
    fail_run_instances,
    launcher_config,
)
from botocore.exceptions import ClientError
from dagster._core.launcher import LaunchRunContext
from dagster._core.launcher.base import WorkerStatus
from dagster._daemon.monitoring.run_monitoring import monitor_started_run, monitor_starting_run
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import deserialize_value

from dynalloc_dagster.aws.code_version import code_version
from dynalloc_dagster.aws.ec2_run_launcher import (
    DEPLOYMENT_TAG,
    INSTANCE_ID_TAG,
    INSTANCE_TYPE_TAG,
    Ec2RunLauncher,
    LaunchError,
    decode_user_data,
)
from dynalloc_dagster.aws.reaper import (
    FINISHED_GRACE_S,
    UNKNOWN_GRACE_S,
    ec2_instance_reaper,
    find_leaks,
    reap,
)
from dynalloc_dagster.aws.user_data import CREDENTIAL_VARIABLES, UserDataError


def launch(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    return instance.get_run_by_id(run.run_id).tags[INSTANCE_ID_TAG]


def describe(ec2, instance_id: str) -> dict:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def user_data_of(ec2, instance_id: str) -> str:
    attribute = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    return decode_user_data(attribute["UserData"]["Value"])


def test_launch_run_starts_a_tagged_instance_with_the_run_in_its_user_data(
        instance, ec2, network):
    run = create_run(instance)
    instance_id = launch(instance, run)

    found = describe(ec2, instance_id)
    assert found["ImageId"] == network["image_id"]
    assert found["InstanceType"] == "c7i.2xlarge"
    assert found["SubnetId"] == network["subnet_id"]
    assert [g["GroupId"] for g in found["SecurityGroups"]] == [network["security_group_id"]]
    assert found["IamInstanceProfile"]["Arn"] == network["instance_profile_arn"]
    tags = {t["Key"]: t["Value"] for t in found["Tags"]}
    assert tags[DEPLOYMENT_TAG] == "dynalloc"
    assert tags["dagster/run_id"] == run.run_id
    assert tags["dagster/job_name"] == JOB
    assert tags["dagster/asset_partition_range_start"] == "c0001|base"
    assert tags["dagster/asset_partition_range_end"] == "c0008|low_vol"
    assert tags["dynalloc/round"] == "0"
    behaviour = ec2.describe_instance_attribute(
        InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior")
    assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"

    script = user_data_of(ec2, instance_id)
    assert script.startswith("#!/bin/bash\n")
    assert "trap '[ \"$cloudwatch\" = 1 ] && sleep 10; shutdown -h now' EXIT\n" in script
    assert "export DAGSTER_HOME=/opt/dynalloc/deployment/aws\n" in script
    assert "export DYNALLOC_ENV=aws\n" in script
    assert "export DYNALLOC_EVALUATIONS_PER_RUN=5\n" in script
    assert f"export AWS_DEFAULT_REGION={REGION}\n" in script
    assert "DYNALLOC_PG_URL=\"$(/opt/dynalloc/.venv/bin/python -c" in script
    assert network["secret_arn"] in script
    check = (f"/opt/dynalloc/.venv/bin/python -m dynalloc_dagster.aws.code_version"
             f" {code_version()} {run.run_id}\n")
    assert check in script and script.index(check) < script.index(" api execute_run ")
    command = script.rstrip("\n").splitlines()[-1]
    prefix = "/opt/dynalloc/.venv/bin/python -m dagster api execute_run '"
    assert command.startswith(prefix) and command.endswith("'")
    args = deserialize_value(command[len(prefix):-1], ExecuteRunArgs)
    assert args.run_id == run.run_id
    assert args.instance_ref is None
    assert args.job_origin.job_name == JOB

    stored = instance.get_run_by_id(run.run_id)
    assert stored.tags[INSTANCE_ID_TAG] == instance_id
    events = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    assert any(instance_id in (e.message or "") for e in events)


def test_no_credentials_in_user_data(instance, ec2):
    """The launcher's own credentials (set in its environment) and the PostgreSQL URL
    (a secret) appear nowhere in the user data, by name or by value."""
    for name in CREDENTIAL_VARIABLES:
        assert os.environ[name] == FAKE_CREDENTIALS[name]
    script = user_data_of(ec2, launch(instance, create_run(instance)))
    for name in CREDENTIAL_VARIABLES:
        assert name not in script
        assert os.environ[name] not in script
    assert PG_SECRET_VALUE not in script
    assert "pg-password-never-in-user-data" not in script


@pytest.mark.parametrize("field, value", [
    ("env_vars", ["AWS_SECRET_ACCESS_KEY"]),
    ("env_vars", ["AWS_ACCESS_KEY_ID=AKIA0000"]),
    ("secrets", {"AWS_SESSION_TOKEN": "arn:aws:secretsmanager:us-east-1:1:secret:x"}),
])
def test_credential_variables_are_refused_in_config(network, aws, field, value):
    with pytest.raises(UserDataError, match=rf"run_launcher.config.{field}: AWS_\w+ would put"):
        Ec2RunLauncher(**launcher_config(network, **{field: value}))


def test_unset_env_var_is_named(instance, monkeypatch):
    monkeypatch.delenv("DYNALLOC_S3_BUCKET")
    with pytest.raises(ValueError, match="env_vars: DYNALLOC_S3_BUCKET is not set"):
        launch(instance, create_run(instance))


def test_spot_instances_ask_for_one_time_spot(network, aws, monkeypatch, ec2):
    monkeypatch.setenv("DYNALLOC_ENV", "aws")
    monkeypatch.setenv("DYNALLOC_S3_BUCKET", "b")
    launcher = Ec2RunLauncher(**launcher_config(network, spot=True, root_volume_gb=30))
    with dg.instance_for_test() as test_instance:
        run = create_run(test_instance)
        request = launcher.run_instances_kwargs(run, "#!/bin/bash\n")
        assert request["InstanceMarketOptions"] == {"MarketType": "spot", "SpotOptions": {
            "SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}}
        assert request["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
        instance_id = ec2.run_instances(**request)["Instances"][0]["InstanceId"]
    assert describe(ec2, instance_id)["InstanceLifecycle"] == "spot"


def test_terminate_ends_the_instance_once(instance, ec2):
    run = create_run(instance, status=dg.DagsterRunStatus.STARTED)
    instance_id = launch(instance, run)
    assert instance.run_launcher.terminate(run.run_id) is True
    assert describe(ec2, instance_id)["State"]["Name"] in {"shutting-down", "terminated"}
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELING
    assert instance.run_launcher.terminate(run.run_id) is False


def test_worker_health_follows_the_instance_state(instance, ec2):
    launcher = instance.run_launcher
    assert launcher.supports_check_run_worker_health
    run = create_run(instance, status=dg.DagsterRunStatus.STARTED)
    assert launcher.check_run_worker_health(run).status == WorkerStatus.UNKNOWN
    instance_id = launch(instance, run)
    run = instance.get_run_by_id(run.run_id)
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    ec2.stop_instances(InstanceIds=[instance_id])
    result = launcher.check_run_worker_health(run)
    assert result.status == WorkerStatus.FAILED
    assert instance_id in result.msg and "before the run finished" in result.msg
    ec2.terminate_instances(InstanceIds=[instance_id])
    assert launcher.check_run_worker_health(run).status == WorkerStatus.FAILED
    instance.report_run_failed(run, "finished")
    assert launcher.check_run_worker_health(run).status == WorkerStatus.SUCCESS


def test_run_monitoring_fails_a_run_whose_instance_was_terminated(instance, ec2):
    """Dagster's run monitoring (the daemon's monitor_started_run, called directly) marks
    a STARTED run failed once its instance is terminated underneath it."""
    run = create_run(instance, status=dg.DagsterRunStatus.STARTED)
    instance_id = launch(instance, run)
    record = instance.get_run_record_by_id(run.run_id)
    monitor_started_run(instance, None, record, logging.getLogger("test"))
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED

    ec2.terminate_instances(InstanceIds=[instance_id])
    monitor_started_run(instance, None, instance.get_run_record_by_id(run.run_id),
                        logging.getLogger("test"))
    failed = instance.get_run_by_id(run.run_id)
    assert failed.status == dg.DagsterRunStatus.FAILURE
    failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert instance_id in failure[-1].message


# -- launch robustness ---------------------------------------------------------------------

def two_subnets(ec2) -> list[str]:
    return [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"][:2]]


def robust_launcher(network, ec2, instance, **overrides) -> Ec2RunLauncher:
    launcher = Ec2RunLauncher(**launcher_config(
        network, instance_types=["c7i.2xlarge", "m7i.2xlarge"], subnet_ids=two_subnets(ec2),
        **overrides))
    launcher.register_instance(instance)
    launcher.sleep = lambda seconds: waits.append(seconds)
    waits.clear()
    return launcher


waits: list[float] = []


def tried(calls: list[dict]) -> list[tuple[str, str, str, str]]:
    return [("spot" if c.get("InstanceMarketOptions") else "on-demand", c["InstanceType"],
             c["SubnetId"], c["ClientToken"]) for c in calls]


def test_capacity_errors_try_each_subnet_and_type_then_on_demand(instance, network, ec2):
    launcher = robust_launcher(network, ec2, instance, spot=True)
    calls = fail_run_instances(launcher.ec2, ["InsufficientInstanceCapacity"] * 4)
    run = create_run(instance)
    instance_id = launch_with(launcher, instance, run)
    s1, s2 = two_subnets(ec2)
    r = run.run_id
    assert tried(calls) == [
        ("spot", "c7i.2xlarge", s1, r), ("spot", "c7i.2xlarge", s2, f"{r}-1"),
        ("spot", "m7i.2xlarge", s1, f"{r}-2"), ("spot", "m7i.2xlarge", s2, f"{r}-3"),
        ("on-demand", "c7i.2xlarge", s1, f"{r}-4")]
    found = describe(ec2, instance_id)
    assert "InstanceLifecycle" not in found and found["SubnetId"] == s1
    assert waits == []
    event = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)[-1]
    assert "on-demand" not in event.message and instance_id in event.message


def test_throttling_backs_off_and_retries_with_the_same_token(instance, network, ec2):
    launcher = robust_launcher(network, ec2, instance)
    calls = fail_run_instances(launcher.ec2, ["RequestLimitExceeded"] * 2)
    run = create_run(instance)
    launch_with(launcher, instance, run)
    assert [c["ClientToken"] for c in calls] == [run.run_id] * 3
    assert len(waits) == 2
    assert 5.0 <= waits[0] <= 7.5 and 10.0 <= waits[1] <= 15.0


def test_every_round_failing_names_each_attempt_and_starts_nothing(instance, network, ec2):
    launcher = robust_launcher(network, ec2, instance, launch_attempts=2)
    fail_run_instances(launcher.ec2, ["InsufficientInstanceCapacity"] * 8)
    with pytest.raises(LaunchError, match=r"no EC2 instance started after 2 round\(s\) over 4"
                       r" candidate\(s\): round 1, on-demand c7i.2xlarge in subnet-\w+:"
                       r" InsufficientInstanceCapacity;"):
        launcher.launch_run(LaunchRunContext(dagster_run=create_run(instance), workspace=None))
    assert ec2.describe_instances()["Reservations"] == []


def test_other_errors_are_not_retried(instance, network, ec2):
    launcher = robust_launcher(network, ec2, instance)
    calls = fail_run_instances(launcher.ec2, ["InvalidAMIID.NotFound"])
    with pytest.raises(ClientError, match=r"InvalidAMIID\.NotFound"):
        launcher.launch_run(LaunchRunContext(dagster_run=create_run(instance), workspace=None))
    assert len(calls) == 1


def test_a_run_asks_for_an_allowed_instance_type_by_tag(instance, network, ec2):
    launcher = robust_launcher(network, ec2, instance, allowed_instance_types=["r7i.4xlarge"])
    run = create_run(instance, tags={INSTANCE_TYPE_TAG: "r7i.4xlarge"})
    assert describe(ec2, launch_with(launcher, instance, run))["InstanceType"] == "r7i.4xlarge"
    refused = create_run(instance, tags={INSTANCE_TYPE_TAG: "p5.48xlarge"})
    with pytest.raises(LaunchError, match=r"tag dynalloc/instance_type='p5.48xlarge' is not an"
                       r" allowed instance type \(c7i.2xlarge, m7i.2xlarge, r7i.4xlarge\)"):
        launcher.launch_run(LaunchRunContext(dagster_run=refused, workspace=None))


def test_a_run_that_never_starts_is_failed_with_the_console_and_its_instance_ends(
        instance, ec2):
    """Run monitoring's start timeout (the daemon's monitor_starting_run, called directly)
    fails the run with the instance state and console tail, and the instance is
    terminated."""
    run = create_run(instance, status=dg.DagsterRunStatus.NOT_STARTED)
    instance_id = launch(instance, run)
    monitor_starting_run(instance, instance.get_run_record_by_id(run.run_id),
                         logging.getLogger("test"))
    failed = instance.get_run_by_id(run.run_id)
    assert failed.status == dg.DagsterRunStatus.FAILURE
    message = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1].message
    assert f"EC2 instance {instance_id} is running" in message
    assert "terminated it: the run is NOT_STARTED past its timeout" in message
    assert "console output (last lines):" in message and "Linux version" in message
    assert describe(ec2, instance_id)["State"]["Name"] in {"shutting-down", "terminated"}


def test_debug_info_of_a_started_run_leaves_its_instance_alone(instance, ec2):
    run = create_run(instance, status=dg.DagsterRunStatus.STARTED)
    instance_id = launch(instance, run)
    info = instance.run_launcher.get_run_worker_debug_info(instance.get_run_by_id(run.run_id))
    assert info.startswith(f"EC2 instance {instance_id} is running\nconsole output")
    assert describe(ec2, instance_id)["State"]["Name"] == "running"


def launch_with(launcher: Ec2RunLauncher, instance: dg.DagsterInstance,
                run: dg.DagsterRun) -> str:
    launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    return instance.get_run_by_id(run.run_id).tags[INSTANCE_ID_TAG]


# -- the reaper ------------------------------------------------------------------------------

def test_the_reaper_ends_instances_of_finished_unknown_and_overlong_runs(instance, network,
                                                                        ec2, aws):
    launcher = instance.run_launcher
    done = create_run(instance, status=dg.DagsterRunStatus.STARTED)
    running = create_run(instance, status=dg.DagsterRunStatus.STARTED)
    gone = create_run(instance, status=dg.DagsterRunStatus.STARTED)
    ids = {name: launch(instance, run) for name, run in
           (("done", done), ("running", running), ("gone", gone))}
    instance.report_run_failed(instance.get_run_by_id(done.run_id), "finished")
    instance.delete_run(gone.run_id)
    stray = ec2.run_instances(ImageId=network["image_id"], MinCount=1, MaxCount=1,
                              TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                  {"Key": DEPLOYMENT_TAG, "Value": "other"}]}])
    now = time.time()
    assert find_leaks(instance, launcher, now) == []  # all within their grace
    later = now + UNKNOWN_GRACE_S + 60
    leaks = {leak.instance_id: leak for leak in reap(instance, launcher, later)}
    assert set(leaks) == {ids["done"], ids["gone"]}
    assert "its run ended (FAILURE)" in leaks[ids["done"]].reason
    assert f"its run {gone.run_id} is unknown" in leaks[ids["gone"]].reason
    for name in ("done", "gone"):
        assert describe(ec2, ids[name])["State"]["Name"] in {"shutting-down", "terminated"}
    assert describe(ec2, ids["running"])["State"]["Name"] == "running"
    assert describe(ec2, stray["Instances"][0]["InstanceId"])["State"]["Name"] == "running"
    events = instance.all_logs(done.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    assert any(f"Reaper terminated EC2 instance {ids['done']}" in e.message for e in events)


def test_the_reaper_ends_a_run_past_its_maximum_runtime(network, aws, ec2, tmp_path,
                                                        monkeypatch):
    monkeypatch.setenv("DYNALLOC_ENV", "aws")
    monkeypatch.setenv("DYNALLOC_S3_BUCKET", "b")
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides={
        "run_launcher": {"module": "dynalloc_dagster.aws.ec2_run_launcher",
                         "class": "Ec2RunLauncher", "config": launcher_config(network)},
        "run_monitoring": {"enabled": True, "max_runtime_seconds": 3600},
    }) as test_instance:
        run = create_run(test_instance)
        instance_id = launch(test_instance, run)
        test_instance.handle_new_event(dg.EventLogEntry(
            error_info=None, level="debug", user_message="", run_id=run.run_id,
            timestamp=time.time(), dagster_event=dg.DagsterEvent(
                dg.DagsterEventType.RUN_START.value, job_name=run.job_name)))
        start = test_instance.get_run_record_by_id(run.run_id).start_time
        launcher = test_instance.run_launcher
        assert find_leaks(test_instance, launcher, start + 3600 + FINISHED_GRACE_S - 1) == []
        leaks = reap(test_instance, launcher, start + 3600 + FINISHED_GRACE_S + 1)
        assert [leak.instance_id for leak in leaks] == [instance_id]
        assert "over the maximum runtime of 3600 s" in leaks[0].reason


def test_the_reaper_sensor_skips_without_the_ec2_launcher(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as test_instance:
        context = dg.build_sensor_context(instance=test_instance)
        result = ec2_instance_reaper(context)
    assert "not EC2" in result.skip_message
