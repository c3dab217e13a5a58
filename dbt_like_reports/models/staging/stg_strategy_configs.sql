-- stg_strategy_configs: the strategy_configs source, one row per config the optimisation
-- loop proposed, with the round and the proposer that produced it.
-- staging: select, rename and cast only. risk_aversion is null for the inverse rules,
-- which ignore it (engine.strategy.config.StrategyConfig).

with source as (

    select * from {{ ref('strategy_configs') }}

),

final as (

    select
        cast(config_id as varchar) as config_id,
        cast(round as bigint) as round,
        cast(proposer as varchar) as proposer,
        cast(target_vol as double) as target_vol,
        cast(weight_fn as varchar) as weight_fn,
        cast(vol_window_months as bigint) as vol_window_months,
        cast(risk_aversion as double) as risk_aversion,
        cast(tc_bps as double) as tc_bps,
        cast(min_allocation as double) as min_allocation,
        cast(max_allocation as double) as max_allocation,
        cast(no_trade_band as double) as no_trade_band

    from source

)

select * from final
