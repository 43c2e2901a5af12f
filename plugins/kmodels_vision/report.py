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


def plot_sizes(frame: pd.DataFrame, scan: pd.DataFrame, path: Path) -> Path:
    import seaborn as sns

    plt = pyplot()
    ok = frame.merge(scan, on="path")
    ok = ok[ok["ok"].astype(bool)]
    fig, ax = plt.subplots(figsize=(5, 4))
    sns.scatterplot(data=ok, x="width", y="height", hue="label", s=12, alpha=0.6, ax=ax)
    ax.set_title("Image sizes (pixels)")
    fig.tight_layout()
    return save_figure(fig, path)


def image_grid(paths: Sequence[str], titles: Sequence[str], path: Path, title: str, size: int = 96) -> Path:
    """A grid of up to 16 images with a caption each (unreadable ones shown blank)."""
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
