"""dynalloc's Dagster project: assets, partitions, IO managers, checks, schedules."""
