"""Training phases: `fit`, then an optional fine-tuning phase of a frozen pretrained backbone.

Phase two unfreezes the top of the backbone (`unfreeze_top`), recompiles at the
fine-tuning learning rate and continues the epoch count, with fresh callbacks
from the spec. A resumed run whose phase one had finished goes straight to
phase two from the saved `head.weights.h5`.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from kmodels.building import backbone_of, compile_model, unfreeze_top
from kmodels.errors import ConfigError, RunError
from kmodels.runs import atomic_target
from kmodels.saving import FINE_TUNE, HEAD_WEIGHTS

if TYPE_CHECKING:
    from kmodels.task.base import Task
    from kmodels.task.results import Prepared

logger = logging.getLogger("kmodels")

#: Written when a two-phase run finishes phase one, so `--resume` can go straight to fine-tuning.


def train_in_phases(task: Task, model: Any, prepared: Prepared) -> tuple[dict[str, list[float]], int | None]:
    """Train `model` as the spec says; return the history and the epoch where fine-tuning began (or None)."""
    ft = task.spec.options("fine_tune")
    if ft.epochs <= 0:
        return check_finite(task.fit(model, prepared), task), None
    backbone = backbone_of(model)
    if backbone is None or backbone.trainable:
        logger.info("[fine_tune] skipped: model %r has no %s backbone (fine-tuning follows training the "
                    "head of a frozen, pretrained one).", task.spec["model"]["name"],
                    "nested" if backbone is None else "frozen")
        return check_finite(task.fit(model, prepared), task), None
    if ft.layers < 1:
        raise ConfigError(f"[fine_tune] layers={ft.layers}; expected at least 1 layer to unfreeze.")
    rd = task.context.run_dir
    if rd is not None and rd.exists(HEAD_WEIGHTS):
        head_epochs = int(rd.read_json(FINE_TUNE)["head_epochs"])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]kipping variable loading for optimizer.*")
            model.load_weights(rd.file(HEAD_WEIGHTS))
        history: dict[str, list[float]] = {}
        logger.info("Phase one finished before the interruption (%d epochs); resuming fine-tuning.", head_epochs)
    else:
        history = check_finite(task.fit(model, prepared), task)
        head_epochs = len(task.full_history(history).get("loss", []))
        if rd is not None:
            with atomic_target(rd.file(HEAD_WEIGHTS), suffix=".weights.h5") as tmp:
                model.save_weights(tmp)
            rd.write_json(FINE_TUNE, {"head_epochs": head_epochs})
            task.drop_backups()  # phase two starts its own backup
    trainable = unfreeze_top(model, ft.layers)
    compile_model(model, replace(task.spec.options("compile"), learning_rate=ft.learning_rate), prepared.problem,
                  steps_per_epoch=task.steps_per_epoch(prepared), epochs=ft.epochs)
    logger.info("Fine-tuning: top %d backbone layers unfrozen (%d with weights, BatchNorm frozen), "
                "learning rate %g, epochs %d-%d", ft.layers, trainable, ft.learning_rate,
                head_epochs + 1, head_epochs + ft.epochs)
    more = check_finite(task.fit(model, prepared, epochs=head_epochs + ft.epochs, initial_epoch=head_epochs), task,
                        fine_tune=True)
    return {k: history.get(k, []) + v for k, v in more.items()}, head_epochs


def train_folds(task: Task, prepared: Prepared) -> tuple[Any, dict[str, list[float]]]:
    """`[train] folds = N`: N models on N folds of the training and validation rows; their average as one model.

    Model i trains on every fold but fold i and early-stops on fold i (the folds stratified by
    class where the problem allows, seeded by `[train] seed`), each from its own seed (`seed +
    i`) so the members differ. Returns the averaging `keras.Model` (each member through
    `finish_model`, renamed `fold_<i>`) and the first member's history.

    The folds train on one model, the first fold's, so its compiled training and validation steps are
    made once (on TensorFlow a trace of about a second per fold; on JAX tracing and loading the cached
    steps): each later fold builds its own model (its seed's weights, its rows' bin edges), copies
    those values and the optimizer's first state into the first model, trains it, and copies the
    result back into its own model, which becomes its member. The members are those separate models
    trained the same way would be (tested). A fold whose model is another program (`_same_program`: a
    regression's target scale comes from the fold's own rows; a layer from another package is never taken
    for the same) trains its own model, and so do the folds after it. Where `finish_model` hands back the trained model itself, or another sharing its
    weights (a model with no layer to swap), the first fold's model is its member, and a second model,
    built for the second fold, trains the later ones.
    """
    import keras
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    from kmodels.backend import set_seed
    from kmodels.task.results import Features

    t = task.train_options
    train, val = prepared.data["train"], prepared.data["val"]
    if not (isinstance(train.x, np.ndarray) and isinstance(val.x, np.ndarray)):
        raise ConfigError(f"[train] folds={t.folds}: bagging is for table tasks (feature arrays); this task feeds "
                          "batches. Set train.folds = 1.")
    x, y = np.concatenate([train.x, val.x]), np.concatenate([train.y, val.y])
    frame = pd.concat([train.frame, val.frame], ignore_index=True)
    if len(y) < 2 * t.folds:
        raise ConfigError(f"[train] folds={t.folds}: only {len(y)} training and validation rows; use fewer folds.")
    problem = prepared.problem
    stratify = (problem.is_classification and problem.stratified and y.ndim == 1
                and np.bincount(y.astype(np.int64)).min() >= t.folds)
    splitter = (StratifiedKFold if stratify else KFold)(n_splits=t.folds, shuffle=True, random_state=t.seed)
    members, first, trainer, start, separate = [], None, None, [], False
    with contextlib.ExitStack() as stack:

        def prime(model: Any) -> None:  # its optimizer's first state kept, its compiled steps kept across fits
            nonlocal start
            model.optimizer.build(model.trainable_variables)
            start = [v.numpy() for v in model.optimizer.variables]
            stack.enter_context(task.executions(model, task.steps_per_epoch(fold)))

        for i, (fit_rows, stop_rows) in enumerate(splitter.split(x, y if stratify else None)):
            logger.info("Bagging: model %d of %d (%d rows to fit, %d to stop on)", i + 1, t.folds, len(fit_rows),
                        len(stop_rows))
            fold = replace(prepared, data={**prepared.data,
                                           "train": Features(x[fit_rows], y[fit_rows], frame.iloc[fit_rows]),
                                           "val": Features(x[stop_rows], y[stop_rows], frame.iloc[stop_rows])})
            if i == 1 and trainer is None:  # the first member is its trained model itself: another trains the rest
                set_seed(t.seed + i)
                trainer = task.build_model(fold)
                prime(trainer)
            set_seed(t.seed + i)
            model = task.build_model(fold)  # this fold's first weights and bin edges (built last: see tabm)
            if i == 0:
                prime(model)
                history, _ = task.train(model, fold)
                member = task.finish_model(model)
                trainer = None if _shares_variables(member, model) else model
            elif not separate and _same_program(trainer, model):
                _copy_variables(model.variables, trainer.variables)
                _copy_variables(start, trainer.optimizer.variables)
                history, _ = task.train(trainer, fold)
                _copy_variables(trainer.variables, model.variables)
                member = task.finish_model(model)
            else:  # another program (a regression's target scale of its own rows): each fold trains its own
                separate = True
                history, _ = task.train(model, fold)
                member = task.finish_model(model)
            members.append(keras.Model(member.input, member.output, name=f"fold_{i}"))
            first = first if first is not None else task.full_history(history)
    inputs = keras.Input(members[0].input_shape[1:], name="features")
    averaged = keras.layers.Average(name="bagged")([m(inputs) for m in members])
    return keras.Model(inputs, averaged, name=f"bagged_{t.folds}"), first or {}


def _same_program(a: Any, b: Any) -> bool:
    """Whether models `a` and `b` compute the same function of their variables, so `a`'s compiled steps serve `b`'s
    values: the same layer classes in the same order, each with the same plain settings (numbers, strings, sequences,
    constant arrays and tensors, functions, dtype policy; names aside) and variables of the same shapes. A regression's
    target scale (`Rescaling` of each fold's own mean and deviation) differs. Read from the layers' attributes, not
    `get_config`: Keras's serialization imports TensorFlow (seconds) on every backend when it is installed.

    Only layers of Keras and kmodels (`_KNOWN_LAYER_PACKAGES`) are read this way: another package's layer may keep a
    constant of its fold's rows where the attributes compared here do not reach (an object of its own), so a model with
    one is never the same program, and each fold trains its own model (slower, never wrong)."""
    import keras
    import numpy as np

    from kmodels.building import all_layers

    def value(v: Any, depth: int = 0) -> Any:
        if isinstance(v, keras.Variable) or depth > 3:  # a variable's value is copied; its shape is compared below
            return _OPAQUE
        if isinstance(v, bool | int | float | str | type(None)):
            return v
        if isinstance(v, tuple | list):
            return tuple(value(e, depth + 1) for e in v)
        if isinstance(v, dict):
            return tuple((k, value(e, depth + 1)) for k, e in v.items())
        if isinstance(v, np.ndarray) or keras.ops.is_tensor(v):  # a constant, e.g. `Normalization(mean=...)`
            array = np.asarray(keras.ops.convert_to_numpy(v))
            return array.dtype.str, array.shape, array.tobytes()
        if inspect.isfunction(v) or inspect.isbuiltin(v):  # Keras wraps some methods per instance: by name
            return v.__module__, v.__qualname__
        return _OPAQUE

    def settings(layer: Any) -> tuple[Any, ...]:
        plain = {k: value(v) for k, v in vars(layer).items() if "name" not in k and "path" not in k}
        return (type(layer), getattr(layer.dtype_policy, "name", None),
                {k: v for k, v in plain.items() if v is not _OPAQUE})

    layers = [all_layers(m) for m in (a, b)]
    if not all(type(layer).__module__.split(".")[0] in _KNOWN_LAYER_PACKAGES for m in layers for layer in m):
        return False
    shapes = [[tuple(v.shape) for v in m.variables] for m in (a, b)]
    return (len(layers[0]) == len(layers[1]) and shapes[0] == shapes[1]
            and all(settings(x) == settings(y) for x, y in zip(*layers, strict=True)))


_OPAQUE = object()
#: the packages whose layers `_same_program` compares by their attributes: Keras's and kmodels' own (with its plugins)
_KNOWN_LAYER_PACKAGES = frozenset({"keras", "kmodels", "kmodels_tabular", "kmodels_vision", "kmodels_applications"})


def _copy_variables(source: list[Any], target: list[Any]) -> None:
    """Assign each variable of `target` the value of the same place in `source` (variables or arrays)."""
    for src, dst in zip(source, target, strict=True):
        dst.assign(getattr(src, "value", src))


def _shares_variables(a: Any, b: Any) -> bool:
    """Whether models `a` and `b` hold one variable in common (`finish_model` may hand back the model itself)."""
    return bool({id(v) for v in a.variables} & {id(v) for v in b.variables})


def check_finite(history: dict[str, list[float]], task: Task, fine_tune: bool = False) -> dict[str, list[float]]:
    """`history`, or a `RunError` (the run is marked failed, exit 1) if its training loss went NaN or infinite.

    Nothing is saved from a diverged model; the message names the epoch and the fix.
    """
    import math

    losses = history.get("loss", [])
    bad = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
    if bad is None:
        return history
    rate = task.spec.options("fine_tune" if fine_tune else "compile").learning_rate
    section = "fine_tune" if fine_tune else "compile"
    raise RunError(f"The training loss became {losses[bad]} in epoch {bad + 1}: the model diverged, so nothing was "
                   f"saved. Lower [{section}] learning_rate (now {rate:g}; e.g. --set {section}.learning_rate="
                   f"{rate / 10:g}), or check the data for extreme values.")
