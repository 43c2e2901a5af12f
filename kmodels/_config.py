"""Signature-derived config validation.

A registered builder's keyword arguments, with their type hints and defaults,
are its config schema. `validate_kwargs` checks a config block against that
schema before anything is built and returns the call-ready keyword arguments.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kmodels.errors import ConfigError

_MISSING = inspect.Parameter.empty


def type_name(annotation: Any) -> str:
    """Readable name of a type annotation: `list[int]`, `int | None`, ..."""
    if annotation is _MISSING or annotation is Any:
        return "any"
    if annotation is type(None):
        return "None"
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = typing.get_args(annotation)
        base = getattr(origin, "__name__", str(origin))
        if not args:
            return base
        return f"{base}[{', '.join('...' if a is Ellipsis else type_name(a) for a in args)}]"
    return getattr(annotation, "__name__", str(annotation))


class _Mismatch(Exception):
    pass


def coerce(value: Any, annotation: Any) -> Any:
    """Return `value` converted to `annotation`, or raise `_Mismatch`.

    TOML gives lists where builders want tuples and ints where they want
    floats; those conversions are made. Nothing else is: a string is never
    turned into a number and a bool is never accepted as an int.
    """
    if annotation is _MISSING or annotation is Any:
        return value
    if annotation is type(None):
        if value is None:
            return None
        raise _Mismatch
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            try:
                return coerce(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is typing.Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _Mismatch
    if origin in (list, Sequence, tuple) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise _Mismatch
            return tuple(coerce(v, a) for v, a in zip(value, args, strict=True))
        item = args[0] if args else Any
        items = [coerce(v, item) for v in value]
        return tuple(items) if (origin is tuple or annotation is tuple) else items
    if origin in (dict, Mapping) or annotation is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch
        key_t, val_t = args if args else (Any, Any)
        return {coerce(k, key_t): coerce(v, val_t) for k, v in value.items()}
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if annotation is Path:
        if isinstance(value, (str, Path)):
            return Path(value).expanduser()
        raise _Mismatch
    if isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        raise _Mismatch
    return value


def schema(fn: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """Keyword parameters of `fn` with resolved annotations, in order."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        hints = typing.get_type_hints(target)
    except (NameError, TypeError):  # unresolvable hints: fall back to raw annotations
        hints = {}
    params = {}
    sig = inspect.signature(fn)
    factories = {f.name: f.default_factory for f in dataclasses.fields(fn)
                 if f.default_factory is not dataclasses.MISSING} if dataclasses.is_dataclass(fn) else {}
    for name, p in sig.parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if name in factories:
            p = p.replace(default=factories[name]())
        annotation = hints.get(name, p.annotation)
        if annotation is _MISSING and p.default is not _MISSING:
            annotation = _infer(p.default)
        params[name] = p.replace(annotation=annotation)
    return params


def _infer(default: Any) -> Any:
    """Schema type of an unannotated parameter (e.g. Keras callbacks), from its default."""
    if isinstance(default, bool):
        return bool
    if isinstance(default, int | float):
        return int | float
    if isinstance(default, str):
        return str
    return _MISSING


def validate_kwargs(
    fn: Callable[..., Any],
    block: Mapping[str, Any],
    *,
    where: str,
    optional: Sequence[str] = (),
) -> dict[str, Any]:
    """Check `block` against the signature of `fn`; return call-ready kwargs.

    Args:
        fn: the builder whose keyword arguments are the schema.
        block: the config values (without the `name` key).
        where: where the block comes from, used in messages
            (e.g. `"model 'dog_cat_cnn'"`).
        optional: required parameters that may be left out here because the
            caller supplies them later (e.g. `input_shape` inferred from data).

    Raises:
        ConfigError: for an unknown key, a value of the wrong type or a
            missing required value; the message names the key, the expected
            type and the allowed keys.
    """
    params = schema(fn)
    allowed = ", ".join(params) or "(none)"
    out: dict[str, Any] = {}
    for key, value in block.items():
        if key not in params:
            import difflib

            close = difflib.get_close_matches(key, list(params), n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ConfigError(
                f"Unknown key {key!r} for {where}.{hint} Allowed keys: {allowed}."
            )
        annotation = params[key].annotation
        try:
            out[key] = coerce(value, annotation)
        except _Mismatch:
            raise ConfigError(
                f"Wrong type for {where} key {key!r}: received {value!r} "
                f"({type(value).__name__}); expected {type_name(annotation)}."
            ) from None
    for key, p in params.items():
        if key not in out and p.default is _MISSING and key not in optional:
            raise ConfigError(
                f"Missing required key {key!r} ({type_name(p.annotation)}) for {where}. "
                f"Allowed keys: {allowed}."
            )
    return out


def defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    """The default value of every parameter of `fn` that has one."""
    return {k: p.default for k, p in schema(fn).items() if p.default is not _MISSING}
