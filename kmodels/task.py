"""Run a task spec: data → clean → split → features → build → compile → fit → evaluate → report.

`Task` is the standard pipeline for binary classification on a table. A task
plugin subclasses it, points `spec_file` at its TOML spec, overrides the hooks
it needs (`analyse`, `baselines`, `evaluate`, ...) and registers it:

    >>> from kmodels import registry
    >>> from kmodels.task import Task
    >>> @registry.tasks.register("my_task")
    ... class MyTask(Task):
    ...     '''My task: predicts y from my table.'''
    ...     spec_text = 'task = "my_task"\\n[data]\\nname = "csv"\\n[model]\\nname = "mlp"\\n'
    >>> registry.tasks.unregister("my_task")
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import time
import tomllib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from kmodels import _config, registry
from kmodels.backend import distribution, precision, set_seed
from kmodels.building import backbone_of, compile_model, unfreeze_top
from kmodels.data.split import split_indices
from kmodels.data.table import Table
from kmodels.errors import ConfigError, DataError, RunError
from kmodels.evaluation import binary_metrics, format_table, plot_confusion_matrix, plot_history
from kmodels.runs import RunDir, atomic_target, atomic_write
from kmodels.spec import CALLBACK_PATH_KEYS, TaskSpec, check_run_path, load_spec

logger = logging.getLogger("kmodels")

#: Written when a two-phase run finishes phase one, so `--resume` can go straight to fine-tuning.
HEAD_WEIGHTS = "head.weights.h5"
TABLE_COLUMNS = ("model", "accuracy", "balanced_accuracy", "roc_auc", "f1")


@dataclass
class RunResult:
    """What `kmodels.run` returns.

    Attributes:
        task: the task name.
        run_dir: the run directory holding every artifact.
        metrics: the content of `metrics.json` (per-model test metrics).
        table: the comparison table printed at the end, as text.
    """

    task: str
    run_dir: Path
    metrics: dict[str, Any]
    table: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"RunResult(task={self.task!r}, run_dir={str(self.run_dir)!r})"


@dataclass
class Features:
    """Model-ready arrays of one split."""

    x: np.ndarray
    y: np.ndarray
    frame: pd.DataFrame


def save_model(model: Any, path: Path) -> Path:
    """Save a Keras model atomically (a failed save leaves no `model.keras`)."""
    with atomic_target(path, suffix=".keras") as tmp:
        model.save(tmp)
    return path


class Task:
    """The standard pipeline for binary classification of table rows.

    Subclasses set `spec_text` or `spec_file` (the default TOML spec) and may
    declare extra spec sections in `sections` (name → options dataclass).

    Args:
        spec: the resolved spec.
        run_dir: where artifacts go; `None` creates the default location.
    """

    spec_text: ClassVar[str | None] = None
    spec_file: ClassVar[Any] = None
    sections: ClassVar[dict[str, type]] = {}

    # ---- spec -------------------------------------------------------------------------------
    @classmethod
    def default_spec(cls) -> dict[str, Any]:
        """The task's shipped spec, parsed (unresolved)."""
        if cls.spec_text is not None:
            return tomllib.loads(cls.spec_text)
        if cls.spec_file is not None:
            source = Path(cls.spec_file) if isinstance(cls.spec_file, str) else cls.spec_file
            return tomllib.loads(source.read_text(encoding="utf-8"))
        raise ConfigError(f"Task {cls.__name__} ships no spec (set spec_text or spec_file).")

    @classmethod
    def with_data(cls, raw: dict[str, Any], path: Path) -> dict[str, Any]:
        """Point the spec at the user's data `path`.

        The default keeps the spec's dataset if it takes a `path` argument, and
        otherwise switches to the generic `csv` dataset.
        """
        raw = dict(raw)
        data = dict(raw.get("data", {}))
        name = data.get("name")
        if isinstance(name, str) and "path" in _config.schema(registry.datasets.get(name)):
            data["path"] = str(path)
        else:
            data = {"name": "csv", "path": str(path), **({"target": data["target"]} if "target" in data else {})}
        raw["data"] = data
        return raw

    def __init__(self, spec: TaskSpec, run_dir: RunDir | None = None) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.train_options = spec.options("train")
        self.notes: list[str] = []
        #: every batch holds a multiple of this many samples (the data-parallel device count)
        self.batch_multiple = 1
        #: epochs of phase one when `train` went on to fine-tune, else None
        self.phase_start: int | None = None

    # ---- pipeline hooks ---------------------------------------------------------------------
    def load_data(self) -> Table:
        """Call the spec's dataset builder."""
        table = registry.datasets.create(self.spec["data"], where=f"[data] {self.spec['data']['name']!r}")
        if not isinstance(table, Table):
            raise RunError(f"Dataset {self.spec['data']['name']!r} returned {type(table).__name__}, not a Table.")
        return table

    def analyse(self, table: Table) -> None:
        """Look at the raw table before anything changes (EDA). Default: nothing."""

    def _steps(self) -> tuple[list[Any], list[Any]]:
        steps = [registry.preprocessors.create(b, where=f"[[preprocess]] {b['name']!r}")
                 for b in self.spec["preprocess"]]
        cleaning: list[Any] = []
        features: list[Any] = []
        for block, step in zip(self.spec["preprocess"], steps, strict=True):
            if getattr(step, "drops_rows", False):
                if features:
                    raise ConfigError(
                        f"[[preprocess]] {block['name']!r} drops rows, so it must come before the "
                        f"feature steps ({', '.join(type(f).__name__ for f in features)}); move it up."
                    )
                cleaning.append(step)
            else:
                features.append(step)
        return cleaning, features

    def clean(self, table: Table, steps: Sequence[Any]) -> Table:
        """Apply the row-dropping steps (stateless) to the whole table, then keep valid classes only.

        Rows whose target is missing or not one of the two classes are dropped
        and counted in `self.cleaning`. A row filter with a `keep_mask(frame)`
        method (a boolean per row) is applied through it, so the positions of
        the kept rows stay known and the table's group codes carry over.
        """
        frame = table.frame
        rows: np.ndarray | None = np.arange(len(frame))
        keep = np.ones(len(frame), dtype=bool)  # rows of `frame` still in; applied when a step needs it
        self.cleaning: dict[str, Any] = {"rows_in": len(frame)}
        for step in steps:
            if not keep.all():
                frame, rows = frame[keep], None if rows is None else rows[keep]
                keep = np.ones(len(frame), dtype=bool)
            step.fit(frame)
            if hasattr(step, "keep_mask"):
                keep = np.asarray(step.keep_mask(frame), dtype=bool)
                if keep.shape != (len(frame),):
                    raise RunError(f"{type(step).__name__}.keep_mask returned shape {keep.shape} "
                                   f"for {len(frame)} rows; expected one boolean per row.")
                removed = int((~keep).sum())
            else:
                before = len(frame)
                frame = step.transform(frame)
                keep = np.ones(len(frame), dtype=bool)
                rows = None  # which rows it kept is not known
                removed = before - len(frame)
            self.cleaning[f"removed_by_{type(step).__name__}"] = removed
        classes = table.resolved_classes()
        target = frame[table.target]
        invalid = keep & ~target.isin(classes).to_numpy()
        if invalid.any():
            other = target[invalid].astype(object)
            counts = other.where(other.notna(), "<missing>").astype(str).value_counts().to_dict()
            logger.info("Removed %d row(s) whose %s is not %s: %s", int(invalid.sum()), table.target,
                        " or ".join(map(repr, classes)), counts)
            self.cleaning["removed_invalid_target"] = {str(k): int(v) for k, v in counts.items()}
            keep &= ~invalid
        if not keep.all():  # one selection for the filters and the target check together
            frame, rows = frame[keep], None if rows is None else rows[keep]
        self.cleaning["rows_out"] = len(frame)
        if frame.empty:
            raise DataError(f"{table.source}: no rows left after cleaning; check the data and [[preprocess]].")
        return table.subset(frame, rows)

    def split(self, table: Table) -> dict[str, pd.DataFrame]:
        """Seeded, stratified, group-aware train/val/test split."""
        opts = self.spec.options("split")
        group = opts.group or table.group
        if group is not None and group not in table.frame.columns:
            raise ConfigError(f"[split] group column {group!r} is not in the table.")
        groups = None if group is None else table.frame[group]
        if group is not None and group == table.group:
            codes = table.group_codes()  # computed once, shared with the EDA
            groups = np.where(codes < 0, np.nan, codes)  # a missing id is its own group
        idx = split_indices(table.labels(), test=opts.test, val=opts.val, seed=self.train_options.seed,
                            stratify=opts.stratify, groups=groups)
        return {name: table.frame.iloc[i].reset_index(drop=True)
                for name, i in zip(("train", "val", "test"), idx, strict=True)}

    def features(self, table: Table, frames: Mapping[str, pd.DataFrame], steps: Sequence[Any],
                 fitted: Any = None) -> dict[str, Features]:
        """Fit the feature steps on the training split (unless `fitted` is given); transform every split."""
        from sklearn.pipeline import Pipeline

        pipe = fitted
        if pipe is None and steps:
            pipe = Pipeline([(f"{i}_{type(s).__name__}", s) for i, s in enumerate(steps)])
        out = {}
        for name in ("train", "val", "test"):
            frame = frames[name]
            x = frame.drop(columns=self.excluded_columns(table))
            y = table.labels(frame)
            if pipe is not None:
                x = pipe.fit_transform(x, y) if name == "train" and fitted is None else pipe.transform(x)
            out[name] = Features(_as_matrix(x), y, frame)
        self.pipeline = pipe
        return out

    @staticmethod
    def excluded_columns(table: Table) -> list[str]:
        """Columns that are never features: the target and the group (an identifier)."""
        return [c for c in (table.target, table.group) if c is not None]

    def prepare(self, fitted: Any = None) -> dict[str, Features]:
        """Load, analyse, clean, split and featurize the data (the run's data path)."""
        table = self.load_data()
        if fitted is None:
            self.class_names = [str(c) for c in table.resolved_classes()]
            self.analyse(table)
        cleaning, feature_steps = self._steps()
        table = self.clean(table, cleaning)
        self.class_names = [str(c) for c in table.resolved_classes()]
        self.table = table
        frames = self.split(table)
        self.sizes = {k: len(v) for k, v in frames.items()}
        logger.info("Split (seed %d): %s", self.train_options.seed,
                    ", ".join(f"{k} {v}" for k, v in self.sizes.items()))
        return self.features(table, frames, feature_steps, fitted=fitted)

    def baselines(self, data: Mapping[str, Features]) -> dict[str, dict[str, Any]]:
        """Reference models evaluated on the test split. Default: the majority class."""
        majority = int(np.bincount(data["train"].y, minlength=2).argmax())
        proba = np.full(len(data["test"].y), float(majority))
        return {"majority": binary_metrics(data["test"].y, proba, 0.5, self.class_names)}

    def input_shape(self, data: Mapping[str, Features]) -> tuple[int, ...]:
        """The model input shape, from the training features."""
        return tuple(data["train"].x.shape[1:])

    def full_history(self, history: dict[str, list[float]]) -> dict[str, list[float]]:
        """The whole training history: a `csv_logger` file (appended across resumes) if the spec has one."""
        log = next((b["filename"] for b in self.spec["callbacks"] if b["name"] == "csv_logger"), None)
        if log and self.run_dir is not None:
            path = self.run_dir.inside(check_run_path(log, "[[callbacks]] 'csv_logger' filename"))
            if path.is_file():
                frame = pd.read_csv(path)
                return {k: frame[k].astype(float).tolist() for k in frame.columns if k != "epoch"}
        return history

    def build_model(self, input_shape: tuple[int, ...]) -> Any:
        block = self.spec["model"]
        extra = {}
        if "input_shape" in _config.schema(registry.models.get(block["name"])):
            given = block.pop("input_shape", None)
            if given is not None and tuple(given) != tuple(input_shape):
                raise ConfigError(
                    f"[model] input_shape={tuple(given)} does not match the data's {tuple(input_shape)}; "
                    "remove model.input_shape to infer it."
                )
            extra["input_shape"] = tuple(input_shape)
        with precision(self.train_options.precision):
            model = registry.models.create(block, where=f"[model] {block['name']!r}", **extra)
        if self.train_options.precision != "float32" and model.outputs[0].dtype != "float32":
            logger.warning("Model %r outputs %s under %s; give its last layer dtype='float32' for a stable loss.",
                           block["name"], model.outputs[0].dtype, self.train_options.precision)
        return compile_model(model, self.spec.options("compile"))

    def make_callbacks(self) -> list[Any]:
        """The spec's callbacks; every path they name is resolved inside the run directory."""
        out = []
        for block in self.spec["callbacks"]:
            block = dict(block)
            for key in CALLBACK_PATH_KEYS:
                if block.get(key) is None:
                    continue
                where = f"[[callbacks]] {block['name']!r} {key}"
                relative = check_run_path(block[key], where)
                if self.run_dir is None:
                    raise RunError(f"{where} names a file, but this step runs without a run directory.")
                path = self.run_dir.inside(relative, where=where)
                path.parent.mkdir(parents=True, exist_ok=True)  # inside the run: ours to create
                block[key] = str(path)
            out.append(registry.callbacks.create(block, where=f"[[callbacks]] {block['name']!r}"))
        return out

    def class_weight(self, y: np.ndarray) -> dict[int, float] | None:
        if self.train_options.class_weight != "balanced":
            return None
        counts = np.bincount(y, minlength=2).astype(float)
        return {i: float(len(y) / (2 * c)) if c else 1.0 for i, c in enumerate(counts)}

    def fit(self, model: Any, data: Mapping[str, Features], *, epochs: int | None = None,
            initial_epoch: int = 0) -> dict[str, list[float]]:
        """One `model.fit` call: up to epoch `epochs` (default `train.epochs`), starting at `initial_epoch`."""
        t = self.train_options
        train, val = data["train"], data["val"]
        if self.batch_multiple > 1:  # batches that split evenly over the devices
            from kmodels.data.pipeline import ArrayBatches

            x, y = ArrayBatches(train.x, train.y, t.batch_size, shuffle=True, seed=t.seed,
                                multiple=self.batch_multiple), None
            validation = ArrayBatches(val.x, val.y, t.batch_size, multiple=self.batch_multiple) if len(val.y) else None
        else:
            x, y = train.x, train.y
            validation = (val.x, val.y) if len(val.y) else None
        history = model.fit(
            x, y, validation_data=validation,
            epochs=t.epochs if epochs is None else epochs, initial_epoch=initial_epoch,
            batch_size=None if y is None else t.batch_size, callbacks=self.make_callbacks(),
            class_weight=self.class_weight(train.y), verbose=t.verbose, shuffle=y is not None,
        )
        return {k: [float(v) for v in vals] for k, vals in history.history.items()}

    def train(self, model: Any, data: Mapping[str, Features]) -> dict[str, list[float]]:
        """Phase one (`fit`), then the fine-tuning phase when `[fine_tune] epochs > 0` and the backbone is frozen.

        Phase two unfreezes the top of the backbone (`unfreeze_top`), recompiles at
        the fine-tuning learning rate and continues the epoch count, with fresh
        callbacks from the spec. A resumed run whose phase one had finished goes
        straight to phase two from the saved `head.weights.h5`.
        """
        ft = self.spec.options("fine_tune")
        self.phase_start = None
        if ft.epochs <= 0:
            return self.fit(model, data)
        backbone = backbone_of(model)
        if backbone is None or backbone.trainable:
            logger.info("[fine_tune] skipped: model %r has no %s backbone (fine-tuning follows training the "
                        "head of a frozen, pretrained one).", self.spec["model"]["name"],
                        "nested" if backbone is None else "frozen")
            return self.fit(model, data)
        if ft.layers < 1:
            raise ConfigError(f"[fine_tune] layers={ft.layers}; expected at least 1 layer to unfreeze.")
        rd = self.run_dir
        if rd is not None and rd.exists(HEAD_WEIGHTS):
            head_epochs = int(rd.read_json("fine_tune.json")["head_epochs"])
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*[Ss]kipping variable loading for optimizer.*")
                model.load_weights(rd.file(HEAD_WEIGHTS))
            history: dict[str, list[float]] = {}
            logger.info("Phase one finished before the interruption (%d epochs); resuming fine-tuning.", head_epochs)
        else:
            history = self.fit(model, data)
            head_epochs = len(self.full_history(history).get("loss", []))
            if rd is not None:
                with atomic_target(rd.file(HEAD_WEIGHTS), suffix=".weights.h5") as tmp:
                    model.save_weights(tmp)
                rd.write_json("fine_tune.json", {"head_epochs": head_epochs})
        trainable = unfreeze_top(model, ft.layers)
        compile_model(model, replace(self.spec.options("compile"), learning_rate=ft.learning_rate))
        logger.info("Fine-tuning: top %d backbone layers unfrozen (%d with weights, BatchNorm frozen), "
                    "learning rate %g, epochs %d-%d", ft.layers, trainable, ft.learning_rate,
                    head_epochs + 1, head_epochs + ft.epochs)
        self.phase_start = head_epochs
        more = self.fit(model, data, epochs=head_epochs + ft.epochs, initial_epoch=head_epochs)
        return {k: history.get(k, []) + v for k, v in more.items()}

    def predict_proba(self, model: Any, x: Any) -> np.ndarray:
        """Positive-class probabilities for an array or a `Batches` set (its padding dropped)."""
        from kmodels.data.pipeline import ArrayBatches, Batches

        size = self.train_options.batch_size * max(1, 256 // self.train_options.batch_size)
        n = x.n if isinstance(x, Batches) else len(x)
        if self.batch_multiple > 1 and not isinstance(x, Batches):
            x = ArrayBatches(x, None, size, multiple=self.batch_multiple)
        kwargs = {} if isinstance(x, Batches) else {"batch_size": size}
        return np.asarray(model.predict(x, verbose=0, **kwargs)).ravel()[:n]

    def evaluate(self, model: Any, data: Mapping[str, Features]) -> dict[str, Any]:
        threshold = self.spec.options("evaluate").threshold
        return binary_metrics(data["test"].y, self.predict_proba(model, data["test"].x), threshold, self.class_names)

    # ---- orchestration ----------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run the whole pipeline; every artifact lands in the run directory."""
        if self.run_dir is None:
            self.run_dir = RunDir.create(self.spec.task)
        rd = self.run_dir
        seed = self.train_options.seed
        rd.start(task=self.spec.task, seed=seed, spec_toml=self.spec.to_toml())
        logger.info("Run directory: %s", rd.path)
        t = self.train_options
        # One scope for the whole run: it fixes the device count before any data is loaded (a batch
        # size that does not split over the devices fails first), and the batches are built for it.
        with rd.recording(), distribution(t.distribution, t.batch_size) as devices:
            self.batch_multiple = devices
            set_seed(seed)
            data = self.prepare()
            sizes = self.sizes
            if self.pipeline is not None:
                atomic_write(rd.file("preprocessor.pkl"), pickle.dumps(
                    {"pipeline": self.pipeline, "target": self.table.target, "classes": self.class_names,
                     "exclude": self.excluded_columns(self.table)}))
            results = self.baselines(data)
            set_seed(seed)
            model = self.build_model(self.input_shape(data))
            start = time.perf_counter()
            history = self.full_history(self.train(model, data))
            fit_seconds = time.perf_counter() - start
            rd.write_text("history.csv", pd.DataFrame(history).rename_axis("epoch").to_csv())
            plot_history(history, rd.file("training_curves.png"), phase_start=self.phase_start)
            save_model(model, rd.file("model.keras"))
            results["keras"] = self.evaluate(model, data)
            plot_confusion_matrix(results["keras"]["confusion_matrix"], self.class_names,
                                  rd.file("confusion_matrix.png"), title=f"{self.spec.task}: keras, test split")
            metrics = {"task": self.spec.task, "primary": "keras", "classes": self.class_names,
                       "splits": sizes, "cleaning": self.cleaning, "fit_seconds": round(fit_seconds, 3), "epochs_run": len(history.get("loss", [])),
                       "replicas": devices, "models": results}
            if self.phase_start is not None:
                metrics["fine_tune_from_epoch"] = self.phase_start + 1
            rd.write_json("metrics.json", metrics)
            table_text = format_table([{"model": k, **v} for k, v in results.items()], TABLE_COLUMNS)
            rd.write_text("report.md", self.report(metrics, table_text))
        return RunResult(self.spec.task, rd.path, metrics, table_text)

    def report(self, metrics: Mapping[str, Any], table_text: str) -> str:
        """`report.md`: the comparison table and links to the plots."""
        lines = [f"# {self.spec.task}: test-split results", "", table_text, "",
                 f"Splits: {metrics['splits']}; epochs run: {metrics['epochs_run']}.", "",
                 "![confusion matrix](confusion_matrix.png)", "", "![training curves](training_curves.png)", ""]
        return "\n".join(lines)

    # ---- use of a finished run ----------------------------------------------------------------
    def evaluate_saved(self) -> dict[str, Any]:
        """Evaluate the run's saved model on the same test split it was trained for.

        Read-only: the hooks run without a run directory, so nothing in the finished run is rewritten.
        """
        rd = self.run_dir
        state = _load_state(rd)
        model = load_model(rd.file("model.keras"))
        self.run_dir = None
        try:
            data = self.prepare(fitted=None if state is None else state["pipeline"])
            return self.evaluate(model, data)
        finally:
            self.run_dir = rd

    @classmethod
    def predict_files(cls, run_dir: RunDir | None, model: Any, inputs: Sequence[Path]) -> pd.DataFrame:
        """Probabilities for the rows of CSV files, through the run's fitted preprocessing."""
        state = None if run_dir is None else _load_state(run_dir)
        frames = []
        from kmodels.data.csv import read_csv

        for path in inputs:
            frame = read_csv(path)
            if state is not None:
                x = frame.drop(columns=state["exclude"], errors="ignore")
                x = state["pipeline"].transform(x)
                classes = state["classes"]
            else:
                x, classes = frame, ["0", "1"]
            proba = np.asarray(model.predict(_as_matrix(x), verbose=0)).ravel()
            out = pd.DataFrame({"source": str(path), "row": np.arange(len(frame)), "probability": proba})
            out["label"] = np.where(proba >= 0.5, classes[1], classes[0])
            frames.append(out)
        return pd.concat(frames, ignore_index=True)


def _load_state(run_dir: RunDir) -> dict[str, Any] | None:
    if not run_dir.exists("preprocessor.pkl"):
        return None
    return pickle.loads(run_dir.file("preprocessor.pkl").read_bytes())  # noqa: S301 - our own run artifact


def load_model(path: Path) -> Any:
    """Load a `.keras` file with `safe_mode=True` (no arbitrary code)."""
    import keras

    if not path.is_file():
        raise RunError(f"{str(path)!r} not found; the run may have failed before saving its model.")
    return keras.saving.load_model(path, safe_mode=True)


def _finished_run(path: str | Path) -> tuple[RunDir, TaskSpec]:
    rd = RunDir(path)
    meta = rd.read_json("metadata.json")
    if meta.get("status") != "completed":
        raise RunError(
            f"Run {str(rd.path)!r} has status {meta.get('status')!r}, not 'completed'"
            + (f" ({meta['error']})" if meta.get("error") else "") + "; its artifacts may be incomplete."
        )
    return rd, load_spec(rd.file("spec.toml"))


def evaluate_run(path: str | Path) -> dict[str, Any]:
    """Re-evaluate a finished run's model on its test split (same data, seed and preprocessing)."""
    rd, spec = _finished_run(path)
    task = registry.tasks.get(spec.task)(spec, rd)
    set_seed(task.train_options.seed)
    return task.evaluate_saved()


def predict(source: str | Path, inputs: Sequence[str | Path]) -> pd.DataFrame:
    """Predict with a finished run directory (its task reads `inputs`) or a bare `.keras` file."""
    source = Path(source)
    paths = [Path(p) for p in inputs]
    if source.is_dir():
        rd, spec = _finished_run(source)
        return registry.tasks.get(spec.task).predict_files(rd, load_model(rd.file("model.keras")), paths)
    return Task.predict_files(None, load_model(source), paths)


def _as_matrix(x: Any) -> np.ndarray:
    if isinstance(x, pd.DataFrame):
        bad = [c for c in x.columns if not pd.api.types.is_numeric_dtype(x[c]) and not pd.api.types.is_bool_dtype(x[c])]
        if bad:
            raise ConfigError(
                f"After preprocessing, columns {bad} are not numeric. Add an encoding step to [[preprocess]] "
                "(e.g. one_hot or frequency_encode) or drop them (drop_columns)."
            )
        x = x.to_numpy(dtype=np.float32)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if not np.isfinite(x).all():
        raise ConfigError("After preprocessing the features still hold NaN or infinite values; add an imputer step.")
    return x


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


def run(task_or_path: str | Path | None = None, data: str | Path | None = None,
        overrides: Mapping[str, Any] | Sequence[str] | None = None, out: str | Path | None = None,
        resume: str | Path | None = None) -> RunResult:
    """Run a task end to end and return its metrics and run directory.

    Args:
        task_or_path: a registered task (`"bank_gender"`) or a spec TOML file.
        data: the user's data (a file or folder); `None` uses the task's embedded default.
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
    task_cls = registry.tasks.get(spec.task)
    run_dir = RunDir.create(spec.task, out=out)
    return task_cls(spec, run_dir).run()
