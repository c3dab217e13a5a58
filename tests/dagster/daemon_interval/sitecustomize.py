"""Imported at start-up by every Python process whose PYTHONPATH starts with this folder
(the UI tests' ``dagster dev``: webserver, daemon, code server, run workers).

Dagster's backfill daemon sleeps ``dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS``
(30 s, a constant with no setting in dagster.yaml) between its passes, and a backfill
takes two passes after it is launched (submit its runs, see them done). When that module
is first imported, the constant is set to ``$DYNALLOC_TEST_DAEMON_INTERVAL_S`` seconds
(without that variable nothing changes). Nothing is imported early: processes that never
load the daemon pay nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

MODULE = "dagster._daemon.controller"
INTERVAL_ENV = "DYNALLOC_TEST_DAEMON_INTERVAL_S"


class _SetInterval(importlib.abc.MetaPathFinder):
    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s

    def find_spec(self, name: str, path: object, target: object = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if name != MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            module.DEFAULT_DAEMON_INTERVAL_SECONDS = self.interval_s

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if os.environ.get(INTERVAL_ENV):
    sys.meta_path.insert(0, _SetInterval(float(os.environ[INTERVAL_ENV])))
