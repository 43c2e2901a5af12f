"""Keras layers of kmodels' own, where Keras's cost a small model more than its work.

`HashDropout` is `keras.layers.Dropout` with its mask drawn, on JAX, from a counter-based hash instead
of the backend's random generator. JAX's generator is Threefry: two dropout layers of a
64-32 table network doubled the XLA compilation of its training step (about 0.3 s to 0.6 s on
2 CPU cores) and slowed each later epoch, for masks whose statistics a 32-bit integer hash
(MurmurHash3's finalizer) gives as well. Inference is untouched (dropout is then the identity), and
the layer keeps Dropout's config and names it as the class it is saved as (`saved_as`).

`portable_model(model)` rebuilds every layer that declares `saved_as` as that Keras class, weights
and compile settings kept: the tasks' `finish_model` hands it what they save, so `model.keras`
loads in plain Keras, without kmodels, on any backend.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from kmodels.backend import tensorflow_unimported
from kmodels.building import all_layers
from kmodels.initializers import _HOST_DTYPES, _INITIALIZER_ATTRS, _placed, host_initialized

#: MurmurHash3's 32-bit finalizer constants, and the golden-ratio step that spreads the counter.
_M1, _M2, _GOLDEN = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35), np.uint32(0x9E3779B9)
#: the top 24 bits of a hash, scaled to [0, 1): exact in float32
_UNIT = 1.0 / (1 << 24)
#: where the hash replaces the backend's generator. On TensorFlow (no XLA on a CPU) its dozen element-wise
#: kernels made tracing the step ~0.2 s slower than one stateless random kernel, and the epochs no faster.
_HASH_BACKENDS = ("jax",)


def _u32(value: Any) -> Any:
    return keras.ops.convert_to_tensor(np.asarray(value, dtype=np.uint32))


def _fmix(h: Any) -> Any:
    """MurmurHash3's finalizer on a uint32 tensor: every input bit flips each output bit with probability ~1/2."""
    ops = keras.ops
    h = ops.bitwise_xor(h, ops.right_shift(h, _u32(16)))
    h = ops.multiply(h, _u32(_M1))
    h = ops.bitwise_xor(h, ops.right_shift(h, _u32(13)))
    h = ops.multiply(h, _u32(_M2))
    return ops.bitwise_xor(h, ops.right_shift(h, _u32(16)))


def hash_uniform(count: Any, seed: Any) -> Any:
    """`count` float32 numbers in [0, 1) from a hash of their index and a two-integer `seed`.

    The same `seed` gives the same numbers on every backend (`tests/core/test_layers.py` checks
    them against a NumPy reference); a seed that differs in either integer gives unrelated ones.

    Example:
        >>> import numpy as np
        >>> u = np.asarray(hash_uniform(100_000, np.array([0, 7])))
        >>> bool(0.0 <= u.min() and u.max() < 1.0), round(float(u.mean()), 2)
        (True, 0.5)
    """
    ops = keras.ops
    seed = ops.cast(seed, "uint32")
    key = _fmix(ops.bitwise_xor(ops.multiply(seed[0], _u32(_GOLDEN)), _fmix(ops.add(seed[1], _u32(_M1)))))
    index = ops.cast(ops.arange(count, dtype="int32"), "uint32")
    bits = _fmix(ops.add(ops.multiply(index, _u32(_GOLDEN)), key))
    return ops.multiply(ops.cast(ops.cast(ops.right_shift(bits, _u32(8)), "int32"), "float32"), _UNIT)


@keras.saving.register_keras_serializable(package="kmodels")
class HashDropout(keras.layers.Dropout):
    """Dropout whose mask comes from a hash of each unit's index and a per-step seed.

    The same contract as `keras.layers.Dropout` (each unit zeroed with probability `rate` in
    training, the others scaled by `1 / (1 - rate)`; the identity at inference; `seed` makes the
    masks repeatable), and its config. The seed is Keras's `SeedGenerator`, which advances every
    training step, as Dropout's does. On backends other than JAX, or with a `noise_shape`, it is
    Keras's Dropout.

    Example:
        >>> import numpy as np
        >>> layer = HashDropout(0.25, seed=1)
        >>> x = np.ones((64, 100), "float32")
        >>> y = np.asarray(layer(x, training=True))
        >>> bool(abs((y == 0).mean() - 0.25) < 0.02), float(y.max())
        (True, 1.3333333730697632)
        >>> bool((np.asarray(layer(x, training=False)) == x).all())
        True
    """

    #: a speed-only layer: what a run saves holds `keras.layers.Dropout` instead (`portable_model`)
    saved_as = keras.layers.Dropout

    def call(self, inputs: Any, training: bool = False) -> Any:
        if (not training or not 0.0 < self.rate < 1.0 or self.noise_shape is not None
                or keras.backend.backend() not in _HASH_BACKENDS):
            return super().call(inputs, training=training)
        ops = keras.ops
        shape = ops.shape(inputs)
        flat = ops.reshape(inputs, (-1,))
        uniform = hash_uniform(ops.shape(flat)[0], self.seed_generator.next())
        keep = 1.0 - self.rate
        out = ops.where(ops.greater_equal(uniform, self.rate), ops.divide(flat, keep), ops.zeros_like(flat))
        return ops.reshape(out, shape)


@keras.saving.register_keras_serializable(package="kmodels")
class BroadcastDepthwiseConv1D(keras.layers.DepthwiseConv1D):
    """`keras.layers.DepthwiseConv1D` of kernel size 1 computed on JAX as a broadcast product.

    With a kernel of size 1 each output channel `c * depth_multiplier + m` is input channel
    `c` times one weight (plus a bias): an outer product. XLA's CPU backend runs the
    grouped convolution Keras asks for instead 9-27x slower (161 us against 18 us for a batch
    of 256 rows of 15 features into 16 bins each; 3.8 ms against 0.14 ms for 8,192 rows):
    the `mlp`'s piecewise-linear encoding is this layer. Other kernel sizes, strides,
    dilations, channels-first data and the other backends run Keras's call. Config and
    weights are `DepthwiseConv1D`'s, and a run saves it as that class (`saved_as`).

    Example:
        >>> import numpy as np
        >>> layer = BroadcastDepthwiseConv1D(1, depth_multiplier=3)
        >>> x = np.random.default_rng(0).normal(size=(4, 1, 5)).astype("float32")
        >>> y = keras.ops.convert_to_numpy(layer(x))
        >>> plain = keras.layers.DepthwiseConv1D.from_config(layer.get_config())
        >>> _ = plain(x); plain.set_weights(layer.get_weights())
        >>> y.shape, bool(np.allclose(y, keras.ops.convert_to_numpy(plain(x)), atol=1e-6))
        ((4, 1, 15), True)
    """

    #: a speed-only layer: what a run saves holds `keras.layers.DepthwiseConv1D` instead (`portable_model`)
    saved_as = keras.layers.DepthwiseConv1D

    def call(self, inputs: Any) -> Any:
        if not self._broadcast(inputs):
            return super().call(inputs)
        ops = keras.ops
        kernel = ops.cast(self.kernel[0], inputs.dtype)  # (channels, depth_multiplier)
        out = ops.multiply(ops.expand_dims(inputs, -1), kernel)
        out = ops.reshape(out, (-1, inputs.shape[1], inputs.shape[2] * self.depth_multiplier))
        if self.use_bias:
            out = ops.add(out, ops.cast(self.bias, out.dtype))
        return self.activation(out) if self.activation is not None else out

    def _broadcast(self, inputs: Any) -> bool:
        """Whether the broadcast form applies (else Keras's own call)."""
        return (keras.backend.backend() == "jax" and tuple(self.kernel_size) == (1,) and tuple(self.strides) == (1,)
                and tuple(self.dilation_rate) == (1,) and self.data_format == "channels_last"
                and len(inputs.shape) == 3 and inputs.shape[1] is not None)


class _HostZeros(keras.initializers.Initializer):
    """Zeros made with NumPy: the placeholder weights of `portable_model`'s clone, which its `set_weights`
    replaces at once. Keras's own initializers drew them on the device, and on JAX each weight shape compiled
    a program (`jit(_uniform)`, about 0.2 s each cold on 2 CPU cores: four for the default table network)."""

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
        if dtype not in _HOST_DTYPES:
            return keras.ops.zeros(shape, dtype=dtype)
        return _placed(np.zeros(tuple(int(d) for d in shape), dtype=dtype))


def _zero_initialized(node: Any) -> Any:
    """A serialized model whose built-in layers' initializers are `_HostZeros`."""
    if isinstance(node, dict):
        return {k: ({"module": None, "class_name": "_HostZeros", "config": {}, "registered_name": "_HostZeros"}
                    if k in _INITIALIZER_ATTRS and isinstance(v, (dict, str)) else _zero_initialized(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_zero_initialized(v) for v in node]
    return node


def portable_model(model: Any) -> Any:
    """`model` with every layer whose class names a `saved_as` Keras class rebuilt as that class.

    A layer that only computes faster (`HashDropout` here, the vision plugin's
    `FusedBatchNormalization`, whose config and weights are those of Keras's own layer) declares
    `saved_as`; the tasks' `finish_model` returns this, so what a run saves loads in plain Keras,
    without kmodels, on any backend. The weights are copied and the compile settings kept; a model
    without such layers is returned as is.

    Example:
        >>> import kmodels
        >>> net = kmodels.build("mlp", units=(8,), dropout=0.1)
        >>> [type(layer).__name__ for layer in portable_model(net).layers if "dropout" in layer.name]
        ['Dropout']
        >>> portable_model(kmodels.build("mlp", units=(8,))) is not None
        True
    """
    swaps: dict[str, type] = {}
    for layer in all_layers(model):
        target = getattr(type(layer), "saved_as", None)
        if target is not None:
            swaps[keras.saving.get_registered_name(type(layer))] = target
    if not swaps:
        return model

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: rewrite(v) for k, v in node.items()}
            target = swaps.get(node.get("registered_name")) if isinstance(node.get("registered_name"), str) else None
            if target is not None and "class_name" in node:
                out["module"], out["class_name"], out["registered_name"] = "keras.layers", target.__name__, None
            return out
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    with tensorflow_unimported(), host_initialized():  # host_initialized: the clone's compile (trackers, optimizer slots)
        config = _zero_initialized(rewrite(keras.saving.serialize_keras_object(model)))
        clone = keras.saving.deserialize_keras_object(config, safe_mode=True, custom_objects={"_HostZeros": _HostZeros})
        for source, layer in zip(all_layers(model), all_layers(clone), strict=True):
            for name in _INITIALIZER_ATTRS:  # the layers' own initializers back, for their config
                if getattr(source, name, None) is not None:
                    setattr(layer, name, getattr(source, name))
        clone.set_weights(model.get_weights())
        compile_config = model.get_compile_config() if model.compiled else None
        if compile_config:
            clone.compile_from_config(compile_config)
    return clone
