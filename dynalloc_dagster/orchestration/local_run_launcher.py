"""The local run launcher: Dagster's default launcher plus a run-worker health check, so
run monitoring can mark a run whose process died (SIGKILL, OOM killer, power cut) FAILURE
instead of leaving it STARTED for good, which with one run allowed at a time would hold
every queued run back forever.

Dagster's ``DefaultRunLauncher`` (1.13) does not support ``check_run_worker_health``, so
the monitoring daemon can only time out runs that never started. This subclass finds the
run worker's pid in the run's own event log (the process that reported ``RUN_START``:
the code server's run subprocess for a launched run, the calling process for
``execute_in_process`` / ``make run``) and reports the worker

* ``RUNNING`` while that process exists, is not a zombie and started before the run did;
* ``FAILED`` once it is gone, a zombie, or the pid now belongs to a younger process
  (the pid was reused).

The check sees only processes of this machine (and pid namespace), which is what the
local launcher runs on: the daemon, the code server and the run workers share one host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._serdes.config_class import ConfigurableClassData

from dynalloc_dagster.workers import process_alive, worker_start


class LocalRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` that answers the monitoring daemon's health checks.

    Configure in ``dagster.yaml``::

        run_launcher:
          module: dynalloc_dagster.orchestration.local_run_launcher
          class: LocalRunLauncher
        run_monitoring:
          enabled: true
    """

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> Self:
        return cls(inst_data=inst_data)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        """RUNNING while the process that started ``run`` is alive, FAILED once it is not."""
        started = worker_start(self._instance, run.run_id)
        if started is None:
            # STARTED is set by RUN_START: only a read racing that write gets here
            return CheckRunHealthResult(WorkerStatus.RUNNING,
                                        f"run {run.run_id} has no RUN_START event yet")
        pid, started_at = started
        alive, why = process_alive(pid, not_after=started_at)
        worker = f"pid {pid}"
        if alive:
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker {worker} is alive",
                                        run_worker_id=worker)
        return CheckRunHealthResult(WorkerStatus.FAILED,
                                    f"run worker {worker} is gone ({why}): it was killed or"
                                    " crashed before the run finished", run_worker_id=worker)
