"""The SOC2 pre-deployment checker: read-only boto3 calls against an AWS account, a
PASS/FAIL table with the fix of each failing control, exit code 1 if any control fails.

``python3 utils/soc2_compliance_checker.py --profile P --account A [--region R ...]
[--json PATH]``, or ``python -m dynalloc_dagster.aws soc2`` with the same options
(docs/aws.md). The profile selects the boto3 session; the account must be the one
``sts:GetCallerIdentity`` names; regional controls run in every enabled region
(``ec2:DescribeRegions``) unless ``--region`` narrows them. Controls:

=========================  ======  ====================================================
control                    scope   passes when
=========================  ======  ====================================================
cloudtrail                 global  a multi-region trail is logging, with log file
                                   validation and event selectors recording
                                   management events (reads and writes)
config_recording           region  a configuration recorder records all supported
                                   resources and the global ones (IAM) and is
                                   recording
guardduty                  region  a GuardDuty detector is ENABLED
securityhub_cis            region  Security Hub is enabled with a CIS AWS Foundations
                                   standard READY (every page of enabled standards)
iam_password_policy        global  minimum length >= 14, maximum age <= 90 days
console_users_mfa          global  every IAM user with a console password has MFA
                                   (the IAM credential report)
root_mfa                   global  the account summary's AccountMFAEnabled is 1
s3_block_public_access     global  all four account-level settings are on (s3control)
ebs_default_encryption     region  EBS encryption by default is on
kms_key_rotation           region  every enabled symmetric customer managed key rotates
logs_retention             region  every log group keeps events >= 2557 days (7 years)
                                   or never expires
=========================  ======  ====================================================

A call the caller may not make (AccessDenied and the like), a transport error (endpoint
unreachable, timeout) or a credential error fails its control with the cause named: the
check could not show the control holds; the other controls still run.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

MIN_PASSWORD_LENGTH = 14
MAX_PASSWORD_AGE_DAYS = 90
LOG_RETENTION_DAYS = 2557  # 7 years of 365.25 days, rounded up
CIS_STANDARD = "cis-aws-foundations-benchmark"
DISCOVERY_REGION = "us-east-1"
"""Where the account and region lookups go when the profile names no region."""
REPORT_POLL_SECONDS = 2.0
REPORT_WAIT_SECONDS = 60.0
"""How often and how long to wait for IAM to generate the credential report."""

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


def records_management_events(selectors: dict[str, Any]) -> bool:
    """Whether a trail's ``get_event_selectors`` answer records every management event:
    a basic selector with ``IncludeManagementEvents`` and ``ReadWriteType`` ``All``, or an
    advanced selector on ``eventCategory = Management`` that does not filter ``readOnly``."""
    for selector in selectors.get("EventSelectors") or []:
        if selector.get("IncludeManagementEvents") and selector.get("ReadWriteType") == "All":
            return True
    for selector in selectors.get("AdvancedEventSelectors") or []:
        fields = {f["Field"]: f for f in selector.get("FieldSelectors", [])}
        category = fields.get("eventCategory", {})
        if category.get("Equals") == ["Management"] and "readOnly" not in fields:
            return True
    return False


def _cloudtrail(client: ClientFactory, region: str) -> tuple[bool, str]:
    cloudtrail = client("cloudtrail", region)
    trails = cloudtrail.describe_trails(includeShadowTrails=True)["trailList"]
    if not trails:
        return False, "no trail"
    problems = []
    for trail in trails:
        name = trail["Name"]
        if not (trail.get("IsMultiRegionTrail") and trail.get("LogFileValidationEnabled")):
            problems.append(f"{name}: not multi-region with log file validation")
        elif not cloudtrail.get_trail_status(Name=trail["TrailARN"]).get("IsLogging"):
            problems.append(f"{name}: not logging")
        elif not records_management_events(
                cloudtrail.get_event_selectors(TrailName=trail["TrailARN"])):
            problems.append(f"{name}: event selectors miss management events")
        else:
            return True, (f"trail {name} (multi-region, validated, logging,"
                          " management events)")
    return False, "no compliant trail: " + "; ".join(problems)


def _config(client: ClientFactory, region: str) -> tuple[bool, str]:
    config = client("config", region)
    recorders = config.describe_configuration_recorders()["ConfigurationRecorders"]
    if not recorders:
        return False, "no configuration recorder"
    statuses = {s["name"]: s for s in
                config.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]}
    problems = []
    for recorder in recorders:
        group = recorder.get("recordingGroup", {})
        missing = [what for what, ok in (
            ("all supported resources", group.get("allSupported", False)),
            ("global resource types", group.get("includeGlobalResourceTypes", False)),
            ("recording", statuses.get(recorder["name"], {}).get("recording", False)))
            if not ok]
        if not missing:
            return True, (f"recorder {recorder['name']} records all supported and global"
                          " resources")
        problems.append(f"{recorder['name']} lacks " + ", ".join(missing))
    return False, "; ".join(problems)


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
    standards = [s for page in hub.get_paginator("get_enabled_standards").paginate()
                 for s in page["StandardsSubscriptions"]]
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


def credential_report(iam: Any) -> list[dict[str, str]]:
    """The IAM credential report's rows (one per user, and ``<root_account>``), generated
    if needed: polled every REPORT_POLL_SECONDS for at most REPORT_WAIT_SECONDS."""
    deadline = time.monotonic() + REPORT_WAIT_SECONDS
    while iam.generate_credential_report()["State"] != "COMPLETE":
        if time.monotonic() > deadline:
            raise TimeoutError(f"the credential report is not ready after"
                               f" {REPORT_WAIT_SECONDS:.0f} s")
        time.sleep(REPORT_POLL_SECONDS)
    content = iam.get_credential_report()["Content"]
    text = content.decode() if isinstance(content, bytes) else content
    return list(csv.DictReader(io.StringIO(text)))


def _console_mfa(client: ClientFactory, region: str) -> tuple[bool, str]:
    rows = [r for r in credential_report(client("iam", region))
            if r["user"] != "<root_account>" and r.get("password_enabled") == "true"]
    without = sorted(r["user"] for r in rows if r.get("mfa_active") != "true")
    if without:
        return False, f"console users without MFA: {', '.join(without)}"
    return True, f"{len(rows)} console user(s), all with MFA"


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
             " aws cloudtrail put-event-selectors --trail-name <trail> --event-selectors"
             " ReadWriteType=All,IncludeManagementEvents=true &&"
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
    _Control("console_users_mfa", False, _console_mfa,
             "aws iam create-virtual-mfa-device + enable-mfa-device --user-name <user> (each"
             " user listed), or aws iam delete-login-profile --user-name <user> if the user"
             " needs no console"),
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


def session_clients(session: boto3.session.Session) -> ClientFactory:
    """A client factory over one boto3 session (its profile's credentials), one client
    per (service, region)."""
    return cache(lambda service, region: session.client(service, region_name=region))


def enabled_regions(client: ClientFactory, region: str) -> list[str]:
    """The regions enabled in the account (``ec2:DescribeRegions`` lists only those),
    sorted."""
    regions = client("ec2", region).describe_regions()["Regions"]
    return sorted(r["RegionName"] for r in regions)


def check_account(
    regions: Sequence[str], *, client: ClientFactory,
) -> Iterator[ControlResult]:
    """Every control: account-wide ones once (through the first region), regional ones in
    each region. An AWS error (ClientError), a transport or credential error
    (BotoCoreError) or a timeout fails its control with the cause named."""
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
            except (BotoCoreError, TimeoutError) as error:
                passed, detail = False, f"could not check: {type(error).__name__}: {error}"
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


class AccountError(RuntimeError):
    """The session cannot be used: no such profile, no credentials, the wrong account."""


def caller_account(client: ClientFactory, region: str, expected: str) -> str:
    """The caller's ARN, after checking ``sts:GetCallerIdentity`` names ``expected``."""
    try:
        identity = client("sts", region).get_caller_identity()
    except (BotoCoreError, ClientError) as error:
        raise AccountError(f"cannot identify the caller: {error}") from error
    if identity["Account"] != expected:
        raise AccountError(f"the credentials are of account {identity['Account']}"
                           f" ({identity['Arn']}), not --account {expected}")
    return identity["Arn"]


def json_report(results: Sequence[ControlResult], *, account: str, caller: str,
                regions: Sequence[str], profile: str | None) -> dict[str, Any]:
    """The audit-evidence record of one run: who checked which account where and when,
    and every control's outcome."""
    return {
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "account": account, "caller_arn": caller, "profile": profile,
        "regions": list(regions),
        "passed": sum(r.passed for r in results), "total": len(results),
        "compliant": all(r.passed for r in results),
        "controls": [dataclasses.asdict(r) for r in results],
    }


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default=None,
                        help="AWS profile of the boto3 session (default: boto3's chain)")
    parser.add_argument("--account", required=True,
                        help="12-digit id of the account the profile must be signed in to")
    parser.add_argument("--region", action="append", default=[],
                        help="check only this region (repeat; default: every enabled region)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write the results as JSON (audit evidence)")
    parser.set_defaults(run=run)


def add_parser(sub: argparse._SubParsersAction) -> None:
    _add_arguments(sub.add_parser("soc2", help="check an AWS account's SOC2 controls"))


def run(args: argparse.Namespace) -> int:
    """Print the table (and write the JSON report); 0 if every control passes, 1 if any
    fails, 2 if the session or the account is wrong."""
    try:
        session = boto3.session.Session(profile_name=args.profile)
        client = session_clients(session)
        home = session.region_name or DISCOVERY_REGION
        caller = caller_account(client, home, args.account)
        regions = args.region or enabled_regions(client, home)
    except (AccountError, BotoCoreError, ClientError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = list(check_account(regions, client=client))
    print(format_table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(json_report(
            results, account=args.account, caller=caller, regions=regions,
            profile=args.profile), indent=2) + "\n")
        print(f"report written to {args.json}")
    return 0 if all(r.passed for r in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """The standalone checker (``utils/soc2_compliance_checker.py``)."""
    parser = argparse.ArgumentParser(prog="soc2_compliance_checker.py",
                                     description=__doc__.split("\n\n")[0])
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return args.run(args)
