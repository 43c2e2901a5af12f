"""Where kmodels keeps what it can recompute (generated data sets, scan results, DataFrames given as data).

`$KMODELS_CACHE_DIR`, default `~/.cache/kmodels`.

Example:
    >>> cache_dir().is_absolute()
    True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """Where scan results are cached: `$KMODELS_CACHE_DIR` or `~/.cache/kmodels`."""
    return Path(os.environ.get("KMODELS_CACHE_DIR", Path.home() / ".cache" / "kmodels")).expanduser()


def frame_file(frame: Any) -> Path:
    """A pandas DataFrame written once as CSV into the kmodels cache, named by its content.

    `kmodels.run(task, data=frame)` runs on this file, so the run's `spec.toml`
    names real data and the run can be repeated or resumed.

    Example:
        >>> import pandas as pd
        >>> p = frame_file(pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}))
        >>> p.suffix, p.read_text().splitlines()[0]
        ('.csv', 'x,y')
    """
    import hashlib

    from kmodels.runs import atomic_write

    text = frame.to_csv(index=False)
    path = cache_dir() / "frames" / f"{hashlib.sha256(text.encode()).hexdigest()[:20]}.csv"
    if not path.is_file():
        atomic_write(path, text)
    return path
