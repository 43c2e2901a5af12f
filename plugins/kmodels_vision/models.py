"""CNNs for the dog_cat task. Both take raw [0, 255] RGB pixels and rescale inside."""

from __future__ import annotations

from typing import Literal

import keras

from kmodels.api import output_head, registry
from kmodels_vision.layers import FusedBatchNormalization, SlicedSeparableConv2D, patch_whitening
from kmodels_vision.layers import blur_pool as _blur


def _check(image_size: tuple[int, int], dropout: float, filters: tuple[int, ...]) -> None:
    if len(image_size) != 2 or min(image_size) < 8:
        raise ValueError(f"Received image_size={image_size}. Expected (height, width), both >= 8.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"Received dropout={dropout}. Expected a rate in [0, 1).")
    if not filters or any(f < 1 for f in filters):
        raise ValueError(f"Received filters={filters}. Expected one or more positive ints, e.g. (32, 64, 128).")


def _squeeze_excite(x, filters: int, ratio: float):
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    gate = keras.layers.Dense(max(4, round(filters * ratio)), activation="relu")(gate)
    gate = keras.layers.Dense(filters, activation="sigmoid")(gate)
    return keras.layers.Multiply()([x, gate])


@registry.models.register("simple_cnn", aliases=("dog_cat_cnn",))
def simple_cnn(input_shape: tuple[int, int, int] = (128, 128, 3), filters: tuple[int, ...] = (32, 64, 128),
                dense_units: int = 128, dropout: float = 0.5, bn_momentum: float = 0.9,
                data_format: Literal["auto", "channels_last", "channels_first"] = "auto",
                fused_batchnorm: bool = False, whitening: bool = False, blur_pool: bool = False,
                sliced_depthwise: bool = False, num_classes: int = 2) -> keras.Model:
    """A plain CNN: Input → Rescaling → [Conv2D → BatchNorm → ReLU → MaxPool] × n → GAP → Dense → Dropout → head.

    The dog_cat reference notebook's network, for any image folder; `dog_cat_cnn`, its first
    name, still builds it.

    Args:
        input_shape: (height, width, 3); inferred from `[images] image_size` in a task run.
        filters: filters of each conv block.
        dense_units: width of the dense head.
        dropout: dropout rate before the output.
        bn_momentum: BatchNorm moving-average momentum; 0.9 settles within the
            few hundred steps of a small data set (Keras's 0.99 needs thousands).
        data_format: layout the convolutions compute in. The input is always
            (height, width, 3) images; `"channels_first"` transposes once after
            rescaling. `"auto"` picks the faster layout for the current backend
            (measured in the benchmarks): `"channels_first"` on torch (2x: Keras's
            torch layers transpose around every conv and pool in channels_last),
            `"channels_last"` on TensorFlow and JAX. Either layout runs on every
            backend, so a saved model loads anywhere.
        fused_batchnorm: train BatchNorm with the backend's fused kernel
            (`kmodels_vision.layers.FusedBatchNormalization`: the same function,
            1.5-2x faster steps on TensorFlow and torch, see the benchmarks). The
            task specs turn it on, and a run saves the model with plain
            `keras.layers.BatchNormalization`; the default `False` builds a model
            that `model.save` writes in a form plain Keras loads.
        whitening: a frozen 2x2 patch-whitening convolution first
            (`kmodels_vision.layers.patch_whitening`), fitted on the training images
            by the task run (airbench's and Page's first layer).
        blur_pool: anti-aliased downsampling: each max pool computed at every pixel,
            then blurred and subsampled (`kmodels_vision.layers.blur_pool`, frozen plain
            Keras layers; Zhang 2019, fastai's Imagenette recipes).
        sliced_depthwise: compute the depthwise convolutions (the blur here; also the
            separable ones in `mini_xception`) as sums of shifted slices on a JAX CPU, whose
            grouped convolutions are slow (`kmodels_vision.layers.SlicedDepthwiseConv2D`:
            the same function; 2.2-2.9x faster `mini_xception` steps there, see the
            benchmarks). Other backends and devices run Keras's own layers. The task specs
            turn it on, and a run saves plain Keras layers, as with `fused_batchnorm`.
        num_classes: 2 (one sigmoid unit, the cat/dog reference), N >= 3 (softmax)
            or 1 (regression, linear).

    Example:
        >>> import kmodels
        >>> model = kmodels.build("simple_cnn")
        >>> model.input_shape, model.output_shape
        ((None, 128, 128, 3), (None, 1))
        >>> kmodels.build("simple_cnn", num_classes=10).output_shape
        (None, 10)
    """
    _check(input_shape[:2], dropout, filters)
    if data_format == "auto":
        data_format = "channels_first" if keras.backend.backend() == "torch" else "channels_last"
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    if whitening:
        x = patch_whitening(x)
    if data_format == "channels_first":
        x = keras.layers.Permute((3, 1, 2), name="to_channels_first")(x)
    axis = 1 if data_format == "channels_first" else -1
    batch_norm = FusedBatchNormalization if fused_batchnorm else keras.layers.BatchNormalization
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, 3, padding="same", use_bias=False, data_format=data_format, name=f"conv_{i}")(x)
        x = batch_norm(axis=axis, momentum=bn_momentum, name=f"bn_{i}")(x)
        x = keras.layers.ReLU(name=f"relu_{i}")(x)
        if blur_pool:
            x = keras.layers.MaxPooling2D(2, strides=1, padding="same", data_format=data_format, name=f"pool_{i}")(x)
            x = _blur(x, data_format=data_format, name=f"blur_pool_{i}", sliced=sliced_depthwise)
        else:
            x = keras.layers.MaxPooling2D(data_format=data_format, name=f"pool_{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(data_format=data_format, name="gap")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, output_head(x, num_classes), name="simple_cnn")


@registry.models.register("mini_xception", aliases=("dog_cat_xception",))
def mini_xception(input_shape: tuple[int, int, int] = (128, 128, 3), filters: tuple[int, ...] = (128, 256, 512, 728),
                     stem_filters: int = 64, dropout: float = 0.25, bn_momentum: float = 0.9,
                     fused_batchnorm: bool = False, whitening: bool = False, blur_pool: bool = False,
                     sliced_depthwise: bool = False, squeeze_excite: float = 0.0, num_classes: int = 2) -> keras.Model:
    """A small Xception-style network (separable convs, residual connections), as in Keras's "image classification from scratch".

    `dog_cat`'s default; `dog_cat_xception`, its first name, still builds it.

    Args:
        input_shape: (height, width, 3); inferred from the data in a task run.
        filters: filters of each residual separable-conv block.
        stem_filters: filters of the first strided convolution.
        dropout: dropout rate before the output.
        bn_momentum: as in `simple_cnn`. With Keras's 0.99, a few hundred steps
            leave the moving statistics far from the data's: measured on 1,300 real
            photos, validation accuracy stayed at chance for 8 epochs (0.47 test).
        fused_batchnorm: as in `simple_cnn`.
        whitening: as in `simple_cnn`.
        blur_pool: as in `simple_cnn`; the strided 1x1 shortcuts see blurred input too.
        sliced_depthwise: as in `simple_cnn`: the blur and the separable convolutions.
        squeeze_excite: squeeze-and-excitation (Hu et al. 2018) on each block's
            convolution branch before the shortcut is added: the branch's channels
            are scaled by a gate computed from their means through a bottleneck of
            `squeeze_excite` x the block's filters (0.25 is the paper's 1/4);
            0 (the default) leaves it out. Plain Keras layers, a few percent more
            compute.
        num_classes: as in `simple_cnn`.

    Example:
        >>> import kmodels
        >>> kmodels.build("mini_xception", filters=(32, 64), stem_filters=16).output_shape
        (None, 1)
    """
    _check(input_shape[:2], dropout, filters)
    if not 0.0 <= squeeze_excite <= 1.0:
        raise ValueError(f"Received squeeze_excite={squeeze_excite}. Expected a ratio in [0, 1], e.g. 0.25; 0 is off.")
    layer = FusedBatchNormalization if fused_batchnorm else keras.layers.BatchNormalization
    separable = SlicedSeparableConv2D if sliced_depthwise else keras.layers.SeparableConv2D

    def batch_norm():
        return layer(momentum=bn_momentum)

    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    if whitening:
        x = patch_whitening(x)
    x = keras.layers.Conv2D(stem_filters, 3, strides=2, padding="same", use_bias=False)(x)
    x = batch_norm()(x)
    x = keras.layers.Activation("relu")(x)
    previous = x
    for f in filters:
        x = keras.layers.Activation("relu")(x)
        x = separable(f, 3, padding="same", use_bias=False)(x)
        x = batch_norm()(x)
        x = keras.layers.Activation("relu")(x)
        x = separable(f, 3, padding="same", use_bias=False)(x)
        x = batch_norm()(x)
        if blur_pool:  # max over 3 x 3 at every pixel, then blur and subsample; the shortcut blurred likewise
            x = _blur(keras.layers.MaxPooling2D(3, strides=1, padding="same")(x), sliced=sliced_depthwise)
            residual = keras.layers.Conv2D(f, 1, padding="same")(_blur(previous, sliced=sliced_depthwise))
        else:
            x = keras.layers.MaxPooling2D(3, strides=2, padding="same")(x)
            residual = keras.layers.Conv2D(f, 1, strides=2, padding="same")(previous)
        if squeeze_excite:  # after the pool: a positive per-channel scale commutes with max, on 4x fewer pixels
            x = _squeeze_excite(x, f, squeeze_excite)
        x = keras.layers.add([x, residual])
        previous = x
    x = separable(max(filters) * 4 // 3, 3, padding="same", use_bias=False)(x)
    x = batch_norm()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, output_head(x, num_classes), name="mini_xception")
