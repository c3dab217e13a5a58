-- robustness_leaderboard: one row per config of the optimisation history, best objective
-- first. robustness, worst_scenario, robust, the penalties, objective, feasible and
-- own_target_miss are the engine's (engine.optimisation.loop.optimisation_history,
-- scored against the InvestmentObjectives, robustness threshold included): this model
-- ranks and joins, it recomputes none of them.
--   rank 1 = highest objective (ties: lowest config_id; a null objective ranks last).
-- risk_aversion is null for the rules that ignore it (the inverse rules); every config
-- is evaluated at the one assumed tc_bps. worst_sharpe_mean and mean_sharpe_mean: the
-- config's lowest and average defined sharpe_mean over the scenarios evaluated.
-- n_scenarios_meeting: scenarios where the config meets every mandate check
-- (meets_objectives, the engine's flag).
-- distinct alternatives: near_duplicate_of is the best-ranked config above this one with
-- the same weight_fn, target_vol within 0.005, vol_window_months within 1 month and
-- risk_aversion within 0.25 (or null for both): a committee reads them as one rule, so
-- the report shows the better one only. best_of_weight_fn marks the highest-ranked
-- scored config of each weight function.

-- means add their terms in a fixed order (array_mean(array_agg(... order by ...)), the
-- same as avg: nulls skipped): the rows arrive in whatever order the partitions were
-- loaded, and float addition is not associative (same inputs, same bytes).
with history as (

    select * from {{ ref('stg_optimisation_history') }}

),

evaluations as (

    select * from {{ ref('stg_strategy_evaluations') }}

),

sharpe_summary as (

    select
        config_id,
        min(sharpe_mean) as worst_sharpe_mean,
        array_mean(array_agg(sharpe_mean order by scenario)) as mean_sharpe_mean,
        sum(case when meets_objectives then 1 else 0 end) as n_scenarios_meeting,
        count(*) as n_scenarios
    from evaluations
    group by config_id

),

ranked as (

    select
        row_number() over (
            order by objective desc nulls last, config_id
        ) as rank,
        row_number() over (
            partition by weight_fn order by objective desc nulls last, config_id
        ) as rank_in_weight_fn,
        *
    from history

),

near_pairs as (

    select
        later.config_id,
        min(earlier.rank) as near_rank
    from ranked as later
    inner join ranked as earlier on later.weight_fn = earlier.weight_fn
    where earlier.rank < later.rank
        and abs(earlier.target_vol - later.target_vol) <= 0.005
        and abs(earlier.vol_window_months - later.vol_window_months) <= 1
        and (
            (earlier.risk_aversion is null and later.risk_aversion is null)
            or abs(earlier.risk_aversion - later.risk_aversion) <= 0.25
        )
    group by later.config_id

),

near as (

    select
        near_pairs.config_id,
        ranked.config_id as near_duplicate_of
    from near_pairs
    inner join ranked on near_pairs.near_rank = ranked.rank

),

final as (

    select
        ranked.rank,
        ranked.config_id,
        ranked.round,
        ranked.proposer,
        ranked.objective,
        ranked.robustness,
        ranked.robust,
        ranked.worst_scenario,
        ranked.penalty_vol,
        ranked.penalty_drawdown,
        ranked.penalty_var95,
        ranked.penalty_cvar95,
        ranked.penalty_cost,
        ranked.penalty,
        ranked.feasible,
        ranked.own_target_miss,
        sharpe_summary.n_scenarios_meeting,
        sharpe_summary.n_scenarios,
        near.near_duplicate_of,
        (ranked.rank_in_weight_fn = 1 and ranked.objective is not null) as best_of_weight_fn,
        ranked.weight_fn,
        ranked.target_vol,
        ranked.vol_window_months,
        ranked.risk_aversion,
        ranked.tc_bps,
        sharpe_summary.worst_sharpe_mean,
        sharpe_summary.mean_sharpe_mean
    from ranked
    left join sharpe_summary on ranked.config_id = sharpe_summary.config_id
    left join near on ranked.config_id = near.config_id
    order by ranked.rank

)

select * from final
