"""The SOC2 checker against moto's server (STS, EC2 regions, CloudTrail with its event
selectors, Config recorders, GuardDuty, Security Hub's hub, IAM with its credential
report, s3control, KMS, Logs) and botocore's Stubber where moto lacks the call (Security
Hub's get_enabled_standards, paged; a root user or console user with MFA, which moto
cannot set)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from aws_test_support import ACCOUNT, REGION, moto_client
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from dynalloc_dagster.aws import soc2
from dynalloc_dagster.aws.__main__ import main
from dynalloc_dagster.aws.soc2 import (
    CONTROLS,
    LOG_RETENTION_DAYS,
    check_account,
    format_table,
)

CIS_ARN = f"arn:aws:securityhub:{REGION}::standards/cis-aws-foundations-benchmark/v/3.0.0"


@pytest.fixture(autouse=True)
def no_report_wait(monkeypatch):
    """moto answers the first generate_credential_report with STARTED: poll at once."""
    monkeypatch.setattr(soc2, "REPORT_POLL_SECONDS", 0.0)


def compliant_account() -> None:
    """Configure moto's account so every control moto implements passes."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="audit-logs")
    trail = boto3.client("cloudtrail", region_name=REGION)
    trail.create_trail(Name="org", S3BucketName="audit-logs", IsMultiRegionTrail=True,
                       EnableLogFileValidation=True)
    trail.put_event_selectors(TrailName="org", EventSelectors=[
        {"ReadWriteType": "All", "IncludeManagementEvents": True}])
    trail.start_logging(Name="org")
    config = boto3.client("config", region_name=REGION)
    config.put_configuration_recorder(ConfigurationRecorder={
        "name": "default", "roleARN": f"arn:aws:iam::{ACCOUNT}:role/config",
        "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True}})
    config.put_delivery_channel(DeliveryChannel={"name": "default",
                                                 "s3BucketName": "audit-logs"})
    config.start_configuration_recorder(ConfigurationRecorderName="default")
    boto3.client("guardduty", region_name=REGION).create_detector(Enable=True)
    boto3.client("iam", region_name=REGION).update_account_password_policy(
        MinimumPasswordLength=14, MaxPasswordAge=90)
    moto_client("s3control").put_public_access_block(
        AccountId=ACCOUNT, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})
    boto3.client("ec2", region_name=REGION).enable_ebs_encryption_by_default()
    kms = boto3.client("kms", region_name=REGION)
    kms.enable_key_rotation(KeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="/dynalloc/runs")
    logs.put_retention_policy(logGroupName="/dynalloc/runs", retentionInDays=LOG_RETENTION_DAYS)
    logs.create_log_group(logGroupName="/kept/forever")


class RootMfaOn:
    """moto's IAM for everything but get_account_summary, which a Stubber answers with
    the root user's MFA on (moto cannot turn it on). moto's account has no IAM user, so
    its credential report has no console user."""

    def __init__(self) -> None:
        self._iam = boto3.client("iam", region_name=REGION)
        self._stubbed = boto3.client("iam", region_name=REGION)
        self.stubber = Stubber(self._stubbed)
        self.stubber.add_response("get_account_summary",
                                  {"SummaryMap": {"AccountMFAEnabled": 1}}, {})
        self.stubber.activate()

    def __getattr__(self, name: str):
        return getattr(self._stubbed if name == "get_account_summary" else self._iam, name)


def security_hub_with(standards: list[dict]):
    client = boto3.client("securityhub", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response("describe_hub", {"HubArn": f"arn:aws:securityhub:{REGION}:{ACCOUNT}"
                                                    ":hub/default"}, {})
    stubber.add_response("get_enabled_standards", {"StandardsSubscriptions": standards}, {})
    stubber.activate()
    return client, stubber


def factory(**overrides):
    return lambda service, region: overrides.get(service) or moto_client(service, region)


def by_control(results) -> dict:
    return {r.control: r for r in results}


def test_a_compliant_account_passes_every_control(aws):
    compliant_account()
    hub, hub_stubber = security_hub_with([{
        "StandardsSubscriptionArn": "arn:sub", "StandardsArn": CIS_ARN,
        "StandardsInput": {}, "StandardsStatus": "READY"}])
    root = RootMfaOn()
    results = list(check_account([REGION], client=factory(securityhub=hub, iam=root)))
    hub_stubber.assert_no_pending_responses()
    root.stubber.assert_no_pending_responses()
    assert [r.control for r in results] == [c.name for c in CONTROLS]
    failing = {r.control: r.detail for r in results if not r.passed}
    assert failing == {}
    found = by_control(results)
    assert found["cloudtrail"].detail == (
        "trail org (multi-region, validated, logging, management events)")
    assert found["config_recording"].detail == (
        "recorder default records all supported and global resources")
    assert found["console_users_mfa"].detail == "0 console user(s), all with MFA"
    assert found["kms_key_rotation"].detail == "1 customer managed key(s) rotate"
    assert found["logs_retention"].detail == f"2 log group(s) keep >= {LOG_RETENTION_DAYS} days"
    assert found["securityhub_cis"].detail == "cis-aws-foundations-benchmark/v/3.0.0 ready"
    assert found["iam_password_policy"].region == "global"
    assert found["ebs_default_encryption"].region == REGION
    assert all(r.fix == "" for r in results)


def test_an_empty_account_fails_with_a_fix_for_each_control(aws):
    """A fresh moto account: no trail, recorder, detector, hub, password policy, root MFA,
    public access block or EBS default encryption; a key without rotation and a log group
    kept 30 days."""
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="/short")
    logs.put_retention_policy(logGroupName="/short", retentionInDays=30)
    found = by_control(check_account([REGION], client=factory()))
    assert {name for name, r in found.items() if r.passed} == {"console_users_mfa"}  # no users
    assert found["cloudtrail"].detail == "no trail"
    assert found["config_recording"].detail == "no configuration recorder"
    assert found["guardduty"].detail == "no detector"
    assert found["securityhub_cis"].detail == "Security Hub is not enabled"
    assert found["iam_password_policy"].detail == "no account password policy"
    assert found["root_mfa"].detail == "root user has no MFA"
    assert found["s3_block_public_access"].detail == f"account {ACCOUNT} has no public access block"
    assert found["ebs_default_encryption"].detail == "off"
    assert found["kms_key_rotation"].detail == f"no rotation: {key_id}"
    assert found["logs_retention"].detail == f"under {LOG_RETENTION_DAYS} days: /short (30 d)"
    assert "--retention-in-days 2557" in found["logs_retention"].fix
    assert f"StandardsArn=arn:aws:securityhub:{REGION}::" in found["securityhub_cis"].fix
    assert "--minimum-password-length 14 --max-password-age 90" in (
        found["iam_password_policy"].fix)


def test_partial_settings_name_what_is_wrong(aws):
    boto3.client("iam", region_name=REGION).update_account_password_policy(
        MinimumPasswordLength=8)
    moto_client("s3control").put_public_access_block(
        AccountId=ACCOUNT, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False})
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="audit-logs")
    boto3.client("cloudtrail", region_name=REGION).create_trail(
        Name="one-region", S3BucketName="audit-logs")
    guardduty = boto3.client("guardduty", region_name=REGION)
    guardduty.create_detector(Enable=False)
    hub, _ = security_hub_with([{"StandardsSubscriptionArn": "arn:sub",
                                 "StandardsArn": CIS_ARN, "StandardsInput": {},
                                 "StandardsStatus": "INCOMPLETE"}])
    found = by_control(check_account([REGION], client=factory(securityhub=hub)))
    assert found["iam_password_policy"].detail == (
        "minimum length 8 < 14; maximum age unset > 90 days")
    assert found["s3_block_public_access"].detail == "off: BlockPublicPolicy, RestrictPublicBuckets"
    assert found["cloudtrail"].detail == (
        "no compliant trail: one-region: not multi-region with log file validation")
    assert found["guardduty"].detail == "detectors present but disabled"
    assert found["securityhub_cis"].detail == "the CIS standard is INCOMPLETE"


def test_a_denied_call_fails_its_control_with_the_error(aws):
    hub = boto3.client("securityhub", region_name=REGION)
    stubber = Stubber(hub)
    stubber.add_client_error("describe_hub", "AccessDeniedException", "not authorized")
    stubber.activate()
    found = by_control(check_account([REGION], client=factory(securityhub=hub)))
    assert not found["securityhub_cis"].passed
    assert found["securityhub_cis"].detail == (
        "could not check: AccessDeniedException: not authorized")


def test_regional_controls_run_in_each_region(aws):
    boto3.client("ec2", region_name="eu-west-1").enable_ebs_encryption_by_default()
    results = [r for r in check_account([REGION, "eu-west-1"], client=factory())
               if r.control == "ebs_default_encryption"]
    assert [(r.region, r.passed) for r in results] == [(REGION, False), ("eu-west-1", True)]
    assert "--region us-east-1" in results[0].fix


def test_soc2_command_prints_the_table_and_exits_non_zero_on_failure(aws, capsys, monkeypatch):
    compliant_account()
    monkeypatch.setattr(soc2, "session_clients", lambda session: moto_client)
    assert main(["soc2", "--account", ACCOUNT, "--region", REGION]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["control", "region", "result", "detail"]
    assert any(line.split()[:3] == ["cloudtrail", "global", "PASS"] for line in lines)
    row = next(i for i, line in enumerate(lines) if line.startswith("root_mfa"))
    assert lines[row].split()[:3] == ["root_mfa", "global", "FAIL"]
    assert lines[row + 1].strip().startswith("fix:    sign in as the root user")
    assert lines[-1] == f"9 of {len(CONTROLS)} controls pass"  # root MFA, Security Hub


def test_format_table_marks_each_result():
    from dynalloc_dagster.aws.soc2 import ControlResult
    table = format_table([ControlResult("guardduty", REGION, True, "detector d enabled", ""),
                          ControlResult("root_mfa", "global", False, "no MFA", "add one")])
    assert table.splitlines() == [
        "control    region          result  detail",
        f"guardduty  {REGION:<14}  PASS    detector d enabled",
        "root_mfa   global          FAIL    no MFA",
        "                           fix:    add one",
        "1 of 2 controls pass"]


def test_a_trail_without_management_events_fails(aws):
    """moto's new trail has no event selectors; then one recording data events only, then
    an advanced selector on management events limited to reads."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="audit-logs")
    trail = boto3.client("cloudtrail", region_name=REGION)
    trail.create_trail(Name="org", S3BucketName="audit-logs", IsMultiRegionTrail=True,
                       EnableLogFileValidation=True)
    trail.start_logging(Name="org")

    def cloudtrail_detail() -> str:
        return by_control(check_account([REGION], client=factory()))["cloudtrail"].detail

    missing = "no compliant trail: org: event selectors miss management events"
    assert cloudtrail_detail() == missing
    trail.put_event_selectors(TrailName="org", EventSelectors=[
        {"ReadWriteType": "All", "IncludeManagementEvents": False,
         "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}])
    assert cloudtrail_detail() == missing
    trail.put_event_selectors(TrailName="org", AdvancedEventSelectors=[
        {"Name": "reads", "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Management"]},
            {"Field": "readOnly", "Equals": ["true"]}]}])
    assert cloudtrail_detail() == missing
    trail.put_event_selectors(TrailName="org", AdvancedEventSelectors=[
        {"Name": "management", "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Management"]}]}])
    assert cloudtrail_detail() == "trail org (multi-region, validated, logging, management events)"


def test_config_must_record_global_resources_and_be_recording(aws):
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="audit-logs")
    config = boto3.client("config", region_name=REGION)
    config.put_configuration_recorder(ConfigurationRecorder={
        "name": "default", "roleARN": f"arn:aws:iam::{ACCOUNT}:role/config",
        "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": False}})
    found = by_control(check_account([REGION], client=factory()))
    assert found["config_recording"].detail == (
        "default lacks global resource types, recording")
    assert "includeGlobalResourceTypes=true" in found["config_recording"].fix


def test_security_hub_standards_are_read_on_every_page(aws):
    """The CIS standard on the second page of get_enabled_standards is found."""
    hub = boto3.client("securityhub", region_name=REGION)
    stubber = Stubber(hub)
    stubber.add_response("describe_hub", {"HubArn": "arn:hub"}, {})
    stubber.add_response("get_enabled_standards", {"StandardsSubscriptions": [
        {"StandardsSubscriptionArn": "arn:sub1", "StandardsInput": {},
         "StandardsArn": f"arn:aws:securityhub:{REGION}::standards/aws-foundational-security"
                         "-best-practices/v/1.0.0", "StandardsStatus": "READY"}],
        "NextToken": "page2"}, {})
    stubber.add_response("get_enabled_standards", {"StandardsSubscriptions": [
        {"StandardsSubscriptionArn": "arn:sub2", "StandardsArn": CIS_ARN,
         "StandardsInput": {}, "StandardsStatus": "READY"}]}, {"NextToken": "page2"})
    stubber.activate()
    found = by_control(check_account([REGION], client=factory(securityhub=hub)))
    stubber.assert_no_pending_responses()
    assert found["securityhub_cis"].passed


def test_console_users_without_mfa_fail(aws):
    """moto's credential report: a console user without MFA fails, a user with access
    keys only does not count."""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="a-Long-password-1!")
    iam.create_user(UserName="deploy-bot")
    iam.create_access_key(UserName="deploy-bot")
    found = by_control(check_account([REGION], client=factory()))
    assert found["console_users_mfa"].detail == "console users without MFA: alice"
    assert "--user-name <user>" in found["console_users_mfa"].fix


def test_a_transport_error_fails_its_control_and_the_table_goes_on(aws):
    """An unreachable endpoint (a before-call hook raising botocore's
    EndpointConnectionError) fails GuardDuty with the cause; every other control is
    still checked."""
    guardduty = boto3.client("guardduty", region_name=REGION)

    def unreachable(**_):
        raise EndpointConnectionError(endpoint_url="https://guardduty.us-east-1.amazonaws.com")

    guardduty.meta.events.register("before-call.guardduty.*", unreachable)
    results = list(check_account([REGION], client=factory(guardduty=guardduty)))
    assert [r.control for r in results] == [c.name for c in CONTROLS]
    found = by_control(results)
    assert found["guardduty"].detail == (
        "could not check: EndpointConnectionError: Could not connect to the endpoint URL:"
        ' "https://guardduty.us-east-1.amazonaws.com"')
    assert found["ebs_default_encryption"].detail == "off"


def test_every_enabled_region_is_checked_by_default(aws, capsys, monkeypatch):
    """Without --region the regional controls run in each region describe_regions lists:
    moto lists ~30; a before-call hook answers with two to keep the test fast."""
    assert REGION in soc2.enabled_regions(moto_client, REGION)
    ec2 = moto_client("ec2")
    ec2.meta.events.register("before-call.ec2.DescribeRegions", lambda **_: (
        AWSResponse("https://ec2.invalid", 200, {}, None),
        {"Regions": [{"RegionName": REGION}, {"RegionName": "eu-west-1"}]}))
    monkeypatch.setattr(soc2, "session_clients", lambda session: factory(ec2=ec2))
    assert soc2.main(["--account", ACCOUNT]) == 1
    rows = [line.split()[:2] for line in capsys.readouterr().out.splitlines()
            if line.startswith(("guardduty", "root_mfa"))]
    assert rows == [["guardduty", "eu-west-1"], ["guardduty", REGION], ["root_mfa", "global"]]


@pytest.fixture
def audit_profile(aws, tmp_path) -> dict[str, str]:
    """An AWS config with profile ``audit`` holding credentials of moto account
    111111111111 (from sts:AssumeRole), while the environment's keys are of 123456789012."""
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn="arn:aws:iam::111111111111:role/auditor", RoleSessionName="soc2")["Credentials"]
    config = tmp_path / "aws-config"
    config.write_text(
        "[profile audit]\nregion = us-east-1\n"
        f"aws_access_key_id = {credentials['AccessKeyId']}\n"
        f"aws_secret_access_key = {credentials['SecretAccessKey']}\n"
        f"aws_session_token = {credentials['SessionToken']}\n")
    repo = Path(__file__).resolve().parents[2]
    return {**os.environ, "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "PYTHONPATH": str(repo), "REPO": str(repo)}


def checker(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    script = Path(env["REPO"]) / "utils" / "soc2_compliance_checker.py"
    return subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_checker_script_checks_the_profiles_account_and_writes_json(audit_profile, tmp_path):
    report = tmp_path / "evidence" / "soc2.json"
    done = checker(audit_profile, "--profile", "audit", "--account", "111111111111",
                   "--region", REGION, "--json", str(report))
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[0].split() == ["control", "region", "result", "detail"]
    evidence = json.loads(report.read_text())
    assert evidence["account"] == "111111111111"
    assert evidence["caller_arn"].startswith("arn:aws:sts::111111111111:assumed-role/auditor/")
    assert evidence["profile"] == "audit"
    assert evidence["regions"] == [REGION]
    assert [c["control"] for c in evidence["controls"]] == [c.name for c in CONTROLS]
    assert evidence["compliant"] is False
    assert evidence["passed"] == sum(c["passed"] for c in evidence["controls"])


def test_checker_script_refuses_another_account(audit_profile):
    done = checker(audit_profile, "--profile", "audit", "--account", ACCOUNT,
                   "--region", REGION)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "the credentials are of account 111111111111" in done.stderr
    assert f"not --account {ACCOUNT}" in done.stderr
    missing = checker(audit_profile, "--profile", "nobody", "--account", ACCOUNT)
    assert missing.returncode == 2
    assert "nobody" in missing.stderr
