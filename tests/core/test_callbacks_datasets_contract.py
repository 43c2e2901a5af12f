"""Contract tests over every registered callback and dataset (current backend)."""

from __future__ import annotations

import numpy as np
import pytest

import kmodels
from kmodels import registry
from kmodels.data import Table

# Required arguments per callback (file paths go to the test's tmp dir); the rest are defaults.
CALLBACK_ARGS = {
    "model_checkpoint": lambda tmp: {"filepath": str(tmp / "best.keras")},
    "csv_logger": lambda tmp: {"filename": str(tmp / "log.csv")},
    "backup_and_restore": lambda tmp: {"backup_dir": str(tmp / "backup")},
    "tensorboard": lambda tmp: {"log_dir": str(tmp / "tb")},
    "interrupt_after_epoch": lambda tmp: {"epoch": 99},
}


@pytest.mark.parametrize("name", registry.callbacks.list())
def test_callback_contract(name, tmp_path):
    import keras

    args = CALLBACK_ARGS.get(name, lambda tmp: {})(tmp_path)
    callback = registry.callbacks.create({"name": name, **args})
    assert isinstance(callback, keras.callbacks.Callback)
    model = kmodels.build("toy_mlp")
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    history = model.fit(x, y, validation_data=(x, y), epochs=2, batch_size=8, verbose=0, callbacks=[callback])
    assert len(history.history["loss"]) >= 1


def _csv(tmp):
    path = tmp / "t.csv"
    path.write_text("x,y\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(30)))
    return {"path": str(path), "target": "y"}


def _bank_file(tmp):
    from kmodels_tabular.bank_data import write_bank_csv

    return {"path": str(write_bank_csv(tmp / "bank.csv", rows=200))}


def _image_folder(tmp):
    from kmodels_vision.synthetic import write_dog_cat

    return {"path": str(write_dog_cat(tmp / "imgs", count=3, min_size=24, max_size=28, broken=False))}


DATASET_ARGS = {
    "csv": _csv,
    "bank_transactions": _bank_file,
    "bank_synthetic": lambda tmp: {"rows": 300},
    "image_folder": _image_folder,
    "dog_cat_synthetic": lambda tmp: {"count": 3, "min_size": 24, "max_size": 28},
    "toy_blobs": lambda tmp: {"rows": 20},
}


@pytest.mark.parametrize("name", registry.datasets.list())
def test_dataset_contract(name, tmp_path, monkeypatch):
    monkeypatch.setenv("KMODELS_CACHE_DIR", str(tmp_path / "cache"))
    assert name in DATASET_ARGS, f"add small arguments for dataset {name!r}"
    block = {"name": name, **DATASET_ARGS[name](tmp_path)}
    table = registry.datasets.create(block)
    again = registry.datasets.create(block)
    assert isinstance(table, Table) and len(table.frame) > 0
    assert len(table.resolved_classes()) == 2
    assert set(np.unique(table.labels(table.frame[table.frame[table.target].isin(table.resolved_classes())]))) == {0, 1}
    assert table.frame.equals(again.frame), "the same arguments must give the same rows"
