"""The investment-committee narrative: the tables it is written from, the Bedrock prompt,
and the deterministic offline text with the same sections."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from dynalloc_dagster.bedrock.client import BedrockClient
from dynalloc_dagster.bedrock.markdown import cell, markdown_table, safe_markdown
from dynalloc_dagster.partitions import in_scenario_order, scenario_label

OFFLINE_AUTHOR = "offline (deterministic, written without Bedrock)"
SECTIONS = (
    "Executive summary",
    "Recommended rule",
    "Regime notes",
    "Optimisation history",
    "Risks and limits",
)
TOP_CONFIGS = 10
COMPLIANCE_CONFIGS = 3

_LEADERBOARD_COLUMNS = (
    "rank", "config_id", "weight_fn", "target_vol", "vol_window_months", "risk_aversion",
    "robustness", "penalty", "objective", "feasible", "worst_scenario", "robust",
)
_SCENARIO_COLUMNS = (
    "scenario", "n_configs", "best_config_id", "best_sharpe_mean", "median_sharpe_mean",
    "worst_sharpe_mean", "n_meeting_objectives", "share_meeting_objectives", "mean_ann_vol",
    "mean_max_drawdown", "mean_cvar95", "mean_cost_drag",
)
_SENSITIVITY_COLUMNS = ("scenario", "parameter", "main_effect_share", "rank_in_scenario")
_COMPLIANCE_COLUMNS = (
    "config_id", "scenario", "pass_vol", "pass_vol_own_target", "pass_sharpe", "pass_drawdown",
    "pass_var95", "pass_cvar95", "pass_cost", "meets_objectives", "ann_vol_median",
    "sharpe_median", "max_drawdown_median", "var95_median", "cvar95_median", "cost_drag_median",
)
_RULES = {
    "inverse_vol": "scales equity by target vol over realised vol, so the portfolio's"
                   " equity risk stays near the target as volatility moves",
    "inverse_vol_squared": "scales equity by the square of target over realised vol: it"
                           " cuts harder than inverse vol when volatility spikes and adds"
                           " more when it is calm",
    "linear": "cuts equity linearly once realised vol exceeds the target, with slope"
              " risk_aversion / target_vol; below the target it holds the maximum",
    "sigmoid": "moves equity along a logistic curve centred on the target vol, with"
               " steepness risk_aversion / target_vol: gradual near the target, decisive"
               " far from it",
}

SYSTEM_PROMPT = (
    "You write for the investment committee of a multi-asset fund. You explain the results"
    " of a Monte Carlo study of volatility-targeted equity/bond allocation rules across"
    " simulated market regimes. Use only figures that appear in the tables you are given,"
    " rounded as shown or to fewer digits; decimals may be written as percentages (0.1234"
    " as 12.3%). Never compute new figures such as differences, ratios or averages, and"
    " never invent data. Write plain markdown without a preamble."
)


@dataclass(frozen=True)
class ReportTables:
    """Everything the narrative is written from (and checked against).

    Attributes
    ----------
    leaderboard : one row per config; reads rank, config_id, weight_fn, target_vol,
        vol_window_months, risk_aversion (null: unused by the rule), robustness, objective,
        worst_scenario, robust.
    scenario_comparison : one row per scenario; reads scenario, best_config_id,
        best_sharpe_mean, median_sharpe_mean, worst_sharpe_mean, n_meeting_objectives,
        n_configs.
    parameter_sensitivity : per (scenario, parameter); reads main_effect_share.
    optimisation_history : one row per evaluated config; reads evaluation_index, round,
        proposer, objective, best_objective_so_far, stop_reason.
    constraint_compliance : per (config, scenario) pass columns and median-path figures;
        reads config_id, scenario, sharpe_median, max_drawdown_median, meets_objectives.
    objectives : engine InvestmentObjectives as a dict (decimals; bps where named so).
    unmet_objectives : pass columns no config meets in every scenario.
    recommended : config_id, weight_fn, target_vol, vol_window_months, risk_aversion (None
        when unused), equity_weight (today's), as_of (date).
    """

    leaderboard: pl.DataFrame
    scenario_comparison: pl.DataFrame
    parameter_sensitivity: pl.DataFrame
    optimisation_history: pl.DataFrame
    constraint_compliance: pl.DataFrame
    objectives: Mapping[str, float]
    unmet_objectives: Sequence[str]
    recommended: Mapping[str, Any]

    def frames(self) -> dict[str, pl.DataFrame]:
        """The five tables by name."""
        return {
            "leaderboard": self.leaderboard,
            "scenario_comparison": self.scenario_comparison,
            "parameter_sensitivity": self.parameter_sensitivity,
            "optimisation_history": self.optimisation_history,
            "constraint_compliance": self.constraint_compliance,
        }


@dataclass(frozen=True, slots=True)
class Narrative:
    """The narrative and how it was written.

    Attributes
    ----------
    text : markdown.
    written_by : ``bedrock:<model id>`` or :data:`OFFLINE_AUTHOR`.
    model_id : the Bedrock model, None offline.
    input_tokens, output_tokens, latency_ms, cost_usd : the Converse call's usage
        (Bedrock's ``metrics.latencyMs``; cost from the configured price); 0 offline.
    """

    text: str
    written_by: str
    model_id: str | None
    input_tokens: int
    output_tokens: int
    latency_ms: int
    cost_usd: float


def write_narrative(tables: ReportTables, client: BedrockClient | None) -> Narrative:
    """The narrative by Bedrock through ``client`` (made safe to store and show:
    :func:`~dynalloc_dagster.bedrock.markdown.safe_markdown`), or offline when ``client``
    is None."""
    if client is None:
        return Narrative(offline_narrative(tables), OFFLINE_AUTHOR, None, 0, 0, 0, 0.0)
    reply = client.converse(narrative_prompt(tables), system=SYSTEM_PROMPT)
    return Narrative(
        text=safe_markdown(reply.text()),
        written_by=f"bedrock:{client.model_id}",
        model_id=client.model_id,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        latency_ms=reply.latency_ms,
        cost_usd=reply.cost_usd,
    )


def narrative_prompt(tables: ReportTables) -> str:
    """The user message: the task, then the tables as compact markdown.

    The leaderboard is cut to its top :data:`TOP_CONFIGS` rows, compliance to the top
    :data:`COMPLIANCE_CONFIGS` configs, the history to one row per round.
    """
    top_ids = _ranked(tables.leaderboard)["config_id"].head(COMPLIANCE_CONFIGS).to_list()
    compliance = tables.constraint_compliance.filter(pl.col("config_id").is_in(top_ids))
    headings = "\n".join(f"## {name}" for name in SECTIONS)
    parts = [
        "Write the narrative of the investment-committee report on the study below, in"
        " these sections, with these headings:",
        headings,
        "Executive summary: what was studied and what the committee should decide, in a"
        " few sentences. Recommended rule: the recommended rule and why each of its"
        " parameters (weight function, target vol, vol window, risk aversion when the rule"
        " uses it) makes sense, citing the tables. Regime notes: which configs win in which"
        " regime and how the recommended rule fares there. Optimisation history: how the"
        " search progressed and why it stopped. Risks and limits: the objectives no config"
        " meets, model and cost assumptions, what the analysis cannot tell.",
        "Robustness of a config is the minimum over scenarios of"
        " 1 - (best_s - m) / |best_s|, m its mean Sharpe, best_s the best m in the scenario;"
        " a config is robust when its robustness reaches the objectives'"
        " robustness_threshold. Objective = robustness - penalty_weight x penalty.",
        "The report names the scenarios (the tables' keys) as: " + "; ".join(
            f"{key} = {scenario_label(key)}"
            for key in in_scenario_order(tables.scenario_comparison["scenario"].to_list()))
        + ". Use those names in the text.",
        "### Investment objectives\n" + _key_values(tables.objectives),
        "### Objectives no config meets in every scenario\n"
        + (", ".join(tables.unmet_objectives) or "none"),
        "### Recommended rule\n" + _key_values(tables.recommended),
        f"### Leaderboard (top {min(TOP_CONFIGS, tables.leaderboard.height)} of"
        f" {tables.leaderboard.height})\n"
        + markdown_table(_ranked(tables.leaderboard).head(TOP_CONFIGS), _LEADERBOARD_COLUMNS),
        "### Scenario comparison\n"
        + markdown_table(tables.scenario_comparison, _SCENARIO_COLUMNS),
        "### Parameter sensitivity (main-effect share of mean-Sharpe variance)\n"
        + markdown_table(tables.parameter_sensitivity, _SENSITIVITY_COLUMNS),
        "### Optimisation history by round\n"
        + markdown_table(_rounds(tables.optimisation_history))
        + f"\nstop reason: {_stop_reason(tables.optimisation_history)}",
        "### Objectives compliance of the top configs (median path)\n"
        + markdown_table(compliance, _COMPLIANCE_COLUMNS),
    ]
    return "\n\n".join(parts) + "\n"


def offline_narrative(tables: ReportTables) -> str:
    """The same sections as the Bedrock narrative, written deterministically from the
    tables; every figure is a table value as rounded here, so the text passes
    :func:`dynalloc_dagster.bedrock.grounding.check_grounding`."""
    rec = tables.recommended
    objectives = tables.objectives
    ranked = _ranked(tables.leaderboard)
    best = ranked.row(0, named=True)
    history = tables.optimisation_history
    n_configs = ranked.height
    n_robust = int(ranked["robust"].sum())
    threshold = objectives["robustness_threshold"]
    lines = [
        "_Written without Bedrock: a deterministic summary generated from the tables._",
        "",
        f"## {SECTIONS[0]}",
        "",
        f"We evaluated {n_configs} allocation rules over {history['round'].n_unique()}"
        f" optimisation rounds across {tables.scenario_comparison.height} simulated market"
        f" regimes. The recommended rule is `{rec['config_id']}`, {_rule_summary(rec)}. Its"
        f" robustness is {best['robustness']:.2f}: in every regime it keeps at least that"
        f" share of the best mean Sharpe found; its worst regime is"
        f" {scenario_label(best['worst_scenario'])}."
        f" {n_robust} of {n_configs} rules are robust (robustness of at least"
        f" {threshold:.2f}).",
        "",
        _unmet_sentence(tables.unmet_objectives),
        "",
        f"## {SECTIONS[1]}",
        "",
        *_parameter_lines(tables, ranked),
        "",
        f"## {SECTIONS[2]}",
        "",
        *_regime_lines(tables),
        "",
        f"## {SECTIONS[3]}",
        "",
        *_history_lines(history),
        "",
        f"## {SECTIONS[4]}",
        "",
        *_risk_lines(tables),
    ]
    return "\n".join(lines) + "\n"


def _rule_summary(rec: Mapping[str, Any]) -> str:
    parts = [
        str(rec["weight_fn"]),
        f"target vol {rec['target_vol']:.1%}",
        f"{rec['vol_window_months']}-month vol window",
    ]
    if rec.get("risk_aversion") is not None:
        parts.append(f"risk aversion {rec['risk_aversion']:.2f}")
    return ", ".join(parts)


def _unmet_sentence(unmet: Sequence[str]) -> str:
    if not unmet:
        return "Every investment objective is met by at least one rule in every regime."
    return (
        "No rule meets these objectives in every regime: " + ", ".join(unmet) + "; the"
        " ranking penalises a missed vol band, drawdown, VaR, CVaR or cost limit in"
        " proportion to the miss, so it still orders the rules by how close they come (the"
        " minimum Sharpe is reported, not penalised)."
    )


def _parameter_lines(tables: ReportTables, ranked: pl.DataFrame) -> list[str]:
    rec = tables.recommended
    objectives = tables.objectives
    top = ranked.head(TOP_CONFIGS)
    same_fn = int((top["weight_fn"] == rec["weight_fn"]).sum())
    lines = [
        f"- Weight function {rec['weight_fn']}: {_RULES[str(rec['weight_fn'])]}."
        f" Rules using it among the top {top.height}: {same_fn}.",
        f"- Target vol {rec['target_vol']:.1%}: the mandate's target is"
        f" {objectives['target_vol']:.1%} with a tolerance of"
        f" {objectives['vol_tolerance']:.1%}.",
        f"- Vol window {rec['vol_window_months']} months: a longer window steadies the"
        " weight, a shorter one reacts sooner to a change of regime."
        + _sensitivity_clause(tables.parameter_sensitivity, "vol_window_months"),
    ]
    if rec.get("risk_aversion") is None:
        lines.append(f"- Risk aversion: not used by the {rec['weight_fn']} rule.")
    else:
        lines.append(
            f"- Risk aversion {rec['risk_aversion']:.2f}: sets how hard the rule cuts equity"
            " as realised vol moves away from the target."
            + _sensitivity_clause(tables.parameter_sensitivity, "risk_aversion")
        )
    lines.append(
        f"- Today's equity weight under the rule: {rec['equity_weight']:.1%}"
        f" (as of {_iso(rec['as_of'])})."
    )
    return lines


def _sensitivity_clause(sensitivity: pl.DataFrame, parameter: str) -> str:
    rows = sensitivity.filter(pl.col("parameter") == parameter).sort(
        ["main_effect_share", "scenario"], descending=[True, False]
    )
    if rows.is_empty():
        return ""
    top = rows.row(0, named=True)
    return (
        f" Its main-effect share of mean-Sharpe variance peaks at"
        f" {top['main_effect_share']:.2f} ({scenario_label(top['scenario'])})."
    )


def _regime_lines(tables: ReportTables) -> list[str]:
    rec_id = tables.recommended["config_id"]
    sensitivity = tables.parameter_sensitivity
    compliance = tables.constraint_compliance
    lines = []
    by_scenario = {row["scenario"]: row
                   for row in tables.scenario_comparison.iter_rows(named=True)}
    for scenario in in_scenario_order(list(by_scenario)):
        row = by_scenario[scenario]
        line = (
            f"- {scenario_label(scenario)}: best rule `{row['best_config_id']}` (mean Sharpe"
            f" {row['best_sharpe_mean']:.2f}); median {row['median_sharpe_mean']:.2f},"
            f" worst {row['worst_sharpe_mean']:.2f}; {row['n_meeting_objectives']} of"
            f" {row['n_configs']} rules meet every objective."
        )
        driver = sensitivity.filter(pl.col("scenario") == scenario).sort(
            ["main_effect_share", "parameter"], descending=[True, False]
        )
        if not driver.is_empty():
            top = driver.row(0, named=True)
            line += (
                f" The parameter that matters most: {top['parameter']} (share"
                f" {top['main_effect_share']:.2f})."
            )
        own = compliance.filter(
            (pl.col("config_id") == rec_id) & (pl.col("scenario") == scenario)
        )
        if not own.is_empty():
            mine = own.row(0, named=True)
            line += (
                f" The recommended rule: median-path Sharpe {mine['sharpe_median']:.2f},"
                f" max drawdown {mine['max_drawdown_median']:.1%},"
                f" {'meets' if mine['meets_objectives'] else 'misses'} the objectives."
            )
        lines.append(line)
    return lines


def _history_lines(history: pl.DataFrame) -> list[str]:
    lines = [
        f"- Round {row['round']} ({row['proposers']}): {row['configs']} evaluated;"
        f" best objective in the round {row['best_objective']:.3f}, best so far"
        f" {row['best_objective_so_far']:.3f}."
        for row in _rounds(history).iter_rows(named=True)
    ]
    lines.append(f"- Stop reason: {_stop_reason(history)}.")
    return lines


def _risk_lines(tables: ReportTables) -> list[str]:
    objectives = tables.objectives
    lines = [
        f"- The {tables.scenario_comparison.height} regimes are simulated (Heston equity,"
        " mean-reverting short rate), not forecasts: a market unlike all of them is not"
        " covered.",
        f"- Robustness is measured against the best of the {tables.leaderboard.height}"
        " rules evaluated; a wider search can find better rules and lower it.",
    ]
    if "assumed_tc_bps" in objectives:
        lines.append(
            f"- Every rule is ranked at one transaction-cost assumption of"
            f" {objectives['assumed_tc_bps']:g} bps; the cost sensitivity is reported"
            " separately."
        )
    lines += [
        "- " + _unmet_sentence(tables.unmet_objectives),
        "- Figures are means or medians across simulated paths; single paths can be much"
        " worse.",
    ]
    return lines


def _rounds(history: pl.DataFrame) -> pl.DataFrame:
    """One row per round: configs, proposers, best objective in the round, best so far."""
    return (
        history.sort("evaluation_index")
        .group_by("round", maintain_order=True)
        .agg(
            pl.len().alias("configs"),
            pl.col("proposer").unique(maintain_order=True).str.join(", ").alias("proposers"),
            pl.col("objective").max().alias("best_objective"),
            pl.col("best_objective_so_far").last(),
        )
        .sort("round")
    )


def _stop_reason(history: pl.DataFrame) -> str:
    reasons = history["stop_reason"].drop_nulls()
    return str(reasons[-1]) if reasons.len() else "still running"


def _ranked(leaderboard: pl.DataFrame) -> pl.DataFrame:
    return leaderboard.sort(["rank", "config_id"])


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _key_values(values: Mapping[str, Any]) -> str:
    return "\n".join(f"- {key}: {cell(value)}" for key, value in values.items())
