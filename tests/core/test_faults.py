"""kill -9 at each phase of a run, then `--resume`: the run completes with every epoch exactly once.

The kill is real (SIGKILL, which nothing can catch): a driver process patches the
tabular task so that it kills itself at the chosen point, then the run is resumed
in this process. Points: while loading the data, mid-epoch, right after the last
epoch (before the model is saved), and during evaluation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import kmodels

EPOCHS = 4

DRIVER = textwrap.dedent('''
    import os, signal, sys
    import keras
    import kmodels

    point, spec, out = sys.argv[1:4]
    task = kmodels.registry.tasks.get("tabular")

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    def wrap(name, before=False):
        real = getattr(task, name)
        def patched(self, *args, **kwargs):
            if before:
                die()
            result = real(self, *args, **kwargs)
            die()
        setattr(task, name, patched)

    class KillMidEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 2 and batch == 1:
                die()

    if point == "load":
        wrap("load_data")
    elif point == "mid_epoch":
        real_callbacks = task.make_callbacks
        task.make_callbacks = lambda self: real_callbacks(self) + [KillMidEpoch()]
    elif point == "after_fit":
        wrap("fit")
    elif point == "evaluation":
        wrap("evaluate", before=True)
    kmodels.run(spec, out=out)
''')


@pytest.fixture(scope="module")
def fault_spec(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(label=np.where(x[:, 0] + x[:, 1] > 0, "yes", "no"))
    frame.to_csv(root / "data.csv", index=False)
    raw = kmodels.load_spec("tabular", {"data.target": "label", "train.epochs": EPOCHS, "train.batch_size": 16,
                                        "train.verbose": 0, "train.folds": 1,
                                        # one step per call, so that a batch callback can kill mid-epoch
                                        "train.steps_per_execution": 1}, data=root / "data.csv").to_dict()
    raw["callbacks"] = [{"name": "backup_and_restore", "backup_dir": "backup"},
                        {"name": "csv_logger", "filename": "training_log.csv", "append": True}]
    spec = root / "spec.toml"
    spec.write_text(kmodels.TaskSpec(raw, "test").to_toml())
    (root / "driver.py").write_text(DRIVER)
    return root


def _kill_at(point: str, root, out) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, str(root / "driver.py"), point, str(root / "spec.toml"), str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, f"expected death by SIGKILL at {point}, got {proc.returncode}: {proc.stderr[-2000:]}"


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("point", ["mid_epoch", "after_fit", "evaluation"])
def test_kill_9_then_resume_runs_every_epoch_exactly_once(fault_spec, point, tmp_path):
    out = tmp_path / "run"
    _kill_at(point, fault_spec, out)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["status"] == "running" and not (out / "metrics.json").exists()  # nothing looks complete
    result = kmodels.run(resume=out)
    log = pd.read_csv(out / "training_log.csv")
    assert log["epoch"].tolist() == list(range(EPOCHS))  # nothing repeated, nothing lost
    assert result.metrics["epochs_run"] == EPOCHS
    assert json.loads((out / "metadata.json").read_text())["status"] == "completed"
    assert not (out / "backup").exists()  # removed once the trained model was saved
    assert kmodels.predict(out, fault_spec / "data.csv")["label"].isin(["yes", "no"]).all()


@pytest.mark.slow
@pytest.mark.subprocess
def test_kill_9_while_loading_leaves_no_run_directory(fault_spec, tmp_path):
    out = tmp_path / "run"
    _kill_at("load", fault_spec, out)
    assert not out.exists()  # the directory is created only after the data loaded
    result = kmodels.run(fault_spec / "spec.toml", out=out)  # so the same --out simply works
    assert pd.read_csv(out / "training_log.csv")["epoch"].tolist() == list(range(EPOCHS))
    assert result.metrics["epochs_run"] == EPOCHS
