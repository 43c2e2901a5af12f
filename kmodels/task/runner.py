"""`kmodels.run`: start a task from a spec, or resume an interrupted run in place."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kmodels import registry
from kmodels.errors import ConfigError, RunError
from kmodels.runs import RunDir
from kmodels.spec import load_spec
from kmodels.task.base import RunResult

logger = logging.getLogger("kmodels")


def _resumable(path: str | Path) -> RunDir:
    rd = RunDir(path)
    meta = rd.read_json("metadata.json")
    status = meta.get("status")
    if status == "completed":
        raise RunError(f"Run {str(rd.path)!r} already completed; start a new run instead of resuming it.")
    if status == "running" and meta.get("host") == socket.gethostname() and _alive(meta.get("pid")):
        raise RunError(f"Run {str(rd.path)!r} is still running (pid {meta['pid']}); stop it before resuming.")
    return rd


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run(task_or_path: str | Path | None = None, data: Any = None,
        overrides: Mapping[str, Any] | Sequence[str] | None = None, out: str | Path | None = None,
        resume: str | Path | None = None) -> RunResult:
    """Run a task end to end and return its metrics and run directory.

    Args:
        task_or_path: a registered task (`"bank_gender"`) or a spec TOML file.
        data: the user's data (a file or folder, or a pandas DataFrame for a table); `None` uses
            the task's embedded default.
        overrides: dotted spec keys to values, e.g. `{"train.epochs": 3}`.
        out: the run directory (must be new or empty); default `runs/<task>/<UTC time>/`.
        resume: an interrupted, failed or killed run directory to continue in place, from
            the last epoch its `backup_and_restore` callback saved (its own spec is used).

    Example:
        >>> import kmodels
        >>> result = kmodels.run("bank_gender", overrides={"train.epochs": 2})  # doctest: +SKIP
        >>> result.metrics["models"]["keras"]["accuracy"]  # doctest: +SKIP
        0.7...
    """
    if resume is not None:
        if task_or_path is not None or data is not None or out is not None:
            raise ConfigError("resume= continues a run with its own spec, data and directory; "
                              "do not also pass a task, data or out.")
        run_dir = _resumable(resume)
        spec = load_spec(run_dir.file("spec.toml"), overrides)
        if not any(b["name"] == "backup_and_restore" for b in spec["callbacks"]):
            logger.warning("The spec has no backup_and_restore callback: training restarts from the first epoch.")
        logger.info("Resuming %s", run_dir.path)
        return registry.tasks.get(spec.task)(spec, run_dir).run()
    if task_or_path is None:
        raise ConfigError("Name a task or a spec file to run (or resume= a run directory).")
    spec = load_spec(task_or_path, overrides, data=data)
    return registry.tasks.get(spec.task)(spec, out=out).run()
