"""The CloudFormation template of a deployment (deployment/aws/cloudformation.yaml),
rendered from the IAM policy builders so the roles it creates carry exactly the policies
``python -m dynalloc_dagster.aws policy`` prints.

The policies are built once with sentinel values standing for what the stack decides
(its account, region, bucket, key, secret, worker role, security group) or takes as
parameters (image, subnet, instance type, prefix, deployment tag); each string holding a
sentinel becomes an ``Fn::Sub`` of the matching ``${...}`` reference.
``python -m dynalloc_dagster.aws cloudformation`` prints the template; a test checks the
committed file is that output. docs/aws.md says how to deploy and delete the stack.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from dynalloc_dagster.aws.iam import PolicyScope, launcher_policy, worker_policy
from dynalloc_dagster.aws.soc2 import LOG_RETENTION_DAYS

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "deployment" / "aws" / "cloudformation.yaml"
LOG_GROUP = "/dynalloc/runs"
SECRET_NAME = "dynalloc/pg-url"

_ACCOUNT, _REGION = "000000000000", "zz-sentinel-9"
_KEY = f"arn:aws:kms:{_REGION}:{_ACCOUNT}:key/00000000-0000-0000-0000-000000000000"
_ROLE = f"arn:aws:iam::{_ACCOUNT}:role/sentinel-worker-role"
_SECRET = f"arn:aws:secretsmanager:{_REGION}:{_ACCOUNT}:secret:sentinel-secret"
_SENTINELS = {  # full ARNs first: they contain the account and region sentinels
    _KEY: "${Key.Arn}",
    _ROLE: "${WorkerRole.Arn}",
    _SECRET: "${PgSecret}",
    "sentinel-bucket": "${Bucket}",
    "sentinel-prefix": "${Prefix}",
    "sentinel-deployment": "${Deployment}",
    "ami-00000000": "${ImageId}",
    "subnet-00000000": "${SubnetId}",
    "sg-00000000": "${SecurityGroup.GroupId}",
    "sentinel9.type": "${WorkerInstanceType}",
    _ACCOUNT: "${AWS::AccountId}",
    _REGION: "${AWS::Region}",
}
_SCOPE = PolicyScope(
    region=_REGION, account=_ACCOUNT, bucket="sentinel-bucket", prefix="sentinel-prefix",
    kms_key_arn=_KEY, worker_role_arn=_ROLE,
    image_id="ami-00000000", subnet_ids=("subnet-00000000",),
    instance_types=("sentinel9.type",), security_group_ids=("sg-00000000",),
    secret_arns=(_SECRET,), deployment="sentinel-deployment",
    log_group=LOG_GROUP, spot=True)


def substituted(value: Any) -> Any:
    """``value`` with every string holding a sentinel replaced by ``{"Fn::Sub": ...}``."""
    if isinstance(value, dict):
        return {key: substituted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [substituted(item) for item in value]
    if isinstance(value, str) and any(s in value for s in _SENTINELS):
        for sentinel, reference in _SENTINELS.items():
            value = value.replace(sentinel, reference)
        return {"Fn::Sub": value}
    return value


def _retained(resource: dict[str, Any]) -> dict[str, Any]:
    """Kept when the stack is deleted or the resource replaced (audit data and its key)."""
    return {**resource, "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}


def _ec2_role(description: str) -> dict[str, Any]:
    return {"Type": "AWS::IAM::Role", "Properties": {
        "Description": description,
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
             "Action": "sts:AssumeRole"}]}}}


def template() -> dict[str, Any]:
    """The template: parameters, resources and the outputs to export as DYNALLOC_*."""
    parameters = {
        "Prefix": {"Type": "String", "Default": "dynalloc",
                   "AllowedPattern": r"^[A-Za-z0-9!_.'()-][A-Za-z0-9!_.'()/-]*[A-Za-z0-9!_.'()-]$",
                   "Description": "key prefix of the data in the bucket (DYNALLOC_S3_PREFIX)"},
        "Deployment": {"Type": "String", "Default": "dynalloc", "AllowedPattern": r"^[^*]+$",
                       "Description": "value of the dynalloc/deployment tag"},
        "ImageId": {"Type": "AWS::EC2::Image::Id",
                    "Description": "the image of the daemon host and the workers"},
        "VpcId": {"Type": "AWS::EC2::VPC::Id"},
        "SubnetId": {"Type": "AWS::EC2::Subnet::Id",
                     "Description": "private subnet of the daemon host and the workers"},
        "WorkerInstanceType": {"Type": "String", "Default": "c7i.xlarge"},
        "DaemonInstanceType": {"Type": "String", "Default": "t3.medium"},
        "PgUrl": {"Type": "String", "NoEcho": True,
                  "AllowedPattern": r"^postgresql\+psycopg2://.+$",
                  "Description": "postgresql+psycopg2://user:password@host:5432/dagster"},
    }
    resources: dict[str, Any] = {
        "Key": _retained({"Type": "AWS::KMS::Key", "Properties": {
            "Description": "dynalloc data (S3 SSE-KMS)", "EnableKeyRotation": True,
            "KeyPolicy": {"Version": "2012-10-17", "Statement": [
                {"Sid": "TheAccountAdministersTheKey", "Effect": "Allow",
                 "Principal": {"AWS": {"Fn::Sub": "arn:aws:iam::${AWS::AccountId}:root"}},
                 "Action": "kms:*", "Resource": "*"}]}}}),
        "Bucket": _retained({"Type": "AWS::S3::Bucket", "Properties": {
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms",
                    "KMSMasterKeyID": {"Fn::GetAtt": ["Key", "Arn"]}},
                 "BucketKeyEnabled": True}]},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True, "IgnorePublicAcls": True,
                "BlockPublicPolicy": True, "RestrictPublicBuckets": True},
            "VersioningConfiguration": {"Status": "Enabled"}}}),
        "RunLogs": _retained({"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": LOG_GROUP, "RetentionInDays": LOG_RETENTION_DAYS}}),
        "PgSecret": {"Type": "AWS::SecretsManager::Secret", "Properties": {
            "Name": SECRET_NAME, "Description": "the PostgreSQL URL of Dagster's storage",
            "SecretString": {"Ref": "PgUrl"}}},
        "SecurityGroup": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
            "GroupDescription": "dynalloc daemon host and workers: egress 443 and 5432 only",
            "VpcId": {"Ref": "VpcId"},
            "SecurityGroupEgress": [
                {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "CidrIp": "0.0.0.0/0",
                 "Description": what}
                for port, what in ((443, "AWS APIs"), (5432, "PostgreSQL"))]}},
        "WorkerRole": _ec2_role("dynalloc run workers"),
        "WorkerPolicy": {"Type": "AWS::IAM::Policy", "Properties": {
            "PolicyName": "dynalloc-worker",
            "PolicyDocument": substituted(worker_policy(_SCOPE)),
            "Roles": [{"Ref": "WorkerRole"}, {"Ref": "DaemonRole"}]}},
        "WorkerInstanceProfile": {"Type": "AWS::IAM::InstanceProfile",
                                  "Properties": {"Roles": [{"Ref": "WorkerRole"}]}},
        "DaemonRole": _ec2_role("dynalloc daemon host (launches the workers)"),
        "LauncherPolicy": {"Type": "AWS::IAM::Policy", "Properties": {
            "PolicyName": "dynalloc-launcher",
            "PolicyDocument": substituted(launcher_policy(_SCOPE)),
            "Roles": [{"Ref": "DaemonRole"}]}},
        "DaemonInstanceProfile": {"Type": "AWS::IAM::InstanceProfile",
                                  "Properties": {"Roles": [{"Ref": "DaemonRole"}]}},
        "DaemonHost": {"Type": "AWS::EC2::Instance", "Properties": {
            "ImageId": {"Ref": "ImageId"}, "InstanceType": {"Ref": "DaemonInstanceType"},
            "SubnetId": {"Ref": "SubnetId"},
            "SecurityGroupIds": [{"Fn::GetAtt": ["SecurityGroup", "GroupId"]}],
            "IamInstanceProfile": {"Ref": "DaemonInstanceProfile"},
            "MetadataOptions": {"HttpTokens": "required"},
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {
                "Encrypted": True, "VolumeSize": 30, "VolumeType": "gp3"}}],
            "Tags": [{"Key": "Name", "Value": "dynalloc-daemon"}]}},
    }
    outputs = {name: {"Description": variable, "Value": value} for name, variable, value in (
        ("Bucket", "DYNALLOC_S3_BUCKET", {"Ref": "Bucket"}),
        ("KeyArn", "DYNALLOC_KMS_KEY_ID", {"Fn::GetAtt": ["Key", "Arn"]}),
        ("PgSecretArn", "DYNALLOC_PG_SECRET_ARN", {"Ref": "PgSecret"}),
        ("WorkerInstanceProfileArn", "DYNALLOC_EC2_INSTANCE_PROFILE_ARN",
         {"Fn::GetAtt": ["WorkerInstanceProfile", "Arn"]}),
        ("SecurityGroupId", "DYNALLOC_EC2_SECURITY_GROUP_ID",
         {"Fn::GetAtt": ["SecurityGroup", "GroupId"]}),
        ("DaemonHostId", "the daemon host's instance id", {"Ref": "DaemonHost"}))}
    return {"AWSTemplateFormatVersion": "2010-09-09",
            "Description": "dynalloc on AWS: bucket, key, roles, security group, run log"
                           " group, PostgreSQL URL secret and daemon host (docs/aws.md)",
            "Parameters": parameters, "Resources": resources, "Outputs": outputs}


def render() -> str:
    """The template as the YAML committed at deployment/aws/cloudformation.yaml."""
    header = ("# Generated by `python -m dynalloc_dagster.aws cloudformation --write`"
              " from dynalloc_dagster/aws/cloudformation.py; do not edit.\n")
    return header + yaml.safe_dump(template(), sort_keys=False, width=100)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("cloudformation", help="print the deployment's CloudFormation"
                            " template (--write: update deployment/aws/cloudformation.yaml)")
    parser.add_argument("--write", action="store_true",
                        help=f"write {TEMPLATE_PATH.name} instead of printing it")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.write:
        TEMPLATE_PATH.write_text(render())
        print(f"wrote {TEMPLATE_PATH}")
    else:
        sys.stdout.write(render())
    return 0
