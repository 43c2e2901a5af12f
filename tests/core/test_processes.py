"""Several processes, one model: JAX's distributed runtime (`kmodels.cluster`, `kmodels run --processes`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kmodels
from kmodels import cluster
from kmodels.cli import main
from kmodels.data.batches import ArrayBatches
from kmodels.launch import child_argv, launch

ROOT = Path(__file__).resolve().parents[2]

# the configuration tests/core/_distributed.py trains on one and two devices: an even training split (58)
DOG_CAT = {"data.count": 43, "data.min_size": 32, "data.max_size": 40, "images.image_size": [32, 32],
           "images.augment": True, "images.shift": 0.0, "images.tta": "none", "split.val": 0.15,
           "model.name": "dog_cat_cnn", "model.filters": [32, 64, 128], "model.dense_units": 16,
           "compile.schedule": "constant", "compile.learning_rate": 0.001, "compile.weight_decay": 0.0,
           "train.epochs": 3, "train.verbose": 0}


def _sets(overrides: dict) -> list[str]:
    out = []
    for key, value in overrides.items():
        out += ["--set", f"{key}={json.dumps(value)}"]
    return out


@given(n=st.integers(0, 50), per_device=st.integers(1, 4), processes=st.integers(1, 3), shuffle=st.booleans(),
       seed=st.integers(0, 3))
def test_each_process_reads_its_slice_of_every_global_batch(n, per_device, processes, shuffle, seed):
    batch = per_device * processes * 2
    x = np.arange(n, dtype="float32")[:, None]
    y = np.arange(n) % 2
    whole = ArrayBatches(x, y, batch, shuffle=shuffle, seed=seed, multiple=processes, shard=(0, 1))
    shards = [ArrayBatches(x, y, batch, shuffle=shuffle, seed=seed, multiple=processes, shard=(i, processes))
              for i in range(processes)]
    for _epoch in range(2):
        assert all(len(s) == len(whole) for s in shards)
        for b in range(len(whole)):
            parts = [s[b] for s in shards]
            # the devices see the batch one process would read: the slices in process order
            np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), whole[b][0])
            assert len({len(p[0]) for p in parts}) == 1  # every process feeds the same number of items
        seen = np.concatenate([s[b][0][:, 0] for s in shards for b in range(len(s))] or [np.zeros(0)])
        if shuffle:  # each item once per epoch across the processes (at most multiple - 1 left out)
            assert len(seen) == n - n % processes and len(set(seen.tolist())) == len(seen)
        positions = np.sort(np.concatenate([s.positions() for s in shards]))
        assert positions.tolist() == list(range(len(whole.order)))
        for s in [whole, *shards]:
            s.on_epoch_end()


def test_gather_rows_puts_each_row_in_place_and_drops_padding():
    local = np.array([[3.0], [1.0], [9.0]])
    out = cluster.gather_rows(local, np.array([2, 0, 5]), n=3)  # one process: position 5 is padding
    assert out[[0, 2]].tolist() == [[1.0], [3.0]] and out.shape == (3, 1)


def test_cluster_from_the_launchers_environment():
    assert cluster.from_env({}) is None
    assert cluster.from_env({"JAX_NUM_PROCESSES": "1"}) is None
    jax_env = {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}
    assert cluster.from_env(jax_env) == cluster.Cluster(3, 4, "h:1", "JAX_* variables")
    slurm = cluster.from_env({"SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_STEP_ID": "0"})
    assert (slurm.process_id, slurm.num_processes, slurm.coordinator, slurm.writer) == (1, 2, None, False)
    assert cluster.from_env({"SLURM_NTASKS": "2", "SLURM_PROCID": "0"}) is None  # sbatch script, not an srun step
    assert cluster.from_env({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0"}).writer
    with pytest.raises(kmodels.ConfigError, match="JAX_COORDINATOR_ADDRESS and JAX_PROCESS_ID not set"):
        cluster.from_env({"JAX_NUM_PROCESSES": "2"})
    with pytest.raises(kmodels.ConfigError, match="JAX_PROCESS_ID=2 is outside 0..1"):
        cluster.from_env({**jax_env, "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"})
    with pytest.raises(kmodels.ConfigError, match="JAX_NUM_PROCESSES='two' is not an integer"):
        cluster.from_env({"JAX_NUM_PROCESSES": "two"})


def test_a_cluster_process_refuses_to_train_alone(monkeypatch, tmp_path):
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.setenv("JAX_PROCESS_ID", "1")
    with pytest.raises(kmodels.ConfigError, match="process 1 of 2 .*distribution='none'"):
        kmodels.run("toy_task", out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_launcher_arguments_and_errors(capsys):
    assert child_argv(["run", "t", "--processes=3", "--set", "a=1"]) == \
        ["run", "t", "--set", "a=1", "--set", "train.distribution=data_parallel"]
    with pytest.raises(kmodels.ConfigError, match="KERAS_BACKEND=jax"):
        launch(["run", "toy_task"], 2, env={"KERAS_BACKEND": "tensorflow"})
    with pytest.raises(kmodels.ConfigError, match="give 2 or more"):
        launch(["run", "toy_task"], 0, env={"KERAS_BACKEND": "jax"})
    with pytest.raises(kmodels.ConfigError, match="already set"):
        launch(["run", "toy_task"], 2, env={"KERAS_BACKEND": "jax", "JAX_NUM_PROCESSES": "2"})
    assert main(["run", "toy_task", "--processes", "0"]) == 2  # a usage error, before anything starts
    assert "give 2 or more" in capsys.readouterr().err


def test_scratch_copies_of_dead_processes_are_swept(tmp_path, monkeypatch):
    import socket

    from kmodels.runs import RunDir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    host = socket.gethostname().replace("-", "_")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = tmp_path / f"kmodels-scratch-{host}-{gone.pid}-abc"
    live = tmp_path / f"kmodels-scratch-{host}-{os.getppid()}-def"  # pytest's parent: alive
    other = tmp_path / f"kmodels-scratch-otherhost-{gone.pid}-ghi"  # not this machine's
    for d in (stale, live, other):
        (d / "run").mkdir(parents=True)
    source = RunDir(tmp_path / "src")
    source.path.mkdir()
    source.write_text("a.txt", "x")
    with RunDir.scratch(source) as scratch:
        assert (scratch.path / "a.txt").read_text() == "x"  # a copy of the source
        assert scratch.path.parent.name.startswith(f"kmodels-scratch-{host}-{os.getpid()}-")
        assert not stale.exists() and live.exists() and other.exists()
    assert not scratch.path.exists() and (source.path / "a.txt").exists()


def _scratch_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("kmodels-scratch-*")}


@pytest.mark.slow
@pytest.mark.subprocess
def test_two_processes_train_like_one(backend, tmp_path, capfd, monkeypatch):
    if backend != "jax":
        pytest.skip("--processes runs JAX's distributed runtime (KERAS_BACKEND=jax)")
    before = _scratch_dirs()
    # a fresh cache: process 0 generates the data set and the caches, the other reads them
    monkeypatch.setenv("KMODELS_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "two"
    assert main(["run", "dog_cat", "--processes", "2", "--out", str(out), *_sets(DOG_CAT)]) == 0
    printed = capfd.readouterr().out
    assert printed.count("dog_cat: test-split results") == 1 and f"artifacts: {out}" in printed  # process 0 only
    one = kmodels.run("dog_cat", overrides=DOG_CAT, out=tmp_path / "one")
    two = json.loads((out / "metrics.json").read_text())
    assert (two["replicas"], one.metrics["replicas"]) == (2, 1) and two["splits"] == one.metrics["splits"]
    assert two["splits"]["train"] % 2 == 0  # so one device reads the same batches as two
    np.testing.assert_allclose(pd.read_csv(out / "history.csv")["loss"],
                               pd.read_csv(one.run_dir / "history.csv")["loss"], rtol=1e-4)
    # predictions of both shards gathered: the whole test split, each image once
    assert two["models"]["keras"]["confusion_matrix"] == one.metrics["models"]["keras"]["confusion_matrix"]
    assert sum(map(sum, two["models"]["keras"]["confusion_matrix"])) == two["splits"]["test"]
    assert json.loads((out / "metadata.json").read_text())["status"] == "completed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "one", "two"]  # one run directory per run
    assert _scratch_dirs() <= before  # the other process's scratch copy is gone


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_killed_process_fails_the_run_and_resume_completes_it(backend, tmp_path):
    if backend != "jax":
        pytest.skip("--processes runs JAX's distributed runtime (KERAS_BACKEND=jax)")
    # how the launcher fails and resumes does not depend on the task: a small table starts and compiles in a
    # fraction of the photos' time (92 s for this test on dog_cat in a CI run), and its epochs are short, so it
    # trains many (no early stopping) for the kill to land between its second epoch and its last
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(2000, 4)), columns=list("abcd"))
    table["y"] = np.where(table["a"] - table["b"] + rng.normal(size=2000) > 0, "yes", "no")
    table.to_csv(tmp_path / "table.csv", index=False)
    epochs = 40
    raw = kmodels.load_spec("tabular", {
        "data.target": "y", "train.folds": 1, "train.epochs": epochs, "train.verbose": 0, "baselines.linear": False,
        "baselines.sklearn_mlp": False, "baselines.gradient_boosting": False, "baselines.majority": False,
        "evaluate.importance_repeats": 0}, data=tmp_path / "table.csv").to_dict()
    raw["callbacks"] = [{"name": "backup_and_restore", "backup_dir": "backup"},  # what `--resume` continues from
                        {"name": "csv_logger", "filename": "training_log.csv", "append": True}]
    spec = tmp_path / "spec.toml"
    spec.write_text(kmodels.TaskSpec(raw, "test").to_toml())
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    launcher = subprocess.Popen([sys.executable, "-m", "kmodels", "run", str(spec), "--processes", "2",
                                 "--out", str(out)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "training_log.csv"
    deadline = time.monotonic() + 300
    while not (log.is_file() and len(log.read_text().splitlines()) >= 3):  # two epochs done and backed up
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()
        time.sleep(0.05)
    children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
    assert len(children) == 2
    os.kill(int(children[1]), signal.SIGKILL)
    killed = time.monotonic()
    _, stderr = launcher.communicate(timeout=120)
    assert launcher.returncode == 1 and time.monotonic() - killed < 60  # stopped, not hung
    assert "process 1 of 2 was killed by SIGKILL" in stderr and f"--resume {out} --processes 2" in stderr
    assert json.loads((out / "metadata.json").read_text())["status"] in ("failed", "interrupted", "running")
    assert not (out / "metrics.json").exists()
    assert len(log.read_text().splitlines()) - 1 < epochs  # killed before its last epoch
    assert main(["run", "--resume", str(out), "--processes", "2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == epochs and metrics["replicas"] == 2
    assert pd.read_csv(log)["epoch"].tolist() == list(range(epochs))  # every epoch once
    assert json.loads((out / "metadata.json").read_text())["status"] == "completed"


@pytest.mark.subprocess
def test_stopping_the_launcher_stops_its_processes(backend, tmp_path):
    if backend != "jax":
        pytest.skip("--processes runs JAX's distributed runtime (KERAS_BACKEND=jax)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    launcher = subprocess.Popen([sys.executable, "-m", "kmodels", "run", "bank_gender", "--processes", "2",
                                 "--out", str(tmp_path / "run")], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    children_file = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children")
    deadline = time.monotonic() + 60
    while len(children_file.read_text().split()) < 2:
        assert launcher.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    children = [int(c) for c in children_file.read_text().split()]
    launcher.send_signal(signal.SIGTERM)
    _, stderr = launcher.communicate(timeout=60)
    assert launcher.returncode == 130, stderr
    for pid in children:  # reaped by the launcher: gone, not orphaned
        assert not Path(f"/proc/{pid}").exists()
