from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

import kmodels
from kmodels.errors import ConfigError, RunError
from kmodels.problems import Problem
from kmodels.runs import RunDir
from kmodels.task.inference import load_model


def test_run_writes_every_artifact_and_completes(toy_run, backend):
    rd = toy_run.run_dir
    for name in ["spec.toml", "metadata.json", "history.csv", "model.keras", "metrics.json",
                 "confusion_matrix.png", "training_curves.png", "report.md", "preprocessor.skops", "preprocessor.json"]:
        assert (rd / name).is_file(), name
    meta = json.loads((rd / "metadata.json").read_text())
    assert meta["status"] == "completed" and meta["backend"] == backend and meta["seed"] == 42
    assert meta["versions"]["keras"] and meta["end_time"] >= meta["start_time"]
    metrics = json.loads((rd / "metrics.json").read_text())
    assert set(metrics["models"]) == {"majority", "keras"}
    assert metrics["models"]["keras"]["balanced_accuracy"] > 0.8  # blobs are easy
    assert metrics["models"]["majority"]["balanced_accuracy"] == 0.5
    assert toy_run.metrics == metrics and "| keras" in toy_run.markdown
    assert toy_run.table.loc["keras", "accuracy"] == metrics["models"]["keras"]["accuracy"]
    assert "| keras" in toy_run.table.to_markdown()  # pandas' markdown (tabulate is a dependency)
    assert not list(rd.glob(".*tmp")), "temporary files left behind"


def test_split_keeps_customers_apart(toy_run):
    # the saved spec groups by customer: re-create the split and check disjointness
    from kmodels import registry
    spec = kmodels.load_spec(toy_run.run_dir / "spec.toml")
    task = registry.tasks.get("toy_task")(spec)
    data = task.prepare().data
    groups = {k: set(v.frame["customer"]) for k, v in data.items()}
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["val"]
    assert not groups["val"] & groups["test"]


def test_same_seed_same_metrics(toy_run, tmp_path):
    again = kmodels.run("toy_task", overrides={"train.epochs": 4}, out=tmp_path / "again")
    a, b = toy_run.metrics["models"]["keras"], again.metrics["models"]["keras"]
    assert a["confusion_matrix"] == b["confusion_matrix"]
    assert a["roc_auc"] == pytest.approx(b["roc_auc"], abs=1e-6)


def test_evaluate_run_reproduces_test_metrics(toy_run):
    from kmodels.task import evaluate_run

    again = evaluate_run(toy_run.run_dir)
    assert again["confusion_matrix"] == toy_run.metrics["models"]["keras"]["confusion_matrix"]


def test_out_refuses_non_empty_dir(tmp_path):
    (tmp_path / "keep.txt").write_text("user data")
    with pytest.raises(RunError, match="not an empty directory"):
        kmodels.run("toy_task", out=tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "user data"


def test_default_run_dirs_are_never_reused(tmp_path):
    a = RunDir.create("t", root=tmp_path)
    b = RunDir.create("t", root=tmp_path)
    assert a.path != b.path and a.path.parent == b.path.parent == tmp_path / "t"


def test_failed_run_is_marked_failed(tmp_path, monkeypatch):
    from kmodels.task import Task

    def boom(self, model, data):
        raise RuntimeError("exploded mid-fit")

    monkeypatch.setattr(Task, "fit", boom)
    with pytest.raises(RuntimeError):
        kmodels.run("toy_task", out=tmp_path / "r")
    meta = json.loads((tmp_path / "r" / "metadata.json").read_text())
    assert meta["status"] == "failed" and "exploded mid-fit" in meta["error"]
    assert not (tmp_path / "r" / "metrics.json").exists() and not (tmp_path / "r" / "model.keras").exists()


def test_interrupted_run_is_marked_interrupted(tmp_path, monkeypatch):
    from kmodels.task import Task

    def stop(self, model, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(Task, "fit", stop)
    with pytest.raises(KeyboardInterrupt):
        kmodels.run("toy_task", out=tmp_path / "r")
    assert json.loads((tmp_path / "r" / "metadata.json").read_text())["status"] == "interrupted"


def test_evaluate_refuses_unfinished_run(tmp_path):
    from kmodels.task import evaluate_run

    rd = RunDir.create("toy_task", out=tmp_path / "r")
    rd.write_json("metadata.json", {"status": "failed", "error": "boom"})
    with pytest.raises(RunError, match="status 'failed'.*boom"):
        evaluate_run(rd.path)


def test_input_shape_mismatch_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"input_shape=\(3,\) does not match the data's \(4,\)"):
        kmodels.run("toy_task", overrides={"model.input_shape": [3]}, out=tmp_path / "r")


def test_balanced_class_weight():
    from kmodels import registry
    task = registry.tasks.get("toy_task")(kmodels.load_spec("toy_task", {"train.class_weight": "balanced"}))
    weights = task.class_weight(np.array([0, 0, 0, 1]), Problem("binary", ("a", "b")))
    assert weights == {0: pytest.approx(4 / 6), 1: pytest.approx(2.0)}
    three = task.class_weight(np.array([0, 0, 1, 2, 2, 2]), Problem("multiclass", ("a", "b", "c")))
    assert three == {0: pytest.approx(1.0), 1: pytest.approx(2.0), 2: pytest.approx(2 / 3)}
    assert task.class_weight(np.array([0.5, 1.5]), Problem("regression")) is None


class _Stranger:  # a type no plugin registered
    def __init__(self):
        self.x = 1


def test_a_run_directory_never_runs_code(toy_run, tmp_path):
    """A crafted state file is refused before anything in it is loaded; no pickle is ever read."""
    import os
    import pickle
    import shutil

    import skops.io as sio

    from kmodels.task import predict

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    rows = tmp_path / "rows.csv"
    kmodels.registry.datasets.get("toy_blobs")(rows=4).frame.drop(columns=["label"]).to_csv(rows, index=False)
    crafted = tmp_path / "run_pickle"
    shutil.copytree(toy_run.run_dir, crafted)
    (crafted / "preprocessor.pkl").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(RunError, match="never unpickles"):
        predict(crafted, [rows])
    foreign = tmp_path / "run_foreign"
    shutil.copytree(toy_run.run_dir, foreign)
    sio.dump(_Stranger(), foreign / "preprocessor.skops")
    with pytest.raises(RunError, match="not registered preprocessors"):
        predict(foreign, [rows])
    assert not marker.exists()
    assert len(predict(toy_run.run_dir, [rows])) == 4  # the genuine run still predicts


def test_a_lambda_model_in_a_run_directory_is_refused(toy_run, tmp_path, capsys):
    """predict, evaluate and --resume refuse a `model.keras` carrying Python code; the code never runs."""
    import json
    import os
    import shutil

    import keras

    from kmodels.cli import main

    marker = tmp_path / "pwned"
    crafted = tmp_path / "run_lambda"
    shutil.copytree(toy_run.run_dir, crafted)
    genuine = keras.saving.load_model(crafted / "model.keras")
    inputs = keras.Input(genuine.input_shape[1:])
    command = f"touch {marker}"  # a str closure: Keras serializes the lambda's code and closure
    hidden = keras.layers.Lambda(lambda x: (os.system(command), x)[1])(inputs)
    keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden)).save(crafted / "model.keras")
    marker.unlink()  # building the model called the lambda once, here
    rows = tmp_path / "rows.csv"
    kmodels.registry.datasets.get("toy_blobs")(rows=4).frame.drop(columns=["label"]).to_csv(rows, index=False)
    capsys.readouterr()
    assert main(["predict", str(crafted), str(rows)]) == 1  # a RunError: the run directory is refused
    assert main(["evaluate", str(crafted)]) == 1
    err = capsys.readouterr().err
    assert err.count("holds Python code") == 2 and "Traceback" not in err
    meta = json.loads((crafted / "metadata.json").read_text())
    (crafted / "metadata.json").write_text(json.dumps({**meta, "status": "failed"}))
    (crafted / "trained.json").write_text(json.dumps({"history": {}, "phase_start": None, "fit_seconds": 1.0}))
    with pytest.raises(RunError, match="holds Python code"):
        kmodels.run(resume=crafted)
    assert not marker.exists()


def test_two_runs_claiming_one_out_exactly_one_wins(tmp_path):
    import threading

    out, wins, losses = tmp_path / "shared", [], []
    barrier = threading.Barrier(8)

    def claim():
        barrier.wait()
        try:
            wins.append(RunDir.create("t", out=out))
        except RunError:
            losses.append(1)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7


def test_report_and_console_name_the_best_model_and_the_verdict(toy_run):
    lines = toy_run.metrics["verdict"]
    assert lines[0].startswith(f"Best model on the test split by {toy_run.metrics['primary_metric']}: ")
    assert "the majority baseline" in lines[1]
    keras_scores = toy_run.metrics["models"]["keras"]
    # a bootstrap standard error is 0 only where every resample scores the same: a perfect score
    assert keras_scores["primary_se"] > 0 or keras_scores[toy_run.metrics["primary_metric"]] == 1.0
    report = (toy_run.run_dir / "report.md").read_text()
    assert all(line in report for line in lines)


def test_cosine_schedule_warms_up_then_decays_and_refuses_reduce_lr(tmp_path):
    overrides = {"train.epochs": 5, "compile.schedule": "cosine", "compile.warmup_epochs": 1,
                 "compile.weight_decay": 1e-4, "callbacks.early_stopping.patience": 10}
    result = kmodels.run("toy_task", overrides=overrides, out=tmp_path / "run")
    lr = pd.read_csv(result.run_dir / "history.csv")["learning_rate"].to_numpy()
    assert len(lr) == 5 and lr[0] > 0.04 and np.all(np.diff(lr) < 0)  # after the warm-up epoch: decaying
    assert lr[-1] < 0.05 * 0.1
    raw = kmodels.load_spec("toy_task", {"compile.schedule": "cosine"}).to_dict()
    raw["callbacks"].append({"name": "reduce_lr_on_plateau"})
    with pytest.raises(kmodels.ConfigError, match="remove the reduce_lr_on_plateau callback"):
        kmodels.registry.tasks.get("toy_task")(kmodels.TaskSpec(raw, "test"))
    with pytest.raises(kmodels.ConfigError, match="weight_decay=-1"):
        kmodels.load_spec("toy_task", {"compile.weight_decay": -1})


def test_linear_schedule_holds_one_rate_per_epoch_on_the_line_and_saves_as_plain_keras(tmp_path):
    import keras

    from kmodels.building import learning_rate
    from kmodels.options import CompileOptions

    lr = learning_rate(CompileOptions(learning_rate=0.02, schedule="linear", warmup_epochs=2), 7, 10)
    line = [0.002, 0.011] + [0.02 - (0.02 - 0.0002) * e / 7 for e in range(8)]  # warm-up, then down to 1%
    for epoch, rate in enumerate(line):
        for step in (epoch * 7, epoch * 7 + 6):  # the epoch's first and last step
            assert float(lr(step)) == pytest.approx(rate, rel=1e-5)
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(lr))
    assert type(again).__module__.startswith("keras.") and float(again(30)) == pytest.approx(line[4], rel=1e-5)
    assert learning_rate(CompileOptions(learning_rate=0.02, schedule="linear"), 7, 1) == 0.02  # one epoch: no line
    result = kmodels.run("toy_task", out=tmp_path / "run", overrides={
        "train.epochs": 5, "compile.schedule": "linear", "compile.warmup_epochs": 1,
        "callbacks.early_stopping.patience": 10})
    logged = pd.read_csv(result.run_dir / "history.csv")["learning_rate"].to_numpy()
    assert logged[0] > logged[1] > logged[2] > logged[3] and logged[-1] == pytest.approx(logged[0] / 100, rel=1e-4)
    loaded = keras.saving.load_model(result.run_dir / "model.keras", safe_mode=True)  # compiled, in plain Keras
    assert isinstance(loaded.optimizer._learning_rate, keras.optimizers.schedules.PiecewiseConstantDecay)


def test_momentum_reaches_sgd_and_rmsprop_and_is_refused_where_there_is_none():
    from kmodels.building import compile_model
    from kmodels.options import CompileOptions

    model = kmodels.build("toy_mlp")
    for name, expected in (("sgd", 0.0), ("rmsprop", 0.0)):  # left at 0: the optimizer's own default
        assert compile_model(model, CompileOptions(optimizer=name)).optimizer.momentum == expected
    sgd = compile_model(model, CompileOptions(optimizer="sgd", momentum=0.9, weight_decay=5e-3)).optimizer
    assert type(sgd).__name__ == "SGD" and sgd.momentum == 0.9 and sgd.weight_decay == 5e-3
    assert compile_model(model, CompileOptions(optimizer="rmsprop", momentum=0.5)).optimizer.momentum == 0.5
    with pytest.raises(ConfigError, match=r"momentum=0.9: optimizer 'adam' has no momentum argument"):
        compile_model(model, CompileOptions(optimizer="adam", momentum=0.9))
    with pytest.raises(ConfigError, match=r"momentum=1.*: expected a number in \[0, 1\)"):
        kmodels.load_spec("toy_task", {"compile.momentum": 1})


def test_nesterov_reaches_sgd_and_is_refused_elsewhere():
    from kmodels.building import compile_model
    from kmodels.options import CompileOptions

    model = kmodels.build("toy_mlp")
    sgd = compile_model(model, CompileOptions(optimizer="sgd", momentum=0.9, nesterov=True)).optimizer
    assert sgd.nesterov is True and sgd.momentum == 0.9
    with pytest.raises(ConfigError, match=r"nesterov=true: optimizer 'adam' has no Nesterov variant"):
        compile_model(model, CompileOptions(optimizer="adam", nesterov=True))


def test_ema_validates_on_the_averaged_weights_and_leaves_training_on_the_raw_ones():
    """With `AveragedWeightsValidation`, an epoch's val_loss is the averaged weights' loss (what `fit` leaves in
    the model at the end), and the training trajectory is the one without it (the raw weights come back)."""
    import keras

    from kmodels.callbacks import AveragedWeightsValidation

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]], "float32") + 0.1).astype("float32")

    def fit(callbacks):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(0.05, use_ema=True, ema_momentum=0.8), "mse")
        history = model.fit(x, y, validation_data=(x[:16], y[:16]), epochs=3, batch_size=16, shuffle=False,
                            verbose=0, callbacks=callbacks)
        return model, history.history

    averaged, with_swap = fit([AveragedWeightsValidation()])
    _, without = fit([])
    np.testing.assert_allclose(with_swap["loss"], without["loss"], rtol=1e-5)  # training never saw the average
    assert not np.allclose(with_swap["val_loss"], without["val_loss"], rtol=1e-3)
    final = averaged.evaluate(x[:16], y[:16], verbose=0)  # fit ends with the average in the model
    assert final == pytest.approx(with_swap["val_loss"][-1], rel=1e-5)
    with pytest.raises(ConfigError, match=r"ema=1.*expected a momentum in \[0, 1\)"):
        kmodels.load_spec("toy_task", {"compile.ema": 1})


def test_ema_averages_batchnorm_statistics_too():
    """Keras averages the trainable weights only; the callback keeps the same average of BatchNorm's moving
    statistics: validation sees averaged weights with averaged statistics, training the raw ones (its losses are
    those of a fit without the callback), and the model ends with both averages."""
    import keras

    from kmodels.callbacks import AveragedWeightsValidation

    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(64, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]], "float32")).astype("float32")

    class Spy(keras.callbacks.Callback):  # sees the model after the swap (validation) and before it (train end)
        def __init__(self):
            super().__init__()
            self.validated, self.raw_at_end = [], None

        def on_test_batch_end(self, batch, logs=None):
            self.validated.append(keras.ops.convert_to_numpy(self.model.layers[1].moving_mean))

        def on_train_end(self, logs=None):
            self.raw_at_end = keras.ops.convert_to_numpy(self.model.layers[1].moving_mean)

    def fit(callbacks):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization(momentum=0.5),
                                  keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(0.02, use_ema=True, ema_momentum=0.9), "mse")
        history = model.fit(x, y, validation_data=(x[:16], y[:16]), epochs=3, batch_size=16, shuffle=False,
                            verbose=0, callbacks=callbacks)
        return model, history.history

    spy, averaging = Spy(), AveragedWeightsValidation()
    model, with_swap = fit([spy, averaging])
    _, without = fit([])
    np.testing.assert_allclose(with_swap["loss"], without["loss"], rtol=1e-5)  # training kept its own statistics
    final = keras.ops.convert_to_numpy(model.layers[1].moving_mean)
    np.testing.assert_allclose(final, averaging._statistics[0], rtol=1e-6)  # the model ends with the average
    assert not np.allclose(final, spy.raw_at_end, rtol=1e-3)  # which is not what training left
    assert len(spy.validated) == 3 and not np.allclose(spy.validated[0], spy.raw_at_end, rtol=1e-3)
    assert model.evaluate(x[:16], y[:16], verbose=0) == pytest.approx(with_swap["val_loss"][-1], rel=1e-4)


def test_ema_warns_when_the_run_is_too_short_for_its_average(caplog):
    """Keras's average has no warm-up: 0.999 over 200 steps keeps 82% of the first weights, which is said."""
    import logging

    from kmodels.building import compile_model
    from kmodels.options import CompileOptions

    with caplog.at_level(logging.WARNING, logger="kmodels"):
        compile_model(kmodels.build("toy_mlp"), CompileOptions(ema=0.999), steps_per_epoch=20, epochs=10)
        assert "ema=0.999 averages over about 1000 steps, and this run trains 200: 82%" in caplog.text
        caplog.clear()
        compile_model(kmodels.build("toy_mlp"), CompileOptions(ema=0.99), steps_per_epoch=20, epochs=50)
        assert "ema" not in caplog.text  # 0.99 ** 1000: nothing left of the first steps


def test_a_run_with_ema_trains_and_saves(tmp_path):
    result = kmodels.run("toy_task", overrides={"train.epochs": 2, "compile.ema": 0.9}, out=tmp_path / "run")
    assert (result.run_dir / "model.keras").is_file() and result.metrics["models"]["keras"]["accuracy"] is not None


def test_max_steps_caps_the_epochs_and_the_schedule_decays_over_those_that_run(tmp_path, caplog):
    overrides = {"train.epochs": 6, "train.max_steps": 20, "compile.schedule": "cosine",
                 "compile.warmup_epochs": 0, "callbacks.early_stopping.patience": 10}
    with caplog.at_level(logging.INFO, logger="kmodels"):
        result = kmodels.run("toy_task", overrides=overrides, out=tmp_path / "capped")
    per_epoch = result.metrics["splits"]["train"] // 32  # full batches only (`Batches(full_batches=True)`)
    assert 6 * per_epoch > 20  # the cap binds
    assert result.metrics["epochs_run"] == 20 // per_epoch
    lr = pd.read_csv(result.run_dir / "history.csv")["learning_rate"].to_numpy()
    assert lr[-1] < 0.05 * 0.1  # decayed over the epochs that ran, not over the 6 asked for
    assert sum("exceed [train] max_steps=20" in r.getMessage() for r in caplog.records) == 1
    uncapped = kmodels.run("toy_task", overrides={"train.epochs": 2, "train.max_steps": 2 * per_epoch},
                           out=tmp_path / "uncapped")
    assert uncapped.metrics["epochs_run"] == 2
    with pytest.raises(kmodels.ConfigError, match=r"\[train\] max_steps=-1"):
        kmodels.load_spec("toy_task", {"train.max_steps": -1})


def test_label_smoothing_trains_toward_softer_targets_and_saves_as_plain_keras(tmp_path):
    import keras

    result = kmodels.run("toy_task", overrides={"train.epochs": 2, "compile.label_smoothing": 0.2},
                         out=tmp_path / "run")
    loss = load_model(result.run_dir / "model.keras").loss
    assert isinstance(loss, keras.losses.BinaryCrossentropy) and loss.label_smoothing == pytest.approx(0.2)
    y = np.array([[0.0], [1.0]])
    # Smoothing 0.2 moves the targets to 0.1/0.9: a perfect 0/1 prediction is no longer the minimum.
    assert float(loss(y, np.array([[0.1], [0.9]]))) < float(loss(y, np.array([[1e-6], [1 - 1e-6]])))
    with pytest.raises(kmodels.ConfigError, match="label_smoothing=0.7"):
        kmodels.load_spec("toy_task", {"compile.label_smoothing": 0.7})
    from kmodels.building import smoothed_loss

    with pytest.raises(kmodels.ConfigError, match="sparse labels cannot be smoothed"):
        smoothed_loss("sparse_categorical_crossentropy", 0.1)


@pytest.mark.parametrize("fmt", ["keras", "saved_model"])
def test_export_writes_a_format_that_predicts_like_the_run(toy_run, tmp_path, capsys, fmt):
    """keras: the network. saved_model of a table run: raw rows in (one input per column, the dropped `customer`
    not needed), the label and probabilities out, as `kmodels predict` gives them; saved_model of a bare
    .keras file: the network, features in."""
    import pandas as pd

    import kmodels
    from kmodels.cli import main

    out = tmp_path / ("model.keras" if fmt == "keras" else "model_savedmodel")
    assert main(["export", str(toy_run.run_dir), str(out), "--format", fmt]) == 0
    printed = capsys.readouterr().out
    assert f"exported {fmt} to {out}" in printed
    x = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")

    expected = load_model(toy_run.run_dir / "model.keras").predict(x, verbose=0)
    if fmt == "keras":
        got = load_model(out).predict(x, verbose=0)
    else:
        import tensorflow as tf

        assert "raw rows" in printed
        columns = [f"f{i}" for i in range(4)]
        loaded = tf.saved_model.load(str(out))
        answer = loaded.serve({c: tf.constant(x[:, i].astype("float64")) for i, c in enumerate(columns)})
        rows = pd.DataFrame(x, columns=columns).assign(customer="someone")
        want = kmodels.predict(toy_run.run_dir, rows)
        np.testing.assert_allclose(answer["probabilities"].numpy(), want[["probability_a", "probability_b"]], atol=1e-5)
        assert [v.decode() for v in answer["label"].numpy()] == want["label"].tolist()
        meta = json.loads((out / "assets" / "kmodels.json").read_text())  # what the output means travels with it
        assert meta["classes"] == ["a", "b"] and meta["positive_class"] == "b"
        assert meta["threshold"] == toy_run.metrics["threshold"] and meta["problem"] == "binary"
        assert [c["name"] for c in meta["input"]["columns"]] == columns  # the table's order
        network = tmp_path / "network_savedmodel"
        assert main(["export", str(toy_run.run_dir / "model.keras"), str(network), "--format", fmt]) == 0
        net = tf.saved_model.load(str(network))
        got = net.serve(tf.constant(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["export", str(toy_run.run_dir), str(out), "--format", fmt]) == 2  # never overwritten: a usage error
    assert "kmodels does not overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary left behind


def test_onnx_export_predicts_like_the_run_or_says_what_it_needs(toy_run, tmp_path, backend):
    """With the `onnx` extra, on either backend: a checked .onnx file, of the run (raw rows) and of its bare
    network (features). Otherwise a clear error, and nothing written."""
    import importlib.util

    from kmodels.task import export

    out = tmp_path / "model.onnx"
    needed = ("onnx", "onnxruntime") + (("tf2onnx",) if backend == "tensorflow" else ())
    if all(importlib.util.find_spec(m) for m in needed):
        result = export(toy_run.run_dir, out, "onnx")
        assert out.is_file() and result["max_abs_diff"] < 1e-5 and result["rows"] > 0
        network = export(toy_run.run_dir / "model.keras", tmp_path / "network.onnx", "onnx")
        assert network["max_abs_diff"] < 1e-4
        return
    with pytest.raises(RunError, match="pip install"):
        export(toy_run.run_dir, out, "onnx")
    assert list(tmp_path.iterdir()) == []


def test_artifacts_get_the_users_usual_file_mode(toy_run):
    """Not mkstemp's 0600: 0666 less the umask, like any file the user's other tools write."""
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    for name in ("metrics.json", "report.md", "model.keras", "history.csv"):
        assert stat.S_IMODE((toy_run.run_dir / name).stat().st_mode) == 0o666 & ~mask, name


def test_a_model_trained_with_ema_can_be_fitted_again():
    """After `fit` copied the average into the weights, a second `fit` (a fine-tuning phase) still runs: on JAX
    the weights and the optimizer's averages must not share buffers."""
    import keras

    from kmodels.callbacks import AveragedWeightsValidation

    x, y = np.ones((16, 3), "float32"), np.ones((16, 1), "float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05, use_ema=True, ema_momentum=0.8), "mse")
    for _ in range(2):
        history = model.fit(x, y, validation_data=(x, y), epochs=1, verbose=0, callbacks=[AveragedWeightsValidation()])
        assert np.isfinite(history.history["val_loss"]).all()


def test_after_training_each_split_is_predicted_once(tmp_path, monkeypatch):
    """Evaluation, the threshold, the plots and the importance reuse one prediction of each split; the
    permuted copies of permutation importance are predicted as themselves."""
    from kmodels.task.model_steps import ModelSteps

    seen, real = [], ModelSteps._predict

    def spy(self, model, x):
        seen.append((model, x))
        return real(self, model, x)

    monkeypatch.setattr(ModelSteps, "_predict", spy)
    result = kmodels.run("toy_task", overrides={"train.epochs": 2, "evaluate.threshold": "auto"},
                         out=tmp_path / "run")
    assert result.metrics["threshold_chosen_on"].startswith("validation")
    pairs = [(id(m), id(x)) for m, x in seen]
    assert len(pairs) == len(set(pairs)), "a split was predicted twice by the same model"
    assert len(seen) >= 3  # validation (threshold, plot) and test (metrics, plot) once each, and the baselines'


def test_callbacks_that_watch_validation_are_left_out_without_a_validation_split(tmp_path, caplog):
    """`[split] val = 0`: `early_stopping` (on `val_loss`) could never act and a best-only `model_checkpoint` would
    never write its file; both are left out with a warning naming them and the fix. A checkpoint of every epoch
    needs no validation figure and stays."""
    import warnings

    spec = tmp_path / "no_val.toml"
    spec.write_text('task = "tabular"\n[data]\nname = "bank_synthetic"\nrows = 300\n'
                    '[[preprocess]]\nname = "auto_features"\n[[preprocess]]\nname = "impute"\n'
                    '[[preprocess]]\nname = "standard_scale"\n[model]\nname = "mlp"\n'
                    '[split]\ntest = 0.2\nval = 0.0\n'
                    '[train]\nepochs = 3\nfolds = 1\nverbose = 0\n'
                    '[baselines]\nlinear = false\nsklearn_mlp = false\ngradient_boosting = false\n'
                    '[[callbacks]]\nname = "early_stopping"\npatience = 1\n'
                    '[[callbacks]]\nname = "model_checkpoint"\nfilepath = "best.keras"\nsave_best_only = true\n'
                    '[[callbacks]]\nname = "model_checkpoint"\nfilepath = "every.keras"\nsave_best_only = false\n')
    with caplog.at_level("WARNING", logger="kmodels"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = kmodels.run(spec, out=tmp_path / "run")
    left_out = [r.getMessage() for r in caplog.records if "no validation split" in r.getMessage()]
    assert len(left_out) == 2 and "'early_stopping' watches 'val_loss'" in left_out[0], left_out
    assert "'model_checkpoint' watches 'val_loss'" in left_out[1] and "--set split.val=0.1" in left_out[1]
    assert not [w for w in caught if "val_loss" in str(w.message)]  # Keras's per-epoch warnings never come
    assert result.metrics["epochs_run"] == 3
    assert (result.run_dir / "every.keras").is_file() and not (result.run_dir / "best.keras").exists()


@pytest.mark.parametrize("option,terminal,expected", [("auto", True, 1), ("auto", False, 2), (1, True, 1), (1, False, 2),
                                                      (2, True, 2), (0, False, 0)])
def test_a_progress_bar_becomes_a_line_per_epoch_when_the_output_is_not_a_terminal(monkeypatch, option, terminal,
                                                                                   expected):
    """`[train] verbose = "auto"` (the default) is Keras's progress bar: a log file would get its ANSI redraws."""
    import io
    import sys
    from types import SimpleNamespace

    from kmodels.task.model_steps import ModelSteps

    class Output(io.StringIO):
        def isatty(self) -> bool:
            return terminal

    steps = ModelSteps()
    steps.train_options = SimpleNamespace(verbose=option)
    monkeypatch.setattr(sys, "stdout", Output())
    assert steps.verbose == expected
