"""Regression tests for what a hostile campaign found: run directories from a stranger, diverged
training, and files that are not what they claim. Each test failed before the fix it guards."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import zipfile

import keras
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

import kmodels
from kmodels.cli import main
from kmodels.errors import ConfigError, RunError
from kmodels.run_paths import check_run_path
from kmodels.runs import RunDir, check_zip, regular_file
from kmodels.task import predict
from tests._items import ToyTask


@pytest.fixture
def rows(tmp_path):
    path = tmp_path / "rows.csv"
    kmodels.registry.datasets.get("toy_blobs")(rows=5).frame.drop(columns=["label"]).to_csv(path, index=False)
    return path


@pytest.fixture
def copied_run(toy_run, tmp_path):
    """A private copy of the shared toy run, to tamper with."""
    dest = tmp_path / "copied"
    shutil.copytree(toy_run.run_dir, dest)
    return dest


@pytest.fixture
def alarm():
    """Fail instead of hanging: a test that would block forever gets SIGALRM after 60 s."""
    def _raise(signum, frame):
        raise TimeoutError("blocked")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# ---- diverged training -----------------------------------------------------------------------------
def _nan_training(self, model):
    """The toy model behind a layer whose output is NaN: the loss is NaN from the first step."""
    return keras.Model(model.inputs, keras.layers.Rescaling(float("nan"))(model.outputs[0]))


def test_a_nan_loss_fails_the_run_and_saves_no_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ToyTask, "training_model", _nan_training)
    out = tmp_path / "run"
    assert main(["run", "toy_task", "--out", str(out), "--set", "train.epochs=3"]) == 1
    err = capsys.readouterr().err
    assert "training loss became nan in epoch 1" in err and "learning_rate" in err
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["status"] == "failed" and "diverged" in meta["error"]
    assert not (out / "model.keras").exists() and not (out / "metrics.json").exists()


@pytest.mark.parametrize("key,value", [("compile.learning_rate", 1e3), ("compile.learning_rate", float("nan")),
                                       ("compile.learning_rate", 0.0), ("fine_tune.learning_rate", 50.0)])
def test_an_absurd_learning_rate_is_refused_before_anything_runs(key, value):
    section, name = key.split(".")
    with pytest.raises(ConfigError, match=re.escape(f"[{section}] {name}={value}: expected a finite number")):
        kmodels.load_spec("toy_task", {key: value})


# ---- files in a run directory ----------------------------------------------------------------------
def test_a_fifo_or_device_in_a_run_directory_is_refused_without_blocking(copied_run, rows, alarm):
    (copied_run / "metrics.json").unlink()
    os.mkfifo(copied_run / "metrics.json")
    with pytest.raises(RunError, match="not a regular file"):
        predict(copied_run, [rows])
    (copied_run / "metrics.json").unlink()
    (copied_run / "metrics.json").symlink_to("/dev/zero")
    with pytest.raises(RunError, match="outside the run directory"):
        predict(copied_run, [rows])
    with pytest.raises(RunError, match="not a regular file"):
        regular_file("/dev/zero", 1024)


def test_a_zip_bomb_is_refused_before_it_is_inflated(copied_run, rows, tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", b"\0" * 2_000_000)  # 2 MB of zeros: a few kilobytes on disk
    assert bomb.stat().st_size < 20_000
    with pytest.raises(RunError, match="inflates to 2,000,000 bytes"):
        check_zip(bomb, 1_000_000, "preprocessing file")
    monkeypatch.setattr("kmodels.task.inference.MAX_STATE_BYTES", 1_000_000)
    shutil.copy(bomb, copied_run / "preprocessor.skops")
    with pytest.raises(RunError, match="inflates"):
        predict(copied_run, [rows])


def test_a_state_file_holding_a_function_is_refused(copied_run, rows):
    """skops trusts scikit-learn's FunctionTransformer and NumPy's functions; kmodels loads registered steps only."""
    sio.dump(Pipeline([("neg", FunctionTransformer(np.negative))]), copied_run / "preprocessor.skops")
    assert sio.get_untrusted_types(file=copied_run / "preprocessor.skops") == []  # skops alone would load it
    with pytest.raises(RunError, match="FunctionTransformer"):
        predict(copied_run, [rows])


@pytest.mark.parametrize("edit,match", [({"threshold": 5.0}, "threshold=5.0"), ({"threshold": "x"}, "threshold='x'"),
                                        ({"problem": {"kind": "multiclass", "classes": ["a", "b", "c"]}},
                                         "needs 3 model output"),
                                        ({"problem": {"kind": "nonsense"}}, "not one kmodels wrote")])
def test_metrics_json_is_checked_against_the_model(copied_run, rows, edit, match):
    metrics = json.loads((copied_run / "metrics.json").read_text())
    (copied_run / "metrics.json").write_text(json.dumps({**metrics, **edit}))
    with pytest.raises(RunError, match=match):
        predict(copied_run, [rows])


# ---- resume ----------------------------------------------------------------------------------------
def _interrupted_run(path, **overrides):
    path.mkdir()
    (path / "spec.toml").write_text(kmodels.load_spec("toy_task", {"train.epochs": 2, **overrides}).to_toml())
    (path / "metadata.json").write_text(json.dumps({"status": "interrupted"}))
    return path


def test_resume_never_follows_the_run_directorys_tracking_uri(tmp_path, caplog):
    pytest.importorskip("mlflow")
    store = tmp_path / "strangers_store"
    run = _interrupted_run(tmp_path / "run", **{"tracking.mlflow": True, "tracking.uri": str(store)})
    result = kmodels.run(resume=run)
    assert result.metrics["models"]["keras"]["accuracy"] is not None
    assert not store.exists() and not (run / "tracking.json").exists()
    assert "never follows a tracking URI" in caplog.text


def test_a_second_resume_of_a_running_directory_is_refused(tmp_path):
    run = _interrupted_run(tmp_path / "run")
    with RunDir(run).exclusive(), pytest.raises(RunError, match="in use by another kmodels process"):
        kmodels.run(resume=run)
    assert json.loads((run / "metadata.json").read_text())["status"] == "interrupted"  # untouched


def test_a_running_status_with_an_unrelated_live_pid_can_be_resumed(tmp_path):
    """The pid of a dead run may belong to another process now; the free lock says the run is gone."""
    run = _interrupted_run(tmp_path / "run")
    import socket

    (run / "metadata.json").write_text(json.dumps({"status": "running", "pid": os.getppid(),
                                                   "host": socket.gethostname()}))
    kmodels.run(resume=run)
    assert json.loads((run / "metadata.json").read_text())["status"] == "completed"


def test_a_lock_file_that_is_a_symlink_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    run = _interrupted_run(tmp_path / "run")
    (run / ".kmodels.lock").symlink_to(victim)
    with pytest.raises(RunError, match="lock file"):
        kmodels.run(resume=run)
    assert not victim.exists()


@pytest.mark.parametrize("value", ["..{epoch!s:.0}/x.keras", "{epoch:.>3}/x.keras", "{epoch.real}.keras",
                                   "x/{0}.keras", "{val_loss!r}.keras"])
def test_callback_path_fields_that_could_format_outside_are_refused(value):
    with pytest.raises(ConfigError, match="numeric format"):
        check_run_path(value, "[[callbacks]] 'model_checkpoint' filepath")
    assert check_run_path("ckpt/{epoch:02d}-{val_loss:.3f}.keras", "w") == "ckpt/{epoch:02d}-{val_loss:.3f}.keras"


def test_opening_mlflow_turns_its_telemetry_off(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from kmodels.tracking import MlflowRun, TrackingOptions

    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    rd = RunDir.create("t", out=tmp_path / "run")
    tracker = MlflowRun(TrackingOptions(mlflow=True, uri=str(tmp_path / "mlruns")), "t", rd, {})
    tracker.finish("FINISHED")
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"


# ---- predictions as data ---------------------------------------------------------------------------
def test_binary_predictions_name_both_classes_and_keep_the_index(toy_run):
    frame = kmodels.registry.datasets.get("toy_blobs")(rows=4).frame.drop(columns=["label"])
    frame.index = pd.Index([10, 20, 30, 40], name="id")
    pred = predict(toy_run.run_dir, frame)
    assert list(pred.columns) == ["source", "row", "label", "probability", "probability_a", "probability_b"]
    assert list(pred.index) == [10, 20, 30, 40] and list(pred["row"]) == [10, 20, 30, 40]
    np.testing.assert_allclose(pred["probability_a"] + pred["probability_b"], 1.0, rtol=1e-6)
    chosen = np.where(pred["label"] == "b", pred["probability_b"], pred["probability_a"])
    np.testing.assert_allclose(pred["probability"], chosen)


def test_csv_cells_that_are_numbers_are_not_escaped():
    from kmodels.evaluation import spreadsheet_safe

    frame = pd.DataFrame({"label": ["-1", "+3", "-2.5e-3", "=1+1", "-1+2", "@x", "ok"]})
    assert spreadsheet_safe(frame)["label"].tolist() == ["-1", "+3", "-2.5e-3", "'=1+1", "'-1+2", "'@x", "ok"]


# ---- console papercuts -----------------------------------------------------------------------------
def test_quiet_silences_keras_epoch_lines_and_pipes_get_no_progress_bars(tmp_path, capsys):
    assert main(["-q", "run", "toy_task", "--set", "train.epochs=2", "--set", "train.verbose=2",
                 "--out", str(tmp_path / "run")]) == 0
    captured = capsys.readouterr()
    assert "Epoch 1/" not in captured.err + captured.out and "kmodels: Run directory" not in captured.err
    task = ToyTask(kmodels.load_spec("toy_task", {"train.verbose": 1}))
    assert task.verbose == 2  # captured output is not a terminal: one line per epoch, no ANSI redraws


def test_metrics_that_do_not_fit_the_problem_stop_before_the_run_exists(tmp_path, capsys):
    from kmodels.building import check_metrics
    from kmodels.options import CompileOptions
    from kmodels.problems import Problem

    assert check_metrics(CompileOptions(metrics=("auto", "auc")), Problem.from_num_classes(2)) == ["accuracy", "auc"]
    with pytest.raises(ConfigError, match="metric 'auc' does not work on this multiclass problem"):
        check_metrics(CompileOptions(metrics=("accuracy", "auc")), Problem.from_num_classes(3))
    with pytest.raises(ConfigError, match="not a Keras metric"):
        check_metrics(CompileOptions(metrics=("accurasy",)), Problem.from_num_classes(2))
    out = tmp_path / "run"
    assert main(["run", "toy_task", "--set", 'compile.metrics=["accuracy", "nonsense_metric"]',
                 "--out", str(out)]) == 2
    assert "nonsense_metric" in capsys.readouterr().err and not out.exists()


def test_a_compressed_csv_that_is_not_what_its_name_says_is_a_data_error(tmp_path):
    from kmodels.data.csv import read_csv
    from kmodels.errors import DataError

    for suffix in (".gz", ".bz2", ".xz", ".zip"):
        bad = tmp_path / f"rows.csv{suffix}"
        bad.write_bytes(b"a,b\n1,2\n")
        with pytest.raises(DataError, match=rf"not a readable \{suffix} file"):
            read_csv(bad)


def test_a_full_disk_is_a_clear_error_not_a_traceback(tmp_path, monkeypatch, capsys):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("kmodels.task.runner.save_model", full)
    out = tmp_path / "run"
    assert main(["run", "toy_task", "--set", "train.epochs=1", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "no space left on the device" in err and "Traceback" not in err
    assert json.loads((out / "metadata.json").read_text())["status"] == "failed"
    assert not (out / "model.keras").exists()


def test_a_backup_corrupted_by_a_kill_mid_write_resumes_from_the_epoch_before(tmp_path):
    """Keras writes its backup in place; kmodels keeps the previous epoch's copy (double_checkpoint)."""
    import tomllib

    raw = tomllib.loads(kmodels.load_spec("toy_task", {"train.epochs": 4,
                                                       "callbacks.early_stopping.patience": 10}).to_toml())
    raw["callbacks"] += [{"name": "backup_and_restore", "backup_dir": "backup"},
                         {"name": "interrupt_after_epoch", "epoch": 2}]
    spec = tmp_path / "spec.toml"
    from kmodels._toml import dumps

    spec.write_text(dumps(raw))
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        kmodels.run(spec, out=out)
    weights = out / "backup" / "latest.weights.h5"
    assert (out / "backup" / "latest.weights.h5.bkp").is_file()
    weights.write_bytes(weights.read_bytes()[:200])  # what a SIGKILL during the write leaves
    resumed = out / "spec.toml"
    text = resumed.read_text().replace('name = "interrupt_after_epoch"\nepoch = 2', 'name = "interrupt_after_epoch"\nepoch = 99')
    resumed.write_text(text)
    result = kmodels.run(resume=out)
    assert json.loads((out / "metadata.json").read_text())["status"] == "completed"
    # epochs 1-3 ran; the corrupt backup of epoch 3 is skipped for the copy of epoch 2: epochs 3-4 run again
    assert result.metrics["epochs_run"] == 2


def test_a_csv_with_a_line_of_megabytes_is_refused_before_parsing(tmp_path):
    from kmodels.data.csv import MAX_LINE_BYTES, read_csv
    from kmodels.errors import DataError

    path = tmp_path / "long.csv"
    path.write_bytes(b"a,b\n1,2\n3," + b"x" * (MAX_LINE_BYTES + 10) + b"\n5,6\n")
    with pytest.raises(DataError, match="line 3 is longer than 4,194,304 bytes"):
        read_csv(path)
    unterminated = tmp_path / "unterminated.csv"
    unterminated.write_bytes(b"a,b\n1," + b"y" * (3 * MAX_LINE_BYTES))
    with pytest.raises(DataError, match="line 2 is longer"):
        read_csv(unterminated)


def test_a_damaged_model_file_is_a_clear_error(copied_run, rows):
    model = copied_run / "model.keras"
    with zipfile.ZipFile(model) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"] = config["config"]["layers"][:1]  # a Functional model missing its layers
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(model, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(RunError, match="could not be loaded as a Keras model"):
        predict(copied_run, [rows])
