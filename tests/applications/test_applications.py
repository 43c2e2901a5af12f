"""The applications plugin: backbones, weights files, the two-phase fine-tuning schedule (current backend)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import kmodels
from kmodels.task.inference import load_model
from tests.vision.conftest import SMALL

SIZE = (32, 32, 3)  # the smallest input keras.applications accepts: fast enough for CI


@pytest.fixture(scope="module")
def mobilenet_weights(tmp_path_factory):
    """A MobileNetV3Small backbone's weights, saved by the test (stands in for a downloaded file)."""
    import keras

    keras.utils.set_random_seed(1)
    model = kmodels.build("mobilenet_v3_small", input_shape=SIZE, compile=False)
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v3_small.weights.h5"
    model.get_layer("backbone").save_weights(path)
    return path, {w.path: np.array(w) for w in model.get_layer("backbone").weights}


def test_weights_file_loads_into_the_backbone_and_freezes_it(mobilenet_weights):
    path, saved = mobilenet_weights
    model = kmodels.build("mobilenet_v3_small", input_shape=SIZE, weights=str(path))
    backbone = model.get_layer("backbone")
    assert not backbone.trainable and model.get_layer("output").trainable  # pretrained: head only
    assert {w.path: np.array(w) for w in backbone.weights}.keys() == saved.keys()
    for w in backbone.weights:
        np.testing.assert_array_equal(np.array(w), saved[w.path])
    unfrozen = kmodels.build("mobilenet_v3_small", input_shape=SIZE, weights=str(path), freeze_backbone=False)
    assert unfrozen.get_layer("backbone").trainable
    assert kmodels.build("mobilenet_v3_small", input_shape=SIZE).get_layer("backbone").trainable  # random init


def test_missing_or_mismatched_weights_file_is_a_clear_error(tmp_path):
    import keras

    with pytest.raises(kmodels.ConfigError, match=r"nope\.weights\.h5' does not exist"):
        kmodels.build("mobilenet_v3_small", input_shape=SIZE, weights=str(tmp_path / "nope.weights.h5"))
    (tmp_path / "w.txt").write_text("x")
    with pytest.raises(kmodels.ConfigError, match="not a Keras weights file"):
        kmodels.build("mobilenet_v3_small", input_shape=SIZE, weights=str(tmp_path / "w.txt"))
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save_weights(tmp_path / "other.weights.h5")
    with pytest.raises(kmodels.ConfigError, match=r"other\.weights\.h5' does not fit the MobileNetV3Small backbone"
                                                  r".*Expected \d+ arrays, starting conv/kernel: \(3, 3, 3, 16\)"):
        kmodels.build("mobilenet_v3_small", input_shape=SIZE, weights=str(tmp_path / "other.weights.h5"))


def test_resnet_preprocessing_layer_equals_keras_preprocess_input():
    import keras
    from kmodels_applications.models import _caffe_preprocessing

    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    got = keras.ops.convert_to_numpy(_caffe_preprocessing("p")(x))
    np.testing.assert_allclose(got, keras.applications.resnet50.preprocess_input(x.copy()), atol=1e-4)


def test_input_shape_below_the_backbone_minimum_is_rejected():
    with pytest.raises(kmodels.ConfigError, match="both sides >= 32"):
        kmodels.build("resnet50", input_shape=(16, 16, 3))


def test_fine_tune_is_skipped_without_a_frozen_backbone(tmp_path, caplog):
    with caplog.at_level("INFO", logger="kmodels"):
        result = kmodels.run("toy_task", overrides={"fine_tune.epochs": 2}, out=tmp_path / "r")
    assert "[fine_tune] skipped: model 'toy_mlp' has no nested backbone" in caplog.text
    assert "fine_tune_from_epoch" not in result.metrics and not (tmp_path / "r" / "head.weights.h5").exists()


@pytest.mark.slow
def test_two_phase_fine_tuning_interrupted_in_phase_two_resumes_there(mobilenet_weights, tmp_path):
    """dog_cat with a pretrained backbone: head for 2 epochs, then fine-tune the top for 2, Ctrl-C after epoch 3."""
    path, saved = mobilenet_weights
    small = {k: v for k, v in SMALL.items() if not k.startswith("model.")}
    overrides = {**small, "data.count": 24, "data.min_size": 32, "data.max_size": 40, "images.image_size": [32, 32],
                 "model.name": "mobilenet_v3_small", "model.weights": str(path), "train.epochs": 2,
                 "fine_tune.epochs": 2, "fine_tune.layers": 12, "fine_tune.learning_rate": 1e-4}
    raw = kmodels.load_spec("dog_cat", overrides).to_dict()
    assert "dense_units" not in raw["model"]  # keys of the old model are dropped with the rename
    raw["callbacks"].append({"name": "interrupt_after_epoch", "epoch": 2})  # the first fine-tuning epoch
    spec = tmp_path / "spec.toml"
    spec.write_text(kmodels.TaskSpec(raw, "test").to_toml())
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        kmodels.run(spec, out=out)
    assert json.loads((out / "fine_tune.json").read_text()) == {"head_epochs": 2}
    assert (out / "head.weights.h5").is_file() and not (out / "model.keras").exists()

    result = kmodels.run(resume=out)  # phase one is not repeated; phase two continues after epoch 3
    log = pd.read_csv(out / "training_log.csv")
    assert log["epoch"].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(log["learning_rate"], [1e-3, 1e-3, 1e-4, 1e-4], rtol=1e-5)
    assert result.metrics["fine_tune_from_epoch"] == 3 and result.metrics["epochs_run"] == 4

    import keras

    model = load_model(out / "model.keras")
    backbone = model.get_layer("backbone")
    now = {w.path: np.array(w) for w in backbone.weights}
    bn_stats = [k for k in now if k.endswith(("moving_mean", "moving_variance"))]
    assert bn_stats and all(np.array_equal(now[k], saved[k]) for k in bn_stats)  # BatchNorm in inference mode
    first_conv = backbone.weights[0].path
    assert np.array_equal(now[first_conv], saved[first_conv])  # below the unfrozen top: untouched
    top = [v.path for layer in backbone.layers[-12:] if not isinstance(layer, keras.layers.BatchNormalization)
           for v in layer.trainable_weights]
    assert top and any(not np.array_equal(now[k], saved[k]) for k in top)  # the top was fine-tuned


def test_offline_imagenet_download_is_a_clear_error_before_the_data_scan(tmp_path, monkeypatch, capsys):
    """Keras's real download code against a closed local port stands in for a machine without network."""
    import keras
    from keras.src.backend.common.variables import Variable
    from keras.src.utils import file_utils

    from kmodels.cli import main

    real_get_file = file_utils.get_file
    on_host = []

    def unreachable(fname=None, origin=None, **kwargs):
        on_host.append(Variable._initialize_with_initializer.__name__ == "on_host")  # kmodels' host_initialized
        return real_get_file(fname, origin="http://127.0.0.1:9/" + origin.rsplit("/", 1)[-1], **kwargs)

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(file_utils, "get_file", unreachable)
    scanned = []
    monkeypatch.setattr("kmodels_vision.task.scan_images", lambda *a, **k: scanned.append(a) or 1 / 0)
    code = main(["run", "dog_cat", "--set", "model.name=mobilenet_v3_small", "--set", 'model.weights="imagenet"',
                 "--set", "data.count=20", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and not scanned and not (tmp_path / "run").exists()
    # the throwaway build's initial values are drawn with NumPy on JAX (compiled per weight shape: 18 s before)
    assert on_host and all(scoped == (keras.backend.backend() == "jax") for scoped in on_host)
    assert "could not download the ImageNet weights of MobileNetV3Small" in err
    assert "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5 into" in err and "/models/" in err
