"""`kmodels.backend.frozen_heap`: a run's garbage collector skips what existed before the run, and only then."""

from __future__ import annotations

import gc
import weakref

import pytest

from kmodels.backend import frozen_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_objects_made_inside_are_still_collected_and_the_old_ones_come_back():
    before = _Node()
    old = weakref.ref(before)
    with frozen_heap():
        assert gc.get_freeze_count() > 0
        inside = weakref.ref(_Node())  # garbage at once
        gc.collect()
        assert inside() is None  # a long run does not keep its garbage
        del before
        gc.collect()
        assert old() is not None  # frozen: the collector does not look at it
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert old() is None  # handed back, and collected


def test_an_error_inside_still_unfreezes():
    with pytest.raises(RuntimeError, match="boom"), frozen_heap():
        raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0


def test_someone_elses_freeze_is_left_as_it_was(monkeypatch):
    calls: list[str] = []
    freeze, unfreeze = gc.freeze, gc.unfreeze
    gc.freeze()
    try:
        # the calls, not the count: frozen objects that lose their last reference still die (another
        # thread's, under CI's load), so the count can fall by itself
        monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
        monkeypatch.setattr(gc, "unfreeze", lambda: calls.append("unfreeze"))
        with frozen_heap():
            pass
        assert calls == []  # nothing added, and not unfrozen behind their back
        assert gc.get_freeze_count() > 0
    finally:
        monkeypatch.undo()
        assert (gc.freeze, gc.unfreeze) == (freeze, unfreeze)
        gc.unfreeze()


def test_a_disabled_collector_is_left_alone():
    gc.disable()
    try:
        with frozen_heap():
            assert gc.get_freeze_count() == 0
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_run_freezes_for_its_steps_and_unfreezes_after(tmp_path, monkeypatch):
    import kmodels
    from kmodels.task import runner

    seen: list[int] = []
    original = runner._run_in

    def recording(*args, **kwargs):
        seen.append(gc.get_freeze_count())
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "_run_in", recording)
    kmodels.run("toy_task", overrides={"train.epochs": 1}, out=tmp_path / "run")
    assert len(seen) == 1 and seen[0] > 0
    assert gc.get_freeze_count() == 0
