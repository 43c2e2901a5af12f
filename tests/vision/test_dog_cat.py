"""dog_cat end to end on small synthetic images (current backend)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kmodels
from kmodels import registry
from kmodels.cli import main
from kmodels.task.inference import load_model
from tests.vision.conftest import SMALL


@pytest.mark.slow
def test_dog_cat_learns_and_writes_every_artifact(dog_cat_run):
    rd = dog_cat_run.run_dir
    for name in ["model.keras", "metrics.json", "confusion_matrix.png", "training_curves.png", "misclassified.png",
                 "sample_images.png", "image_sizes.png", "data_report.json", "report.md", "history.csv",
                 "training_log.csv", "spec.toml", "metadata.json"]:
        assert (rd / name).is_file(), name
    metrics = dog_cat_run.metrics["models"]["keras"]
    assert metrics["accuracy"] >= 0.85, metrics
    assert {"precision", "recall", "f1", "roc_auc"} <= set(metrics)
    report = json.loads((rd / "data_report.json").read_text())
    assert {s["reason"] for s in report["skipped"]} == {"empty file (0 bytes)", "truncated image",
                                                        "not an image (unrecognised format)"}
    assert len(report["converted_to_rgb"]) == 4 and len(report["duplicates"]) == 1
    assert not (rd / "backup").exists() or not any((rd / "backup").iterdir())  # removed once training ended


@pytest.mark.slow
def test_evaluate_is_read_only_and_reproduces_metrics(dog_cat_run):
    from kmodels.task import evaluate_run

    rd = dog_cat_run.run_dir
    before = {p.name: p.stat().st_mtime_ns for p in rd.iterdir() if p.is_file()}
    metrics = evaluate_run(rd)
    assert metrics["confusion_matrix"] == dog_cat_run.metrics["models"]["keras"]["confusion_matrix"]
    assert {p.name: p.stat().st_mtime_ns for p in rd.iterdir() if p.is_file()} == before


@pytest.mark.slow
def test_predict_files_and_folders_with_an_unreadable_input(dog_cat_run, tmp_path, monkeypatch):
    from kmodels_vision.synthetic import draw_animal

    monkeypatch.setattr("kmodels_vision.saved_runs.PREDICT_CHUNK", 2)  # 3 files: two chunks, the broken one in the second

    rng = np.random.default_rng(99)
    (tmp_path / "in").mkdir()
    draw_animal("dog", (60, 60), rng).save(tmp_path / "in" / "a.jpg")
    draw_animal("cat", (60, 60), rng).save(tmp_path / "in" / "b.png")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "pred.csv"
    assert main(["predict", str(dog_cat_run.run_dir), str(tmp_path / "in"), str(tmp_path / "broken.jpg"),
                 "--output", str(out)]) == 0
    pred = pd.read_csv(out, keep_default_na=False)
    assert list(pred.columns) == ["path", "label", "probability", "probability_cat", "probability_dog",
                                  "error"] and len(pred) == 3
    broken = pred[pred["path"].str.endswith("broken.jpg")].iloc[0]
    assert broken["error"] and broken["label"] == ""
    good = pred[pred["error"] == ""]
    assert set(good["label"]) <= {"cat", "dog"} and len(good) == 2
    total = good["probability_cat"].astype(float) + good["probability_dog"].astype(float)
    np.testing.assert_allclose(total, 1.0, rtol=1e-5)


@pytest.mark.slow
def test_split_folders_are_respected(tmp_path):
    from kmodels_vision.synthetic import draw_animal

    rng = np.random.default_rng(0)
    for split, n in [("train", 8), ("test", 3)]:
        for label in ["cat", "dog"]:
            folder = tmp_path / split / label.capitalize()
            folder.mkdir(parents=True)
            for i in range(n):
                draw_animal(label, (40, 40), rng).save(folder / f"{i}.jpg")
    spec = kmodels.load_spec("dog_cat", {"images.image_size": [32, 32]}, data=tmp_path)
    task = registry.tasks.get("dog_cat")(spec)
    data = task.prepare().data
    assert len(data["test"].y) == 6 and all("/test/" in p for p in data["test"].frame["path"])
    assert len(data["val"].y) > 0 and all("/train/" in p for p in data["val"].frame["path"])


@pytest.mark.slow
def test_interrupted_run_resumes_from_last_epoch(tmp_path):
    overrides = {**SMALL, "data.count": 40, "train.epochs": 4, "images.augment": True}
    raw = kmodels.load_spec("dog_cat", overrides).to_dict()
    raw["callbacks"].append({"name": "interrupt_after_epoch", "epoch": 1})
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(kmodels.TaskSpec(raw, "test").to_toml())
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        kmodels.run(spec_path, out=out)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["status"] == "interrupted" and not (out / "model.keras").exists()
    assert len(pd.read_csv(out / "training_log.csv")) == 2  # epochs 0 and 1 finished
    result = kmodels.run(resume=out)
    log = pd.read_csv(out / "training_log.csv")
    assert log["epoch"].tolist() == [0, 1, 2, 3]  # continued at epoch 2: nothing lost, nothing repeated
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["status"] == "completed" and meta["resumed"] == 1 and result.metrics["epochs_run"] == 4
    with pytest.raises(kmodels.RunError, match="already completed"):
        kmodels.run(resume=out)


@pytest.mark.slow
def test_keras_file_loads_in_plain_keras_and_predicts_the_same_on_the_other_backend(dog_cat_run, backend, tmp_path):
    import keras

    other = "tensorflow" if backend == "jax" else "jax"
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (3, 48, 48, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    here = keras.saving.load_model(dog_cat_run.run_dir / "model.keras", safe_mode=True).predict(x, verbose=0)
    # plain Keras in a fresh process: no kmodels import (the run trained with the fused BatchNorm kernel)
    code = ("import sys, numpy as np, keras; m = keras.saving.load_model({!r}, safe_mode=True); "
            "assert not any(n.startswith('kmodels') for n in sys.modules); "
            "np.save({!r}, m.predict(np.load({!r}), verbose=0))").format(
        str(dog_cat_run.run_dir / "model.keras"), str(tmp_path / "y.npy"), str(tmp_path / "x.npy"))
    env = {**os.environ, "KERAS_BACKEND": other, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), here, atol=1e-5)


@pytest.mark.slow
@pytest.mark.subprocess
def test_sigkilled_run_resumes(tmp_path):
    import signal
    import time

    overrides = {**SMALL, "data.count": 30, "data.min_size": 24, "data.max_size": 28, "images.image_size": [24, 24],
                 "train.epochs": 6, "callbacks.early_stopping.patience": 10}
    spec = tmp_path / "spec.toml"
    spec.write_text(kmodels.load_spec("dog_cat", overrides).to_toml())
    out = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "kmodels.cli", "-q", "run", str(spec), "--out", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "training_log.csv"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if log.is_file() and len(log.read_text().strip().splitlines()) >= 3:  # header + 2 epochs
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert json.loads((out / "metadata.json").read_text())["status"] == "running"  # SIGKILL cannot be caught
    result = kmodels.run(resume=out)
    epochs = pd.read_csv(log)["epoch"].tolist()
    assert epochs[-1] == 5 and epochs == sorted(set(epochs)) and len(epochs) >= 5  # at most one epoch lost
    assert json.loads((out / "metadata.json").read_text())["status"] == "completed" and result.metrics["epochs_run"] >= 5


@pytest.mark.parametrize(("cache_mb", "cached"), [(2048, {"train", "val"}), (1, {"val"}), (0, set())])
def test_decoded_image_cache_follows_the_budget(cache_mb, cached, caplog):
    """128x128 images take 48 KiB: 56 training images do not fit 1 MiB, 14 validation images do."""
    spec = kmodels.load_spec("dog_cat", overrides={"data.count": 40, "images.image_size": [128, 128],
                                                   "images.cache_mb": cache_mb, "images.disk_cache": False})
    task = registry.tasks.get("dog_cat")(spec)
    table = task.load_data()
    with caplog.at_level("INFO", logger="kmodels"):
        data, _ = task.features(table, task.split(table), task.preprocess_steps()[1])
    assert {name for name, part in data.items() if part.x.cache} == cached
    assert ("the train split" in caplog.text) == (cache_mb == 1)


def test_negative_cache_budget_is_a_config_error():
    with pytest.raises(kmodels.ConfigError, match=r"\[images\] cache_mb=-1"):
        kmodels.load_spec("dog_cat", overrides={"images.cache_mb": -1})  # checked before anything runs


def test_flip_tta_is_baked_into_the_saved_model(tmp_path):
    """`images.tta = "flip"`: model.keras averages each image with its mirror, so it is mirror-invariant."""

    overrides = {**SMALL, "data.count": 40, "data.min_size": 24, "data.max_size": 28, "images.image_size": [24, 24],
                 "train.epochs": 2, "images.tta": "flip"}
    result = kmodels.run("dog_cat", overrides=overrides, out=tmp_path / "run")
    model = load_model(result.run_dir / "model.keras")
    x = np.random.default_rng(0).uniform(0, 255, (4, 24, 24, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), model.predict(x[:, :, ::-1], verbose=0), atol=1e-5)
    assert "flip_tta" in [layer.name for layer in model.layers]


@pytest.mark.slow
def test_flip_translate_tta_averages_six_views_in_the_saved_model(tmp_path):
    """`images.tta = "flip_translate"`: model.keras averages the network over the image, its mirror, and both
    shifted 1 px (3% of 24, at least 1) down-right and up-left with reflected edges, in plain Keras."""
    import keras

    overrides = {**SMALL, "data.count": 40, "data.min_size": 24, "data.max_size": 28, "images.image_size": [24, 24],
                 "train.epochs": 1, "images.tta": "flip_translate"}
    result = kmodels.run("dog_cat", overrides=overrides, out=tmp_path / "run")
    model = load_model(result.run_dir / "model.keras")
    assert "flip_translate_tta" in [layer.name for layer in model.layers]
    network = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    x = np.random.default_rng(0).uniform(0, 255, (3, 24, 24, 3)).astype("float32")
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")
    views = [x, x[:, :, ::-1]]
    views += [np.pad(v, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")[:, a:a + 24, a:a + 24]
              for v in list(views) for a in (0, 2)]
    assert np.allclose(views[2], padded[:, :24, :24])  # down-right: the content moves +1 px
    want = np.mean([network.predict(v, verbose=0) for v in views], axis=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_explain_draws_occlusion_maps_of_named_images(dog_cat_run, tmp_path, capsys):
    from kmodels_vision.synthetic import draw_animal

    rng = np.random.default_rng(7)
    for i, kind in enumerate(("dog", "cat")):
        draw_animal(kind, (60, 60), rng).save(tmp_path / f"{kind}{i}.jpg")
    plot = tmp_path / "maps.png"
    assert main(["explain", str(dog_cat_run.run_dir), str(tmp_path / "dog0.jpg"), str(tmp_path / "cat1.jpg"),
                 "--plot", str(plot)]) == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(out["path"]) == [str(tmp_path / "dog0.jpg"), str(tmp_path / "cat1.jpg")]
    assert set(out["label"]) <= {"cat", "dog"} and out["probability"].between(0.5, 1).all()
    assert plot.stat().st_size > 10_000
    assert main(["explain", str(dog_cat_run.run_dir)]) == 2  # images must be named
    assert "occlusion maps of the images you name" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_scores_a_new_labelled_image_folder(dog_cat_run, tmp_path):
    from kmodels_vision.synthetic import draw_animal

    rng = np.random.default_rng(11)
    for i in range(6):
        kind = ("cat", "dog")[i % 2]
        (tmp_path / "new" / f"{kind}s").mkdir(parents=True, exist_ok=True)
        draw_animal(kind, (60, 60), rng).save(tmp_path / "new" / f"{kind}s" / f"{i}.jpg")
    metrics = kmodels.evaluate(dog_cat_run.run_dir, data=tmp_path / "new")
    assert metrics["rows"] == 6 and 0 <= metrics["accuracy"] <= 1 and len(metrics["confusion_matrix"]) == 2


@pytest.mark.slow
def test_serve_answers_image_bytes_and_uploads_like_predict(dog_cat_run, tmp_path):
    pytest.importorskip("fastapi")
    from kmodels_vision.synthetic import draw_animal

    from kmodels.serve import create_app
    from tests.core.test_serve import Server

    draw_animal("dog", (60, 60), np.random.default_rng(5)).save(tmp_path / "a.jpg")
    draw_animal("cat", (60, 60), np.random.default_rng(6)).save(tmp_path / "b.png")
    expected = kmodels.predict(dog_cat_run.run_dir, [tmp_path / "a.jpg", tmp_path / "b.png"])
    with Server(create_app(dog_cat_run.run_dir)) as server:
        status, body = server.call("/predict", (tmp_path / "a.jpg").read_bytes(), content_type="image/jpeg")
        assert status == 200 and body["predictions"][0]["label"] == expected["label"].iloc[0]
        assert abs(body["predictions"][0]["probability_dog"] - expected["probability_dog"].iloc[0]) < 1e-5
        boundary = "kmodelsboundary"
        parts = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{p.name}"\r\n'
                         f"Content-Type: application/octet-stream\r\n\r\n".encode() + p.read_bytes() + b"\r\n"
                         for p in (tmp_path / "a.jpg", tmp_path / "b.png")) + f"--{boundary}--\r\n".encode()
        status, body = server.call("/predict", parts, content_type=f"multipart/form-data; boundary={boundary}")
        assert status == 200 and [p["label"] for p in body["predictions"]] == list(expected["label"])
        status, body = server.call("/predict", b"not an image", content_type="image/png")
        assert status == 422 and "could not be read" in body["error"]
        assert server.call("/metadata")[1]["input"]["image_size"] == [48, 48]


@pytest.mark.slow
def test_the_estimator_fits_an_image_folder_and_predicts_image_paths(dog_cat_run, tmp_path):
    from kmodels_vision.synthetic import draw_animal

    rng = np.random.default_rng(21)
    for i in range(32):
        kind = ("cat", "dog")[i % 2]
        (tmp_path / "photos" / kind).mkdir(parents=True, exist_ok=True)
        draw_animal(kind, (40, 40), rng).save(tmp_path / "photos" / kind / f"{i}.png")
    overrides = {**{k: v for k, v in SMALL.items() if not k.startswith("data.")},  # the folder is the data
                 "images.image_size": [24, 24], "train.epochs": 2, "split.val": 0.2, "split.test": 0.2}
    clf = kmodels.Classifier(task="image_classification", overrides=overrides).fit(tmp_path / "photos")
    paths = [str(tmp_path / "photos" / "cat" / "0.png"), str(tmp_path / "photos" / "dog" / "1.png")]
    assert list(clf.classes_) == ["cat", "dog"] and clf.predict_proba(paths).shape == (2, 2)
    assert set(clf.predict(paths)) <= {"cat", "dog"}
    loaded = kmodels.estimator.load(dog_cat_run.run_dir)  # any finished image run
    expected = kmodels.predict(dog_cat_run.run_dir, [Path(p) for p in paths])
    assert list(loaded.predict(paths)) == list(expected["label"])
