"""The requests the code sends, checked against the policies it prints (moto evaluates no
IAM): every authorization of every recorded call (tests/aws/policy_check.py) must be
allowed by the worker or launcher policy, conditions included; the evaluator itself is
checked on hand-made cases, and on the requests a real account refused before this was
fixed (a HeadBucket under a prefix-scoped listing, a RunInstances leaving its network
interface untagged)."""

from __future__ import annotations

import sys

import boto3
import dagster as dg
import pytest
from aws_test_support import ACCOUNT, PG_SECRET_VALUE, REGION, create_run, launcher_config
from botocore.stub import Stubber
from dagster_aws.s3 import S3Resource
from policy_check import Authorization, Call, Facts, RequestRecorder, denied, evaluate

from dynalloc_dagster.aws.ec2_run_launcher import Ec2RunLauncher
from dynalloc_dagster.aws.iam import PolicyScope, launcher_policy, worker_policy
from dynalloc_dagster.aws.user_data import _READ_SECRET
from dynalloc_dagster.bedrock.client import BedrockClient, TokenPrice
from dynalloc_dagster.bedrock.resource import DEFAULT_MODEL_ID
from dynalloc_dagster.storage import ObjectNotFoundError, S3Storage
from dynalloc_dagster.storage.lease import Lease, S3LeaseStore

PREFIX = "dynalloc/prod"


@pytest.fixture
def account(network, aws) -> dict[str, str]:
    """The network fixture's image, subnet, group, profile and secret, plus a bucket and
    a KMS key."""
    bucket = "dynalloc-policy-test"
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    return {**network, "bucket": bucket, "kms_key_arn": key}


def scope_of(account: dict[str, str], **overrides) -> PolicyScope:
    return PolicyScope(**{
        "region": REGION, "account": ACCOUNT, "bucket": account["bucket"], "prefix": PREFIX,
        "kms_key_arn": account["kms_key_arn"],
        "worker_role_arn": f"arn:aws:iam::{ACCOUNT}:role/dynalloc-worker",
        "image_id": account["image_id"], "subnet_ids": (account["subnet_id"],),
        "instance_types": ("c7i.2xlarge",),
        "security_group_ids": (account["security_group_id"],),
        "secret_arns": (account["secret_arn"],), "deployment": "dynalloc", "spot": True,
        "bedrock_model_id": DEFAULT_MODEL_ID, **overrides})


def facts_of(account: dict[str, str]) -> Facts:
    ec2 = boto3.client("ec2", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    kms = boto3.client("kms", region_name=REGION)

    def role_of_profile(arn: str) -> str:
        profile = iam.get_instance_profile(InstanceProfileName=arn.rsplit("/", 1)[1])
        return profile["InstanceProfile"]["Roles"][0]["Arn"]

    def tags_of_instance(instance_id: str) -> dict[str, str]:
        found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]
        return {t["Key"]: t["Value"] for t in found["Instances"][0].get("Tags", [])}

    return Facts(account=ACCOUNT, key_arn=account["kms_key_arn"],
                 role_of_profile=role_of_profile, tags_of_instance=tags_of_instance,
                 key_arn_of=lambda key: kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"])


def converse_reply() -> dict:
    return {"output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
            "stopReason": "end_turn", "usage": {"inputTokens": 3, "outputTokens": 1,
                                                "totalTokens": 4},
            "metrics": {"latencyMs": 5}}


def test_every_request_of_a_worker_is_allowed_by_the_worker_policy(account, monkeypatch,
                                                                   capsys):
    recorder = RequestRecorder()
    with recorder.recording():
        store = S3Storage(bucket=account["bucket"], prefix=PREFIX,
                          kms_key_id=account["kms_key_arn"], s3=S3Resource())
        store.verify()
        many = {f"ev/s{i:02d}.parquet": b"x" for i in range(25)}
        store.put_many({"a.parquet": b"alpha", **many})
        assert store.get("a.parquet") == b"alpha"
        with pytest.raises(ObjectNotFoundError):
            store.get("absent.parquet")
        assert store.missing(["a.parquet", "b.parquet"]) == ["b.parquet"]
        assert store.missing([*many, "ev/zz.parquet"]) == ["ev/zz.parquet"]
        assert len(store.list_keys("ev")) == 25
        # the data-root lease: taken, read, taken over and given back
        leases = S3LeaseStore(store)
        holder = Lease(pipeline_id="p", kind="pipeline", run_id="p", job_name="j",
                       started_at="2026-12-07T00:00:00+00:00", host="h", pid=1)
        assert leases.swap(holder, None)
        assert leases.swap(holder, leases.read()[1])
        assert leases.swap(None, leases.read()[1]) and leases.read() == (None, None)
        # the user data's secret read, as the instance runs it at boot
        monkeypatch.setattr(sys, "argv", ["-c", account["secret_arn"]])
        exec(_READ_SECRET, {})
        assert capsys.readouterr().out == PG_SECRET_VALUE
        bedrock = BedrockClient(DEFAULT_MODEL_ID, region=REGION,
                                price=TokenPrice(0.003, 0.015), max_tokens=256,
                                temperature=0.0)
        with Stubber(bedrock.runtime) as stub:
            stub.add_response("converse", converse_reply())
            assert bedrock.converse("hello", system="be brief").content == ({"text": "ok"},)
    calls = {f"{c.service}.{c.operation}" for c in recorder.calls}
    assert calls >= {"s3.ListObjectsV2", "s3.PutObject", "s3.GetObject", "s3.DeleteObject",
                     "kms.DescribeKey",
                     "secretsmanager.GetSecretValue", "bedrock-runtime.Converse"}
    assert denied(worker_policy(scope_of(account)), recorder.calls, facts_of(account)) == []


def test_every_request_of_the_launcher_is_allowed_by_the_launcher_policy(account, monkeypatch):
    monkeypatch.setenv("DYNALLOC_ENV", "aws")
    monkeypatch.setenv("DYNALLOC_S3_BUCKET", account["bucket"])
    recorder = RequestRecorder()
    with recorder.recording(), dg.instance_for_test() as instance:
        launcher = Ec2RunLauncher(**launcher_config(account, spot=True))
        launcher.register_instance(instance)
        # a spot launch whose run never starts: the start-timeout path terminates it
        stuck = create_run(instance, status=dg.DagsterRunStatus.STARTING)
        launcher.launch_run(dg_context(stuck))
        assert "terminated it" in launcher.get_run_worker_debug_info(
            instance.get_run_by_id(stuck.run_id))
        # an on-demand launch whose run is canceled
        on_demand = Ec2RunLauncher(**launcher_config(account))
        on_demand.register_instance(instance)
        run = create_run(instance, status=dg.DagsterRunStatus.STARTED)
        on_demand.launch_run(dg_context(run))
        assert on_demand.terminate(run.run_id)
    calls = {f"{c.service}.{c.operation}" for c in recorder.calls}
    assert calls >= {"ec2.RunInstances", "ec2.DescribeInstances", "ec2.TerminateInstances",
                     "ec2.GetConsoleOutput"}
    spot = [c for c in recorder.calls if c.operation == "RunInstances"
            and c.params.get("InstanceMarketOptions")]
    assert spot, "the fixture must reach a spot launch"
    assert denied(launcher_policy(scope_of(account)), recorder.calls, facts_of(account)) == []


def dg_context(run: dg.DagsterRun):
    from dagster._core.launcher import LaunchRunContext

    return LaunchRunContext(dagster_run=run, workspace=None)


# -- what a real account refused before, refused here too -----------------------------------

def test_a_head_bucket_under_a_prefix_scoped_listing_is_denied(account):
    call = Call("s3", "HeadBucket", {"Bucket": account["bucket"]}, REGION)
    problems = denied(worker_policy(scope_of(account)), [call], facts_of(account))
    assert problems and "s3:ListBucket" in problems[0]


def test_an_untagged_network_interface_is_denied(account):
    tags = [{"Key": "dynalloc/deployment", "Value": "dynalloc"}]
    params = {"ImageId": account["image_id"], "InstanceType": "c7i.2xlarge",
              "SubnetId": account["subnet_id"], "MinCount": 1, "MaxCount": 1,
              "MetadataOptions": {"HttpTokens": "required"},
              "TagSpecifications": [{"ResourceType": kind, "Tags": tags}
                                    for kind in ("instance", "volume")]}
    problems = denied(launcher_policy(scope_of(account)),
                      [Call("ec2", "RunInstances", params, REGION)], facts_of(account))
    assert problems and all("network-interface" in p for p in problems)
    wrong_type = {**params, "InstanceType": "p5.48xlarge"}
    imds_v1 = {**params, "MetadataOptions": {"HttpTokens": "optional"}}
    for bad in (wrong_type, imds_v1):
        assert any("instance/*" in p for p in denied(
            launcher_policy(scope_of(account)), [Call("ec2", "RunInstances", bad, REGION)],
            facts_of(account)))


def test_a_kms_call_not_through_s3_is_denied(account):
    direct = Authorization("kms.Decrypt", "kms:Decrypt", account["kms_key_arn"])
    via_s3 = Authorization("kms.Decrypt", "kms:Decrypt", account["kms_key_arn"],
                           {"kms:ViaService": f"s3.{REGION}.amazonaws.com"})
    policy = worker_policy(scope_of(account))
    assert not evaluate(policy, direct) and evaluate(policy, via_s3)
    assert not evaluate(policy, Authorization("kms.Encrypt", "kms:Encrypt",
                                              account["kms_key_arn"]))


# -- the evaluator on hand-made cases ---------------------------------------------------------

def allow(condition: dict, resource: str = "arn:aws:s3:::b") -> dict:
    return {"Statement": [{"Effect": "Allow", "Action": ["s3:ListBucket"],
                           "Resource": [resource], "Condition": condition}]}


def ask(context: dict, resource: str = "arn:aws:s3:::b") -> Authorization:
    return Authorization("t", "s3:ListBucket", resource, context)


@pytest.mark.parametrize("condition, context, allowed", [
    ({"StringEquals": {"k": "v"}}, {"k": "v"}, True),
    ({"StringEquals": {"k": "v"}}, {"k": "V"}, False),
    ({"StringEquals": {"k": "v"}}, {}, False),
    ({"StringEquals": {"k": ["a", "v"]}}, {"K": "v"}, True),  # keys are case-insensitive
    ({"StringEqualsIfExists": {"k": "v"}}, {}, True),
    ({"StringLike": {"s3:prefix": ["p", "p/*"]}}, {"s3:prefix": "p/x/y"}, True),
    ({"StringLike": {"s3:prefix": ["p", "p/*"]}}, {"s3:prefix": "px"}, False),
    ({"StringLike": {"s3:prefix": ["p", "p/*"]}}, {}, False),
    ({"ArnLike": {"a": "arn:aws:iam::1:role/*"}}, {"a": "arn:aws:iam::1:role/x"}, True),
    ({"ArnLike": {"a": "arn:aws:iam::1:role/*"}}, {"a": "arn:aws:iam::2:role/x"}, False),
    ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "True"}, True),
    ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "false"}, False),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}},
     {"aws:TagKeys": ["a"]}, True),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}},
     {"aws:TagKeys": ["a", "c"]}, False),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {}, True),
    ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, {"aws:TagKeys": ["c", "a"]}, True),
    ({"StringEquals": {"k": "v"}, "Bool": {"b": "true"}}, {"k": "v", "b": "false"}, False),
])
def test_the_evaluator_decides_conditions(condition, context, allowed):
    assert evaluate(allow(condition), ask(context)) is allowed


def test_the_evaluator_matches_actions_resources_and_lets_deny_win():
    policy = allow({})
    assert evaluate(policy, ask({}))
    assert not evaluate(policy, ask({}, resource="arn:aws:s3:::other"))
    assert not evaluate(policy, Authorization("t", "s3:GetObject", "arn:aws:s3:::b"))
    policy["Statement"].append({"Effect": "Deny", "Action": "s3:*", "Resource": "*"})
    assert not evaluate(policy, ask({}))


def test_the_evaluator_refuses_an_operator_it_does_not_know():
    with pytest.raises(ValueError, match="NumericLessThan is not implemented"):
        evaluate(allow({"NumericLessThan": {"k": "1"}}), ask({"k": "0"}))
