"""The model half of `Task`'s hooks: build → compile → fit → predict (the callbacks: `callback_steps`).

`ModelSteps` is a mixin of `kmodels.task.Task` (which a plugin subclasses; override these hooks there).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from kmodels import _config, cluster, registry
from kmodels.backend import name as keras_backend
from kmodels.backend import precision
from kmodels.building import compile_model
from kmodels.errors import ConfigError
from kmodels.initializers import host_initialized
from kmodels.problems import Problem
from kmodels.spec import INFERRED_MODEL_KEYS, TaskSpec
from kmodels.task.callback_steps import CallbackSteps
from kmodels.task.context import RunContext
from kmodels.task.results import Prepared
from kmodels.task.training import train_in_phases

logger = logging.getLogger("kmodels")


class ModelSteps(CallbackSteps):
    """Build, compile and train the spec's model, with its callbacks, inside the run (a mixin of `Task`)."""

    spec: TaskSpec
    train_options: Any
    context: RunContext
    _capped_epochs: int | None = None  # the epochs `epochs()` last logged, so it logs once

    def input_shape(self, prepared: Prepared) -> tuple[int, ...]:
        """The model input shape, from the training features."""
        return tuple(prepared.data["train"].x.shape[1:])

    def full_history(self, history: dict[str, list[float]]) -> dict[str, list[float]]:
        """The whole training history: a `csv_logger` file (appended across resumes) if the spec has one."""
        log = next((b["filename"] for b in self.spec["callbacks"] if b["name"] == "csv_logger"), None)
        if log and self.context.run_dir is not None:
            path = self.callback_path("csv_logger", "filename", log)
            if path.is_file():
                frame = pd.read_csv(path)
                return {k: frame[k].astype(float).tolist() for k in frame.columns if k != "epoch"}
        return history

    def fetch_model_files(self) -> None:
        """Get what the model needs from outside the data, before the data is read.

        Today: pretrained `weights = "imagenet"`, which Keras downloads once into
        `~/.keras/models/`. The model is built once at its default input size, so an
        offline machine gets the builder's clear error before a long data scan, not after.
        Its initial values are thrown away: drawn on the host (on JAX, drawing them on the
        device compiled a program per weight shape: 18 s of start-up for MobileNetV3Small).
        """
        block = self.spec["model"]
        if block.get("weights") != "imagenet":
            return
        block = {k: v for k, v in block.items() if k not in INFERRED_MODEL_KEYS}
        with host_initialized():
            registry.models.create(block, where=f"[model] {block['name']!r}")

    def build_model(self, prepared: Prepared) -> Any:
        """Build the spec's model for the data's input shape and problem (`num_classes`), and compile it.

        For regression the model's linear output is followed by a fixed
        `Rescaling` to the training target's mean and standard deviation: the
        net learns a standardized target (what Adam's defaults suit), and the
        saved model still predicts in the target's own units.
        """
        input_shape, problem = self.input_shape(prepared), prepared.problem
        block = self.spec["model"]
        name = block["name"]
        params = _config.schema(registry.models.get(name))
        extra: dict[str, Any] = {}
        if "input_shape" in params:
            given = block.pop("input_shape", None)
            if given is not None and tuple(given) != tuple(input_shape):
                raise ConfigError(
                    f"[model] input_shape={tuple(given)} does not match the data's {tuple(input_shape)}; "
                    "remove model.input_shape to infer it."
                )
            extra["input_shape"] = tuple(input_shape)
        if "num_classes" in params:
            given = block.pop("num_classes", None)
            if given is not None and given != problem.num_classes:
                raise ConfigError(f"[model] num_classes={given} does not match the {problem.kind} problem's "
                                  f"{problem.num_classes}; remove model.num_classes to infer it.")
            extra["num_classes"] = problem.num_classes
        elif problem.kind != "binary":
            raise ConfigError(f"[model] {name!r} has no num_classes argument, so it can only solve binary problems; "
                              f"this one is {problem.kind}. Add `num_classes: int = 2` to its builder.")
        with precision(self.train_options.precision), problem.building(), host_initialized():
            model = registry.models.create(block, where=f"[model] {name!r}", **extra)
        if self.train_options.precision != "float32" and model.outputs[0].dtype != "float32":
            logger.warning("Model %r outputs %s under %s; give its last layer dtype='float32' for a stable loss.",
                           name, model.outputs[0].dtype, self.train_options.precision)
        if not problem.is_classification:
            model = _rescaled(model, prepared.data["train"].y)
        model = self.training_model(model)
        return compile_model(model, self.spec.options("compile"), problem,
                             steps_per_epoch=self.steps_per_epoch(prepared), epochs=self.epochs(prepared))

    def training_model(self, model: Any) -> Any:
        """The model `fit` trains: `model`, or `model` behind training-only layers (device-side augmentation).

        Whatever this adds, `finish_model` removes before `model.keras` is saved. Default: `model`.
        """
        return model

    def finish_model(self, model: Any) -> Any:
        """The trained model as it is saved, evaluated and used for prediction. Default: as trained, with its
        speed-only layers (`HashDropout`) rebuilt as Keras's own (`kmodels.layers.portable_model`), so the saved
        file loads in plain Keras.

        A task may wrap it here, e.g. with test-time augmentation (see the vision plugin).
        """
        from kmodels.layers import portable_model

        return portable_model(model)

    def steps_per_epoch(self, prepared: Prepared) -> int:
        """Gradient steps in one epoch of `fit` (sizes a learning-rate schedule)."""
        import math

        from kmodels.data.batches import Batches

        train = prepared.data["train"]
        if isinstance(train.x, Batches):
            return len(train.x)
        size = self.train_batch_size(len(train.y))  # `fit` trains on full batches (`training_batches`)
        return max(1, math.ceil(Batches.kept(len(train.y), size, self.context.devices, full_batches=True) / size))

    def epochs(self, prepared: Prepared) -> int:
        """The epochs phase one trains: `[train] epochs`, fewer when `[train] max_steps` caps the steps.

        Example: dog_cat's cap of 3,500 steps fits its 35 epochs of 44 steps (1,400 training
        photos); 35 epochs of 547 steps (19,145) do not, so 6 epochs run.
        """
        t = self.train_options
        per_epoch = self.steps_per_epoch(prepared)
        if not t.max_steps or t.epochs * per_epoch <= t.max_steps:
            return t.epochs
        epochs = max(1, t.max_steps // per_epoch)
        if self._capped_epochs != epochs:
            self._capped_epochs = epochs
            logger.info("Training %d epoch%s instead of %d: %d steps per epoch x %d epochs would exceed "
                        "[train] max_steps=%d (--set train.max_steps=0 lifts the cap).", epochs,
                        "" if epochs == 1 else "s", t.epochs, per_epoch, t.epochs, t.max_steps)
        return epochs

    @property
    def verbose(self) -> int:
        """Keras's `verbose` for `fit`: `[train] verbose`, and 0 on processes other than 0 of a cluster.

        A progress bar (1, and `"auto"`, which is Keras's bar) becomes one line per epoch (2) when the
        output is not a terminal: a piped or redirected log gets plain lines, not ANSI redraws.
        """
        import sys

        verbose = self.train_options.verbose if cluster.is_writer() else 0
        if verbose == "auto":
            verbose = 1
        if verbose == 1 and not (hasattr(sys.stdout, "isatty") and sys.stdout.isatty()):
            return 2
        return verbose

    def batch_size(self, rows: int) -> int:
        """The batch size for `rows` training rows. Default: `[train] batch_size`."""
        return self.train_options.batch_size

    def train_batch_size(self, rows: int) -> int:
        """`batch_size(rows)`, rounded up to a multiple of the devices so every batch splits over them."""
        devices = max(1, self.context.devices)
        return -(-self.batch_size(rows) // devices) * devices

    #: In-memory tables are evaluated and predicted in one batch up to this many rows (and `WHOLE_BATCH_BYTES`
    #: of input): one step, and one compiled shape instead of a full and a partial one.
    WHOLE_BATCH_ROWS = 8192
    WHOLE_BATCH_BYTES = 64 << 20

    def eval_batch_size(self, x: np.ndarray, size: int) -> int:
        """The batch size to evaluate or predict the rows of `x`: for a table (a 2-D array), all of them when they
        fit `WHOLE_BATCH_ROWS` and `WHOLE_BATCH_BYTES`, else as many as those allow, never fewer than `size`;
        `size` for anything else (images, whose activations, not inputs, fill the memory; several inputs)."""
        if not isinstance(x, np.ndarray) or x.ndim != 2:
            return size
        whole = min(self.WHOLE_BATCH_ROWS, self.WHOLE_BATCH_BYTES // max(1, x.shape[1] * x.dtype.itemsize))
        return max(1, min(len(x), max(size, whole)))

    def class_weight(self, y: np.ndarray, problem: Problem) -> dict[int, float] | None:
        """`"balanced"` class weights (n / (classes x count)); `None` unless the spec asks, or for regression."""
        if self.train_options.class_weight != "balanced" or not (problem.is_classification and problem.stratified):
            return None
        k = problem.num_classes
        counts = np.bincount(y, minlength=k).astype(float)
        return {i: float(len(y) / (k * c)) if c else 1.0 for i, c in enumerate(counts)}

    def sample_weights(self, y: np.ndarray, problem: Problem) -> np.ndarray | None:
        """`class_weight` as one float32 weight per row of the class labels `y` (what Keras's `class_weight`
        computes for every batch, here once), or `None`."""
        weights = self.class_weight(y, problem)
        if weights is None:
            return None
        table = np.array([weights[i] for i in range(len(weights))], dtype=np.float32)
        return table[np.asarray(y, dtype=np.int64).reshape(len(y))]

    @contextmanager
    def executions(self, model: Any, steps_per_epoch: int) -> Iterator[int]:
        """While it lasts, `model` runs `[train] steps_per_execution` training steps per call (`"epoch"`: all
        `steps_per_epoch`; never more than those); yields that number. Keras's compiled steps are made again
        for it, and after it, when it differs from 1: evaluation and prediction then run one batch per call."""
        option = self.train_options.steps_per_execution
        steps = max(1, steps_per_epoch if option == "epoch" else min(option, steps_per_epoch))
        if steps == model.steps_per_execution:
            yield steps
            return
        previous = model.steps_per_execution

        def use(value: int) -> None:
            # Keras picks its step loop when it makes these functions: they must be made for the new value
            model.steps_per_execution = value
            model.train_function = model.test_function = model.predict_function = None

        use(steps)
        try:
            yield steps
        finally:
            use(previous)

    def training_batches(self, x: np.ndarray, y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, *, epochs: int,
                         initial_epoch: int = 0, weights: np.ndarray | None = None) -> dict[str, Any]:
        """The data arguments of `model.fit` for in-memory arrays trained to `epochs`: full training batches that
        split evenly over the devices, seeded and shuffled each epoch from `initial_epoch` on (each step compiles
        once, see `Batches`), and the validation rows in one batch where they fit (`eval_batch_size`).

        On TensorFlow the same batches come as a `tf.data.Dataset` (`ArrayBatches.tf_dataset`) with
        `steps_per_epoch`: Keras reads a `PyDataset` there one Python call per batch; and the validation rows as a
        batched `tf.data.Dataset` made once, which Keras iterates each epoch."""
        from kmodels.data.batches import ArrayBatches

        devices = self.context.devices
        size = self.train_batch_size(len(y))
        batches = ArrayBatches(x, y, size, shuffle=True, seed=self.train_options.seed, multiple=devices,
                               full_batches=True, epoch=initial_epoch, weights=weights)
        dataset = batches.tf_dataset(epochs) if keras_backend() == "tensorflow" else None
        train: dict[str, Any] = {"x": batches} if dataset is None else {"x": dataset, "steps_per_epoch": len(batches)}
        if not len(val_y):
            return {**train, "validation_data": None}
        if devices > 1:
            return {**train, "validation_data": ArrayBatches(val_x, val_y, size, multiple=devices)}
        val_size = self.eval_batch_size(val_x, size)
        if dataset is not None:  # Keras's own dataset of arrays costs ~17 ms an epoch to iterate, this one ~2 ms
            import tensorflow as tf

            return {**train, "validation_data": tf.data.Dataset.from_tensor_slices((val_x, val_y)).batch(val_size)}
        return {**train, "validation_data": (val_x, val_y), "validation_batch_size": val_size}

    def fit(self, model: Any, prepared: Prepared, *, epochs: int | None = None,
            initial_epoch: int = 0) -> dict[str, list[float]]:
        """`model.fit` on the training split, validated on the validation split; returns the history."""
        train, val = prepared.data["train"], prepared.data["val"]
        return self.fit_arrays(model, train.x, train.y, val.x, val.y, weights=self.sample_weights(train.y, prepared.problem),
                               epochs=self.epochs(prepared) if epochs is None else epochs, initial_epoch=initial_epoch)

    def fit_arrays(self, model: Any, x: Any, y: np.ndarray, val_x: Any, val_y: np.ndarray, *, epochs: int,
                   initial_epoch: int = 0, weights: np.ndarray | None = None) -> dict[str, list[float]]:
        """`model.fit` on in-memory training and validation arrays (`training_batches`), with the spec's callbacks,
        per-row sample `weights` and `[train] steps_per_execution` (`executions`); returns the history."""
        data = self.training_batches(x, y, val_x, val_y, epochs=epochs, initial_epoch=initial_epoch, weights=weights)
        with self.executions(model, data.get("steps_per_epoch") or len(data["x"])):
            history = model.fit(**data, epochs=epochs, initial_epoch=initial_epoch,
                                callbacks=self.fit_callbacks(validation=data["validation_data"] is not None),
                                verbose=self.verbose, shuffle=False)  # the batches shuffle themselves, seeded
        return {k: [float(v) for v in vals] for k, vals in history.history.items()}

    def train(self, model: Any, prepared: Prepared) -> tuple[dict[str, list[float]], int | None]:
        """Phase one (`fit`), then the fine-tuning phase when `[fine_tune] epochs > 0` and the backbone is frozen.

        Returns the history and the number of phase-one epochs when fine-tuning followed
        (else `None`); see `kmodels.task.training.train_in_phases`.
        """
        return train_in_phases(self, model, prepared)

    @contextmanager
    def final_model(self, model: Any, prepared: Prepared) -> Iterator[None]:
        """While the trained `model` no longer changes (evaluation, plots, threshold, importance), each split of
        `prepared` is predicted once: `predict_output(model, split.x)` returns the first answer again.

        Any other input (a permuted copy, a new file) is predicted as usual, and so is another model.
        """
        # the memo holds each split's x, so its id cannot be reused by another array while it is alive
        self._outputs: dict[int, tuple[Any, Any, np.ndarray | None]] | None = {
            id(f.x): (f.x, model, None) for f in prepared.data.values()}
        try:
            yield
        finally:
            self._outputs = None

    def predict_output(self, model: Any, x: Any) -> np.ndarray:
        """The model's raw output for an array or a `Batches` set (its padding dropped): (n, 1) or (n, N)."""
        memo = getattr(self, "_outputs", None)
        hit = memo.get(id(x)) if memo else None
        if hit is None or hit[0] is not x or hit[1] is not model:
            return self._predict(model, x)
        if hit[2] is None:
            memo[id(x)] = (x, model, self._predict(model, x))
        return memo[id(x)][2].copy()

    def _predict(self, model: Any, x: Any) -> np.ndarray:
        from kmodels.data.batches import ArrayBatches, Batches

        size = self.train_options.batch_size * max(1, 256 // self.train_options.batch_size)
        n = x.n if isinstance(x, Batches) else len(x)
        if self.context.devices > 1 and not isinstance(x, Batches):
            x = ArrayBatches(x, None, size, multiple=self.context.devices)
        if cluster.current() is not None:  # each process predicts its shard, then all gather
            with cluster.without_distribution():
                out = np.asarray(cluster.local_copy(model).predict(x, verbose=0))
            out = cluster.gather_rows(out.reshape(len(out), -1), x.positions(), n)
            return out
        kwargs = {} if isinstance(x, Batches) else {"batch_size": self.eval_batch_size(x, size)}
        out = np.asarray(model.predict(x, verbose=0, **kwargs))
        return out.reshape(len(out), -1)[:n]


def _rescaled(model: Any, y: np.ndarray) -> Any:
    """`model` followed by a fixed affine map onto the scale of `y` (plain Keras `Rescaling`)."""
    import keras

    mean = float(np.mean(y)) if len(y) else 0.0
    std = float(np.std(y)) if len(y) else 1.0
    std = std if std > 0 and np.isfinite(std) else 1.0
    outputs = keras.layers.Rescaling(scale=std, offset=mean, dtype="float32", name="target_scale")(model.outputs[0])
    # one input as one tensor, not a list of one: a list would make every export take a list of one array
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=model.name)
