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
`keras.layers.BatchNormalization` (`saved_as`, see `portable_model` below),
so `model.keras` loads in plain Keras. A model saved directly with `model.save`
records it as `kmodels>FusedBatchNormalization`; loading that needs
`import kmodels_vision.layers` first.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kmodels.api import portable_model
from kmodels_vision.depthwise import SlicedDepthwiseConv2D, SlicedSeparableConv2D

__all__ = ["FusedBatchNormalization", "RandomAffineAugment", "SlicedDepthwiseConv2D", "SlicedSeparableConv2D",
           "patch_whitening", "portable_model", "whitening_weights"]

#: The name of the frozen patch-whitening convolution (`patch_whitening`); a task run fits it (`whitening_weights`).
WHITENING = "patch_whitening"


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


@keras.saving.register_keras_serializable(package="kmodels")
class RandomAffineAugment(keras.layers.Layer):
    """Random flip, rotation, zoom and shift of a batch of images in one bilinear warp, on the device.

    The same transform as the host pipeline's `augment_rgb` (one resampling pass,
    the flip folded into the warp), drawn per image from the layer's seed
    generator and applied with `keras.ops.image.affine_transform`: backend-neutral,
    run inside the compiled training step, so the host only slices arrays. The
    corners the warp uncovers are filled by reflection. An identity outside
    training. kmodels puts it in front of the model for training and removes it
    before `model.keras` is saved.

    Args:
        flip: probability of a horizontal flip.
        rotation: maximum rotation in degrees (uniform in ±rotation).
        zoom: maximum zoom fraction (scale uniform in [1 - zoom, 1 + zoom]).
        shift: maximum translation, a fraction of the width and height.
        seed: seeds the per-image draws.
        cutout: after the warp, one square of `cutout` x the height by `cutout` x the width, centred at
            a uniformly drawn pixel and cut off at the edges, takes the image's mean colour (cutout,
            DeVries and Taylor 2017); 0 (default) turns it off.
        color_jitter: after the warp, before the cutout, each image's brightness, contrast and saturation
            scaled by three factors drawn uniformly in [1 - color_jitter, 1 + color_jitter]
            (`kmodels_vision.pipeline.jitter_colors` is the same on the host); 0 (default) turns it off.
        grayscale: after the colour jitter, before the cutout, the probability that an image is turned
            grey (each pixel's channels set to their mean, as the jitter's saturation does); 0 (default)
            turns it off.

    Example:
        >>> import numpy as np
        >>> layer = RandomAffineAugment(flip=1.0, rotation=0.0, zoom=0.0, shift=0.0, seed=0)
        >>> x = np.arange(2 * 4 * 5 * 3, dtype="float32").reshape(2, 4, 5, 3)
        >>> bool(np.allclose(np.asarray(layer(x, training=True)), x[:, :, ::-1]))
        True
        >>> bool(np.array_equal(np.asarray(layer(x)), x))
        True
    """

    def __init__(self, flip: float = 0.5, rotation: float = 10.0, zoom: float = 0.1, shift: float = 0.0,
                 seed: int | None = None, cutout: float = 0.0, color_jitter: float = 0.0, grayscale: float = 0.0,
                 **kwargs) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not 0.0 <= cutout < 1.0:
            raise ValueError(f"Received cutout={cutout}. Expected a fraction of the side in [0, 1) (0: off).")
        if not 0.0 <= color_jitter < 1.0:
            raise ValueError(f"Received color_jitter={color_jitter}. Expected a factor range in [0, 1) (0: off).")
        if not 0.0 <= grayscale <= 1.0:
            raise ValueError(f"Received grayscale={grayscale}. Expected a probability in [0, 1] (0: off).")
        self.grayscale = float(grayscale)
        self.flip, self.rotation, self.zoom, self.shift, self.seed = flip, rotation, zoom, shift, seed
        self.cutout, self.color_jitter = float(cutout), float(color_jitter)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, images, training=None):
        if not training:
            return images
        n = ops.shape(images)[0]
        h, w = images.shape[1], images.shape[2]
        u = keras.random.uniform((n, 5), seed=self.seed_generator)
        flip = ops.cast(u[:, 0] < self.flip, "float32")
        angle = (2.0 * u[:, 1] - 1.0) * (self.rotation * 3.141592653589793 / 180.0)
        scale = 1.0 + (2.0 * u[:, 2] - 1.0) * self.zoom
        dx = (2.0 * u[:, 3] - 1.0) * (self.shift * w)
        dy = (2.0 * u[:, 4] - 1.0) * (self.shift * h)
        cos, sin = ops.cos(angle) / scale, ops.sin(angle) / scale
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0  # pixel centres at integer coordinates
        # output (x, y) -> input (a0 x + a1 y + a2, b0 x + b1 y + b2): rotate and scale about the centre, shift
        a0, a1, a2 = cos, sin, cx - cos * cx - sin * cy + dx
        b0, b1, b2 = -sin, cos, cy + sin * cx - cos * cy + dy
        sign = 1.0 - 2.0 * flip  # the flip mirrors the input x: x -> (w - 1) - x
        a0, a1, a2 = sign * a0, sign * a1, flip * (w - 1) + sign * a2
        zeros = ops.zeros_like(a0)
        transform = ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        out = ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="reflect",
                                         data_format="channels_last")
        if self.color_jitter:  # drawn only when asked for, so runs without it keep their random stream
            out = self._jitter(out, n)
        if self.grayscale:  # likewise
            grey = ops.cast(keras.random.uniform((n,), seed=self.seed_generator) < self.grayscale, out.dtype)
            mask = grey[:, None, None, None]
            out = out * (1.0 - mask) + ops.mean(out, axis=3, keepdims=True) * mask
        return self._cut(out, n, h, w) if self.cutout else out

    def _jitter(self, images, n):
        """`color_jitter`: brightness, contrast (about the image's mean value), then saturation (about each
        pixel's grey, the mean of its channels), clipped to [0, 255]; `jitter_colors` in NumPy."""
        factors = 1.0 + (2.0 * keras.random.uniform((n, 3), seed=self.seed_generator) - 1.0) * self.color_jitter
        out = images * factors[:, 0, None, None, None]
        mean = ops.mean(out, axis=(1, 2, 3), keepdims=True)
        out = (out - mean) * factors[:, 1, None, None, None] + mean
        grey = ops.mean(out, axis=3, keepdims=True)
        return ops.clip((out - grey) * factors[:, 2, None, None, None] + grey, 0.0, 255.0)

    def _cut(self, images, n, h: int, w: int):
        """`cutout`: per image, the pixels within half the square's side of a drawn centre take its mean colour."""
        centre = keras.random.uniform((n, 2), seed=self.seed_generator)
        cy = ops.floor(centre[:, 0] * h)[:, None, None]
        cx = ops.floor(centre[:, 1] * w)[:, None, None]
        rows = ops.arange(h, dtype="float32")[None, :, None]
        cols = ops.arange(w, dtype="float32")[None, None, :]
        inside = ops.logical_and(ops.abs(rows - cy) < self.cutout * h / 2.0, ops.abs(cols - cx) < self.cutout * w / 2.0)
        mask = ops.cast(inside, images.dtype)[..., None]
        mean = ops.mean(images, axis=(1, 2), keepdims=True)
        return images * (1.0 - mask) + mean * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "flip": self.flip, "rotation": self.rotation, "zoom": self.zoom,
                "shift": self.shift, "seed": self.seed, "cutout": self.cutout, "color_jitter": self.color_jitter,
                "grayscale": self.grayscale}


def patch_whitening(x: Any, patch: int = 2) -> Any:
    """A frozen `patch` x `patch` convolution named `patch_whitening`, then ReLU: the airbench/Page first layer.

    Its 2 x patch² x 3 filters are the whitening directions of the training images' patches
    and their negatives (so ReLU keeps every direction); the vision tasks set them from the
    training images before training (`whitening_weights`). Until then they pass each pixel of
    the patch through, centred (`x - 0.5` and `0.5 - x`), so a model built outside a run is
    still a sensible network. It is a plain `keras.layers.Conv2D` with `trainable=False`.

    Example:
        >>> import keras
        >>> patch_whitening(keras.Input((8, 8, 3))).shape
        (None, 8, 8, 24)
    """
    import numpy as np

    channels = x.shape[-1]
    d = patch * patch * channels
    identity = np.eye(d, dtype="float32")
    kernel = np.concatenate([identity, -identity], axis=1).reshape(patch, patch, channels, 2 * d)
    bias = np.concatenate([np.full(d, -0.5), np.full(d, 0.5)]).astype("float32")
    conv = keras.layers.Conv2D(2 * d, patch, padding="same", name=WHITENING, trainable=False)
    y = conv(x)
    conv.set_weights([kernel, bias])
    return keras.layers.ReLU(name=f"{WHITENING}_relu")(y)


def blur_pool(x: Any, strides: int = 2, data_format: str = "channels_last", name: str | None = None,
              sliced: bool = False) -> Any:
    """Anti-aliased downsampling (Zhang, "Making convolutional networks shift-invariant again", 2019):
    a frozen 3 x 3 binomial blur ([1, 2, 1] x [1, 2, 1] / 16) of each channel, then every
    `strides`-th pixel.

    Subsampling without the blur aliases: a one-pixel shift of the input changes the output.
    `simple_cnn` and `mini_xception` with `blur_pool=True` pool with stride 1 and then this (and
    blur before their strided 1 x 1 shortcut convolutions). It is a plain
    `keras.layers.DepthwiseConv2D` with `trainable=False`, so `model.keras` stays plain Keras;
    `sliced=True` builds it as `SlicedDepthwiseConv2D` (the same function, faster on a JAX CPU),
    which a run saves as the plain layer.

    Example:
        >>> import keras, numpy as np
        >>> y = blur_pool(keras.Input((8, 8, 4)))
        >>> y.shape
        (None, 4, 4, 4)
        >>> inputs = keras.Input((8, 8, 1))
        >>> model = keras.Model(inputs, blur_pool(inputs))  # a constant image stays constant inside
        >>> bool(np.allclose(np.asarray(model(np.ones((1, 8, 8, 1))))[0, 1:3, 1:3, 0], 1.0))
        True
    """
    import numpy as np

    channels = x.shape[1 if data_format == "channels_first" else -1]
    taps = np.array([1.0, 2.0, 1.0], dtype="float32")
    kernel = np.outer(taps, taps) / 16.0
    layer = SlicedDepthwiseConv2D if sliced else keras.layers.DepthwiseConv2D
    conv = layer(3, strides=strides, padding="same", use_bias=False, trainable=False, data_format=data_format, name=name)
    y = conv(x)
    conv.set_weights([np.repeat(kernel[:, :, None, None], channels, axis=2)])
    return y


def whitening_weights(images: Any, patch: int = 2, eps: float = 5e-4, max_patches: int = 200_000,
                      seed: int = 0) -> tuple[Any, Any]:
    """Kernel and bias of `patch_whitening` for these uint8 (n, h, w, 3) images, as the model sees them (/255).

    The patches' covariance is eigen-decomposed; each filter projects a centred patch on one
    eigenvector, divided by the square root of its eigenvalue (+ `eps`), and its negative
    follows. The kernel's layout is Keras's (patch, patch, channels, filters).

    Example:
        >>> import numpy as np
        >>> images = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 3), dtype=np.uint8)
        >>> kernel, bias = whitening_weights(images)
        >>> kernel.shape, bias.shape
        ((2, 2, 3, 24), (24,))
    """
    import numpy as np

    x = np.asarray(images, dtype="float32") / 255.0
    if x.ndim != 4 or x.shape[1] < patch or x.shape[2] < patch:
        raise ValueError(f"Received images of shape {x.shape}. Expected (n, height, width, channels) with both "
                         f"sides >= {patch}.")
    channels = x.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(x, (patch, patch), axis=(1, 2))  # n, h', w', c, p, p
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, patch * patch * channels)  # (kh, kw, c) order
    if len(patches) > max_patches:
        patches = patches[np.random.default_rng(seed).choice(len(patches), max_patches, replace=False)]
    patches = patches.astype("float64")
    mean = patches.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(patches, rowvar=False))
    order = np.argsort(values)[::-1]  # the largest-variance directions first
    w = vectors[:, order] / np.sqrt(np.clip(values[order], 0, None) + eps)
    w = np.concatenate([w, -w], axis=1)
    kernel = w.reshape(patch, patch, channels, w.shape[1]).astype("float32")
    bias = (-(mean @ w)).astype("float32")
    return kernel, bias
