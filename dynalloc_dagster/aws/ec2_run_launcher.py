"""The EC2 run launcher: one EC2 instance per Dagster run (docs/aws.md).

Modelled on dagster-aws's ``EcsRunLauncher``: ``launch_run`` starts an instance whose user
data runs ``dagster api execute_run`` (``ExecuteRunArgs(...).get_command_args()``) and
powers the instance off when the run ends; the instance is started with
``InstanceInitiatedShutdownBehavior=terminate``, so it terminates. The instance id goes
into the run's tags (``dynalloc/ec2_instance_id``) and an engine event. ``terminate`` ends
the instance; ``check_run_worker_health`` reads the instance's state, so Dagster's run
monitoring marks a run failed when its instance dies under it.

The run args carry no instance ref: the worker builds its instance from the
``dagster.yaml`` in its own ``DAGSTER_HOME`` (the image's copy of deployment/aws), so the
PostgreSQL URL never travels in user data. No credentials do either: the worker signs
with its instance profile, and secrets (the PostgreSQL URL) are read at boot from Secrets
Manager (:mod:`dynalloc_dagster.aws.user_data`). The run and its instance are tagged with
the launcher's code version, and the user data refuses the run on a worker whose code
differs (:mod:`dynalloc_dagster.aws.code_version`).
"""

from __future__ import annotations

import base64
import os
import random
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
import dagster._check as check
from botocore.exceptions import ClientError
from dagster import Array, Field, Map, Noneable, StringSource
from dagster._core.events import EngineEventData
from dagster._core.launcher.base import (
    CheckRunHealthResult,
    LaunchRunContext,
    RunLauncher,
    WorkerStatus,
)
from dagster._core.origin import get_python_environment_entry_point
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._core.storage.tags import RUN_WORKER_ID_TAG
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClass
from dagster._serdes.config_class import ConfigurableClassData

from dynalloc_dagster.aws.code_version import CODE_VERSION_TAG, code_version
from dynalloc_dagster.aws.user_data import build_user_data, refuse_credentials

INSTANCE_ID_TAG = "dynalloc/ec2_instance_id"
"""Run tag holding the id of the run's EC2 instance."""
DEPLOYMENT_TAG = "dynalloc/deployment"
"""EC2 tag on every instance the launcher starts; the launcher's IAM policy allows
RunInstances and TerminateInstances only with this tag (dynalloc_dagster.aws.iam)."""
RUN_ID_TAG = "dagster/run_id"
JOB_TAG = "dagster/job_name"
PARTITION_TAGS = ("dagster/partition", "dagster/asset_partition_range_start",
                  "dagster/asset_partition_range_end")
PROPAGATED_RUN_TAGS = (*PARTITION_TAGS, "dynalloc/pipeline", "dynalloc/round")
"""Run tags copied onto the instance (besides run id and job) so the console shows what
each instance computes."""
MAX_TAG_VALUE = 256  # EC2's limit on a tag value

INSTANCE_TYPE_TAG = "dynalloc/instance_type"
"""Run tag asking for one instance type (checked against ``allowed_instance_types``)."""
DEFAULT_LOG_GROUP = "/dynalloc/runs"
CAPACITY_ERRORS = frozenset({
    "InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity",
    "InsufficientFreeAddressesInSubnet", "SpotMaxPriceTooLow", "MaxSpotInstanceCountExceeded",
    "Unsupported"})
"""EC2 error codes after which another subnet, type or market may succeed."""
THROTTLING_ERRORS = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException"})
CONSOLE_TAIL_LINES = 40

LIVE_STATES = {"pending", "running"}
DEAD_STATES = {"shutting-down", "terminated", "stopping", "stopped"}
UNSTARTED_OR_CANCELING = frozenset({DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
                                    DagsterRunStatus.CANCELING})


@dataclass(frozen=True)
class Candidate:
    """One way to start a run's instance."""

    spot: bool
    instance_type: str
    subnet_id: str

    def describe(self) -> str:
        return f"{'spot' if self.spot else 'on-demand'} {self.instance_type} in {self.subnet_id}"


class LaunchError(RuntimeError):
    """No instance could be started for a run: every candidate failed or a tag is refused."""


class Ec2RunLauncher(RunLauncher, ConfigurableClass):
    """Launches each run on its own EC2 instance (config in deployment/aws/dagster.yaml).

    Parameters
    ----------
    image_id
        AMI with the project installed at ``working_directory``.
    instance_types
        EC2 instance types in order of preference, e.g. ``[c7i.2xlarge, m7i.2xlarge]``:
        on a capacity error the next one is tried.
    allowed_instance_types
        More types a run may ask for with the tag ``dynalloc/instance_type`` (besides
        ``instance_types``); any other value is refused.
    subnet_ids, security_group_ids
        Where the instance runs, subnets in order of preference (one per availability
        zone spreads capacity errors); it needs outbound HTTPS (S3, KMS, Secrets
        Manager, CloudWatch Logs) and PostgreSQL (the instance storage).
    instance_profile_arn
        The worker's instance profile (dynalloc_dagster.aws.iam's worker policy).
    spot
        Request one-time spot instances (terminated on interruption: the run fails, run
        monitoring reports it and ``run_retries`` re-runs it).
    spot_fallback
        When no spot capacity is found in any subnet and type, launch on demand.
    launch_attempts, launch_backoff_seconds
        Rounds over every (market, type, subnet) candidate, and the wait before the
        second round (doubled each round, with jitter): throttling
        (``RequestLimitExceeded``) and capacity errors back off and retry.
    deployment
        Value of the ``dynalloc/deployment`` tag (the IAM policy's condition).
    python_executable, working_directory, dagster_home
        On the image: the project's Python, its folder, and the folder holding the
        worker's dagster.yaml.
    env_vars
        Names of the launcher's environment variables copied into the user data (their
        values read at launch), or ``NAME=value``. Never credentials.
    secrets
        ``{variable: Secrets Manager secret ARN}`` read on the instance at boot.
    root_volume_gb
        Size of the root volume (gp3; encrypted by the account's EBS default encryption).
    log_group
        CloudWatch Logs group of the workers' boot and run output (one stream per
        instance); empty: no CloudWatch agent is started.
    region
        AWS region (default: boto3's, from ``AWS_REGION``/``AWS_DEFAULT_REGION``).
    extra_tags
        More EC2 tags on every instance (cost allocation).
    """

    def __init__(
        self, *, image_id: str, instance_types: Sequence[str], subnet_ids: Sequence[str],
        instance_profile_arn: str, security_group_ids: Sequence[str] = (),
        allowed_instance_types: Sequence[str] = (), spot: bool = False,
        spot_fallback: bool = True, launch_attempts: int = 3,
        launch_backoff_seconds: float = 5.0, deployment: str = "dynalloc",
        python_executable: str | None = None, working_directory: str = "/opt/dynalloc",
        dagster_home: str = "/opt/dynalloc/deployment/aws",
        env_vars: Sequence[str] = (), secrets: Mapping[str, str] | None = None,
        root_volume_gb: int | None = None, log_group: str = DEFAULT_LOG_GROUP,
        region: str | None = None, extra_tags: Mapping[str, str] | None = None,
        inst_data: ConfigurableClassData | None = None,
    ) -> None:
        self._inst_data = check.opt_inst_param(inst_data, "inst_data", ConfigurableClassData)
        if not instance_types:
            raise LaunchError("run_launcher.config.instance_types: at least one instance type")
        if not subnet_ids:
            raise LaunchError("run_launcher.config.subnet_ids: at least one subnet")
        if not 1 <= launch_attempts <= 10:
            raise LaunchError(f"run_launcher.config.launch_attempts = {launch_attempts}:"
                              " must be in [1, 10]")
        self.image_id = image_id
        self.instance_types = list(instance_types)
        self.allowed_instance_types = list(dict.fromkeys(
            [*self.instance_types, *allowed_instance_types]))
        self.subnet_ids = list(subnet_ids)
        self.instance_profile_arn = instance_profile_arn
        self.security_group_ids = list(security_group_ids)
        self.spot = spot
        self.spot_fallback = spot_fallback
        self.launch_attempts = launch_attempts
        self.launch_backoff_seconds = launch_backoff_seconds
        self.deployment = deployment
        self.python_executable = python_executable
        self.working_directory = working_directory
        self.dagster_home = dagster_home
        self.env_vars = list(env_vars)
        self.secrets = dict(secrets or {})
        self.root_volume_gb = root_volume_gb
        self.log_group = log_group
        self.extra_tags = dict(extra_tags or {})
        self.sleep = time.sleep
        refuse_credentials([v.split("=", 1)[0] for v in self.env_vars],
                           where="run_launcher.config.env_vars")
        refuse_credentials(list(self.secrets), where="run_launcher.config.secrets")
        self.ec2 = boto3.client("ec2", region_name=region)
        super().__init__()

    # -- ConfigurableClass -------------------------------------------------------------

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "image_id": Field(StringSource, description="AMI with the project installed"),
            "instance_types": Field(Array(StringSource), is_required=False,
                                    default_value=["c7i.2xlarge"],
                                    description="instance types in order of preference"),
            "allowed_instance_types": Field(Array(StringSource), is_required=False,
                                            default_value=[],
                                            description="more types the dynalloc/instance_type"
                                            " run tag may ask for"),
            "subnet_ids": Field(Array(StringSource), description="subnets, in order"),
            "security_group_ids": Field(Array(StringSource), is_required=False, default_value=[]),
            "instance_profile_arn": Field(StringSource, description="the worker's profile"),
            "spot": Field(bool, is_required=False, default_value=False),
            "spot_fallback": Field(bool, is_required=False, default_value=True),
            "launch_attempts": Field(int, is_required=False, default_value=3),
            "launch_backoff_seconds": Field(float, is_required=False, default_value=5.0),
            "deployment": Field(StringSource, is_required=False, default_value="dynalloc"),
            "python_executable": Field(Noneable(StringSource), is_required=False,
                                       default_value=None),
            "working_directory": Field(StringSource, is_required=False,
                                       default_value="/opt/dynalloc"),
            "dagster_home": Field(StringSource, is_required=False,
                                  default_value="/opt/dynalloc/deployment/aws"),
            "env_vars": Field(Array(str), is_required=False, default_value=[]),
            "secrets": Field(Map(str, StringSource), is_required=False, default_value={}),
            "root_volume_gb": Field(Noneable(int), is_required=False, default_value=None),
            "log_group": Field(str, is_required=False, default_value=DEFAULT_LOG_GROUP),
            "region": Field(Noneable(StringSource), is_required=False, default_value=None),
            "extra_tags": Field(Map(str, str), is_required=False, default_value={}),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> Ec2RunLauncher:
        return cls(inst_data=inst_data, **config_value)

    # -- launch ---------------------------------------------------------------------------

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        job_origin = check.not_none(context.job_code_origin,
                                    "the run has no code origin to execute")
        # the run starts as `<python> -m dagster api execute_run ...` with the image's
        # Python, not a bare `dagster` (the code server's entry point) looked up on PATH
        python = self.python_executable or job_origin.repository_origin.executable_path
        repository_origin = job_origin.repository_origin._replace(
            container_context={}, executable_path=python,
            entry_point=get_python_environment_entry_point(python))
        job_origin = job_origin._replace(repository_origin=repository_origin)
        args = ExecuteRunArgs(job_origin=job_origin, run_id=run.run_id, instance_ref=None)
        user_data = self.user_data(run, args.get_command_args(),
                                   repository_origin.executable_path)
        instance_id, candidate = self.start_instance(run, user_data)
        self._instance.add_run_tags(run.run_id, {INSTANCE_ID_TAG: instance_id,
                                                 RUN_WORKER_ID_TAG: instance_id,
                                                 CODE_VERSION_TAG: code_version()})
        self._instance.report_engine_event(
            message=f"Launching run on EC2 instance {instance_id}",
            dagster_run=run,
            engine_event_data=EngineEventData({
                "EC2 instance id": instance_id, "Instance type": candidate.instance_type,
                "Subnet": candidate.subnet_id, "Spot": str(candidate.spot),
                "Run ID": run.run_id}),
            cls=self.__class__,
        )

    def instance_types_of(self, run: DagsterRun) -> list[str]:
        """The types to try for ``run``: the one its ``dynalloc/instance_type`` tag asks for
        (if allowed), else ``instance_types``."""
        wanted = run.tags.get(INSTANCE_TYPE_TAG)
        if wanted is None:
            return self.instance_types
        if wanted not in self.allowed_instance_types:
            raise LaunchError(
                f"run {run.run_id}: tag {INSTANCE_TYPE_TAG}={wanted!r} is not an allowed"
                f" instance type ({', '.join(self.allowed_instance_types)}); add it to"
                " run_launcher.config.allowed_instance_types and to the launcher policy's"
                " ec2:InstanceType list")
        return [wanted]

    def candidates(self, run: DagsterRun) -> list[Candidate]:
        """Every (market, type, subnet) to try, in order: spot first when ``spot`` (then
        on demand if ``spot_fallback``), each type in order, each subnet in order."""
        markets = [True, False] if self.spot and self.spot_fallback else [self.spot]
        return [Candidate(spot, instance_type, subnet)
                for spot in markets for instance_type in self.instance_types_of(run)
                for subnet in self.subnet_ids]

    def start_instance(self, run: DagsterRun, user_data: str) -> tuple[str, Candidate]:
        """``ec2.run_instances`` over the candidates until one starts; returns the instance
        id and the candidate.

        A capacity error moves on to the next candidate; throttling ends the round. Between
        rounds the launcher waits ``launch_backoff_seconds * 2**round`` (x 1-1.5 jitter).
        The first candidate's ``ClientToken`` is the run id, the n-th's ``<run id>-n``: a
        request botocore retries after a lost response starts no second instance.

        Raises
        ------
        LaunchError
            Every round failed; the message lists each attempt's error.
        """
        candidates = self.candidates(run)
        failures: list[str] = []
        for round_ in range(self.launch_attempts):
            if round_:
                self.sleep(self.launch_backoff_seconds * 2 ** (round_ - 1)
                           * (1 + 0.5 * random.random()))
            for index, candidate in enumerate(candidates):
                token = run.run_id if index == 0 else f"{run.run_id}-{index}"
                try:
                    response = self.ec2.run_instances(
                        **self.run_instances_kwargs(run, user_data, candidate),
                        ClientToken=token)
                except ClientError as error:
                    code = error.response.get("Error", {}).get("Code", "")
                    if code not in CAPACITY_ERRORS | THROTTLING_ERRORS:
                        raise
                    failures.append(f"round {round_ + 1}, {candidate.describe()}: {code}")
                    if code in THROTTLING_ERRORS:
                        break
                    continue
                return response["Instances"][0]["InstanceId"], candidate
        raise LaunchError(
            f"run {run.run_id}: no EC2 instance started after {self.launch_attempts}"
            f" round(s) over {len(candidates)} candidate(s): " + "; ".join(failures))

    def user_data(self, run: DagsterRun, command: Sequence[str], python: str) -> str:
        """The run's user data (:func:`dynalloc_dagster.aws.user_data.build_user_data`)."""
        environment = {"DAGSTER_HOME": self.dagster_home}
        region = self.ec2.meta.region_name
        if region:
            environment["AWS_DEFAULT_REGION"] = region
        for entry in self.env_vars:
            name, sep, value = entry.partition("=")
            if not sep:
                if name not in os.environ:
                    raise ValueError(f"run_launcher.config.env_vars: {name} is not set in the"
                                     " launcher's environment")
                value = os.environ[name]
            environment[name] = value
        version_check = [python, "-m", "dynalloc_dagster.aws.code_version", code_version(),
                         run.run_id]
        return build_user_data(
            command=command, environment=environment, secrets=self.secrets,
            python_executable=python, working_directory=self.working_directory,
            header=f"dynalloc run {run.run_id} ({run.job_name})", log_group=self.log_group,
            preamble=[shlex.join(version_check)])

    def instance_tags(self, run: DagsterRun) -> dict[str, str]:
        """EC2 tags of the run's instance: deployment, run id, job, code version,
        partitions, pipeline."""
        tags = {**self.extra_tags, "Name": f"dagster-{run.job_name}-{run.run_id[:8]}",
                DEPLOYMENT_TAG: self.deployment, RUN_ID_TAG: run.run_id, JOB_TAG: run.job_name,
                CODE_VERSION_TAG: code_version()}
        tags |= {key: run.tags[key] for key in PROPAGATED_RUN_TAGS if key in run.tags}
        return {key: value[:MAX_TAG_VALUE] for key, value in tags.items()}

    def run_instances_kwargs(self, run: DagsterRun, user_data: str,
                             candidate: Candidate | None = None) -> dict[str, Any]:
        """The ``ec2.run_instances`` request of a run on ``candidate`` (default: the first).

        Every resource the request creates is tagged (instance, volume, network interface,
        and the spot request of a spot launch): the launcher policy allows creating each
        only with the ``dynalloc/deployment`` request tag."""
        candidate = candidate or self.candidates(run)[0]
        tag_list = [{"Key": k, "Value": v} for k, v in self.instance_tags(run).items()]
        created = ["instance", "volume", "network-interface"]
        if candidate.spot:
            created.append("spot-instances-request")
        kwargs: dict[str, Any] = {
            "ImageId": self.image_id, "InstanceType": candidate.instance_type,
            "MinCount": 1, "MaxCount": 1, "SubnetId": candidate.subnet_id,
            "IamInstanceProfile": {"Arn": self.instance_profile_arn},
            "InstanceInitiatedShutdownBehavior": "terminate",
            "UserData": user_data,
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
            "TagSpecifications": [{"ResourceType": kind, "Tags": tag_list} for kind in created],
        }
        if self.security_group_ids:
            kwargs["SecurityGroupIds"] = self.security_group_ids
        if candidate.spot:
            kwargs["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": {
                "SpotInstanceType": "one-time",
                "InstanceInterruptionBehavior": "terminate"}}
        if self.root_volume_gb:
            kwargs["BlockDeviceMappings"] = [{"DeviceName": "/dev/xvda", "Ebs": {
                "VolumeSize": self.root_volume_gb, "VolumeType": "gp3",
                "DeleteOnTermination": True, "Encrypted": True}}]
        return kwargs

    # -- terminate and health ------------------------------------------------------------

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if not run or run.is_finished:
            return False
        self._instance.report_run_canceling(run)
        instance_id = run.tags.get(INSTANCE_ID_TAG)
        if not instance_id:
            return False
        state = self._instance_state(instance_id)
        if state is None or state[0] in DEAD_STATES:
            return False
        self.ec2.terminate_instances(InstanceIds=[instance_id])
        self._instance.report_engine_event(
            message=f"Terminated EC2 instance {instance_id}", dagster_run=run,
            engine_event_data=EngineEventData({"EC2 instance id": instance_id}),
            cls=self.__class__)
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        """RUNNING while the instance is pending or running; FAILED once it is shutting
        down, stopped, terminated or gone while the run is unfinished; SUCCESS if the run
        finished; UNKNOWN without an instance id."""
        instance_id = run.tags.get(INSTANCE_ID_TAG)
        if not instance_id:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "the run has no EC2 instance id")
        state = self._instance_state(instance_id)
        current = self._instance.get_run_by_id(run.run_id)
        if current is not None and current.is_finished:
            return CheckRunHealthResult(WorkerStatus.SUCCESS, run_worker_id=instance_id)
        if state is None:
            return CheckRunHealthResult(
                WorkerStatus.FAILED, f"EC2 instance {instance_id} no longer exists",
                run_worker_id=instance_id)
        name, reason = state
        if name in LIVE_STATES:
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=instance_id)
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"EC2 instance {instance_id} is {name} before the run finished"
            + (f" ({reason})" if reason else ""), run_worker_id=instance_id)

    def get_run_worker_debug_info(self, run: DagsterRun,
                                  include_container_logs: bool | None = True) -> str | None:
        """The run's instance: its state (and EC2's reason) and the last
        ``CONSOLE_TAIL_LINES`` lines of its console output (boot and cloud-init).

        Dagster's run monitoring calls this when a run does not start, or does not cancel,
        in time, just before marking it failed: an instance still pending or running then
        is terminated here, so a run that never started leaves no instance behind."""
        instance_id = run.tags.get(INSTANCE_ID_TAG)
        if not instance_id:
            return "no EC2 instance was started for this run"
        state = self._instance_state(instance_id)
        if state is None:
            return f"EC2 instance {instance_id} is unknown to EC2 (terminated long ago?)"
        name, reason = state
        lines = [f"EC2 instance {instance_id} is {name}" + (f" ({reason})" if reason else "")]
        if name in LIVE_STATES and run.status in UNSTARTED_OR_CANCELING:
            self.ec2.terminate_instances(InstanceIds=[instance_id])
            lines.append(f"terminated it: the run is {run.status.value} past its timeout")
        if include_container_logs:
            lines.append(self.console_tail(instance_id))
        return "\n".join(lines)

    def console_tail(self, instance_id: str) -> str:
        """The last ``CONSOLE_TAIL_LINES`` lines of the instance's console output."""
        try:  # botocore decodes the base64 Output
            text = self.ec2.get_console_output(InstanceId=instance_id).get("Output") or ""
        except ClientError as error:
            return f"console output unavailable ({error.response['Error'].get('Code')})"
        tail = text.rstrip("\n").splitlines()[-CONSOLE_TAIL_LINES:]
        if not tail:
            return "console output: (empty so far)"
        return "console output (last lines):\n" + "\n".join(tail)

    def _instance_state(self, instance_id: str) -> tuple[str, str] | None:
        """(state name, state reason) of an instance, or None if EC2 does not know it."""
        try:
            reservations = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "InvalidInstanceID.NotFound":
                return None
            raise
        instances = [i for r in reservations for i in r["Instances"]]
        if not instances:
            return None
        found = instances[0]
        return found["State"]["Name"], found.get("StateReason", {}).get("Message", "")


def decode_user_data(value: str) -> str:
    """The script from ``describe_instance_attribute(Attribute="userData")`` (base64)."""
    return base64.b64decode(value).decode("utf-8")
