"""The decoded-image cache: every image decoded once, at the training size, into a memory-mapped file.

A data set's usable images are decoded and resized (the same Pillow path as
`load_image`) into one `uint8` array of shape (images, height, width, 3),
saved as a `.npy` file under `$KMODELS_CACHE_DIR/images/` and read back
memory-mapped: after the first run, every epoch of every run reads its batches
at memory speed (the operating system's page cache holds the file once for all
processes that map it).

The file is keyed by the images' *content* (the SHA-256 digests the integrity
scan computes, itself re-hashing a file whose size or modification time
changed) and the settings that shape the pixels (size, resampling, version),
so an edited or replaced photo makes a new file, and runs with other splits or
seeds of the same images share one. Rows are in sorted-digest order: identical
files share a row. The file is written under a temporary name and renamed when
complete, so a concurrent or interrupted writer never leaves a partial file
under the final name; nothing is ever deleted (remove the folder to reclaim the
space: 48 KiB per 128x128 image).

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp / "a.png")
    >>> store = DecodedImages.open([str(tmp / "a.png")], ["d1"], (16, 16), root=tmp / "cache", progress=False)
    >>> store.array.shape, store.array.dtype.name, store.rows(["d1"]).tolist()
    ((1, 16, 16, 3), 'uint8', [0])
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from kmodels.api import DataError

logger = logging.getLogger("kmodels")

#: Bumped whenever the decoding path changes the pixels it produces.
CACHE_VERSION = "1:pillow-draft-rgb-bilinear"


def cache_root() -> Path:
    """`$KMODELS_CACHE_DIR/images` (default `~/.cache/kmodels/images`)."""
    from kmodels.api import cache_dir

    return cache_dir() / "images"


class DecodedImages:
    """A read-only (images, height, width, 3) uint8 array of decoded images, addressed by content digest.

    Args:
        array: the images, in sorted-digest order (memory-mapped when it comes from the cache file).
        digests: the sorted, unique content digests, one per row.
        path: the cache file, or `None` when it could not be written (the array is then in memory).
    """

    def __init__(self, array: np.ndarray, digests: Sequence[str], path: Path | None) -> None:
        self.array = array
        self.digests = list(digests)
        self.path = path
        self._row = {d: i for i, d in enumerate(self.digests)}

    def rows(self, digests: Sequence[str]) -> np.ndarray:
        """The rows of `digests` (one per image, in the given order)."""
        return np.fromiter((self._row[d] for d in digests), dtype=np.int64, count=len(digests))

    @staticmethod
    def key(digests: Sequence[str], image_size: tuple[int, int]) -> str:
        h = hashlib.sha256(f"{CACHE_VERSION}|{image_size[0]}x{image_size[1]}|".encode())
        for d in digests:
            h.update(d.encode())
            h.update(b"\n")
        return h.hexdigest()[:40]

    @classmethod
    def open(cls, paths: Sequence[str], digests: Sequence[str], image_size: tuple[int, int], *,
             root: Path | None = None, workers: int | None = None, progress: bool = True) -> DecodedImages:
        """The cache of these images at `image_size` (height, width): read if present, else decoded and written.

        Args:
            paths: image files.
            digests: the content digest of each path (e.g. the scan's `sha256`).
            image_size: (height, width) of the stored images.
            root: the cache folder (default `cache_root()`).
            workers: decoding threads (default: the CPU count).
            progress: a progress bar on stderr while decoding (when it is a terminal).
        """
        if len(paths) != len(digests):
            raise ValueError(f"{len(paths)} paths but {len(digests)} digests")
        first = {}
        for p, d in zip(paths, digests, strict=True):
            first.setdefault(d, p)
        unique = sorted(first)
        h, w = image_size
        root = cache_root() if root is None else Path(root)
        path = root / f"{cls.key(unique, image_size)}-{len(unique)}x{h}x{w}x3.npy"
        if path.is_file():
            try:
                array = np.load(path, mmap_mode="r")
                if array.shape == (len(unique), h, w, 3) and array.dtype == np.uint8:
                    logger.info("Decoded images: %d from the cache %s", len(unique), path)
                    return cls(array, unique, path)
                logger.warning("Ignoring the decoded-image cache %s: shape %s, expected %s", path, array.shape,
                               (len(unique), h, w, 3))
            except (OSError, ValueError) as exc:
                logger.warning("Ignoring the unreadable decoded-image cache %s: %s", path, exc)
        return cls._build([first[d] for d in unique], unique, image_size, path, workers, progress)

    @classmethod
    def _build(cls, paths: list[str], digests: list[str], image_size: tuple[int, int], path: Path,
               workers: int | None, progress: bool) -> DecodedImages:
        from tqdm.auto import tqdm

        from kmodels_vision.pipeline import open_rgb

        h, w = image_size
        shape = (len(paths), h, w, 3)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        except OSError as exc:  # a read-only or full cache folder must not stop a run
            logger.warning("Could not write the decoded-image cache in %s (%s); decoding into memory.", path.parent, exc)
            tmp, array = None, np.empty(shape, np.uint8)

        def decode(i: int) -> None:
            try:
                array[i] = np.asarray(open_rgb(paths[i], (w, h)), dtype=np.uint8)
            except (OSError, ValueError, SyntaxError) as exc:
                raise DataError(f"{paths[i]}: could not decode it for the image cache ({type(exc).__name__}: "
                                f"{exc}); it changed since the scan? Run again to rescan.") from None

        bar = tqdm(total=len(paths), desc="kmodels: caching decoded images", unit="img",
                   disable=None if progress else True, leave=False)
        try:
            with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
                for _ in pool.map(decode, range(len(paths))):
                    bar.update()
            if tmp is not None:
                array.flush()
                del array
                os.replace(tmp, path)  # complete, or not there at all
                tmp = None
                array = np.load(path, mmap_mode="r")
        finally:
            bar.close()
            if tmp is not None and tmp.exists():
                tmp.unlink()  # our own temporary file
        logger.info("Decoded images: %d decoded at %dx%d into %s", len(paths), h, w,
                    path if path.is_file() else "memory")
        return cls(array, digests, path if path.is_file() else None)
