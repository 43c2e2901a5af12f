"""`kmodels.backend.compilation_cache`: where JAX keeps compiled steps, and the directories it refuses."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from kmodels import backend

SCRIPT = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    from kmodels.backend import compilation_cache
    import keras
    directory = compilation_cache()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    model.fit(np.ones((8, 3)), np.ones((8, 2)), epochs=1, verbose=0)
    print(json.dumps({"dir": directory, "files": len(os.listdir(directory)) if directory else 0}))
""")


def _run(env: dict[str, str]) -> dict:
    import json

    out = subprocess.run([sys.executable, "-c", SCRIPT], env={**os.environ, "KERAS_BACKEND": "jax", **env},
                         capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(backend.name() != "jax", reason="a JAX cache: one subprocess, run once on the JAX leg")
def test_jax_keeps_compiled_steps_in_a_private_folder_and_refuses_a_shared_one(tmp_path):
    cache = tmp_path / "cache"
    first = _run({"KMODELS_CACHE_DIR": str(cache)})
    assert first["dir"] == str(cache / "xla") and first["files"] > 0  # the training step, written for next time
    assert (cache / "xla").stat().st_mode & 0o777 == 0o700
    assert _run({"KMODELS_CACHE_DIR": str(cache), "KMODELS_COMPILATION_CACHE": "0"})["dir"] is None
    shared = tmp_path / "shared"
    (shared / "xla").mkdir(parents=True)
    os.chmod(shared / "xla", 0o777)  # anyone could plant a program there: not used
    assert _run({"KMODELS_CACHE_DIR": str(shared)})["dir"] is None
    assert os.listdir(shared / "xla") == []
