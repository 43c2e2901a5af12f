"""`kmodels.layers`: the hash behind `HashDropout` against a NumPy reference, its statistics, and the layer's
contract (Keras Dropout's: rate, scale, identity at inference, repeatable seeds, saved and loaded)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kmodels.layers import HashDropout, hash_uniform
from kmodels.task.inference import load_model

M1, M2, GOLDEN = 0x85EBCA6B, 0xC2B2AE35, 0x9E3779B9


def _fmix_ref(h: np.ndarray) -> np.ndarray:
    h = h.astype(np.uint64) & 0xFFFFFFFF
    h ^= h >> 16
    h = (h * M1) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * M2) & 0xFFFFFFFF
    return h ^ (h >> 16)


def _uniform_ref(count: int, seed: tuple[int, int]) -> np.ndarray:
    """MurmurHash3's finalizer written out in 64-bit NumPy integers (masked to 32 bits), independently of the layer."""
    s0, s1 = (np.uint64(s) & np.uint64(0xFFFFFFFF) for s in seed)
    inner = _fmix_ref(np.array([(s1 + M1) & 0xFFFFFFFF], np.uint64))
    key = _fmix_ref(((s0 * GOLDEN) & 0xFFFFFFFF) ^ inner)
    bits = _fmix_ref((np.arange(count, dtype=np.uint64) * GOLDEN + key) & 0xFFFFFFFF)
    return ((bits >> 8).astype(np.float64) / (1 << 24)).astype(np.float32)


@pytest.mark.parametrize("seed", [(0, 0), (3, 1), (123456, 4_000_000_000)])
def test_hash_uniform_matches_numpy_reference(seed):
    got = np.asarray(keras.ops.convert_to_numpy(hash_uniform(5000, np.array(seed, np.uint32))))
    np.testing.assert_array_equal(got, _uniform_ref(5000, seed))


def test_hash_uniform_is_uniform_and_seeds_are_unrelated():
    n = 200_000
    u = np.asarray(keras.ops.convert_to_numpy(hash_uniform(n, np.array([0, 11], np.uint32))))
    assert 0.0 <= u.min() and u.max() < 1.0
    counts = np.bincount((u * 20).astype(int), minlength=20)
    chi2 = float(((counts - n / 20) ** 2 / (n / 20)).sum())
    assert chi2 < 50.0, f"20 bins, chi2 {chi2:.1f} (the 99.99% quantile of chi2(19) is ~47)"
    # the next step's seed (what SeedGenerator gives: the second integer + 1) and another first integer
    for other in ([0, 12], [1, 11]):
        v = np.asarray(keras.ops.convert_to_numpy(hash_uniform(n, np.array(other, np.uint32))))
        assert abs(np.corrcoef(u, v)[0, 1]) < 0.01
        both = ((u >= 0.3) & (v >= 0.3)).mean()  # two masks at rate 0.3 keep the same unit as often as chance
        assert abs(both - 0.49) < 0.005
    # neighbouring units are unrelated too
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01


@pytest.mark.parametrize("rate", [0.05, 0.5])
def test_hash_dropout_drops_at_its_rate_and_scales_the_rest(rate):
    x = np.full((512, 64), 2.0, np.float32)
    layer = HashDropout(rate, seed=3)
    y = np.asarray(keras.ops.convert_to_numpy(layer(x, training=True)))
    assert y.shape == x.shape
    dropped = (y == 0).mean()
    assert abs(dropped - rate) < 4 * np.sqrt(rate * (1 - rate) / x.size) + 1e-3
    np.testing.assert_allclose(y[y != 0], 2.0 / (1 - rate), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(keras.ops.convert_to_numpy(layer(x, training=False))), x)
    np.testing.assert_array_equal(np.asarray(keras.ops.convert_to_numpy(layer(x))), x)  # inference by default


def test_hash_dropout_masks_change_every_call_and_repeat_with_the_seed():
    x = np.ones((64, 32), np.float32)

    def masks(layer, calls=3):
        return [np.asarray(keras.ops.convert_to_numpy(layer(x, training=True))) == 0 for _ in range(calls)]

    first, again = masks(HashDropout(0.5, seed=7)), masks(HashDropout(0.5, seed=7))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not (first[0] == first[1]).all() and not (first[1] == first[2]).all()
    assert not (first[0] == masks(HashDropout(0.5, seed=8), 1)[0]).all()


def test_hash_dropout_keeps_dropouts_config_and_shapes():
    layer = HashDropout(0.2, seed=5, name="d")
    config = layer.get_config()
    assert {k: config[k] for k in ("rate", "seed", "noise_shape", "name")} == {
        "rate": 0.2, "seed": 5, "noise_shape": None, "name": "d"}
    assert isinstance(layer, keras.layers.Dropout)
    x = np.ones((4, 3, 5), np.float32)  # any rank
    assert tuple(keras.ops.shape(layer(x, training=True))) == (4, 3, 5)
    with_noise_shape = HashDropout(0.5, noise_shape=(4, 1, 5), seed=1)  # Keras's own dropout then
    y = np.asarray(keras.ops.convert_to_numpy(with_noise_shape(x, training=True)))
    assert (y == y[:, :1, :]).all()


def test_a_model_with_hash_dropout_trains_saves_and_loads(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    inputs = keras.Input((6,))
    h = HashDropout(0.1, name="drop")(keras.layers.Dense(16, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h))
    model.compile("adam", "binary_crossentropy")
    start = np.asarray(keras.ops.convert_to_numpy(model.get_layer("drop").seed_generator.state.value)).astype(int)
    first = model.fit(x, y, batch_size=64, epochs=8, verbose=0).history["loss"]
    assert np.isfinite(first).all() and first[-1] < first[0]
    state = np.asarray(keras.ops.convert_to_numpy(model.get_layer("drop").seed_generator.state.value)).astype(int)
    assert (state - start).tolist() == [0, 8 * 4]  # a new seed for every compiled training step, none at inference
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = load_model(path)  # safe_mode: a registered class, no code
    assert type(loaded.get_layer("drop")) is HashDropout
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.parametrize(("kernel", "bias", "length"), [(1, False, 1), (1, True, 3), (3, True, 5)])
def test_broadcast_depthwise_conv_is_keras_depthwise_conv(kernel, bias, length):
    """`BroadcastDepthwiseConv1D` computes Keras's `DepthwiseConv1D` (the outer product on JAX at kernel size 1,
    Keras's call otherwise) with the same weights, and a run saves it as Keras's class."""
    from kmodels.layers import BroadcastDepthwiseConv1D, portable_model

    rng = np.random.default_rng(kernel + length)
    x = rng.normal(size=(6, length, 4)).astype("float32")
    layer = BroadcastDepthwiseConv1D(kernel, depth_multiplier=3, use_bias=bias, activation="relu")
    plain = keras.layers.DepthwiseConv1D.from_config(layer.get_config())
    layer.build(x.shape), plain.build(x.shape)
    weights = [rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()]
    layer.set_weights(weights), plain.set_weights(weights)
    assert layer._broadcast(x) == (kernel == 1 and keras.backend.backend() == "jax")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), keras.ops.convert_to_numpy(plain(x)),
                               rtol=1e-5, atol=1e-6)
    saved = portable_model(keras.Sequential([keras.Input(x.shape[1:]), layer]))
    assert type(saved.layers[0]) is keras.layers.DepthwiseConv1D
