"""Experiment tracking: an optional MLflow logger for every run.

Turned on by `[tracking] mlflow = true` in a spec, `--set tracking.mlflow=true`,
or `kmodels run ... --mlflow [URI]`. One MLflow run per kmodels run, in the
experiment named by `[tracking] experiment` (default: the task name):

- params: the resolved spec, flattened to dotted keys (`train.epochs`, `model.filters`);
- metrics: every epoch's training logs (`loss`, `val_loss`, `learning_rate`, ...) at
  step = epoch, then the test metrics of each model of the table as `test.<model>.<metric>`;
- artifacts: the run directory's files (model, report, plots, metrics, spec);
- tags: `kmodels.run_dir`, `kmodels.task`, `kmodels.backend`; status FINISHED, FAILED or KILLED.

The MLflow run id is kept in the run directory (`tracking.json`), so `--resume`
continues the same MLflow run. The default store is a local `mlruns/` folder
(MLflow's file store, read by `mlflow ui --backend-store-uri ./mlruns`); any
tracking URI MLflow takes works (`sqlite:///mlflow.db`, `http://host:5000`).
Needs `mlflow-skinny` (or `mlflow`): `pip install "kmodels[mlflow]"`.

Example:
    >>> from kmodels.tracking import flatten
    >>> flatten({"train": {"epochs": 3, "seed": 1}, "model": {"filters": [8, 16]}})
    {'train.epochs': '3', 'train.seed': '1', 'model.filters': '[8, 16]'}
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kmodels.errors import ConfigError
from kmodels.saving import METRICS, TRACKING

logger = logging.getLogger("kmodels")

#: The run-directory file that keeps the MLflow run id for `--resume`.
TRACKING_FILE = TRACKING
#: MLflow refuses longer parameter values.
MAX_PARAM_CHARS = 6000
#: Run-directory entries never sent as artifacts: training backups are removed when a run ends.
SKIP_ARTIFACTS = ("backup",)


@dataclass(frozen=True)
class TrackingOptions:
    """`[tracking]`: where a run is logged besides its run directory.

    Args:
        mlflow: log the run to MLflow (params, per-epoch and test metrics, artifacts).
        uri: the MLflow tracking URI; a plain path is a local file store (default
            `mlruns`, relative to the working directory).
        experiment: the MLflow experiment; empty means the task's name.
    """

    mlflow: bool = False
    uri: str = "mlruns"
    experiment: str = ""

    def __post_init__(self) -> None:
        if not str(self.uri).strip():
            raise ConfigError('[tracking] uri="": expected a tracking URI or a folder, e.g. "mlruns".')


def flatten(raw: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted `section.key` → value as text; lists of blocks are keyed by their `name`."""
    out: dict[str, str] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, dotted + "."))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) and "name" in v for v in value):
            for block in value:
                out.update(flatten({k: v for k, v in block.items() if k != "name"}, f"{dotted}.{block['name']}."))
                out.setdefault(f"{dotted}.{block['name']}", "on")
        else:
            out[dotted] = str(value)[:MAX_PARAM_CHARS]
    return out


def final_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """`test.<model>.<metric>` → value for every finite number of `metrics.json`'s model table."""
    out = {}
    for model, scores in metrics.get("models", {}).items():
        for key, value in scores.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                continue
            out[f"test.{model}.{key}"] = float(value)
    for key in ("fit_seconds", "epochs_run"):
        if isinstance(metrics.get(key), int | float):
            out[key] = float(metrics[key])
    return out


def store_uri(uri: str) -> str:
    """A tracking URI for MLflow: a plain path becomes an absolute `file:` URI (MLflow's file store)."""
    if "://" in uri or uri.startswith(("file:", "sqlite:", "databricks")):
        return uri
    return Path(uri).expanduser().resolve().as_uri()


class MlflowRun:
    """One kmodels run's MLflow run (created, or reopened on `--resume`)."""

    def __init__(self, options: TrackingOptions, task: str, run_dir: Any, params: Mapping[str, str]) -> None:
        # MLflow 3 reports usage to its makers and writes ~/.config/mlflow/telemetry.json unless told not to;
        # kmodels never sends anything anywhere the user did not name (a value the user set is kept).
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("DO_NOT_TRACK", "true")
        try:
            from mlflow import MlflowClient
        except ImportError:
            raise ConfigError('[tracking] mlflow = true needs MLflow: pip install "kmodels[mlflow]" '
                              "(or mlflow-skinny), or set tracking.mlflow=false.") from None
        self.uri = store_uri(options.uri)
        if self.uri.startswith("file:"):
            # MLflow 3 keeps its file store in maintenance mode and refuses it unless asked; a local
            # `mlruns/` folder is what this logger documents as its default.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=self.uri)
        self.run_dir = run_dir
        saved = run_dir.read_json(TRACKING_FILE) if run_dir.exists(TRACKING_FILE) else {}
        if saved.get("uri") == self.uri and saved.get("run_id"):
            self.run_id = saved["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            logger.info("MLflow: continuing run %s in %s", self.run_id, self.uri)
            return
        name = options.experiment or task
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
        import keras

        run = self.client.create_run(experiment_id, run_name=Path(run_dir.path).name, tags={
            "kmodels.task": task, "kmodels.run_dir": str(run_dir.path), "kmodels.backend": keras.backend.backend()})
        self.run_id = run.info.run_id
        run_dir.write_json(TRACKING_FILE, {"uri": self.uri, "run_id": self.run_id, "experiment": name})
        self.log_params(params)
        logger.info("MLflow: run %s in experiment %r at %s", self.run_id, name, self.uri)

    def log_params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log_metrics(self, values: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(_metric_key(k), float(v), now, step) for k, v in values.items()
                 if isinstance(v, int | float) and math.isfinite(v)]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i:i + 1000])

    def callback(self) -> Any:
        """A Keras callback that logs each epoch's logs at step = epoch (0-based, as Keras counts)."""
        import keras

        tracker = self

        class MlflowEpochLogger(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                tracker.log_metrics({k: float(v) for k, v in (logs or {}).items()}, step=epoch)

        return MlflowEpochLogger()

    @contextmanager
    def closing(self) -> Iterator[MlflowRun]:
        """Marks the MLflow run KILLED (interrupt) or FAILED when the block raises; success is left to `finish`."""
        try:
            yield self
        except KeyboardInterrupt:
            self.finish("KILLED")
            raise
        except BaseException:
            self.finish("FAILED")
            raise

    def finish(self, status: str) -> None:
        """Log the test metrics and the run directory's files (on success), then close the MLflow run.

        An MLflow error here is logged, not raised: the run itself is complete in its directory.
        """
        from mlflow.exceptions import MlflowException

        try:
            self._finish(status)
        except (MlflowException, OSError) as exc:  # a failing store must not turn a finished run into a failed one
            logger.error("MLflow: could not close run %s as %s: %s: %s", self.run_id, status, type(exc).__name__, exc)

    def _finish(self, status: str) -> None:
        if status == "FINISHED":
            if self.run_dir.exists(METRICS):
                self.log_metrics(final_metrics(self.run_dir.read_json(METRICS)))
            for entry in sorted(Path(self.run_dir.path).iterdir()):
                if entry.name in SKIP_ARTIFACTS or entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    self.client.log_artifacts(self.run_id, str(entry), artifact_path=entry.name)
                else:
                    self.client.log_artifact(self.run_id, str(entry))
            self._log_model()
        self.client.set_terminated(self.run_id, status)

    def _log_model(self) -> None:
        """Log the run as an MLflow model (pyfunc, see `kmodels.mlflow_model`): `mlflow.pyfunc.load_model(
        "runs:/<id>/model").predict(rows)` answers as `kmodels predict` does.

        Saved locally with `mlflow.pyfunc.save_model`, then uploaded as the run's `model` artifacts:
        MLflow 3's `log_model` would also re-log the run's metrics against a new "logged model".
        """
        import tempfile

        import mlflow.pyfunc

        from kmodels import __version__
        from kmodels.mlflow_model import KModelsModel

        with tempfile.TemporaryDirectory(prefix="kmodels-mlflow-") as tmp:
            local = Path(tmp) / "model"
            mlflow.pyfunc.save_model(str(local), python_model=KModelsModel(),
                                     artifacts={"run_dir": str(self.run_dir.path)},
                                     pip_requirements=[f"kmodels=={__version__}"])
            self.client.log_artifacts(self.run_id, str(local), artifact_path="model")
        logger.info("MLflow: logged the run as model 'runs:/%s/model' (mlflow.pyfunc.load_model)", self.run_id)


def _metric_key(key: str) -> str:
    """MLflow metric names: letters, digits and `_-./ `; anything else becomes `_`."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key)


def open_tracker(options: TrackingOptions, task: str, run_dir: Any, spec: Mapping[str, Any]) -> MlflowRun | None:
    """The MLflow run of a kmodels run, or `None` when `[tracking] mlflow` is off.

    The caller closes it: `closing()` around the run marks it FAILED or KILLED when the run
    raises; `finish("FINISHED")` once the run directory is complete logs the test metrics and
    the files.
    """
    return MlflowRun(options, task, run_dir, flatten(spec)) if options.mlflow else None
