"""Problem types: inference from the target, labels, scores, heads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kmodels
from kmodels.errors import ConfigError, DataError
from kmodels.problems import MAX_CLASSES, Problem, infer_problem, output_head


@pytest.mark.parametrize("values,kind,classes", [
    (["M", "F", "F", None], "binary", ("F", "M")),
    ([0, 1, 1, 0], "binary", (0, 1)),
    (["adelie", "gentoo", "chinstrap"] * 3, "multiclass", ("adelie", "chinstrap", "gentoo")),
    ([2, 10, 1, 2, 10], "multiclass", (1, 2, 10)),  # whole numbers sort as numbers, not text
    ([True, False, True], "binary", (False, True)),
    (list(np.linspace(0, 1, 40)), "regression", ()),
    (list(range(30)), "regression", ()),  # more than 20 distinct whole numbers
])
def test_inference_from_the_target(values, kind, classes):
    problem = infer_problem(pd.Series(values), column="y")
    assert problem.kind == kind and problem.classes == classes and problem.reason


def test_categorical_targets_and_explicit_choices():
    cat = pd.Series(["b", "a", "c", "a"], dtype="category")
    assert infer_problem(cat).classes == ("a", "b", "c")
    assert infer_problem(pd.Series([1, 2, 3, 1]), problem="regression").kind == "regression"
    two = infer_problem(pd.Series(["x", "y", "z"]), classes=["z", "x"])
    assert two.kind == "binary" and two.classes == ("z", "x")  # named order: negative first
    assert infer_problem(pd.Series(["x", "y"]), problem="multiclass").kind == "binary"


@pytest.mark.parametrize("values,problem,match", [
    (["a"] * 5, "auto", "only one class"),
    ([None, np.nan], "auto", "no values"),
    (["low", "high", "3"], "regression", "holds text"),
    ([f"id{i}" for i in range(MAX_CLASSES + 1)], "auto", "looks like an identifier"),
    (["a", "b", "c"], "binary", "3 classes"),
    ([5.0] * 4, "regression", "one value"),
])
def test_targets_nothing_can_be_learned_from_are_data_errors(values, problem, match):
    with pytest.raises(DataError, match=match) as info:
        infer_problem(pd.Series(values), problem=problem, column="label", source="f.csv")
    assert "f.csv" in str(info.value) and "'label'" in str(info.value)


def test_unknown_problem_and_missing_class_are_errors():
    with pytest.raises(ConfigError, match="Expected 'auto'"):
        infer_problem(pd.Series([1, 2]), problem="ranking")
    with pytest.raises(DataError, match=r"data.classes names \['q'\]"):
        infer_problem(pd.Series(["a", "b"]), classes=["a", "q"])


def test_encode_decode_and_score_each_kind():
    binary = Problem("binary", ("M", "F"))
    assert binary.encode(pd.Series(["F", "M"])).tolist() == [1, 0]
    assert binary.decode(np.array([[0.2], [0.7]]), threshold=0.6).tolist() == [0, 1]
    assert binary.score(np.array([0, 1]), np.array([[0.2], [0.7]]))["accuracy"] == 1.0
    multi = Problem("multiclass", ("a", "b", "c"))
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.2, 0.5, 0.3]])
    assert multi.decode(proba).tolist() == [0, 2, 1]
    m = multi.score(np.array([0, 2, 2]), proba)
    assert m["accuracy"] == pytest.approx(2 / 3) and m["confusion_matrix"] == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]
    assert m["roc_auc"] is None  # class b is absent from the truth: OvR AUC undefined, not a crash
    reg = Problem("regression")
    r = reg.score(np.array([1.0, 2.0, 3.0]), np.array([[1.0], [2.0], [3.5]]))
    assert r["mae"] == pytest.approx(0.5 / 3) and r["r2"] == pytest.approx(1 - 0.25 / 2)
    assert reg.score(np.array([1.0, 2.0]), np.array([np.nan, 1.0]))["non_finite_predictions"] == 1


@given(seed=st.integers(0, 2**16), n=st.integers(1, 40), threshold=st.floats(0.05, 0.95))
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "regression"])
def test_primary_score_is_the_primary_metric_of_score(kind, seed, n, threshold):
    """What permutation importance computes per shuffled copy is what `score` reports, for every kind."""
    rng = np.random.default_rng(seed)
    problem = {"binary": Problem("binary", ("a", "b")), "multiclass": Problem("multiclass", ("a", "b", "c")),
               "multilabel": Problem("multilabel", ("a", "b", "c")), "regression": Problem("regression")}[kind]
    if kind == "binary":
        y, out = rng.integers(0, 2, n), rng.random((n, 1))
    elif kind == "multiclass":
        y, out = rng.integers(0, 3, n), rng.dirichlet(np.ones(3), n)
    elif kind == "multilabel":
        y, out = rng.integers(0, 2, (n, 3)), rng.random((n, 3))
    else:
        y, out = rng.normal(size=n), rng.normal(size=(n, 1))
    want = problem.score(y, out, threshold).get(problem.primary)
    got = problem.primary_score(y, out, threshold)
    assert (got is None and want is None) or got == pytest.approx(want, nan_ok=True)


def test_problem_json_round_trip_and_num_classes():
    for p in (Problem("binary", ("M", "F")), Problem("multiclass", (1, 2, 3)), Problem("regression")):
        assert Problem.from_json(p.to_json()) == Problem(p.kind, p.classes, p.reason)
    assert [Problem.from_num_classes(n).kind for n in (1, 2, 7)] == ["regression", "binary", "multiclass"]
    with pytest.raises(ConfigError):
        Problem.from_num_classes(0)
    with pytest.raises(ConfigError, match="needs 3-"):
        Problem("multiclass", ("a", "b"))


@given(st.lists(st.sampled_from(["x", "y", "z", "w"]), min_size=2, max_size=40))
def test_encode_matches_class_order(labels):
    series = pd.Series(labels)
    if series.nunique() < 2:
        return
    problem = infer_problem(series)
    codes = problem.encode(series)
    assert [problem.classes[c] for c in codes] == labels


@pytest.mark.parametrize("num_classes,shape", [(1, (None, 1)), (2, (None, 1)), (4, (None, 4))])
def test_output_head(num_classes, shape):
    import keras

    inputs = keras.Input((3,))
    model = keras.Model(inputs, output_head(inputs, num_classes))
    assert model.output_shape == shape
    with pytest.raises(ValueError, match="num_classes=0"):
        output_head(inputs, 0)


def test_build_compiles_for_the_problem_its_num_classes_sets():
    assert kmodels.build("toy_mlp", num_classes=10).loss == "sparse_categorical_crossentropy"
    assert kmodels.build("toy_mlp", num_classes=1).loss == "mean_squared_error"
    assert kmodels.build("toy_mlp").loss == "binary_crossentropy"


def test_verdict_says_plainly_when_a_model_learned_nothing():
    """Random scores on random labels: within the noise of the majority baseline, and the report says so."""
    from kmodels.evaluation import bootstrap_se, verdict

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    problem = Problem("binary", ("a", "b"), "test")
    noise = problem.score(y, rng.uniform(size=(300, 1)))
    signal = problem.score(y, np.clip(y * 0.4 + rng.uniform(0, 0.6, 300), 0, 1)[:, None])
    majority = problem.score(y, np.zeros((300, 1)))
    assert 0.01 < noise["primary_se"] < 0.06  # about sqrt(AUC(1-AUC)/n) for a 300-row test split
    assert bootstrap_se("binary", y[:1], np.array([0.5])) is None  # one row: no spread to measure
    lines = verdict({"majority": majority, "keras": noise, "logistic_regression": signal}, "roc_auc")
    assert lines[0].startswith("Best model on the test split by roc_auc: logistic_regression")
    assert "keras" in lines[1] and "does not beat the majority baseline" in lines[1]
    lines = verdict({"majority": majority, "keras": signal}, "roc_auc")
    assert lines[0].startswith("Best model on the test split by roc_auc: keras") and "keras beats the majority" in lines[1]


def test_regression_verdict_uses_the_mean_baseline_and_r2():
    from kmodels.evaluation import verdict

    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    problem = Problem("regression", (), "test")
    keras_metrics = problem.score(y, (y + rng.normal(scale=0.5, size=200))[:, None])
    mean_metrics = problem.score(y, np.full((200, 1), y.mean()))
    assert keras_metrics["r2"] > 0.6 and keras_metrics["primary_se"] > 0
    assert "keras beats the mean baseline" in verdict({"mean": mean_metrics, "keras": keras_metrics}, "r2")[1]


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_bootstrap_scores_equal_scikit_learn_on_the_resampled_rows(kind):
    """The vectorized resample scores (multiplicities, rank-sum AUC with ties) are scikit-learn's metrics."""
    from sklearn import metrics as skm

    from kmodels.evaluation.metrics import _weighted_scorer

    def sklearn_score(y_true, output):
        if kind == "regression":
            return skm.r2_score(y_true, output)
        if kind == "binary":
            return skm.roc_auc_score(y_true, output)
        return skm.balanced_accuracy_score(y_true, output.argmax(axis=1))

    rng = np.random.default_rng(7)
    n = 300
    y = {"binary": rng.integers(0, 2, n), "multiclass": rng.integers(0, 4, n), "regression": rng.normal(size=n)}[kind]
    out = {"binary": np.round(rng.uniform(size=n), 1),  # many ties
           "multiclass": rng.dirichlet(np.ones(4), n), "regression": y + rng.normal(size=n)}[kind]
    score = _weighted_scorer(kind, y, out)
    for _ in range(5):
        rows = rng.integers(0, n, n)
        assert score(np.bincount(rows, minlength=n).astype(float)) == pytest.approx(sklearn_score(y[rows], out[rows]))
