"""``python -m dynalloc_dagster.aws policy ...`` prints the IAM policies;
``python -m dynalloc_dagster.aws preflight ...`` checks the deployment's calls with its
roles; ``python -m dynalloc_dagster.aws soc2 ...`` runs the SOC2 pre-deployment checks;
``python -m dynalloc_dagster.aws cloudformation [--write]`` renders the deployment's
CloudFormation template from the same policies."""

from __future__ import annotations

import argparse
import json
import sys

from dynalloc_dagster.aws.iam import PolicyConfigError, PolicyScope, launcher_policy, worker_policy


def _policy_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("policy", help="print the worker and launcher IAM policies (JSON)")
    parser.add_argument("--which", choices=("worker", "launcher", "both"), default="both")
    parser.add_argument("--region", required=True)
    parser.add_argument("--account", required=True, help="12-digit AWS account id")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", default="", help="key prefix (default: the whole bucket)")
    parser.add_argument("--kms-key-arn", required=True)
    parser.add_argument("--worker-role-arn", required=True,
                        help="the role of the workers' instance profile (for iam:PassRole)")
    parser.add_argument("--image-id", required=True)
    parser.add_argument("--subnet-id", action="append", required=True,
                        help="a subnet the launcher may start workers in (repeat)")
    parser.add_argument("--instance-type", action="append", required=True,
                        help="an instance type the launcher may start (repeat)")
    parser.add_argument("--security-group-id", action="append", default=[])
    parser.add_argument("--secret-arn", action="append", default=[],
                        help="a secret the workers read at boot (the PostgreSQL URL)")
    parser.add_argument("--deployment", default="dynalloc",
                        help="value of the dynalloc/deployment tag")
    parser.add_argument("--log-group", default="/dynalloc/runs")
    parser.add_argument("--no-spot", action="store_true",
                        help="do not allow spot instance requests")
    parser.add_argument("--bedrock-model-id", default="",
                        help="the Bedrock model or inference profile the workers call"
                        " (BedrockResource.model_id; default: no Bedrock access)")
    parser.add_argument("--bedrock-region", default="",
                        help="the region of BedrockResource (default: --region)")
    parser.set_defaults(run=_print_policy)


def _print_policy(args: argparse.Namespace) -> int:
    try:
        scope = PolicyScope(
            region=args.region, account=args.account, bucket=args.bucket,
            prefix=args.prefix.strip("/"), kms_key_arn=args.kms_key_arn,
            worker_role_arn=args.worker_role_arn, image_id=args.image_id,
            subnet_ids=tuple(args.subnet_id), instance_types=tuple(args.instance_type),
            security_group_ids=tuple(args.security_group_id),
            secret_arns=tuple(args.secret_arn), deployment=args.deployment,
            log_group=args.log_group, spot=not args.no_spot,
            bedrock_model_id=args.bedrock_model_id, bedrock_region=args.bedrock_region)
    except PolicyConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    policies = {"worker": worker_policy(scope), "launcher": launcher_policy(scope)}
    chosen = policies if args.which == "both" else policies[args.which]
    print(json.dumps(chosen, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dynalloc_dagster.aws", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _policy_parser(sub)
    from dynalloc_dagster.aws.cloudformation import add_parser as add_template_parser
    from dynalloc_dagster.aws.preflight import add_parser as add_preflight_parser
    from dynalloc_dagster.aws.soc2 import add_parser as add_soc2_parser
    add_preflight_parser(sub)
    add_soc2_parser(sub)
    add_template_parser(sub)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
