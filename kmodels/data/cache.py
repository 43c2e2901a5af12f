"""Where kmodels keeps what it can recompute (generated data sets, scan results).

`$KMODELS_CACHE_DIR`, default `~/.cache/kmodels`.

Example:
    >>> cache_dir().is_absolute()
    True
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Where scan results are cached: `$KMODELS_CACHE_DIR` or `~/.cache/kmodels`."""
    return Path(os.environ.get("KMODELS_CACHE_DIR", Path.home() / ".cache" / "kmodels")).expanduser()
