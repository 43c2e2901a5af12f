"""Layers kmodels' models are built from, where Keras's own layer leaves speed on the table.

`FusedBatchNormalization` is `keras.layers.BatchNormalization` with the training
step computed by the backend's own fused kernel:

- TensorFlow: `FusedBatchNormV3` (oneDNN on CPU, cuDNN on GPU), NHWC or NCHW;
- torch: `torch.native_batch_norm` (one forward and one backward kernel; the
  channels-last case runs on a permuted view, no copy);
- JAX: Keras's formula as is (XLA fuses the elementwise ops itself).

Keras 3 builds training-mode BatchNorm from generic ops (mean, variance,
subtract, multiply, ...), each a full pass over the activation forward and
again backward; on the torch backend that is most of the step. The fused layer
computes the same function: outputs, gradients and moving statistics match
Keras's layer (tested on every backend), the config and weights are the same,
so a model can switch between them by rebuilding and `set_weights`.
Inference, masks, renorm, `synchronized=True` and inputs that are not rank 4
take Keras's own path.

A run saves its model with this layer turned back into
`keras.layers.BatchNormalization` (`saved_as`, see `kmodels.task.portable_model`),
so `model.keras` loads in plain Keras. A model saved directly with `model.save`
records it as `kmodels>FusedBatchNormalization`; loading that needs
`import kmodels_vision.layers` first.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["FusedBatchNormalization"]


@keras.saving.register_keras_serializable(package="kmodels")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose training step runs the backend's fused kernel.

    Takes exactly the arguments of `keras.layers.BatchNormalization`.

    Example:
        >>> import numpy as np
        >>> from kmodels_vision.layers import FusedBatchNormalization
        >>> layer = FusedBatchNormalization(momentum=0.9)
        >>> x = np.random.default_rng(0).normal(2.0, 3.0, (8, 4, 4, 2)).astype("float32")
        >>> y = keras.ops.convert_to_numpy(layer(x, training=True))
        >>> bool(abs(y.mean()) < 1e-4), y.shape
        (True, (8, 4, 4, 2))
    """

    #: the plain Keras class a run saves this layer as (same config and weights)
    saved_as = keras.layers.BatchNormalization

    def call(self, inputs, training=None, mask=None):
        axis = self._fused_axis(inputs, training, mask)
        if axis is None:
            return super().call(inputs, training=training, mask=mask)
        dtype = keras.backend.result_type(inputs.dtype, "float32")  # statistics in float32, as Keras does
        x = ops.cast(inputs, dtype)
        channels = x.shape[axis]
        gamma = ops.cast(self.gamma, dtype) if self.scale else ops.ones((channels,), dtype)
        beta = ops.cast(self.beta, dtype) if self.center else ops.zeros((channels,), dtype)
        if keras.backend.backend() == "tensorflow":
            outputs, mean, variance = _tensorflow_train(x, gamma, beta, self.epsilon, axis)
        else:
            outputs, mean, variance = _torch_train(x, gamma, beta, self.epsilon, axis)
        m = self.momentum
        self.moving_mean.assign(ops.cast(self.moving_mean, dtype) * m + mean * (1.0 - m))
        self.moving_variance.assign(ops.cast(self.moving_variance, dtype) * m + variance * (1.0 - m))
        return ops.cast(outputs, self.compute_dtype)

    def _fused_axis(self, inputs, training, mask) -> int | None:
        """The channel axis (0-3) when the fused kernel applies, else None."""
        if not (training and self.trainable) or mask is not None or self.renorm or self.synchronized:
            return None
        if len(inputs.shape) != 4 or not isinstance(self.axis, int):
            return None
        axis = self.axis % 4
        return axis if axis in (1, 3) and keras.backend.backend() in ("tensorflow", "torch") else None


def _tensorflow_train(x, gamma, beta, epsilon, axis):
    import tensorflow as tf

    outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
        x, gamma, beta, epsilon=epsilon, data_format="NHWC" if axis == 3 else "NCHW", is_training=True)
    # The kernel returns the Bessel-corrected variance; Keras's moving variance uses the population one.
    shape = tf.shape(x)
    n = tf.cast(tf.size(x) // shape[axis], variance.dtype)
    return outputs, mean, variance * tf.maximum(n - 1.0, 0.0) / n


def _torch_train(x, gamma, beta, epsilon, axis):
    import torch

    if axis == 3:  # NHWC data is an NCHW view in channels-last memory: no copy
        x = x.permute(0, 3, 1, 2)
    outputs, mean, invstd = torch.native_batch_norm(x, gamma, beta, None, None, True, 0.0, epsilon)
    if axis == 3:
        outputs = outputs.permute(0, 2, 3, 1)
    invstd = invstd.detach()
    return outputs, mean.detach(), 1.0 / (invstd * invstd) - epsilon
