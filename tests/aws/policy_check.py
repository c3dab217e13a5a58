"""What moto cannot check: whether the requests the code sends are allowed by the IAM
policies the project prints.

:class:`RequestRecorder` records every API call made by any boto3 client created while it
is active (botocore's ``before-parameter-build`` event, which carries the call's own
parameters), :func:`authorizations` turns each call into the IAM authorizations AWS
evaluates for it (action, resource ARN, condition keys: the ones of the Service
Authorization Reference, including what S3 asks KMS on the caller's behalf for SSE-KMS),
and :func:`evaluate` decides a policy document on one authorization: explicit Deny wins,
then any Allow whose action, resource and every condition match. The condition
operators implemented are the ones the project's policies use (``StringEquals``,
``StringLike``, ``ArnLike``, ``ArnEquals``, ``Bool``, with the ``ForAllValues:`` /
``ForAnyValue:`` set prefixes and the ``IfExists`` suffix); any other operator raises,
so a policy cannot pass on a condition this evaluator does not understand. A call without
a mapping becomes an ``unmapped:`` action no policy allows, so a new call fails the test
until it is mapped.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.session

ContextValue = str | list[str]


@dataclass(frozen=True)
class Authorization:
    """One IAM decision a call needs."""

    call: str  # "<service>.<Operation>"
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.call}: {self.action} on {self.resource} with {dict(self.context)}"


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    params: Mapping[str, Any]
    region: str


@dataclass
class RequestRecorder:
    """Records the calls of every client created inside :meth:`recording`."""

    calls: list[Call] = field(default_factory=list)

    @contextmanager
    def recording(self) -> Iterator[RequestRecorder]:
        original = botocore.session.Session.create_client
        recorder = self

        def create_client(session, service_name, *args, **kwargs):
            client = original(session, service_name, *args, **kwargs)
            region = client.meta.region_name

            def record(params, model, **_):
                recorder.calls.append(Call(model.service_model.service_name, model.name,
                                           dict(params), region))

            client.meta.events.register("before-parameter-build", record)
            return client

        botocore.session.Session.create_client = create_client
        try:
            yield self
        finally:
            botocore.session.Session.create_client = original


@dataclass(frozen=True)
class Facts:
    """What the mapping needs to know of the account (ARNs the calls name indirectly)."""

    account: str
    key_arn: str  # every SSE-KMS object's key
    role_of_profile: Callable[[str], str]  # instance profile ARN -> role ARN
    tags_of_instance: Callable[[str], dict[str, str]]  # instance id -> its tags
    key_arn_of: Callable[[str], str]  # key id, alias or ARN -> key ARN


def _via_s3(call: str, action: str, facts: Facts, region: str) -> Authorization:
    return Authorization(call, action, facts.key_arn, {"kms:ViaService":
                                                       f"s3.{region}.amazonaws.com"})


_PROFILE_ID = re.compile(r"^(us|eu|apac|us-gov|global|jp|au|ca)\.(.+)$")


def authorizations(call: Call, facts: Facts) -> list[Authorization]:
    """The IAM authorizations AWS evaluates for ``call``."""
    name, p, region = f"{call.service}.{call.operation}", call.params, call.region
    ec2 = f"arn:aws:ec2:{region}:{facts.account}"
    if call.service == "s3":
        bucket = f"arn:aws:s3:::{p['Bucket']}"
        obj = f"{bucket}/{p.get('Key', '')}"
        if call.operation in ("ListObjectsV2", "ListObjects"):
            context = {"s3:prefix": p["Prefix"]} if "Prefix" in p else {}
            return [Authorization(name, "s3:ListBucket", bucket, context)]
        if call.operation == "HeadBucket":
            return [Authorization(name, "s3:ListBucket", bucket)]
        if call.operation in ("GetObject", "HeadObject"):
            return [Authorization(name, "s3:GetObject", obj),
                    _via_s3(name, "kms:Decrypt", facts, region)]
        if call.operation in ("PutObject", "CreateMultipartUpload", "UploadPart"):
            return [Authorization(name, "s3:PutObject", obj),
                    _via_s3(name, "kms:GenerateDataKey", facts, region)]
        if call.operation == "CompleteMultipartUpload":
            return [Authorization(name, "s3:PutObject", obj),
                    _via_s3(name, "kms:Decrypt", facts, region)]
        if call.operation == "DeleteObject":
            return [Authorization(name, "s3:DeleteObject", obj)]
        if call.operation == "AbortMultipartUpload":
            return [Authorization(name, "s3:AbortMultipartUpload", obj)]
    if call.service == "kms" and call.operation == "DescribeKey":
        return [Authorization(name, "kms:DescribeKey", facts.key_arn_of(p["KeyId"]))]
    if call.service == "secretsmanager" and call.operation == "GetSecretValue":
        return [Authorization(name, "secretsmanager:GetSecretValue", p["SecretId"])]
    if call.service == "ec2":
        if call.operation == "RunInstances":
            return _run_instances(name, p, facts, ec2, region)
        if call.operation == "DescribeInstances":
            return [Authorization(name, "ec2:DescribeInstances", "*")]
        if call.operation in ("TerminateInstances", "GetConsoleOutput"):
            ids = p["InstanceIds"] if "InstanceIds" in p else [p["InstanceId"]]
            return [Authorization(name, f"ec2:{call.operation}", f"{ec2}:instance/{i}",
                                  {f"ec2:ResourceTag/{k}": v
                                   for k, v in facts.tags_of_instance(i).items()})
                    for i in ids]
    if call.service == "bedrock-runtime" and call.operation in ("Converse", "InvokeModel"):
        model = p["modelId"]
        profile = _PROFILE_ID.match(model)
        if profile is None:
            return [Authorization(name, "bedrock:InvokeModel",
                                  f"arn:aws:bedrock:{region}::foundation-model/{model}")]
        profile_arn = f"arn:aws:bedrock:{region}:{facts.account}:inference-profile/{model}"
        return [Authorization(name, "bedrock:InvokeModel", profile_arn),
                Authorization(name, "bedrock:InvokeModel",
                              f"arn:aws:bedrock:{region}::foundation-model/{profile[2]}",
                              {"bedrock:InferenceProfileArn": profile_arn})]
    if call.service == "logs" and call.operation == "CreateLogStream":
        return [Authorization(name, "logs:CreateLogStream", f"arn:aws:logs:{region}:"
                              f"{facts.account}:log-group:{p['logGroupName']}")]
    if call.service == "logs" and call.operation == "PutLogEvents":
        return [Authorization(name, "logs:PutLogEvents", f"arn:aws:logs:{region}:"
                              f"{facts.account}:log-group:{p['logGroupName']}:log-stream:"
                              f"{p['logStreamName']}")]
    return [Authorization(name, f"unmapped:{name}", "*")]


def _run_instances(name: str, p: Mapping[str, Any], facts: Facts, ec2: str,
                   region: str) -> list[Authorization]:
    """RunInstances: the inputs (image, subnet, groups), every created resource with its
    request tags (instance also with its type and IMDS setting), CreateTags for each
    tagged one, and PassRole of the profile's role."""
    tags = {spec["ResourceType"]: {t["Key"]: t["Value"] for t in spec["Tags"]}
            for spec in p.get("TagSpecifications", [])}
    created = ["instance", "volume", "network-interface"]
    if p.get("InstanceMarketOptions", {}).get("MarketType") == "spot":
        created.append("spot-instances-request")
    found = [Authorization(name, "ec2:RunInstances",
                           f"arn:aws:ec2:{region}::image/{p['ImageId']}"),
             Authorization(name, "ec2:RunInstances", f"{ec2}:subnet/{p['SubnetId']}"),
             *(Authorization(name, "ec2:RunInstances", f"{ec2}:security-group/{g}")
               for g in p.get("SecurityGroupIds", []))]
    for kind in created:
        context: dict[str, ContextValue] = {f"aws:RequestTag/{k}": v
                                            for k, v in tags.get(kind, {}).items()}
        context["aws:TagKeys"] = list(tags.get(kind, {}))
        if kind == "instance":
            context["ec2:InstanceType"] = p["InstanceType"]
            context["ec2:MetadataHttpTokens"] = p.get("MetadataOptions", {}).get(
                "HttpTokens", "optional")
        found.append(Authorization(name, "ec2:RunInstances", f"{ec2}:{kind}/*", context))
        if kind in tags:
            found.append(Authorization(name, "ec2:CreateTags", f"{ec2}:{kind}/*",
                                       {**context, "ec2:CreateAction": "RunInstances"}))
    if "IamInstanceProfile" in p:
        found.append(Authorization(name, "iam:PassRole",
                                   facts.role_of_profile(p["IamInstanceProfile"]["Arn"]),
                                   {"iam:PassedToService": "ec2.amazonaws.com"}))
    return found


# -- the evaluator -----------------------------------------------------------------------

def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _glob(pattern: str, value: str, *, case: bool = True) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike: the six colon-separated parts matched one by one (the resource part keeps
    its colons)."""
    expected, actual = pattern.split(":", 5), value.split(":", 5)
    return len(expected) == len(actual) == 6 and all(
        _glob(e, a) for e, a in zip(expected, actual, strict=True))


_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda e, a: e == a,
    "StringLike": _glob,
    "ArnEquals": lambda e, a: e == a,
    "ArnLike": _arn_like,
    "Bool": lambda e, a: str(e).lower() == str(a).lower(),
}


def _condition_holds(operator: str, key: str, expected: Any,
                     context: Mapping[str, ContextValue]) -> bool:
    base, qualifier = operator, ""
    for prefix in ("ForAllValues:", "ForAnyValue:"):
        if base.startswith(prefix):
            qualifier, base = prefix[:-1], base[len(prefix):]
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _OPERATORS:
        raise ValueError(f"condition operator {operator} is not implemented by the evaluator")
    match = _OPERATORS[base]
    values = {k.lower(): v for k, v in context.items()}
    if key.lower() not in values:
        return if_exists or qualifier == "ForAllValues"
    actual = values[key.lower()]
    wanted = _listed(expected)
    if qualifier == "ForAllValues":
        return all(any(match(e, a) for e in wanted) for a in _listed(actual))
    if qualifier == "ForAnyValue":
        return any(match(e, a) for e in wanted for a in _listed(actual))
    if isinstance(actual, list):
        raise ValueError(f"{key} is multivalued: {operator} needs ForAllValues/ForAnyValue")
    return any(match(e, actual) for e in wanted)


def _statement_matches(statement: Mapping[str, Any], request: Authorization) -> bool:
    if not any(_glob(a, request.action, case=False) for a in _listed(statement["Action"])):
        return False
    if not any(r == "*" or (_arn_like(r, request.resource) if r.startswith("arn:")
                            else r == request.resource)
               for r in _listed(statement["Resource"])):
        return False
    return all(_condition_holds(operator, key, expected, request.context)
               for operator, block in statement.get("Condition", {}).items()
               for key, expected in block.items())


def evaluate(policy: Mapping[str, Any], request: Authorization) -> bool:
    """Whether ``policy`` allows ``request``: no matching Deny, at least one Allow."""
    matching = [s for s in _listed(policy["Statement"]) if _statement_matches(s, request)]
    if any(s["Effect"] == "Deny" for s in matching):
        return False
    return any(s["Effect"] == "Allow" for s in matching)


def denied(policy: Mapping[str, Any], calls: Sequence[Call], facts: Facts) -> list[str]:
    """Every authorization of ``calls`` the policy does not allow, described."""
    return [str(a) for call in calls for a in authorizations(call, facts)
            if not evaluate(policy, a)]
