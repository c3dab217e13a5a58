-- int_scenario_best: the best config of each scenario by sharpe_mean (ties: lowest
-- config_id), with the scenario's lowest sharpe_mean and how many configs have one.
-- configs whose sharpe_mean is null (undefined) are never best; a scenario with no
-- defined config has no row.

with evaluations as (

    select * from {{ ref('stg_strategy_evaluations') }}

),

ranked as (

    select
        scenario,
        config_id,
        sharpe_mean,
        row_number() over (
            partition by scenario order by sharpe_mean desc, config_id
        ) as rank_in_scenario,
        min(sharpe_mean) over (partition by scenario) as worst_sharpe_mean,
        count(*) over (partition by scenario) as n_configs
    from evaluations
    where sharpe_mean is not null

),

final as (

    select
        scenario,
        config_id,
        sharpe_mean as best_sharpe_mean,
        worst_sharpe_mean,
        n_configs
    from ranked
    where rank_in_scenario = 1
    order by scenario

)

select * from final
