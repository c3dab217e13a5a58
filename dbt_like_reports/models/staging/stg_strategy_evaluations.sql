-- stg_strategy_evaluations: the strategy_evaluations source (engine.strategy.evaluate,
-- every scenario x config partition concatenated), one row per (scenario, config).
-- staging: select, rename and cast only. a nan metric (undefined on every path) is cast
-- to sql null, so that every later model treats "undefined" the sql way: skipped by
-- min/max/avg and never the best. risk_aversion is null for the inverse rules.

with source as (

    select * from {{ ref('strategy_evaluations') }}

),

final as (

    select
        -- keys
        cast(scenario as varchar) as scenario,
        cast(config_id as varchar) as config_id,

        -- the config's hyperparameters
        cast(target_vol as double) as target_vol,
        cast(weight_fn as varchar) as weight_fn,
        cast(vol_window_months as bigint) as vol_window_months,
        cast(risk_aversion as double) as risk_aversion,
        cast(tc_bps as double) as tc_bps,
        cast(min_allocation as double) as min_allocation,
        cast(max_allocation as double) as max_allocation,
        cast(no_trade_band as double) as no_trade_band,
        cast(n_paths as bigint) as n_paths,

        -- ann_return across paths: mean, median, 5th and 95th percentile
        nullif(cast(ann_return_mean as double), cast('nan' as double)) as ann_return_mean,
        nullif(cast(ann_return_median as double), cast('nan' as double)) as ann_return_median,
        nullif(cast(ann_return_p5 as double), cast('nan' as double)) as ann_return_p5,
        nullif(cast(ann_return_p95 as double), cast('nan' as double)) as ann_return_p95,

        -- ann_vol across paths: mean, median, 5th and 95th percentile
        nullif(cast(ann_vol_mean as double), cast('nan' as double)) as ann_vol_mean,
        nullif(cast(ann_vol_median as double), cast('nan' as double)) as ann_vol_median,
        nullif(cast(ann_vol_p5 as double), cast('nan' as double)) as ann_vol_p5,
        nullif(cast(ann_vol_p95 as double), cast('nan' as double)) as ann_vol_p95,

        -- sharpe across paths: mean, median, 5th and 95th percentile
        nullif(cast(sharpe_mean as double), cast('nan' as double)) as sharpe_mean,
        nullif(cast(sharpe_median as double), cast('nan' as double)) as sharpe_median,
        nullif(cast(sharpe_p5 as double), cast('nan' as double)) as sharpe_p5,
        nullif(cast(sharpe_p95 as double), cast('nan' as double)) as sharpe_p95,

        -- sortino across paths: mean, median, 5th and 95th percentile
        nullif(cast(sortino_mean as double), cast('nan' as double)) as sortino_mean,
        nullif(cast(sortino_median as double), cast('nan' as double)) as sortino_median,
        nullif(cast(sortino_p5 as double), cast('nan' as double)) as sortino_p5,
        nullif(cast(sortino_p95 as double), cast('nan' as double)) as sortino_p95,

        -- max_drawdown across paths: mean, median, 5th and 95th percentile
        nullif(cast(max_drawdown_mean as double), cast('nan' as double)) as max_drawdown_mean,
        nullif(cast(max_drawdown_median as double), cast('nan' as double)) as max_drawdown_median,
        nullif(cast(max_drawdown_p5 as double), cast('nan' as double)) as max_drawdown_p5,
        nullif(cast(max_drawdown_p95 as double), cast('nan' as double)) as max_drawdown_p95,

        -- var95 across paths: mean, median, 5th and 95th percentile
        nullif(cast(var95_mean as double), cast('nan' as double)) as var95_mean,
        nullif(cast(var95_median as double), cast('nan' as double)) as var95_median,
        nullif(cast(var95_p5 as double), cast('nan' as double)) as var95_p5,
        nullif(cast(var95_p95 as double), cast('nan' as double)) as var95_p95,

        -- cvar95 across paths: mean, median, 5th and 95th percentile
        nullif(cast(cvar95_mean as double), cast('nan' as double)) as cvar95_mean,
        nullif(cast(cvar95_median as double), cast('nan' as double)) as cvar95_median,
        nullif(cast(cvar95_p5 as double), cast('nan' as double)) as cvar95_p5,
        nullif(cast(cvar95_p95 as double), cast('nan' as double)) as cvar95_p95,

        -- turnover across paths: mean, median, 5th and 95th percentile
        nullif(cast(turnover_mean as double), cast('nan' as double)) as turnover_mean,
        nullif(cast(turnover_median as double), cast('nan' as double)) as turnover_median,
        nullif(cast(turnover_p5 as double), cast('nan' as double)) as turnover_p5,
        nullif(cast(turnover_p95 as double), cast('nan' as double)) as turnover_p95,

        -- cost_drag across paths: mean, median, 5th and 95th percentile
        nullif(cast(cost_drag_mean as double), cast('nan' as double)) as cost_drag_mean,
        nullif(cast(cost_drag_median as double), cast('nan' as double)) as cost_drag_median,
        nullif(cast(cost_drag_p5 as double), cast('nan' as double)) as cost_drag_p5,
        nullif(cast(cost_drag_p95 as double), cast('nan' as double)) as cost_drag_p95,

        -- tracking_error across paths: mean, median, 5th and 95th percentile
        nullif(cast(tracking_error_mean as double), cast('nan' as double)) as tracking_error_mean,
        nullif(cast(tracking_error_median as double), cast('nan' as double)) as tracking_error_median,
        nullif(cast(tracking_error_p5 as double), cast('nan' as double)) as tracking_error_p5,
        nullif(cast(tracking_error_p95 as double), cast('nan' as double)) as tracking_error_p95,

        -- avg_equity_weight across paths: mean, median, 5th and 95th percentile
        nullif(cast(avg_equity_weight_mean as double), cast('nan' as double)) as avg_equity_weight_mean,
        nullif(cast(avg_equity_weight_median as double), cast('nan' as double)) as avg_equity_weight_median,
        nullif(cast(avg_equity_weight_p5 as double), cast('nan' as double)) as avg_equity_weight_p5,
        nullif(cast(avg_equity_weight_p95 as double), cast('nan' as double)) as avg_equity_weight_p95,

        -- investment objectives, judged on the median path (engine.objectives):
        -- pass_vol against the mandate's target vol, pass_vol_own_target against the
        -- config's own target_vol; meets_objectives = every mandate check (not the latter)
        cast(pass_vol as boolean) as pass_vol,
        cast(pass_vol_own_target as boolean) as pass_vol_own_target,
        cast(pass_sharpe as boolean) as pass_sharpe,
        cast(pass_drawdown as boolean) as pass_drawdown,
        cast(pass_var95 as boolean) as pass_var95,
        cast(pass_cvar95 as boolean) as pass_cvar95,
        cast(pass_cost as boolean) as pass_cost,
        cast(meets_objectives as boolean) as meets_objectives

    from source

)

select * from final
