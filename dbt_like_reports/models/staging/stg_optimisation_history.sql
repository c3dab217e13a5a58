-- stg_optimisation_history: the optimisation_history source
-- (engine.optimisation.loop.optimisation_history), one row per evaluated config in
-- evaluation order. robustness, penalty, objective and feasible are the engine's: the
-- one implementation of the robustness and objective definitions; no model recomputes them.
-- staging: select, rename and cast only. a nan score becomes sql null.

with source as (

    select * from {{ ref('optimisation_history') }}

),

final as (

    select
        cast(evaluation_index as bigint) as evaluation_index,
        cast(round as bigint) as round,
        cast(config_id as varchar) as config_id,
        cast(proposer as varchar) as proposer,
        cast(weight_fn as varchar) as weight_fn,
        cast(target_vol as double) as target_vol,
        cast(vol_window_months as bigint) as vol_window_months,
        cast(risk_aversion as double) as risk_aversion,
        cast(tc_bps as double) as tc_bps,
        nullif(cast(robustness as double), cast('nan' as double)) as robustness,
        cast(worst_scenario as varchar) as worst_scenario,
        cast(robust as boolean) as robust,
        nullif(cast(penalty_vol as double), cast('nan' as double)) as penalty_vol,
        nullif(cast(penalty_drawdown as double), cast('nan' as double)) as penalty_drawdown,
        nullif(cast(penalty_var95 as double), cast('nan' as double)) as penalty_var95,
        nullif(cast(penalty_cvar95 as double), cast('nan' as double)) as penalty_cvar95,
        nullif(cast(penalty_cost as double), cast('nan' as double)) as penalty_cost,
        nullif(cast(penalty as double), cast('nan' as double)) as penalty,
        nullif(cast(objective as double), cast('nan' as double)) as objective,
        cast(feasible as boolean) as feasible,
        nullif(cast(own_target_miss as double), cast('nan' as double)) as own_target_miss,
        nullif(
            cast(best_objective_so_far as double), cast('nan' as double)
        ) as best_objective_so_far,
        cast(stop_reason as varchar) as stop_reason,
        cast(optimum_at_edge as varchar) as optimum_at_edge

    from source

)

select * from final
