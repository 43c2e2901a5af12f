"""Raw-rows exports: a table run's SavedModel / ONNX export takes the raw columns and answers as `kmodels predict`."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pandas as pd
import pytest

import kmodels
from kmodels import graph
from kmodels.errors import ConfigError, RunError

TARGETS = {"binary": "bought", "multiclass": "plan", "regression": "spend"}


def _table(n: int, seed: int, dates: bool) -> pd.DataFrame:
    """Numbers with holes, a small and a large category with missing values, a column name with spaces and
    brackets, dates (two-digit years, ISO, a placeholder, an impossible day) and the three kinds of target."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, n)
    income[rng.random(n) < 0.1] = np.nan
    region = rng.choice(["north", "south", "east", None], n)
    shop = rng.choice([f"shop-{i}" for i in range(30)], n)
    frame = pd.DataFrame({"income": income, "region": region, "Amount (INR)": rng.exponential(100, n), "shop": shop})
    if dates:
        days = pd.Series(pd.to_datetime(rng.integers(-15000, 19000, n).astype("datetime64[D]")))
        when = days.dt.day.astype(str) + "/" + days.dt.month.astype(str) + "/" + (days.dt.year % 100).astype(str)
        when[::7] = days[::7].dt.strftime("%Y-%m-%d")
        when[::11] = None
        frame["joined"] = when
    score = np.nan_to_num(income - 50) / 15 + (region == "north") + rng.normal(0, 0.7, n)
    frame["bought"] = np.where(score > 0.3, "yes", "no")
    frame["plan"] = np.select([score < -0.5, score < 0.8], ["basic", "plus"], "pro")
    frame["spend"] = 3 * score + rng.normal(0, 0.5, n)
    return frame


@pytest.fixture(scope="session")
def table_runs(tmp_path_factory):
    """One small finished run per problem kind (the binary one has a date column; the regression one scales
    RealMLP's way: robust_scale, then smooth_clip), and unseen raw rows."""
    root = tmp_path_factory.mktemp("export_rows")
    runs = {}
    for kind, target in TARGETS.items():
        path = root / f"{kind}.csv"
        others = [t for t in TARGETS.values() if t != target]
        _table(240, 0, dates=kind == "binary").drop(columns=others).to_csv(path, index=False)
        realmlp = {"preprocess": [{"name": n} for n in ("drop_duplicates", "auto_features", "impute", "robust_scale",
                                                         "smooth_clip")]} if kind == "regression" else {}
        if kind == "multiclass":  # the piecewise-linear bins a table of >= 2,000 rows gets by default
            realmlp = {"model.piecewise_bins": 4}
        runs[kind] = kmodels.run("tabular", data=path, out=root / kind, overrides={
            "data.target": target, "train.epochs": 2, "train.verbose": 0, "baselines.sklearn_mlp": False,
            "baselines.gradient_boosting": False, "baselines.linear": False, **realmlp}).run_dir
    new = _table(60, 1, dates=True)
    new.loc[0, "region"] = "never seen"
    new.loc[1, "joined"] = "31/2/20"
    new.loc[2, "joined"] = "1/1/1800"
    return runs, new.drop(columns=list(TARGETS.values()))


def _expected(run, rows):
    return kmodels.predict(run, rows, allow_missing=True)


def _compare(kind, want, got):
    if kind == "regression":
        np.testing.assert_allclose(np.asarray(got["prediction"], float), want["prediction"], atol=1e-4, rtol=1e-5)
        return
    classes = [c.removeprefix("probability_") for c in want.columns if c.startswith("probability_")]
    np.testing.assert_allclose(np.asarray(got["probabilities"], float),
                               want[[f"probability_{c}" for c in classes]].to_numpy(), atol=1e-5)
    labels = [v.decode() if isinstance(v, bytes) else str(v) for v in got["label"]]
    assert labels == want["label"].astype(str).tolist()
    np.testing.assert_allclose(np.asarray(got["probability"], float), want["probability"], atol=1e-5)


@pytest.mark.parametrize("kind", list(TARGETS))
def test_saved_model_takes_raw_rows_and_answers_as_predict(table_runs, kind, tmp_path):
    """Loaded with TensorFlow alone: one input per raw column (text and missing values included), the class
    name and probabilities out, equal to `kmodels predict` on rows the run never saw (unseen category, an
    impossible date); the flat `serving_default` signature (TF Serving) answers the same."""
    import tensorflow as tf

    runs, new = table_runs
    out = tmp_path / "export"
    result = kmodels.export(runs[kind], out, "saved_model")
    assert result["rows"] > 0 and result["max_abs_diff"] <= 1e-5
    meta = result["metadata"]
    columns = {c["name"]: c for c in meta["input"]["columns"]}
    assert "Amount (INR)" in columns and columns["Amount (INR)"]["signature_name"] == "Amount__INR"
    assert columns["region"]["dtype"] == "string" and columns["income"]["dtype"] == "float64"
    rows = new[[c for c in new.columns if c in columns]]
    inputs = graph.raw_inputs(rows, {c: graph.NUMBER if v["dtype"] == "float64" else graph.STRING
                                     for c, v in columns.items()})
    loaded = tf.saved_model.load(str(out))
    got = {k: v.numpy() for k, v in loaded.serve({k: tf.constant(v.astype(str) if v.dtype == object else v)
                                                  for k, v in inputs.items()}).items()}
    want = _expected(runs[kind], rows)
    _compare(kind, want, got)
    flat = loaded.signatures["serving_default"](**{columns[k]["signature_name"]: tf.constant(
        v.astype(str) if v.dtype == object else v) for k, v in inputs.items()})
    _compare(kind, want, {k: v.numpy() for k, v in flat.items()})
    assert (out / "assets" / "kmodels.json").is_file()


@pytest.mark.parametrize("kind", list(TARGETS))
def test_onnx_takes_raw_rows_and_answers_as_predict(table_runs, kind, tmp_path, backend):
    """onnxruntime alone: the same raw rows, the same answers (the network through tf2onnx on TensorFlow,
    written from its weights on JAX); a run that parses dates is refused with the reason and nothing written
    (ONNX has no date operators; its SavedModel takes the dates)."""
    needed = ("onnx", "onnxruntime") + (("tf2onnx",) if backend == "tensorflow" else ())
    if not all(importlib.util.find_spec(m) for m in needed):
        pytest.skip("ONNX exports need the onnx extra")
    import onnxruntime

    runs, new = table_runs
    out = tmp_path / "model.onnx"
    if kind == "binary":  # the run with the date column
        with pytest.raises(ConfigError, match="dates"):
            kmodels.export(runs[kind], out, "onnx")
        assert not os.listdir(tmp_path)
        return
    result = kmodels.export(runs[kind], out, "onnx")
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    kinds = {i.name: graph.NUMBER if i.type == "tensor(double)" else graph.STRING for i in session.get_inputs()}
    rows = new[list(kinds)]
    feed = {k: v.astype(str) if v.dtype == object else v for k, v in graph.raw_inputs(rows, kinds).items()}
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True))
    _compare(kind, _expected(runs[kind], rows), got)
    props = session.get_modelmeta().custom_metadata_map
    assert props["kmodels.problem"] == kind and result["metadata"]["problem"] == kind


def test_a_step_without_a_graph_form_is_named(tmp_path):
    """A pipeline step that cannot run inside a graph stops the export with its name and what to do instead."""
    from sklearn.pipeline import Pipeline

    class Custom:
        def transform(self, x):
            return x

    with pytest.raises(graph.NotExportable, match="Custom has no graph form.*kmodels serve"):
        graph.pipeline_graph(Pipeline([("custom", Custom())]), ["a"])


def test_export_checks_on_given_rows_and_refuses_an_existing_destination(table_runs, tmp_path):
    """`rows=` (`--rows`) checks the export on the user's rows; an existing OUT is never touched."""
    runs, new = table_runs
    out = tmp_path / "export"
    result = kmodels.export(runs["regression"], out, "saved_model", rows=new.head(5))
    assert result["rows"] == 5
    with pytest.raises(ConfigError, match="exists"):
        kmodels.export(runs["regression"], out, "saved_model")
    with pytest.raises(RunError, match="No rows"):
        kmodels.export(runs["regression"], tmp_path / "other", "saved_model", rows=new.head(0))
    assert not (tmp_path / "other").exists()


def test_onnx_from_weights_writes_dense_chains_and_names_what_it_cannot(tmp_path):
    """`onnx_network` (ONNX without tf2onnx): Dense, BatchNormalization, Rescaling, activations, a wide-and-deep
    Concatenate, bagged members under an Average and `mlp`'s piecewise-linear bins (Reshape, a pointwise
    DepthwiseConv1D, a capped ReLU) and their per-feature embedding (an EinsumDense) give the Keras model's output; a convolution is refused by name."""
    pytest.importorskip("onnxruntime")
    import keras
    import onnxruntime

    from kmodels.task.export_onnx import onnx_network

    inputs = keras.Input((5,))
    x = keras.layers.Dense(8, activation="tanh")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, keras.layers.Rescaling(2.0, offset=0.5)(x))
    model.layers[2].set_weights([w + 0.3 for w in model.layers[2].get_weights()])  # non-trivial statistics
    x = np.random.default_rng(0).normal(size=(7, 5)).astype("float32")
    session = onnxruntime.InferenceSession(onnx_network(model).SerializeToString())
    np.testing.assert_allclose(session.run(None, {"features": x})[0], model.predict(x, verbose=0), atol=1e-5)
    wide = kmodels.build("mlp", input_shape=(5,), units=(8, 4), dropout=0.1, linear=True, num_classes=3)
    session = onnxruntime.InferenceSession(onnx_network(wide).SerializeToString())  # the features join the head
    np.testing.assert_allclose(session.run(None, {"features": x})[0], wide.predict(x, verbose=0), atol=1e-5)
    members = [kmodels.build("mlp", input_shape=(5,), units=(4,), num_classes=3) for _ in range(3)]
    features = keras.Input((5,), name="features")  # how `[train] folds` saves its members: averaged models
    bagged = keras.Model(features, keras.layers.Average()([keras.Model(m.input, m.output, name=f"fold_{i}")(features)
                                                            for i, m in enumerate(members)]))
    session = onnxruntime.InferenceSession(onnx_network(bagged).SerializeToString())
    np.testing.assert_allclose(session.run(None, {"features": x})[0], bagged.predict(x, verbose=0), atol=1e-5)
    binned = kmodels.build("mlp", input_shape=(5,), units=(4,), piecewise_bins=3, num_classes=3)  # bins and features
    binned.get_layer("piecewise_encoding").set_weights([np.full((1, 5, 3), 1.5, "float32"),
                                                         np.linspace(-2, 2, 15).astype("float32")])
    session = onnxruntime.InferenceSession(onnx_network(binned).SerializeToString())
    np.testing.assert_allclose(session.run(None, {"features": x})[0], binned.predict(x, verbose=0), atol=1e-5)
    embedded = kmodels.build("mlp", input_shape=(5,), units=(4,), piecewise_bins=3, piecewise_embedding=2)
    embedded.get_layer("piecewise_encoding").set_weights(binned.get_layer("piecewise_encoding").get_weights())
    kernel, bias = embedded.get_layer("piecewise_embedding").get_weights()  # a bias that is not zero
    embedded.get_layer("piecewise_embedding").set_weights([kernel, np.linspace(-0.5, 0.5, bias.size).reshape(bias.shape)])
    session = onnxruntime.InferenceSession(onnx_network(embedded).SerializeToString())  # an Einsum per feature
    np.testing.assert_allclose(session.run(None, {"features": x})[0], embedded.predict(x, verbose=0), atol=1e-5)
    conv = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ConfigError, match="Conv2D"):
        onnx_network(conv)


@pytest.mark.parametrize("kind", list(TARGETS))
def test_what_a_table_run_saves_is_plain_keras(table_runs, kind):
    """The default net trains with `HashDropout` (a kmodels layer, for JAX's compile time); `model.keras` holds
    Keras's own `Dropout` in its place, bagged members included, so plain Keras loads it."""
    import json
    import zipfile

    with zipfile.ZipFile(table_runs[0][kind] / "model.keras") as archive:
        config = archive.read("config.json").decode()
    assert "kmodels" not in config and "HashDropout" not in config
    classes = {layer["class_name"] for member in json.loads(config)["config"]["layers"]
               if member["class_name"] == "Functional" for layer in member["config"]["layers"]}
    assert {"Dense", "Dropout"} <= classes, classes
