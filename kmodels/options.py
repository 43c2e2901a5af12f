"""The fixed-schema sections of a task spec: `[split]`, `[compile]`, `[train]`, `[fine_tune]`, `[evaluate]`.

Each is a frozen dataclass whose fields are the section's keys, with their types and
defaults; `kmodels.spec` validates a section against it and each checks its own ranges
(`__post_init__`), so a bad value stops the run before anything is built.

Example:
    >>> from kmodels.options import TrainOptions
    >>> TrainOptions(epochs=3).batch_size
    32
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from kmodels.errors import ConfigError


@dataclass(frozen=True)
class SplitOptions:
    """How the table is split (seeded by `train.seed`).

    Args:
        test: fraction of rows (or groups) held out for the final test.
        val: fraction used for validation during training.
        stratify: keep the class balance equal across splits.
        group: column whose values never appear in two splits (e.g. a customer id).
    """

    test: float = 0.2
    val: float = 0.1
    stratify: bool = True
    group: str | None = None


@dataclass(frozen=True)
class CompileOptions:
    """Arguments of `model.compile`, resolved through Keras's own `get` functions.

    Args:
        optimizer: a name `keras.optimizers.get` accepts (`"adam"`, `"adamw"`, `"sgd"`).
        learning_rate: the optimizer's learning rate (> 0).
        loss: a Keras loss name, or `"auto"`: the problem's (binary cross-entropy,
            sparse categorical cross-entropy, mean squared error).
        metrics: Keras metric names; `"auto"` stands for the problem's (accuracy, or
            mean absolute error for regression).
        weight_decay: decoupled weight decay of the optimizer (AdamW-style; every Keras
            optimizer takes it); 0 turns it off. Keras shrinks each weight by
            `learning_rate * weight_decay` per step, so useful values are AdamW's (0.01 to
            0.1); 1e-4 at a learning rate of 1e-3 changes nothing measurable.
        schedule: `"constant"` learning rate, or `"cosine"`: a linear warm-up from a tenth
            of `learning_rate` over `warmup_epochs`, then cosine decay to 1% of it at the
            last epoch, step by step (Keras's `CosineDecay`; it follows the optimizer's
            step count, so `--resume` continues it). Leave out `reduce_lr_on_plateau`
            with it: the two would fight over the learning rate. `"linear"`: the same
            warm-up, then a straight line down to 1% at the last epoch, one rate per epoch
            (Page's and airbench's shape; Keras's `PiecewiseConstantDecay`).
        warmup_epochs: epochs of the warm-up of `schedule = "cosine"` or `"linear"` (at most a quarter
            of the run's epochs: a short trial run is shortened, with a log line).
        momentum: momentum of `"sgd"` and `"rmsprop"` (Keras's own argument; 0.9 is the
            usual choice for SGD); 0 keeps the optimizer's default. Refused for optimizers
            without one (Adam's are its betas).
        label_smoothing: pull the training targets toward 0.5 by this much (0 to 0.5; 0.1
            trains toward 0.05/0.95): a net that fits its training images perfectly keeps
            calibrated, less confident outputs. Binary cross-entropy (and Keras's categorical
            losses) only; 0 turns it off.
        nesterov: Nesterov momentum for `"sgd"` (Keras's own argument); refused for
            other optimizers.
        ema: keep an exponential moving average of the weights with this momentum
            (Keras's `use_ema=True, ema_momentum=ema`; 0 turns it off, 0.99 averages over
            about the last 100 steps). Validation, `early_stopping`, `model_checkpoint` and
            the saved model all use the averaged weights, with BatchNorm's moving statistics
            averaged alike (`kmodels.callbacks.AveragedWeightsValidation`).
    """

    optimizer: str = "adam"
    learning_rate: float = 0.001
    loss: str = "auto"
    metrics: tuple[str, ...] = ("auto",)
    weight_decay: float = 0.0
    schedule: Literal["constant", "cosine", "linear"] = "constant"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    momentum: float = 0.0
    nesterov: bool = False
    ema: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.ema < 1:
            raise ConfigError(f"[compile] ema={self.ema}: expected a momentum in [0, 1), e.g. 0.99; 0 turns it off.")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"[compile] momentum={self.momentum}: expected a number in [0, 1), e.g. 0.9.")
        if not 0 <= self.label_smoothing <= 0.5:
            raise ConfigError(f"[compile] label_smoothing={self.label_smoothing}: expected a number in [0, 0.5], "
                              "e.g. 0.1; 0 turns it off.")
        check_learning_rate(self.learning_rate, "[compile] learning_rate")
        if not 0 <= self.weight_decay < 1:
            raise ConfigError(f"[compile] weight_decay={self.weight_decay}: expected a number in [0, 1), e.g. 0.05.")
        if self.warmup_epochs < 0:
            raise ConfigError(f"[compile] warmup_epochs={self.warmup_epochs}: expected an integer >= 0.")


#: `[train] folds = "auto"` bags this many models on tables of at most `AUTO_BAG_ROWS` rows: there a `tabular` run on 2
#: CPU cores takes ~10 s with one model and under a minute with five, and bagging was level or better on all 12 such
#: tuned real tables (benchmarks/README.md); above it (diamonds' 54,000 rows: minutes a model) one model.
AUTO_FOLDS = 5
AUTO_BAG_ROWS = 30_000


@dataclass(frozen=True)
class TrainOptions:
    """Arguments of `model.fit` and the run's single seed.

    Args:
        epochs: maximum number of epochs (early stopping may end sooner).
        max_steps: a cap on the gradient steps of training (0: no cap). When `epochs` x the
            steps of one epoch would exceed it, fewer epochs run (at least one), with a log
            line saying so; a larger data set then trains fewer, longer epochs in about the
            same time. Schedules (`[compile] schedule`) are sized to the epochs that run.
        batch_size: samples per gradient step.
        seed: seeds Python, NumPy and Keras; drives splits, shuffling and init.
        class_weight: `"balanced"` weights classes inversely to their frequency.
        verbose: Keras progress output: `"auto"`, 0 (silent), 1 (bar), 2 (line per epoch). `"auto"` and 1
            draw the bar on a terminal and write a line per epoch when the output is piped or redirected.
        precision: `"float32"`, or a Keras mixed-precision policy (`"mixed_bfloat16"`,
            `"mixed_float16"`): layers compute in 16 bits, weights and the output stay float32.
        distribution: `"data_parallel"` replicates the model on every local device and
            splits each batch across them (`keras.distribution.DataParallel` on JAX,
            `tf.distribute.MirroredStrategy` on TensorFlow); `batch_size` is the global batch.
            Started as several processes (`kmodels run --processes N`, or a cluster launcher's
            environment: see `kmodels.cluster`), it spans every process's devices (JAX only).
        folds: bagging (tables). 1 trains one model; N >= 2 trains N models, each on N - 1
            folds of the training and validation rows and early-stopped on the remaining
            one (stratified for classes, seeded), and saves one Keras model that averages
            their outputs (`model.keras`: N sub-models under an `Average`). N times the
            training time; `backup_and_restore` is off (a resumed bagged run retrains).
            `"auto"`: `AUTO_FOLDS` on a table of at most `AUTO_BAG_ROWS` (30,000) rows, where N of them
            cost under a minute on 2 CPU cores, else 1 (also 1 for image
            tasks and with `[evaluate] calibrate` or `threshold = "auto"`); resolved before the
            run directory exists, so its `spec.toml` holds the number used.
        steps_per_execution: training steps per call from Python into the compiled step (Keras's
            `steps_per_execution`): 1, N, or `"epoch"` (each epoch's steps in one call). On small
            steps (a table's MLP) the Python around each step costs more than the step itself.
            Batch-level callbacks, the progress bar included, then run once per call; epoch-level
            ones (early stopping, logging, backups) are unchanged; so are the batches, the
            weights and the validation results (tested). Prediction runs one batch per call.
    """

    epochs: int = 10
    max_steps: int = 0
    batch_size: int = 32
    seed: int = 42
    class_weight: Literal["none", "balanced"] = "none"
    verbose: Literal["auto", 0, 1, 2] = "auto"
    precision: Literal["float32", "mixed_bfloat16", "mixed_float16"] = "float32"
    distribution: Literal["none", "data_parallel"] = "none"
    folds: int | Literal["auto"] = 1
    steps_per_execution: int | Literal["epoch"] = 1

    def __post_init__(self) -> None:
        if self.steps_per_execution != "epoch" and self.steps_per_execution < 1:
            raise ConfigError(f"[train] steps_per_execution={self.steps_per_execution}: expected an integer >= 1 "
                              "or \"epoch\".")
        if self.folds != "auto" and not 1 <= self.folds <= 20:
            raise ConfigError(f"[train] folds={self.folds}: expected 1 (one model), 2-20 models to average (e.g. 5), "
                              "or \"auto\".")
        for key, low in (("epochs", 1), ("max_steps", 0), ("batch_size", 1), ("seed", 0)):
            value = getattr(self, key)
            if value < low:
                raise ConfigError(f"[train] {key}={value}: expected an integer >= {low}.")
        if self.seed >= 2**32:
            raise ConfigError(f"[train] seed={self.seed}: expected an integer below 2**32.")


@dataclass(frozen=True)
class FineTuneOptions:
    """The second phase of transfer learning, for models with a pretrained `backbone` layer.

    Phase one trains with the backbone as the model built it (frozen when it has
    pretrained weights). When `epochs > 0` and the backbone was frozen, phase two
    unfreezes its top `layers` layers (BatchNorm layers stay frozen and in
    inference mode), recompiles at `learning_rate` and trains `epochs` more
    epochs with the same callbacks. Models without a frozen backbone skip it.

    Args:
        epochs: epochs of the fine-tuning phase; 0 skips it.
        layers: how many of the backbone's top layers to unfreeze (more than it has: all).
        learning_rate: learning rate of the fine-tuning phase, typically 10-100x lower.
    """

    epochs: int = 0
    layers: int = 20
    learning_rate: float = 1e-5

    def __post_init__(self) -> None:
        check_learning_rate(self.learning_rate, "[fine_tune] learning_rate")


@dataclass(frozen=True)
class EvaluateOptions:
    """Evaluation settings.

    Args:
        threshold: binary problems: the probability of the positive class from which it is
            predicted, or `"auto"`: the threshold that maximises `threshold_metric` on the
            validation split, chosen after training and saved with the run (`predict` uses it).
        threshold_metric: what `"auto"` maximises: `"balanced_accuracy"` (both classes count
            alike, kmodels' stance on imbalanced targets), `"accuracy"` (the most right answers,
            e.g. for a churn table whose costs are symmetric) or `"f1"` (of the positive class).
        calibrate: classification: fit one temperature on the validation split (Guo et al.,
            2017) and fold it into the output layer, so the saved model's probabilities are
            calibrated; no decision of a multiclass model changes.
        importance_repeats: table tasks: shuffles per column for the permutation importance
            of each raw column on the test split (`metrics.json` `importance`, and
            `permutation_importance.png`); 0 turns it off.
        importance_rows: how many test rows (drawn at random) the permutation importance scores on:
            `"auto"` (5,000, fewer on tables wider than about 50 columns, down to 200, since its cost grows
            with the square of the columns; see `kmodels.evaluation.importance_rows`), or a number.
    """

    threshold: float | Literal["auto"] = 0.5
    threshold_metric: Literal["accuracy", "balanced_accuracy", "f1"] = "balanced_accuracy"
    calibrate: bool = False
    importance_repeats: int = 5
    importance_rows: int | Literal["auto"] = "auto"

    def __post_init__(self) -> None:
        if self.importance_rows != "auto" and (isinstance(self.importance_rows, bool) or self.importance_rows < 1):
            raise ConfigError(f"[evaluate] importance_rows={self.importance_rows!r}: expected \"auto\" or an integer "
                              ">= 1 (the test rows scored; 0 rows is importance_repeats = 0).")
        if self.importance_repeats < 0:
            raise ConfigError(f"[evaluate] importance_repeats={self.importance_repeats}: expected an integer >= 0 "
                              "(0 turns permutation importance off).")
        if self.threshold != "auto" and not 0 < self.threshold < 1:
            raise ConfigError(f"[evaluate] threshold={self.threshold}: expected a probability strictly between 0 "
                              'and 1, or "auto" (chosen on the validation split).')


#: The largest learning rate a spec may set: above it every optimizer kmodels compiles diverges at once.
MAX_LEARNING_RATE = 10.0


def check_learning_rate(value: float, where: str) -> None:
    """Refuse a learning rate that is not a finite number in (0, `MAX_LEARNING_RATE`].

    Example:
        >>> check_learning_rate(1e3, "[compile] learning_rate")
        Traceback (most recent call last):
        ...
        kmodels.errors.ConfigError: [compile] learning_rate=1000.0: expected a finite number in (0, 10.0], e.g. 0.001; ...
    """
    if not math.isfinite(value) or not 0 < value <= MAX_LEARNING_RATE:
        raise ConfigError(f"{where}={value}: expected a finite number in (0, {MAX_LEARNING_RATE}], e.g. 0.001; "
                          "a larger rate makes the loss overflow to NaN within a few steps.")
