"""The aws environment on local servers: moto (S3, KMS, EC2, IAM, Secrets Manager) and a
PostgreSQL database, the deployment's dagster.yaml, the EC2 run launcher, and stand-in
"EC2 workers" that run each new instance's user data as a local subprocess.

moto never executes user data; :class:`StandInWorkers` does what EC2 + cloud-init would:
it watches for new instances of the deployment, reads each one's user data back from moto
(``describe_instance_attribute``), runs it with bash in a clean environment (only what
the user data exports, plus the moto endpoint and keys standing in for the instance
profile), and when the script powers the machine off (a ``shutdown`` stub first on PATH
records it) terminates the instance, as ``InstanceInitiatedShutdownBehavior=terminate``
does.

Used by tests/aws/test_end_to_end.py and bench/aws_vs_local.py.
"""

from __future__ import annotations

import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import psycopg2
import yaml
from aws_test_support import (
    FAKE_CREDENTIALS,
    REGION,
    Postgres,
    aws_environment,
    create_worker_network,
)
from dagster._cli.job import _create_run
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget

from dynalloc_dagster.aws.ec2_run_launcher import (
    DEPLOYMENT_TAG,
    INSTANCE_ID_TAG,
    decode_user_data,
)
from dynalloc_dagster.orchestration.pipeline import job_run_config, run_pipeline

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = REPO_ROOT / "deployment" / "aws"
LOCATION = "dynalloc"
PREFIX = "dynalloc/test"
STAGE_TIMEOUT_S = 600


@dataclass
class AwsDeployment:
    """The account's resources in moto and the settings the deployment reads."""

    endpoint: str
    home: Path
    bucket: str
    kms_key_arn: str
    pg_url: str
    environment: dict[str, str]


def create_database(postgres: Postgres) -> str:
    """A fresh database in the cluster; returns its psycopg2 URL."""
    name = f"dagster_{uuid.uuid4().hex[:12]}"
    connection = psycopg2.connect(host="127.0.0.1", port=postgres.port, user="postgres",
                                  dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    connection.close()
    return postgres.url.rsplit("/", 1)[0] + f"/{name}"


def provision(endpoint: str, postgres: Postgres, home: Path) -> AwsDeployment:
    """Create what docs/aws.md asks for (bucket, KMS key, worker role and profile, network,
    image, the PostgreSQL URL secret) in moto, and DAGSTER_HOME with the deployment's
    dagster.yaml, its image paths pointed at this checkout. Returns the settings; the
    caller puts ``environment`` into ``os.environ``."""
    aws = aws_environment(endpoint)
    session = boto3.Session(aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
                            aws_session_token=aws["AWS_SESSION_TOKEN"], region_name=REGION)

    def client(service: str):
        return session.client(service, endpoint_url=endpoint)

    bucket = f"dynalloc-{uuid.uuid4().hex[:10]}"
    client("s3").create_bucket(Bucket=bucket)
    key_arn = client("kms").create_key(Description="dynalloc data")["KeyMetadata"]["Arn"]
    network = create_worker_network(client)
    pg_url = create_database(postgres)
    secret = client("secretsmanager").create_secret(Name=f"dynalloc/pg-url-{bucket}",
                                                    SecretString=pg_url)
    home.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((DEPLOYMENT / "dagster.yaml").read_text())
    config["run_launcher"]["config"] |= {
        "python_executable": sys.executable, "working_directory": str(REPO_ROOT),
        "dagster_home": str(home)}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    environment = {
        **aws, "DAGSTER_HOME": str(home), "DYNALLOC_ENV": "aws", "DYNALLOC_S3_BUCKET": bucket,
        "DYNALLOC_S3_PREFIX": PREFIX, "DYNALLOC_KMS_KEY_ID": key_arn,
        "DYNALLOC_PG_URL": pg_url, "DYNALLOC_PG_SECRET_ARN": secret["ARN"],
        "DYNALLOC_EC2_IMAGE_ID": network["image_id"],
        "DYNALLOC_EC2_INSTANCE_TYPE": "c7i.2xlarge",
        "DYNALLOC_EC2_SUBNET_ID": network["subnet_id"],
        "DYNALLOC_EC2_SECURITY_GROUP_ID": network["security_group_id"],
        "DYNALLOC_EC2_INSTANCE_PROFILE_ARN": network["instance_profile_arn"],
    }
    return AwsDeployment(endpoint=endpoint, home=home, bucket=bucket, kms_key_arn=key_arn,
                         pg_url=pg_url, environment=environment)


@dataclass
class WorkerRecord:
    """What a stand-in worker saw and did for one instance."""

    instance_id: str
    user_data: str
    returncode: int | None = None
    shut_down: bool = False
    log: Path | None = None


@dataclass
class StandInWorkers:
    """Runs the user data of every new instance of the deployment, each in its own thread
    (instances work in parallel, as on EC2); see the module docstring."""

    endpoint: str
    work_dir: Path
    records: dict[str, WorkerRecord] = field(default_factory=dict)
    poll_s: float = 0.2
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=self.endpoint,
                                **_credentials())
        bin_dir = self.work_dir / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        stub = bin_dir / "shutdown"
        stub.write_text('#!/bin/sh\necho "$@" > "$STAND_IN_SHUTDOWN_MARK"\n')
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self._bin_dir = bin_dir

    def environment(self, mark: Path) -> dict[str, str]:
        """A booted instance's environment: a system PATH (stub first), the moto endpoint,
        and keys standing in for the instance profile; nothing of the launcher's."""
        return {"PATH": f"{self._bin_dir}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                "HOME": str(self.work_dir), "LANG": "C.UTF-8",
                "STAND_IN_SHUTDOWN_MARK": str(mark),
                **{k: v for k, v in aws_environment(self.endpoint).items()
                   if k not in {"AWS_DEFAULT_REGION", "AWS_REGION"}}}

    def _boot(self, instance_id: str) -> None:
        attribute = self.ec2.describe_instance_attribute(InstanceId=instance_id,
                                                         Attribute="userData")
        script = decode_user_data(attribute["UserData"]["Value"])
        record = WorkerRecord(instance_id, script, log=self.work_dir / f"{instance_id}.log")
        with self._lock:
            self.records[instance_id] = record
        path = self.work_dir / f"{instance_id}.sh"
        path.write_text(script)
        mark = self.work_dir / f"{instance_id}.shutdown"
        with open(record.log, "wb") as log:
            done = subprocess.run(["bash", str(path)], env=self.environment(mark), cwd="/",
                                  stdout=log, stderr=subprocess.STDOUT, check=False)
        record.shut_down = mark.exists()
        record.returncode = done.returncode
        if record.shut_down:
            self.ec2.terminate_instances(InstanceIds=[instance_id])

    def _watch(self) -> None:
        try:
            self._poll()
        except BaseException as error:  # surfaced by wait(); a dead watcher hangs nothing
            self.error = error
            raise

    def _poll(self) -> None:
        while not self._stop.is_set():
            reservations = self.ec2.describe_instances(Filters=[
                {"Name": f"tag:{DEPLOYMENT_TAG}", "Values": ["dynalloc"]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]}])
            for reservation in reservations["Reservations"]:
                for found in reservation["Instances"]:
                    instance_id = found["InstanceId"]
                    with self._lock:
                        new = instance_id not in self.records
                        if new:
                            self.records[instance_id] = WorkerRecord(instance_id, "")
                    if new:
                        thread = threading.Thread(target=self._boot, args=(instance_id,),
                                                  daemon=True)
                        thread.start()
                        self._threads.append(thread)
            self._stop.wait(self.poll_s)

    @contextmanager
    def running(self) -> Iterator[StandInWorkers]:
        watcher = threading.Thread(target=self._watch, daemon=True)
        watcher.start()
        try:
            yield self
        finally:
            self._stop.set()
            watcher.join(timeout=10)
            for thread in self._threads:
                thread.join(timeout=STAGE_TIMEOUT_S)


def _credentials() -> dict[str, str]:
    return {"aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "aws_session_token": FAKE_CREDENTIALS["AWS_SESSION_TOKEN"]}


@contextmanager
def workspace(instance: dg.DagsterInstance) -> Iterator[WorkspaceProcessContext]:
    """The deployment's workspace.yaml loaded as the daemon loads it (a code server)."""
    target = WorkspaceFileTarget(paths=[str(DEPLOYMENT / "workspace.yaml")])
    with WorkspaceProcessContext(instance, target) as context:
        yield context


def launch(instance: dg.DagsterInstance, context: WorkspaceProcessContext,
           defs: dg.Definitions, request: dg.RunRequest) -> dg.DagsterRun:
    """Create the run of one stage request as ``dagster job launch`` does and hand it to
    the instance's run launcher (the EC2 launcher). The queue is bypassed: the daemon's
    coordinator would make the same launch_run call."""
    request_context = context.create_request_context()
    code_location = request_context.get_code_location(LOCATION)
    repository = next(iter(code_location.get_repositories().values()))
    remote_job = repository.get_full_job(request.job_name)
    run_config = job_run_config(defs.resolve_job_def(request.job_name), request.run_config)
    run = _create_run(instance=instance, code_location=code_location, remote_repo=repository,
                      remote_job=remote_job, run_config=run_config, tags=dict(request.tags),
                      op_selection=None, run_id=None)
    return instance.launch_run(run.run_id, request_context)


def wait(instance: dg.DagsterInstance, workers: StandInWorkers, run_id: str,
         timeout_s: float = STAGE_TIMEOUT_S) -> dg.DagsterRun:
    """Poll the run in PostgreSQL until it finishes; fail early, with the worker's log,
    if the watcher died or the run's worker exited without finishing the run."""
    deadline = time.monotonic() + timeout_s
    exited_at: float | None = None
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            return run
        if workers.error is not None:
            raise RuntimeError("the stand-in worker watcher failed") from workers.error
        record = workers.records.get((run.tags if run else {}).get(INSTANCE_ID_TAG, ""))
        if record is not None and record.returncode is not None:
            exited_at = exited_at or time.monotonic()
            if time.monotonic() - exited_at > 10:
                log = record.log.read_text()[-4000:] if record.log else ""
                raise RuntimeError(f"worker of run {run_id} exited {record.returncode}"
                                   f" without finishing the run:\n{log}")
        time.sleep(0.25)
    raise TimeoutError(f"run {run_id} did not finish in {timeout_s} s")


def run_pipeline_on_aws(
    instance: dg.DagsterInstance, context: WorkspaceProcessContext, defs: dg.Definitions,
    workers: StandInWorkers, run_config: dict[str, Any],
) -> list[dg.DagsterRun]:
    """The whole chain (:func:`dynalloc_dagster.orchestration.pipeline.run_pipeline`), each
    stage on its own instance; stops at the first stage that does not succeed."""
    def on_ec2(request: dg.RunRequest) -> dg.DagsterRun:
        return wait(instance, workers, launch(instance, context, defs, request).run_id)

    return run_pipeline(None, instance, run_config=run_config, launcher=on_ec2)
