-- constraint_compliance: one row per (config, scenario): which investment objectives the
-- config meets there (engine.objectives, judged on the median path), the median-path
-- figures they were judged on, and across scenarios the number of scenarios in which the
-- config meets every objective. the six mandate checks (pass_vol against the mandate's
-- target vol, pass_sharpe ... pass_cost) make meets_objectives and n_objectives_passed;
-- pass_vol_own_target (vol accuracy against the config's own target_vol) is reported
-- beside them and counts in neither.

with evaluations as (

    select * from {{ ref('stg_strategy_evaluations') }}

),

flags as (

    select
        config_id,
        scenario,
        pass_vol,
        pass_vol_own_target,
        pass_sharpe,
        pass_drawdown,
        pass_var95,
        pass_cvar95,
        pass_cost,
        meets_objectives,
        (case when pass_vol then 1 else 0 end)
            + (case when pass_sharpe then 1 else 0 end)
            + (case when pass_drawdown then 1 else 0 end)
            + (case when pass_var95 then 1 else 0 end)
            + (case when pass_cvar95 then 1 else 0 end)
            + (case when pass_cost then 1 else 0 end) as n_objectives_passed,
        target_vol,
        ann_vol_median,
        sharpe_median,
        max_drawdown_median,
        var95_median,
        cvar95_median,
        cost_drag_median
    from evaluations

),

final as (

    select
        config_id,
        scenario,
        pass_vol,
        pass_vol_own_target,
        pass_sharpe,
        pass_drawdown,
        pass_var95,
        pass_cvar95,
        pass_cost,
        meets_objectives,
        cast(n_objectives_passed as bigint) as n_objectives_passed,
        cast(
            sum(case when meets_objectives then 1 else 0 end) over (partition by config_id)
            as bigint
        ) as n_scenarios_meeting_objectives,
        count(*) over (partition by config_id) as n_scenarios,
        target_vol,
        ann_vol_median,
        sharpe_median,
        max_drawdown_median,
        var95_median,
        cvar95_median,
        cost_drag_median
    from flags
    order by config_id, scenario

)

select * from final
