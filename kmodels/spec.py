"""Task specs: TOML → validated, fully defaulted spec; dotted overrides; render.

A spec has these sections (task plugins may add their own):

- `task` (str): the registered task that runs it;
- `base` (str): a registered task whose shipped spec this one starts from, expanded
  first (`kmodels._spec_base.with_base`);
- `[data]`: `name` of a registered dataset plus its keyword arguments;
- `[split]`: test/validation fractions, stratification, grouping column;
- `[[preprocess]]`: registered preprocessors, fitted on the training split;
- `[model]`: `name` of a registered model plus its keyword arguments;
- `[compile]`: optimizer, learning rate, loss, metrics (resolved by Keras);
- `[train]`: epochs, batch size, seed, class weighting, precision, distribution;
- `[fine_tune]`: the second, fine-tuning phase of a pretrained backbone;
- `[[callbacks]]`: registered callbacks with their keyword arguments;
- `[evaluate]`: decision threshold;
- `[tracking]`: an optional MLflow logger (see `kmodels.tracking`).

Every block is checked against the signature of what it names before anything
is built. Example:

    >>> import kmodels
    >>> spec = kmodels.load_spec("bank_gender", overrides={"train.epochs": 2})  # doctest: +SKIP
    >>> spec["train"]["epochs"]  # doctest: +SKIP
    2
"""

from __future__ import annotations

import copy
import difflib
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kmodels import _config, _toml, registry
from kmodels._spec_base import with_base
from kmodels.errors import ConfigError, DataError
from kmodels.options import CompileOptions, EvaluateOptions, FineTuneOptions, SplitOptions, TrainOptions
from kmodels.run_paths import CALLBACK_PATH_KEYS, check_run_path
from kmodels.tracking import TrackingOptions

#: Parameters a model builder may leave to be inferred from the data.
INFERRED_MODEL_KEYS = ("input_shape", "num_classes")
#: Fixed-schema sections every task has.
SECTIONS: dict[str, type] = {
    "split": SplitOptions,
    "compile": CompileOptions,
    "train": TrainOptions,
    "fine_tune": FineTuneOptions,
    "evaluate": EvaluateOptions,
    "tracking": TrackingOptions,
}
#: Sections that name a registered item: section → registry.
BLOCKS: dict[str, registry.Registry] = {"data": registry.datasets, "model": registry.models}
#: Sections that hold a list of registered items.
BLOCK_LISTS: dict[str, registry.Registry] = {
    "preprocess": registry.preprocessors,
    "callbacks": registry.callbacks,
}
TOP_LEVEL = ("task", "description")


def _native(value: Any) -> Any:
    """TOML-native form of a default value (tuples become lists)."""
    if isinstance(value, tuple | list):
        return [_native(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _native(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


class TaskSpec(Mapping[str, Any]):
    """A validated, fully defaulted task spec (read-only mapping of sections).

    Args:
        data: the resolved spec as plain TOML-native values.
        source: where it came from (a task name or a file path), for messages.
    """

    def __init__(self, data: Mapping[str, Any], source: str) -> None:
        self._data = copy.deepcopy(dict(data))
        self.source = source

    def __getitem__(self, key: str) -> Any:
        return copy.deepcopy(self._data[key])

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"TaskSpec(task={self.task!r}, source={self.source!r})"

    @property
    def task(self) -> str:
        return self._data["task"]

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)

    def replaced(self, dotted: str, value: Any) -> TaskSpec:
        """A copy with one setting changed, named as on the command line (`apply_override`): a setting a task
        resolves from the data, e.g. an image size.

        Example:
            >>> spec = load_spec("image_classification")
            >>> spec.replaced("images.image_size", [32, 32])["images"]["image_size"]
            [32, 32]
        """
        data = self.to_dict()
        apply_override(data, dotted, value)
        return TaskSpec(data, self.source)

    def to_toml(self) -> str:
        """The spec as TOML: `load_spec` of this text gives the same spec."""
        header = f"# kmodels task spec, resolved from {self.source}\n"
        return header + _toml.dumps(self._data)

    def options(self, section: str) -> Any:
        """The fixed-schema `section` as its options object (e.g. `TrainOptions`)."""
        cls = SECTIONS[section] if section in SECTIONS else _task_sections(self.task)[section]
        return cls(**_config.validate_kwargs(cls, self._data.get(section, {}), where=f"[{section}]"))


def parse_override(text: str) -> tuple[str, Any]:
    """Split `"train.epochs=3"` into `("train.epochs", 3)`.

    The value is read as a TOML value (`3`, `0.5`, `true`, `[16, 32]`,
    `"text"`); anything that is not valid TOML is taken as a plain string, so
    `data.target=CustGender` works without quotes.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(
            f"Received override {text!r}. Expected KEY=VALUE with a dotted key, "
            "e.g. `--set train.epochs=3` or `--set model.filters=[16,32]`."
        )
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def _task_sections(task: str) -> dict[str, type]:
    cls = registry.tasks.get(task)
    return dict(getattr(cls, "sections", {}) or {})


def _unused_sections(task: str) -> tuple[str, ...]:
    return tuple(getattr(registry.tasks.get(task), "unused_sections", ()) or ())


def _section_names(task: str | None) -> list[str]:
    names = [*TOP_LEVEL, *BLOCKS, *SECTIONS, *BLOCK_LISTS]
    if task:
        names += list(_task_sections(task))
    return names


def apply_override(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `dotted` (e.g. `train.epochs`, `callbacks.early_stopping.patience`) in `raw`.

    In lists of blocks (`preprocess`, `callbacks`) a segment picks an element
    by its `name` or by its index.
    """
    parts = dotted.split(".")
    if any(not p for p in parts):
        raise ConfigError(f"Received override key {dotted!r}. Expected dotted names like 'train.epochs'.")
    sections = _section_names(raw.get("task") if isinstance(raw.get("task"), str) else None)
    if parts[0] not in sections:
        close = difflib.get_close_matches(parts[0], sections, n=2)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ConfigError(
            f"Override {dotted!r}: unknown section {parts[0]!r}.{hint} Sections: {', '.join(sections)}."
        )
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            names = [b.get("name") for b in node if isinstance(b, Mapping)]
            if part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif part in names:
                node = node[names.index(part)]
            else:
                raise ConfigError(
                    f"Override {dotted!r}: no element {part!r} in {'.'.join(parts[:i])}. "
                    f"Elements: {', '.join(map(str, names)) or '(none)'}; use a name or an index."
                )
        elif isinstance(node, dict):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict | list):
                raise ConfigError(
                    f"Override {dotted!r}: {'.'.join(parts[: i + 1])} is a value ({child!r}), not a section."
                )
            node = child
    if isinstance(node, list):
        raise ConfigError(
            f"Override {dotted!r}: {'.'.join(parts[:-1])} is a list; name an element, "
            f"e.g. {'.'.join(parts[:-1])}.0.{parts[-1]}."
        )
    node[parts[-1]] = value


def _resolve_block(block: Any, reg: registry.Registry, where: str, *, renamed: bool,
                   keep: set[str], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(block, Mapping):
        raise ConfigError(f"{where} must be a table with a 'name' key; received {block!r}.")
    block = dict(block)
    name = block.get("name")
    if isinstance(name, str) and renamed:
        # The name was switched by an override: keys written for the old item
        # that the new one does not take are dropped; keys set by overrides stay.
        params = _config.schema(reg.get(name))
        block = {k: v for k, v in block.items() if k == "name" or k in params or k in keep}
    label = f"{where} {name!r}" if isinstance(name, str) else where
    reg.validate(block, where=label, optional=optional)
    out = {"name": name}
    params = _config.schema(reg.get(name))
    for key, p in params.items():
        if key in block:
            out[key] = _native(block[key])
        elif p.default is not p.empty and key not in optional:
            out[key] = _native(p.default)
    return out


def resolve(raw: Mapping[str, Any], source: str = "<dict>", *,
            overrides: Mapping[str, Any] | Iterable[str] | None = None) -> TaskSpec:
    """Validate `raw` (a parsed TOML document), apply `overrides`, fill defaults."""
    raw = with_base(copy.deepcopy(dict(raw)), source)
    pairs: list[tuple[str, Any]]
    if overrides is None:
        pairs = []
    elif isinstance(overrides, Mapping):
        pairs = list(overrides.items())
    else:
        pairs = [parse_override(o) if isinstance(o, str) else tuple(o) for o in overrides]
    task = raw.get("task")
    if not isinstance(task, str):
        raise ConfigError(
            f"{source}: the spec needs a top-level `task = \"NAME\"` naming a registered task "
            f"(received {task!r}). List tasks with `kmodels list tasks`."
        )
    registry.tasks.get(task)  # unknown task: did-you-mean error before anything else
    renamed: set[str] = set()
    set_keys: dict[str, set[str]] = {}
    for key, value in pairs:
        apply_override(raw, key, value)
        head, _, rest = key.rpartition(".")
        set_keys.setdefault(head, set()).add(rest)
        if rest == "name":
            renamed.add(head)
    task = raw["task"]
    extra = _task_sections(task)
    allowed = _section_names(task)
    for key in raw:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=2)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"{source}: unknown section {key!r}.{hint} Sections: {', '.join(allowed)}.")
    for key in _unused_sections(task):
        if raw.get(key):
            raise ConfigError(f"{source}: task {task!r} does not use [{key}]; remove it (it would be ignored).")
    out: dict[str, Any] = {"task": task}
    if "description" in raw:
        out["description"] = str(raw["description"])
    for section, reg in BLOCKS.items():
        if section not in raw:
            raise ConfigError(f"{source}: missing section [{section}] (a table with a 'name' key).")
        out[section] = _resolve_block(
            raw[section], reg, f"[{section}]", renamed=section in renamed,
            keep=set_keys.get(section, set()),
            optional=INFERRED_MODEL_KEYS if section == "model" else (),
        )
    for section, cls in {**SECTIONS, **extra}.items():
        block = raw.get(section, {})
        if not isinstance(block, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table; received {block!r}.")
        cls(**_config.validate_kwargs(cls, block, where=f"[{section}]"))  # range checks in __post_init__
        out[section] = {**{k: _native(v) for k, v in _config.defaults(cls).items()},
                        **{k: _native(v) for k, v in block.items()}}
    for section, reg in BLOCK_LISTS.items():
        items = raw.get(section, [])
        if not isinstance(items, list):
            raise ConfigError(f"{source}: {section} must be an array of tables ([[{section}]]); received {items!r}.")
        out[section] = [
            _resolve_block(item, reg, f"[[{section}]] #{i}", renamed=False, keep=set())
            for i, item in enumerate(items)
        ]
    for block in out["callbacks"]:
        for key in CALLBACK_PATH_KEYS:
            if block.get(key) is not None:
                block[key] = check_run_path(block[key], f"[[callbacks]] {block['name']!r} {key}")
    return TaskSpec(out, source)


#: The largest spec file kmodels reads (specs are a few kilobytes).
MAX_SPEC_BYTES = 2**20


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file with an error that names the file and the line."""
    import stat

    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"Spec file {str(path)!r} does not exist.") from None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SPEC_BYTES:
        raise ConfigError(f"Spec file {str(path)!r} is not a regular file of at most {MAX_SPEC_BYTES:,} bytes "
                          "(a folder, FIFO, device or oversized file); give a TOML spec file.")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Spec file {str(path)!r} does not exist.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Spec file {str(path)!r} is not UTF-8 text: {exc}.") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Spec file {str(path)!r} is not valid TOML: {exc}.") from None


def _looks_like_path(task_or_path: str | Path) -> bool:
    text = str(task_or_path)
    return isinstance(task_or_path, Path) or text.endswith(".toml") or "/" in text or "\\" in text


def raw_spec(task_or_path: str | Path) -> tuple[dict[str, Any], str]:
    """The unresolved spec of a registered task name or a TOML file path, its `base` expanded."""
    if _looks_like_path(task_or_path):
        return with_base(read_toml(task_or_path), str(task_or_path)), str(task_or_path)
    task_cls = registry.tasks.get(str(task_or_path))
    return task_cls.default_spec(), str(task_or_path)


def load_spec(task_or_path: str | Path, overrides: Mapping[str, Any] | Iterable[str] | None = None,
              *, data: Any = None) -> TaskSpec:
    """Load, validate and fully default a task spec.

    Args:
        task_or_path: a registered task name (`"bank_gender"`) or a TOML file.
        overrides: dotted keys to values (`{"train.epochs": 3}`) or
            `"KEY=VALUE"` strings, type-checked like the file.
        data: a path to the user's data (the task decides how it is read), or a pandas
            DataFrame (written once into the kmodels cache as CSV; see `kmodels.data.cache.frame_file`).

    Returns:
        The resolved `TaskSpec`; `spec.to_toml()` renders it for editing.

    Raises:
        ConfigError: naming the key, the expected type and the allowed keys.
    """
    raw, source = raw_spec(task_or_path)
    if data is not None and hasattr(data, "to_csv") and hasattr(data, "columns"):
        from kmodels.data.cache import frame_file

        data = frame_file(data)
    if data is not None:
        if not Path(data).expanduser().exists():
            raise DataError(f"--data {str(data)!r} does not exist; give the path of your data file or folder.")
        task = raw.get("task")
        if isinstance(task, str):
            # absolute, so the run's spec.toml still finds the data from any folder (evaluate, re-runs)
            raw = registry.tasks.get(task).with_data(raw, Path(data).expanduser().resolve())
    return resolve(raw, source, overrides=overrides)
