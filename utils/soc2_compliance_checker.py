"""The SOC2 pre-deployment checker of an AWS account (docs/aws.md):

    python3 utils/soc2_compliance_checker.py --profile <aws-profile> --account <account-id>

A thin entry point over ``dynalloc_dagster.aws.soc2`` (install the package first:
``pip install -e .``)."""

import sys

from dynalloc_dagster.aws.soc2 import main

if __name__ == "__main__":
    sys.exit(main())
