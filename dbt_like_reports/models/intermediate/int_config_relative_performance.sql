-- int_config_relative_performance: per (scenario, config) the min-max normalised
-- sharpe_mean within the scenario, as engine.analysis.robustness.normalised_scores:
--   s = (m - min_c m) / (max_c m - min_c m), 1 for the scenario's best and 0 for its worst;
--   1.0 everywhere when the scenario's defined configs all tie; null when m is null.
-- also the config's rank in its scenario (1 = best; ties by lowest config_id).

with evaluations as (

    select * from {{ ref('stg_strategy_evaluations') }}

),

scenario_range as (

    select
        scenario,
        config_id,
        sharpe_mean,
        min(sharpe_mean) over (partition by scenario) as scenario_min_sharpe_mean,
        max(sharpe_mean) over (partition by scenario) as scenario_max_sharpe_mean
    from evaluations

),

normalised as (

    select
        scenario,
        config_id,
        sharpe_mean,
        scenario_min_sharpe_mean,
        scenario_max_sharpe_mean,
        case
            when sharpe_mean is null then null
            when scenario_max_sharpe_mean - scenario_min_sharpe_mean > 0
                then (sharpe_mean - scenario_min_sharpe_mean)
                    / (scenario_max_sharpe_mean - scenario_min_sharpe_mean)
            else 1.0
        end as normalised_score
    from scenario_range

),

final as (

    select
        scenario,
        config_id,
        sharpe_mean,
        scenario_min_sharpe_mean,
        scenario_max_sharpe_mean,
        normalised_score,
        case
            when sharpe_mean is null then null
            else row_number() over (
                partition by scenario order by sharpe_mean desc nulls last, config_id
            )
        end as rank_in_scenario
    from normalised
    order by scenario, config_id

)

select * from final
