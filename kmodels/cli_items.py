"""`kmodels list` and `kmodels show`: answered from the catalog cache when it is fresh, so they import no Keras."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kmodels.console import EXIT_OK, import_backend_quietly


def _catalog() -> dict[str, Any]:
    """Every registered item's description and the plugin errors: from the catalog cache when it is
    fresh (no Keras import), else built from the loaded registries and saved for the next command
    (only when nothing was registered in this process: then it describes the installation)."""
    from kmodels import _index

    cached = _index.read()
    if cached is not None:
        return cached
    fresh = _index.usable()
    import_backend_quietly()
    catalog = _index.build()
    if fresh:
        _index.write(catalog)
    return catalog


def cmd_list(args: argparse.Namespace) -> int:
    import fnmatch

    from kmodels import registry

    kinds = list(registry.KINDS)
    pattern = args.pattern
    if args.kind is not None:
        kind = args.kind if args.kind in registry.KINDS else f"{args.kind}s"
        if kind not in registry.KINDS:
            if args.pattern == "*":  # `kmodels list '*cnn*'`: a pattern over every kind
                pattern = args.kind
            else:
                registry.get_registry(args.kind)
        else:
            kinds = [kind]
    catalog = _catalog()
    items, errors = catalog["items"], catalog["errors"]
    names = {kind: sorted(n for n in items.get(kind, {}) if fnmatch.fnmatchcase(n, pattern)) for kind in kinds}
    if len(kinds) > 1 and args.kind is not None and not any(names.values()):
        import difflib

        from kmodels.errors import ConfigError

        close = difflib.get_close_matches(args.kind, list(registry.KINDS), n=1)
        hint = f" Did you mean the kind {close[0]!r}?" if close else ""
        raise ConfigError(f"Nothing registered matches {args.kind!r}.{hint} Kinds: {', '.join(registry.KINDS)}; "
                          "or give a glob over names, e.g. `kmodels list '*cnn*'`.")
    for kind in kinds:
        if len(kinds) > 1:
            if not names[kind]:
                continue
            print(f"{kind}:")
        for name in names[kind]:
            summary = items[kind][name]["summary"]  # an alias says which name it stands for
            print(f"  {name:<28} {summary}" if len(kinds) > 1 else f"{name:<28} {summary}")
    for name, error in errors.items():
        print(f"kmodels: warning: plugin {name!r} failed to load: {error}", file=sys.stderr)
    return EXIT_OK


def _show_from_catalog(args: argparse.Namespace) -> bool:
    """`show` of a task's spec or a non-model item, answered from the catalog cache; False when it cannot be."""
    from kmodels import _index

    if args.overrides:
        return False
    cached = _index.read()
    if cached is None:
        return False
    if args.name in cached["specs"]:
        print(cached["specs"][args.name], end="")
        return True
    found = [kind for kind, items in cached["items"].items() if args.name in items]
    if not found or "models" in found or "tasks" in found:  # a model is built to be shown: that needs Keras
        return False
    for kind in found:
        info = cached["items"][kind][args.name]
        print(f"{kind[:-1]} {args.name}: {info['summary']}")
        print(f"  defined in {info['source']}")
        for name, type_, default, required in info["params"]:
            print(f"  {name}: {type_}" + (" (required)" if required else f" = {default}"))
    return True


def cmd_show(args: argparse.Namespace) -> int:
    from kmodels.spec import _looks_like_path

    if not _looks_like_path(args.name) and _show_from_catalog(args):
        return EXIT_OK
    from kmodels import _index, registry
    from kmodels.spec import load_spec

    fresh = _index.usable()
    import_backend_quietly()
    if _looks_like_path(args.name) or args.name in registry.tasks:
        print(load_spec(args.name, args.overrides).to_toml(), end="")
    else:
        _show_item(args)
    if fresh:  # this process loaded the plugins for a CLI command: save the catalog for the next one
        _index.write()
    return EXIT_OK


def _show_item(args: argparse.Namespace) -> None:
    from kmodels import registry

    found = [kind for kind, reg in registry.KINDS.items() if args.name in reg]
    if not found:
        registry.models.get(args.name)  # raises with suggestions
    from kmodels.spec import parse_override

    given = dict(parse_override(o) for o in args.overrides)
    for kind in found:
        reg = registry.KINDS[kind]
        if given:  # checked like a spec block: unknown keys get a did-you-mean, values their type
            reg.validate({"name": args.name, **given}, where=f"--set for {kind[:-1]} {args.name!r}")
        info = reg.describe(args.name)
        print(f"{kind[:-1]} {info.name}: {info.summary}")
        print(f"  defined in {info.source}")
        for p in info.params:
            if p.name in given:
                print(f"  {p.name}: {p.type} = {given[p.name]!r}  (--set; default {p.default!r})")
            else:
                print(f"  {p.name}: {p.type}" + (" (required)" if p.required else f" = {p.default!r}"))
        if kind == "models":
            model = reg.create({"name": args.name, **given})
            print(f"  built: {model.count_params():,} parameters, input {model.input_shape}, "
                  f"output {model.output_shape}")
