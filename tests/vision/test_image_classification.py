"""`image_classification`: any number of classes from folders or a CSV, class names read from the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kmodels
from kmodels.cli import main
from kmodels.task.inference import load_model


@pytest.fixture(scope="session")
def digit_folders(tmp_path_factory):
    """Real handwritten digits (scikit-learn's bundled 8x8 set), 12 per class, as PNG class folders."""
    from PIL import Image
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("digits")
    digits = load_digits()
    seen = dict.fromkeys(range(10), 0)
    for i, (image, target) in enumerate(zip(digits.images, digits.target, strict=True)):
        if seen[target] == 12:
            continue
        seen[target] += 1
        folder = root / f"digit_{target}"
        folder.mkdir(exist_ok=True)
        Image.fromarray((image * 255 / 16).astype(np.uint8), mode="L").save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def digits_run(digit_folders, tmp_path_factory):
    overrides = {"images.image_size": [16, 16], "images.augment": False, "train.epochs": 2, "train.verbose": 0,
                 "model.filters": [16], "model.stem_filters": 16}
    return kmodels.run("image_classification", data=digit_folders, overrides=overrides,
                       out=tmp_path_factory.mktemp("digits_run") / "run")


@pytest.mark.slow
def test_ten_classes_from_folders(digits_run):
    m = digits_run.metrics
    names = [f"digit_{i}" for i in range(10)]
    assert m["problem"]["kind"] == "multiclass" and m["classes"] == names
    keras_metrics = m["models"]["keras"]
    assert np.array(keras_metrics["confusion_matrix"]).shape == (10, 10)
    assert set(keras_metrics["per_class"]) == set(names)
    assert sum(m["splits"].values()) == 120
    for name in ("confusion_matrix.png", "misclassified.png", "sample_images.png", "model.keras"):
        assert (digits_run.run_dir / name).is_file(), name


@pytest.mark.slow
def test_multiclass_image_predict(digits_run, digit_folders, tmp_path):
    out = tmp_path / "pred.csv"
    assert main(["predict", str(digits_run.run_dir), str(digit_folders / "digit_3"), "--output", str(out)]) == 0
    pred = pd.read_csv(out, keep_default_na=False)
    assert list(pred.columns[:3]) == ["path", "label", "probability"] and pred.columns[-1] == "error"
    assert len([c for c in pred.columns if c.startswith("probability_")]) == 10
    assert set(pred["label"]) <= {f"digit_{i}" for i in range(10)} and len(pred) == 12


def test_classes_from_a_csv_and_the_preprocess_section_is_refused(digit_folders, tmp_path):
    from kmodels import registry

    rows = [{"path": str(p), "label": p.parent.name.replace("digit_", "d")}
            for p in sorted(digit_folders.rglob("*.png"))[:30]]
    csv = tmp_path / "labels.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    table = registry.datasets.get("image_folder")(path=str(csv))
    assert table.problem_type().kind == "multiclass" and table.resolved_classes()[0] == "d0"
    with pytest.raises(kmodels.ConfigError, match=r"does not use \[preprocess\]"):
        spec = kmodels.load_spec("image_classification").to_dict()
        spec["preprocess"] = [{"name": "impute"}]
        kmodels.spec.resolve(spec)


def test_dog_cat_is_a_preset_of_image_classification():
    from kmodels import registry

    dog_cat, generic = registry.tasks.get("dog_cat"), registry.tasks.get("image_classification")
    assert issubclass(dog_cat, generic)
    assert dog_cat.shipped_spec()["base"] == "image_classification"  # one recipe, written once
    a, b = kmodels.load_spec("dog_cat").to_dict(), kmodels.load_spec("image_classification").to_dict()
    # the same sections, data and recipe (tuned on real photos: a small Xception, cosine schedule,
    # test-time flips); the generic task reads its image size from the data, dog_cat fixes 144 px
    assert set(a) == set(b) and a["data"] == b["data"] and set(a["images"]) == set(b["images"])
    assert a["model"] == b["model"] and a["train"] == b["train"] and a["images"]["tta"] == b["images"]["tta"] == "flip"
    assert (a["images"]["image_size"], b["images"]["image_size"]) == ([144, 144], "auto")
    assert a["compile"]["loss"] == "binary_crossentropy" and b["compile"]["loss"] == "auto"


@pytest.mark.slow
def test_auto_image_size_is_read_from_the_data_and_recorded(digit_folders, tmp_path):
    """8x8 digits under `image_size = "auto"` train at 32 px, and the run's spec.toml says so."""
    result = kmodels.run("image_classification", data=digit_folders, out=tmp_path / "run", overrides={
        "train.epochs": 1, "train.verbose": 0, "model.filters": [16], "model.stem_filters": 16, "images.tta": "none"})
    spec = kmodels.load_spec(result.run_dir / "spec.toml")
    assert spec["images"]["image_size"] == [32, 32]
    assert keras_input(result.run_dir) == (None, 32, 32, 3)


def keras_input(run_dir):

    return load_model(run_dir / "model.keras").input_shape


def test_mixup_cutmix_on_ten_classes_and_bagging_stop_before_the_run_exists(digit_folders, tmp_path):
    out = tmp_path / "runs"
    with pytest.raises(kmodels.ConfigError, match=r"folds=2: bagging is for table tasks.*image_classification"):
        kmodels.run("image_classification", data=digit_folders, overrides={"train.folds": 2}, out=out)
    assert not out.exists()
    with pytest.raises(kmodels.ConfigError, match=r"mixup=0.2 blends labels.*multiclass \(10 classes\)"):
        kmodels.run("image_classification", data=digit_folders, overrides={"images.mixup": 0.2}, out=out)
    assert not out.exists()
    with pytest.raises(kmodels.ConfigError, match=r"\[images\] mixup=-1"):
        kmodels.run("image_classification", data=digit_folders, overrides={"images.mixup": -1}, out=out)
    with pytest.raises(kmodels.ConfigError, match=r"cutmix=1.0 blends labels.*multiclass \(10 classes\)"):
        kmodels.run("image_classification", data=digit_folders, overrides={"images.cutmix": 1.0}, out=out)
    with pytest.raises(kmodels.ConfigError, match=r"mixup=0.2 and cutmix=1.0: both mix pairs"):
        kmodels.run("image_classification", data=digit_folders, overrides={"images.mixup": 0.2, "images.cutmix": 1.0},
                    out=out)
    assert not out.exists()
