"""Preflight: the deployment's own calls, made once with the deployment's own roles, before
the first run (docs/aws.md, "Preflight").

``python -m dynalloc_dagster.aws preflight [--dagster-yaml PATH] [--launcher-role ARN]
[--worker-role ARN]`` reads the run launcher and compute-log blocks of the deployment's
``dagster.yaml`` (environment variables resolved as Dagster resolves them) and checks:

=====================  ========  ==============================================================
check                  as        passes when
=====================  ========  ==============================================================
run_instances          launcher  ``RunInstances(DryRun=True)`` with the request a run would send
                                 (each market the launcher may use) answers ``DryRunOperation``
describe_instances     launcher  the reaper's and the health check's DescribeInstances works
bucket_and_key         worker    the S3 storage's own checks pass (ListObjectsV2 under the
                                 prefix, the KMS key enabled)
write_and_read         worker    an object ``<prefix>/_preflight/probe`` is written with SSE-KMS
                                 and read back with its checksum
secret:<NAME>          worker    each boot secret of the launcher config is readable (its value
                                 is never printed)
=====================  ========  ==============================================================

A role given with ``--launcher-role`` / ``--worker-role`` is assumed (its trust policy must
let the caller assume it); without, the caller's own credentials stand in for it, as on the
daemon host (launcher) or a worker. A refused call fails its check with AWS's error; the
command exits 1 if any check fails, 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import BotoCoreError, ClientError
from dagster._core.storage.dagster_run import DagsterRun
from dagster._serdes.config_class import ConfigurableClassData
from dagster_aws.s3 import S3Resource

from dynalloc_dagster.aws.compute_logs import KmsS3ComputeLogManager
from dynalloc_dagster.aws.ec2_run_launcher import DEPLOYMENT_TAG, Ec2RunLauncher
from dynalloc_dagster.storage.base import StorageError
from dynalloc_dagster.storage.s3 import S3Storage

PROBE_KEY = "_preflight/probe"
PROBE_SCRIPT = "#!/bin/bash\n# dynalloc preflight (DryRun: never started)\nshutdown -h now\n"


@dataclass(frozen=True)
class CheckResult:
    check: str
    role: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Deployment:
    """What the checks need from dagster.yaml."""

    launcher: Ec2RunLauncher
    bucket: str
    prefix: str
    kms_key_id: str


def load_deployment(path: Path) -> Deployment:
    """The run launcher and the compute-log settings of ``path`` (a dagster.yaml)."""
    config = yaml.safe_load(path.read_text())
    for block in ("run_launcher", "compute_logs"):
        if block not in config:
            raise ValueError(f"{path}: no {block} block")

    def build(block: str, as_type: type) -> Any:
        section = config[block]
        return ConfigurableClassData(section["module"], section["class"],
                                     yaml.safe_dump(section.get("config", {}))).rehydrate(
                                         as_type=as_type)

    launcher = build("run_launcher", Ec2RunLauncher)
    logs = build("compute_logs", KmsS3ComputeLogManager)
    return Deployment(launcher=launcher, bucket=logs._s3_bucket, prefix=logs.data_prefix,
                      kms_key_id=logs.kms_key_id)


def session_for(role_arn: str | None, region: str | None) -> boto3.session.Session:
    """The caller's session, or one assuming ``role_arn``."""
    if not role_arn:
        return boto3.session.Session(region_name=region)
    credentials = boto3.client("sts", region_name=region).assume_role(
        RoleArn=role_arn, RoleSessionName="dynalloc-preflight")["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"], region_name=region)


def _outcome(check: str, role: str, call: Callable[[], str]) -> CheckResult:
    try:
        return CheckResult(check, role, True, call())
    except (ClientError, BotoCoreError, StorageError, ValueError) as error:
        return CheckResult(check, role, False, _reason(error))


def _reason(error: Exception) -> str:
    if isinstance(error, ClientError):
        found = error.response.get("Error", {})
        return f"{found.get('Code', '?')}: {found.get('Message', '')}".rstrip(": ")
    return f"{type(error).__name__}: {error}"


def launcher_checks(deployment: Deployment,
                    session: boto3.session.Session) -> Iterator[CheckResult]:
    launcher = deployment.launcher
    launcher.ec2 = session.client("ec2", region_name=launcher.ec2.meta.region_name)
    run = DagsterRun(job_name="preflight", run_id=str(uuid.uuid4()))
    markets: dict[bool, Any] = {}
    for candidate in launcher.candidates(run):
        markets.setdefault(candidate.spot, candidate)
    for spot, candidate in markets.items():
        request = launcher.run_instances_kwargs(run, PROBE_SCRIPT, candidate)

        def dry_run(request: dict[str, Any] = request, candidate: Any = candidate) -> str:
            try:
                launcher.ec2.run_instances(**request, DryRun=True)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "DryRunOperation":
                    return f"would start {candidate.describe()}"
                raise
            raise ValueError("RunInstances started an instance despite DryRun")

        yield _outcome(f"run_instances ({'spot' if spot else 'on-demand'})", "launcher",
                       dry_run)

    def describe() -> str:
        found = launcher.ec2.describe_instances(Filters=[
            {"Name": f"tag:{DEPLOYMENT_TAG}", "Values": [launcher.deployment]}])
        count = sum(len(r["Instances"]) for r in found["Reservations"])
        return f"{count} instance(s) tagged {DEPLOYMENT_TAG}={launcher.deployment}"

    yield _outcome("describe_instances", "launcher", describe)


def worker_checks(deployment: Deployment,
                  session: boto3.session.Session) -> Iterator[CheckResult]:
    credentials = session.get_credentials()
    frozen = credentials.get_frozen_credentials() if credentials else None
    storage = S3Storage(
        bucket=deployment.bucket, prefix=deployment.prefix, kms_key_id=deployment.kms_key_id,
        s3=S3Resource(region_name=session.region_name,
                      aws_access_key_id=frozen.access_key if frozen else None,
                      aws_secret_access_key=frozen.secret_key if frozen else None,
                      aws_session_token=frozen.token if frozen else None))

    def bucket_and_key() -> str:
        storage.verify()
        return f"{storage.location} listable, key {deployment.kms_key_id} enabled"

    def write_and_read() -> str:
        body = f"dynalloc preflight {uuid.uuid4()}".encode()
        storage.put(PROBE_KEY, body)
        if storage.get(PROBE_KEY) != body:
            raise ValueError(f"{storage.uri(PROBE_KEY)} read back different bytes")
        return f"{storage.uri(PROBE_KEY)} written (SSE-KMS) and read back"

    yield _outcome("bucket_and_key", "worker", bucket_and_key)
    yield _outcome("write_and_read", "worker", write_and_read)
    secrets = session.client("secretsmanager")
    for name, arn in deployment.launcher.secrets.items():
        def read(arn: str = arn) -> str:
            value = secrets.get_secret_value(SecretId=arn).get("SecretString") or ""
            if not value:
                raise ValueError(f"{arn} has no SecretString")
            return f"{arn} readable ({len(value)} characters)"

        yield _outcome(f"secret:{name}", "worker", read)


def format_results(results: list[CheckResult]) -> str:
    width = max([len(r.check) for r in results] + [len("check")])
    lines = [f"{'check':<{width}}  {'as':<8}  result  detail"]
    lines += [f"{r.check:<{width}}  {r.role:<8}  {'PASS' if r.passed else 'FAIL':<6}  {r.detail}"
              for r in results]
    lines.append(f"{sum(r.passed for r in results)} of {len(results)} checks pass")
    return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("preflight", help="check the deployment's calls with its roles")
    parser.add_argument("--dagster-yaml", type=Path, default=None,
                        help="the deployment's dagster.yaml (default: $DAGSTER_HOME/dagster.yaml)")
    parser.add_argument("--launcher-role", default=None,
                        help="role ARN to assume for the launcher checks (default: caller)")
    parser.add_argument("--worker-role", default=None,
                        help="role ARN to assume for the worker checks (default: caller)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the checks; 0 if all pass, 1 if any fails, 2 if the config cannot be read."""
    path = args.dagster_yaml or Path(os.environ.get("DAGSTER_HOME", ".")) / "dagster.yaml"
    try:
        deployment = load_deployment(path)
    except Exception as error:  # config errors of any kind end here, named
        print(f"error: cannot load the deployment from {path}: {error}", file=sys.stderr)
        return 2
    region = deployment.launcher.ec2.meta.region_name
    results: list[CheckResult] = []
    for role, arn, checks in (("launcher", args.launcher_role, launcher_checks),
                              ("worker", args.worker_role, worker_checks)):
        try:
            session = session_for(arn, region)
        except (ClientError, BotoCoreError) as error:
            results.append(CheckResult(f"assume {arn}", role, False, _reason(error)))
            continue
        results.extend(checks(deployment, session))
    print(format_results(results))
    return 0 if all(r.passed for r in results) else 1
