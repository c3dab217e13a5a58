"""Real local servers for the AWS tests: moto's standalone server and a throwaway
PostgreSQL cluster, each started on 127.0.0.1 with a free port and stopped after.

A plain module with a unique name (the test folders are not packages); conftest.py turns
these into fixtures.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
from botocore.awsrequest import AWSResponse
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.origin import RepositoryPythonOrigin
from dagster._core.test_utils import create_run_for_test
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIAMOTOTESTKEY00001",
                    "AWS_SECRET_ACCESS_KEY": "moto-test-secret-access-key-do-not-leak",
                    "AWS_SESSION_TOKEN": "moto-test-session-token-do-not-leak"}
"""What the launcher's process signs with against moto; the tests assert none of these
reach user data."""

NO_DEFAULT_AMIS = "MOTO_EC2_LOAD_DEFAULT_AMIS"
PG_SECRET_VALUE = "postgresql+psycopg2://dagster:pg-password-never-in-user-data@db:5432/dagster"
JOB = "strategy_evaluations_job"


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's ThreadedMotoServer on 127.0.0.1, a free port; yields its endpoint URL.

    moto's stock AMIs are not loaded (3 s per reset); tests register the images they use."""
    previous = os.environ.get(NO_DEFAULT_AMIS)
    os.environ[NO_DEFAULT_AMIS] = "false"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        if previous is None:
            os.environ.pop(NO_DEFAULT_AMIS, None)
        else:
            os.environ[NO_DEFAULT_AMIS] = previous


def aws_environment(endpoint: str) -> dict[str, str]:
    """Variables pointing boto3 (in this process and in subprocesses) at moto."""
    return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}


def moto_client(service: str, region: str = REGION):
    """A boto3 client of moto's server. s3control's endpoint rules put the account id in
    the host (``<account>.127.0.0.1``, which does not resolve): its requests go back to
    the endpoint's own host."""
    client = boto3.client(service, region_name=region)
    if service == "s3control":
        endpoint = urllib.parse.urlsplit(os.environ["AWS_ENDPOINT_URL"])

        def same_host(request, **_):
            url = urllib.parse.urlsplit(request.url)
            request.url = url._replace(netloc=endpoint.netloc).geturl()

        client.meta.events.register("before-send.s3-control.*", same_host)
    return client


def create_worker_network(client: Callable[[str], Any]) -> dict[str, str]:
    """The worker's role and instance profile, a security group in the default VPC's first
    subnet, and an AMI, in moto through ``client(service)``; their ids and ARNs."""
    iam = client("iam")
    iam.create_role(RoleName="dynalloc-worker", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "ec2.amazonaws.com"}}]}))
    profile = iam.create_instance_profile(InstanceProfileName="dynalloc-worker")
    iam.add_role_to_instance_profile(InstanceProfileName="dynalloc-worker",
                                     RoleName="dynalloc-worker")
    ec2 = client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]
    group = ec2.create_security_group(GroupName="dynalloc-workers", Description="workers",
                                      VpcId=subnet["VpcId"])
    image = ec2.register_image(Name="dynalloc-worker", RootDeviceName="/dev/xvda",
                               Architecture="x86_64")
    return {"image_id": image["ImageId"], "subnet_id": subnet["SubnetId"],
            "security_group_id": group["GroupId"],
            "instance_profile_arn": profile["InstanceProfile"]["Arn"]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL server binaries, or None if none is installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


@dataclass(frozen=True)
class Postgres:
    """A running throwaway cluster."""

    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        """SQLAlchemy URL; ``+psycopg2`` because SQLAlchemy 2.1 maps ``postgresql://`` to
        psycopg 3, which dagster-postgres does not use."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"


@contextmanager
def postgres_cluster(bindir: Path) -> Iterator[Postgres]:
    """initdb + pg_ctl start on 127.0.0.1 with a free port, in a temp dir; as the
    ``postgres`` user when root (root cannot run initdb); trust auth, stopped after."""
    root = Path(tempfile.mkdtemp(prefix="dynalloc-pg-"))
    data_dir = root / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()

    def run(*argv: str) -> None:
        subprocess.run([*as_user, *argv], check=True, capture_output=True, cwd=root)

    try:
        run(str(bindir / "initdb"), "-D", str(data_dir), "-A", "trust", "-U", "postgres",
            "--no-sync")
        run(str(bindir / "pg_ctl"), "-D", str(data_dir), "-l", str(root / "log"), "-w",
            "-o", f"-h 127.0.0.1 -p {port} -k {root} -F", "start")
        try:
            yield Postgres(port=port, data_dir=data_dir)
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def launcher_config(network: dict[str, str], **overrides) -> dict:
    return {"image_id": network["image_id"], "instance_types": ["c7i.2xlarge"],
            "subnet_ids": [network["subnet_id"]],
            "security_group_ids": [network["security_group_id"]],
            "instance_profile_arn": network["instance_profile_arn"],
            "python_executable": "/opt/dynalloc/.venv/bin/python",
            "env_vars": ["DYNALLOC_ENV", "DYNALLOC_S3_BUCKET", "DYNALLOC_EVALUATIONS_PER_RUN=5"],
            "secrets": {"DYNALLOC_PG_URL": network["secret_arn"]}, **overrides}


def create_run(instance: dg.DagsterInstance, tags: dict[str, str] | None = None,
               **kwargs) -> dg.DagsterRun:
    """A run of the project's evaluations job with a code origin, as the daemon makes."""
    code_pointer = ModuleCodePointer("dynalloc_dagster.definitions", "defs", os.getcwd())
    # a code server's origin: entry point a bare `dagster`, which the image may not have
    # on PATH; the launcher must run the image's Python instead
    origin = RepositoryPythonOrigin(executable_path=sys.executable, code_pointer=code_pointer,
                                    entry_point=["dagster"]).get_job_origin(JOB)
    tags = {"dagster/asset_partition_range_start": "c0001|base",
            "dagster/asset_partition_range_end": "c0008|low_vol",
            "dynalloc/pipeline": "manual", "dynalloc/round": "0", **(tags or {})}
    return create_run_for_test(instance, job_name=JOB, tags=tags, job_code_origin=origin,
                               **kwargs)


def fail_run_instances(client: Any, codes: list[str]) -> list[dict[str, Any]]:
    """Make ``client``'s first ``len(codes)`` RunInstances calls fail with those EC2 error
    codes (without reaching moto), as EC2 answers when out of capacity or throttling; the
    calls after go to moto. Returns the list the parameters of every call are appended to."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    def refuse(**_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if len(calls) > len(codes):
            return None
        code = codes[len(calls) - 1]
        return (AWSResponse("https://ec2.invalid", 400, {}, None),
                {"Error": {"Code": code, "Message": f"{code} (test)"},
                 "ResponseMetadata": {"HTTPStatusCode": 400}})

    client.meta.events.register("before-parameter-build.ec2.RunInstances", record)
    client.meta.events.register("before-call.ec2.RunInstances", refuse)
    return calls
