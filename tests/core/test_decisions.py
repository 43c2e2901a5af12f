"""Binary decision thresholds, temperature scaling and the binary diagnostics plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kmodels
from kmodels.errors import ConfigError
from kmodels.evaluation import THRESHOLD_GRID, choose_threshold, fit_temperature, threshold_curve
from kmodels.task.inference import load_model


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory):
    """A toy run that chooses its threshold on validation accuracy and calibrates its probabilities."""
    return kmodels.run("toy_task", overrides={"evaluate.threshold": "auto", "evaluate.threshold_metric": "accuracy",
                                              "evaluate.calibrate": True, "train.epochs": 4},
                       out=tmp_path_factory.mktemp("auto") / "run")


def test_auto_threshold_is_chosen_on_validation_saved_and_used_by_predict_and_evaluate(auto_run):
    m = auto_run.metrics
    assert m["threshold_chosen_on"] == "validation accuracy" and m["threshold"] in THRESHOLD_GRID
    assert m["models"]["keras"]["threshold"] == m["threshold"]
    rows = kmodels.registry.datasets.get("toy_blobs")(rows=40, seed=5).frame.drop(columns=["label"])
    pred = kmodels.predict(auto_run.run_dir, rows)
    np.testing.assert_array_equal(pred["label"] == "b", pred["probability_b"] >= m["threshold"])
    assert kmodels.evaluate(auto_run.run_dir)["accuracy"] == m["models"]["keras"]["accuracy"]
    assert (auto_run.run_dir / "binary_diagnostics.png").stat().st_size > 10_000
    assert "binary_diagnostics.png" in (auto_run.run_dir / "report.md").read_text()


def test_calibration_folds_a_temperature_into_a_plain_keras_model(auto_run):
    temperature = auto_run.metrics["temperature"]
    assert isinstance(temperature, float) and 0.05 <= temperature <= 20
    assert json.loads((auto_run.run_dir / "trained.json").read_text())["temperature"] == temperature
    model = load_model(auto_run.run_dir / "model.keras")
    assert model.layers[-1].activation.__name__ == "sigmoid"  # still one plain Dense head


def test_a_fixed_threshold_is_the_specs_and_binary_runs_always_get_the_diagnostics(toy_run):
    assert toy_run.metrics["threshold"] == 0.5 and toy_run.metrics["threshold_chosen_on"] == "spec"
    assert (toy_run.run_dir / "binary_diagnostics.png").is_file()


def test_choose_threshold_maximises_the_metric_and_prefers_the_middle():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.2).astype(int)  # imbalanced: 20% positive
    p = np.clip(0.35 + 0.3 * y + rng.normal(0, 0.1, 400), 0, 1)  # a model that over-predicts the positive class
    t = choose_threshold(y, p, "accuracy")
    curve = threshold_curve(y, p, "accuracy")
    assert curve[list(THRESHOLD_GRID).index(t)] == curve.max() > curve[list(THRESHOLD_GRID).index(0.5)] - 1e-12
    assert choose_threshold(np.zeros(10), rng.random(10)) == 0.5  # one class: nothing to choose from
    with pytest.raises(ValueError, match="Expected one of accuracy, balanced_accuracy, f1"):
        threshold_curve(y, p, "roc_auc")


@settings(deadline=None)
@given(labels=st.lists(st.integers(0, 1), min_size=1, max_size=60), data=st.data(),
       metric=st.sampled_from(["accuracy", "balanced_accuracy", "f1"]))
def test_threshold_curve_equals_scikit_learn_at_every_threshold(labels, data, metric):
    """The sorted-counts curve is scikit-learn's metric of `proba >= t` at each of the 99 thresholds: one class
    or both, ties, probabilities on the grid itself (the `>=` side) and at 0 and 1."""
    import warnings

    from sklearn import metrics as skm

    y = np.array(labels)
    grid_or_any = st.one_of(st.sampled_from([0.0, 1.0, 0.5, 0.01, 0.99, 0.37]), st.floats(0, 1))
    p = np.array(data.draw(st.lists(grid_or_any, min_size=len(y), max_size=len(y))))
    score = {"accuracy": skm.accuracy_score, "balanced_accuracy": skm.balanced_accuracy_score,
             "f1": lambda a, b: skm.f1_score(a, b, zero_division=0)}[metric]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # balanced accuracy with one class in y warns
        expected = [score(y, (p >= t).astype(int)) for t in THRESHOLD_GRID]
    np.testing.assert_allclose(threshold_curve(y, p, metric), expected, atol=1e-12)


@pytest.mark.parametrize("factor,expect", [(3.0, "softer"), (0.3, "sharper")])
def test_fit_temperature_undoes_a_known_distortion(factor, expect):
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, 5000)
    y = (rng.random(5000) < 1 / (1 + np.exp(-logits))).astype(int)  # calibrated at T = 1
    distorted = 1 / (1 + np.exp(-logits * factor))  # over- (3x) or under-confident (0.3x)
    t = fit_temperature(y, distorted)
    assert t == pytest.approx(factor, rel=0.15)
    assert (t > 1) == (expect == "softer")


@pytest.mark.parametrize("key,value,match", [("evaluate.threshold", 1.5, "strictly between 0 and 1"),
                                             ("evaluate.threshold", "maybe", "Wrong type"),
                                             ("evaluate.threshold_metric", "roc_auc", "Wrong type")])
def test_bad_threshold_settings_are_refused(key, value, match):
    with pytest.raises(ConfigError, match=match):
        kmodels.load_spec("toy_task", {key: value})


def test_calibrating_a_regression_is_refused_before_the_run_exists(tmp_path):
    from sklearn.datasets import load_diabetes

    csv = tmp_path / "d.csv"
    load_diabetes(as_frame=True).frame.to_csv(csv, index=False)
    with pytest.raises(ConfigError, match="calibrate = true is for binary and multiclass problems; this run is regression"):
        kmodels.run("tabular", data=csv, overrides={"data.target": "target", "evaluate.calibrate": True},
                    out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_permutation_importance_is_in_the_run_and_explain_reproduces_it(toy_run, tmp_path, capsys):
    from kmodels.cli import main

    importance = toy_run.metrics["importance"]
    assert importance["metric"] == "roc_auc" and set(importance["features"]) == {"f0", "f1", "f2", "f3"}
    assert "customer" not in importance["features"]  # the group column is not a feature
    assert (toy_run.run_dir / "permutation_importance.png").is_file()
    plot = tmp_path / "importance.png"
    assert main(["explain", str(toy_run.run_dir), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "column,roc_auc_drop,std" and [line.split(",")[0] for line in out[1:]] == list(importance["features"])
    assert plot.stat().st_size > 5_000
    assert main(["explain", str(toy_run.run_dir), "--plot", str(plot)]) == 2  # never overwritten
    labelled = tmp_path / "labelled.csv"
    kmodels.registry.datasets.get("toy_blobs")(rows=120, seed=9).frame.to_csv(labelled, index=False)
    frame = kmodels.explain(toy_run.run_dir, labelled)
    assert set(frame["column"]) == {"f0", "f1", "f2", "f3"} and frame["roc_auc_drop"].iloc[0] > 0
    unlabelled = tmp_path / "unlabelled.csv"
    kmodels.registry.datasets.get("toy_blobs")(rows=20).frame.drop(columns=["label"]).to_csv(unlabelled, index=False)
    assert main(["explain", str(toy_run.run_dir), str(unlabelled)]) == 2
    assert "no target column 'label'" in capsys.readouterr().err


def test_permutation_importance_predicts_the_shuffled_copies_in_batches(monkeypatch):
    """Stacked copies, one call per `batch_rows` (and `BATCH_CELLS`): the same figures as one call per copy, each
    column shuffled with its dtype (categories too) while the others stay as they were."""
    import pandas as pd

    from kmodels.evaluation import permutation_importances

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"signal": rng.normal(size=60), "colour": pd.Categorical(rng.choice(["red", "blue"], 60)),
                          "noise": rng.normal(size=60)}, index=np.arange(60) + 500)
    y = (frame["signal"] + (frame["colour"] == "red") > 0.5).to_numpy()
    calls = []

    def predict_output(rows):
        calls.append(len(rows))
        assert rows["colour"].dtype == "category" and len(rows) % 60 == 0
        return (rows["signal"] + (rows["colour"] == "red")).to_numpy()

    def accuracy(labels, output):
        return float(np.mean((output > 0.5) == labels))

    batched = permutation_importances(predict_output, frame, y, accuracy, repeats=4, seed=3)
    assert calls == [60, 60 * 12]  # the unshuffled rows, then 3 columns x 4 shuffles in one call
    calls.clear()
    single = permutation_importances(predict_output, frame, y, accuracy, repeats=4, seed=3, batch_rows=60)
    assert calls == [60] * 13 and single == batched
    assert list(batched["features"]) == ["signal", "colour", "noise"] and batched["baseline"] == 1.0
    assert batched["features"]["noise"] == {"mean": 0.0, "std": 0.0} and batched["features"]["colour"]["mean"] > 0
    with pytest.raises(ValueError, match="must keep every row"):
        permutation_importances(lambda rows: np.zeros(3), frame, y, accuracy)
    calls.clear()  # a wide table: `BATCH_CELLS` bounds a call's cells too (3 columns x 120 rows = 2 copies)
    monkeypatch.setattr("kmodels.evaluation.importance.BATCH_CELLS", 3 * 120)
    capped = permutation_importances(predict_output, frame, y, accuracy, repeats=4, seed=3)
    assert calls == [60] + [120] * 6 and capped == batched


def test_importance_can_be_turned_off():
    spec = kmodels.load_spec("toy_task", {"evaluate.importance_repeats": 0})
    assert spec.options("evaluate").importance_repeats == 0
    with pytest.raises(ConfigError, match="importance_repeats=-1"):
        kmodels.load_spec("toy_task", {"evaluate.importance_repeats": -1})


def test_importance_scores_fewer_rows_on_wide_tables():
    """Its cost grows with rows x repeats x columns**2, so "auto" keeps it within a budget, never below 200 rows."""
    from kmodels.evaluation import importance_rows
    from kmodels.evaluation.importance import CELL_BUDGET, MIN_ROWS

    assert importance_rows(15, 5) == importance_rows(40, 5) == 5000 and importance_rows(15, 5, max_rows=900) == 900
    widths = [60, 80, 120, 200, 400, 2000]
    rows = [importance_rows(columns, 5) for columns in widths]
    assert rows == sorted(rows, reverse=True) and rows[0] < 5000 and rows[-1] == MIN_ROWS
    for columns, n in zip(widths, rows, strict=True):
        assert n == MIN_ROWS or n * 5 * columns**2 <= CELL_BUDGET
    assert importance_rows(300, 1) > importance_rows(300, 5)


def test_importance_rows_from_the_spec(toy_run, tmp_path, caplog):
    """`[evaluate] importance_rows` caps the test rows the importance scores on, and the log says so."""
    import logging

    with pytest.raises(ConfigError, match="importance_rows=0"):
        kmodels.load_spec("toy_task", {"evaluate.importance_rows": 0})
    tested = toy_run.metrics["splits"]["test"]
    assert toy_run.metrics["importance"]["rows"] == tested > 9  # "auto": every test row of 4 columns
    with caplog.at_level(logging.INFO, logger="kmodels"):
        run = kmodels.run("toy_task", overrides={"train.epochs": 1, "evaluate.importance_rows": 9,
                                                 "evaluate.importance_repeats": 2}, out=tmp_path / "run")
    assert run.metrics["importance"]["rows"] == 9 and run.metrics["importance"]["repeats"] == 2
    assert f"permutation importance: 9 of {tested} rows, 4 columns x 2 repeats (the spec's" in caplog.text
