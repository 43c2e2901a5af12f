"""`RunContext`: what a run hands its task's hooks, explicitly and read-only.

The runner makes one when it knows the facts and gives it to the task with `Task.set_context`,
as Keras hands a callback its model with `Callback.set_model`; hooks read `self.context` and
never set it. A task outside a run (re-evaluating, explaining, a test) has the default
context: no run directory (hooks that write files write nothing), one device, no tracker.

Example:
    >>> from kmodels.task.context import RunContext
    >>> RunContext().run_dir is None, RunContext(devices=2).devices
    (True, 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kmodels.runs import RunDir


@dataclass(frozen=True)
class RunContext:
    """The run a task's hooks work in.

    Args:
        run_dir: where the run's artifacts go; `None` while there is none yet (the data is read and
            checked before a run directory is created) or outside a run.
        devices: every training batch holds a multiple of this many samples (the data-parallel
            device count).
        tracker: the run's MLflow run while `[tracking] mlflow = true` (see `kmodels.tracking`), else `None`.
        seed: the spec's `[train] seed`.
    """

    run_dir: RunDir | None = None
    devices: int = 1
    tracker: Any = None
    seed: int = 0
