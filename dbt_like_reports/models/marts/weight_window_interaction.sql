-- weight_window_interaction: per (scenario, weight_fn, vol-window band) the configs'
-- mean sharpe_mean and how many configs it averages, to read whether the best look-back
-- window depends on the weight function. the bands are int_config_parameter_bands'
-- (the same as parameter_sensitivity's): 6-11m, 12-17m, 18-24m. configs whose
-- sharpe_mean is null take no part; a cell without configs has no row.

-- means add their terms in a fixed order (array_mean(array_agg(... order by ...)), the
-- same as avg: nulls skipped): the rows arrive in whatever order the partitions were
-- loaded, and float addition is not associative (same inputs, same bytes).
with bands as (

    select * from {{ ref('int_config_parameter_bands') }}

),

cells as (

    select
        scenario,
        weight_fn,
        vol_window_band,
        count(*) as n_configs,
        array_mean(array_agg(sharpe_mean order by config_id)) as mean_sharpe_mean,
        min(vol_window_months) as shortest_window
    from bands
    where sharpe_mean is not null
    group by scenario, weight_fn, vol_window_band

),

final as (

    select
        scenario,
        weight_fn,
        vol_window_band,
        n_configs,
        mean_sharpe_mean
    from cells
    order by scenario, weight_fn, shortest_window

)

select * from final
