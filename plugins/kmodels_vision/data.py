"""Image datasets: any folder/CSV layout, and the embedded synthetic photos."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from kmodels.api import Table, cache_dir, registry
from kmodels_vision.images import image_table

logger = logging.getLogger("kmodels")


@registry.datasets.register("image_folder")
def image_folder(path: str, classes: list[str] | None = None, label_sep: str = "|") -> Table:
    """Labelled images from a folder (class folders, split folders, flat `cat.0.jpg`), a `path,label` CSV, or a
    `path,labels` CSV of label sets (`"cat|outdoor"`: a multi-label problem).

    Files are only listed here; the task decodes each one in its integrity scan.

    Args:
        path: the folder (e.g. `PetImages/`) or CSV.
        classes: the classes to keep, in label order (binary: negative first),
            matched case-insensitively (plural folder names such as `cats/` work
            too); `None` reads every class from the data, sorted.
        label_sep: what joins the labels of an image in a `path,labels` CSV.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for n in ["Cat/1.jpg", "Dog/2.jpg"]:
        ...     (root / n).parent.mkdir(exist_ok=True); _ = (root / n).write_bytes(b"")
        >>> t = image_folder(str(root))
        >>> t.frame["label"].tolist(), t.problem_type().kind
        (['Cat', 'Dog'], 'binary')
    """
    frame = image_table(path, classes)
    return Table(frame, target="label", classes=tuple(classes) if classes else None, source=str(path),
                 problem="multilabel" if frame.attrs.get("multilabel") else "auto", label_sep=label_sep)


def synthetic_folder(count: int, seed: int, min_size: int, max_size: int) -> Path:
    """The folder of the synthetic set for these settings, generated once into the cache."""
    from kmodels_vision.synthetic import write_dog_cat

    root = cache_dir() / "datasets" / f"dog_cat_synthetic-v1-{count}-{seed}-{min_size}-{max_size}"
    if root.is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=root.parent))
    try:
        write_dog_cat(tmp / "images", count=count, seed=seed, min_size=min_size, max_size=max_size)
        os.replace(tmp / "images", root)  # appears complete or not at all
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("Generated %d synthetic images per class in %s", count, root)
    return root


@registry.datasets.register("dog_cat_synthetic")
def dog_cat_synthetic(count: int = 300, seed: int = 0, min_size: int = 96, max_size: int = 160) -> Table:
    """Deterministic synthetic cat/dog JPEGs in the Kaggle flat layout, with a few broken files.

    The class shows in the shape (ears, muzzle), not in colour. Written once
    into the kmodels cache (`$KMODELS_CACHE_DIR`, default `~/.cache/kmodels`).
    It tests the machinery, not the quality on real photos.

    Args:
        count: images per class.
        seed: the data's seed.
        min_size: smallest image side in pixels.
        max_size: largest image side in pixels.

    Example:
        >>> t = dog_cat_synthetic(count=4, min_size=32, max_size=40)  # doctest: +SKIP
        >>> sorted(t.frame["label"].unique())  # doctest: +SKIP
        ['cat', 'dog']
    """
    root = synthetic_folder(count, seed, min_size, max_size)
    frame = image_table(root, ("cat", "dog"))
    return Table(frame, target="label", classes=("cat", "dog"), source=f"dog_cat_synthetic(count={count}, seed={seed})")
