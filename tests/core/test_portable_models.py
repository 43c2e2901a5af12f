"""A `.keras` file kmodels writes loads in plain Keras, in a fresh process that never imports kmodels."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from kmodels_vision.layers import portable_model

import kmodels
from kmodels import _config, registry
from kmodels.task import save_model

LOAD = """
import sys, numpy as np, keras
if keras.backend.backend() == "jax":  # Keras draws every weight before the file's values replace it, one compiled
    # random program per weight shape on JAX (most of this test's minute): NumPy zeros instead, nothing of kmodels
    from keras.src.backend.common.variables import Variable
    draw = Variable._initialize_with_initializer
    Variable._initialize_with_initializer = lambda self, init: draw(self, lambda shape, dtype=None: np.zeros(shape, dtype))
out = {{}}
for name in {names!r}:
    model = keras.saving.load_model({root!r} + "/" + name + ".keras", safe_mode=True)
    out[name] = model.predict(np.load({root!r} + "/" + name + ".x.npy"), verbose=0)
assert not any(m == "kmodels" or m.startswith(("kmodels.", "kmodels_")) for m in sys.modules), "kmodels imported"
np.savez({root!r} + "/out.npz", **out)
"""


def _layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _layers(layer)


@pytest.mark.parametrize("name", registry.models.list())
def test_what_a_run_saves_is_made_of_keras_layers_only(name):

    kwargs = dict(registry.models.meta(name).get("test_kwargs", {}))
    if "fused_batchnorm" in _config.schema(registry.models.get(name)):
        kwargs["fused_batchnorm"] = True  # what the task specs train with
    model = portable_model(kmodels.build(name, **kwargs))
    foreign = {type(layer).__module__ for layer in _layers(model)}
    declared = registry.models.meta(name).get("layers_from")  # a model that says which module its layers are in
    assert all(m.startswith("keras.") or m == declared for m in foreign), (name, foreign)


@pytest.mark.parametrize("name", registry.models.list())
def test_the_portable_clone_draws_no_random_weights_and_keeps_the_initializers(name, monkeypatch):
    """Its placeholder weights are NumPy zeros (a Keras draw compiled a program per shape on JAX), and each
    layer's config, initializers included, is what it would be without the swap."""
    kwargs = dict(registry.models.meta(name).get("test_kwargs", {}))
    schema = _config.schema(registry.models.get(name))
    if "fused_batchnorm" in schema:
        kwargs["fused_batchnorm"] = True  # swapped for Keras's BatchNormalization
    if "dropout" in schema:
        kwargs.setdefault("dropout", 0.1)  # the table models' HashDropout, swapped for Keras's Dropout
    if name == "mini_xception":
        kwargs.update(filters=[16, 32], stem_filters=16)
    model = kmodels.build(name, **kwargs)
    if model.count_params() > 2_000_000:
        pytest.skip("a large keras.applications architecture: nothing of it is swapped")
    assert portable_model(model) is not model or name not in ("mlp", "tabm", "mini_xception", "simple_cnn")

    def refuse(*args, **kwargs):
        raise AssertionError("portable_model drew random weights")

    from keras.src.backend import random as backend_random  # what Keras's initializers draw with

    for draw in ("uniform", "normal", "truncated_normal"):
        monkeypatch.setattr(backend_random, draw, refuse)
    clone = portable_model(model)
    monkeypatch.undo()
    for source, layer in zip(_layers(model), _layers(clone), strict=True):
        mine, theirs = source.get_config(), layer.get_config()
        for key in mine:
            if key.endswith("_initializer"):
                assert theirs[key] == mine[key], (name, layer.name, key)
    np.testing.assert_array_equal(np.concatenate([np.ravel(w) for w in clone.get_weights()] or [np.zeros(0)]),
                                  np.concatenate([np.ravel(w) for w in model.get_weights()] or [np.zeros(0)]))


@pytest.mark.slow
@pytest.mark.subprocess
def test_saved_models_load_without_kmodels_on_the_other_backend(tmp_path, backend):
    """The small registered models as a run saves them, loaded by plain Keras on the other backend."""
    import keras

    expected, names = {}, []
    for name in registry.models.list():
        kwargs = dict(registry.models.meta(name).get("test_kwargs", {}))
        if registry.models.meta(name).get("layers_from"):
            continue  # its own registered layers: it loads where its plugin is installed (the test above)
        if "fused_batchnorm" in _config.schema(registry.models.get(name)):
            kwargs["fused_batchnorm"] = True  # what the task specs train with
        keras.utils.set_random_seed(0)
        model = kmodels.build(name, **kwargs)
        if model.count_params() > 2_000_000:
            continue  # the large keras.applications architectures: plain Keras layers (test above), slow to load
        shape = tuple(model.inputs[0].shape[1:])
        x = np.random.default_rng(0).uniform(0, 255 if len(shape) == 3 else 1, (3, *shape)).astype("float32")
        save_model(portable_model(model), tmp_path / f"{name}.keras")  # as an image task's finish_model hands it
        np.save(tmp_path / f"{name}.x.npy", x)
        expected[name] = model.predict(x, verbose=0)
        names.append(name)
    assert "simple_cnn" in names and "mlp" in names
    other = {"jax": "tensorflow", "tensorflow": "jax"}[backend]
    env = {**os.environ, "KERAS_BACKEND": other, "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = LOAD.format(names=names, root=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    for name in names:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.subprocess
def test_a_jax_run_never_imports_tensorflow(tmp_path, backend):
    """Keras imports TensorFlow to seed it and for type checks while (de)serializing, about 2.3 s of a table run on
    2 CPU cores; on JAX a run, its saved model and a prediction from it do without (`tensorflow_unimported`)."""
    if backend != "jax":
        pytest.skip("on TensorFlow it is the backend")
    rows = np.random.default_rng(0).normal(size=(120, 3))
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,c,y\n" + "\n".join(f"{a},{b},{c},{int(a + b > 0)}" for a, b, c in rows) + "\n")
    code = (f"import sys, kmodels; run = kmodels.run('tabular', data={str(csv)!r}, overrides={{'data.target': 'y', "
            f"'train.epochs': 2, 'baselines.gradient_boosting': False}}, out={str(tmp_path / 'run')!r}); "
            f"kmodels.predict(run.run_dir, {str(csv)!r}); print('tensorflow imported:', 'tensorflow' in sys.modules)")
    env = {**os.environ, "KERAS_BACKEND": "jax", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert proc.returncode == 0 and "tensorflow imported: False" in proc.stdout, (proc.stdout[-500:], proc.stderr[-3000:])


def test_tensorflow_unimported_hides_it_inside_the_scope_only(monkeypatch, backend):
    """Keras's `tf.available` says False inside (and imports nothing), and is asked again afterwards; seeding
    inside it seeds NumPy and Keras as before."""
    from keras.src.utils import module_utils

    from kmodels.backend import set_seed, tensorflow_unimported

    if backend == "tensorflow":
        pytest.skip("on TensorFlow it is the backend, and always imported")
    lazy = module_utils.LazyModule("tensorflow")  # as Keras holds it before anything imported TensorFlow
    monkeypatch.setattr(module_utils, "tensorflow", lazy)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    with tensorflow_unimported():
        assert lazy.available is False and lazy.module is None
    assert lazy._available is None and lazy.module is None
    set_seed(7)
    first = np.random.rand(3)
    set_seed(7)
    assert lazy.module is None and np.array_equal(first, np.random.rand(3))
