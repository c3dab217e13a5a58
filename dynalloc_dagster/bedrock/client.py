"""One call of the Bedrock Runtime Converse API through boto3, with botocore's retries and
errors that name what is missing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

RetryMode = Literal["legacy", "standard", "adaptive"]

_CREDENTIAL_CODES = frozenset(
    {"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException"}
)
_MODEL_ACCESS_HINTS = ("access", "model identifier", "on-demand throughput", "inference profile")


class BedrockError(RuntimeError):
    """A Bedrock Converse call failed; the message names the cause."""


class BedrockCredentialsError(BedrockError):
    """No usable AWS credentials for Bedrock Runtime."""


class BedrockModelAccessError(BedrockError):
    """The credentials work but may not invoke the model in the region."""


class BedrockThrottledError(BedrockError):
    """Still throttled after botocore's last retry."""


class BedrockConnectionError(BedrockError):
    """The endpoint could not be reached, closed the connection or did not answer in time,
    on every attempt."""


class BedrockReplyError(BedrockError):
    """The model's reply is empty, truncated or not of the expected form."""


@dataclass(frozen=True, slots=True)
class TokenPrice:
    """List price of a model in USD per 1,000 tokens."""

    usd_per_1k_input_tokens: float
    usd_per_1k_output_tokens: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """Estimated USD cost of one call."""
        return (input_tokens * self.usd_per_1k_input_tokens
                + output_tokens * self.usd_per_1k_output_tokens) / 1000.0


@dataclass(frozen=True, slots=True)
class ConverseReply:
    """A successful Converse response.

    Attributes
    ----------
    content : the assistant message's content blocks, as boto3 returns them.
    stop_reason : Converse ``stopReason`` (``end_turn``, ``tool_use``, ``max_tokens``, ...).
    input_tokens, output_tokens : ``usage`` as counted by Bedrock.
    latency_ms : ``metrics.latencyMs``, Bedrock's own measure of the call (retry waits excluded).
    cost_usd : the tokens priced with the client's :class:`TokenPrice`.
    """

    model_id: str
    content: tuple[Mapping[str, Any], ...]
    stop_reason: str
    input_tokens: int
    output_tokens: int
    latency_ms: int
    cost_usd: float

    def text(self) -> str:
        """The text blocks joined; raises BedrockReplyError when there is no text."""
        self._check_complete()
        if not self.content:
            raise BedrockReplyError(
                f"Bedrock model {self.model_id} returned an empty message"
                f" (stopReason {self.stop_reason})"
            )
        texts = [block["text"] for block in self.content if isinstance(block.get("text"), str)]
        if not texts:
            kinds = ", ".join(sorted({key for block in self.content for key in block}))
            raise BedrockReplyError(
                f"Bedrock model {self.model_id} returned no text block, only: {kinds}"
            )
        joined = "\n".join(texts).strip()
        if not joined:
            raise BedrockReplyError(f"Bedrock model {self.model_id} returned only blank text")
        return joined

    def tool_input(self, tool_name: str) -> Mapping[str, Any]:
        """The ``input`` of the model's call of ``tool_name``; raises BedrockReplyError when
        the reply holds no such call or its input is not a JSON object."""
        self._check_complete()
        calls = [block["toolUse"] for block in self.content
                 if isinstance(block.get("toolUse"), Mapping)
                 and block["toolUse"].get("name") == tool_name]
        if not calls:
            raise BedrockReplyError(
                f"Bedrock model {self.model_id} did not call the tool {tool_name}"
                f" (stopReason {self.stop_reason})"
            )
        tool_input = calls[0].get("input")
        if not isinstance(tool_input, Mapping):
            raise BedrockReplyError(
                f"Bedrock model {self.model_id}: the {tool_name} input is"
                f" {type(tool_input).__name__}, not a JSON object"
            )
        return tool_input

    def _check_complete(self) -> None:
        if self.stop_reason == "max_tokens":
            raise BedrockReplyError(
                f"Bedrock model {self.model_id} stopped at max_tokens after"
                f" {self.output_tokens} output tokens: the reply is truncated; raise max_tokens"
            )


class BedrockClient:
    """Converse with one model through a boto3 ``bedrock-runtime`` client.

    Parameters
    ----------
    model_id : Bedrock model or inference-profile id.
    region : AWS region of the Bedrock Runtime endpoint.
    price : the model's token price, for ``ConverseReply.cost_usd``.
    max_tokens, temperature : Converse ``inferenceConfig``.
    retry_mode, max_attempts : botocore retries: throttling, 5xx and connection errors are
        retried with exponential backoff up to ``max_attempts`` calls in all, the first
        included (botocore's ``total_max_attempts``); ``adaptive`` also rate-limits the
        client after throttling.
    connect_timeout_s : seconds to wait for the endpoint to accept a connection.
    read_timeout_s : seconds to wait for the model's reply (each attempt). A call stalls at
        most about ``max_attempts x (connect_timeout_s + read_timeout_s)`` plus botocore's
        backoff before :class:`BedrockConnectionError`.
    runtime : an existing ``bedrock-runtime`` client (e.g. under botocore's Stubber);
        by default one is built from the default credential chain. The endpoint is
        boto3's: ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` selects another one.
    """

    def __init__(
        self,
        model_id: str,
        *,
        region: str,
        price: TokenPrice,
        max_tokens: int,
        temperature: float,
        retry_mode: RetryMode = "adaptive",
        max_attempts: int = 5,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 120.0,
        runtime: Any = None,
    ) -> None:
        self.model_id = model_id
        self.region = region
        self.price = price
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_attempts = max_attempts
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        # a session of its own: credentials are resolved now, not reused from boto3's
        # process-wide default session
        self.runtime = runtime or boto3.session.Session().client(
            "bedrock-runtime",
            region_name=region,
            config=Config(
                retries={"mode": retry_mode, "total_max_attempts": max_attempts},
                connect_timeout=connect_timeout_s,
                read_timeout=read_timeout_s,
            ),
        )

    def converse(
        self,
        prompt: str,
        *,
        system: str,
        tool_config: Mapping[str, Any] | None = None,
    ) -> ConverseReply:
        """One user turn; returns the reply or raises a :class:`BedrockError` subclass."""
        request: dict[str, Any] = {
            "modelId": self.model_id,
            "system": [{"text": system}],
            "messages": [{"role": "user", "content": [{"text": prompt}]}],
            "inferenceConfig": {"maxTokens": self.max_tokens, "temperature": self.temperature},
        }
        if tool_config is not None:
            request["toolConfig"] = tool_config
        try:
            response = self.runtime.converse(**request)
        except (NoCredentialsError, PartialCredentialsError) as error:
            raise BedrockCredentialsError(self._no_credentials(str(error))) from error
        except ClientError as error:
            raise self._client_error(error) from error
        except (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError) as error:
            raise self._connection_error(error) from error
        except ResponseParserError as error:
            raise BedrockReplyError(
                f"Bedrock model {self.model_id} sent a malformed response: {error}"
            ) from error
        return self._reply(response)

    def _reply(self, response: Mapping[str, Any]) -> ConverseReply:
        message = (response.get("output") or {}).get("message")
        if not isinstance(message, Mapping) or not isinstance(message.get("content"), Sequence):
            raise BedrockReplyError(
                f"Bedrock model {self.model_id} returned no output message"
                f" (stopReason {response.get('stopReason')})"
            )
        usage = response.get("usage") or {}
        input_tokens = int(usage.get("inputTokens", 0))
        output_tokens = int(usage.get("outputTokens", 0))
        return ConverseReply(
            model_id=self.model_id,
            content=tuple(message["content"]),
            stop_reason=str(response.get("stopReason")),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            latency_ms=int((response.get("metrics") or {}).get("latencyMs", 0)),
            cost_usd=self.price.cost(input_tokens, output_tokens),
        )

    def _connection_error(self, error: Exception) -> BedrockConnectionError:
        endpoint = getattr(self.runtime.meta, "endpoint_url", "the Bedrock Runtime endpoint")
        if isinstance(error, ReadTimeoutError):
            what = f"no reply within read_timeout_s = {self.read_timeout_s:g} s"
        elif isinstance(error, ConnectionClosedError):
            what = "the connection was closed before a reply"
        else:
            what = f"could not connect within connect_timeout_s = {self.connect_timeout_s:g} s"
        return BedrockConnectionError(
            f"Converse with model {self.model_id} at {endpoint} failed: {what}, on each of"
            f" {self.max_attempts} attempts ({type(error).__name__}); check the network and"
            " the endpoint (AWS_ENDPOINT_URL_BEDROCK_RUNTIME), or raise read_timeout_s for"
            " long replies, or use mode 'offline'"
        )

    def _no_credentials(self, detail: str) -> str:
        return (
            f"no usable AWS credentials for Bedrock Runtime in {self.region} ({detail}):"
            " set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for"
            " temporary keys), or AWS_PROFILE naming a profile in ~/.aws, or"
            " AWS_BEARER_TOKEN_BEDROCK, or run under an instance or task role;"
            " or use mode 'offline'"
        )

    def _client_error(self, error: ClientError) -> BedrockError:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        where = f"model {self.model_id} in {self.region}"
        if code in _CREDENTIAL_CODES:
            return BedrockCredentialsError(self._no_credentials(f"{code}: {message}"))
        model_access = code in {"AccessDeniedException", "ResourceNotFoundException"} or (
            code == "ValidationException"
            and any(hint in message.lower() for hint in _MODEL_ACCESS_HINTS)
        )
        if model_access:
            return BedrockModelAccessError(
                f"no access to {where} ({code}: {message}): enable the model under Bedrock >"
                " Model access in that region, give the IAM principal bedrock:InvokeModel on"
                " it, and use an inference-profile id (e.g. us.anthropic...) where the model"
                " has no on-demand throughput"
            )
        if code in {"ThrottlingException", "ServiceUnavailableException"}:
            return BedrockThrottledError(
                f"{where} still answered {code} after {self.max_attempts} attempts with"
                f" backoff ({message}); raise max_attempts or the account's quota"
            )
        return BedrockError(f"Converse with {where} failed: {code}: {message}")
