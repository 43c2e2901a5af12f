"""One contract test over every registered model, on the current backend."""

from __future__ import annotations

import numpy as np
import pytest

import kmodels
from kmodels import registry
from kmodels.task.inference import load_model


@pytest.mark.parametrize("name", registry.models.list())
def test_model_contract(name, tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    model = kmodels.build(name, **registry.models.meta(name).get("test_kwargs", {}))  # e.g. a small input
    assert isinstance(model, keras.Model) and model.optimizer is not None
    shape = tuple(model.inputs[0].shape[1:])
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(4, *shape)).astype("float32")
    if len(shape) == 3:
        x *= 255.0  # image models take raw pixel values
    y = np.array([0, 1, 0, 1], dtype="float32")
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    before = model.predict(x, verbose=0)
    assert before.shape == (4, 1) and np.all((before >= 0) & (before <= 1))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = load_model(path)  # kmodels' loader: Keras's with safe_mode=True, weights drawn on the host first
    np.testing.assert_allclose(loaded.predict(x, verbose=0), before, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("num_classes,loss", [(1, "mean_squared_error"), (5, "sparse_categorical_crossentropy")])
@pytest.mark.parametrize("name", registry.models.list())
def test_every_model_builds_for_regression_and_multiclass(name, num_classes, loss):
    """The binary case is the full contract above; here the other two problem types, on the same registry.

    Small models also run a training step and a prediction; the large architectures are checked
    symbolically (their XLA compile time would dominate the suite; the binary contract trains them).
    """
    import keras

    keras.utils.set_random_seed(0)
    model = kmodels.build(name, num_classes=num_classes, **registry.models.meta(name).get("test_kwargs", {}))
    assert model.loss == loss and model.output_shape == (None, num_classes)
    if model.count_params() > 500_000:  # the keras.applications backbones and the default xception
        return
    shape = tuple(model.inputs[0].shape[1:])
    x = np.random.default_rng(0).uniform(0, 255 if len(shape) == 3 else 1, size=(4, *shape)).astype("float32")
    y = np.array([0, 1, 4, 2], dtype="float32" if num_classes == 1 else "int64")
    model.train_on_batch(x, y)
    out = model.predict(x, verbose=0)
    assert out.shape == (4, num_classes) and np.isfinite(out).all()
    if num_classes > 2:
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-4)  # softmax probabilities


@pytest.mark.parametrize("name", registry.models.list())
def test_model_docstring_has_example(name):
    import inspect

    doc = inspect.getdoc(registry.models.get(name)) or ""
    assert doc.splitlines()[0].strip(), f"{name}: no summary line"
    assert "Example:" in doc and ">>>" in doc, f"{name}: docstring needs a runnable Example"


def test_build_rejects_bad_kwargs_before_building():
    with pytest.raises(kmodels.ConfigError, match="Unknown key 'unitz'"):
        kmodels.build("toy_mlp", unitz=3)


def test_list_models_globs():
    assert "toy_mlp" in kmodels.list_models("toy_*")
    assert kmodels.list_models("zzz*") == []


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_build_with_mixed_precision_keeps_float32_output(policy):
    import keras

    model = kmodels.build("toy_mlp", precision=policy)
    assert model.layers[1].compute_dtype == policy.split("_")[1]
    assert model.outputs[0].dtype == "float32" and model.layers[1].variable_dtype == "float32"
    assert keras.mixed_precision.dtype_policy().name == "float32"  # restored
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    history = model.fit(x, (x[:, 0] > 0).astype("float32"), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_task_trains_in_mixed_bfloat16(tmp_path):
    result = kmodels.run("toy_task", overrides={"train.precision": "mixed_bfloat16", "train.epochs": 4},
                         out=tmp_path / "r")
    assert result.metrics["models"]["keras"]["balanced_accuracy"] > 0.8
    with pytest.raises(kmodels.ConfigError, match="expected 'float32' \\| 'mixed_bfloat16' \\| 'mixed_float16'"):
        kmodels.load_spec("toy_task", {"train.precision": "fp8"})
