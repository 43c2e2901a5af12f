"""FusedBatchNormalization computes what keras.layers.BatchNormalization computes, on every backend.

`check_equivalence` is also run under KERAS_BACKEND=torch in a subprocess when torch
is installed (it is not part of the test extra: `pip install -e ".[torch]"`).
"""

from __future__ import annotations

import doctest
import importlib.util
import os
import subprocess
import sys

import keras
import kmodels_vision.layers
import numpy as np
import pytest
from kmodels_vision.layers import FusedBatchNormalization, portable_model


def _net(bn_cls, axis: int, **bn_kwargs) -> keras.Model:
    shape = (6, 6, 3) if axis == -1 else (3, 6, 6)
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(4, 3, padding="same", data_format="channels_last" if axis == -1 else "channels_first",
                            name="conv")(inputs)
    x = bn_cls(axis=axis, momentum=0.8, name="bn", **bn_kwargs)(x)
    x = keras.layers.ReLU()(x)
    outputs = keras.layers.Dense(1, name="out")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


def check_equivalence(axis: int = -1, **bn_kwargs) -> None:
    """Two SGD steps from the same weights: every weight, moving statistic and output agrees."""
    rng = np.random.default_rng(0)
    shape = (16, 6, 6, 3) if axis == -1 else (16, 3, 6, 6)
    x = rng.normal(3.0, 2.0, shape).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    reference, fused = _net(keras.layers.BatchNormalization, axis, **bn_kwargs), _net(FusedBatchNormalization, axis,
                                                                                       **bn_kwargs)
    fused.set_weights(reference.get_weights())
    for model in (reference, fused):
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        for _ in range(2):
            model.train_on_batch(x, y)
    for ref, got in zip(reference.weights, fused.weights, strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(ref),
                                   rtol=1e-4, atol=1e-5, err_msg=ref.path)
    np.testing.assert_allclose(fused.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    train_out = [keras.ops.convert_to_numpy(m(x, training=True)) for m in (reference, fused)]
    np.testing.assert_allclose(train_out[1], train_out[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs", [{}, {"center": False}, {"scale": False}], ids=["default", "no_center", "no_scale"])
def test_fused_matches_keras_channels_last(kwargs):
    check_equivalence(-1, **kwargs)


def test_fused_matches_keras_channels_first():
    check_equivalence(1)


def test_fused_matches_keras_on_torch():
    if importlib.util.find_spec("torch") is None:
        pytest.skip('torch is not installed (pip install -e ".[torch]")')
    code = ("from tests.vision.test_layers import check_equivalence as c; "
            "c(-1); c(1); c(-1, center=False); c(-1, scale=False); print('ok')")
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


def test_saved_model_roundtrip(tmp_path):
    keras.utils.set_random_seed(0)
    model = _net(FusedBatchNormalization, -1)
    x = np.random.default_rng(1).normal(size=(4, 6, 6, 3)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("bn"), FusedBatchNormalization)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_docstring_example():
    result = doctest.testmod(kmodels_vision.layers, extraglobs={"keras": keras})
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", ["dog_cat_cnn", "dog_cat_xception"])
def test_build_defaults_to_plain_keras_and_a_run_saves_fused_as_plain(name, tmp_path):
    from kmodels_vision.layers import portable_model

    import kmodels
    from kmodels.task import save_model

    kwargs = {"input_shape": (32, 32, 3)} | ({"filters": (8,), "stem_filters": 8} if name == "dog_cat_xception" else {})
    plain = kmodels.build(name, **kwargs)
    assert all(type(layer).__module__.startswith("keras.") for layer in plain.layers)
    assert portable_model(plain) is plain  # nothing to swap
    fused = kmodels.build(name, fused_batchnorm=True, num_classes=3, **kwargs)
    assert any(isinstance(layer, FusedBatchNormalization) for layer in fused.layers)
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    fused.fit(x, np.array([0, 1, 2, 1]), epochs=1, verbose=0)  # moving statistics move
    save_model(portable_model(fused), tmp_path / "m.keras")  # what finish_model hands the runner
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in loaded.layers)
    assert loaded.loss == "sparse_categorical_crossentropy"
    np.testing.assert_allclose(loaded.predict(x, verbose=0), fused.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_whitening_weights_whiten_the_patches_they_were_fitted_on():
    from kmodels_vision.layers import patch_whitening, whitening_weights

    rng = np.random.default_rng(0)
    smooth = rng.normal(size=(48, 12, 12, 3)).cumsum(axis=1).cumsum(axis=2)  # neighbouring pixels correlate
    images = (smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255
    inputs = keras.Input((12, 12, 3))
    model = keras.Model(inputs, patch_whitening(inputs))
    layer = model.get_layer("patch_whitening")
    assert not layer.trainable and layer.get_weights()[0].shape == (2, 2, 3, 24)
    conv = keras.Model(inputs, layer.output)  # before the ReLU
    layer.set_weights(list(whitening_weights(images, eps=1e-8)))  # fitted on 0-255 images, used on /255
    images = (images / 255).astype("float32")  # what the model's Rescaling hands the layer
    out = np.asarray(conv.predict(images, verbose=0))[:, :11, :11, :12].reshape(-1, 12)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(np.cov(out, rowvar=False), np.eye(12), atol=0.02)
    pair = np.asarray(conv.predict(images[:2], verbose=0))
    np.testing.assert_allclose(pair[..., 12:], -pair[..., :12],
                               rtol=1e-5, atol=1e-5)  # the second half: the negatives
    with pytest.raises(ValueError, match=r"shape \(4, 1, 1, 3\)"):
        whitening_weights(np.zeros((4, 1, 1, 3)))


@pytest.mark.slow
def test_a_run_fits_the_whitening_layer_on_its_training_images_and_saves_plain_keras(tmp_path):
    from kmodels_vision.synthetic import write_dog_cat

    import kmodels

    data = tmp_path / "photos"
    write_dog_cat(data, count=40, min_size=48, max_size=64)
    result = kmodels.run("dog_cat", data=data, out=tmp_path / "run", overrides={
        "images.image_size": [32, 32], "train.epochs": 1, "train.verbose": 0, "model.filters": [16],
        "model.stem_filters": 16, "model.whitening": True})
    loaded = keras.saving.load_model(result.run_dir / "model.keras", safe_mode=True)
    kernel = next(la for la in loaded._flatten_layers() if la.name == "patch_whitening").get_weights()[0]
    identity = kmodels.build("mini_xception", input_shape=(32, 32, 3), filters=(16,), stem_filters=16,
                             whitening=True).get_layer("patch_whitening").get_weights()[0]
    assert kernel.shape == identity.shape and not np.allclose(kernel, identity)  # fitted, and saved fitted
    assert all(type(la).__module__.startswith("keras.") for la in loaded._flatten_layers())


def test_blur_pool_is_frozen_and_aliases_less_than_strided_max_pooling():
    from kmodels_vision.layers import blur_pool

    inputs = keras.Input((32, 32, 4))
    pooled = keras.layers.MaxPooling2D(2, strides=1, padding="same")(inputs)
    blurred = keras.Model(inputs, blur_pool(pooled, name="blur"))
    strided = keras.Model(inputs, keras.layers.MaxPooling2D(2)(inputs))
    layer = blurred.get_layer("blur")
    assert not layer.trainable and not layer.trainable_weights
    np.testing.assert_allclose(layer.get_weights()[0][..., 0, 0].sum(), 1.0, rtol=1e-6)  # a blur keeps the mean
    x = np.random.default_rng(0).uniform(size=(8, 33, 33, 4)).astype("float32")
    a, b = x[:, :32, :32], x[:, 1:, 1:]  # the same images one pixel apart

    def change(model):  # how much a one-pixel shift moves the (interior of the) pooled map
        ya, yb = np.asarray(model(a)), np.asarray(model(b))
        return float(np.abs(ya[:, 2:-2, 2:-2] - yb[:, 2:-2, 2:-2]).mean())

    assert change(blurred) < 0.6 * change(strided)


@pytest.mark.parametrize("name", ["simple_cnn", "mini_xception"])
def test_blur_pool_models_are_plain_keras_and_downsample_alike(name, tmp_path):
    import kmodels

    kwargs = {"input_shape": (32, 32, 3), "filters": (8, 16)} | ({"stem_filters": 8} if name == "mini_xception" else {})
    plain, blurred = kmodels.build(name, **kwargs), kmodels.build(name, blur_pool=True, **kwargs)
    assert blurred.output_shape == plain.output_shape
    assert plain.count_params() < blurred.count_params()  # the frozen blur kernels
    assert len(blurred.trainable_weights) == len(plain.trainable_weights)
    assert sum(isinstance(la, keras.layers.DepthwiseConv2D) for la in blurred.layers) == \
        (2 if name == "simple_cnn" else 4)  # one per pool; mini_xception's shortcuts too
    portable_model(blurred).save(tmp_path / "m.keras")  # as a run saves it
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert all(type(la).__module__.startswith("keras.") for la in loaded.layers)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), blurred.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize(("size", "kernel", "strides", "padding", "bias"), [
    (9, 3, 2, "same", False),   # the blur: odd size, stride 2
    (8, 3, 2, "same", True),    # even size
    (7, 3, 1, "same", True),    # mini_xception's separable convolutions
    (10, 5, 3, "valid", False),
    (6, 2, 2, "same", False),   # an even kernel pads one more below and right, as XLA's and TensorFlow's "SAME"
])
def test_sliced_convolutions_are_keras_convolutions(size, kernel, strides, padding, bias, separable):
    """Outputs and input gradients of `SlicedDepthwiseConv2D` / `SlicedSeparableConv2D` equal Keras's layers
    with the same weights, and a run saves them as Keras's classes."""
    from kmodels_vision.depthwise import SlicedDepthwiseConv2D, SlicedSeparableConv2D, _sliced_applies

    rng = np.random.default_rng(size)
    x = rng.normal(size=(3, size, size + 1, 5)).astype("float32")
    args = {"kernel_size": kernel, "strides": strides, "padding": padding, "use_bias": bias, "activation": "relu"}
    sliced = SlicedSeparableConv2D(4, **args) if separable else SlicedDepthwiseConv2D(**args)
    keras_class = keras.layers.SeparableConv2D if separable else keras.layers.DepthwiseConv2D
    plain = keras_class.from_config(sliced.get_config())
    sliced.build(x.shape), plain.build(x.shape)
    weights = [rng.normal(size=w.shape).astype("float32") for w in sliced.get_weights()]
    sliced.set_weights(weights), plain.set_weights(weights)
    assert _sliced_applies(sliced, x) == (keras.backend.backend() == "jax")  # the sum of slices is what is compared on JAX
    np.testing.assert_allclose(_output(sliced, x), _output(plain, x), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(_input_gradient(sliced, x), _input_gradient(plain, x), rtol=1e-4, atol=1e-4)
    assert type(portable_model(keras.Sequential([keras.Input(x.shape[1:]), sliced])).layers[0]) is keras_class


def _output(layer, x):
    if keras.backend.backend() == "jax":  # one compiled program, not one per operation of every slice, as eagerly
        import jax

        return np.asarray(jax.jit(layer)(x))
    return keras.ops.convert_to_numpy(layer(x))


def _input_gradient(layer, x):
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return np.asarray(jax.jit(jax.grad(lambda v: (layer(v) ** 2).sum()))(x))
    if backend == "tensorflow":
        import tensorflow as tf

        v = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(v)
            loss = tf.reduce_sum(layer(v) ** 2)
        return tape.gradient(loss, v).numpy()
    import torch

    v = torch.tensor(x, requires_grad=True)
    (layer(v) ** 2).sum().backward()
    return v.grad.numpy()


def test_squeeze_excite_gates_each_block_with_plain_keras_layers(tmp_path):
    """`mini_xception(squeeze_excite=r)`: per block a bottleneck of max(4, r x filters) units and a sigmoid gate
    per channel, multiplied into the branch; saved and loaded as plain Keras; ratios outside [0, 1] refused."""
    import kmodels

    kwargs = {"input_shape": (32, 32, 3), "filters": (8, 32), "stem_filters": 8}
    plain, gated = kmodels.build("mini_xception", **kwargs), kmodels.build("mini_xception", squeeze_excite=0.25, **kwargs)
    assert gated.output_shape == plain.output_shape
    assert [la.units for la in gated.layers if isinstance(la, keras.layers.Dense)][:4] == [4, 8, 8, 32]
    assert sum(isinstance(la, keras.layers.Multiply) for la in gated.layers) == 2
    assert not any(isinstance(la, keras.layers.Multiply) for la in plain.layers)
    gated.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), gated.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="squeeze_excite=1.5"):
        kmodels.build("mini_xception", squeeze_excite=1.5, **kwargs)
