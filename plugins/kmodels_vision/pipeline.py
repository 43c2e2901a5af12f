"""The streaming image input pipeline: files → decoded, resized, augmented batches.

`ImageBatches` is a `keras.utils.PyDataset`, so the same code feeds `fit` on
JAX, TensorFlow and torch. Files are read lazily, a batch at a time, decoded
with Pillow (JPEG draft mode decodes large photos at a reduced scale directly)
by a pool of worker threads, converted to RGB, resized, and, for training,
augmented with a seeded random flip, rotation and zoom. Augmentation for image
`i` in epoch `e` depends only on (seed, e, i), so it is reproducible whatever
the worker scheduling. Batches hold uint8 pixels (0-255): a quarter of
float32's bytes to copy on the host and send to the accelerator. A model's
float32 input casts them inside the compiled step, and models rescale inside,
so a saved `.keras` file predicts on raw images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kmodels.api import Batches


@dataclass(frozen=True)
class Augment:
    """Random training augmentation.

    Args:
        flip: probability of a horizontal flip.
        rotation: maximum rotation in degrees (uniform in ±rotation).
        zoom: maximum zoom fraction (scale uniform in [1 - zoom, 1 + zoom]).
        shift: maximum translation, as a fraction of the width and height (uniform in ±shift each).
        cutout: after the warp, a square of this fraction of the height by this fraction of the width,
            centred at a uniformly drawn pixel and cut off at the edges, takes the image's mean colour
            (DeVries and Taylor 2017); 0: off.
        color_jitter: after the warp (before cutout), the brightness, contrast and saturation of each image
            scaled by three factors drawn uniformly in [1 - color_jitter, 1 + color_jitter] (`jitter_colors`); 0: off.
        grayscale: after the colour jitter (before cutout), the probability that an image is turned grey, each
            pixel's channels set to their mean; 0: off.
    """

    flip: float = 0.5
    rotation: float = 10.0
    zoom: float = 0.1
    shift: float = 0.0
    cutout: float = 0.0
    color_jitter: float = 0.0
    grayscale: float = 0.0

    def validate(self) -> Augment:
        if not (0 <= self.flip <= 1 and 0 <= self.rotation <= 180 and 0 <= self.zoom < 1 and 0 <= self.shift < 1
                and 0 <= self.cutout < 1 and 0 <= self.color_jitter < 1 and 0 <= self.grayscale <= 1):
            raise ValueError(f"Received {self}. Expected flip and grayscale in [0, 1], rotation in [0, 180], zoom, "
                             "shift, cutout and color_jitter in [0, 1).")
        return self


def load_image(path: str, size: tuple[int, int]) -> np.ndarray:
    """Decode `path` to an RGB float32 array of shape (height, width, 3), values in [0, 255].

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.png"
        >>> Image.new("L", (50, 40)).save(p)
        >>> load_image(str(p), (32, 24)).shape
        (24, 32, 3)
    """
    return np.asarray(open_rgb(path, size), dtype=np.float32)


def open_rgb(path: str, size: tuple[int, int]):
    """Decode `path` to an RGB Pillow image resized to `size` (width, height)."""
    from PIL import Image

    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft("RGB", (size[0], size[1]))  # decode at a reduced scale when much larger
        img.load()  # decode while the file is open
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            background = Image.new("RGB", img.size, (255, 255, 255))
            background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
            img = background
        elif img.mode != "RGB":
            img = img.convert("RGB")
        if img.size != tuple(size):
            img = img.resize(tuple(size), Image.BILINEAR)
        return img


def augment_image(image: np.ndarray, rng: np.random.Generator, augment: Augment) -> np.ndarray:
    """Flip, rotate, zoom and shift one image (same shape and dtype out; values stay in [0, 255]).

    The warp runs on the image as 8-bit RGB, so values come back as whole levels.
    """
    from PIL import Image

    img = Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8))
    return np.asarray(augment_rgb(img, rng, augment), dtype=np.float32)


def augment_rgb(img, rng: np.random.Generator, augment: Augment):
    """`augment_image` on an RGB Pillow image, in one resampling pass (the flip folds into the warp), then
    `augment.color_jitter`'s colours, `augment.grayscale`'s grey and `augment.cutout`'s square."""
    from PIL import Image

    out = _warp_rgb(img, rng, augment)
    if augment.color_jitter:  # drawn only when asked for, so runs without it keep their random stream
        factors = 1.0 + (2.0 * rng.random(3) - 1.0) * augment.color_jitter
        jittered = jitter_colors(np.asarray(out, dtype=np.float32)[None], factors[None])[0]
        out = Image.fromarray(np.rint(jittered).astype(np.uint8))
    if augment.grayscale and rng.random() < augment.grayscale:  # likewise
        rgb = np.asarray(out, dtype=np.float32)
        out = Image.fromarray(np.rint(np.repeat(rgb.mean(axis=2, keepdims=True), 3, axis=2)).astype(np.uint8))
    return _cut_rgb(out, rng, augment.cutout) if augment.cutout else out


def jitter_colors(images: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Colour jitter of a batch of [0, 255] RGB images (n, height, width, 3) by per-image `factors` (n, 3): the
    brightness (every value times the first), the contrast (the distance from the image's mean value times the
    second), then the saturation (each pixel's distance from its grey, the mean of its channels, times the third),
    clipped to [0, 255]. The NumPy reference of `RandomAffineAugment`'s colour jitter, which the host path uses.

    Example:
        >>> x = np.array([[[[100.0, 50.0, 0.0]]]])
        >>> jitter_colors(x, np.array([[1.2, 1.0, 0.0]]))[0, 0, 0].round(3).tolist()  # brighter, then grey
        [60.0, 60.0, 60.0]
    """
    factors = np.asarray(factors, dtype=np.float32)
    out = np.asarray(images, dtype=np.float32) * factors[:, 0, None, None, None]
    mean = out.mean(axis=(1, 2, 3), keepdims=True)
    out = (out - mean) * factors[:, 1, None, None, None] + mean
    grey = out.mean(axis=3, keepdims=True)
    return np.clip((out - grey) * factors[:, 2, None, None, None] + grey, 0.0, 255.0)


def cut_mix(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """CutMix (Yun et al. 2019): into each image of a batch, a box of another image of the batch, at the same place.

    For image k, `lam ~ Beta(alpha, alpha)`; a box of sides `sqrt(1 - lam)` times the image's, centred at a
    uniformly drawn pixel and cut off at the edges, is copied from image `other[k]` (a random permutation of
    the batch); its label becomes `a * y[k] + (1 - a) * y[other[k]]`, where `1 - a` is the box's share of the
    pixels after the cut. Returns new arrays.

    Example:
        >>> x = np.zeros((2, 4, 4, 3), np.uint8); x[1] = 255
        >>> xm, ym = cut_mix(x, np.array([0.0, 1.0], np.float32), np.random.default_rng(0), 1.0)
        >>> bool(np.allclose(ym, [(xm[k] == 255).mean() for k in range(2)]))
        True
    """
    n, height, width = x.shape[:3]
    lam = rng.beta(alpha, alpha, n)
    other = rng.permutation(n)
    centres = rng.random((n, 2)) * (height, width)
    out, weights = x.copy(), np.ones(n, np.float32)
    for k in range(n):
        side = np.sqrt(1.0 - lam[k])
        h, w = round(height * side), round(width * side)
        top, left = int(centres[k, 0]) - h // 2, int(centres[k, 1]) - w // 2
        y0, y1 = max(top, 0), min(top + h, height)
        x0, x1 = max(left, 0), min(left + w, width)
        if y1 > y0 and x1 > x0:
            out[k, y0:y1, x0:x1] = x[other[k], y0:y1, x0:x1]
            weights[k] = 1.0 - (y1 - y0) * (x1 - x0) / (height * width)
    y = np.asarray(y, np.float32)
    return out, weights * y + (1 - weights) * y[other]


def _cut_rgb(img, rng: np.random.Generator, cutout: float):
    """Cutout on a Pillow image: the pixels within half the square's side of a drawn centre pixel (as
    `RandomAffineAugment`'s) take the image's mean colour."""
    from PIL import ImageDraw, ImageStat

    w, h = img.size
    cy, cx = np.floor(rng.random(2) * (h, w))
    half_h, half_w = cutout * h / 2, cutout * w / 2
    # whole pixels with |row - cy| < half_h: rows from cy - ceil(half_h) + 1 to cy + ceil(half_h) - 1
    top, bottom = max(0, int(cy - math.ceil(half_h) + 1)), min(h - 1, int(cy + math.ceil(half_h) - 1))
    left, right = max(0, int(cx - math.ceil(half_w) + 1)), min(w - 1, int(cx + math.ceil(half_w) - 1))
    fill = tuple(round(v) for v in ImageStat.Stat(img).mean)
    out = img.copy()
    if top <= bottom and left <= right:
        ImageDraw.Draw(out).rectangle((left, top, right, bottom), fill=fill)
    return out


def _warp_rgb(img, rng: np.random.Generator, augment: Augment):
    """The flip, rotation, zoom and shift of `augment_rgb`."""
    from PIL import Image, ImageStat

    w, h = img.size
    flip = rng.random() < augment.flip
    angle = rng.uniform(-augment.rotation, augment.rotation) if augment.rotation else 0.0
    scale = rng.uniform(1 - augment.zoom, 1 + augment.zoom) if augment.zoom else 1.0
    # drawn only when asked for, so runs without a shift keep their random stream
    dx, dy = (rng.uniform(-augment.shift, augment.shift, 2) * (w, h)) if augment.shift else (0.0, 0.0)
    if not angle and scale == 1.0 and not dx and not dy:
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else img
    # rotate by `angle` and scale by `scale` about the centre (output -> input coordinates), then
    # mirror the input x for the flip; the corners the warp uncovers get the image's mean colour
    a = math.radians(angle)
    cos, sin = math.cos(a) / scale, math.sin(a) / scale
    cx, cy = w / 2, h / 2
    matrix = [cos, sin, cx - cos * cx - sin * cy + dx, -sin, cos, cy + sin * cx - cos * cy + dy]
    if flip:
        matrix[:3] = [-matrix[0], -matrix[1], w - matrix[2]]
    fill = tuple(round(v) for v in ImageStat.Stat(img).mean)  # from the histogram: 4x faster than NumPy
    return img.transform((w, h), Image.AFFINE, tuple(matrix), resample=Image.BILINEAR, fillcolor=fill)


class ImageBatches(Batches):
    """Batches of (images, labels) streamed from image files; images are uint8 (batch, height, width, 3).

    Args:
        paths: image files.
        labels: 0/1 labels, or `None` for prediction.
        image_size: (height, width) of the model input.
        batch_size: images per batch.
        shuffle: reshuffle the order every epoch (seeded).
        augment: training augmentation, or `None`.
        seed: drives shuffling and augmentation.
        workers: decoding threads (Keras `PyDataset` workers).
        multiple: every batch size a multiple of this (data-parallel devices); see `Batches`.
        cache: keep each decoded, resized image in memory (uint8, height x width x 3
            bytes each) after it is first read, so later epochs only augment. On a
            CPU that also trains, decoding competes with the training step for
            the same cores; see `cache_bytes` for the memory this takes.
        store: decoded images at `image_size` (a `DecodedImages` array, usually
            memory-mapped from the on-disk cache) and `rows`, the row of each path in
            it: batches are then sliced from the array, never decoded.
        rows: see `store`.
        mixup: for binary labels, blend each training image with another of its batch
            (mixup, Zhang et al. 2018): weight `lam ~ Beta(mixup, mixup)`, taken as
            max(lam, 1 - lam) so each image stays the larger part of its own blend, on the
            pixels (rounded back to uint8) and on the labels alike; seeded by (seed,
            epoch, batch). 0 (default) turns it off; 0.2-0.4 is the usual range.
        cutmix: for binary labels, paste a box of another image of the batch into each training
            image (CutMix, Yun et al. 2019; `cut_mix`), the labels blended by the areas; the Beta
            parameter of the kept area, 0 (default) turns it off, 1.0 is the paper's. Seeded by
            (seed, epoch, batch); not together with `mixup`.

    Example:
        >>> ds = ImageBatches([], None, image_size=(32, 32), batch_size=4)
        >>> len(ds)
        0
    """

    def __init__(self, paths: Sequence[str], labels: Sequence[int] | None, image_size: tuple[int, int],
                 batch_size: int = 32, shuffle: bool = False, augment: Augment | None = None, seed: int = 0,
                 workers: int = 2, multiple: int = 1, cache: bool = False, store: np.ndarray | None = None,
                 rows: np.ndarray | None = None, mixup: float = 0.0, cutmix: float = 0.0) -> None:
        for name, value in (("mixup", mixup), ("cutmix", cutmix)):
            if value < 0 or (value and labels is None):
                raise ValueError(f"{name}={value} needs labels and a Beta parameter >= 0 (0: off)")
        if mixup and cutmix:
            raise ValueError(f"mixup={mixup} and cutmix={cutmix}: set one of them to 0")
        self.mixup, self.cutmix = float(mixup), float(cutmix)
        self.paths = list(paths)
        self.image_size = tuple(image_size)
        self.augment = augment.validate() if augment else None
        self.cache = cache
        if store is not None and (rows is None or len(rows) != len(self.paths) or store.shape[1:3] != self.image_size):
            raise ValueError(f"store of shape {store.shape} with {None if rows is None else len(rows)} rows does not "
                             f"fit {len(self.paths)} paths at {self.image_size}")
        self.store, self.rows = store, None if rows is None else np.asarray(rows)
        self._decoded: dict[int, object] = {}
        if store is not None and self.augment is None:
            # a batch is one memory copy: Keras's enqueuer with one worker reads 25,000 img/s here, with two
            # (threads handing batches over) about 3,000 (benchmarks/README.md, input pipeline)
            workers = 1
        super().__init__(len(self.paths), labels, batch_size, shuffle, seed, multiple, workers)

    @staticmethod
    def cache_bytes(count: int, image_size: tuple[int, int]) -> int:
        """Memory that caching `count` decoded images of `image_size` (height, width) takes."""
        return count * image_size[0] * image_size[1] * 3

    def items(self, idx: np.ndarray) -> np.ndarray:
        if self.augment is None:
            return self.decoded(idx)
        if not len(idx):
            return np.zeros((0, *self.image_size, 3), np.uint8)
        return np.stack([self.image(int(i)) for i in idx])

    def decoded(self, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        """Images `idx` as they are before any augmentation, uint8 (len(idx), height, width, 3): sliced from
        `store` when there is one (no decoding), else read (and kept, with `cache`).

        Example:
            >>> ImageBatches([], None, image_size=(8, 8)).decoded([]).shape
            (0, 8, 8, 3)
        """
        idx = np.asarray(idx, dtype=np.int64)
        if not len(idx):
            return np.zeros((0, *self.image_size, 3), np.uint8)
        if self.store is not None:  # a slice of the decoded array: no per-image work
            return np.asarray(self.store[self.rows[idx]])
        return np.stack([np.asarray(self._plain(int(i)), dtype=np.uint8) for i in idx])

    def __getitem__(self, index: int):
        batch = super().__getitem__(index)
        if not (self.mixup or self.cutmix) or len(batch[0]) < 2:
            return batch
        x, y, *rest = batch
        if self.cutmix:
            return (*cut_mix(x, y, np.random.default_rng([self.seed, self.epoch, index, 11]), self.cutmix), *rest)
        rng = np.random.default_rng([self.seed, self.epoch, index, 7])
        lam = rng.beta(self.mixup, self.mixup, len(x)).astype(np.float32)
        lam = np.maximum(lam, 1 - lam)
        other = rng.permutation(len(x))
        w = lam[:, None, None, None]
        x = np.rint(w * x + (1 - w) * x[other]).astype(np.uint8)
        return (x, lam * y + (1 - lam) * y[other], *rest)

    def image(self, i: int) -> np.ndarray:
        img = self._plain(i)
        if self.augment is not None:
            img = augment_rgb(img, np.random.default_rng([self.seed, self.epoch, i]), self.augment)
        return np.asarray(img, dtype=np.uint8)

    def _plain(self, i: int):
        """Image `i` as a PIL image at `image_size`, before augmentation."""
        from PIL import Image

        img = self._decoded.get(i)
        if img is None and self.store is not None:
            img = Image.fromarray(np.asarray(self.store[self.rows[i]]))
        if img is None:
            h, w = self.image_size
            img = open_rgb(self.paths[i], (w, h))
            if self.cache:
                self._decoded[i] = img  # never modified: augmentation returns new images
        return img
