"""The image data report and picture grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kmodels.api import pyplot, save_figure
from kmodels_vision.pipeline import load_image


def data_report(frame: pd.DataFrame, scan: pd.DataFrame) -> dict[str, Any]:
    """Counts per class and split, skipped files with reasons, converted modes, duplicates."""
    merged = frame.merge(scan, on="path", how="left")
    ok = merged[merged["ok"].astype(bool)]
    split_col = "split" if "split" in merged.columns else None
    counts = (ok.groupby([split_col, "label"]).size().unstack(fill_value=0).to_dict("index") if split_col
              else {"all": ok["label"].value_counts().to_dict()})
    dup_groups = [sorted(g["path"].tolist()) for _, g in ok.groupby("sha256") if len(g) > 1]
    return {
        "files": len(merged),
        "usable": len(ok),
        "counts": {str(k): {str(c): int(n) for c, n in v.items()} for k, v in counts.items()},
        "skipped": [{"path": r.path, "label": r.label, "reason": r.reason} for r in merged[~merged["ok"].astype(bool)].itertuples()],
        "converted_to_rgb": [{"path": r.path, "mode": r.mode} for r in ok[ok["mode"] != "RGB"].itertuples()],
        "duplicates": dup_groups,
        "image_size": {"width_median": _median(ok["width"]), "height_median": _median(ok["height"]),
                       "width_range": _range(ok["width"]), "height_range": _range(ok["height"])},
    }


def _median(s: pd.Series) -> float | None:
    return float(s.median()) if len(s) else None


def _range(s: pd.Series) -> list[int] | None:
    return [int(s.min()), int(s.max())] if len(s) else None


def plot_sizes(frame: pd.DataFrame, scan: pd.DataFrame, path: Path | None = None) -> Any:
    """Width against height of every readable image (`scan`'s `ok` rows), a colour per class up to 8 classes.

    Example:
        >>> frame = pd.DataFrame({"path": ["a", "b", "c"], "label": ["cat", "dog", "dog"]})
        >>> scan = pd.DataFrame({"path": ["a", "b", "c"], "ok": [True, True, False], "width": [40, 50, 60],
        ...                      "height": [30, 30, 30]})
        >>> fig = plot_sizes(frame, scan)
        >>> fig.axes[0].get_title(), [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        ('Image sizes (pixels)', ['cat', 'dog'])
        >>> pyplot().close(fig)
        >>> nine = pd.DataFrame({"path": list("abcdefghi"), "label": list("abcdefghi")})
        >>> fig = plot_sizes(nine, nine[["path"]].assign(ok=True, width=40, height=30))
        >>> fig.axes[0].get_title(), fig.axes[0].get_legend()
        ('Image sizes (pixels), 9 classes', None)
        >>> pyplot().close(fig)
    """
    import seaborn as sns

    plt = pyplot()
    ok = frame.merge(scan, on="path")
    ok = ok[ok["ok"].astype(bool)]
    fig, ax = plt.subplots(figsize=(5, 4))
    classes = ok["label"].nunique()
    by_class = classes <= 8  # a colour per class up to 8; past that one colour (a legend of 100 would hide the plot)
    sns.scatterplot(data=ok, x="width", y="height", hue="label" if by_class else None, s=12, alpha=0.6, ax=ax)
    ax.set_title("Image sizes (pixels)" if by_class else f"Image sizes (pixels), {classes} classes")
    fig.tight_layout()
    return save_figure(fig, path)


def image_grid(paths: Sequence[str], titles: Sequence[str], path: Path | None, title: str, size: int = 96) -> Any:
    """A grid of up to 16 images with a caption each (unreadable ones shown blank); the figure when `path` is None."""
    plt = pyplot()
    n = min(len(paths), 16)
    cols = 4
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.2, rows * 2.4), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < n:
            try:
                ax.imshow(load_image(paths[k], (size, size)).astype(np.uint8))
            except OSError:
                pass
            ax.set_title(titles[k], fontsize=8)
    if n == 0:
        axes[0][0].text(0.5, 0.5, "none", ha="center", va="center")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def occlusion_maps(predict: Any, images: np.ndarray, classes: np.ndarray, grid: int = 8) -> np.ndarray:
    """Occlusion sensitivity (Zeiler and Fergus, 2014): how much the probability of `classes[i]` drops when a
    square of image `i` is covered with its mean colour, for squares of a quarter side on a `grid` x `grid`
    stride; averaged per pixel. Forward passes only, so it is the same on every backend.

    Args:
        predict: a batch of images (n, h, w, 3) → class probabilities (n, k) (k = 1: the positive class).
        images: (n, h, w, 3) float pixels, as the model takes them.
        classes: the class whose probability is followed, per image (binary: 0 or 1).

    Returns:
        (n, h, w) maps: positive where covering the region lowers the class's probability.

    Example:
        >>> import numpy as np
        >>> imgs = np.zeros((1, 16, 16, 3), np.float32); imgs[0, :8, :8] = 255  # the evidence: top left
        >>> predict = lambda b: b[:, :8, :8].mean(axis=(1, 2, 3))[:, None] / 255
        >>> m = occlusion_maps(predict, imgs, np.array([1]), grid=4)
        >>> bool(m[0, :8, :8].mean() > m[0, 8:, 8:].mean())
        True
    """
    n, h, w, _ = images.shape
    sh, sw = max(1, h // grid), max(1, w // grid)
    ph, pw = max(sh, h // 4), max(sw, w // 4)
    tops = list(range(0, max(1, h - ph + 1), sh))
    lefts = list(range(0, max(1, w - pw + 1), sw))
    maps = np.zeros((n, h, w), dtype=np.float32)
    for i in range(n):
        base = images[i]
        fill = base.mean(axis=(0, 1))
        batch, boxes = [base], []
        for top in tops:
            for left in lefts:
                covered = base.copy()
                covered[top:top + ph, left:left + pw] = fill
                batch.append(covered)
                boxes.append((top, left))
        proba = np.asarray(predict(np.stack(batch)), dtype=np.float64)
        column = proba[:, classes[i]] if proba.shape[1] > 1 else (proba[:, 0] if classes[i] == 1 else 1 - proba[:, 0])
        total, count = np.zeros((h, w)), np.zeros((h, w))
        for (top, left), value in zip(boxes, column[0] - column[1:], strict=True):
            total[top:top + ph, left:left + pw] += value
            count[top:top + ph, left:left + pw] += 1
        maps[i] = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return maps


def saliency_grid(images: np.ndarray, maps: np.ndarray, titles: Sequence[str], path: str | Path,
                  title: str = "Occlusion maps") -> Path:
    """Each image beside its map laid over it (red: covering it lowers the predicted class's probability)."""
    plt = pyplot()
    n = len(images)
    fig, axes = plt.subplots(n, 2, figsize=(6, 3 * n), squeeze=False)
    scale = float(np.abs(maps).max()) or 1.0
    for i in range(n):
        picture = np.clip(images[i], 0, 255).astype(np.uint8)
        axes[i, 0].imshow(picture)
        axes[i, 0].set_title(titles[i], fontsize=8)
        axes[i, 1].imshow(picture)
        shown = axes[i, 1].imshow(maps[i], cmap="RdBu_r", vmin=-scale, vmax=scale, alpha=0.55)
        axes[i, 1].set_title("probability drop when covered", fontsize=8)
        for ax in axes[i]:
            ax.axis("off")
    fig.colorbar(shown, ax=axes[:, 1].tolist(), shrink=0.6)
    fig.suptitle(title)
    return save_figure(fig, path)
