"""The worker and launcher IAM policies: structure, no wildcard actions, resources scoped
to the bucket/prefix, key, role, image, subnet and tag; accepted by moto's IAM
create_policy; printed by the command; bad config named."""

from __future__ import annotations

import json

import boto3
import pytest
from aws_test_support import ACCOUNT, REGION

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
SCOPE = dict(region=REGION, account=ACCOUNT, bucket="dynalloc-data", prefix="prod/v1",
             kms_key_arn=KEY, worker_role_arn=ROLE, image_id="ami-0123456789abcdef0",
             subnet_id="subnet-0123456789abcdef0", security_group_ids=("sg-0123456789abcdef0",),
             secret_arns=(SECRET,), deployment="dynalloc-prod")


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
    assert by_sid["UseTheKey"] == {
        "Sid": "UseTheKey", "Effect": "Allow",
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
        "Resource": [KEY]}
    assert by_sid["ReadBootSecrets"]["Resource"] == [SECRET]
    assert by_sid["WriteRunLogs"]["Resource"] == [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/dynalloc/runs:log-stream:*"]
    assert not any(a.startswith(("ec2:", "iam:")) for a in all_actions(worker_policy(
        PolicyScope(**SCOPE))))


def test_worker_without_prefix_or_secrets_gets_the_bucket_and_no_secret_access():
    by_sid = statements(worker_policy(PolicyScope(**{**SCOPE, "prefix": "", "secret_arns": ()})))
    assert "Condition" not in by_sid["ListThePrefix"]
    assert by_sid["ReadWriteThePrefix"]["Resource"] == ["arn:aws:s3:::dynalloc-data/*"]
    assert "ReadBootSecrets" not in by_sid


def test_launcher_runs_tagged_instances_from_the_image_and_passes_one_role():
    by_sid = statements(launcher_policy(PolicyScope(**SCOPE)))
    tag_condition = {"StringEquals": {f"aws:RequestTag/{DEPLOYMENT_TAG}": "dynalloc-prod"}}
    run = by_sid["RunTaggedInstances"]
    assert run["Action"] == ["ec2:RunInstances"] and run["Condition"] == tag_condition
    assert f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*" in run["Resource"]
    assert by_sid["RunFromTheImageSubnetAndGroups"]["Resource"] == [
        f"arn:aws:ec2:{REGION}::image/ami-0123456789abcdef0",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0123456789abcdef0",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0123456789abcdef0"]
    assert by_sid["TagOnLaunchOnly"]["Condition"] == {
        "StringEquals": {"ec2:CreateAction": "RunInstances"}}
    assert by_sid["TerminateOwnInstances"]["Condition"] == {
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


def test_policy_command_prints_the_policies(capsys):
    argv = ["policy", "--region", REGION, "--account", ACCOUNT, "--bucket", "dynalloc-data",
            "--prefix", "prod/v1/", "--kms-key-arn", KEY, "--worker-role-arn", ROLE,
            "--image-id", "ami-0123456789abcdef0", "--subnet-id", "subnet-0123456789abcdef0",
            "--security-group-id", "sg-0123456789abcdef0", "--secret-arn", SECRET,
            "--deployment", "dynalloc-prod"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    scope = PolicyScope(**SCOPE)
    assert printed == {"worker": worker_policy(scope), "launcher": launcher_policy(scope)}
    assert main([*argv, "--which", "worker"]) == 0
    assert json.loads(capsys.readouterr().out) == worker_policy(scope)
    assert main([*argv[:4], "1234", *argv[5:]]) == 2
    assert "account = '1234'" in capsys.readouterr().err
