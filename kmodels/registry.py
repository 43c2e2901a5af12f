"""Name registries for models, preprocessors, callbacks, datasets and tasks.

Each kind has one `Registry`. Items register with a decorator (or a plain
call) and are looked up by name; plugins outside this package register the
same way from modules listed in the `kmodels.plugins` entry-point group, which
is loaded lazily, once, on the first lookup.

Example:
    >>> from kmodels import registry
    >>> reg = registry.Registry("examples")
    >>> @reg.register("double")
    ... def double(x: int = 2) -> int:
    ...     '''Twice x.'''
    ...     return 2 * x
    >>> reg.get("double")()
    4
    >>> reg.list("d*")
    ['double']
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from kmodels import _config
from kmodels.errors import DuplicateNameError, NotRegisteredError

logger = logging.getLogger("kmodels")

ENTRY_POINT_GROUP = "kmodels.plugins"


@dataclass(frozen=True)
class Param:
    """One keyword argument of a registered builder: its config schema entry."""

    name: str
    type: str
    default: Any = None
    required: bool = False


@dataclass(frozen=True)
class ItemInfo:
    """What `Registry.describe` returns: signature, defaults and summary."""

    kind: str
    name: str
    summary: str
    source: str
    params: tuple[Param, ...]
    signature: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Entry:
    obj: Any
    source: str
    meta: dict[str, Any]


def _source_of(obj: Any) -> str:
    """`module.qualname (file:line)`: where an item was defined. The line is a function's first one (its code
    object has it for free); a class gives its file only, as finding its line means parsing the file, which
    for every registered item was a quarter of a second at each start."""
    module = getattr(obj, "__module__", "?")
    qualname = getattr(obj, "__qualname__", type(obj).__name__)
    try:
        file = inspect.getsourcefile(obj)
    except TypeError:  # a built-in or an instance
        file = None
    if not file:
        return f"{module}.{qualname}"
    code = getattr(inspect.unwrap(obj), "__code__", None) if inspect.isfunction(obj) or inspect.ismethod(obj) else None
    return f"{module}.{qualname} ({file}:{code.co_firstlineno})" if code else f"{module}.{qualname} ({file})"


class _Plugins:
    """Loads the `kmodels.plugins` entry points once and remembers failures."""

    def __init__(self) -> None:
        self.loaded = False
        self.loading = False
        self.errors: dict[str, str] = {}
        self.names: list[str] = []

    def entry_points(self) -> Iterable[metadata.EntryPoint]:
        return metadata.entry_points(group=ENTRY_POINT_GROUP)

    def load(self) -> None:
        if self.loaded or self.loading:
            return
        self.loading = True
        try:
            for ep in sorted(self.entry_points(), key=lambda e: e.name):
                try:
                    ep.load()
                except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the others
                    self.errors[ep.name] = f"{type(exc).__name__}: {exc}"
                    logger.warning(
                        "kmodels plugin %r (%s) failed to import and was skipped: %s: %s",
                        ep.name, ep.value, type(exc).__name__, exc,
                    )
                else:
                    self.names.append(ep.name)
        finally:
            self.loading = False
            self.loaded = True

    def reset(self) -> None:
        """Forget what was loaded (for tests that install plugins)."""
        self.__init__()


plugins = _Plugins()


class Registry:
    """A named collection of builders of one kind.

    Args:
        kind: the plural name of the kind (`"models"`), used in messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, _Entry] = {}
        self._aliases: dict[str, str] = {}  # old name -> the name it now goes by

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._items)} items)"

    def register(self, name: str | None = None, obj: Any = None, *, replace: bool = False,
                 aliases: tuple[str, ...] = (), **meta: Any) -> Any:
        """Register `obj` under `name`; usable as a decorator or a plain call.

        `@reg.register("x")`, `@reg.register()` (uses the function name) and
        `reg.register("x", fn)` all work. Extra keyword arguments are stored as
        metadata (e.g. default compile settings of a model). `replace=True`
        takes the name over (re-running a notebook cell that registers a model).
        `aliases` are older names that still resolve to it (saved specs keep running);
        `list()` shows the name only, `aliases()` the old names.

        Raises:
            DuplicateNameError: when `name` is already taken by another object and `replace` is false.
        """

        def add(target: Any) -> Any:
            key = name or getattr(target, "__name__", None)
            if not key:
                raise ValueError(f"Cannot infer a name for {target!r}; pass name=...")
            source = _source_of(target)
            old = self._items.get(key)
            if old is not None and old.source != source and not replace:
                raise DuplicateNameError(
                    f"{self.kind} name {key!r} is already registered by {old.source}; "
                    f"cannot register it again for {source}. Pick another name, or pass replace=True "
                    "(e.g. when re-running a notebook cell)."
                )
            for alias in aliases:
                taken = self._items.get(alias)
                if (taken is not None and taken.source != source and not replace) or \
                        self._aliases.get(alias, key) != key:
                    raise DuplicateNameError(f"{self.kind} alias {alias!r} of {key!r} is already a name or an alias "
                                             f"of {self._aliases.get(alias, alias)!r}; choose another.")
            if key in self._aliases and not replace:
                raise DuplicateNameError(f"{self.kind} name {key!r} is already an alias of "
                                         f"{self._aliases[key]!r}; pick another name.")
            self._items[key] = _Entry(target, source, dict(meta))
            for alias in aliases:
                self._aliases[alias] = key
            return target

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> None:
        """Remove `name` and its aliases (for tests and interactive use)."""
        self._items.pop(name, None)
        for alias in [a for a, target in self._aliases.items() if target == name]:
            del self._aliases[alias]

    def _entry(self, name: str) -> _Entry:
        plugins.load()
        try:
            return self._items[self._aliases.get(name, name)]
        except KeyError:
            pass
        close = difflib.get_close_matches(name, list(self._items), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        broken = ""
        if plugins.errors:
            broken = " Plugins that failed to load: " + "; ".join(
                f"{k} ({v})" for k, v in plugins.errors.items()
            ) + "."
        raise NotRegisteredError(
            f"Unknown {self.kind[:-1]} {name!r}.{hint} "
            f"List all with `kmodels list {self.kind}` or kmodels.registry.{self.kind}.list().{broken}"
        )

    def get(self, name: str) -> Any:
        """The object registered under `name` (raises with suggestions if unknown)."""
        return self._entry(name).obj

    def meta(self, name: str) -> dict[str, Any]:
        """Metadata given at registration."""
        return dict(self._entry(name).meta)

    def __contains__(self, name: object) -> bool:
        plugins.load()
        return name in self._items or name in self._aliases

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted names matching the glob `pattern` (e.g. `"*cnn*"`); aliases are not listed (see `aliases`)."""
        plugins.load()
        return sorted(n for n in self._items if fnmatch.fnmatchcase(n, pattern))

    def aliases(self, pattern: str = "*") -> dict[str, str]:
        """Older names matching `pattern` → the name each now goes by (e.g. `{"dog_cat_cnn": "simple_cnn"}`)."""
        plugins.load()
        return {a: n for a, n in sorted(self._aliases.items()) if fnmatch.fnmatchcase(a, pattern)}

    def canonical(self, name: str) -> str:
        """The name `name` goes by (itself, unless it is an alias)."""
        plugins.load()
        return self._aliases.get(name, name)

    def describe(self, name: str) -> ItemInfo:
        """Signature, defaults and first docstring line of `name`."""
        entry = self._entry(name)
        params = []
        for key, p in _config.schema(entry.obj).items():
            required = p.default is inspect.Parameter.empty
            params.append(
                Param(key, _config.type_name(p.annotation), None if required else p.default, required)
            )
        doc = inspect.getdoc(entry.obj) or ""
        summary = doc.strip().splitlines()[0] if doc.strip() else ""
        sig = ", ".join(
            f"{p.name}: {p.type}" + ("" if p.required else f" = {p.default!r}") for p in params
        )
        return ItemInfo(self.kind, name, summary, entry.source, tuple(params), f"{name}({sig})", entry.meta)

    def validate(self, block: dict[str, Any], *, where: str | None = None,
                 optional: tuple[str, ...] = ()) -> dict[str, Any]:
        """Check a spec block `{name = ..., **kwargs}`; return the call kwargs."""
        name = block.get("name")
        if not isinstance(name, str):
            raise NotRegisteredError(
                f"{where or self.kind} block needs a string 'name' naming a registered "
                f"{self.kind[:-1]}; received {name!r}. List them with `kmodels list {self.kind}`."
            )
        fn = self.get(name)
        kwargs = {k: v for k, v in block.items() if k != "name"}
        return _config.validate_kwargs(
            fn, kwargs, where=where or f"{self.kind[:-1]} {name!r}", optional=optional
        )

    def create(self, block: dict[str, Any], *, where: str | None = None, **extra: Any) -> Any:
        """Validate `block` and call its builder with its kwargs plus `extra`."""
        kwargs = self.validate(block, where=where, optional=tuple(extra))
        return self.get(block["name"])(**kwargs, **extra)


models = Registry("models")
preprocessors = Registry("preprocessors")
callbacks = Registry("callbacks")
datasets = Registry("datasets")
tasks = Registry("tasks")

KINDS: dict[str, Registry] = {
    r.kind: r for r in (models, preprocessors, callbacks, datasets, tasks)
}


def get_registry(kind: str) -> Registry:
    """The registry of `kind` (`"models"`, ...), with a clear error if unknown."""
    try:
        return KINDS[kind]
    except KeyError:
        close = difflib.get_close_matches(kind, list(KINDS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise NotRegisteredError(
            f"Unknown kind {kind!r}.{hint} Kinds: {', '.join(KINDS)}."
        ) from None

