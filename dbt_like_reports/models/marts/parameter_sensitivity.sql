-- parameter_sensitivity: per (scenario, parameter) the main-effect share of sharpe_mean's
-- variance across configs, the correlation ratio
--   eta^2 = sum_levels n_l (mean_l - mean)^2 / sum_configs (x - mean)^2,
-- 0 when the scenario's sharpe_mean is constant. levels: weight_fn's categories; fixed
-- bands of the search space (DESIGN.md) for the numeric parameters, left-closed, values
-- outside the space falling into the end bands:
--   vol_window_months 6-11m, 12-17m, 18-24m (engine.analysis.robustness.interaction_table's bands)
--   target_vol        5 bands of 0.03 over 0.05-0.20
--   risk_aversion     5 bands of 0.9 over 0.5-5.0
--   tc_bps            5 bands of 4 over 0-20
-- configs whose sharpe_mean is null take no part.

with evaluations as (

    select * from {{ ref('stg_strategy_evaluations') }}

),

defined as (

    select
        scenario,
        weight_fn,
        vol_window_months,
        target_vol,
        risk_aversion,
        tc_bps,
        sharpe_mean
    from evaluations
    where sharpe_mean is not null

),

levels as (

    select scenario, 'weight_fn' as parameter, weight_fn as level, sharpe_mean
    from defined

    union all

    select
        scenario,
        'vol_window_months' as parameter,
        case
            when vol_window_months < 12 then '6-11m'
            when vol_window_months < 18 then '12-17m'
            else '18-24m'
        end as level,
        sharpe_mean
    from defined

    union all

    select
        scenario,
        'target_vol' as parameter,
        case
            when target_vol < 0.08 then '0.05-0.08'
            when target_vol < 0.11 then '0.08-0.11'
            when target_vol < 0.14 then '0.11-0.14'
            when target_vol < 0.17 then '0.14-0.17'
            else '0.17-0.20'
        end as level,
        sharpe_mean
    from defined

    union all

    select
        scenario,
        'risk_aversion' as parameter,
        case
            when risk_aversion < 1.4 then '0.5-1.4'
            when risk_aversion < 2.3 then '1.4-2.3'
            when risk_aversion < 3.2 then '2.3-3.2'
            when risk_aversion < 4.1 then '3.2-4.1'
            else '4.1-5.0'
        end as level,
        sharpe_mean
    from defined

    union all

    select
        scenario,
        'tc_bps' as parameter,
        case
            when tc_bps < 4 then '0-4'
            when tc_bps < 8 then '4-8'
            when tc_bps < 12 then '8-12'
            when tc_bps < 16 then '12-16'
            else '16-20'
        end as level,
        sharpe_mean
    from defined

),

scenario_stats as (

    select
        scenario,
        count(*) as n_configs,
        avg(sharpe_mean) as grand_mean,
        min(sharpe_mean) = max(sharpe_mean) as is_constant
    from defined
    group by scenario

),

total as (

    select
        defined.scenario,
        sum(power(defined.sharpe_mean - scenario_stats.grand_mean, 2)) as total_sum_squares
    from defined
    inner join scenario_stats on defined.scenario = scenario_stats.scenario
    group by defined.scenario

),

level_stats as (

    select
        scenario,
        parameter,
        level,
        count(*) as n_level,
        avg(sharpe_mean) as level_mean
    from levels
    group by scenario, parameter, level

),

between_levels as (

    select
        level_stats.scenario,
        level_stats.parameter,
        count(*) as n_levels,
        sum(
            level_stats.n_level * power(level_stats.level_mean - scenario_stats.grand_mean, 2)
        ) as between_sum_squares
    from level_stats
    inner join scenario_stats on level_stats.scenario = scenario_stats.scenario
    group by level_stats.scenario, level_stats.parameter

),

shares as (

    select
        between_levels.scenario,
        between_levels.parameter,
        between_levels.n_levels,
        scenario_stats.n_configs,
        between_levels.between_sum_squares,
        total.total_sum_squares,
        case
            when scenario_stats.is_constant or total.total_sum_squares <= 0 then 0.0
            else between_levels.between_sum_squares / total.total_sum_squares
        end as main_effect_share
    from between_levels
    inner join scenario_stats on between_levels.scenario = scenario_stats.scenario
    inner join total on between_levels.scenario = total.scenario

),

final as (

    select
        scenario,
        parameter,
        main_effect_share,
        row_number() over (
            partition by scenario order by main_effect_share desc, parameter
        ) as rank_in_scenario,
        n_levels,
        n_configs,
        between_sum_squares,
        total_sum_squares
    from shares
    order by scenario, rank_in_scenario

)

select * from final
