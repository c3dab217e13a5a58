"""Fixtures of the AWS tests: moto's server (one per session, reset per test), the
environment pointing boto3 at it, and a throwaway PostgreSQL cluster."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import boto3
import dagster as dg
import pytest
from aws_test_support import (
    PG_SECRET_VALUE,
    REGION,
    Postgres,
    aws_environment,
    create_worker_network,
    launcher_config,
    moto_server,
    postgres_bin,
    postgres_cluster,
)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's standalone server on 127.0.0.1 (free port) for the whole session."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A freshly reset moto, with this process's boto3 pointed at it; yields the URL."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    for name, value in aws_environment(moto_endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_endpoint


@pytest.fixture
def ec2(aws: str):
    return boto3.client("ec2", region_name=REGION)


@pytest.fixture
def network(ec2) -> dict[str, str]:  # ec2: moto reset, boto3 pointed at it
    """An AMI, a subnet, a security group and the worker's instance profile in moto."""
    secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="dynalloc/pg-url", SecretString=PG_SECRET_VALUE)
    return {**create_worker_network(lambda service: boto3.client(service, region_name=REGION)),
            "secret_arn": secret["ARN"]}


@pytest.fixture
def instance(network, monkeypatch, tmp_path) -> Iterator[dg.DagsterInstance]:
    monkeypatch.setenv("DYNALLOC_ENV", "aws")
    monkeypatch.setenv("DYNALLOC_S3_BUCKET", "dynalloc-test-bucket")
    monkeypatch.setenv("DYNALLOC_PG_URL", PG_SECRET_VALUE)
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides={
        "run_launcher": {"module": "dynalloc_dagster.aws.ec2_run_launcher",
                         "class": "Ec2RunLauncher", "config": launcher_config(network)},
        # start timeout 0: a run the test leaves unstarted has timed out at once
        "run_monitoring": {"enabled": True, "max_resume_run_attempts": 0,
                           "start_timeout_seconds": 0},
    }) as test_instance:
        yield test_instance


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL cluster on 127.0.0.1 for the session (skips without the server)."""
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql"
                    " (.ci/run installs Debian's postgresql)")
    with postgres_cluster(bindir) as cluster:
        yield cluster
