"""`tabm` through the tabular task: the members train on the mean of their losses, the saved model averages them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kmodels
from kmodels.task.inference import load_model

SMALL = {"train.folds": 1, "model.name": "tabm", "model.members": 8, "model.units": [32], "train.epochs": 8, "train.verbose": 0,
         "baselines.sklearn_mlp": False, "baselines.gradient_boosting": False}


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_tabm_trains_its_members_and_saves_their_average(kind, tmp_path):
    from sklearn.datasets import load_breast_cancer, load_diabetes

    data = (load_breast_cancer if kind == "binary" else load_diabetes)(as_frame=True).frame
    result = kmodels.run("tabular", data=data, out=tmp_path / "run", overrides={"data.target": "target", **SMALL})
    assert result.metrics["problem"]["kind"] == kind
    model = load_model(tmp_path / "run" / "model.keras")
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
    model = load_model(tmp_path / "run" / "model.keras")
    edges = keras.ops.convert_to_numpy(model.get_layer("piecewise").edges)
    assert edges.shape == (30, 9) and (np.diff(edges, axis=1) > 0).all()
    assert not np.allclose(edges[0], np.linspace(-2, 2, 9))  # the training quantiles, not the placeholder
    assert -3 < np.median(edges[:, 4]) < 3  # quantiles of standardized features: medians near 0
    export = kmodels.export(tmp_path / "run", tmp_path / "export", "saved_model")
    assert export["max_abs_diff"] <= 1e-5


# ---- `mlp(bins=N)`: the piecewise-linear encoding in plain Keras layers -------------------------------------------
@st.composite
def _edges_and_rows(draw):
    """Strictly increasing bin edges for 1-3 features, and rows that fall below, inside and above them."""
    features, bins = draw(st.integers(1, 3)), draw(st.integers(2, 6))
    steps = draw(st.lists(st.lists(st.floats(0.05, 3.0), min_size=bins, max_size=bins), min_size=features,
                          max_size=features))
    starts = draw(st.lists(st.floats(-5.0, 5.0), min_size=features, max_size=features))
    edges = np.array([s + np.concatenate([[0.0], np.cumsum(d)]) for s, d in zip(starts, steps, strict=True)], "float32")
    rows = draw(st.lists(st.lists(st.floats(-20.0, 20.0), min_size=features, max_size=features), min_size=1,
                         max_size=8))
    return edges, np.array(rows, "float32")


@settings(deadline=None)
@given(case=_edges_and_rows())
def test_mlp_piecewise_encoding_matches_its_numpy_reference(case):
    import keras
    from kmodels_tabular.models import mlp, piecewise_weights

    edges, x = case
    features, bins = edges.shape[0], edges.shape[1] - 1
    model = mlp(input_shape=(features,), units=(4,), piecewise_bins=bins, raw_features=False)
    model.get_layer("piecewise_encoding").set_weights(piecewise_weights(edges))
    encoder = keras.Model(model.inputs, model.get_layer("piecewise_clip").output)
    got = keras.ops.convert_to_numpy(encoder([x])).reshape(len(x), features, bins)
    left, right = edges[:, :-1], edges[:, 1:]
    expected = np.clip((x[:, :, None] - left) / (right - left), 0.0, 1.0)
    np.testing.assert_allclose(got, expected, atol=2e-4)
    # how far each feature has filled its bins, summed, never falls as the value grows
    filled = got.sum(axis=2)
    order = np.argsort(x, axis=0, kind="stable")
    assert (np.diff(np.take_along_axis(filled, order, axis=0), axis=0) >= -1e-4).all()


def test_mlp_refuses_a_single_bin_and_an_unknown_edge_strategy_by_name():
    from kmodels_tabular.models import mlp

    with pytest.raises(ValueError, match="piecewise_bins=1"):
        mlp(input_shape=(3,), piecewise_bins=1)
    with pytest.raises(ValueError, match="piecewise_edges=.kmeans.*quantile\\+tree"):
        mlp(input_shape=(3,), piecewise_bins=4, piecewise_edges="kmeans")
    with pytest.raises(ValueError, match="piecewise_embedding=-1.*e.g. 16"):
        mlp(input_shape=(3,), piecewise_bins=4, piecewise_embedding=-1)


def test_the_bins_embedding_has_one_linear_map_per_feature():
    """`piecewise_embedding`: feature f's output units depend on feature f's bins only (rtdl's MLP-PLE)."""
    import keras
    from kmodels_tabular.models import mlp

    model = mlp(input_shape=(3,), units=(4,), piecewise_bins=4, piecewise_embedding=5)
    assert model.get_layer("piecewise_embedding").get_weights()[0].shape == (3, 4, 5)
    probe = keras.Model(model.input, model.get_layer("feature_embeddings").output)
    x = np.random.default_rng(0).uniform(-2, 2, size=(16, 3)).astype("float32")
    moved = x.copy()
    moved[:, 1] = np.random.default_rng(1).uniform(-2, 2, size=16)  # only feature 1 changes
    a, b = (probe.predict(v, verbose=0).reshape(16, 3, 5) for v in (x, moved))
    np.testing.assert_array_equal(a[:, [0, 2]], b[:, [0, 2]])
    assert not np.allclose(a[:, 1], b[:, 1])


# ---- `fit_bins`: where the edges go --------------------------------------------------------------------------------
@settings(deadline=None)
@given(seed=st.integers(0, 2**16), rows=st.integers(2, 400), bins=st.integers(2, 12),
       strategy=st.sampled_from(["quantile", "tree", "quantile+tree"]), classification=st.booleans(),
       discrete=st.booleans())
def test_fit_bins_gives_increasing_edges_that_span_the_training_values(seed, rows, bins, strategy, classification,
                                                                        discrete):
    from kmodels_tabular.tabm import fit_bins

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    if discrete:  # few distinct values: fewer real bins, the spare edges past the maximum
        x = np.round(x)
    y = (x[:, 0] > 0).astype(int) if classification else x[:, 1] ** 2 + rng.normal(size=rows)
    edges = fit_bins(x, bins, y, strategy=strategy, classification=classification)
    assert edges.shape == (3, bins + 1) and edges.dtype == np.float32
    assert (np.diff(edges, axis=1) > 0).all()
    np.testing.assert_allclose(edges[:, 0], x.min(axis=0), rtol=1e-6, atol=1e-6)
    assert (edges[:, -1] >= x.max(axis=0) - 1e-5).all()  # every training value is inside the bins
    if strategy == "quantile":  # as before the strategies came: the quantiles alone, with or without y
        np.testing.assert_array_equal(edges, fit_bins(x, bins))


def test_fit_bins_tree_edges_find_where_the_target_changes_and_quantiles_miss_it():
    from kmodels_tabular.tabm import fit_bins

    x = np.random.default_rng(0).normal(size=(5000, 1))
    y = (x[:, 0] > 1.7).astype(int)  # a threshold in the top 5%, between two of 8 quantile edges
    quantile, tree, both = (fit_bins(x, 8, y, strategy=s)[0] for s in ("quantile", "tree", "quantile+tree"))
    assert np.abs(quantile - 1.7).min() > 0.1
    assert np.abs(tree - 1.7).min() < 0.02 and np.abs(both - 1.7).min() < 0.02
    assert set(fit_bins(x, 4)[0].tolist()) <= set(both.tolist())  # half the bins are still the quantiles
    regression = fit_bins(x, 8, np.where(x[:, 0] > -0.5, 3.0, 0.0), strategy="tree", classification=False)[0]
    assert np.abs(regression + 0.5).min() < 0.02
    with pytest.raises(ValueError, match="pass the target as y"):
        fit_bins(x, 8, strategy="tree")
    with pytest.raises(ValueError, match="strategy='kmeans'"):
        fit_bins(x, 8, y, strategy="kmeans")


def test_mlp_with_bins_fits_them_on_the_training_split_and_saves_plain_keras(tmp_path):
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).frame
    result = kmodels.run("tabular", data=data, out=tmp_path / "run", overrides={
        "data.target": "target", "train.folds": 1, "model.piecewise_bins": 8, "train.epochs": 8, "train.verbose": 0,
        "baselines.sklearn_mlp": False, "baselines.gradient_boosting": False})
    assert result.metrics["models"]["keras"]["roc_auc"] > 0.95
    model = load_model(tmp_path / "run" / "model.keras")
    assert {type(layer).__module__.split(".")[0] for layer in model.layers} == {"keras"}  # no kmodels layer inside
    kernel, bias = model.get_layer("piecewise_encoding").get_weights()
    assert kernel.shape == (1, 30, 8) and bias.shape == (240,)  # one weight per feature and bin
    # read the edges back from the weights: the training split's quantiles, not the [-2, 2] placeholder
    left = -bias.reshape(30, 8) / kernel[0]
    assert (np.diff(left, axis=1) > 0).all() and not np.allclose(left[0], np.linspace(-2, 2, 9)[:-1])
    assert -3 < np.median(left[:, 4]) < 3  # quantiles of standardized features: medians near 0
    export = kmodels.export(tmp_path / "run", tmp_path / "export", "saved_model")  # raw rows in, checked ≤ 1e-5
    assert export["max_abs_diff"] <= 1e-5
