-- int_scenario_best: the best config of each scenario by sharpe_mean (ties: lowest
-- config_id), as engine.analysis.robustness.best_per_scenario. configs whose sharpe_mean is null
-- (undefined) are never best; a scenario with no defined config has no row.

with relative_performance as (

    select * from {{ ref('int_config_relative_performance') }}

),

defined as (

    select
        scenario,
        count(*) as n_configs
    from relative_performance
    where sharpe_mean is not null
    group by scenario

),

best as (

    select
        scenario,
        config_id,
        sharpe_mean as best_sharpe_mean,
        scenario_min_sharpe_mean as worst_sharpe_mean
    from relative_performance
    where rank_in_scenario = 1

),

final as (

    select
        best.scenario,
        best.config_id,
        best.best_sharpe_mean,
        best.worst_sharpe_mean,
        defined.n_configs
    from best
    inner join defined on best.scenario = defined.scenario
    order by best.scenario

)

select * from final
