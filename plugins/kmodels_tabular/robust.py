"""RealMLP's numeric preprocessing (Holzmüller et al., NeurIPS 2024): robust scaling, then a smooth clip.

`robust_scale` centres each numeric column on its training median and divides by its
interquartile range, so a few extreme values no longer squeeze every other row into a sliver
around zero, as a standard deviation lets them. `smooth_clip` then bends what is left far
out toward ±`bound` (x / sqrt(1 + (x / bound)²)): monotone, close to the identity near 0, and
bounded, so a value unseen in training cannot throw the network off its scale.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kmodels.api import graph, registry
from kmodels_tabular._steps import Step, as_frame, require_columns, require_graph_columns, require_numeric


@registry.preprocessors.register("robust_scale")
class RobustScale(Step):
    """Centre every numeric column on its training median and divide by its interquartile range.

    A column whose quartiles coincide (mostly one value, e.g. a 0/1 flag that is nearly always 0)
    is divided by half its training range instead, as RealMLP does; a constant column is centred
    and left unscaled. Missing values stay missing (impute first, or after). Non-numeric columns
    are an error: encode them first.

    Example:
        >>> import pandas as pd
        >>> RobustScale().fit_transform(pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 100.0]}))["a"].tolist()
        [-1.0, -0.5, 0.0, 0.5, 48.5]
    """

    def fit(self, x: pd.DataFrame, y: object = None) -> RobustScale:
        x = as_frame(x, "robust_scale")
        require_numeric(x, "robust_scale")
        self.columns_ = list(x.columns)
        centre, scale = np.zeros(len(self.columns_)), np.ones(len(self.columns_))
        for i, c in enumerate(self.columns_):
            values = x[c].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            if not len(values):
                continue
            q25, median, q75 = np.quantile(values, [0.25, 0.5, 0.75])
            spread = q75 - q25 if q75 > q25 else (values.max() - values.min()) / 2
            centre[i], scale[i] = median, spread if spread > 0 else 1.0
        self.centre_, self.scale_ = centre, scale
        return self

    def transform(self, x: pd.DataFrame) -> pd.DataFrame:
        x = self._check(x)
        require_columns(x, self.columns_, "robust_scale")
        columns = {c: (x[c].to_numpy(dtype=float) - m) / s
                   for c, m, s in zip(self.columns_, self.centre_, self.scale_, strict=True)}
        return pd.DataFrame(columns, index=x.index, copy=False)

    def to_graph(self, columns: dict[str, graph.Column]) -> dict[str, graph.Column]:
        require_graph_columns(columns, self.columns_, "robust_scale")
        return {c: (graph.as_number(columns[c]) - m) / s
                for c, m, s in zip(self.columns_, self.centre_, self.scale_, strict=True)}


@registry.preprocessors.register("smooth_clip")
class SmoothClip(Step):
    """Bend every numeric column smoothly into (-bound, bound): x / sqrt(1 + (x / bound)²).

    Near zero it is the identity (0.5 → 0.49 with the default bound 3), far out it flattens
    (10 → 2.87, 1e6 → 3.0), and it keeps the order of the values. RealMLP applies it after
    robust scaling. Missing values stay missing.

    Args:
        bound: the limit the values approach (> 0).

    Example:
        >>> import pandas as pd
        >>> [round(v, 2) for v in SmoothClip().fit_transform(pd.DataFrame({"a": [0.0, 0.5, 10.0, -1e6]}))["a"]]
        [0.0, 0.49, 2.87, -3.0]
    """

    def __init__(self, bound: float = 3.0) -> None:
        self.bound = bound

    def fit(self, x: pd.DataFrame, y: object = None) -> SmoothClip:
        x = as_frame(x, "smooth_clip")
        if not (isinstance(self.bound, (int, float)) and np.isfinite(self.bound) and self.bound > 0):
            raise ValueError(f"smooth_clip: bound={self.bound!r}; expected a positive number, e.g. 3.")
        require_numeric(x, "smooth_clip")
        self.columns_ = list(x.columns)
        return self

    def transform(self, x: pd.DataFrame) -> pd.DataFrame:
        x = self._check(x)
        require_columns(x, self.columns_, "smooth_clip")
        b = float(self.bound)
        columns = {}
        for c in self.columns_:
            # b t / sqrt(1 + t^2) with t = x / b held to ±1e150, so that t^2 cannot overflow (huge x gives ±b)
            t = np.clip(x[c].to_numpy(dtype=float) / b, -_T_MAX, _T_MAX)
            columns[c] = b * (t / np.sqrt(1.0 + t * t))  # the ratio is <= 1 in floats too: |out| <= b exactly
        return pd.DataFrame(columns, index=x.index, copy=False)

    def to_graph(self, columns: dict[str, graph.Column]) -> dict[str, graph.Column]:
        require_graph_columns(columns, self.columns_, "smooth_clip")
        b = float(self.bound)
        out = {}
        for c in self.columns_:
            low = graph.maximum(graph.as_number(columns[c]) / b, -_T_MAX)
            t = -1.0 * graph.maximum(-1.0 * low, -_T_MAX)  # min(max(t, -M), M): np.clip
            out[c] = b * (t / graph.sqrt(graph.const(1.0) + t * t))
        return out


#: `smooth_clip` holds x / bound within ±this before squaring it (its square, 1e300, is still a float64).
_T_MAX = 1e150
