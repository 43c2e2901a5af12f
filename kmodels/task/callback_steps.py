"""The callbacks of a run's `fit`: the spec's `[[callbacks]]`, with every path they name inside the run.

`CallbackSteps` is a mixin of `kmodels.task.Task`, through `ModelSteps` (override these hooks in a
plugin's `Task` subclass).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kmodels import registry
from kmodels.errors import RunError
from kmodels.run_paths import CALLBACK_PATH_KEYS, check_run_path
from kmodels.spec import TaskSpec
from kmodels.task.context import RunContext


class CallbackSteps:
    """Make the spec's callbacks for a `fit` and resolve the paths they write (a mixin of `Task`)."""

    spec: TaskSpec
    train_options: Any
    context: RunContext

    def make_callbacks(self) -> list[Any]:
        """The spec's callbacks; every path they name is resolved inside the run directory.

        The first callbacks add the epoch's wall time (`seconds`) and `learning_rate` to the logs (the
        history, `csv_logger`), whether a schedule or `reduce_lr_on_plateau` sets the rate or it stays
        constant; the next stops
        training at the first epoch whose loss is not finite (the run then fails, see
        `kmodels.task.training.check_finite`).
        """
        from kmodels.callbacks import AveragedWeightsValidation, EpochSeconds, LearningRateLog, NonFiniteLossStop

        out: list[Any] = [EpochSeconds(), LearningRateLog(), NonFiniteLossStop()]
        if self.context.tracker is not None:
            out.append(self.context.tracker.callback())  # after LearningRateLog: the rate is logged too
        for block in self.spec["callbacks"]:
            block = dict(block)
            for key in CALLBACK_PATH_KEYS:
                if block.get(key) is None:
                    continue
                path = self.callback_path(block["name"], key, block[key])
                path.parent.mkdir(parents=True, exist_ok=True)  # inside the run: ours to create
                block[key] = str(path)
            if block["name"] == "backup_and_restore" and self.train_options.folds > 1:
                continue  # one backup folder cannot hold N models' progress: a resumed bagged run retrains
            if block["name"] == "backup_and_restore":
                # Kept until the phase's result is saved (`drop_backups`): Keras would delete it when
                # `fit` ends, and a kill before the trained model is on disk would then retrain from scratch.
                block["delete_checkpoint"] = False
                # Keras writes the backup in place: a kill during the write leaves a corrupt file (h5py: "bad
                # object header"). With the previous epoch's copy kept, Keras resumes from that one instead.
                block["double_checkpoint"] = True
            out.append(registry.callbacks.create(block, where=f"[[callbacks]] {block['name']!r}"))
        if self.spec.options("compile").ema:
            out.append(AveragedWeightsValidation())  # last: every other callback sees the averaged weights
        return out

    def fit_callbacks(self, validation: bool) -> list[Any]:
        """`make_callbacks()` for a `fit`; without a validation split (`[split] val = 0`), less those watching
        a `val_*` figure, each named in a warning (`kmodels.callbacks.without_validation`)."""
        from kmodels.callbacks import without_validation

        return self.make_callbacks() if validation else without_validation(self.make_callbacks())

    def callback_path(self, callback: str, key: str, value: Any) -> Path:
        """Where the `key` argument (`filename`, `backup_dir`, ...) of a spec callback points: checked to
        name a path strictly inside this run's directory (see `kmodels.spec.check_run_path`)."""
        where = f"[[callbacks]] {callback!r} {key}"
        relative = check_run_path(value, where)
        if self.context.run_dir is None:
            raise RunError(f"{where} names a file, but this step runs without a run directory.")
        return self.context.run_dir.inside(relative, where=where)

    def drop_backups(self) -> None:
        """Remove the `backup_and_restore` folders once what they protected is saved in the run.

        They are spec-named folders checked to lie inside this run (see
        `make_callbacks`), created by Keras during `fit`; nothing else is removed.
        """
        import shutil

        if self.context.run_dir is None:
            return
        for block in self.spec["callbacks"]:
            if block["name"] == "backup_and_restore" and block.get("backup_dir"):
                path = self.callback_path("backup_and_restore", "backup_dir", block["backup_dir"])
                if path.is_dir():
                    shutil.rmtree(path)
