"""Training phases: `fit`, then an optional fine-tuning phase of a frozen pretrained backbone.

Phase two unfreezes the top of the backbone (`unfreeze_top`), recompiles at the
fine-tuning learning rate and continues the epoch count, with fresh callbacks
from the spec. A resumed run whose phase one had finished goes straight to
phase two from the saved `head.weights.h5`.
"""

from __future__ import annotations

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
    members, first = [], None
    for i, (fit_rows, stop_rows) in enumerate(splitter.split(x, y if stratify else None)):
        logger.info("Bagging: model %d of %d (%d rows to fit, %d to stop on)", i + 1, t.folds, len(fit_rows),
                    len(stop_rows))
        fold = replace(prepared, data={**prepared.data,
                                       "train": Features(x[fit_rows], y[fit_rows], frame.iloc[fit_rows]),
                                       "val": Features(x[stop_rows], y[stop_rows], frame.iloc[stop_rows])})
        set_seed(t.seed + i)
        model = task.build_model(fold)
        history, _ = task.train(model, fold)
        member = task.finish_model(model)
        members.append(keras.Model(member.input, member.output, name=f"fold_{i}"))
        first = first if first is not None else task.full_history(history)
    inputs = keras.Input(members[0].input_shape[1:], name="features")
    averaged = keras.layers.Average(name="bagged")([m(inputs) for m in members])
    return keras.Model(inputs, averaged, name=f"bagged_{t.folds}"), first or {}


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
