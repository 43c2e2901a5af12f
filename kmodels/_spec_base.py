"""A spec's `base = "TASK"`: the registered task's shipped spec, with the spec's own keys on top.

`kmodels.spec` applies it (`with_base`) to every spec it reads, so a file or a task's shipped
spec may hold only what differs from another task's: `dog_cat.toml` is `image_classification`'s
with a fixed image size and a binary loss.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from kmodels import registry
from kmodels.errors import ConfigError

__all__ = ["MAX_BASE_DEPTH", "with_base"]


#: How many `base` tasks a spec may stack (a spec on `dog_cat` on `image_classification` is two).
MAX_BASE_DEPTH = 8


def _merged(under: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `under`: tables merge key by key, anything else (arrays of tables too) replaces.

    A table whose `name` differs from the one under it names another registered item,
    so it replaces that table whole: the old item's keyword arguments would not fit.
    """
    out = copy.deepcopy(dict(under))
    for key, value in over.items():
        below = out.get(key)
        same_item = not (isinstance(value, Mapping) and "name" in value and isinstance(below, Mapping)
                         and below.get("name") != value["name"])
        if isinstance(value, Mapping) and isinstance(below, Mapping) and same_item:
            out[key] = _merged(below, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def with_base(raw: Mapping[str, Any], source: str = "<dict>", _chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """Expand a spec's top-level `base = "TASK"`: that registered task's shipped spec, with this one on top.

    Only what differs needs writing: tables merge key by key; arrays (`[[callbacks]]`,
    `[[preprocess]]`, lists of values) replace the base's whole; a `[data]` or `[model]`
    naming another item replaces the base's table. `task` defaults to the base's.
    A base is a registered task's name, never a file path, so a spec cannot make
    kmodels read another file. The expanded spec has no `base` key.

    Example:

        >>> from kmodels.spec import with_base
        >>> raw = with_base({"base": "tabular", "train": {"epochs": 5}})  # doctest: +SKIP
        >>> raw["task"], raw["train"]["epochs"]  # doctest: +SKIP
        ('tabular', 5)
    """
    if "base" not in raw:
        return dict(raw)
    base = raw["base"]
    if not isinstance(base, str):
        raise ConfigError(f"{source}: `base` must name a registered task (`base = \"image_classification\"`); "
                          f"received {base!r}. List tasks with `kmodels list tasks`.")
    if base in _chain or len(_chain) >= MAX_BASE_DEPTH:
        raise ConfigError(f"{source}: `base` specs form a loop or a chain over {MAX_BASE_DEPTH} long: "
                          f"{' -> '.join((*_chain, base))}; make one of them stand alone.")
    task_cls = registry.tasks.get(base)  # unknown name: did-you-mean error
    under = with_base(task_cls.shipped_spec(), base, (*_chain, base))
    return _merged(under, {k: v for k, v in raw.items() if k != "base"})
