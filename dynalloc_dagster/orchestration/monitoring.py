"""Monitoring: re-optimise early when the market's regime shifts.

``regime_shift_reoptimisation`` watches ``market_regime`` materializations. When the
regime today looks like differs from the previous materialization's, it starts a new
pipeline at the ingest stage (dynalloc_dagster.orchestration.stages.stage_request) with
the run config of the pipeline that saw the shift (same source, as-of date and sizes)
and the agent seeded from the as-of date, as the quarterly re-optimisation does: a fresh
search for the new regime, without waiting for the quarter. The new pipeline's own
market_regime sees no shift (it compares with the one that did), so the sensor does not
chain itself.
Off by default: turn it on in the UI (Automation) or with ``dagster sensor start``.
"""

from __future__ import annotations

import json
from typing import Any

import dagster as dg

from dynalloc_dagster.assets.live import MARKET_REGIME
from dynalloc_dagster.orchestration.stages import stage_request
from dynalloc_dagster.tags import RUN_CONFIG_TAG, START_JOB

PIPELINE = "regime_shift"


def reoptimisation_request(
    instance: dg.DagsterInstance, event: dg.EventLogEntry
) -> dg.RunRequest | dg.SkipReason:
    """The ingest stage of a fresh optimisation if ``event`` (a market_regime
    materialization) records a regime shift, else why not."""
    materialization = event.asset_materialization
    metadata = {k: v.value for k, v in (materialization.metadata if materialization else {}
                                        ).items()}
    regime, previous = metadata.get("regime"), metadata.get("previous_regime", "none")
    if regime is None or previous in (None, "none") or regime == previous:
        return dg.SkipReason(f"no regime shift ({previous} -> {regime})")
    run = instance.get_run_by_id(event.run_id) if event.run_id else None
    run_config: dict[str, Any] = json.loads(run.tags.get(RUN_CONFIG_TAG, "{}")) if run else {}
    as_of = str(metadata.get("as_of", ""))
    ops = dict(run_config.get("ops") or {})
    market = dict(ops.get("market_data") or {})
    market["config"] = {"as_of": as_of, **(market.get("config") or {})}
    ops["market_data"] = market
    resources = dict(run_config.get("resources") or {})
    agent = dict(resources.get("agent") or {})
    agent["config"] = {**(agent.get("config") or {}),
                       "seed": int(as_of.replace("-", "") or 0)}
    resources["agent"] = agent
    return stage_request(START_JOB, instance, pipeline=PIPELINE,
                         run_config={**run_config, "ops": ops, "resources": resources},
                         run_key=f"{PIPELINE}:{event.run_id}:{previous}->{regime}")


@dg.asset_sensor(
    asset_key=MARKET_REGIME, job_name=START_JOB, name="regime_shift_reoptimisation",
    description="When market_regime records a regime shift, start a fresh optimisation"
    " (the pipeline from ingest, the agent seeded by the as-of date).",
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def regime_shift_reoptimisation(context: dg.SensorEvaluationContext,
                                asset_event: dg.EventLogEntry):
    return reoptimisation_request(context.instance, asset_event)
