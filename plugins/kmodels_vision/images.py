"""Image folders: build a table of files and labels, and verify every file by decoding it.

Layouts understood by `image_table`:

- flat, label in the file name: `cat.0.jpg`, `dog.12.jpg` (Kaggle "Dogs vs Cats");
- class sub-folders, any case: `Cat/`, `dogs/` (Microsoft "PetImages");
- class sub-folders under split folders: `train/`, `val/` or `validation/`, `test/`;
- a CSV file with `path,label` columns (relative paths are taken from the CSV's folder).

`scan_images` decodes every file once (in parallel, with a progress bar),
skips zero-byte, truncated, non-image and undecodable files with the reason,
records size and mode (grayscale/CMYK/RGBA/palette images are kept: the
pipeline converts them to RGB), reports exact duplicates by content hash, and
never modifies or deletes a file. Results are cached by (path, size, mtime, ctime, inode).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from kmodels.api import DataError, cache_dir

logger = logging.getLogger("kmodels")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
               "test": "test", "testing": "test"}


def _canonical(name: str, classes: Sequence[str] | None) -> str | None:
    """Map a folder or file-name label (`Cats`, `DOG`) onto one of `classes`; with no `classes`, any name is one."""
    if classes is None:
        return name
    low = name.lower()
    for c in classes:
        if low in (c.lower(), c.lower() + "s", c.lower() + "es"):
            return c
    return None


def image_table(path: str | Path, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Table of image files (`path`, `label`, and `split` if the layout has one).

    With `classes=None` the classes are read from the data: the names of the
    class folders (below the split folders, if any), else the file-name prefixes
    (`cat` of `cat.0.jpg`), else the CSV's labels. Given `classes`, folder and
    file names are matched case-insensitively (plural ok) and other files skipped.

    Args:
        path: a folder in one of the layouts above, or a CSV of `path,label`.
        classes: the class names to keep, or `None` for every class in the data.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for n in ["cat.0.jpg", "dog.0.jpg", "notes.txt"]: _ = (root / n).write_bytes(b"")
        >>> image_table(root, ["cat", "dog"])[["label"]].to_dict("list")
        {'label': ['cat', 'dog']}
        >>> for n in ["3/a.png", "7/b.png", "7/c.png"]:
        ...     (root / "digits" / n).parent.mkdir(parents=True, exist_ok=True); _ = (root / "digits" / n).write_bytes(b"")
        >>> image_table(root / "digits")["label"].tolist()
        ['3', '7', '7']
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{str(root)!r} does not exist. Expected an image folder or a CSV of path,label.")
    if root.is_file():
        return _from_csv(root, classes)
    rows: list[dict[str, Any]] = []
    hidden: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root).parts
        split = next((SPLIT_NAMES[p.lower()] for p in rel if p.lower() in SPLIT_NAMES), None)
        class_parts = [p for p in rel if p.lower() not in SPLIT_NAMES]
        folder_label = next((c for p in reversed(class_parts) if (c := _canonical(p, classes))), None)
        for name in sorted(filenames):
            if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if name.startswith(".") or any(part.startswith(".") for part in rel):
                hidden.append(str(Path(dirpath) / name))
                continue
            parts = re.split(r"[._\-\s]", name, maxsplit=1)
            prefix = _canonical(parts[0], classes) if len(parts) > 1 and parts[0] else None
            rows.append({"path": str(Path(dirpath) / name), "folder": folder_label, "prefix": prefix, "split": split,
                         "parts": class_parts})
    if hidden:
        logger.warning("Skipped %d hidden image file(s) (a name or folder starting with '.'), e.g. %s; rename them "
                       "to use them.", len(hidden), hidden[0])
    if classes is None:
        _label_by_class_level(rows, root)
    # Class folders when they name two or more classes; otherwise the file-name prefixes (Kaggle's flat layout).
    folders = {r["folder"] for r in rows if r["folder"] is not None}
    use_folders = len(folders) >= 2 or (classes is not None and folders)
    for r in rows:
        r["label"] = (r["folder"] or r["prefix"]) if use_folders else r["prefix"]
    rows = [{k: r[k] for k in ("path", "label", "split")} for r in rows if r["label"] is not None]
    if not rows:
        expected = f"({'/, '.join(classes)}/, any case, plural ok)" if classes else "(one per class)"
        raise DataError(
            f"No labelled images in {str(root)!r}. Expected class folders {expected}, optionally under "
            "train/val/test, files named like cat.0.jpg / dog.0.jpg (label before the first '.', '_' or '-'), "
            "or a CSV of path,label."
        )
    frame = pd.DataFrame(rows)
    splits = frame["split"].dropna().unique()
    if len(splits) == 0:
        frame = frame.drop(columns=["split"])
    elif frame["split"].isna().any():
        raise DataError(f"{str(root)!r} mixes split folders ({', '.join(splits)}) with images outside them; "
                        "move every image under train/, val/ or test/, or none.")
    return frame


def _label_by_class_level(rows: list[dict[str, Any]], root: Path) -> None:
    """Label folder images by the class level: the shallowest folder level (below any split folders) that
    holds two or more names. A folder below a class folder (`cat/indoor/1.jpg`) is part of that class, not a
    class of its own, and is reported; wrapping folders above the classes (`PetImages/Cat`) are skipped."""
    depth = 0
    while True:
        names = {r["parts"][depth] for r in rows if len(r["parts"]) > depth}
        if len(names) != 1 or not any(len(r["parts"]) > depth + 1 for r in rows):
            break
        depth += 1  # one wrapping folder: the classes are below it
    nested: dict[str, str] = {}
    for r in rows:
        parts = r["parts"]
        r["folder"] = _canonical(parts[depth], None) if len(parts) > depth else None
        if len(parts) > depth + 1:
            nested.setdefault("/".join(parts[:depth + 2]), parts[depth])
    if nested:
        example, label = next(iter(nested.items()))
        logger.warning("%d folder(s) inside class folders, e.g. %r: their images are labelled by the class folder "
                       "above them (%r), not as classes of their own.", len(nested), example, label)


def _from_csv(path: Path, classes: Sequence[str] | None) -> pd.DataFrame:
    from kmodels.api import read_csv

    frame = read_csv(path, dtype=str)
    if "labels" in frame.columns and "label" not in frame.columns:  # path,labels: label sets ("a|c"), multi-label
        if "path" not in frame.columns:
            raise DataError(f"{str(path)!r} lacks a path column; expected a CSV with path,labels columns.")
        frame["path"] = [str(p if Path(p).is_absolute() else path.parent / p) for p in frame["path"]]
        out = frame.rename(columns={"labels": "label"})[["path", "label"] + (["split"] if "split" in frame else [])]
        out.attrs["multilabel"] = True
        return out
    missing = [c for c in ("path", "label") if c not in frame.columns]
    if missing:
        raise DataError(f"{str(path)!r} lacks column(s) {missing}; expected a CSV with path,label columns (or "
                        "path,labels for several labels per image).")
    frame["path"] = [str(p if Path(p).is_absolute() else path.parent / p) for p in frame["path"]]
    labels = frame["label"].map(lambda v: _canonical(str(v), classes))
    bad = frame.loc[labels.isna(), "label"].unique()
    if len(bad):
        raise DataError(f"{str(path)!r}: labels {list(bad)[:5]} are not among the classes {list(classes or [])}.")
    frame["label"] = labels
    cols = ["path", "label"] + (["split"] if "split" in frame.columns else [])
    return frame[cols]


# ---- integrity scan ------------------------------------------------------------------------------
#: Files larger than this are skipped unread (the largest real photos are a few MiB).
MAX_FILE_BYTES = 64 * 2**20
#: Images with more pixels than this are skipped before decoding (a 30000x30000 PNG is 875 KB on disk).
MAX_PIXELS = 50_000_000
#: A file still being read and decoded after this many seconds is skipped (a stalled network mount, a
#: pathological file); a 50-megapixel PNG decodes in about 1 s on one core.
DECODE_SECONDS = 20.0


def file_problem(path: str) -> str | None:
    """Why `path` cannot be read as an image file, before opening it; `None` if it is a regular file of a sane size.

    Only regular files are read: a FIFO would block, a device such as `/dev/zero`
    never ends, a symlink loop cannot be followed; each becomes a reason instead.

    Example:
        >>> file_problem("/dev/null")
        'not a regular file (character device)'
    """
    try:
        st = os.stat(path)  # follows symlinks; a loop raises ELOOP
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        kind = ("directory" if stat.S_ISDIR(st.st_mode) else "FIFO" if stat.S_ISFIFO(st.st_mode)
                else "character device" if stat.S_ISCHR(st.st_mode) else "block device" if stat.S_ISBLK(st.st_mode)
                else "socket" if stat.S_ISSOCK(st.st_mode) else "special file")
        return f"not a regular file ({kind})"
    if st.st_size > MAX_FILE_BYTES:
        return f"file too large ({st.st_size / 2**20:.0f} MiB > {MAX_FILE_BYTES // 2**20} MiB)"
    return None


def file_problem_or_pixels(path: str) -> str | None:
    """`file_problem`, then the image's pixel count from its header (nothing decoded): what `predict` checks
    before it decodes a file, with the scan's bound (`MAX_PIXELS`).

    Example:
        >>> file_problem_or_pixels("/dev/null")
        'not a regular file (character device)'
    """
    from PIL import Image

    problem = file_problem(path)
    if problem is not None:
        return problem
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if width * height > MAX_PIXELS:
        return f"too many pixels ({width}x{height} > {MAX_PIXELS:,}): a decompression bomb, or far larger than needed"
    return None


def _inspect(path: str) -> dict[str, Any]:
    from PIL import Image, UnidentifiedImageError

    problem = file_problem(path)
    if problem is not None:
        return {"ok": False, "reason": problem}
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return {"ok": False, "reason": f"unreadable: {exc.strerror or exc}"}
    if not data:
        return {"ok": False, "reason": "empty file (0 bytes)"}
    if len(data) > MAX_FILE_BYTES:  # it grew since the check
        return {"ok": False, "reason": f"file too large (> {MAX_FILE_BYTES // 2**20} MiB)"}
    digest = hashlib.sha256(data).hexdigest()
    import io

    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            mode, fmt = img.mode, img.format
            width, height = img.size
            if width * height > MAX_PIXELS:
                return {"ok": False, "reason": f"too many pixels ({width}x{height} > {MAX_PIXELS:,}): a decompression "
                        "bomb or a scan far larger than training needs", "bytes": len(data), "sha256": digest}
            img.load()  # full decode: catches truncated and corrupt data
    except Image.DecompressionBombError as exc:
        return {"ok": False, "reason": f"too many pixels: {exc}", "bytes": len(data), "sha256": digest}
    except UnidentifiedImageError:
        return {"ok": False, "reason": "not an image (unrecognised format)", "bytes": len(data), "sha256": digest}
    except (OSError, SyntaxError, ValueError) as exc:
        reason = "truncated image" if "truncated" in str(exc).lower() else f"undecodable: {exc}"
        return {"ok": False, "reason": reason, "bytes": len(data), "sha256": digest}
    return {"ok": True, "width": width, "height": height, "mode": mode, "format": fmt, "bytes": len(data),
            "sha256": digest}


def _inspect_all(paths: Sequence[str], workers: int | None, progress: bool) -> list[dict[str, Any]]:
    """`_inspect` every path on a thread pool, each under the `DECODE_SECONDS` limit; Ctrl-C stops at once.

    A file past the limit gets a skip reason and the scan goes on without it; its
    thread is left to finish on its own (Python cannot stop a thread), and nothing
    waits for it.
    """
    import time
    from concurrent.futures import FIRST_COMPLETED, wait

    from tqdm.auto import tqdm

    started: dict[int, float] = {}

    def timed(i: int) -> dict[str, Any]:
        started[i] = time.monotonic()
        return _inspect(paths[i])

    out: list[dict[str, Any] | None] = [None] * len(paths)
    threads = workers or os.cpu_count() or 1
    pool = ThreadPoolExecutor(max_workers=threads)
    # a bounded window of submitted files: `wait` and the stall check below look at every pending future,
    # so submitting all 25,000 at once made each finished file cost O(n) (a 25,000-photo scan took over 7 min)
    window = 8 * threads
    submitted = 0
    pending: dict[Any, int] = {}

    def submit_more() -> None:
        nonlocal submitted
        while submitted < len(paths) and len(pending) < window:
            pending[pool.submit(timed, submitted)] = submitted
            submitted += 1

    bar = tqdm(total=len(paths), desc="kmodels: scanning images", unit="img",
               disable=None if progress else True, leave=False)
    try:
        submit_more()
        while pending:
            done, _ = wait(pending, timeout=min(1.0, DECODE_SECONDS), return_when=FIRST_COMPLETED)
            for future in done:
                out[pending.pop(future)] = future.result()
            now = time.monotonic()
            late = [f for f, i in pending.items() if i in started and now - started[i] > DECODE_SECONDS]
            for future in late:
                i = pending.pop(future)
                logger.warning("Skipping %s: still reading/decoding after %g s", paths[i], DECODE_SECONDS)
                out[i] = {"ok": False, "reason": f"decode took longer than {DECODE_SECONDS:g} s", "timed_out": True}
            bar.update(len(done) + len(late))
            submit_more()
    finally:  # Ctrl-C or an error: drop the files not started yet, wait for none
        bar.close()
        pool.shutdown(wait=False, cancel_futures=True)
    return [r for r in out if r is not None]


def _cache_file(paths: Sequence[str]) -> Path:
    # absolute, not resolved: resolving would follow (and fail on) symlink loops
    key = hashlib.sha1("\n".join(sorted({os.path.dirname(os.path.abspath(p)) for p in paths})).encode()).hexdigest()[:16]
    return cache_dir() / "scans" / f"{key}.json"


def scan_images(paths: Sequence[str], workers: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Decode every file once; return one row per path with `ok`, `reason`, size, mode and hash.

    Args:
        paths: image files.
        workers: decoding threads (default: CPU count).
        progress: show a progress bar on stderr (when it is a terminal).
    """
    from kmodels.api import atomic_write

    cache_path = _cache_file(paths)
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for p in paths:
        try:
            st = os.stat(p)
            # ctime too: any write changes it and no one can set it back (a file rewritten with its size and
            # mtime restored by `touch -d` still gets a new ctime), so a changed file is decoded again
            key = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"
        except OSError:
            key = None
        hit = cache.get(p)
        if key is not None and hit is not None and hit.get("key") == key:
            results[p] = hit["result"]
        else:
            todo.append((p, key))
    if todo:
        for (p, key), result in zip(todo, _inspect_all([p for p, _ in todo], workers, progress), strict=True):
            results[p] = result
            if key is not None and not result.pop("timed_out", False):  # a stall may not happen again
                cache[p] = {"key": key, "result": result}
        try:
            atomic_write(cache_path, json.dumps(cache))
        except OSError as exc:  # a read-only home must not stop a run
            logger.warning("Could not write the scan cache %s: %s", cache_path, exc)
    logger.info("Scanned %d image(s): %d decoded now, %d from the cache", len(paths), len(todo), len(paths) - len(todo))
    rows = [{"path": p, **results[p]} for p in paths]
    frame = pd.DataFrame(rows)
    for col in ("reason", "width", "height", "mode", "format", "bytes", "sha256"):
        if col not in frame:
            frame[col] = None
    return frame
