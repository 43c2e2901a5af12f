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
