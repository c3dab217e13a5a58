"""Least-privilege IAM policies of the run workers and the run launcher, from config.

The worker (the instance profile of each run's EC2 instance) may read, write and list
objects under one bucket prefix and delete one of them, the data-root lease
(``<prefix>/_lease.json``, dynalloc_dagster.storage.lease), have S3 (and only S3:
``kms:ViaService``) use the one KMS key for SSE-KMS, describe that key (the S3 storage
checks it is enabled before its first write), read the named secrets (the PostgreSQL
URL), write its logs to one log group and, when a model is configured, invoke that one
Bedrock model or inference profile. The launcher (the host of the Dagster daemon and
webserver) may start instances only from the one image into the listed subnets and
security groups, only of the allowed instance types, only with IMDSv2 required and only
with every created resource (instance, volume, network interface, spot request) tagged
``dynalloc/deployment = <deployment>``; tag them at launch only; describe instances;
terminate and read the console output of only instances carrying that tag; and pass only
the worker's role, only to EC2.

The only ``"Resource": "*"`` is the launcher's ``ec2:Describe*`` statement: EC2's
Describe actions support no resource-level permissions. No action has a wildcard.
``python -m dynalloc_dagster.aws policy ...`` prints them (docs/aws.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dynalloc_dagster.aws.ec2_run_launcher import DEPLOYMENT_TAG
from dynalloc_dagster.storage.lease import LEASE_OBJECT

VERSION = "2012-10-17"
DESCRIBE_ACTIONS = ("ec2:DescribeInstances",)
"""Actions without resource-level permissions: the one statement allowed ``*``."""

_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]+$")
_KMS_KEY = re.compile(r"^arn:aws:kms:(?P<region>[^:]+):(?P<account>\d{12}):key/[0-9a-f-]{36}$")
_ROLE = re.compile(r"^arn:aws:iam::(?P<account>\d{12}):role/[\w+=,.@/-]+$")
_SECRET = re.compile(r"^arn:aws:secretsmanager:(?P<region>[^:]+):(?P<account>\d{12}):secret:.+$")
_IMAGE = re.compile(r"^ami-[0-9a-f]{8,17}$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")
_LOG_GROUP = re.compile(r"^/[\w./-]+$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_MODEL = re.compile(r"^[a-z0-9.-]+\.[\w.:-]+$")
_PROFILE_GEOS = ("us", "eu", "apac", "us-gov", "global", "jp", "au", "ca")
"""Prefixes of Bedrock's cross-region inference profile ids (``us.anthropic...``)."""


class PolicyConfigError(ValueError):
    """A field of the policy config is malformed or points outside the account/region."""


@dataclass(frozen=True)
class PolicyScope:
    """What the policies grant access to; every field is checked on construction.

    ``prefix`` is the object key prefix without slashes at its ends (S3 objects under
    ``<bucket>/<prefix>/``; empty: the whole bucket); ``secret_arns`` are the secrets the
    worker reads at boot; ``instance_types`` the types the launcher may start (its
    ``instance_types`` and ``allowed_instance_types``); ``bedrock_model_id`` the model or
    inference profile of ``BedrockResource`` (empty: no Bedrock grant), called in
    ``bedrock_region`` (default ``region``)."""

    region: str
    account: str
    bucket: str
    prefix: str
    kms_key_arn: str
    worker_role_arn: str
    image_id: str
    subnet_ids: tuple[str, ...]
    instance_types: tuple[str, ...]
    security_group_ids: tuple[str, ...] = ()
    secret_arns: tuple[str, ...] = ()
    deployment: str = "dynalloc"
    log_group: str = "/dynalloc/runs"
    spot: bool = field(default=True)
    bedrock_model_id: str = ""
    bedrock_region: str = ""

    def __post_init__(self) -> None:
        def need(name: str, pattern: re.Pattern[str], value: str, rule: str) -> re.Match[str]:
            match = pattern.match(value or "")
            if not match:
                raise PolicyConfigError(f"{name} = {value!r}: {rule}")
            return match

        need("account", _ACCOUNT, self.account, "must be 12 digits")
        need("region", _REGION, self.region, "must be a region name such as eu-west-1")
        need("bucket", _BUCKET, self.bucket, "must be an S3 bucket name (3-63 of a-z 0-9 . -)")
        if self.prefix:
            need("prefix", _PREFIX, self.prefix, "must be a key prefix such as dynalloc/prod")
        if self.prefix.startswith("/") or self.prefix.endswith("/") or "*" in self.prefix:
            raise PolicyConfigError(f"prefix = {self.prefix!r}: no '/' at either end, no '*'")
        key = need("kms_key_arn", _KMS_KEY, self.kms_key_arn,
                   "must be a key ARN arn:aws:kms:<region>:<account>:key/<uuid> (not an alias)")
        role = need("worker_role_arn", _ROLE, self.worker_role_arn,
                    "must be a role ARN arn:aws:iam::<account>:role/<name>")
        need("image_id", _IMAGE, self.image_id, "must be an AMI id ami-...")
        if not self.subnet_ids:
            raise PolicyConfigError("subnet_ids: at least one subnet")
        for subnet in self.subnet_ids:
            need("subnet_ids", _SUBNET, subnet, "must be subnet ids subnet-...")
        if not self.instance_types:
            raise PolicyConfigError("instance_types: at least one instance type")
        for instance_type in self.instance_types:
            need("instance_types", _INSTANCE_TYPE, instance_type,
                 "must be instance types such as c7i.2xlarge")
        if self.bedrock_model_id and not self.bedrock_model_id.startswith("arn:aws:bedrock:"):
            need("bedrock_model_id", _MODEL, self.bedrock_model_id,
                 "must be a Bedrock model id, inference profile id or ARN")
        if self.bedrock_region:
            need("bedrock_region", _REGION, self.bedrock_region,
                 "must be a region name such as us-east-1")
        for group in self.security_group_ids:
            need("security_group_ids", _GROUP, group, "must be security group ids sg-...")
        need("log_group", _LOG_GROUP, self.log_group, "must be a log group name /...")
        if not self.deployment or "*" in self.deployment:
            raise PolicyConfigError(f"deployment = {self.deployment!r}: a non-empty tag value"
                                    " without '*'")
        for name, match in (("kms_key_arn", key), ("worker_role_arn", role)):
            if match["account"] != self.account:
                raise PolicyConfigError(f"{name} is in account {match['account']}, not"
                                        f" {self.account}")
        if key["region"] != self.region:
            raise PolicyConfigError(f"kms_key_arn is in {key['region']}, not {self.region}")
        for arn in self.secret_arns:
            secret = need("secret_arns", _SECRET, arn,
                          "must be arn:aws:secretsmanager:<region>:<account>:secret:...")
            if secret["account"] != self.account or secret["region"] != self.region:
                raise PolicyConfigError(f"secret_arns: {arn} is not in {self.region}/"
                                        f"{self.account}")

    def ec2_arn(self, resource: str, *, account: bool = True) -> str:
        return f"arn:aws:ec2:{self.region}:{self.account if account else ''}:{resource}"

    def log_group_arn(self) -> str:
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{self.log_group}"


def bedrock_statements(scope: PolicyScope) -> list[dict[str, Any]]:
    """``bedrock:InvokeModel`` (what Converse needs) on the one model.

    A foundation model id is granted in its region; a cross-region inference profile id
    (``us.anthropic...``) is granted on the profile and on its foundation model in any
    region, the latter only through that profile (``bedrock:InferenceProfileArn``), since
    the profile routes each call to one of its regions; an ARN is granted as given."""
    model, region = scope.bedrock_model_id, scope.bedrock_region or scope.region
    if not model:
        return []
    if model.startswith("arn:"):
        return [{"Sid": "InvokeTheModel", "Effect": "Allow", "Action": ["bedrock:InvokeModel"],
                 "Resource": [model]}]
    geo, _, base = model.partition(".")
    if geo not in _PROFILE_GEOS:
        return [{"Sid": "InvokeTheModel", "Effect": "Allow", "Action": ["bedrock:InvokeModel"],
                 "Resource": [f"arn:aws:bedrock:{region}::foundation-model/{model}"]}]
    profile = f"arn:aws:bedrock:{region}:{scope.account}:inference-profile/{model}"
    return [
        {"Sid": "InvokeTheInferenceProfile", "Effect": "Allow",
         "Action": ["bedrock:InvokeModel"], "Resource": [profile]},
        {"Sid": "InvokeItsModelThroughTheProfile", "Effect": "Allow",
         "Action": ["bedrock:InvokeModel"],
         "Resource": [f"arn:aws:bedrock:*::foundation-model/{base}"],
         "Condition": {"ArnEquals": {"bedrock:InferenceProfileArn": profile}}},
    ]


def worker_policy(scope: PolicyScope) -> dict[str, Any]:
    """The instance profile policy of the run workers."""
    under = f"{scope.prefix}/" if scope.prefix else ""
    listing: dict[str, Any] = {"Sid": "ListThePrefix", "Effect": "Allow",
                               "Action": ["s3:ListBucket"],
                               "Resource": [f"arn:aws:s3:::{scope.bucket}"]}
    if scope.prefix:
        listing["Condition"] = {"StringLike": {"s3:prefix": [scope.prefix, f"{under}*"]}}
    statements: list[dict[str, Any]] = [
        listing,
        {"Sid": "ReadWriteThePrefix", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
         "Resource": [f"arn:aws:s3:::{scope.bucket}/{under}*"]},
        {"Sid": "ReleaseTheDataRootLease", "Effect": "Allow", "Action": ["s3:DeleteObject"],
         "Resource": [f"arn:aws:s3:::{scope.bucket}/{under}{LEASE_OBJECT}"]},
        {"Sid": "S3UsesTheKey", "Effect": "Allow",
         "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": [scope.kms_key_arn],
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{scope.region}.amazonaws.com"}}},
        {"Sid": "DescribeTheKey", "Effect": "Allow", "Action": ["kms:DescribeKey"],
         "Resource": [scope.kms_key_arn]},
        {"Sid": "CreateRunLogStreams", "Effect": "Allow", "Action": ["logs:CreateLogStream"],
         "Resource": [scope.log_group_arn(), f"{scope.log_group_arn()}:*"]},
        {"Sid": "WriteRunLogs", "Effect": "Allow", "Action": ["logs:PutLogEvents"],
         "Resource": [f"{scope.log_group_arn()}:log-stream:*"]},
        *bedrock_statements(scope),
    ]
    if scope.secret_arns:
        statements.append({"Sid": "ReadBootSecrets", "Effect": "Allow",
                           "Action": ["secretsmanager:GetSecretValue"],
                           "Resource": list(scope.secret_arns)})
    return {"Version": VERSION, "Statement": statements}


def launcher_policy(scope: PolicyScope) -> dict[str, Any]:
    """The policy of the host running the Dagster daemon (which launches runs)."""
    request_tag = {f"aws:RequestTag/{DEPLOYMENT_TAG}": scope.deployment}
    own = {"StringEquals": {f"ec2:ResourceTag/{DEPLOYMENT_TAG}": scope.deployment}}
    attached = ["volume/*", "network-interface/*"]
    if scope.spot:
        attached.append("spot-instances-request/*")
    created = ["instance/*", *attached]
    inputs = [scope.ec2_arn(f"image/{scope.image_id}", account=False),
              *(scope.ec2_arn(f"subnet/{s}") for s in scope.subnet_ids),
              *(scope.ec2_arn(f"security-group/{g}") for g in scope.security_group_ids)]
    return {"Version": VERSION, "Statement": [
        {"Sid": "RunTaggedInstancesOfAllowedTypesWithImdsV2", "Effect": "Allow",
         "Action": ["ec2:RunInstances"], "Resource": [scope.ec2_arn("instance/*")],
         "Condition": {"StringEquals": {**request_tag,
                                        "ec2:InstanceType": list(scope.instance_types),
                                        "ec2:MetadataHttpTokens": "required"}}},
        {"Sid": "RunTaggedVolumesInterfacesAndSpotRequests", "Effect": "Allow",
         "Action": ["ec2:RunInstances"], "Resource": [scope.ec2_arn(r) for r in attached],
         "Condition": {"StringEquals": request_tag}},
        {"Sid": "RunFromTheImageSubnetAndGroups", "Effect": "Allow",
         "Action": ["ec2:RunInstances"], "Resource": inputs},
        {"Sid": "TagOnLaunchOnly", "Effect": "Allow", "Action": ["ec2:CreateTags"],
         "Resource": [scope.ec2_arn(r) for r in created],
         "Condition": {"StringEquals": {"ec2:CreateAction": "RunInstances"}}},
        {"Sid": "DescribeInstances", "Effect": "Allow", "Action": list(DESCRIBE_ACTIONS),
         "Resource": "*"},
        {"Sid": "TerminateAndReadOwnInstances", "Effect": "Allow",
         "Action": ["ec2:TerminateInstances", "ec2:GetConsoleOutput"],
         "Resource": [scope.ec2_arn("instance/*")], "Condition": own},
        {"Sid": "PassTheWorkerRole", "Effect": "Allow", "Action": ["iam:PassRole"],
         "Resource": [scope.worker_role_arn],
         "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}},
    ]}
