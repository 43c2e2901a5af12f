"""`kmodels.initializers`: NumPy draws of Keras's initial-weight distributions, and layers built with them."""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest

import kmodels
from kmodels import backend
from kmodels.initializers import HostInitializer, host_built, host_initialized

SHAPE = (300, 200)
KERAS_INITIALIZERS = [
    keras.initializers.GlorotUniform(), keras.initializers.GlorotNormal(), keras.initializers.HeNormal(),
    keras.initializers.HeUniform(), keras.initializers.LecunNormal(),
    keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal"),
    keras.initializers.RandomNormal(0.5, 0.2), keras.initializers.RandomUniform(-0.3, 0.1),
    keras.initializers.TruncatedNormal(0.0, 0.1), keras.initializers.Constant(0.25), keras.initializers.Zeros(),
    keras.initializers.Ones()]


@pytest.mark.parametrize("init", KERAS_INITIALIZERS, ids=lambda i: type(i).__name__)
def test_draws_the_distribution_of_the_keras_initializer(init):
    keras.utils.set_random_seed(0)
    theirs = keras.ops.convert_to_numpy(init(SHAPE, dtype="float32"))
    twin = HostInitializer.like(init)
    assert isinstance(twin, HostInitializer)
    ours = twin(SHAPE, dtype="float32")
    assert ours.shape == SHAPE and ours.dtype == np.float32
    # 60,000 draws: means within ~5 standard errors, spreads within 3%, the same tails
    assert abs(ours.mean() - theirs.mean()) <= 5 * theirs.std() / np.sqrt(ours.size) + 1e-7
    assert ours.std() == pytest.approx(theirs.std(), rel=0.03, abs=1e-7)
    for q in (1, 50, 99):
        assert abs(np.percentile(ours, q) - np.percentile(theirs, q)) <= 0.07 * theirs.std() + 1e-7, q


def test_a_seeded_initializer_repeats_and_an_unseeded_one_follows_the_global_seed():
    seeded = HostInitializer.like(keras.initializers.GlorotUniform(seed=7))
    np.testing.assert_array_equal(seeded((4, 3), "float32"), seeded((4, 3), "float32"))
    unseeded = HostInitializer.like("glorot_uniform")
    first, second = unseeded((4, 3), "float32"), unseeded((4, 3), "float32")
    assert not np.array_equal(first, second)  # each call its own draw, as in Keras
    keras.utils.set_random_seed(3)
    again = unseeded((4, 3), "float32")
    keras.utils.set_random_seed(3)
    np.testing.assert_array_equal(again, unseeded((4, 3), "float32"))


def test_truncated_draws_stay_within_two_standard_deviations():
    values = HostInitializer("truncated_normal", seed=0, mean=1.0, stddev=0.5)((20000,), "float32")
    assert values.min() >= 0.0 and values.max() <= 2.0


def test_initializers_without_a_twin_and_other_dtypes_are_left_to_keras():
    orthogonal = keras.initializers.Orthogonal()
    assert HostInitializer.like(orthogonal) is orthogonal
    with pytest.raises(ValueError, match="bfloat16"):
        HostInitializer.like("zeros")((2,), "bfloat16")
    with pytest.raises(ValueError, match="kind='sobol'"):
        HostInitializer("sobol")
    layer = keras.layers.Dense(2, dtype="bfloat16")
    host_built(layer, keras.Input((3,)))
    assert keras.backend.standardize_dtype(layer.kernel.dtype) == "bfloat16"


def test_a_host_built_layer_keeps_plain_keras_config_and_saves_as_plain_keras(tmp_path):
    inputs = keras.Input((5,))
    layer = keras.layers.Dense(3, kernel_initializer="he_normal", name="d")
    model = keras.Model(inputs, host_built(layer, inputs))
    plain = keras.layers.Dense(3, kernel_initializer="he_normal", name="d").get_config()
    assert layer.get_config() == plain
    assert float(np.abs(keras.ops.convert_to_numpy(layer.kernel)).sum()) > 0  # drawn, not left at zero
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_a_seeded_build_of_the_table_models_repeats():
    for name in ("mlp", "tabm"):
        weights = []
        for _ in range(2):
            backend.set_seed(11)
            weights.append([keras.ops.convert_to_numpy(w) for w in kmodels.build(name, input_shape=(6,)).weights])
        for a, b in zip(*weights, strict=True):
            np.testing.assert_array_equal(a, b)


def _compiled_randoms(caplog, make) -> tuple[list[str], object]:
    """What `make()` returns, and the random programs JAX compiled while it ran (`jit(_uniform)`, normals)."""
    import jax

    caplog.clear()
    with jax.log_compiles(True), caplog.at_level(logging.DEBUG, logger="jax"):
        made = make()
    return [r.getMessage() for r in caplog.records if "_uniform" in r.getMessage() or "normal" in r.getMessage()], made


@pytest.mark.skipif(backend.name() != "jax", reason="compiled random programs are a JAX cost")
def test_building_a_table_model_compiles_no_random_program_on_jax(caplog):
    def compiled_randoms(build) -> list[str]:
        return _compiled_randoms(caplog, build)[0]

    # shapes no other test builds, so JAX's in-memory cache cannot hide a compilation
    assert compiled_randoms(lambda: keras.Sequential([keras.Input((41,)), keras.layers.Dense(43)]))  # the control
    assert compiled_randoms(lambda: kmodels.build("mlp", input_shape=(47,), units=(53, 59))) == []


@pytest.mark.skipif(backend.name() != "jax", reason="compiled random programs are a JAX cost")
def test_every_registered_builder_draws_on_the_host_on_jax(caplog):
    """`host_initialized` (in `kmodels.build` and a run's `build_model`): a convolutional network compiles no
    random program either, keeps its initializers in its config, and a seeded build repeats."""
    def compiled_randoms(build) -> list[str]:
        return _compiled_randoms(caplog, build)[0]

    def conv(filters):
        return keras.Sequential([keras.Input((9, 9, 3)), keras.layers.Conv2D(filters, 3),
                                 keras.layers.SeparableConv2D(filters + 2, 3)])

    assert compiled_randoms(lambda: conv(37))  # the control: Keras draws on the device
    with host_initialized():
        assert compiled_randoms(lambda: conv(41)) == []
    assert compiled_randoms(lambda: kmodels.build("simple_cnn", input_shape=(24, 24, 3), filters=(7, 11))) == []
    model = kmodels.build("simple_cnn", input_shape=(24, 24, 3), filters=(7, 11))
    conv_config = next(layer.get_config() for layer in model.layers if "kernel_initializer" in layer.get_config())
    assert conv_config["kernel_initializer"]["module"] == "keras.initializers"  # its own, not a NumPy twin
    weights = []
    for _ in range(2):
        backend.set_seed(5)
        weights.append([keras.ops.convert_to_numpy(w)
                        for w in kmodels.build("simple_cnn", input_shape=(24, 24, 3), filters=(7, 11)).weights])
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(backend.name() != "jax", reason="compiled zeros programs are a JAX cost")
def test_a_table_run_compiles_no_zeros_program_on_jax(caplog, tmp_path):
    """What a run makes beyond the network's weights is NumPy zeros too: the loss and metric trackers of the
    compile, the optimizer's slots that `fit` makes, and the same again when `portable_model`'s clone is
    compiled from the saved compile settings. Each was one compiled `broadcast_in_dim` per shape."""
    import jax
    import pandas as pd

    def compiled_zeros(work) -> list[str]:
        caplog.clear()
        with jax.log_compiles(True), caplog.at_level(logging.DEBUG, logger="jax"):
            work()
        return [r.getMessage() for r in caplog.records
                if "broadcast_in_dim" in r.getMessage() and "compilation" in r.getMessage()]

    assert compiled_zeros(lambda: keras.Variable(initializer="zeros", shape=(83, 89)))  # the control
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(400, 29)), columns=[f"c{i}" for i in range(29)])  # shapes no other test has
    frame["y"] = np.where(frame["c0"] + rng.normal(size=400) > 0, "yes", "no")
    frame.to_csv(tmp_path / "t.csv", index=False)
    overrides = {"data.target": "y", "model.units": [31, 37], "model.piecewise_bins": 3, "train.epochs": 2,
                 "train.folds": 1, "train.verbose": 0, "baselines.linear": False, "baselines.gradient_boosting": False,
                 "baselines.sklearn_mlp": False, "evaluate.importance_repeats": 0}
    assert compiled_zeros(lambda: kmodels.run("tabular", data=tmp_path / "t.csv", out=tmp_path / "run",
                                              overrides=overrides)) == []


@pytest.mark.skipif(backend.name() != "jax", reason="compiled random programs are a JAX cost")
def test_loading_a_saved_model_compiles_no_random_program_on_jax(caplog, tmp_path):
    """Keras builds every layer of a `.keras` file before it reads the weights; kmodels' `load_model` draws
    those soon-replaced values with NumPy (`efficientnet_b0`: 210 compiled programs, 30 s, without it)."""
    from kmodels.task.export_formats import run_keras
    from kmodels.task.inference import load_model

    def compiled_randoms(load) -> tuple[list[str], object]:
        return _compiled_randoms(caplog, load)

    with host_initialized():  # shapes no other test builds, drawn without compiling
        model = keras.Sequential([keras.Input((11, 11, 3)), keras.layers.Conv2D(61, 3),
                                  keras.layers.SeparableConv2D(67, 3), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.save(tmp_path / "m.keras")
    compiled, ours = compiled_randoms(lambda: load_model(tmp_path / "m.keras"))
    assert compiled == []
    x = np.random.default_rng(0).uniform(size=(2, 11, 11, 3)).astype("float32")
    compiled, exported = compiled_randoms(lambda: run_keras(tmp_path / "m.keras", x))  # `kmodels export`'s check
    assert compiled == []
    np.testing.assert_array_equal(exported, model.predict(x, verbose=0))
    compiled, theirs = compiled_randoms(lambda: keras.saving.load_model(tmp_path / "m.keras"))
    assert compiled  # the control: plain Keras compiled the same shapes, so nothing above was cached
    for loaded in (ours, theirs):
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.skipif(backend.name() != "jax", reason="compiled random programs are a JAX cost")
def test_a_process_local_copy_compiles_no_random_program_on_jax(caplog):
    """`cluster.local_copy` (each process's predicting copy of a multi-process run) draws the values its
    `set_weights` replaces with NumPy, like every other throwaway build."""
    from kmodels.cluster import local_copy

    with host_initialized():  # shapes no other test builds, drawn without compiling
        model = keras.Sequential([keras.Input((13,)), keras.layers.Dense(59), keras.layers.Dense(3)])
    compiled, copy = _compiled_randoms(caplog, lambda: local_copy(model))
    assert compiled == []
    x = np.random.default_rng(0).normal(size=(4, 13)).astype("float32")
    np.testing.assert_array_equal(copy.predict(x, verbose=0), model.predict(x, verbose=0))
