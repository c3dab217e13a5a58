"""DYNALLOC_ENV=aws end to end on local servers: the deployment's dagster.yaml on a
PostgreSQL database, the EC2 run launcher against moto, stand-in workers running each
instance's user data (tests/aws/aws_deployment.py). The whole pipeline (ingest, scenario
paths, an optimisation round, reports) completes: every run RUN_SUCCESS in
PostgreSQL, every asset's objects in S3 under SSE-KMS with the deployment's key, the
compute logs there too, every instance terminated, no credentials in any user data."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import dagster as dg
import pytest
import sqlalchemy
from aws_deployment import (
    PREFIX,
    AwsDeployment,
    StandInWorkers,
    provision,
    run_pipeline_on_aws,
    workspace,
)
from aws_test_support import FAKE_CREDENTIALS, REGION

from dynalloc_dagster.aws.compute_logs import KmsS3ComputeLogManager
from dynalloc_dagster.aws.ec2_run_launcher import INSTANCE_ID_TAG, Ec2RunLauncher
from dynalloc_dagster.definitions import build_definitions
from dynalloc_dagster.storage.instance_postgres import (
    PooledPostgresEventLogStorage,
    PooledPostgresRunStorage,
    PooledPostgresScheduleStorage,
)
from dynalloc_dagster.tags import EVALUATE_ROUND_JOB, REPORTS_JOB, ROUND_JOB, START_JOB

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dagster"))
from dagster_test_support import small_run_config


@pytest.fixture
def deployment(aws, postgres, tmp_path, monkeypatch) -> AwsDeployment:
    provisioned = provision(aws, postgres, tmp_path / "dagster_home")
    for name, value in provisioned.environment.items():
        monkeypatch.setenv(name, value)
    return provisioned


@pytest.fixture
def aws_instance(deployment) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.get() as instance:
        yield instance


def test_the_deployment_instance_is_postgres_ec2_and_s3_logs(deployment, aws_instance):
    assert type(aws_instance.run_storage) is PooledPostgresRunStorage
    assert type(aws_instance.event_log_storage) is PooledPostgresEventLogStorage
    assert type(aws_instance.schedule_storage) is PooledPostgresScheduleStorage
    assert isinstance(aws_instance.run_launcher, Ec2RunLauncher)
    assert isinstance(aws_instance.compute_log_manager, KmsS3ComputeLogManager)
    assert aws_instance.compute_log_manager._s3_prefix == f"{PREFIX}/compute-logs"
    assert aws_instance.run_monitoring_enabled
    assert aws_instance.run_monitoring_max_resume_run_attempts == 0


def test_a_plain_postgresql_url_is_what_the_docs_warn_about(deployment):
    """SQLAlchemy 2.1 maps postgresql:// to psycopg 3, which is not installed."""
    assert sqlalchemy.__version__.startswith("2.")
    plain = deployment.pg_url.replace("postgresql+psycopg2://", "postgresql://")
    if sqlalchemy.engine.url.make_url(plain).get_dialect().driver == "psycopg2":
        pytest.skip("this SQLAlchemy maps postgresql:// to psycopg2")
    with pytest.raises(ModuleNotFoundError, match="psycopg"):
        sqlalchemy.create_engine(plain).connect()


@pytest.mark.slow
def test_the_whole_pipeline_runs_on_ec2_workers(deployment, aws_instance, tmp_path):
    defs = build_definitions("aws")
    workers = StandInWorkers(endpoint=deployment.endpoint, work_dir=tmp_path / "workers")
    with workers.running(), workspace(aws_instance) as context:
        # one round (8 configs): the first run (ingest and the scenario paths), round 0's
        # configs, its evaluations and history, the reports; each on its own instance
        runs = run_pipeline_on_aws(aws_instance, context, defs, workers,
                                   small_run_config(max_configs=8))
    logs = {r.instance_id: r.log.read_text()[-3000:] for r in workers.records.values()
            if r.log and r.returncode}
    assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * len(runs), logs
    jobs = [r.job_name for r in runs]
    assert jobs == [START_JOB, ROUND_JOB, EVALUATE_ROUND_JOB, REPORTS_JOB]

    # every run: its own instance, launched with the run's tags, terminated, exit 0
    ec2 = boto3.client("ec2", region_name=REGION)
    instance_ids = [aws_instance.get_run_by_id(r.run_id).tags[INSTANCE_ID_TAG] for r in runs]
    assert len(set(instance_ids)) == len(runs)
    described = {i["InstanceId"]: i for res in ec2.describe_instances(
        InstanceIds=instance_ids)["Reservations"] for i in res["Instances"]}
    for run, instance_id in zip(runs, instance_ids, strict=True):
        tags = {t["Key"]: t["Value"] for t in described[instance_id]["Tags"]}
        assert tags["dagster/run_id"] == run.run_id
        assert described[instance_id]["State"]["Name"] == "terminated"
        record = workers.records[instance_id]
        assert record.returncode == 0 and record.shut_down
        for name, value in FAKE_CREDENTIALS.items():
            assert name not in record.user_data and value not in record.user_data
        assert deployment.pg_url not in record.user_data

    # every run RUN_SUCCESS in PostgreSQL, read back through a fresh instance
    with dg.DagsterInstance.get() as fresh:
        stored = fresh.get_runs()
        assert {r.run_id for r in stored} == {r.run_id for r in runs}
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in stored)
        for run in runs:
            assert fresh.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS)

        # every asset materialized, each stored object in S3 under SSE-KMS with the key
        s3 = boto3.client("s3", region_name=REGION)
        asset_keys = defs.resolve_asset_graph().get_all_asset_keys()
        uris: set[str] = set()
        for key in asset_keys:
            records = fresh.fetch_materializations(key, limit=1000).records
            assert records, f"{key.to_user_string()} was never materialized"
            for record in records:
                metadata = record.asset_materialization.metadata
                if "stored_uri" in metadata:
                    uris.add(str(metadata["stored_uri"].value))
    assert uris
    bucket_prefix = f"s3://{deployment.bucket}/{PREFIX}/"
    listed = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=deployment.bucket) for o in page.get("Contents", [])}
    assert all(key.startswith(f"{PREFIX}/") for key in listed)
    for uri in uris:
        assert uri.startswith(bucket_prefix), uri
        assert uri.removeprefix(f"s3://{deployment.bucket}/") in listed
    compute_logs = [k for k in listed if k.startswith(f"{PREFIX}/compute-logs/")]
    assert compute_logs
    for key in listed:
        head = s3.head_object(Bucket=deployment.bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"] == deployment.kms_key_arn, key
