"""The CLI's catalog cache: what `kmodels list` and `kmodels show` print, without importing Keras.

Loading the plugins imports Keras and its backend (seconds for TensorFlow). The
first `list` or `show` in a fresh environment loads them and writes a catalog
(every registered item's summary, source and parameters, and every task's
resolved spec) to `$KMODELS_CACHE_DIR/cli-catalog.json`; later ones read it.
The catalog is keyed by a fingerprint of what defines it: the kmodels and Keras
versions, the installed `kmodels.plugins` entry points and their distributions'
versions, and the size and modification time of every source file of kmodels
and of each plugin package. Editing or
installing a plugin changes the fingerprint, and the next command rebuilds the
catalog. Only a fresh CLI process uses it (nothing registered in-process).

Example:
    >>> len(fingerprint()) == 40
    True
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger("kmodels")

#: Bumped when the catalog's layout changes.
FORMAT = 1


def _catalog_path() -> Path:
    # the rule of `kmodels.data.cache.cache_dir`, inlined: importing kmodels.data would import pandas
    return Path(os.environ.get("KMODELS_CACHE_DIR", Path.home() / ".cache" / "kmodels")).expanduser() / "cli-catalog.json"


def _package_files(module: str) -> list[Path]:
    spec = importlib.util.find_spec(module.split(".")[0])
    if spec is None:
        return []
    roots = list(spec.submodule_search_locations or []) or ([os.path.dirname(spec.origin)] if spec.origin else [])
    files: list[Path] = []
    for root in roots:
        files += sorted(p for p in Path(root).rglob("*") if p.suffix in (".py", ".toml") and "__pycache__" not in p.parts)
    return files


def fingerprint() -> str:
    """A digest of the installed plugins and of every source file that registers items."""
    from importlib import metadata

    from kmodels import registry

    h = hashlib.sha1(f"{FORMAT}|{os.environ.get('KERAS_BACKEND', '')}".encode())
    for dist in ("kmodels", "keras"):  # Keras's callbacks are registered items: their signatures are its
        try:
            h.update(f"{dist}={metadata.version(dist)}\n".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}=source\n".encode())
    modules = ["kmodels"]
    for ep in sorted(registry.plugins.entry_points(), key=lambda e: e.name):
        version = ep.dist.version if getattr(ep, "dist", None) is not None else ""
        h.update(f"{ep.name}={ep.value} {version}\n".encode())
        modules.append(ep.value.split(":")[0])
    for module in dict.fromkeys(m.split(".")[0] for m in modules):
        for path in _package_files(module):
            try:
                st = path.stat()
            except OSError:
                continue
            h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def usable() -> bool:
    """Whether this process may answer from the catalog: nothing imported or registered in-process yet."""
    import sys

    from kmodels import registry

    return "keras" not in sys.modules and not registry.plugins.loaded and not any(
        reg._items for reg in registry.KINDS.values())


def read() -> dict[str, Any] | None:
    """The catalog, when it exists and matches the current fingerprint; else `None`."""
    if not usable():
        return None
    try:
        catalog = json.loads(_catalog_path().read_text())
    except (OSError, ValueError):
        return None
    if catalog.get("fingerprint") != fingerprint():
        return None
    return catalog


def build() -> dict[str, Any]:
    """The catalog of the loaded registries (imports every plugin)."""
    from kmodels import registry
    from kmodels.spec import load_spec

    items: dict[str, dict[str, Any]] = {}
    for kind, reg in registry.KINDS.items():
        items[kind] = {}
        for name in reg.list():
            info = reg.describe(name)
            items[kind][name] = {"summary": info.summary, "source": info.source,
                                 "params": [[p.name, p.type, repr(p.default), p.required] for p in info.params]}
        for alias, target in reg.aliases().items():
            items[kind][alias] = {**items[kind][target], "alias_of": target,
                                  "summary": f"alias of {target} (an older name, still accepted)"}
    specs = {}
    for name in registry.tasks.list():
        try:
            specs[name] = load_spec(name).to_toml()
        except Exception as exc:  # noqa: BLE001 - a plugin's broken spec must not break `list`; `show` reports it
            logger.debug("Catalog: the spec of task %r does not resolve: %s: %s", name, type(exc).__name__, exc)
            continue
    return {"fingerprint": fingerprint(), "items": items, "specs": specs, "errors": dict(registry.plugins.errors)}


def write(catalog: dict[str, Any] | None = None) -> None:
    """Save `catalog` (default: `build()` it); a failure only costs the next command its speed."""
    from kmodels.errors import KModelsError
    from kmodels.runs import atomic_write

    try:
        atomic_write(_catalog_path(), json.dumps(build() if catalog is None else catalog))
    except (OSError, KModelsError) as exc:
        logger.debug("Could not write the CLI catalog %s: %s", _catalog_path(), exc)
