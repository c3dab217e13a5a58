-- robustness_leaderboard: one row per config, most robust first, as
-- engine.analysis.robustness.robustness_scores:
--   robustness_score = min over scenarios of the config's normalised sharpe_mean,
--   robust = robustness_score >= 0.80 (InvestmentObjectives.robustness_threshold),
--   rank 1 = highest score (ties: lowest config_id).
-- a config without a defined sharpe_mean in every scenario of the evaluations is left
-- out. the config's hyperparameters come from stg_strategy_configs.

with relative_performance as (

    select * from {{ ref('int_config_relative_performance') }}

),

configs as (

    select * from {{ ref('stg_strategy_configs') }}

),

scenarios as (

    select count(distinct scenario) as n_scenarios_evaluated
    from relative_performance

),

defined as (

    select
        scenario,
        config_id,
        sharpe_mean,
        normalised_score,
        row_number() over (
            partition by config_id order by normalised_score, scenario
        ) as worst_first
    from relative_performance
    where normalised_score is not null

),

per_config as (

    select
        config_id,
        min(normalised_score) as robustness_score,
        count(*) as n_scenarios,
        min(sharpe_mean) as worst_sharpe_mean,
        avg(sharpe_mean) as mean_sharpe_mean
    from defined
    group by config_id

),

worst as (

    select
        config_id,
        scenario as worst_scenario,
        sharpe_mean as worst_scenario_sharpe_mean
    from defined
    where worst_first = 1

),

scored as (

    select
        per_config.config_id,
        per_config.robustness_score,
        worst.worst_scenario,
        worst.worst_scenario_sharpe_mean,
        per_config.n_scenarios,
        per_config.robustness_score >= 0.80 as robust,
        per_config.worst_sharpe_mean,
        per_config.mean_sharpe_mean
    from per_config
    inner join worst on per_config.config_id = worst.config_id
    cross join scenarios
    where per_config.n_scenarios = scenarios.n_scenarios_evaluated

),

final as (

    select
        row_number() over (
            order by scored.robustness_score desc, scored.config_id
        ) as rank,
        scored.config_id,
        scored.robustness_score,
        scored.robust,
        scored.worst_scenario,
        scored.worst_scenario_sharpe_mean,
        scored.n_scenarios,
        scored.worst_sharpe_mean,
        scored.mean_sharpe_mean,
        configs.sample_index,
        configs.target_vol,
        configs.weight_fn,
        configs.vol_window_months,
        configs.risk_aversion,
        configs.tc_bps,
        configs.min_allocation,
        configs.max_allocation,
        configs.no_trade_band
    from scored
    left join configs on scored.config_id = configs.config_id
    order by rank

)

select * from final
