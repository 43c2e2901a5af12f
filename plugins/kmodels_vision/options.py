"""`[images]`: the options of the image tasks' input pipeline, and the settings resolved from them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np

from kmodels.api import ConfigError
from kmodels_vision.pipeline import Augment


@dataclass(frozen=True)
class ImageOptions:
    """The image input pipeline.

    Args:
        image_size: (height, width) images are resized to; the model input. `"auto"`:
            square, from the data: the median shorter side of the usable images, rounded
            up to a multiple of 16 and kept within [32, 144] (`auto_image_size`), so 8 px
            digits train at 32 px rather than blown up to photo size, and photos at 144
            (`dog_cat`'s size).
            The run's `spec.toml` records the size chosen.
        augment: flip/rotate/zoom the training images (seeded by `train.seed`).
        flip: probability of a horizontal flip.
        rotation: maximum rotation in degrees.
        zoom: maximum zoom fraction.
        shift: maximum translation, a fraction of the width and height.
        cutout: after the warp, one square of this fraction of the height by this fraction of
            the width, at a random place in each training image, takes the image's mean colour
            (cutout, DeVries and Taylor 2017); 0 turns it off (the default here;
            `dog_cat` and `image_classification` ship 0.5).
        color_jitter: after the warp, each training image's brightness, contrast and saturation
            scaled by three factors drawn uniformly in [1 - color_jitter, 1 + color_jitter]; 0 turns it off
            (the default here; `dog_cat` and `image_classification` ship 0.3).
        grayscale: after the colour jitter, the probability that a training image is turned grey
            (each pixel's channels set to their mean); 0 (the default) turns it off.
        workers: decoding threads feeding training.
        cache_mb: keep the decoded training and validation images in memory,
            up to this many MiB (128x128 images: 48 KiB each, so the 25,000
            Kaggle photos take 1.2 GiB), so that epochs after the first only
            augment; a split that does not fit is read from disk every epoch
            (logged). 0 turns caching off.
        tta: test-time augmentation baked into the saved model: `"flip"` averages
            the predictions for each image and its mirror image (2x the inference
            cost; `model.keras` does it by itself, in plain Keras too); `"flip_translate"`:
            airbench's six views, the image and its mirror each as is and shifted by 3% of
            the side (at least 1 px) up-left and down-right, edges reflected (6x the cost);
            `"none"`.
        augment_on: where the training augmentation runs. `"device"`: on whole batches
            inside the compiled training step (`RandomAffineAugment`, one bilinear warp
            per image; on a GPU the host then only slices arrays); `"host"`: per image
            with Pillow in the `workers` threads; `"auto"` (default): the faster one as
            measured (benchmarks/README.md): the device, except JAX on a CPU, where
            XLA's warp is slower than Pillow's.
        disk_cache: decode every image once, at `image_size`, into a memory-mapped
            file under `$KMODELS_CACHE_DIR/images/` keyed by the images' content and
            the size (`kmodels_vision.cache`), shared by later runs and processes; then
            `cache_mb` is not needed. `false`: decode from the files (and `cache_mb`).
        mixup: blend pairs of training images and their labels (mixup; see
            `kmodels_vision.pipeline.ImageBatches`): the Beta parameter, 0 = off. Binary
            problems only (the multiclass labels are class indices, which cannot be blended).
        cutmix: paste a box of another training image of the batch into each, the labels
            blended by the areas (CutMix; `kmodels_vision.pipeline.cut_mix`): the Beta
            parameter, 0 = off, 1.0 the paper's. Binary problems only; not with `mixup`.
    """

    image_size: tuple[int, int] | Literal["auto"] = (128, 128)
    augment: bool = True
    flip: float = 0.5
    rotation: float = 10.0
    zoom: float = 0.1
    shift: float = 0.0
    cutout: float = 0.0
    color_jitter: float = 0.0
    grayscale: float = 0.0
    workers: int = 2
    cache_mb: int = 2048
    tta: Literal["none", "flip", "flip_translate"] = "none"
    augment_on: Literal["auto", "device", "host"] = "auto"
    disk_cache: bool = True
    mixup: float = 0.0
    cutmix: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.mixup <= 10:
            raise ConfigError(f"[images] mixup={self.mixup}: expected a Beta parameter in [0, 10] (0 turns mixup "
                              "off; 0.2-0.4 is usual).")
        if not 0 <= self.cutmix <= 10:
            raise ConfigError(f"[images] cutmix={self.cutmix}: expected a Beta parameter in [0, 10] (0 turns CutMix "
                              "off; 1.0 is the paper's).")
        if self.mixup and self.cutmix:
            raise ConfigError(f"[images] mixup={self.mixup} and cutmix={self.cutmix}: both mix pairs of images; set "
                              "one of them to 0.")
        if self.image_size != "auto" and not all(8 <= side <= MAX_IMAGE_SIDE for side in self.image_size):
            raise ConfigError(f"[images] image_size={list(self.image_size)}: expected two sides in [8, "
                              f"{MAX_IMAGE_SIDE}] pixels, e.g. [128, 128] (a batch of larger images does not fit "
                              "in memory).")
        if self.workers < 1:
            raise ConfigError(f"[images] workers={self.workers}: expected at least 1 decoding thread.")
        if self.cache_mb < 0:
            raise ConfigError(f"[images] cache_mb={self.cache_mb}: expected a size in MiB >= 0 (0 turns caching off).")
        try:
            self.augmentation.validate()
        except ValueError as exc:
            raise ConfigError(f"[images] {exc}") from None

    @property
    def augmentation(self) -> Augment:
        """The training augmentation these options ask for (flip, rotation, zoom, shift, cutout, colour jitter,
        grey), whether it runs on the host (`ImageBatches`) or on the device (`RandomAffineAugment`, which takes
        the same fields)."""
        return Augment(**{f.name: getattr(self, f.name) for f in fields(Augment)})  # by name: same-named fields


def auto_image_size(short_sides: Sequence[int], low: int = 32, high: int = 144) -> tuple[int, int]:
    """`[images] image_size = "auto"`: the median shorter side, rounded up to a multiple of 16, within [low, high].

    Example:
        >>> auto_image_size([8, 8, 8]), auto_image_size([375, 333, 500]), auto_image_size([40, 60])
        ((32, 32), (144, 144), (64, 64))
    """
    if not len(short_sides):
        return high, high
    side = int(min(high, max(low, 16 * math.ceil(float(np.median(short_sides)) / 16))))
    return side, side


def tta_views(inputs: Any, tta: str) -> list[Any]:
    """The views of a symbolic image batch that `[images] tta` averages: itself (`"none"`), and its mirror
    (`"flip"`), and each of those shifted down-right and up-left (`"flip_translate"`)."""
    import keras

    views = [inputs]
    if tta != "none":
        views.append(keras.ops.flip(inputs, axis=2))
    if tta == "flip_translate":
        views += [_shifted(view, sign) for view in list(views) for sign in (1, -1)]
    return views


def with_test_time_views(model: Any, tta: str) -> Any:
    """`model` averaged over the views of `[images] tta` (`tta_views`), as one plain Keras model that holds
    `model` as its one nested model; `model` itself for `"none"`. `ImageClassification.finish_model` saves this,
    and `kmodels bench tta` rebuilds it around a saved run's network to score other view sets.

    Example:
        >>> import keras
        >>> net = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(1)], name="net")
        >>> wrapped = with_test_time_views(net, "flip")
        >>> wrapped.name, wrapped.input_shape, with_test_time_views(net, "none") is net
        ('net_flip_tta', (None, 8, 8, 1), True)
    """
    import keras

    if tta == "none":
        return model
    inputs = keras.Input(model.input_shape[1:], name="image")
    outputs = keras.layers.Average(name=f"{tta}_tta")([model(view) for view in tta_views(inputs, tta)])
    return keras.Model(inputs, outputs, name=f"{model.name}_{tta}_tta")


def _shifted(images: Any, sign: int) -> Any:
    """`images` (a symbolic batch) moved by 3% of each side (at least 1 px), down-right for `sign` 1, up-left for -1,
    the uncovered edge filled by reflection: one test-time view of `tta = "flip_translate"`."""
    import keras

    height, width = images.shape[1], images.shape[2]
    dy, dx = max(1, round(0.03 * height)), max(1, round(0.03 * width))
    padded = keras.ops.pad(images, [[0, 0], [dy, dy], [dx, dx], [0, 0]], mode="reflect")
    top, left = dy - sign * dy, dx - sign * dx
    return padded[:, top:top + height, left:left + width, :]


#: The largest side `[images] image_size` may set: one 2048 x 2048 RGB batch of 32 is already 1.6 GB of float32.
MAX_IMAGE_SIDE = 2048
