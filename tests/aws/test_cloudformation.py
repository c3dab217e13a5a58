"""The deployment's CloudFormation template: the committed file is the generated one, its
policies are the IAM builders', cfn-lint accepts it (and rejects a broken copy), and it
deploys to moto's CloudFormation and deletes with one call."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import boto3
import yaml
from aws_test_support import ACCOUNT, PG_SECRET_VALUE, REGION

from dynalloc_dagster.aws.cloudformation import (
    LOG_GROUP,
    SECRET_NAME,
    TEMPLATE_PATH,
    render,
    template,
)
from dynalloc_dagster.aws.iam import PolicyScope, launcher_policy, worker_policy
from dynalloc_dagster.aws.soc2 import LOG_RETENTION_DAYS


def test_committed_template_is_the_generated_one():
    assert TEMPLATE_PATH.read_text() == render(), (
        "run: python -m dynalloc_dagster.aws cloudformation --write")


def resolve(value, names: dict[str, str]):
    """``value`` with each ``Fn::Sub`` replaced by its string, ``${X}`` from ``names``."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        return re.sub(r"\$\{([^}]+)\}", lambda m: names[m[1]], value["Fn::Sub"])
    if isinstance(value, dict):
        return {k: resolve(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, names) for v in value]
    return value


def test_template_policies_are_the_iam_builders():
    """Substituting a stack's values into the template's policy documents gives exactly
    what worker_policy and launcher_policy build for those values."""
    key = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    role = f"arn:aws:iam::{ACCOUNT}:role/stack-WorkerRole-X1"
    secret = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:dynalloc/pg-url-AbCd"
    names = {"AWS::AccountId": ACCOUNT, "AWS::Region": "eu-west-1", "Key.Arn": key,
             "WorkerRole.Arn": role, "PgSecret": secret, "Bucket": "stack-bucket-x1",
             "Prefix": "prod", "Deployment": "dynalloc-prod", "ImageId": "ami-0123456789abcdef0",
             "SubnetId": "subnet-0123456789abcdef0",
             "SecurityGroup.GroupId": "sg-0123456789abcdef0", "WorkerInstanceType": "c7i.xlarge"}
    scope = PolicyScope(
        region="eu-west-1", account=ACCOUNT, bucket="stack-bucket-x1", prefix="prod",
        kms_key_arn=key, worker_role_arn=role, image_id="ami-0123456789abcdef0",
        subnet_ids=("subnet-0123456789abcdef0",), instance_types=("c7i.xlarge",),
        security_group_ids=("sg-0123456789abcdef0",), secret_arns=(secret,),
        deployment="dynalloc-prod", log_group=LOG_GROUP)
    resources = template()["Resources"]
    assert resolve(resources["WorkerPolicy"]["Properties"]["PolicyDocument"], names) == (
        worker_policy(scope))
    assert resolve(resources["LauncherPolicy"]["Properties"]["PolicyDocument"], names) == (
        launcher_policy(scope))


def test_cfn_lint_accepts_the_template_and_rejects_a_broken_copy(tmp_path):
    """One cfn-lint run over the committed template and a copy whose log group retention
    (2556 days) is not a value CloudWatch Logs allows: only the copy is reported."""
    broken = tmp_path / "broken.yaml"
    document = yaml.safe_load(TEMPLATE_PATH.read_text())
    document["Resources"]["RunLogs"]["Properties"]["RetentionInDays"] = LOG_RETENTION_DAYS - 1
    broken.write_text(yaml.safe_dump(document, sort_keys=False))
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    done = subprocess.run([str(cfn_lint), str(TEMPLATE_PATH), str(broken)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert str(TEMPLATE_PATH) not in done.stdout + done.stderr
    assert done.stdout.startswith("E3030 2556 is not one of [")
    assert f"{broken}:" in done.stdout


def without_the_secret(secret_arn: str) -> str:
    """The template with its PgSecret resource turned into a parameter: moto's
    CloudFormation cannot create AWS::SecretsManager::Secret, so the test creates the
    secret (as the resource's properties say) and the stack refers to it under the same
    logical name."""
    document = yaml.safe_load(TEMPLATE_PATH.read_text())
    secret = document["Resources"].pop("PgSecret")["Properties"]
    assert secret == {"Name": SECRET_NAME, "Description": secret["Description"],
                      "SecretString": {"Ref": "PgUrl"}}
    document["Parameters"]["PgSecret"] = {"Type": "String", "Default": secret_arn}
    return yaml.safe_dump(document, sort_keys=False)


def test_stack_deploys_to_moto_and_deletes(aws):
    """create_stack on moto's server with moto's default VPC, subnet and a registered
    image (the secret made outside the stack: without_the_secret); every resource exists
    as configured; delete_stack removes the stack (the bucket, key and log group are
    retained by design)."""
    ec2 = boto3.client("ec2", region_name=REGION)
    subnet = ec2.describe_subnets()["Subnets"][0]
    image = ec2.register_image(Name="dynalloc", RootDeviceName="/dev/xvda",
                               Architecture="x86_64")["ImageId"]
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secret_arn = secrets.create_secret(Name=SECRET_NAME, SecretString=PG_SECRET_VALUE)["ARN"]
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(
        StackName="dynalloc", TemplateBody=without_the_secret(secret_arn),
        Capabilities=["CAPABILITY_IAM"], Parameters=[
            {"ParameterKey": "ImageId", "ParameterValue": image},
            {"ParameterKey": "VpcId", "ParameterValue": subnet["VpcId"]},
            {"ParameterKey": "SubnetId", "ParameterValue": subnet["SubnetId"]},
            {"ParameterKey": "PgUrl", "ParameterValue": PG_SECRET_VALUE}])
    stack = cloudformation.describe_stacks(StackName="dynalloc")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    out = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in
                cloudformation.describe_stack_resources(StackName="dynalloc")["StackResources"]}
    assert set(physical) == set(template()["Resources"]) - {"PgSecret"}

    s3 = boto3.client("s3", region_name=REGION)
    rule = s3.get_bucket_encryption(Bucket=out["Bucket"])[
        "ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert rule == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": out["KeyArn"]}
    # moto's CloudFormation applies a bucket's encryption and tags only: the public access
    # block is checked in the template (cfn-lint checks its schema)
    assert template()["Resources"]["Bucket"]["Properties"][
        "PublicAccessBlockConfiguration"] == {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                                              "BlockPublicPolicy": True,
                                              "RestrictPublicBuckets": True}
    kms = boto3.client("kms", region_name=REGION)
    assert kms.get_key_rotation_status(KeyId=out["KeyArn"])["KeyRotationEnabled"]
    groups = boto3.client("logs", region_name=REGION).describe_log_groups(
        logGroupNamePrefix=LOG_GROUP)["logGroups"]
    assert [(g["logGroupName"], g["retentionInDays"]) for g in groups] == [
        (LOG_GROUP, LOG_RETENTION_DAYS)]
    assert out["PgSecretArn"] == secret_arn
    assert secrets.get_secret_value(SecretId=out["PgSecretArn"])["SecretString"] == (
        PG_SECRET_VALUE)
    assert secrets.describe_secret(SecretId=out["PgSecretArn"])["Name"] == SECRET_NAME

    iam = boto3.client("iam", region_name=REGION)
    worker_role = physical["WorkerRole"]
    document = iam.get_role_policy(RoleName=worker_role, PolicyName="dynalloc-worker")[
        "PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    actions = {a for s in document["Statement"] for a in s["Action"]}
    assert {"s3:PutObject", "secretsmanager:GetSecretValue", "logs:PutLogEvents"} <= actions
    assert out["KeyArn"] in json.dumps(document)
    daemon_policies = iam.list_role_policies(RoleName=physical["DaemonRole"])["PolicyNames"]
    assert sorted(daemon_policies) == ["dynalloc-launcher", "dynalloc-worker"]
    profile = iam.get_instance_profile(InstanceProfileName=physical["WorkerInstanceProfile"])
    assert profile["InstanceProfile"]["Arn"] == out["WorkerInstanceProfileArn"]
    assert [r["RoleName"] for r in profile["InstanceProfile"]["Roles"]] == [worker_role]

    group = ec2.describe_security_groups(GroupIds=[out["SecurityGroupId"]])["SecurityGroups"][0]
    assert group["IpPermissions"] == []
    # moto's CloudFormation keeps a group's default egress and ignores SecurityGroupEgress:
    # the two egress rules are checked in the template
    egress = template()["Resources"]["SecurityGroup"]["Properties"]["SecurityGroupEgress"]
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in egress] == [
        ("tcp", 443, 443), ("tcp", 5432, 5432)]
    daemon = ec2.describe_instances(InstanceIds=[out["DaemonHostId"]])[
        "Reservations"][0]["Instances"][0]
    assert daemon["ImageId"] == image
    assert daemon["SubnetId"] == subnet["SubnetId"]
    assert daemon["InstanceType"] == "t3.medium"
    # moto's CloudFormation reads an instance's SecurityGroups, not SecurityGroupIds, and
    # ignores MetadataOptions: both are checked in the template
    host = template()["Resources"]["DaemonHost"]["Properties"]
    assert host["SecurityGroupIds"] == [{"Fn::GetAtt": ["SecurityGroup", "GroupId"]}]
    assert host["MetadataOptions"] == {"HttpTokens": "required"}
    assert host["IamInstanceProfile"] == {"Ref": "DaemonInstanceProfile"}

    cloudformation.delete_stack(StackName="dynalloc")
    assert cloudformation.list_stacks(StackStatusFilter=["CREATE_COMPLETE"])[
        "StackSummaries"] == []
    assert ec2.describe_instances(InstanceIds=[out["DaemonHostId"]])[
        "Reservations"][0]["Instances"][0]["State"]["Name"] == "terminated"
    assert out["KeyArn"] in [k["KeyArn"] for k in kms.list_keys()["Keys"]]  # retained
    assert s3.head_bucket(Bucket=out["Bucket"])["ResponseMetadata"]["HTTPStatusCode"] == 200
