"""`tabm` through the tabular task: the members train on the mean of their losses, the saved model averages them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kmodels

SMALL = {"train.folds": 1, "model.name": "tabm", "model.members": 8, "model.units": [32], "train.epochs": 8, "train.verbose": 0,
         "baselines.sklearn_mlp": False, "baselines.gradient_boosting": False}


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_tabm_trains_its_members_and_saves_their_average(kind, tmp_path):
    import keras
    from sklearn.datasets import load_breast_cancer, load_diabetes

    data = (load_breast_cancer if kind == "binary" else load_diabetes)(as_frame=True).frame
    result = kmodels.run("tabular", data=data, out=tmp_path / "run", overrides={"data.target": "target", **SMALL})
    assert result.metrics["problem"]["kind"] == kind
    model = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    assert model.output_shape == (None, 1) and model.get_layer("tabm_members").output.shape[1] == 8
    models = result.metrics["models"]
    if kind == "binary":  # class weights reached the members' loss as sample weights; it learned
        assert models["keras"]["roc_auc"] > 0.95, models
    else:  # on the target's own scale (the fixed map onto it sits after the members too)
        assert models["keras"]["r2"] > 0.3, models
        predicted = kmodels.predict(tmp_path / "run", data.drop(columns="target").head(50))["prediction"]
        assert 50 < predicted.mean() < 250
    rows = data.drop(columns="target").head(10)
    export = kmodels.export(tmp_path / "run", tmp_path / "export", "saved_model")  # raw rows, checked ≤ 1e-5
    assert export["max_abs_diff"] <= 1e-5
    assert len(kmodels.predict(tmp_path / "run", rows)) == 10


def test_tabm_multilabel_gets_one_sigmoid_per_label(tmp_path):
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(240, 4)), columns=list("abcd"))
    frame["tags"] = np.where(frame["a"] > 0, "x", "y") + np.where(frame["b"] > 0, "|z", "")
    result = kmodels.run("tabular", data=frame, out=tmp_path / "run", overrides={"data.target": "tags", **SMALL})
    assert result.metrics["problem"]["kind"] == "multilabel"
    assert result.metrics["models"]["keras"]["f1_micro"] > 0.8


def test_piecewise_embeddings_encode_how_far_each_bin_is_filled():
    import keras
    from kmodels_tabular.tabm import PiecewiseLinearEmbedding

    layer = PiecewiseLinearEmbedding(bins=3, dim=3)
    layer.build((None, 1))
    layer.edges.assign(np.array([[0.0, 1.0, 2.0, 4.0]], "float32"))
    layer.kernel.assign(np.eye(3, dtype="float32")[None])  # the encoding itself comes out (ReLU of it)
    x = np.array([[-1.0], [0.5], [1.5], [3.0], [9.0]], "float32")
    got = keras.ops.convert_to_numpy(layer(x))
    # below the range only the first bin moves (negative, cut by the ReLU); past it only the last grows
    np.testing.assert_allclose(got, [[0, 0, 0], [0.5, 0, 0], [1, 0.5, 0], [1, 1, 0.5], [1, 1, 3.5]], atol=1e-6)


def test_tabm_with_piecewise_embeddings_fits_its_bins_on_the_training_split(tmp_path):
    import keras
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).frame
    result = kmodels.run("tabular", data=data, out=tmp_path / "run", overrides={
        "data.target": "target", **SMALL, "model.embedding": "piecewise", "model.bins": 8})
    assert result.metrics["models"]["keras"]["roc_auc"] > 0.95
    model = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    edges = keras.ops.convert_to_numpy(model.get_layer("piecewise").edges)
    assert edges.shape == (30, 9) and (np.diff(edges, axis=1) > 0).all()
    assert not np.allclose(edges[0], np.linspace(-2, 2, 9))  # the training quantiles, not the placeholder
    assert -3 < np.median(edges[:, 4]) < 3  # quantiles of standardized features: medians near 0
    export = kmodels.export(tmp_path / "run", tmp_path / "export", "saved_model")
    assert export["max_abs_diff"] <= 1e-5
