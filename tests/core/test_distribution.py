"""train.distribution = "data_parallel": batches that split over devices, and the same curve as one device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kmodels
from kmodels.backend import distribution
from kmodels.data.batches import ArrayBatches

ROOT = Path(__file__).resolve().parents[2]


@given(n=st.integers(0, 60), per_device=st.integers(1, 6), multiple=st.integers(1, 4), seed=st.integers(0, 3))
def test_batches_split_evenly_over_devices(n, per_device, multiple, seed):
    batch = per_device * multiple
    x = np.arange(n, dtype="float32")[:, None]
    y = np.arange(n) % 2
    train = ArrayBatches(x, y, batch, shuffle=True, seed=seed, multiple=multiple)
    seen = np.concatenate([train[i][0][:, 0] for i in range(len(train))] or [np.zeros(0)])
    assert all(len(train[i][0]) % multiple == 0 and len(train[i][0]) <= batch for i in range(len(train)))
    assert len(seen) == n - n % multiple and len(set(seen.tolist())) == len(seen)  # at most multiple-1 left out
    evaluation = ArrayBatches(x, y, batch, multiple=multiple)
    batches = [evaluation[i] for i in range(len(evaluation))]
    assert all(len(b[0]) % multiple == 0 for b in batches)
    if multiple > 1 and n:
        xs = np.concatenate([b[0][:, 0] for b in batches])
        weights = np.concatenate([b[2] for b in batches])
        assert xs[weights == 1].tolist() == list(range(n))  # every sample once, in order, weight 1
        assert (weights[n:] == 0).all() and len(weights) - n < multiple  # padding carries no weight
    elif n:
        assert all(len(b) == 2 for b in batches)  # one device: plain (x, y) batches


def test_no_distribution_is_a_no_op():
    with distribution("none", 7) as devices:
        assert devices == 1
    with pytest.raises(kmodels.ConfigError, match="expected 'none' or 'data_parallel'"), \
            distribution("model_parallel"):
        pass
    with pytest.raises(kmodels.ConfigError, match="'none' \\| 'data_parallel'"):
        kmodels.load_spec("toy_task", {"train.distribution": "ddp"})


@pytest.mark.slow
@pytest.mark.subprocess
def test_data_parallel_on_two_cpu_devices_matches_one_device(backend, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KMODELS_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "tests.core._distributed", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["devices"] == ["cpu:0", "cpu:1"]
    assert "batch_size=33 does not split evenly over 2 devices" in report["odd_batch_error"]
    if backend == "jax":
        one, two = report["dog_cat_none"], report["dog_cat_data_parallel"]
        assert (one["replicas"], two["replicas"]) == (1, 2) and two["splits"]["test"] % 2 == 1
        np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-4)  # documented tolerance
        assert two["test"]["confusion_matrix"] == one["test"]["confusion_matrix"]  # padding dropped
    else:
        one, two = report["toy_none"], report["toy_data_parallel"]
        assert (one["replicas"], two["replicas"]) == (1, 2)
        np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-4)
        dp = report["dog_cat_data_parallel"]
        assert dp["replicas"] == 2 and np.isfinite(dp["loss"]).all()
        assert sum(map(sum, dp["test"]["confusion_matrix"])) == dp["splits"]["test"]
