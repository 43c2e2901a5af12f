"""Binary classifiers on `keras.applications` backbones: MobileNetV3Small, EfficientNetB0, ResNet50.

Every model takes raw RGB pixels in [0, 255]: the backbone's own preprocessing
is a layer of the model, so a saved `.keras` file predicts on raw images. The
backbone is a nested model named `backbone`, called with `training=False` so
its BatchNorm layers stay in inference mode even when they are unfrozen for
fine-tuning (`[fine_tune]` in the task spec).

`weights` is `None` (random init), `"imagenet"` (downloaded by Keras into
`~/.keras/models` on first use, only when asked for) or the path of a local
weights file of the backbone (`.weights.h5`, or a Keras-hosted `*_notop.h5`).
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kmodels.api import BACKBONE, ConfigError, output_head, registry

logger = logging.getLogger("kmodels")

#: ImageNet channel means in BGR order, subtracted by ResNet's "caffe" preprocessing.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def _caffe_preprocessing(name: str) -> keras.layers.Layer:
    """RGB [0, 255] → BGR minus the ImageNet mean (`keras.applications.resnet50.preprocess_input`).

    A frozen 1x1 convolution whose kernel swaps the channels and whose bias
    subtracts the mean: plain, serializable layers (no Lambda), exact in float32.
    """
    kernel = np.zeros((1, 1, 3, 3), dtype="float32")
    for out_channel, in_channel in enumerate((2, 1, 0)):
        kernel[0, 0, in_channel, out_channel] = 1.0
    bias = -np.asarray(_CAFFE_MEAN_BGR, dtype="float32")
    layer = keras.layers.Conv2D(3, 1, name=name, trainable=False, dtype="float32",
                                kernel_initializer=keras.initializers.Constant(kernel),
                                bias_initializer=keras.initializers.Constant(bias))
    return layer


def _expected_shapes(model: keras.Model, limit: int = 4) -> str:
    shapes = [f"{v.path}: {tuple(v.shape)}" for v in model.weights[:limit]]
    return f"{len(model.weights)} arrays, starting {'; '.join(shapes)}"


def _load_backbone_weights(backbone: keras.Model, path: Path, arch: str) -> None:
    if not path.is_file():
        raise ConfigError(
            f"[model] weights: file {str(path)!r} does not exist. Expected a weights file of the "
            f"{arch} backbone (include_top=False), e.g. saved with `backbone.save_weights('b.weights.h5')`, "
            "or weights='imagenet' to let Keras download them."
        )
    if not (path.name.endswith(".weights.h5") or path.suffix == ".h5"):
        raise ConfigError(f"[model] weights: {str(path)!r} is not a Keras weights file; expected '.weights.h5' or '.h5'.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            backbone.load_weights(str(path))
        except (ValueError, KeyError, OSError, TypeError) as exc:
            detail = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise ConfigError(
                f"[model] weights: {str(path)!r} does not fit the {arch} backbone ({type(exc).__name__}: "
                f"{detail[:400]}). Expected {_expected_shapes(backbone)}."
            ) from None
    skipped = [str(w.message) for w in caught if "Skipping" in str(w.message)]
    if skipped:  # Keras loaded part of the file and left the rest at random init: refuse
        raise ConfigError(
            f"[model] weights: {str(path)!r} covers only part of the {arch} backbone ({len(skipped)} parts "
            f"skipped, e.g. {skipped[0][:200]}). Expected {_expected_shapes(backbone)}."
        )


def _download_advice(arch: str, error: str) -> str:
    """What to do when Keras cannot download `arch`'s ImageNet weights (offline, firewalled)."""
    url = re.search(r"https?://\S+?(?=:\s|$)", error)
    name = url.group(0).rsplit("/", 1)[-1] if url else f"the {arch} *_notop.h5 file"
    home = os.environ.get("KERAS_HOME", "~/.keras")
    return (f"[model] weights='imagenet': Keras could not download the ImageNet weights of {arch} "
            f"({error.strip()[:300]}). Without network access, copy {name} into {home}/models/ (Keras then "
            "uses it without downloading), or set model.weights to the path of a local weights file, "
            "or to none to train from scratch.")


def _classifier(arch: str, factory: Callable[..., keras.Model], name: str, *, input_shape: tuple[int, int, int],
                weights: str | None, freeze_backbone: bool | None, dropout: float, num_classes: int = 2,
                preprocess: Callable[[str], keras.layers.Layer] | None = None, **extra: Any) -> keras.Model:
    if len(input_shape) != 3 or input_shape[2] != 3 or min(input_shape[:2]) < 32:
        raise ConfigError(
            f"[model] {name}: input_shape={tuple(input_shape)}; expected (height, width, 3) with both sides >= 32."
        )
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"[model] {name}: dropout={dropout}; expected a rate in [0, 1).")
    path = None
    if weights not in (None, "imagenet"):
        path = Path(str(weights)).expanduser()
        weights = None
    try:
        backbone = factory(include_top=False, weights=weights, input_shape=tuple(input_shape), pooling="avg", **extra)
    except Exception as exc:  # noqa: BLE001 - Keras's get_file raises a bare Exception when a download fails
        if weights == "imagenet" and "URL fetch failure" in str(exc):
            raise ConfigError(_download_advice(arch, str(exc))) from None
        raise
    backbone.name = BACKBONE
    if path is not None:
        if arch.startswith("EfficientNet") and not path.name.endswith(".weights.h5"):
            logger.warning(
                "%s: Keras scales the input for ImageNet weights only when weights='imagenet'. For Keras's own "
                "ImageNet file, copy it into ~/.keras/models/ and use weights='imagenet' (no download then).", arch)
        _load_backbone_weights(backbone, path, arch)
    frozen = (weights is not None or path is not None) if freeze_backbone is None else freeze_backbone
    backbone.trainable = not frozen
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = preprocess(f"{arch.lower()}_preprocessing")(inputs) if preprocess else inputs
    x = backbone(x, training=False)  # BatchNorm stays in inference mode, also when fine-tuned
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, output_head(x, num_classes), name=name)


@registry.models.register("mobilenet_v3_small", test_kwargs={"input_shape": (32, 32, 3)})
def mobilenet_v3_small(input_shape: tuple[int, int, int] = (224, 224, 3), weights: str | None = None,
                       freeze_backbone: bool | None = None, dropout: float = 0.2,
                       num_classes: int = 2) -> keras.Model:
    """MobileNetV3Small backbone (0.9 M parameters) with a classification or regression head: Dropout → `output_head`.

    Args:
        input_shape: (height, width, 3) of raw [0, 255] pixels; inferred from the data in a task run.
        weights: `None` (random), `"imagenet"` (downloaded by Keras when asked for) or a
            local `.weights.h5` file of the backbone.
        freeze_backbone: train the head only; default: frozen when `weights` is given.
        dropout: dropout rate before the output.
        num_classes: 2 (one sigmoid unit), N >= 3 (softmax) or 1 (regression, linear).

    Example:
        >>> import kmodels
        >>> model = kmodels.build("mobilenet_v3_small", input_shape=(64, 64, 3))
        >>> model.get_layer("backbone").trainable, model.output_shape
        (True, (None, 1))
    """
    return _classifier("MobileNetV3Small", keras.applications.MobileNetV3Small, "mobilenet_v3_small",
                       input_shape=input_shape, weights=weights, freeze_backbone=freeze_backbone, dropout=dropout, num_classes=num_classes)


@registry.models.register("efficientnet_b0", test_kwargs={"input_shape": (32, 32, 3)})
def efficientnet_b0(input_shape: tuple[int, int, int] = (224, 224, 3), weights: str | None = None,
                    freeze_backbone: bool | None = None, dropout: float = 0.2,
                    num_classes: int = 2) -> keras.Model:
    """EfficientNetB0 backbone (4.0 M parameters) with a classification or regression head: Dropout → `output_head`.

    Args:
        input_shape: (height, width, 3) of raw [0, 255] pixels; inferred from the data in a task run.
        weights: `None` (random), `"imagenet"` (downloaded by Keras when asked for) or a
            local `.weights.h5` file of the backbone.
        freeze_backbone: train the head only; default: frozen when `weights` is given.
        dropout: dropout rate before the output.
        num_classes: 2 (one sigmoid unit), N >= 3 (softmax) or 1 (regression, linear).

    Example:
        >>> import kmodels
        >>> kmodels.build("efficientnet_b0", input_shape=(64, 64, 3), freeze_backbone=True).count_params() > 4e6
        True
    """
    return _classifier("EfficientNetB0", keras.applications.EfficientNetB0, "efficientnet_b0",
                       input_shape=input_shape, weights=weights, freeze_backbone=freeze_backbone, dropout=dropout, num_classes=num_classes)


@registry.models.register("resnet50", test_kwargs={"input_shape": (32, 32, 3)})
def resnet50(input_shape: tuple[int, int, int] = (224, 224, 3), weights: str | None = None,
             freeze_backbone: bool | None = None, dropout: float = 0.2,
             num_classes: int = 2) -> keras.Model:
    """ResNet50 backbone (23.6 M parameters) with a classification or regression head: Dropout → `output_head`.

    ResNet's "caffe" preprocessing (RGB → BGR, ImageNet mean subtracted) is a
    frozen 1x1 convolution in the model, so it takes raw pixels like the others.

    Args:
        input_shape: (height, width, 3) of raw [0, 255] pixels; inferred from the data in a task run.
        weights: `None` (random), `"imagenet"` (downloaded by Keras when asked for) or a
            local `.weights.h5` file of the backbone.
        freeze_backbone: train the head only; default: frozen when `weights` is given.
        dropout: dropout rate before the output.
        num_classes: 2 (one sigmoid unit), N >= 3 (softmax) or 1 (regression, linear).

    Example:
        >>> import kmodels
        >>> kmodels.build("resnet50", input_shape=(64, 64, 3)).layers[1].name
        'resnet50_preprocessing'
    """
    return _classifier("ResNet50", keras.applications.ResNet50, "resnet50", input_shape=input_shape,
                       weights=weights, freeze_backbone=freeze_backbone, dropout=dropout,
                       num_classes=num_classes, preprocess=_caffe_preprocessing)
