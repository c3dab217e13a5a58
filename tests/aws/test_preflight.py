"""``python -m dynalloc_dagster.aws preflight`` on moto: the deployment's dagster.yaml,
RunInstances(DryRun) as the launcher role for each market, the storage's bucket/key checks
and a probe object as the worker role, each boot secret; a broken setup fails its check
naming AWS's error."""

from __future__ import annotations

import json

import boto3
import pytest
import yaml
from aws_deployment import DEPLOYMENT
from aws_test_support import ACCOUNT, REGION

from dynalloc_dagster.aws.__main__ import main
from dynalloc_dagster.aws.preflight import PROBE_KEY

PREFIX = "dynalloc/prod"
WORKER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/dynalloc-worker"


@pytest.fixture
def deployment(network, monkeypatch) -> dict[str, str]:
    """The account of docs/aws.md in moto and the daemon host's environment variables."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="dynalloc-preflight")
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    boto3.client("iam", region_name=REGION).create_role(
        RoleName="dynalloc-launcher", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}]}))
    environment = {
        "DYNALLOC_ENV": "aws", "DYNALLOC_S3_BUCKET": "dynalloc-preflight",
        "DYNALLOC_S3_PREFIX": PREFIX, "DYNALLOC_KMS_KEY_ID": key,
        "DYNALLOC_PG_SECRET_ARN": network["secret_arn"],
        "DYNALLOC_EC2_IMAGE_ID": network["image_id"],
        "DYNALLOC_EC2_INSTANCE_TYPE": "c7i.2xlarge",
        "DYNALLOC_EC2_SUBNET_ID": network["subnet_id"],
        "DYNALLOC_EC2_SECURITY_GROUP_ID": network["security_group_id"],
        "DYNALLOC_EC2_INSTANCE_PROFILE_ARN": network["instance_profile_arn"]}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return {**network, "kms_key_arn": key}


def preflight(tmp_path, capsys, spot: bool = False) -> tuple[int, str]:
    config = yaml.safe_load((DEPLOYMENT / "dagster.yaml").read_text())
    config["run_launcher"]["config"]["spot"] = spot
    path = tmp_path / "dagster.yaml"
    path.write_text(yaml.safe_dump(config))
    code = main(["preflight", "--dagster-yaml", str(path), "--launcher-role",
                 f"arn:aws:iam::{ACCOUNT}:role/dynalloc-launcher", "--worker-role", WORKER_ROLE])
    return code, capsys.readouterr().out


def rows(out: str) -> dict[str, tuple[str, str, str]]:
    found = {}
    for line in out.splitlines()[1:-1]:
        check, role, result, detail = line.split(None, 3) if not line.startswith(
            "run_instances") else _run_instances_row(line)
        found[check] = (role, result, detail)
    return found


def _run_instances_row(line: str) -> tuple[str, str, str, str]:
    check, rest = line.split(")", 1)
    role, result, detail = rest.split(None, 2)
    return check + ")", role, result, detail


def test_preflight_passes_on_a_deployment_made_as_the_docs_say(deployment, tmp_path, capsys):
    code, out = preflight(tmp_path, capsys, spot=True)
    found = rows(out)
    assert code == 0, out
    assert set(found) == {"run_instances (spot)", "run_instances (on-demand)",
                          "describe_instances", "bucket_and_key", "write_and_read",
                          "secret:DYNALLOC_PG_URL"}
    assert all(result == "PASS" for _, result, _ in found.values())
    assert found["run_instances (spot)"][0] == "launcher"
    assert found["bucket_and_key"][0] == "worker"
    assert "would start spot c7i.2xlarge in" in found["run_instances (spot)"][2]
    assert f"s3://dynalloc-preflight/{PREFIX}/{PROBE_KEY} written" in found["write_and_read"][2]
    assert "postgresql" not in out  # the secret's value is never printed
    head = boto3.client("s3", region_name=REGION).head_object(
        Bucket="dynalloc-preflight", Key=f"{PREFIX}/{PROBE_KEY}")
    assert head["ServerSideEncryption"] == "aws:kms"
    ec2 = boto3.client("ec2", region_name=REGION)
    assert ec2.describe_instances()["Reservations"] == []  # DryRun started nothing
    assert out.splitlines()[-1] == "6 of 6 checks pass"


def test_preflight_names_what_is_broken(deployment, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DYNALLOC_S3_BUCKET", "no-such-bucket")
    monkeypatch.setenv("DYNALLOC_PG_SECRET_ARN", deployment["secret_arn"] + "-gone")
    code, out = preflight(tmp_path, capsys)
    found = rows(out)
    assert code == 1
    assert found["run_instances (on-demand)"][1] == "PASS"
    assert found["bucket_and_key"][1] == "FAIL"
    assert "NoSuchBucket" in found["bucket_and_key"][2]
    assert found["secret:DYNALLOC_PG_URL"][1] == "FAIL"
    assert "ResourceNotFoundException" in found["secret:DYNALLOC_PG_URL"][2]


def test_preflight_without_a_config_says_so(tmp_path, capsys):
    assert main(["preflight", "--dagster-yaml", str(tmp_path / "none.yaml")]) == 2
    assert "cannot load the deployment from" in capsys.readouterr().err
