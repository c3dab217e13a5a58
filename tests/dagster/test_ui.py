"""The Dagster UI end to end, as a stakeholder and a data engineer meet it.

One ``dagster dev`` (webserver + daemon + code server, what ``make dev`` runs) is started
on 127.0.0.1 with a temporary DAGSTER_HOME (the project's dagster.yaml, so the queued run
coordinator is the real one, polled every second; the backfill daemon's 30 s pause is 2 s,
see daemon_interval/sitecustomize.py) and a temporary DYNALLOC_DATA_ROOT. Over real
HTTP to its GraphQL endpoint the tests read the asset graph and launch runs; headless
Chromium renders the global asset lineage page to artifacts/ui/lineage.png. Then
``python -m dynalloc_dagster`` (``make run``) runs the pipeline into the same instance: its
runs must be the job page's runs, and the report, charts, recommended_allocation,
todays_allocation and historical_backtest pages, driven over the DevTools protocol, must
show the embedded charts and today's weights (screenshots artifacts/ui/<asset>.png).
Chromium comes from .ci/run; without it the browser tests skip.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dagster_test_support import polling_home
from matplotlib import image

from dynalloc_dagster.tags import INGEST_JOB, ROUND_JOB

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "ui"
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
SCENARIOS = ["base", "bull", "bear", "high_vol", "low_vol", "calibrated"]
HOST = "127.0.0.1"
DAEMON_INTERVAL_S = "2"  # the backfill daemon's pause between passes (Dagster's: 30 s)

pytestmark = pytest.mark.slow

ASSET_GRAPH_QUERY = """
query AssetGraph {
  assetNodes {
    assetKey { path }
    groupName
    dependencyKeys { path }
    isPartitioned
    partitionDefinition {
      type
      dimensionTypes { name type dynamicPartitionsDefinitionName }
    }
    partitionKeysByDimension { name type partitionKeys }
    repository { name location { name } }
  }
}
"""

LAUNCH_RUN_MUTATION = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

RUN_QUERY = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status jobName stepStats { stepKey status } }
    ... on Error { message }
  }
}
"""

LATEST_MATERIALIZATIONS_QUERY = """
query LatestMaterializations($assetKeys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    assetMaterializations(limit: 1) { runId }
  }
}
"""

EVALUATION_KEYS_QUERY = """
query EvaluationKeys {
  assetNodes(assetKeys: [{path: ["strategy_evaluations"]}]) {
    partitionKeys
    partitionKeysByDimension { name partitionKeys }
  }
}
"""

LAUNCH_BACKFILL_MUTATION = """
mutation LaunchBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

BACKFILL_QUERY = """
query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill { status numPartitions error { message stack } }
    ... on Error { message }
  }
}
"""

RUNS_BY_TAG_QUERY = """
query RunsByTag($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status jobName } }
    ... on Error { message }
  }
}
"""

EVALUATION_STATS_QUERY = """
query EvaluationStats {
  assetNodes(assetKeys: [{path: ["strategy_evaluations"]}]) {
    partitionKeys
    partitionStats { numMaterialized numPartitions numFailed numMaterializing }
    assetMaterializations(limit: 1000) { runId partition }
  }
}
"""

DONE = {"SUCCESS", "FAILURE", "CANCELED"}
# terminal BulkActionStatus values (asset backfills end COMPLETED_SUCCESS/_FAILED)
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED",
                 "CANCELED"}
ASSET_LABEL = re.compile(r'class="AssetNode_assetName[^"]*">([^<]+)<')


# --- the server -------------------------------------------------------------------------


@dataclass
class DagsterDev:
    url: str
    log: Path
    data_root: Path
    home: Path

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.load(response)
        assert not payload.get("errors"), payload["errors"]
        return payload["data"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _wait_for_server(proc: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster dev exited with {proc.returncode}:\n{log.read_text()[-6000:]}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
                if response.status == 200 and "dagster_webserver_version" in json.load(response):
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            pass
        time.sleep(0.5)
    pytest.fail(f"dagster dev did not answer /server_info in {timeout:.0f} s:\n"
                f"{log.read_text()[-6000:]}")


def _default_interrupt_handling() -> None:
    """In the child before exec: a shell's background job inherits SIGINT ignored, and
    `dagster dev` maps SIGTERM to SIGINT's handler, so it would ignore both."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop_process_group(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the group ``dagster dev`` leads (webserver, daemon, code server, run
    workers), then SIGKILL whatever is left after ``grace`` seconds."""
    pgid = proc.pid  # start_new_session=True: the process leads its own group
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()
        try:
            os.killpg(pgid, 0)  # anyone left in the group?
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    tmp = tmp_path_factory.mktemp("dagster_ui")
    home = tmp / "dagster_home"
    polling_home(home)
    data_root = tmp / "data"
    data_root.mkdir()
    port = _free_port()
    url = f"http://{HOST}:{port}"
    python_path = [str(Path(__file__).parent / "daemon_interval"), os.environ.get("PYTHONPATH")]
    env = {**os.environ, "DAGSTER_HOME": str(home), "DYNALLOC_DATA_ROOT": str(data_root),
           "PYTHONPATH": os.pathsep.join(filter(None, python_path)),
           "DYNALLOC_TEST_DAEMON_INTERVAL_S": DAEMON_INTERVAL_S}
    log = tmp / "dagster_dev.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"),
             "-h", HOST, "-p", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_default_interrupt_handling,
        )
    try:
        _wait_for_server(proc, url, log, timeout=90)
        yield DagsterDev(url=url, log=log, data_root=data_root, home=home)
    finally:
        _stop_process_group(proc)


@pytest.fixture(scope="module")
def asset_nodes(dagster_dev: DagsterDev) -> dict[str, dict[str, Any]]:
    """GraphQL's asset nodes by user string (``a/b``)."""
    nodes = dagster_dev.graphql(ASSET_GRAPH_QUERY)["assetNodes"]
    return {"/".join(n["assetKey"]["path"]): n for n in nodes}


@pytest.fixture(scope="module")
def definitions():
    from dynalloc_dagster.definitions import defs

    return defs


# --- 1. the asset graph over GraphQL -----------------------------------------------------


def test_graphql_lists_every_asset_with_group_and_lineage(definitions, asset_nodes):
    graph = definitions.resolve_asset_graph()
    expected = {node.key.to_user_string(): node for node in graph.asset_nodes}
    assert set(asset_nodes) == set(expected)
    for key, node in expected.items():
        served = asset_nodes[key]
        assert served["groupName"] == node.group_name, key
        deps = {"/".join(d["path"]) for d in served["dependencyKeys"]}
        assert deps == {p.to_user_string() for p in node.parent_keys}, key

    edges = {(dep, key) for key, n in asset_nodes.items()
             for dep in ("/".join(d["path"]) for d in n["dependencyKeys"])}
    for edge in [
        ("market_data", "calibration"),
        ("calibration", "market_regimes"),
        ("market_regimes", "scenario_paths"),
        ("scenario_paths", "strategy_evaluations"),
        ("strategy_configs", "strategy_evaluations"),
        ("strategy_configs", "optimisation_history"),
        ("strategy_evaluations", "optimisation_history"),
        ("strategy_evaluations", "stg_strategy_evaluations"),
        ("optimisation_history", "stg_optimisation_history"),
        ("stg_optimisation_history", "robustness_leaderboard"),
        ("robustness_leaderboard", "cost_sensitivity"),
        ("robustness_leaderboard", "charts"),
        ("robustness_leaderboard", "bedrock_report"),
        ("robustness_leaderboard", "recommended_allocation"),
        ("charts", "report"),
        ("bedrock_report", "report"),
    ]:
        assert edge in edges, f"missing lineage edge {edge[0]} -> {edge[1]}"
    # the SQL report models chain stg_* -> int_* -> marts
    assert any(d.startswith("stg_") and k.startswith("int_") for d, k in edges)
    assert any(d.startswith("int_") and k == "parameter_sensitivity" for d, k in edges)


def test_graphql_partitions_of_scenarios_and_evaluations(asset_nodes):
    paths = asset_nodes["scenario_paths"]
    assert paths["isPartitioned"]
    assert paths["partitionDefinition"]["type"] == "STATIC"
    [dimension] = paths["partitionKeysByDimension"]
    assert dimension["partitionKeys"] == SCENARIOS

    evaluations = asset_nodes["strategy_evaluations"]
    assert evaluations["partitionDefinition"]["type"] == "MULTIPARTITIONED"
    dimensions = {d["name"]: d for d in evaluations["partitionDefinition"]["dimensionTypes"]}
    assert set(dimensions) == {"batch", "scenario"}
    assert dimensions["scenario"]["type"] == "STATIC"
    assert dimensions["batch"]["type"] == "DYNAMIC"
    assert dimensions["batch"]["dynamicPartitionsDefinitionName"] == "config_batches"
    keys = {d["name"]: d["partitionKeys"] for d in evaluations["partitionKeysByDimension"]}
    assert keys["scenario"] == SCENARIOS

    unpartitioned = {k for k, n in asset_nodes.items() if not n["isPartitioned"]}
    assert {"market_data", "calibration", "market_regimes", "strategy_configs",
            "optimisation_history"} <= unpartitioned


# --- 2. runs launched through GraphQL, dequeued by the daemon ----------------------------


def _launch_and_wait(server: DagsterDev, selector: dict[str, Any], run_config: dict[str, Any],
                     timeout: float = 90) -> str:
    """launchRun, then poll runOrError until the run is done; return its id on SUCCESS."""
    launched = server.graphql(LAUNCH_RUN_MUTATION, {"executionParams": {
        "selector": selector, "runConfigData": run_config, "mode": "default",
        "executionMetadata": {"tags": [{"key": "dynalloc/test", "value": "ui"}]},
    }})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = server.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        if run["status"] in DONE:
            break
        time.sleep(0.5)
    assert run.get("status") == "SUCCESS", (
        f"run {run_id} is {run.get('status')} after at most {timeout:.0f} s: "
        f"{run.get('stepStats')}\n{server.log_tail()}"
    )
    assert run["jobName"] == selector["jobName"]
    return run_id


def _selector(asset_nodes: dict[str, dict[str, Any]], job_name: str) -> dict[str, Any]:
    repository = asset_nodes["market_data"]["repository"]
    return {"repositoryLocationName": repository["location"]["name"],
            "repositoryName": repository["name"], "jobName": job_name}


def _round_zero_config(n_configs: int) -> dict[str, Any]:
    """Round 0 of the optimisation agent with a Latin hypercube batch of ``n_configs``:
    the new run config shape, the round in ``ops`` and the agent's settings in
    ``resources``."""
    return {"ops": {"strategy_configs": {"config": {"round": 0}}},
            "resources": {"agent": {"config": {"initial_batch": n_configs, "seed": 0}}}}


@pytest.fixture(scope="module")
def ingest_run(dagster_dev, asset_nodes) -> str:
    """The ingest stage job launched through GraphQL and dequeued by the daemon, once for
    the module (the backfill test needs its regimes too): the run's id. Its readers come
    before ``pipeline_through_cli`` in the file, which ingests again."""
    run_config = {"ops": {"market_data": {"config": {"as_of": "2026-01-02"}}}}
    return _launch_and_wait(dagster_dev, _selector(asset_nodes, INGEST_JOB), run_config)


def test_launch_ingest_stage_job_through_graphql(dagster_dev, ingest_run):
    run_id = ingest_run
    keys = ["market_data", "market_vol_surface", "market_yield_curve", "calibration",
            "market_regimes"]
    nodes = dagster_dev.graphql(LATEST_MATERIALIZATIONS_QUERY,
                                {"assetKeys": [{"path": [k]} for k in keys]})["assetNodes"]
    latest = {"/".join(n["assetKey"]["path"]): n["assetMaterializations"] for n in nodes}
    assert set(latest) == set(keys)
    for key in keys:
        assert [m["runId"] for m in latest[key]] == [run_id], key
    # the run worker wrote into DYNALLOC_DATA_ROOT, not the project's data/
    written = {p.relative_to(dagster_dev.data_root).as_posix()
               for p in dagster_dev.data_root.rglob("*") if p.is_file()}
    assert any(p.startswith("market_data") for p in written), written


def test_materialize_selected_asset_like_the_ui_button(dagster_dev, asset_nodes):
    """The UI's "Materialize" launches the implicit asset job with an asset selection;
    round 0 of the agent registers its batch as dynamic partitions of
    strategy_evaluations. The agent's settings come from the ``agent`` resource's config."""
    selector = _selector(asset_nodes, "__ASSET_JOB") | {
        "assetSelection": [{"path": ["strategy_configs"]}]}
    run_id = _launch_and_wait(dagster_dev, selector, _round_zero_config(6))

    [node] = dagster_dev.graphql(
        LATEST_MATERIALIZATIONS_QUERY, {"assetKeys": [{"path": ["strategy_configs"]}]}
    )["assetNodes"]
    assert [m["runId"] for m in node["assetMaterializations"]] == [run_id]
    [evaluations] = dagster_dev.graphql(EVALUATION_KEYS_QUERY)["assetNodes"]
    keys = {d["name"]: d["partitionKeys"] for d in evaluations["partitionKeysByDimension"]}
    assert len(keys["batch"]) == 1  # round 0's six configs are one batch
    assert keys["scenario"] == SCENARIOS
    assert len(evaluations["partitionKeys"]) == len(SCENARIOS)


def _backfill_and_wait(server: DagsterDev, asset: str, n_keys: int,
                       timeout: float = 240) -> list[dict[str, Any]]:
    """launchPartitionBackfill of all ``n_keys`` partitions of ``asset``, wait for the
    daemon to finish it, and return the runs it created (tag ``dagster/backfill``). The
    daemon looks at backfills every ``DAEMON_INTERVAL_S`` (30 s in Dagster without the
    test's sitecustomize), so this takes two of those plus the runs."""
    launched = server.graphql(LAUNCH_BACKFILL_MUTATION, {"backfillParams": {
        "assetSelection": [{"path": [asset]}], "allPartitions": True,
        "tags": [{"key": "dynalloc/test", "value": "ui"}],
    }})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    deadline = time.monotonic() + timeout
    backfill: dict[str, Any] = {}
    while time.monotonic() < deadline:
        backfill = server.graphql(BACKFILL_QUERY, {"backfillId": backfill_id})[
            "partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        if backfill["status"] in BACKFILL_DONE:
            break
        time.sleep(0.5)
    assert backfill.get("status") in {"COMPLETED", "COMPLETED_SUCCESS"}, (
        f"backfill {backfill_id} of {asset} is {backfill.get('status')} after at most"
        f" {timeout:.0f} s: {backfill.get('error')}\n{server.log_tail()}"
    )
    assert backfill["numPartitions"] == n_keys, backfill
    runs = server.graphql(RUNS_BY_TAG_QUERY, {"filter": {
        "tags": [{"key": "dagster/backfill", "value": backfill_id}]}})["runsOrError"]
    assert runs["__typename"] == "Runs", runs
    return runs["results"]


def test_daemon_backfill_is_not_one_run_per_key(dagster_dev, asset_nodes, ingest_run):
    """A backfill of every partition from the UI ("Materialize all") goes through the
    daemon and the assets' backfill policies: scenario_paths (single_run) is one run for
    its five scenarios; strategy_evaluations (single_run by default) a run per scenario
    at most, never a run per (scenario, batch) key."""
    # upstream first (independent of test order): regimes (``ingest_run``), then round 0
    # of the agent through its stage job; round 0 registers exactly its batch as the
    # dynamic partitions
    n_configs = 6
    _launch_and_wait(dagster_dev, _selector(asset_nodes, ROUND_JOB), _round_zero_config(n_configs))

    path_runs = _backfill_and_wait(dagster_dev, "scenario_paths", len(SCENARIOS))
    assert len(path_runs) == 1, path_runs
    assert path_runs[0]["status"] == "SUCCESS", path_runs

    n_keys = len(SCENARIOS)  # one batch
    [before] = dagster_dev.graphql(EVALUATION_STATS_QUERY)["assetNodes"]
    assert len(before["partitionKeys"]) == n_keys
    evaluation_runs = _backfill_and_wait(dagster_dev, "strategy_evaluations", n_keys)
    assert 1 <= len(evaluation_runs) <= len(SCENARIOS), evaluation_runs
    assert {r["status"] for r in evaluation_runs} == {"SUCCESS"}, evaluation_runs

    [node] = dagster_dev.graphql(EVALUATION_STATS_QUERY)["assetNodes"]
    assert node["partitionStats"] == {"numMaterialized": n_keys, "numPartitions": n_keys,
                                      "numFailed": 0, "numMaterializing": 0}
    # each key's materialization came from one of the backfill's runs
    run_ids = {r["runId"] for r in evaluation_runs}
    by_backfill = {m["partition"] for m in node["assetMaterializations"]
                   if m["runId"] in run_ids}
    assert by_backfill == set(node["partitionKeys"])


# --- 3. the global asset lineage in a real headless browser ------------------------------


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium (.ci/run installs it); the browser tests skip without it."""
    if not CHROMIUM.exists():
        pytest.skip(f"no browser: {CHROMIUM} is missing (apt-get install -y chromium)")
    return CHROMIUM


LINEAGE_WINDOW = (1600, 1000)


def _headless_chromium(binary: Path, profile: Path, url: str, *args: str) -> str:
    """Load ``url`` (15 s of virtual time for the React app to render) and return the DOM
    (``--dump-dom``); extra ``args`` such as ``--screenshot=...`` act on the same load."""
    proc = subprocess.Popen(
        [str(binary), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         f"--window-size={LINEAGE_WINDOW[0]},{LINEAGE_WINDOW[1]}", "--virtual-time-budget=15000",
         "--dump-dom", *args, url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=90)
    finally:  # chromium's helper processes share its group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 0, err[-3000:]
    return out


def _rendered_asset_names(dom: str, known: set[str]) -> set[str]:
    """Asset names on the graph's nodes; long names are shortened to ``head…tail``."""
    names = set()
    for label in ASSET_LABEL.findall(dom):
        head, ellipsis, tail = html.unescape(label).partition("…")
        matches = ({k for k in known if k.startswith(head) and k.endswith(tail)}
                   if ellipsis else {head} & known)
        assert len(matches) == 1, f"node label {label!r} matches {sorted(matches)}"
        names |= matches
    return names


def test_lineage_page_renders_in_headless_chromium(dagster_dev, asset_nodes, chromium,
                                                   tmp_path):
    # a user dismisses the "Join the Dagster community" dialog once (stored in DAGSTER_HOME)
    assert dagster_dev.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True
    # the global lineage at /asset-groups, every group expanded: `expanded` takes group
    # ids, "global@global:<group>" (or "<repo>@<location>:<group>" when the UI groups by
    # code location; both forms are given)
    repository = asset_nodes["market_data"]["repository"]
    groups = sorted({n["groupName"] for n in asset_nodes.values()})
    expanded = [f"global@global:{g}" for g in groups] + [
        f"{repository['name']}@{repository['location']['name']}:{g}" for g in groups]
    url = f"{dagster_dev.url}/asset-groups?expanded={','.join(expanded)}"

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = ARTIFACTS / "lineage.png"
    png.unlink(missing_ok=True)
    dom = _headless_chromium(chromium, tmp_path / "profile", url, f"--screenshot={png}")
    (ARTIFACTS / "lineage.html").write_text(dom, encoding="utf-8")

    assert "Global asset lineage" in dom
    assert "Join the Dagster community" not in dom
    # Dagster draws the nodes inside the window at its initial zoom (the complete lineage
    # is checked over GraphQL above); those it draws are assets
    rendered = _rendered_asset_names(dom, set(asset_nodes))
    assert len(rendered) >= len(asset_nodes) // 2, sorted(set(asset_nodes) - rendered)
    # which nodes fall inside the window depends on Dagster's layout of the whole graph;
    # at least one of the committee's outputs is among them
    assert {"charts", "report"} & rendered, sorted(rendered)

    assert png.exists() and png.stat().st_size > 20_000
    pixels = image.imread(png)
    assert pixels.shape[:2] == (LINEAGE_WINDOW[1], LINEAGE_WINDOW[0])
    assert pixels[..., :3].std() > 0.02, "the screenshot is blank"


# --- 4. make run into the same instance, then the business outputs in the browser -------

PIPELINE_CONFIG = """\
ops:
  market_data: {config: {as_of: "2026-11-20"}}
  scenario_paths: {config: {n_paths: 20, horizon_years: 1, warmup_months: 24}}
resources:
  agent: {config: {initial_batch: 4, batch_size: 2, max_configs: 4}}
"""
RUNS_OF_JOB = """
query Runs($filter: RunsFilter!) {
  runsOrError(filter: $filter) { ... on Runs { results { runId status jobName } } }
}
"""


@pytest.fixture(scope="module")
def pipeline_through_cli(dagster_dev: DagsterDev, tmp_path_factory: pytest.TempPathFactory
                         ) -> subprocess.CompletedProcess:
    """``python -m dynalloc_dagster`` (what ``make run`` runs) against the UI's instance."""
    config = tmp_path_factory.mktemp("cli") / "run.yaml"
    config.write_text(PIPELINE_CONFIG, encoding="utf-8")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_dev.home),
           "DYNALLOC_DATA_ROOT": str(dagster_dev.data_root)}
    result = subprocess.run([sys.executable, "-m", "dynalloc_dagster", "--config", str(config)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def test_make_run_launches_runs_the_job_pages_show(dagster_dev, asset_nodes,
                                                   pipeline_through_cli):
    out = pipeline_through_cli.stdout
    assert "report:   file://" in out and "today:    equity " in out
    assert "BetaWarning" not in pipeline_through_cli.stderr
    repository = asset_nodes["market_data"]["repository"]
    label = f"{repository['name']}@{repository['location']['name']}"
    # the job page lists the runs of the job that carry its code location's label
    runs = dagster_dev.graphql(RUNS_OF_JOB, {"filter": {
        "pipelineName": "reports_job",
        "tags": [{"key": ".dagster/repository", "value": label}]}})["runsOrError"]["results"]
    assert [r["status"] for r in runs] == ["SUCCESS"]


def _devtools_page(binary: Path, profile: Path, url: str, png: Path, *,
                   show_markdown: str | None = None) -> dict[str, Any]:
    """Load ``url`` in headless Chromium driven over the DevTools protocol, click the
    ``[Show Markdown]`` of metadata entry ``show_markdown`` (markdown longer than 1000
    characters opens in a dialog), wait for the images, screenshot to ``png``; returns
    the page text and how many embedded PNG images rendered."""
    websockets = pytest.importorskip("websockets", reason="the DevTools client needs websockets")
    import asyncio

    async def drive() -> dict[str, Any]:
        proc = subprocess.Popen(
            [str(binary), "--headless=new", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
             "--remote-debugging-port=0", "--window-size=1400,1800", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port_file = profile / "DevToolsActivePort"
            deadline = time.monotonic() + 60
            while not (port_file.exists() and port_file.read_text().strip()):
                assert time.monotonic() < deadline, "chromium did not open its DevTools port"
                await asyncio.sleep(0.1)
            port = port_file.read_text().split()[0]
            with urllib.request.urlopen(f"http://{HOST}:{port}/json", timeout=10) as answer:
                target = next(t for t in json.load(answer) if t["type"] == "page")
            async with websockets.connect(target["webSocketDebuggerUrl"],
                                          max_size=2**28) as ws:
                counter = iter(range(1, 10**6))

                async def call(method: str, **params: Any) -> dict[str, Any]:
                    ident = next(counter)
                    await ws.send(json.dumps({"id": ident, "method": method,
                                              "params": params}))
                    while True:
                        message = json.loads(await ws.recv())
                        if message.get("id") == ident:
                            return message.get("result", {})

                async def js(expression: str) -> Any:
                    result = await call("Runtime.evaluate", expression=expression,
                                        returnByValue=True, awaitPromise=True)
                    return result.get("result", {}).get("value")

                await call("Page.navigate", url=url)
                for _ in range(120):
                    await asyncio.sleep(0.5)
                    if await js("!!document.body && document.body.innerText"
                                ".includes('Metadata')"):
                        break
                await asyncio.sleep(2)
                if show_markdown is not None:
                    clicked = await js(f"""(() => {{
                      const rows = [...document.querySelectorAll('tr')].filter(r =>
                        r.cells.length > 1 && r.cells[0].innerText.trim() ===
                        {json.dumps(show_markdown)});
                      for (const r of rows) {{
                        const hits = [...r.querySelectorAll('*')].filter(e =>
                          e.innerText && e.innerText.trim() === '[Show Markdown]');
                        if (hits.length) {{ hits[hits.length - 1].click(); return true; }}
                      }}
                      return false; }})()""")
                    assert clicked, f"no [Show Markdown] for {show_markdown} on {url}"
                images = 0
                for _ in range(60):
                    await asyncio.sleep(0.5)
                    images = await js(
                        "[...document.querySelectorAll('img')].filter(i =>"
                        " i.src.startsWith('data:image/png') && i.complete &&"
                        " i.naturalWidth > 0).length")
                    if images or show_markdown is None:
                        break
                if show_markdown is None:  # bring the metadata table into the screenshot
                    await js("[...document.querySelectorAll('div, span, h2, h3')].find(e =>"
                             " e.innerText && e.innerText.trim() === 'Metadata')"
                             "?.scrollIntoView()")
                    await asyncio.sleep(1)
                text = await js("document.body.innerText")
                shot = await call("Page.captureScreenshot", format="png")
                png.write_bytes(base64.b64decode(shot["data"]))
                return {"text": text, "images": images}
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    return asyncio.run(drive())


@pytest.mark.parametrize(("asset", "entry", "min_images"), [
    ("report", "report", 10), ("charts", "charts", 10), ("recommended_allocation", None, 0),
    ("todays_allocation", None, 0), ("historical_backtest", "charts", 2)])
def test_business_outputs_render_in_the_browser(dagster_dev, chromium, pipeline_through_cli,
                                                tmp_path, asset, entry, min_images):
    import polars as pl

    assert dagster_dev.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = ARTIFACTS / f"{asset}.png"
    png.unlink(missing_ok=True)
    page = _devtools_page(chromium, tmp_path / "profile", f"{dagster_dev.url}/assets/{asset}",
                          png, show_markdown=entry)

    assert page["images"] >= min_images, page["text"][-2000:]
    allocation = pl.read_parquet(dagster_dev.data_root / "recommended_allocation.parquet")
    equity = allocation["equity_weight_today"][0]
    if asset in ("report", "recommended_allocation"):
        # today's weights as formatted numbers, in the report's decision and on the asset
        assert f"equity {equity:.1%}" in page["text"] or f"{equity:.1%}" in page["text"]
        assert f"{1 - equity:.1%}" in page["text"]
    if asset == "report":
        assert "Decision" in page["text"] and "synthetic market data" in page["text"]
    if asset in ("report", "charts", "recommended_allocation", "todays_allocation"):
        # the decision text is the first metadata entry, shown inline without a click
        assert "Mandate:" in page["text"] and f"{1 - equity:.1%}" in page["text"]
    if asset == "todays_allocation":
        assert "ILLUSTRATIVE" in page["text"]
    assert png.exists() and png.stat().st_size > 20_000
    pixels = image.imread(png)
    assert pixels[..., :3].std() > 0.02, "the screenshot is blank"
