"""Amazon Bedrock: the investment-committee narrative, its grounding check and the
``bedrock`` proposer of the optimisation loop (docs/bedrock.md)."""

from dynalloc_dagster.bedrock.client import (
    BedrockClient,
    BedrockCredentialsError,
    BedrockError,
    BedrockModelAccessError,
    BedrockReplyError,
    BedrockThrottledError,
)
from dynalloc_dagster.bedrock.grounding import GroundingResult, check_grounding
from dynalloc_dagster.bedrock.narrative import (
    OFFLINE_AUTHOR,
    Narrative,
    ReportTables,
    offline_narrative,
)
from dynalloc_dagster.bedrock.proposer import BedrockProposer, ProposalError
from dynalloc_dagster.bedrock.resource import BedrockResource

__all__ = [
    "OFFLINE_AUTHOR",
    "BedrockClient",
    "BedrockCredentialsError",
    "BedrockError",
    "BedrockModelAccessError",
    "BedrockProposer",
    "BedrockReplyError",
    "BedrockResource",
    "BedrockThrottledError",
    "GroundingResult",
    "Narrative",
    "ProposalError",
    "ReportTables",
    "check_grounding",
    "offline_narrative",
]
