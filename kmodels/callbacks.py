"""Keras callbacks registered under snake_case names.

They are Keras's own classes: their constructor arguments are the config
schema of a `[[callbacks]]` block. Example:

    >>> from kmodels import registry
    >>> cb = registry.callbacks.create({"name": "early_stopping", "patience": 2})
    >>> type(cb).__name__
    'EarlyStopping'
"""

from __future__ import annotations

import logging

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

logger = logging.getLogger("kmodels")


def without_validation(callbacks: list[keras.callbacks.Callback]) -> list[keras.callbacks.Callback]:
    """`callbacks` less those that watch a `val_*` figure, for a run without a validation split.

    `early_stopping` and `reduce_lr_on_plateau` (whose default is `val_loss`) and a best-only
    `model_checkpoint` could never act there: Keras would warn every epoch, and the checkpoint would
    never be written. Each one left out is named in one warning with the fix. A checkpoint of every
    epoch (`save_best_only = false`) needs no figure and stays.

    Example:
        >>> import keras
        >>> kept = without_validation([keras.callbacks.EarlyStopping(), keras.callbacks.TerminateOnNaN(),
        ...                            keras.callbacks.EarlyStopping(monitor="loss")])
        >>> [(type(c).__name__, getattr(c, "monitor", None)) for c in kept]
        [('TerminateOnNaN', None), ('EarlyStopping', 'loss')]
    """
    names = {cls: name for name, cls in KERAS_CALLBACKS.items()}
    kept = []
    for callback in callbacks:
        monitor = getattr(callback, "monitor", None)
        if isinstance(monitor, str) and monitor.startswith("val_") and getattr(callback, "save_best_only", True):
            logger.warning("[[callbacks]] %r watches %r, but this run has no validation split ([split] val = 0): it "
                           "is left out. Give it a validation split (e.g. --set split.val=0.1) or monitor a training "
                           "figure (e.g. monitor = \"loss\").", names.get(type(callback), type(callback).__name__),
                           monitor)
            continue
        kept.append(callback)
    return kept


class LearningRateLog(keras.callbacks.Callback):
    """Adds the optimizer's current `learning_rate` to each epoch's logs (a schedule's value at that step).

    Not registered: a task run adds it first in the list, so `history.csv` and `csv_logger`
    show the rate (constant, scheduled, or lowered by `reduce_lr_on_plateau`).
    """

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class EpochSeconds(keras.callbacks.Callback):
    """Adds each epoch's wall time, validation included, to its logs as `seconds`.

    Not registered: a task run adds it, so `history.csv` says when each epoch ended (its
    cumulative sum: accuracy against minutes, as `benchmarks/photo_curve.py` plots it).
    """

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        import time

        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import time

        if logs is not None and hasattr(self, "_start"):
            logs["seconds"] = time.perf_counter() - self._start


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


class AveragedWeightsValidation(keras.callbacks.Callback):
    """Validates, checkpoints and early-stops on the optimizer's moving average of the weights, with BatchNorm
    statistics averaged alike.

    Not registered: a task run adds it last when `[compile] ema > 0`. Keras's optimizers keep
    the average themselves (`use_ema=True`), and `fit` copies it into the model when training
    ends, but during `fit` validation would score the raw weights, so `early_stopping` would
    pick an epoch, and restore weights, that are not the averaged ones. This callback swaps the
    average in when validation starts and the raw weights back once every other callback has seen
    the epoch (it comes last), so the monitored `val_*` figures, `restore_best_weights` and
    `model_checkpoint` all see the averaged weights. Without a validation split nothing is swapped,
    and the model ends with the final average.

    Keras averages the trainable weights only, but BatchNormalization's moving mean and variance are gathered
    under the raw weights, which a long average (0.999: about 1,000 steps) lags far behind. So, as timm's
    `ModelEmaV2` does with its buffers, this callback keeps the same moving average of every BatchNormalization
    layer's statistics, folded in at each validation and at the end of training (`m**k` for the `k` steps since
    the last fold: the statistics are taken as constant in between), swaps it in with the weights, and leaves it
    in the model when training ends. A resumed run starts that average again from the statistics it resumes
    with. (A long average of weights that still move fast is no model: on the photo recipe, 0.999 validated at
    chance through epoch 60 of 120 with either statistics, until the learning rate had decayed.)

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> model.compile(keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.9), "mse")
        >>> x, y = np.ones((8, 2), "float32"), np.ones((8, 1), "float32")
        >>> h = model.fit(x, y, validation_data=(x, y), epochs=2, verbose=0,
        ...               callbacks=[AveragedWeightsValidation()])
        >>> len(h.history["val_loss"])
        2
    """

    def __init__(self) -> None:
        super().__init__()
        self._raw: list | None = None
        self._raw_statistics: list | None = None
        self._statistics: list | None = None  # the moving average of the BatchNorm statistics
        self._folded_at = 0  # the optimizer step the statistics were last folded in at
        self._bn_variables: list = []  # every BatchNormalization layer's moving mean and variance, found per `fit`
        self._fitting = False

    def _averages(self) -> list:
        optimizer = self.model.optimizer
        averages = getattr(optimizer, "_model_variables_moving_average", None)
        if not getattr(optimizer, "use_ema", False) or averages is None:
            raise ValueError("AveragedWeightsValidation needs an optimizer built with use_ema=True "
                             "([compile] ema > 0).")
        return averages

    def _batchnorm_statistics(self) -> list:
        """Every BatchNormalization layer's moving mean and variance, nested models included."""
        from kmodels.building import all_layers

        return [v for layer in all_layers(self.model) if isinstance(layer, keras.layers.BatchNormalization)
                for v in (layer.moving_mean, layer.moving_variance)]

    def _fold_statistics(self) -> list:
        """Brings the statistics' average up to the optimizer's current step; returns the current (raw) values."""
        import numpy as np

        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        weight = float(self.model.optimizer.ema_momentum) ** max(0, step - self._folded_at)
        current = [keras.ops.convert_to_numpy(v) for v in self._bn_variables]
        if self._statistics is None:
            self._statistics = current
        else:
            self._statistics = [np.asarray(weight * a + (1.0 - weight) * c, dtype=c.dtype)
                                for a, c in zip(self._statistics, current, strict=True)]
        self._folded_at = step
        return current

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._fitting = True
        self._statistics = None  # each `fit` (a fine-tuning phase, a resumed run) starts from its statistics
        self._bn_variables = self._batchnorm_statistics()
        self._folded_at = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self._fold_statistics()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._fitting = False
        # `fit` has copied the average into the weights by now (Keras's `finalize_variable_values`), sharing its
        # buffers on JAX, where the next `fit` (a fine-tuning phase) would donate each buffer twice: own copies.
        for variable in self.model.trainable_variables:
            variable.assign(keras.ops.convert_to_numpy(variable))
        self._fold_statistics()
        for variable, average in zip(self._bn_variables, self._statistics or [], strict=True):
            variable.assign(average)

    def on_test_begin(self, logs: dict | None = None) -> None:
        if not self._fitting or self._raw is not None:
            return  # a plain `evaluate`, or already swapped
        variables = self.model.trainable_variables
        averages = self._averages()
        if len(averages) != len(variables):
            return  # the optimizer has not stepped on these variables yet
        self._raw = [keras.ops.convert_to_numpy(v) for v in variables]
        for variable, average in zip(variables, averages, strict=True):
            if average is not None:  # a copy: on JAX a shared buffer would be donated twice by the next step
                variable.assign(keras.ops.convert_to_numpy(average))
        self._raw_statistics = self._fold_statistics()
        for variable, average in zip(self._bn_variables, self._statistics or [], strict=True):
            variable.assign(average)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._raw is None:
            return
        for variable, raw in zip(self.model.trainable_variables, self._raw, strict=True):
            variable.assign(raw)
        for variable, raw in zip(self._bn_variables, self._raw_statistics or [], strict=True):
            variable.assign(raw)
        self._raw = self._raw_statistics = None
