-- int_config_parameter_bands: one row per (scenario, config) with the config's
-- hyperparameters and the fixed band of the search space each numeric one falls in.
-- the single definition of the bands, read by parameter_sensitivity and
-- weight_window_interaction. bands are left-closed; a value outside the search space
-- falls into the end band:
--   target_vol         5 bands of 0.03 over 0.05-0.20: 0.05-0.08 ... 0.17-0.20
--   vol_window_months  6-11m, 12-17m, 18-24m
--   risk_aversion      5 bands of 0.9 over 0.5-5.0: 0.5-1.4 ... 4.1-5.0, only for the
--                      linear and sigmoid rules (null for the inverse rules, which ignore it)
-- tc_bps has no band: it is one cost assumption for every config, not a search parameter.

with evaluations as (

    select * from {{ ref('stg_strategy_evaluations') }}

),

final as (

    select
        scenario,
        config_id,
        weight_fn,
        target_vol,
        case
            when target_vol < 0.08 then '0.05-0.08'
            when target_vol < 0.11 then '0.08-0.11'
            when target_vol < 0.14 then '0.11-0.14'
            when target_vol < 0.17 then '0.14-0.17'
            else '0.17-0.20'
        end as target_vol_band,
        vol_window_months,
        case
            when vol_window_months < 12 then '6-11m'
            when vol_window_months < 18 then '12-17m'
            else '18-24m'
        end as vol_window_band,
        risk_aversion,
        case
            when weight_fn not in ('linear', 'sigmoid') or risk_aversion is null then null
            when risk_aversion < 1.4 then '0.5-1.4'
            when risk_aversion < 2.3 then '1.4-2.3'
            when risk_aversion < 3.2 then '2.3-3.2'
            when risk_aversion < 4.1 then '3.2-4.1'
            else '4.1-5.0'
        end as risk_aversion_band,
        sharpe_mean
    from evaluations
    order by scenario, config_id

)

select * from final
