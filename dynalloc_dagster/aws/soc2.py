"""The SOC2 pre-deployment checker: read-only boto3 calls against an AWS account, a
PASS/FAIL table with the fix of each failing control, exit code 1 if any control fails.

``python -m dynalloc_dagster.aws soc2 [--region R ...]`` (docs/aws.md). Controls:

=========================  ======  ====================================================
control                    scope   passes when
=========================  ======  ====================================================
cloudtrail                 global  a multi-region trail is logging, with log file
                                   validation
config_recording           region  a configuration recorder records all supported
                                   resources and is recording
guardduty                  region  a GuardDuty detector is ENABLED
securityhub_cis            region  Security Hub is enabled with a CIS AWS Foundations
                                   standard READY
iam_password_policy        global  minimum length >= 14, maximum age <= 90 days
root_mfa                   global  the account summary's AccountMFAEnabled is 1
s3_block_public_access     global  all four account-level settings are on (s3control)
ebs_default_encryption     region  EBS encryption by default is on
kms_key_rotation           region  every enabled symmetric customer managed key rotates
logs_retention             region  every log group keeps events >= 2557 days (7 years)
                                   or never expires
=========================  ======  ====================================================

A call the caller may not make (AccessDenied and the like) fails its control with the
error named: the check could not show the control holds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

MIN_PASSWORD_LENGTH = 14
MAX_PASSWORD_AGE_DAYS = 90
LOG_RETENTION_DAYS = 2557  # 7 years of 365.25 days, rounded up
CIS_STANDARD = "cis-aws-foundations-benchmark"

ClientFactory = Callable[[str, str], Any]
"""(service, region) -> a boto3 client."""


@dataclass(frozen=True)
class ControlResult:
    """One control's outcome in one region (``"global"`` for account-wide controls)."""

    control: str
    region: str
    passed: bool
    detail: str
    fix: str


@dataclass(frozen=True)
class _Control:
    name: str
    regional: bool
    check: Callable[[ClientFactory, str], tuple[bool, str]]
    fix: str


def _cloudtrail(client: ClientFactory, region: str) -> tuple[bool, str]:
    cloudtrail = client("cloudtrail", region)
    trails = cloudtrail.describe_trails(includeShadowTrails=True)["trailList"]
    for trail in trails:
        if trail.get("IsMultiRegionTrail") and trail.get("LogFileValidationEnabled"):
            if cloudtrail.get_trail_status(Name=trail["TrailARN"]).get("IsLogging"):
                return True, f"trail {trail['Name']} (multi-region, validated, logging)"
    if not trails:
        return False, "no trail"
    return False, ("no trail is multi-region, validated and logging: "
                   + ", ".join(t["Name"] for t in trails))


def _config(client: ClientFactory, region: str) -> tuple[bool, str]:
    config = client("config", region)
    recorders = config.describe_configuration_recorders()["ConfigurationRecorders"]
    if not recorders:
        return False, "no configuration recorder"
    statuses = {s["name"]: s for s in
                config.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]}
    for recorder in recorders:
        everything = recorder.get("recordingGroup", {}).get("allSupported", False)
        recording = statuses.get(recorder["name"], {}).get("recording", False)
        if everything and recording:
            return True, f"recorder {recorder['name']} records all supported resources"
    return False, "no recorder both records all supported resources and is recording"


def _guardduty(client: ClientFactory, region: str) -> tuple[bool, str]:
    guardduty = client("guardduty", region)
    detectors = guardduty.list_detectors()["DetectorIds"]
    for detector in detectors:
        if guardduty.get_detector(DetectorId=detector)["Status"] == "ENABLED":
            return True, f"detector {detector} enabled"
    return False, "no detector" if not detectors else "detectors present but disabled"


def _securityhub(client: ClientFactory, region: str) -> tuple[bool, str]:
    hub = client("securityhub", region)
    try:
        hub.describe_hub()
    except ClientError as error:
        if error.response["Error"]["Code"] in {"InvalidAccessException",
                                               "ResourceNotFoundException"}:
            return False, "Security Hub is not enabled"
        raise
    standards = hub.get_enabled_standards()["StandardsSubscriptions"]
    cis = [s for s in standards if CIS_STANDARD in s["StandardsArn"]]
    ready = [s for s in cis if s.get("StandardsStatus") == "READY"]
    if ready:
        return True, f"{ready[0]['StandardsArn'].split('/', 1)[1]} ready"
    return False, ("the CIS standard is " + cis[0].get("StandardsStatus", "?") if cis
                   else "enabled without the CIS AWS Foundations standard")


def _password_policy(client: ClientFactory, region: str) -> tuple[bool, str]:
    try:
        policy = client("iam", region).get_account_password_policy()["PasswordPolicy"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchEntity":
            return False, "no account password policy"
        raise
    length = policy.get("MinimumPasswordLength", 0)
    age = policy.get("MaxPasswordAge")
    problems = []
    if length < MIN_PASSWORD_LENGTH:
        problems.append(f"minimum length {length} < {MIN_PASSWORD_LENGTH}")
    if not age or age > MAX_PASSWORD_AGE_DAYS:
        problems.append(f"maximum age {age or 'unset'} > {MAX_PASSWORD_AGE_DAYS} days")
    return (not problems, "; ".join(problems)
            or f"minimum length {length}, maximum age {age} days")


def _root_mfa(client: ClientFactory, region: str) -> tuple[bool, str]:
    summary = client("iam", region).get_account_summary()["SummaryMap"]
    enabled = summary.get("AccountMFAEnabled") == 1
    return enabled, "root user has MFA" if enabled else "root user has no MFA"


def _block_public_access(client: ClientFactory, region: str) -> tuple[bool, str]:
    account = client("sts", region).get_caller_identity()["Account"]
    try:
        settings = client("s3control", region).get_public_access_block(
            AccountId=account)["PublicAccessBlockConfiguration"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration":
            return False, f"account {account} has no public access block"
        raise
    off = sorted(name for name in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                   "RestrictPublicBuckets") if not settings.get(name))
    return (not off, f"off: {', '.join(off)}" if off else f"account {account}: all four on")


def _ebs_encryption(client: ClientFactory, region: str) -> tuple[bool, str]:
    enabled = client("ec2", region).get_ebs_encryption_by_default()["EbsEncryptionByDefault"]
    return enabled, "on" if enabled else "off"


def _kms_rotation(client: ClientFactory, region: str) -> tuple[bool, str]:
    kms = client("kms", region)
    not_rotating, checked = [], 0
    for page in kms.get_paginator("list_keys").paginate():
        for key in page["Keys"]:
            meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
            if (meta.get("KeyManager") != "CUSTOMER" or meta.get("KeyState") != "Enabled"
                    or meta.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT"
                    or meta.get("Origin", "AWS_KMS") != "AWS_KMS"):
                continue
            checked += 1
            if not kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]:
                not_rotating.append(key["KeyId"])
    if not_rotating:
        return False, f"no rotation: {', '.join(not_rotating)}"
    return True, f"{checked} customer managed key(s) rotate"


def _logs_retention(client: ClientFactory, region: str) -> tuple[bool, str]:
    short, checked = [], 0
    for page in client("logs", region).get_paginator("describe_log_groups").paginate():
        for group in page["logGroups"]:
            checked += 1
            days = group.get("retentionInDays")  # absent: never expires
            if days is not None and days < LOG_RETENTION_DAYS:
                short.append(f"{group['logGroupName']} ({days} d)")
    if short:
        return False, f"under {LOG_RETENTION_DAYS} days: {', '.join(short)}"
    return True, f"{checked} log group(s) keep >= {LOG_RETENTION_DAYS} days"


CONTROLS: tuple[_Control, ...] = (
    _Control("cloudtrail", False, _cloudtrail,
             "aws cloudtrail create-trail --name <trail> --s3-bucket-name <log bucket>"
             " --is-multi-region-trail --enable-log-file-validation &&"
             " aws cloudtrail start-logging --name <trail>"),
    _Control("config_recording", True, _config,
             "aws configservice put-configuration-recorder --configuration-recorder"
             " name=default,roleARN=<config role> --recording-group allSupported=true,"
             "includeGlobalResourceTypes=true; put-delivery-channel; aws configservice"
             " start-configuration-recorder --configuration-recorder-name default"),
    _Control("guardduty", True, _guardduty, "aws guardduty create-detector --enable"),
    _Control("securityhub_cis", True, _securityhub,
             "aws securityhub enable-security-hub && aws securityhub batch-enable-standards"
             " --standards-subscription-requests StandardsArn=arn:aws:securityhub:<region>::"
             "standards/cis-aws-foundations-benchmark/v/3.0.0"),
    _Control("iam_password_policy", False, _password_policy,
             f"aws iam update-account-password-policy --minimum-password-length"
             f" {MIN_PASSWORD_LENGTH} --max-password-age {MAX_PASSWORD_AGE_DAYS}"
             " --require-symbols --require-numbers --require-uppercase-characters"
             " --require-lowercase-characters --password-reuse-prevention 24"),
    _Control("root_mfa", False, _root_mfa,
             "sign in as the root user, IAM > Security credentials > Assign MFA device"
             " (hardware key or authenticator; no API can do it)"),
    _Control("s3_block_public_access", False, _block_public_access,
             "aws s3control put-public-access-block --account-id <account>"
             " --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,"
             "BlockPublicPolicy=true,RestrictPublicBuckets=true"),
    _Control("ebs_default_encryption", True, _ebs_encryption,
             "aws ec2 enable-ebs-encryption-by-default --region <region>"),
    _Control("kms_key_rotation", True, _kms_rotation,
             "aws kms enable-key-rotation --key-id <key id> (each key listed)"),
    _Control("logs_retention", True, _logs_retention,
             f"aws logs put-retention-policy --log-group-name <group>"
             f" --retention-in-days {LOG_RETENTION_DAYS} (each group listed)"),
)


def boto3_clients(service: str, region: str) -> Any:
    """The default client factory: boto3's credential chain and endpoints."""
    return boto3.client(service, region_name=region)


def check_account(
    regions: Sequence[str], *, client: ClientFactory = boto3_clients,
) -> Iterator[ControlResult]:
    """Every control: account-wide ones once (through the first region), regional ones in
    each region. A ClientError fails the control with the error named."""
    if not regions:
        raise ValueError("check_account needs at least one region")
    for control in CONTROLS:
        for region in regions if control.regional else regions[:1]:
            where = region if control.regional else "global"
            try:
                passed, detail = control.check(client, region)
            except ClientError as error:
                err = error.response.get("Error", {})
                passed, detail = False, (f"could not check: {err.get('Code', '?')}:"
                                         f" {err.get('Message', '')}".rstrip(": "))
            yield ControlResult(control.name, where, passed, detail,
                                "" if passed else control.fix.replace("<region>", region))


def format_table(results: Sequence[ControlResult]) -> str:
    """A fixed-width PASS/FAIL table; each failing control is followed by its fix."""
    width = max([len(r.control) for r in results] + [len("control")])
    lines = [f"{'control':<{width}}  {'region':<14}  result  detail"]
    for r in results:
        lines.append(f"{r.control:<{width}}  {r.region:<14}  {'PASS' if r.passed else 'FAIL':<6}"
                     f"  {r.detail}")
        if not r.passed:
            lines.append(f"{'':<{width}}  {'':<14}  fix:    {r.fix}")
    passed = sum(r.passed for r in results)
    lines.append(f"{passed} of {len(results)} controls pass")
    return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("soc2", help="check an AWS account's SOC2 controls")
    parser.add_argument("--region", action="append", default=[],
                        help="region to check (repeat; default: boto3's region)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the table; 0 if every control passes, 1 if any fails, 2 if AWS is unreachable."""
    regions = args.region or [boto3.session.Session().region_name or ""]
    if not regions[0]:
        print("error: no region: pass --region or set AWS_REGION", file=sys.stderr)
        return 2
    try:
        results = list(check_account(regions, client=boto3_clients))
    except BotoCoreError as error:
        print(f"error: cannot reach AWS: {error}", file=sys.stderr)
        return 2
    print(format_table(results))
    return 0 if all(r.passed for r in results) else 1
