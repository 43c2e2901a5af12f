"""bank_gender end to end on small synthetic data (runs on the current backend)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from kmodels_tabular.bank_data import write_bank_csv

import kmodels
from kmodels.cli import main
from kmodels.task.inference import load_model

SMALL = {"data.rows": 6000, "train.epochs": 12, "train.verbose": 0, "baselines.sklearn_max_rows": 3000}


@pytest.fixture(scope="session")
def bank_run(tmp_path_factory):
    return kmodels.run("bank_gender", overrides=SMALL, out=tmp_path_factory.mktemp("bank") / "run")


@pytest.mark.slow
def test_bank_gender_end_to_end(bank_run):
    rd = bank_run.run_dir
    for name in ["eda.json", "eda.md", "eda_missing.png", "eda_target.png", "eda_feature_by_class.png",
                 "metrics.json", "model.keras", "confusion_matrix.png", "training_curves.png", "report.md"]:
        assert (rd / name).is_file(), name
    eda = json.loads((rd / "eda.json").read_text())
    assert eda["rows"] == 6000 and eda["duplicate_rows"] > 0
    assert eda["placeholders"]["CustomerDOB"]["count"] > 0
    assert eda["missing"]["CustGender"]["count"] > 0
    cleaning = bank_run.metrics["cleaning"]
    assert cleaning["removed_by_DropDuplicates"] > 0 and cleaning["removed_invalid_target"]
    assert cleaning["rows_out"] == sum(bank_run.metrics["splits"].values())
    models = bank_run.metrics["models"]
    assert set(models) == {"majority", "logistic_regression", "hist_gradient_boosting", "sklearn_mlp", "keras"}
    assert models["majority"]["balanced_accuracy"] == 0.5
    assert models["keras"]["balanced_accuracy"] > models["majority"]["balanced_accuracy"] + 0.03
    assert models["sklearn_mlp"]["trained_on_rows"] == 3000
    assert "| majority" in bank_run.markdown and {"majority", "sklearn_mlp", "keras"} <= set(bank_run.table.index)


@pytest.mark.slow
def test_split_is_by_customer(bank_run):
    spec = kmodels.load_spec(bank_run.run_dir / "spec.toml")
    task = kmodels.registry.tasks.get("bank_gender")(spec)
    data = task.prepare().data
    ids = {k: set(v.frame["CustomerID"]) for k, v in data.items()}
    assert not ids["train"] & ids["test"] and not ids["train"] & ids["val"] and not ids["val"] & ids["test"]


@pytest.mark.slow
def test_real_file_path_and_predict(bank_run, tmp_path, capsys):
    path = write_bank_csv(tmp_path / "bank_transactions.csv", rows=3000, seed=5)
    spec = kmodels.load_spec("bank_gender", data=path)
    assert spec["data"] == {"name": "bank_transactions", "path": str(path), "target": "CustGender", "classes": ["M", "F"]}
    real = kmodels.run("bank_gender", data=path, overrides={"train.epochs": 2, "train.verbose": 0},
                       out=tmp_path / "real_run")
    assert real.metrics["splits"]["test"] > 0 and (real.run_dir / "eda.json").is_file()
    assert json.loads((real.run_dir / "eda.json").read_text())["source"] == str(path)
    rows = tmp_path / "rows.csv"
    pd.read_csv(path, dtype=str).head(10).to_csv(rows, index=False)
    assert main(["predict", str(bank_run.run_dir), str(rows), "--output", str(tmp_path / "p.csv")]) == 0
    pred = pd.read_csv(tmp_path / "p.csv")
    assert len(pred) == 10 and set(pred["label"]) <= {"M", "F"} and pred["probability"].between(0, 1).all()


@pytest.mark.slow
def test_generic_csv_path_runs(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame({
        "row_id": [f"r{i}" for i in range(n)], "score": rng.normal(y, 1.0), "city": rng.choice(["a", "b", "c"], n),
        "signup": [f"{d}/{m}/2020" for d, m in zip(rng.integers(1, 28, n), rng.integers(1, 12, n), strict=True)],
        "churned": np.where(y == 1, "yes", "no"),
    })
    path = tmp_path / "churn.csv"
    frame.to_csv(path, index=False)
    result = kmodels.run("tabular", data=path, overrides={"data.target": "churned", "train.epochs": 20, "train.batch_size": 32,
                                                          "train.verbose": 0}, out=tmp_path / "run")
    assert result.metrics["classes"] == ["no", "yes"]
    assert result.metrics["models"]["keras"]["roc_auc"] > 0.7


@pytest.mark.slow
def test_cli_bad_data_file_is_usage_error_and_leaves_nothing(tmp_path, capsys):
    bad = tmp_path / "empty.csv"
    bad.write_bytes(b"")
    assert main(["run", "bank_gender", "--data", str(bad), "--set", "data.target=y", "--out", str(tmp_path / "r")]) == 2
    assert "is empty" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # rejected before a run directory was made


@pytest.mark.slow
def test_data_error_during_run_marks_run_failed(tmp_path, capsys):
    path = tmp_path / "one_class.csv"
    pd.DataFrame({"x": range(30), "y": ["a"] * 30}).to_csv(path, index=False)
    assert main(["run", "tabular", "--data", str(path), "--set", "data.target=y", "--out", str(tmp_path / "r")]) == 2
    assert "has only one class" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # a data error found before training leaves no run directory


def test_clean_carries_the_eda_group_codes_and_recomputes_them_when_rows_are_unknown():
    task = kmodels.registry.tasks.get("bank_gender")(kmodels.load_spec("bank_gender", {"data.rows": 3000}))
    cleaning, _ = task.preprocess_steps()

    def same_groups(t):  # rows share a code exactly when they share a CustomerID
        return np.array_equal(pd.factorize(t.group_codes())[0], pd.factorize(t.frame["CustomerID"])[0])

    table = task.load_data()
    table.group_codes()  # what the EDA computes
    carried, report = task.clean(table, cleaning)
    assert report["rows_out"] == len(carried.frame)
    assert len(carried.frame) < len(table.frame)  # duplicates and invalid genders went
    assert carried._codes is not None and carried._codes[0] is carried.frame  # carried, not recomputed
    assert same_groups(carried)

    class NoMask:  # a row filter without keep_mask: positions unknown, codes computed afresh
        drops_rows = True

        def fit(self, x):
            return self

        def transform(self, x):
            return x.iloc[::-1][x["CustomerDOB"].notna()[::-1]].reset_index(drop=True)

    recomputed, _ = task.clean(table, [NoMask()])
    assert recomputed._codes is None and same_groups(recomputed)


def test_sklearn_mlp_stops_early_only_where_its_holdout_is_large_enough():
    from kmodels_tabular.task import MLP_EARLY_STOPPING_ROWS, BaselineOptions, _sklearn_models

    from kmodels.problems import Problem

    problem = Problem.from_num_classes(3)
    small = _sklearn_models(problem, BaselineOptions(), seed=0, rows=MLP_EARLY_STOPPING_ROWS - 1)["sklearn_mlp"]
    large = _sklearn_models(problem, BaselineOptions(), seed=0, rows=MLP_EARLY_STOPPING_ROWS)["sklearn_mlp"]
    assert not small.early_stopping and large.early_stopping
    # On 124 wine rows, a 10% hold-out (13 rows) stopped the MLP by chance; trained to convergence it is a real baseline.
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    x, y = load_wine(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    x = StandardScaler().fit_transform(x[order])
    y = y[order]
    small.fit(x[:124], y[:124])
    assert small.score(x[124:], y[124:]) > 0.9


def test_bank_gender_exports_as_raw_transaction_rows(bank_run, tmp_path):
    """The reference run's SavedModel takes the bank file's own columns (day-first dates with two-digit years
    read against each row's transaction date, amounts, the city as text) and answers as `kmodels predict`."""
    import tensorflow as tf
    from kmodels_tabular.bank_data import generate_bank_frame

    from kmodels import graph

    out = tmp_path / "bank_export"
    result = kmodels.export(bank_run.run_dir, out, "saved_model")
    columns = {c["name"]: c["dtype"] for c in result["metadata"]["input"]["columns"]}
    assert columns["CustomerDOB"] == "string" and columns["TransactionAmount (INR)"] == "float64"
    rows = generate_bank_frame(80, seed=99)
    kinds = {c: graph.NUMBER if d == "float64" else graph.STRING for c, d in columns.items()}
    loaded = tf.saved_model.load(str(out))
    got = loaded.serve({k: tf.constant(v.astype(str) if v.dtype == object else v)
                        for k, v in graph.raw_inputs(rows, kinds).items()})
    want = kmodels.predict(bank_run.run_dir, rows, allow_missing=True)
    np.testing.assert_allclose(got["probabilities"].numpy(), want.filter(like="probability_").to_numpy(), atol=1e-5)
    assert [v.decode() for v in got["label"].numpy()] == want["label"].astype(str).tolist()


@pytest.mark.parametrize("target", ["target", "label", "radius"])
def test_folds_bag_models_trained_on_folds_into_one_averaging_model(target, tmp_path):
    """`[train] folds = 3`: three members, each stopped on its own fold, saved as one plain Keras model whose
    output is the mean of theirs; predict works on it, the raw-rows export on a binary and a regression one; what
    bagging cannot do is refused before the run exists."""
    import keras
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).frame
    if target == "label":  # multiclass
        data["label"] = pd.cut(data["mean radius"], 3, labels=["small", "mid", "large"]).astype(str)
        data = data.drop(columns=["target", "mean radius"])
    if target == "radius":  # regression: unstratified folds, averaged values
        data = data.rename(columns={"mean radius": "radius"}).drop(columns=["target"])
    result = kmodels.run("tabular", data=data, out=tmp_path / "run", overrides={
        "data.target": target, "train.folds": 3, "train.epochs": 8, "train.verbose": 0,
        "baselines.sklearn_mlp": False, "baselines.gradient_boosting": False})
    assert not (tmp_path / "run" / "backup").exists()
    model = load_model(tmp_path / "run" / "model.keras")
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert [m.name for m in members] == ["fold_0", "fold_1", "fold_2"]
    x = np.random.default_rng(0).normal(size=(5, model.input_shape[1])).astype("float32")
    want = np.mean([m.predict(x, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(members[0].predict(x, verbose=0), members[1].predict(x, verbose=0))  # they differ
    metric = {"target": "roc_auc", "label": "accuracy", "radius": "r2"}[target]
    assert result.metrics["models"]["keras"][metric] > 0.8
    rows = data.drop(columns=target).head(7)
    assert len(kmodels.predict(tmp_path / "run", rows)) == 7
    if target != "label":  # the averaging model exports alike for every kind; regression's members rescale apart
        assert kmodels.export(tmp_path / "run", tmp_path / "export", "saved_model")["max_abs_diff"] <= 1e-5
    if target != "radius":
        with pytest.raises(kmodels.ConfigError, match=r"folds=3 trains on the validation split"):
            kmodels.run("tabular", data=data, out=tmp_path / "refused", overrides={
                "data.target": target, "train.folds": 3, "evaluate.calibrate": True})
        assert not (tmp_path / "refused").exists()
    with pytest.raises(kmodels.ConfigError, match=r"folds=1000"):
        kmodels.load_spec("tabular", {"train.folds": 1000})


@pytest.mark.parametrize("model", ["mlp", "plain", "tabm"])
def test_folds_train_on_one_model_and_give_the_members_separate_models_give(model, tmp_path, monkeypatch):
    """Bagging trains every fold on the first fold's model (its compiled steps made once), each from the weights, bin
    edges and optimizer state a model of its own would start from: the saved members predict what separately
    trained ones do. A model of plain Keras layers only (no dropout, no bins: nothing `finish_model` swaps) is its own
    finished member, so a second model trains the later folds; TabM's member is its averaging model, copied."""
    from sklearn.datasets import load_breast_cancer

    from kmodels.task import training

    data = load_breast_cancer(as_frame=True).frame.head(200)
    quick = {"data.target": "target", "train.folds": 3, "train.epochs": 3, "train.verbose": 0,
             "compile.schedule": "cosine", **{
                 "mlp": {"model.piecewise_bins": 4, "model.dropout": 0.1},
                 "plain": {"model.piecewise_bins": 0, "model.dropout": 0.0},
                 "tabm": {"model.name": "tabm", "model.members": 4, "model.units": [16]}}[model],
             "baselines.sklearn_mlp": False, "baselines.gradient_boosting": False, "baselines.linear": False,
             "evaluate.importance_repeats": 0}
    trained = []
    real_train = kmodels.registry.tasks.get("tabular").train
    monkeypatch.setattr(kmodels.registry.tasks.get("tabular"), "train",
                        lambda task, model, prepared: trained.append(model) or real_train(task, model, prepared))
    kmodels.run("tabular", data=data, out=tmp_path / "reused", overrides=quick)
    assert len({id(m) for m in trained}) == (2 if model == "plain" else 1)
    monkeypatch.setattr(training, "_same_program", lambda a, b: False)
    kmodels.run("tabular", data=data, out=tmp_path / "separate", overrides=quick)
    assert len({id(m) for m in trained[3:]}) == 3
    x = np.random.default_rng(0).normal(size=(9, 30)).astype("float32")
    reused, separate = (load_model(tmp_path / name / "model.keras") for name in ("reused", "separate"))
    for a, b in zip(reused.layers[1:-1], separate.layers[1:-1], strict=True):
        np.testing.assert_allclose(a.predict(x, verbose=0), b.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_same_program_tells_apart_what_changes_the_compiled_steps():
    """`_same_program`: two builds of one spec compute the same function of their variables; other layer sizes, a
    regression's target scale fitted to other rows, or another constant in a layer, do not."""
    import keras

    from kmodels.task.model_steps import _rescaled
    from kmodels.task.training import _same_program

    def build(**kw):
        return kmodels.build("mlp", input_shape=(6,), units=(8,), piecewise_bins=3, dropout=0.1, **kw)

    assert _same_program(build(), build())
    assert not _same_program(build(), kmodels.build("mlp", input_shape=(6,), units=(9,), piecewise_bins=3, dropout=0.1))
    y = np.arange(10.0)
    net = build(num_classes=1)
    assert _same_program(_rescaled(net, y), _rescaled(build(num_classes=1), y))
    assert not _same_program(_rescaled(net, y), _rescaled(build(num_classes=1), y + 1))

    def normalized(mean):  # a constant tensor in a layer, not a variable
        inputs = keras.Input((2,))
        return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Normalization(mean=mean, variance=[1, 1])(inputs)))

    assert _same_program(normalized([0.0, 1.0]), normalized([0.0, 1.0]))
    assert not _same_program(normalized([0.0, 1.0]), normalized([0.0, 2.0]))

    class Shifted(keras.layers.Layer):  # another package's layer, its constant inside an object of its own
        def __init__(self, shift, **kwargs):
            super().__init__(**kwargs)
            self.state = SimpleNamespace(shift=shift)

        def call(self, x):
            return x + self.state.shift

    def shifted(shift):
        inputs = keras.Input((2,))
        return keras.Model(inputs, keras.layers.Dense(1)(Shifted(shift)(inputs)))

    assert Shifted.__module__.split(".")[0] not in ("keras", "kmodels")
    assert not _same_program(shifted(0.0), shifted(0.0))  # even the same constant: never read, so never trusted
    assert not _same_program(shifted(0.0), shifted(5.0))


def test_folds_auto_bags_small_tables_only_and_spec_toml_records_the_number(tmp_path, caplog):
    """`[train] folds = "auto"`: five bagged models on a small table, one where the validation split is fitted on
    (threshold "auto") or the table is large; the run's spec.toml holds the number it used."""
    import keras
    from sklearn.datasets import load_breast_cancer

    from kmodels.options import AUTO_BAG_ROWS, AUTO_FOLDS

    data = load_breast_cancer(as_frame=True).frame.head(300)
    quick = {"data.target": "target", "train.folds": "auto", "train.epochs": 2, "train.verbose": 0,
             "baselines.sklearn_mlp": False, "baselines.gradient_boosting": False, "baselines.linear": False,
             "evaluate.importance_repeats": 0}
    with caplog.at_level("INFO", logger="kmodels"):
        kmodels.run("tabular", data=data, out=tmp_path / "small", overrides=quick)
    assert f'folds = "auto": {AUTO_FOLDS} (300 rows <= {AUTO_BAG_ROWS}' in caplog.text
    assert kmodels.load_spec(tmp_path / "small" / "spec.toml")["train"]["folds"] == AUTO_FOLDS
    model = load_model(tmp_path / "small" / "model.keras")
    assert sum(isinstance(layer, keras.Model) for layer in model.layers) == AUTO_FOLDS
    kmodels.run("tabular", data=data, out=tmp_path / "threshold", overrides={**quick, "evaluate.threshold": "auto"})
    assert kmodels.load_spec(tmp_path / "threshold" / "spec.toml")["train"]["folds"] == 1
    big = SimpleNamespace(frame=pd.concat([data] * (AUTO_BAG_ROWS // len(data) + 1), ignore_index=True))
    task = kmodels.registry.tasks.get("tabular")(kmodels.load_spec("tabular", {"train.folds": "auto"}))
    task.resolve_auto(big, None)  # the rule reads the table's size only
    assert task.train_options.folds == 1 and task.spec["train"]["folds"] == 1
    with pytest.raises(kmodels.ConfigError, match=r"'folds': received 'many'.*int \| 'auto'"):
        kmodels.load_spec("tabular", {"train.folds": "many"})


def test_bins_auto_encodes_large_tables_only_and_spec_toml_records_the_number(tmp_path, caplog):
    """`[model] piecewise_bins = "auto"` (the tabular default): piecewise-linear bins on a table of at least AUTO_BINS_ROWS rows,
    none on a smaller one; the run's spec.toml holds the number, and outside a task "auto" is refused with the fix."""
    from kmodels_tabular.models import AUTO_BINS, AUTO_BINS_ROWS
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).frame.head(300)
    quick = {"data.target": "target", "train.folds": 1, "train.epochs": 2, "train.verbose": 0,
             "baselines.sklearn_mlp": False, "baselines.gradient_boosting": False, "baselines.linear": False,
             "evaluate.importance_repeats": 0}
    assert kmodels.load_spec("tabular")["model"]["piecewise_bins"] == "auto"
    with caplog.at_level("INFO", logger="kmodels"):
        kmodels.run("tabular", data=data, out=tmp_path / "small", overrides=quick)
    assert f'piecewise_bins = "auto": 0 (300 rows < {AUTO_BINS_ROWS})' in caplog.text
    assert kmodels.load_spec(tmp_path / "small" / "spec.toml")["model"]["piecewise_bins"] == 0
    big = SimpleNamespace(frame=pd.concat([data] * (AUTO_BINS_ROWS // len(data) + 1), ignore_index=True))
    task = kmodels.registry.tasks.get("tabular")(kmodels.load_spec("tabular", {"train.folds": 1}))
    task.resolve_auto(big, None)  # the rule reads the table's size only
    assert task.spec["model"]["piecewise_bins"] == AUTO_BINS
    with pytest.raises(ValueError, match=r"piecewise_bins='auto'.*Outside a task pass a number"):
        kmodels.build("mlp", piecewise_bins="auto")
    with pytest.raises(kmodels.ConfigError, match=r"'piecewise_bins'"):
        kmodels.load_spec("tabular", {"model.piecewise_bins": "many"})


def test_baselines_are_weighted_as_the_net_unless_told_otherwise(tmp_path, caplog):
    """With `[train] class_weight = "balanced"` (the tabular default) the scikit-learn baselines see the same row
    weights as the Keras net, so the comparison is like for like; `[baselines] weighted = false` trains them
    unweighted. On a table with 10% positives the weighted logistic regression finds the rare class far more often."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 3))
    data = pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=(x[:, 0] + 0.8 * rng.normal(size=1200) > 1.6).astype(int))
    assert 0.05 < data["y"].mean() < 0.15
    quick = {"data.target": "y", "train.folds": 1, "train.epochs": 1, "train.verbose": 0,
             "baselines.sklearn_mlp": False, "baselines.gradient_boosting": False, "evaluate.importance_repeats": 0}
    assert kmodels.load_spec("tabular")["train"]["class_weight"] == "balanced"
    with caplog.at_level("INFO", logger="kmodels"):
        weighted = kmodels.run("tabular", data=data, out=tmp_path / "weighted", overrides=quick)
    assert "baselines: rows weighted by [train] class_weight" in caplog.text
    unweighted = kmodels.run("tabular", data=data, out=tmp_path / "unweighted",
                             overrides={**quick, "baselines.weighted": False})
    w, u = (r.metrics["models"]["logistic_regression"] for r in (weighted, unweighted))
    assert w["recall"] > u["recall"] + 0.2 and w["balanced_accuracy"] > u["balanced_accuracy"] + 0.05
    assert abs(w["roc_auc"] - u["roc_auc"]) < 0.02  # the ranking hardly moves; the decisions do
    caplog.clear()
    with caplog.at_level("INFO", logger="kmodels"):
        plain = kmodels.run("tabular", data=data, out=tmp_path / "plain", overrides={**quick, "train.class_weight": "none"})
    assert "baselines: rows weighted" not in caplog.text
    assert plain.metrics["models"]["logistic_regression"]["recall"] == pytest.approx(u["recall"])


@pytest.mark.parametrize("kind,classes", [("multiclass", 60), ("multilabel", 60), ("multiclass", 50), ("binary", 2)])
def test_gradient_boosting_baseline_is_left_out_past_its_output_cap(kind, classes, caplog):
    """One tree per class and iteration (a model per label): past `gradient_boosting_max_outputs` (50) the baseline
    is left out with a log line that gives the override; up to it, and for binary problems, it trains."""
    import logging

    from kmodels_tabular.task import BaselineOptions, _sklearn_models

    from kmodels.api import ConfigError, Problem

    problem = Problem(kind, tuple(f"c{i}" for i in range(classes)), "test")
    with caplog.at_level(logging.INFO, logger="kmodels"):
        names = set(_sklearn_models(problem, BaselineOptions(), seed=0, rows=100))
    left_out = problem.output_width > 50
    assert ("hist_gradient_boosting" not in names) == left_out and {"logistic_regression", "sklearn_mlp"} <= names
    assert (f"--set baselines.gradient_boosting_max_outputs={classes}" in caplog.text) == left_out
    with pytest.raises(ConfigError, match="gradient_boosting_max_outputs=0"):
        kmodels.load_spec("tabular", {"baselines.gradient_boosting_max_outputs": 0})
