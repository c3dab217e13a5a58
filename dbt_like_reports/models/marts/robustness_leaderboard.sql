-- robustness_leaderboard: one row per config of the optimisation history, best objective
-- first. robustness, worst_scenario, robust, penalty, objective and feasible are the
-- engine's (engine.optimisation.loop.optimisation_history, scored against the
-- InvestmentObjectives, robustness threshold included): this model ranks and joins,
-- it recomputes none of them.
--   rank 1 = highest objective (ties: lowest config_id; a null objective ranks last).
-- risk_aversion is null for the rules that ignore it (the inverse rules); every config
-- is evaluated at the one assumed tc_bps. worst_sharpe_mean and mean_sharpe_mean: the
-- config's lowest and average defined sharpe_mean over the scenarios evaluated.

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
        array_mean(array_agg(sharpe_mean order by scenario)) as mean_sharpe_mean
    from evaluations
    group by config_id

),

final as (

    select
        row_number() over (
            order by history.objective desc nulls last, history.config_id
        ) as rank,
        history.config_id,
        history.round,
        history.proposer,
        history.objective,
        history.robustness,
        history.robust,
        history.worst_scenario,
        history.penalty,
        history.feasible,
        history.weight_fn,
        history.target_vol,
        history.vol_window_months,
        history.risk_aversion,
        history.tc_bps,
        sharpe_summary.worst_sharpe_mean,
        sharpe_summary.mean_sharpe_mean
    from history
    left join sharpe_summary on history.config_id = sharpe_summary.config_id
    order by rank

)

select * from final
