"""Every registered item has a summary line and an Example that runs."""

from __future__ import annotations

import doctest
import inspect

import pytest

from kmodels import registry

ITEMS = [(kind, name) for kind, reg in registry.KINDS.items() for name in reg.list()]
KERAS_OWN = {("callbacks", n) for n in registry.callbacks.list() if registry.callbacks.get(n).__module__.startswith("keras")}


@pytest.mark.parametrize(("kind", "name"), ITEMS)
def test_docstring_has_summary_and_runnable_example(kind, name, tmp_path, monkeypatch):
    obj = registry.KINDS[kind].get(name)
    doc = inspect.getdoc(obj) or ""
    assert doc.strip().splitlines()[0].strip(), f"{kind} {name}: no summary line"
    if (kind, name) in KERAS_OWN:
        return  # Keras's own classes: their docs are Keras's
    if kind == "tasks":
        assert "kmodels run" in doc or ">>>" in doc, f"task {name}: say how to run it"
        return
    assert "Example:" in doc and ">>>" in doc, f"{kind} {name}: docstring needs a runnable Example"
    monkeypatch.chdir(tmp_path)
    module = inspect.getmodule(obj)
    globs = dict(vars(module)) if module else {}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder(recurse=False).find(obj, name, globs=globs):
        result = runner.run(test, out=lambda s: None)
        assert result.failed == 0, f"{kind} {name}: its Example fails"
