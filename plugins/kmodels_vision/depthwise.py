"""Depthwise convolutions as sums of shifted slices, where XLA's CPU grouped convolutions are slow.

XLA's CPU backend computes a grouped convolution (`feature_group_count` = channels: Keras's
`DepthwiseConv2D`, and the depthwise half of `SeparableConv2D`) far below its speed for dense
ones, the backward pass most. A depthwise convolution is also the sum, over its kernel's taps,
of the input shifted and strided to that tap, times one weight per channel: `SlicedDepthwiseConv2D`
and `SlicedSeparableConv2D` compute that sum on JAX's CPU backend and are Keras's layers
everywhere else. The same function (tested against Keras's layers for outputs and input
gradients); config and weights are Keras's, and a run saves Keras's classes (`saved_as`,
`portable_model`). `kmodels bench depthwise` times the two forms.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["SlicedDepthwiseConv2D", "SlicedSeparableConv2D"]


def _sliced_applies(layer: Any, inputs: Any) -> bool:
    """Whether `_depthwise_sum` computes `layer`'s depthwise step (JAX, channels last, no dilation, multiplier 1)."""
    return (keras.backend.backend() == "jax" and _jax_on_cpu() and layer.data_format == "channels_last"
            and layer.depth_multiplier == 1 and tuple(layer.dilation_rate) == (1, 1)
            and len(inputs.shape) == 4 and None not in inputs.shape[1:3])


def _jax_on_cpu() -> bool:
    """JAX computes on its CPU backend (the slow grouped convolutions measured; GPUs have cuDNN's)."""
    import jax

    return jax.default_backend() == "cpu"


def _bias_and_activation(layer: Any, out: Any) -> Any:
    """The end of a Keras convolution's call: its bias, then its activation."""
    if layer.use_bias:
        out = out + ops.cast(layer.bias, out.dtype)
    return layer.activation(out) if layer.activation is not None else out


def _depthwise_sum(inputs: Any, kernel: Any, strides: tuple[int, int], padding: str) -> Any:
    """A depthwise convolution (kernel `(kh, kw, channels, 1)`) as the sum of its shifted, strided slices.

    "same" pads as XLA and TensorFlow do: the odd pixel of padding goes below and right.
    """
    kh, kw = kernel.shape[:2]
    sh, sw = strides
    _, h, w, _ = inputs.shape
    if padding == "same":
        oh, ow = -(-h // sh), -(-w // sw)
        ph, pw = max((oh - 1) * sh + kh - h, 0), max((ow - 1) * sw + kw - w, 0)
        inputs = ops.pad(inputs, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    kernel = ops.cast(kernel, inputs.dtype)
    out = None
    for i in range(kh):
        for j in range(kw):
            tap = inputs[:, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw, :] * kernel[i, j, :, 0]
            out = tap if out is None else out + tap
    return out


@keras.saving.register_keras_serializable(package="kmodels")
class SlicedDepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """`keras.layers.DepthwiseConv2D` computed on JAX as a sum of shifted, strided slices of the input.

    XLA's CPU backend runs a grouped convolution (`feature_group_count` = channels) far below
    its speed for dense ones, the backward pass most: a frozen 3 x 3 depthwise blur at stride 2
    took 110-740 ms a step forward and backward on batches of 32 images of 24-72 px, against
    3-46 ms for the same function written as its nine slices, each times one tap per channel
    (`benchmarks/README.md`). This layer computes exactly that sum on JAX, for channels-last
    inputs, `depth_multiplier = 1` and no dilation, on JAX's CPU backend; every other case, GPUs,
    and the other backends (TensorFlow's depthwise kernel was the fastest form measured there)
    run Keras's own call.
    Config and weights are `DepthwiseConv2D`'s, and a run saves it as that class (`saved_as`).

    Example:
        >>> import numpy as np
        >>> layer = SlicedDepthwiseConv2D(3, strides=2, padding="same")
        >>> x = np.random.default_rng(0).normal(size=(2, 9, 9, 4)).astype("float32")
        >>> y = keras.ops.convert_to_numpy(layer(x))
        >>> plain = keras.layers.DepthwiseConv2D.from_config(layer.get_config())
        >>> _ = plain(x); plain.set_weights(layer.get_weights())
        >>> y.shape, bool(np.allclose(y, keras.ops.convert_to_numpy(plain(x)), atol=1e-5))
        ((2, 5, 5, 4), True)
    """

    #: the plain Keras class a run saves this layer as (same config and weights)
    saved_as = keras.layers.DepthwiseConv2D

    def call(self, inputs):
        if not _sliced_applies(self, inputs):
            return super().call(inputs)
        return _bias_and_activation(self, _depthwise_sum(inputs, self.kernel, self.strides, self.padding))


@keras.saving.register_keras_serializable(package="kmodels")
class SlicedSeparableConv2D(keras.layers.SeparableConv2D):
    """`keras.layers.SeparableConv2D` whose depthwise step is `SlicedDepthwiseConv2D`'s sum of slices on JAX.

    The pointwise step is a matrix product over the channels. On other backends and in the
    cases `SlicedDepthwiseConv2D` leaves to Keras, this is Keras's own call. Config and weights
    are `SeparableConv2D`'s, and a run saves it as that class (`saved_as`). `mini_xception`
    builds its separable convolutions from it with `sliced_depthwise=True`.

    Example:
        >>> import numpy as np
        >>> layer = SlicedSeparableConv2D(6, 3, padding="same", use_bias=False)
        >>> x = np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype("float32")
        >>> y = keras.ops.convert_to_numpy(layer(x))
        >>> plain = keras.layers.SeparableConv2D.from_config(layer.get_config())
        >>> _ = plain(x); plain.set_weights(layer.get_weights())
        >>> y.shape, bool(np.allclose(y, keras.ops.convert_to_numpy(plain(x)), atol=1e-4))
        ((2, 8, 8, 6), True)
    """

    #: the plain Keras class a run saves this layer as (same config and weights)
    saved_as = keras.layers.SeparableConv2D

    def call(self, inputs):
        if not _sliced_applies(self, inputs):
            return super().call(inputs)
        out = _depthwise_sum(inputs, self.depthwise_kernel, self.strides, self.padding)
        return _bias_and_activation(self, ops.matmul(out, ops.cast(self.pointwise_kernel[0, 0], out.dtype)))
