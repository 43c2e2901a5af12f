"""`tabm` through the tabular task: the members train on the mean of their losses, the saved model averages them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kmodels

SMALL = {"model.name": "tabm", "model.members": 8, "model.units": [32], "train.epochs": 8, "train.verbose": 0,
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
