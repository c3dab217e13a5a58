"""The worker and launcher IAM policies: structure, no wildcard actions, resources scoped
to the bucket/prefix, key, role, image, subnet and tag; accepted by moto's IAM
create_policy; printed by the command; bad config named."""

from __future__ import annotations

import json

import boto3
import pytest
from aws_test_support import ACCOUNT, REGION
from parliament import analyze_policy_string, is_arn_match
from parliament.statement import get_arn_format, get_privilege_info

from dynalloc_dagster.aws.__main__ import main
from dynalloc_dagster.aws.ec2_run_launcher import DEPLOYMENT_TAG
from dynalloc_dagster.aws.iam import (
    DESCRIBE_ACTIONS,
    PolicyConfigError,
    PolicyScope,
    launcher_policy,
    worker_policy,
)

KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/dynalloc-worker"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:dynalloc/pg-url-AbCdEf"
PROFILE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
SCOPE = dict(region=REGION, account=ACCOUNT, bucket="dynalloc-data", prefix="prod/v1",
             kms_key_arn=KEY, worker_role_arn=ROLE, image_id="ami-0123456789abcdef0",
             subnet_ids=("subnet-0123456789abcdef0", "subnet-0fedcba9876543210"),
             instance_types=("c7i.2xlarge", "m7i.2xlarge"),
             security_group_ids=("sg-0123456789abcdef0",), secret_arns=(SECRET,),
             deployment="dynalloc-prod", bedrock_model_id=PROFILE)


def statements(policy: dict) -> dict[str, dict]:
    assert policy["Version"] == "2012-10-17"
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert len(by_sid) == len(policy["Statement"])
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
    return by_sid


def all_actions(policy: dict) -> list[str]:
    return [a for s in policy["Statement"] for a in s["Action"]]


@pytest.mark.parametrize("build", [worker_policy, launcher_policy])
def test_no_wildcard_actions_and_only_describe_on_any_resource(build):
    policy = build(PolicyScope(**SCOPE))
    statements(policy)
    for action in all_actions(policy):
        assert "*" not in action and ":" in action
    for statement in policy["Statement"]:
        if statement["Resource"] == "*":
            assert tuple(statement["Action"]) == DESCRIBE_ACTIONS
        else:
            for arn in statement["Resource"]:
                assert arn.startswith("arn:aws:") and arn != "*"


def test_worker_reaches_the_prefix_the_key_the_secret_and_its_logs_only():
    by_sid = statements(worker_policy(PolicyScope(**SCOPE)))
    assert by_sid["ListThePrefix"]["Resource"] == ["arn:aws:s3:::dynalloc-data"]
    assert by_sid["ListThePrefix"]["Condition"] == {
        "StringLike": {"s3:prefix": ["prod/v1", "prod/v1/*"]}}
    assert by_sid["ReadWriteThePrefix"]["Resource"] == ["arn:aws:s3:::dynalloc-data/prod/v1/*"]
    assert set(by_sid["ReadWriteThePrefix"]["Action"]) == {
        "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}
    assert by_sid["S3UsesTheKey"] == {
        "Sid": "S3UsesTheKey", "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": [KEY],
        "Condition": {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}}
    assert by_sid["DescribeTheKey"]["Action"] == ["kms:DescribeKey"]
    assert "kms:Encrypt" not in all_actions(worker_policy(PolicyScope(**SCOPE)))
    assert by_sid["ReadBootSecrets"]["Resource"] == [SECRET]
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/dynalloc/runs"
    assert by_sid["CreateRunLogStreams"]["Resource"] == [group, f"{group}:*"]
    assert by_sid["WriteRunLogs"]["Resource"] == [f"{group}:log-stream:*"]
    profile = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/{PROFILE}"
    assert by_sid["InvokeTheInferenceProfile"]["Resource"] == [profile]
    assert by_sid["InvokeItsModelThroughTheProfile"] == {
        "Sid": "InvokeItsModelThroughTheProfile", "Effect": "Allow",
        "Action": ["bedrock:InvokeModel"],
        "Resource": ["arn:aws:bedrock:*::foundation-model/"
                     "anthropic.claude-sonnet-4-5-20250929-v1:0"],
        "Condition": {"ArnEquals": {"bedrock:InferenceProfileArn": profile}}}
    assert not any(a.startswith(("ec2:", "iam:")) for a in all_actions(worker_policy(
        PolicyScope(**SCOPE))))


def test_worker_without_prefix_secrets_or_model_gets_the_bucket_and_nothing_more():
    by_sid = statements(worker_policy(PolicyScope(**{**SCOPE, "prefix": "", "secret_arns": (),
                                                     "bedrock_model_id": ""})))
    assert "Condition" not in by_sid["ListThePrefix"]
    assert by_sid["ReadWriteThePrefix"]["Resource"] == ["arn:aws:s3:::dynalloc-data/*"]
    assert "ReadBootSecrets" not in by_sid
    assert not any(s.startswith("Invoke") for s in by_sid)


@pytest.mark.parametrize("model, region, resource", [
    ("anthropic.claude-3-haiku-20240307-v1:0", "",
     f"arn:aws:bedrock:{REGION}::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"),
    ("anthropic.claude-3-haiku-20240307-v1:0", "us-west-2",
     "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"),
    (f"arn:aws:bedrock:{REGION}:{ACCOUNT}:application-inference-profile/abc123", "",
     f"arn:aws:bedrock:{REGION}:{ACCOUNT}:application-inference-profile/abc123"),
])
def test_a_foundation_model_or_an_arn_is_granted_alone(model, region, resource):
    by_sid = statements(worker_policy(PolicyScope(**{**SCOPE, "bedrock_model_id": model,
                                                     "bedrock_region": region})))
    assert by_sid["InvokeTheModel"]["Resource"] == [resource]
    assert "InvokeItsModelThroughTheProfile" not in by_sid


def test_launcher_runs_tagged_instances_from_the_image_and_passes_one_role():
    by_sid = statements(launcher_policy(PolicyScope(**SCOPE)))
    tag_condition = {"StringEquals": {f"aws:RequestTag/{DEPLOYMENT_TAG}": "dynalloc-prod"}}
    run = by_sid["RunTaggedInstancesOfAllowedTypesWithImdsV2"]
    assert run["Resource"] == [f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*"]
    assert run["Condition"] == {"StringEquals": {
        **tag_condition["StringEquals"], "ec2:InstanceType": ["c7i.2xlarge", "m7i.2xlarge"],
        "ec2:MetadataHttpTokens": "required"}}
    attached = by_sid["RunTaggedVolumesInterfacesAndSpotRequests"]
    assert attached["Condition"] == tag_condition
    assert attached["Resource"] == [f"arn:aws:ec2:{REGION}:{ACCOUNT}:{kind}/*" for kind in (
        "volume", "network-interface", "spot-instances-request")]
    assert by_sid["RunFromTheImageSubnetAndGroups"]["Resource"] == [
        f"arn:aws:ec2:{REGION}::image/ami-0123456789abcdef0",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0123456789abcdef0",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0fedcba9876543210",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0123456789abcdef0"]
    assert by_sid["TagOnLaunchOnly"]["Condition"] == {
        "StringEquals": {"ec2:CreateAction": "RunInstances"}}
    assert by_sid["TerminateAndReadOwnInstances"]["Action"] == [
        "ec2:TerminateInstances", "ec2:GetConsoleOutput"]
    assert by_sid["TerminateAndReadOwnInstances"]["Condition"] == {
        "StringEquals": {f"ec2:ResourceTag/{DEPLOYMENT_TAG}": "dynalloc-prod"}}
    assert by_sid["PassTheWorkerRole"]["Resource"] == [ROLE]
    assert by_sid["PassTheWorkerRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    assert "s3:GetObject" not in all_actions(launcher_policy(PolicyScope(**SCOPE)))


@pytest.mark.parametrize("field, value, message", [
    ("account", "1234", "account = '1234': must be 12 digits"),
    ("bucket", "Bad_Bucket", "bucket = 'Bad_Bucket'"),
    ("prefix", "/prod", "no '/' at either end"),
    ("prefix", "prod/*", "no '/' at either end, no '\\*'"),
    ("kms_key_arn", "alias/dynalloc", "not an alias"),
    ("kms_key_arn", KEY.replace(ACCOUNT, "210987654321"), "kms_key_arn is in account"),
    ("kms_key_arn", KEY.replace(REGION, "eu-west-1"), "kms_key_arn is in eu-west-1"),
    ("worker_role_arn", "arn:aws:iam::123456789012:user/bob", "must be a role ARN"),
    ("image_id", "ubuntu", "must be an AMI id"),
    ("subnet_ids", (), "at least one subnet"),
    ("instance_types", ("c7i 2xlarge",), "must be instance types"),
    ("bedrock_model_id", "claude", "must be a Bedrock model id"),
    ("deployment", "*", "without '\\*'"),
    ("secret_arns", (SECRET.replace(REGION, "eu-west-1"),), "is not in us-east-1"),
])
def test_bad_config_is_named(field, value, message):
    with pytest.raises(PolicyConfigError, match=message):
        PolicyScope(**{**SCOPE, field: value})


def test_moto_iam_accepts_both_policies(aws):
    iam = boto3.client("iam", region_name=REGION)
    scope = PolicyScope(**SCOPE)
    for name, policy in (("worker", worker_policy(scope)), ("launcher", launcher_policy(scope))):
        created = iam.create_policy(PolicyName=f"dynalloc-{name}",
                                    PolicyDocument=json.dumps(policy))["Policy"]
        version = iam.get_policy_version(PolicyArn=created["Arn"],
                                         VersionId=created["DefaultVersionId"])
        document = version["PolicyVersion"]["Document"]
        stored = json.loads(document) if isinstance(document, str) else document
        assert stored == policy


def test_moto_iam_rejects_a_malformed_document(aws):
    """moto validates documents, so the test above can fail."""
    iam = boto3.client("iam", region_name=REGION)
    broken = worker_policy(PolicyScope(**SCOPE))
    broken["Statement"][0]["Effect"] = "Maybe"
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.create_policy(PolicyName="broken", PolicyDocument=json.dumps(broken))


POLICY_ARGV = [
    "policy", "--region", REGION, "--account", ACCOUNT, "--bucket", "dynalloc-data",
    "--prefix", "prod/v1/", "--kms-key-arn", KEY, "--worker-role-arn", ROLE,
    "--image-id", "ami-0123456789abcdef0", "--subnet-id", "subnet-0123456789abcdef0",
    "--subnet-id", "subnet-0fedcba9876543210", "--instance-type", "c7i.2xlarge",
    "--instance-type", "m7i.2xlarge", "--security-group-id", "sg-0123456789abcdef0",
    "--secret-arn", SECRET, "--deployment", "dynalloc-prod", "--bedrock-model-id", PROFILE]


def test_policy_command_prints_the_policies(capsys):
    argv = POLICY_ARGV
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    scope = PolicyScope(**SCOPE)
    assert printed == {"worker": worker_policy(scope), "launcher": launcher_policy(scope)}
    assert main([*argv, "--which", "worker"]) == 0
    assert json.loads(capsys.readouterr().out) == worker_policy(scope)
    assert main([*argv[:4], "1234", *argv[5:]]) == 2
    assert "account = '1234'" in capsys.readouterr().err


NEWER_THAN_PARLIAMENT = {"ec2:RunInstances": [
    ("spot-instances-request", "arn:*:ec2:*:*:spot-instances-request/*")]}
"""Resource types of an action in AWS's Service Authorization Reference that parliament's
bundled copy (1.6.4) predates: RunInstances creates (and authorizes) the spot request of
a spot launch."""


def resource_types_of(action: str) -> list[tuple[str, str]]:
    """(resource type, ARN format) of every resource type of ``action`` in parliament's
    copy of the Service Authorization Reference (and :data:`NEWER_THAN_PARLIAMENT`)."""
    service, name = action.split(":")
    info = get_privilege_info(service, name)
    return [*((r["resource_type"], get_arn_format(r["resource_type"],
                                                  info["service_resources"]))
              for r in info["resource_types"] if r["resource_type"]),
            *NEWER_THAN_PARLIAMENT.get(action, [])]


def passes_one_role_to_ec2_only(policy: dict) -> bool:
    passing = [s for s in policy["Statement"] if "iam:PassRole" in s["Action"]]
    return len(passing) == 1 and passing[0]["Resource"] == [ROLE] and passing[0][
        "Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}


def explained(finding, policy: dict) -> bool:
    """Findings that are the launcher's purpose or parliament's false positives.

    PERMISSIONS_MANAGEMENT_ACTIONS and PRIVILEGE_ESCALATION (CreateEC2WithExistingIP) are
    ``iam:PassRole`` with ``ec2:RunInstances``: what launching a worker with its instance
    profile is. Accepted only when PassRole names the one worker role, only to EC2 (and
    the worker policy has no IAM action, tested above), so the escalation is to the worker's
    own permissions.

    A RESOURCE_MISMATCH is parliament asking each statement to name every resource type
    an action has. That is wrong for actions whose types are alternatives (Bedrock's
    InvokeModel: one model, or one profile) and for RunInstances split into statements
    with different conditions (AWS's own example policies do this). Accepted only when
    every resource of the statements naming the action is a valid ARN of one of the
    action's types, and the statements together cover each required type of the action
    that the call creates or uses (RunInstances) - nothing parliament meant to catch."""
    if finding.issue in ("PERMISSIONS_MANAGEMENT_ACTIONS", "PRIVILEGE_ESCALATION"):
        actions = set(finding.location["actions"])
        return actions <= {"iam:passrole", "ec2:runinstances"} and passes_one_role_to_ec2_only(
            policy)
    if finding.issue != "RESOURCE_MISMATCH":
        return False
    for detail in finding.detail:
        action = detail["action"]
        types = resource_types_of(action)
        resources = [r for s in policy["Statement"] if action in s["Action"]
                     for r in s["Resource"]]
        for resource in resources:
            if not any(is_arn_match(t, f, resource) for t, f in types):
                return False
        if action == "ec2:RunInstances":
            needed = {"image*", "instance*", "network-interface*", "security-group*",
                      "subnet*", "volume"}
            covered = {t for t, f in types for r in resources if is_arn_match(t, f, r)}
            if not needed <= covered:
                return False
    return True


@pytest.mark.parametrize("which", ["worker", "launcher"])
def test_parliament_finds_nothing_in_the_printed_policies(which, capsys):
    """The policies as the command prints them, linted by parliament (community auditors
    included); the only findings allowed are the explained RESOURCE_MISMATCH ones."""
    assert main([*POLICY_ARGV, "--which", which]) == 0
    text = capsys.readouterr().out
    policy = json.loads(text)
    findings = analyze_policy_string(text, include_community_auditors=True).findings
    unexplained = [(f.issue, f.detail) for f in findings if not explained(f, policy)]
    assert unexplained == []


def test_parliament_flags_what_it_is_meant_to_flag():
    """The lint and the acceptance rule can fail: a resource of the wrong type, PassRole
    of any role and an ARN-typed key compared as a string are all reported."""
    policy = worker_policy(PolicyScope(**SCOPE))
    policy["Statement"][2]["Resource"] = ["arn:aws:s3:::dynalloc-data"]
    issues = {f.issue for f in analyze_policy_string(json.dumps(policy)).findings
              if not explained(f, policy)}
    assert "RESOURCE_MISMATCH" in issues
    launcher = launcher_policy(PolicyScope(**SCOPE))
    for statement in launcher["Statement"]:
        if statement["Action"] == ["iam:PassRole"]:
            statement["Resource"] = [f"arn:aws:iam::{ACCOUNT}:role/*"]
    issues = {f.issue for f in analyze_policy_string(
        json.dumps(launcher), include_community_auditors=True).findings
        if not explained(f, launcher)}
    assert {"PERMISSIONS_MANAGEMENT_ACTIONS", "PRIVILEGE_ESCALATION"} <= issues
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    by_sid["InvokeItsModelThroughTheProfile"]["Condition"] = {
        "StringEquals": by_sid["InvokeItsModelThroughTheProfile"]["Condition"]["ArnEquals"]}
    issues = {f.issue for f in analyze_policy_string(json.dumps(policy)).findings}
    assert "MISMATCHED_TYPE_BUT_USABLE" in issues
