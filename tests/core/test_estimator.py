"""`kmodels.Classifier` / `kmodels.Regressor`: scikit-learn estimators over a task, model kept in memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks as checks

import kmodels
from kmodels.errors import DataError

FAST = {"train.epochs": 3, "baselines.sklearn_max_rows": 200}


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X.index = X.index + 1000  # an index that is not 0..n-1
    return X, y.map({0: "malignant", 1: "benign"})


@pytest.fixture(scope="module")
def fitted(cancer):
    X, y = cancer
    return kmodels.Classifier(overrides=FAST, seed=3).fit(X, y)


def test_predictions_name_the_classes_and_keep_the_index(fitted, cancer):
    X, y = cancer
    assert list(fitted.classes_) == ["benign", "malignant"]  # sorted, as inferred
    proba = fitted.predict_proba(X.head(7))
    assert isinstance(proba, np.ndarray) and proba.shape == (7, 2)  # scikit-learn's contract, for its scorers
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    frame = fitted.predict_frame(X.head(7))
    assert list(frame.columns) == ["label", "probability", "probability_benign", "probability_malignant"]
    assert list(frame.index) == list(X.index[:7])
    np.testing.assert_allclose(frame[["probability_benign", "probability_malignant"]].to_numpy(), proba, rtol=1e-6)
    labels = fitted.predict(X)
    assert set(labels) <= {"benign", "malignant"} and len(labels) == len(X)
    assert fitted.score(X, y) > 0.85 and fitted.n_features_in_ == 30


def test_the_model_stays_in_memory_and_agrees_with_the_run_directory(fitted, cancer):
    X, _ = cancer
    model = fitted.model_
    one_row = [fitted.predict(X.iloc[[i]])[0] for i in range(5)]
    assert fitted.model_ is model  # never reloaded
    from_disk = kmodels.predict(fitted.run_dir_, X.head(5))
    assert one_row == list(from_disk["label"])
    np.testing.assert_allclose(fitted.predict_proba(X.head(5))[:, 1], from_disk["probability_malignant"], atol=1e-5)


def test_save_and_load_round_trip_as_a_run_directory(fitted, cancer, tmp_path):
    X, _ = cancer
    path = fitted.save(tmp_path / "saved")
    assert (path / "model.keras").is_file() and not (path / ".kmodels.lock").exists()
    again = kmodels.estimator.load(path)
    assert isinstance(again, kmodels.Classifier)
    np.testing.assert_array_equal(again.predict(X.head(20)), fitted.predict(X.head(20)))
    with pytest.raises(kmodels.RunError, match="not an empty directory"):
        fitted.save(path)


def test_sklearn_conventions_clone_params_and_unfitted_errors():
    est = kmodels.Classifier(overrides={"train.epochs": 2}, seed=1)
    assert est.get_params() == {"overrides": {"train.epochs": 2}, "seed": 1, "task": "tabular", "verbose": 0}
    assert clone(est).get_params() == est.get_params()
    assert est.set_params(seed=5).seed == 5
    with pytest.raises(NotFittedError, match="not fitted yet"):
        est.predict(pd.DataFrame({"a": [1.0]}))
    for name in ("check_no_attributes_set_in_init", "check_get_params_invariance", "check_set_params",
                 "check_parameters_default_constructible", "check_estimator_cloneable", "check_estimator_repr",
                 "check_do_not_raise_errors_in_init_or_set_params", "check_estimators_unfitted"):
        for estimator in (kmodels.Classifier(), kmodels.Regressor()):
            getattr(checks, name)(type(estimator).__name__, estimator)


def test_in_a_pipeline_and_cross_validation(cancer):
    X, y = cancer
    pipe = make_pipeline(StandardScaler(), kmodels.Classifier(overrides=FAST))
    scores = cross_val_score(pipe, X, y, cv=2, scoring="roc_auc")  # a scorer that reads predict_proba[:, 1]
    assert scores.shape == (2,) and scores.min() > 0.9


def test_regressor_on_a_real_table():
    X, y = load_diabetes(return_X_y=True)  # arrays, no column names
    reg = kmodels.Regressor(overrides={"train.epochs": 20, "baselines.sklearn_max_rows": 200}).fit(X, y)
    assert reg.problem_.kind == "regression" and reg.score(X, y) > 0.3
    assert reg.predict(X[:3]).shape == (3,)
    with pytest.raises(DataError, match="X has 10 rows but y has 9"):
        kmodels.Regressor().fit(X[:10], y[:9])
