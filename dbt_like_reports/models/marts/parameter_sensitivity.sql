-- parameter_sensitivity: per (scenario, parameter) the main-effect share of sharpe_mean's
-- variance across configs, the correlation ratio
--   eta^2 = sum_levels n_l (mean_l - mean)^2 / sum_configs (x - mean)^2,
-- 0 when sharpe_mean is constant over the configs it is computed on. levels: weight_fn's
-- categories and the fixed search-space bands of int_config_parameter_bands for
-- target_vol, vol_window_months and risk_aversion. risk_aversion's share is computed over
-- the linear and sigmoid configs only (its own mean and total sum of squares): the inverse
-- rules ignore it. tc_bps is not a parameter: one cost assumption for every config.
-- configs whose sharpe_mean is null take no part. every mean and sum adds its terms in a
-- fixed order (array_agg(... order by ...), then array_mean / array_sum): the joins
-- below reorder rows from run to run and float addition is not associative, so a plain
-- avg/sum could differ in the last bits between identical runs.

with bands as (

    select * from {{ ref('int_config_parameter_bands') }}

),

defined as (

    select
        scenario,
        config_id,
        weight_fn,
        target_vol_band,
        vol_window_band,
        risk_aversion_band,
        sharpe_mean
    from bands
    where sharpe_mean is not null

),

levels as (

    select scenario, 'weight_fn' as parameter, weight_fn as level, config_id,
        sharpe_mean
    from defined

    union all

    select scenario, 'target_vol' as parameter, target_vol_band as level, config_id,
        sharpe_mean
    from defined

    union all

    select scenario, 'vol_window_months' as parameter, vol_window_band as level, config_id,
        sharpe_mean
    from defined

    union all

    select scenario, 'risk_aversion' as parameter, risk_aversion_band as level, config_id,
        sharpe_mean
    from defined
    where risk_aversion_band is not null

),

parameter_stats as (

    select
        scenario,
        parameter,
        count(*) as n_configs,
        array_mean(array_agg(sharpe_mean order by config_id)) as grand_mean,
        min(sharpe_mean) = max(sharpe_mean) as is_constant
    from levels
    group by scenario, parameter

),

total as (

    select
        levels.scenario,
        levels.parameter,
        array_sum(array_agg(
            power(levels.sharpe_mean - parameter_stats.grand_mean, 2) order by levels.config_id
        )) as total_sum_squares
    from levels
    inner join parameter_stats
        on levels.scenario = parameter_stats.scenario
        and levels.parameter = parameter_stats.parameter
    group by levels.scenario, levels.parameter

),

level_stats as (

    select
        scenario,
        parameter,
        level,
        count(*) as n_level,
        array_mean(array_agg(sharpe_mean order by config_id)) as level_mean
    from levels
    group by scenario, parameter, level

),

between_levels as (

    select
        level_stats.scenario,
        level_stats.parameter,
        count(*) as n_levels,
        array_sum(array_agg(
            level_stats.n_level * power(level_stats.level_mean - parameter_stats.grand_mean, 2)
            order by level_stats.level
        )) as between_sum_squares
    from level_stats
    inner join parameter_stats
        on level_stats.scenario = parameter_stats.scenario
        and level_stats.parameter = parameter_stats.parameter
    group by level_stats.scenario, level_stats.parameter

),

shares as (

    select
        between_levels.scenario,
        between_levels.parameter,
        between_levels.n_levels,
        parameter_stats.n_configs,
        between_levels.between_sum_squares,
        total.total_sum_squares,
        case
            when parameter_stats.is_constant or total.total_sum_squares <= 0 then 0.0
            else between_levels.between_sum_squares / total.total_sum_squares
        end as main_effect_share
    from between_levels
    inner join parameter_stats
        on between_levels.scenario = parameter_stats.scenario
        and between_levels.parameter = parameter_stats.parameter
    inner join total
        on between_levels.scenario = total.scenario
        and between_levels.parameter = total.parameter

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
