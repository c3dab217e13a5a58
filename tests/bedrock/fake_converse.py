"""A fake Bedrock Runtime Converse endpoint on 127.0.0.1, for the real boto3 code path.

moto has no Converse. Point boto3 at the fake with ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``
(:meth:`FakeConverse.env` gives that plus dummy credentials), in this process or in a
subprocess::

    with FakeConverse(script=[THROTTLING]) as fake:
        subprocess.run([...], env=fake.env(), check=True)
        assert fake.requests[-1].model_id == "..."

Replies: first the ``script`` (one response per request, in order), then the default:
``text`` for a plain request; for a request that forces a tool, ``minItems`` proposals
drawn from the tool's item schema (deterministic, varied per request).

From a shell: ``python -m tests.bedrock.fake_converse [--throttle-first N]`` prints the
endpoint URL and serves until interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

ENDPOINT_ENV = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"
DEFAULT_TEXT = (
    "## Executive summary\n\nThe study compares volatility-targeting rules across the"
    " simulated regimes; the committee is asked to adopt the top-ranked rule.\n\n"
    "## Recommended rule\n\nThe top-ranked rule of the leaderboard.\n\n"
    "## Regime notes\n\nEach regime favours a different rule.\n\n"
    "## Optimisation history\n\nThe search stopped as recorded.\n\n"
    "## Risks and limits\n\nSimulated regimes are not forecasts.\n"
)


@dataclass(frozen=True, slots=True)
class FakeResponse:
    """One HTTP reply: status, JSON body, and the error code for an error reply; sent
    after ``delay_s`` seconds, or never when ``drop`` (the connection is closed)."""

    status: int
    body: Mapping[str, Any]
    error_type: str | None = None
    delay_s: float = 0.0
    drop: bool = False


@dataclass(frozen=True, slots=True)
class Request:
    """A Converse request the fake received."""

    model_id: str
    body: Mapping[str, Any]


def text_response(
    text: str, *, input_tokens: int = 1200, output_tokens: int = 400, latency_ms: int = 850
) -> FakeResponse:
    """A Converse reply whose message is ``text``."""
    return _reply([{"text": text}], "end_turn", input_tokens, output_tokens, latency_ms)


def tool_response(
    name: str, tool_input: Mapping[str, Any], *, input_tokens: int = 900,
    output_tokens: int = 200, latency_ms: int = 600,
) -> FakeResponse:
    """A Converse reply calling tool ``name`` with ``tool_input``."""
    block = {"toolUse": {"toolUseId": "tooluse_fake", "name": name, "input": tool_input}}
    return _reply([block], "tool_use", input_tokens, output_tokens, latency_ms)


def error_response(code: str, status: int, message: str) -> FakeResponse:
    """A service error as Bedrock sends it (``x-amzn-ErrorType`` and a message body)."""
    return FakeResponse(status, {"message": message}, code)


THROTTLING = error_response("ThrottlingException", 429, "Too many requests, please wait.")
DROP = FakeResponse(0, {}, drop=True)
"""The request is read, then the connection closed without a reply."""


def stalled(seconds: float, text: str = "late") -> FakeResponse:
    """A text reply sent only after ``seconds``."""
    return dataclasses.replace(text_response(text), delay_s=seconds)


def _reply(content: list[dict[str, Any]], stop_reason: str, input_tokens: int,
           output_tokens: int, latency_ms: int) -> FakeResponse:
    return FakeResponse(200, {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens,
                  "totalTokens": input_tokens + output_tokens},
        "metrics": {"latencyMs": latency_ms},
    })


class FakeConverse:
    """The fake endpoint: an HTTP server in a daemon thread on 127.0.0.1, port chosen by
    the OS. Use as a context manager (or :meth:`start` / :meth:`close`).

    Parameters
    ----------
    script : responses to the first requests, in order.
    text : the default narrative text.
    seed : seeds the default proposals.
    """

    def __init__(
        self, script: Sequence[FakeResponse] = (), *, text: str = DEFAULT_TEXT, seed: int = 0
    ) -> None:
        self.script = list(script)
        self.text = text
        self.seed = seed
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: os.environ) without its AWS settings, plus the endpoint,
        dummy credentials and us-east-1: a whole environment for a subprocess."""
        env = {k: v for k, v in (os.environ if base is None else base).items()
               if not k.startswith("AWS_")}
        return env | {
            ENDPOINT_ENV: self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self) -> FakeConverse:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> FakeConverse:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def respond(self, model_id: str, body: Mapping[str, Any]) -> FakeResponse:
        """Record the request and choose its response."""
        with self._lock:
            self.requests.append(Request(model_id, body))
            if self.script:
                return self.script.pop(0)
            index = len(self.requests)
        tool = ((body.get("toolConfig") or {}).get("toolChoice") or {}).get("tool")
        if tool is None:
            return text_response(self.text)
        spec = next(t["toolSpec"] for t in body["toolConfig"]["tools"]
                    if t["toolSpec"]["name"] == tool["name"])
        rng = random.Random(f"{self.seed}:{index}")
        return tool_response(tool["name"], _sample_object(spec["inputSchema"]["json"], rng))


def _handler(fake: FakeConverse) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            parts = self.path.split("/")
            if len(parts) != 4 or parts[1] != "model" or parts[3] != "converse":
                self._send(error_response("UnknownOperationException", 404, self.path))
                return
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            self._send(fake.respond(unquote(parts[2]), body))

        def _send(self, response: FakeResponse) -> None:
            if response.drop:
                self.close_connection = True
                self.connection.close()
                return
            if response.delay_s:
                time.sleep(response.delay_s)
            payload = json.dumps(response.body).encode()
            try:
                self.send_response(response.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-amzn-RequestId", "fake-request")
                if response.error_type:
                    self.send_header("x-amzn-ErrorType", response.error_type)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (a read timeout)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def _sample_object(schema: Mapping[str, Any], rng: random.Random) -> Any:
    """A value satisfying the subset of JSON schema the tools use."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if "enum" in schema:
        return rng.choice(schema["enum"])
    if kind == "object":
        return {name: _sample_object(sub, rng) for name, sub in schema["properties"].items()}
    if kind == "array":
        count = schema.get("minItems", 1)
        return [_sample_object(schema["items"], rng) for _ in range(count)]
    if kind == "integer":
        return rng.randint(schema["minimum"], schema["maximum"])
    if kind == "number":
        return round(rng.uniform(schema["minimum"], schema["maximum"]), 4)
    raise ValueError(f"fake Converse cannot sample a schema of type {kind!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--throttle-first", type=int, default=0,
                        help="answer the first N requests with ThrottlingException")
    args = parser.parse_args()
    with FakeConverse([THROTTLING] * args.throttle_first) as fake:
        print(fake.endpoint, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
