"""Keras callbacks registered under snake_case names.

They are Keras's own classes: their constructor arguments are the config
schema of a `[[callbacks]]` block. Example:

    >>> from kmodels import registry
    >>> cb = registry.callbacks.create({"name": "early_stopping", "patience": 2})
    >>> type(cb).__name__
    'EarlyStopping'
"""

from __future__ import annotations

import keras

from kmodels.registry import callbacks

KERAS_CALLBACKS = {
    "early_stopping": keras.callbacks.EarlyStopping,
    "reduce_lr_on_plateau": keras.callbacks.ReduceLROnPlateau,
    "model_checkpoint": keras.callbacks.ModelCheckpoint,
    "backup_and_restore": keras.callbacks.BackupAndRestore,
    "csv_logger": keras.callbacks.CSVLogger,
    "terminate_on_nan": keras.callbacks.TerminateOnNaN,
    "tensorboard": keras.callbacks.TensorBoard,
}

for _name, _cls in KERAS_CALLBACKS.items():
    callbacks.register(_name, _cls)


class LearningRateLog(keras.callbacks.Callback):
    """Adds the optimizer's current `learning_rate` to each epoch's logs (a schedule's value at that step).

    Not registered: a task run adds it first in the list, so `history.csv` and `csv_logger`
    show the rate (constant, scheduled, or lowered by `reduce_lr_on_plateau`).
    """

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class NonFiniteLossStop(keras.callbacks.Callback):
    """Stops training at the end of the first epoch whose training loss is NaN or infinite, and says when.

    Not registered: every task run adds it, and `kmodels.task.training` turns a stop into a
    failed run (`RunError`, exit 1), so a diverged model is never saved as if it had trained.
    It looks once per epoch (a per-batch check would synchronise the device at every step).
    """

    def __init__(self) -> None:
        super().__init__()
        #: `(epoch, loss)` of the first non-finite epoch, or `None`
        self.stopped: tuple[int, float] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import math

        loss = None if logs is None else logs.get("loss")
        if loss is None or self.stopped is not None:
            return
        value = float(keras.ops.convert_to_numpy(loss))
        if not math.isfinite(value):
            self.stopped = (epoch, value)
            self.model.stop_training = True
