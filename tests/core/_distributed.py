"""Runs in a subprocess of test_distribution.py: two CPU devices must exist before the backend starts.

Usage: python -m tests.core._distributed OUT_JSON (from the repository root, KERAS_BACKEND set).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def _two_cpu_devices(backend: str) -> None:
    if backend == "jax":
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2"
    else:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


def _run(task: str, out: Path, overrides: dict) -> dict:
    import pandas as pd

    import kmodels

    result = kmodels.run(task, overrides={"train.verbose": 0, **overrides}, out=out)
    return {"loss": pd.read_csv(out / "history.csv")["loss"].tolist(), "replicas": result.metrics["replicas"],
            "splits": result.metrics["splits"], "test": result.metrics["models"]["keras"]}


def main(target: str) -> None:
    backend = os.environ["KERAS_BACKEND"]
    _two_cpu_devices(backend)
    import kmodels
    from kmodels import backend as kb
    from tests import _items  # noqa: F401  (registers toy_task)

    work = Path(target).parent
    report: dict = {"devices": kb.devices()}
    # 43 synthetic photos per class -> an even training split (58), an odd test split (19: padded).
    dog_cat = {"data.count": 43, "data.min_size": 32, "data.max_size": 40, "images.image_size": [32, 32],
               "images.augment": True, "images.shift": 0.0, "images.tta": "none", "split.val": 0.15,
               "model.name": "dog_cat_cnn", "model.filters": [32, 64, 128], "model.dense_units": 16,
               "compile.schedule": "constant", "compile.learning_rate": 0.001, "compile.weight_decay": 0.0,
               "train.epochs": 3}
    if backend == "jax":  # BatchNorm statistics over the global batch: the same curve as one device
        for dist in ("none", "data_parallel"):
            report[f"dog_cat_{dist}"] = _run("dog_cat", work / f"dog_cat_{dist}", {**dog_cat, "train.distribution": dist})
    else:  # MirroredStrategy keeps BatchNorm statistics per replica; a model without BatchNorm gives the same curve
        full_batch = {"train.epochs": 4, "train.batch_size": 210}  # toy_task's training split is 210 rows
        for dist in ("none", "data_parallel"):
            report[f"toy_{dist}"] = _run("toy_task", work / f"toy_{dist}", {**full_batch, "train.distribution": dist})
        report["dog_cat_data_parallel"] = _run("dog_cat", work / "dog_cat_dp",
                                               {**dog_cat, "train.epochs": 2, "train.distribution": "data_parallel"})
    try:
        kmodels.run("toy_task", overrides={"train.distribution": "data_parallel", "train.batch_size": 33},
                    out=work / "odd")
    except kmodels.ConfigError as exc:
        report["odd_batch_error"] = str(exc)
    Path(target).write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
