-- scenario_comparison: one row per scenario, comparing how the sampled configs fare:
-- the best config (int_scenario_best), the spread of sharpe_mean across configs, the
-- share of configs meeting all investment objectives (the mandate's) and each objective on
-- its own (vol accuracy against the mandate's target and against the config's own), and
-- the configs' average risk and cost figures. averages skip undefined (null) metrics;
-- the median of an even count is the midpoint of the two middle values.

-- means of floats add their terms in a fixed order (array_mean(array_agg(... order by
-- ...)), the same as avg: nulls skipped): the rows arrive in whatever order the
-- partitions were loaded, and float addition is not associative (same inputs, same
-- bytes); the shares average 0/1 values, exact in any order.
with evaluations as (

    select * from {{ ref('stg_strategy_evaluations') }}

),

scenario_best as (

    select * from {{ ref('int_scenario_best') }}

),

per_scenario as (

    select
        scenario,
        count(*) as n_configs,
        median(sharpe_mean) as median_sharpe_mean,
        array_mean(array_agg(sharpe_mean order by config_id)) as mean_sharpe_mean,
        array_mean(array_agg(ann_return_mean order by config_id)) as mean_ann_return,
        array_mean(array_agg(ann_vol_mean order by config_id)) as mean_ann_vol,
        array_mean(array_agg(max_drawdown_mean order by config_id)) as mean_max_drawdown,
        max(max_drawdown_mean) as worst_max_drawdown,
        array_mean(array_agg(cvar95_mean order by config_id)) as mean_cvar95,
        array_mean(array_agg(turnover_mean order by config_id)) as mean_turnover,
        array_mean(array_agg(cost_drag_mean order by config_id)) as mean_cost_drag,
        sum(case when meets_objectives then 1 else 0 end) as n_meeting_objectives,
        avg(case when meets_objectives then 1.0 else 0.0 end) as share_meeting_objectives,
        avg(case when pass_vol then 1.0 else 0.0 end) as share_pass_vol,
        avg(case when pass_vol_own_target then 1.0 else 0.0 end) as share_pass_vol_own_target,
        avg(case when pass_sharpe then 1.0 else 0.0 end) as share_pass_sharpe,
        avg(case when pass_drawdown then 1.0 else 0.0 end) as share_pass_drawdown,
        avg(case when pass_var95 then 1.0 else 0.0 end) as share_pass_var95,
        avg(case when pass_cvar95 then 1.0 else 0.0 end) as share_pass_cvar95,
        avg(case when pass_cost then 1.0 else 0.0 end) as share_pass_cost
    from evaluations
    group by scenario

),

final as (

    select
        per_scenario.scenario,
        per_scenario.n_configs,
        scenario_best.config_id as best_config_id,
        scenario_best.best_sharpe_mean,
        per_scenario.median_sharpe_mean,
        per_scenario.mean_sharpe_mean,
        scenario_best.worst_sharpe_mean,
        scenario_best.best_sharpe_mean - scenario_best.worst_sharpe_mean as sharpe_mean_spread,
        cast(per_scenario.n_meeting_objectives as bigint) as n_meeting_objectives,
        per_scenario.share_meeting_objectives,
        per_scenario.share_pass_vol,
        per_scenario.share_pass_vol_own_target,
        per_scenario.share_pass_sharpe,
        per_scenario.share_pass_drawdown,
        per_scenario.share_pass_var95,
        per_scenario.share_pass_cvar95,
        per_scenario.share_pass_cost,
        per_scenario.mean_ann_return,
        per_scenario.mean_ann_vol,
        per_scenario.mean_max_drawdown,
        per_scenario.worst_max_drawdown,
        per_scenario.mean_cvar95,
        per_scenario.mean_turnover,
        per_scenario.mean_cost_drag
    from per_scenario
    left join scenario_best on per_scenario.scenario = scenario_best.scenario
    order by per_scenario.scenario

)

select * from final
