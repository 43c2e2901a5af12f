"""The optional MLflow logger, against a real local MLflow file store (no server)."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest

import kmodels
from kmodels.cli import main
from kmodels.errors import ConfigError
from kmodels.runs import RunDir
from kmodels.tracking import MlflowRun, TrackingOptions, final_metrics, flatten, store_uri

mlflow = pytest.importorskip("mlflow")


def _client(uri):
    return mlflow.MlflowClient(tracking_uri=store_uri(str(uri)))


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    """One toy run logged through the CLI flag, shared by the checks below."""
    work = tmp_path_factory.mktemp("mlflow")
    store, out = work / "mlruns", work / "run"
    assert main(["-q", "run", "toy_task", "--set", "train.epochs=3", "--out", str(out), "--mlflow", str(store)]) == 0
    return store, out


def test_run_params_epoch_metrics_test_metrics_and_artifacts(tracked_run, backend):
    store, out = tracked_run
    saved = json.loads((out / "tracking.json").read_text())
    client = _client(store)
    run = client.get_run(saved["run_id"])
    assert run.info.status == "FINISHED" and saved["experiment"] == "toy_task"
    assert client.get_experiment(run.info.experiment_id).name == "toy_task"
    assert run.data.params["train.epochs"] == "3" and run.data.params["task"] == "toy_task"
    assert run.data.params["tracking.mlflow"] == "True"
    assert run.data.tags["kmodels.run_dir"] == str(out) and run.data.tags["kmodels.backend"] == backend
    losses = client.get_metric_history(saved["run_id"], "loss")
    history = pd.read_csv(out / "history.csv")["loss"].tolist()
    assert [m.step for m in losses] == [0, 1, 2] and [m.value for m in losses] == pytest.approx(history)
    assert len(client.get_metric_history(saved["run_id"], "learning_rate")) == 3
    metrics = json.loads((out / "metrics.json").read_text())
    assert run.data.metrics["test.keras.accuracy"] == pytest.approx(metrics["models"]["keras"]["accuracy"])
    assert run.data.metrics["test.majority.balanced_accuracy"] == 0.5
    artifacts = {a.path for a in client.list_artifacts(saved["run_id"])}
    assert {"model.keras", "report.md", "metrics.json", "spec.toml", "history.csv"} <= artifacts
    assert json.loads((out / "metadata.json").read_text())["status"] == "completed"


def test_a_failed_run_is_marked_failed(tmp_path, monkeypatch):
    from kmodels import registry

    task = registry.tasks.get("toy_task")

    def broken(self, model, prepared):
        raise RuntimeError("evaluation broke")

    monkeypatch.setattr(task, "evaluate", broken)
    with pytest.raises(RuntimeError, match="evaluation broke"):
        kmodels.run("toy_task", overrides={"train.epochs": 1, "tracking.mlflow": True,
                                           "tracking.uri": str(tmp_path / "mlruns")}, out=tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "tracking.json").read_text())
    assert _client(tmp_path / "mlruns").get_run(saved["run_id"]).info.status == "FAILED"
    assert json.loads((tmp_path / "run" / "metadata.json").read_text())["status"] == "failed"


def test_resume_continues_the_same_mlflow_run(tmp_path):
    rd = RunDir.create("toy_task", out=tmp_path / "run")
    options = TrackingOptions(mlflow=True, uri=str(tmp_path / "mlruns"))
    first = MlflowRun(options, "toy_task", rd, {"train.epochs": "2"})
    first.finish("KILLED")
    again = MlflowRun(options, "toy_task", rd, {"train.epochs": "2"})
    assert again.run_id == first.run_id
    assert _client(tmp_path / "mlruns").get_run(first.run_id).info.status == "RUNNING"
    other = MlflowRun(TrackingOptions(mlflow=True, uri=str(tmp_path / "elsewhere")), "toy_task", rd, {})
    assert other.run_id != first.run_id  # a different store: a new MLflow run there


def test_missing_mlflow_is_a_config_error_naming_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ConfigError, match=r'pip install "kmodels\[mlflow\]"'):
        MlflowRun(TrackingOptions(mlflow=True, uri=str(tmp_path)), "toy_task", RunDir.create("t", out=tmp_path / "r"), {})


def test_flatten_names_blocks_and_test_metrics_skip_non_numbers():
    spec = {"task": "t", "callbacks": [{"name": "early_stopping", "patience": 3}], "x": {"y": [1, 2]}}
    assert flatten(spec) == {"task": "t", "callbacks.early_stopping.patience": "3",
                             "callbacks.early_stopping": "on", "x.y": "[1, 2]"}
    metrics = {"models": {"keras": {"accuracy": 0.5, "confusion_matrix": [[1]], "roc_auc": float("nan"),
                                    "ok": True}}, "fit_seconds": 1.5}
    assert final_metrics(metrics) == {"test.keras.accuracy": 0.5, "fit_seconds": 1.5}
    assert store_uri("sqlite:///m.db") == "sqlite:///m.db" and store_uri("/tmp/m").startswith("file:///")
    with pytest.raises(ConfigError, match="tracking"):
        kmodels.load_spec("toy_task", {"tracking.uri": " "})


def test_the_run_is_logged_as_an_mlflow_pyfunc_model_that_predicts_raw_rows(tracked_run):
    store, out = tracked_run
    run_id = json.loads((out / "tracking.json").read_text())["run_id"]
    mlflow.set_tracking_uri(store_uri(str(store)))
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    finally:
        mlflow.set_tracking_uri(None)
    rows = kmodels.registry.datasets.get("toy_blobs")(rows=6, seed=2).frame.drop(columns=["label"])
    got = model.predict(rows)
    expected = kmodels.predict(out, rows)
    assert list(got["label"]) == list(expected["label"])
    pd.testing.assert_series_equal(got["probability_b"], expected["probability_b"], atol=1e-5, check_names=False)
