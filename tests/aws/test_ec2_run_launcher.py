"""The EC2 run launcher against moto's server: the run_instances request (image, type,
subnet, profile, spot, tags, user data), the run's tags and engine event, no credentials
in user data, terminate, and worker health through to run monitoring."""

from __future__ import annotations

import logging
import os

import dagster as dg
import pytest
from aws_test_support import (
    FAKE_CREDENTIALS,
    JOB,
    PG_SECRET_VALUE,
    REGION,
    create_run,
    launcher_config,
)
from dagster._core.launcher import LaunchRunContext
from dagster._core.launcher.base import WorkerStatus
from dagster._daemon.monitoring.run_monitoring import monitor_started_run
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import deserialize_value

from dynalloc_dagster.aws.ec2_run_launcher import (
    DEPLOYMENT_TAG,
    INSTANCE_ID_TAG,
    Ec2RunLauncher,
    decode_user_data,
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
