"""``python -m dynalloc_dagster``: the whole pipeline through the Dagster instance
(:mod:`dynalloc_dagster.orchestration.cli`; ``--help`` shows a worked example)."""

# The warnings filter comes before anything imports the project's assets: Dagster warns
# at definition time that backfill_policy is beta, which is known and not the user's
# concern here.
import warnings

from dynalloc_dagster.orchestration.cli import BETA_NOTICE, main

warnings.filterwarnings("ignore", message=BETA_NOTICE)

if __name__ == "__main__":
    import sys

    sys.exit(main())
