"""An image run's SavedModel export takes encoded image files and answers as `kmodels predict` does."""

from __future__ import annotations

import numpy as np
from PIL import Image

import kmodels
from kmodels.task.export import IMAGE_TOLERANCE


def _images(folder):
    """A large JPEG (decoded at 1/8 scale, like Pillow's draft mode), a grey JPEG, a transparent PNG, a GIF."""
    folder.mkdir()
    y, x = np.mgrid[0:300, 0:400]
    rgb = np.stack([(x * 0.6) % 256, (y * 0.8) % 256, ((x + y) * 0.3) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(folder / "big.jpg", quality=90)
    Image.fromarray(rgb[:70, :90, 0]).save(folder / "grey.jpg")
    rgba = np.dstack([rgb[:50, :60], np.tile(np.linspace(0, 255, 60), (50, 1)).astype(np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "alpha.png")
    Image.fromarray(rgb[100:160, 100:180]).convert("P").save(folder / "small.gif")
    return sorted(folder.iterdir())


def test_image_saved_model_takes_encoded_files(dog_cat_run, tmp_path):
    import tensorflow as tf

    out = tmp_path / "export"
    result = kmodels.export(dog_cat_run.run_dir, out, "saved_model")
    assert result["rows"] > 0 and result["max_abs_diff"] <= IMAGE_TOLERANCE
    assert result["metadata"]["input"]["image_size"] == [48, 48] and result["metadata"]["classes"] == ["cat", "dog"]
    files = _images(tmp_path / "new")
    loaded = tf.saved_model.load(str(out))
    got = loaded.serve(tf.constant([f.read_bytes() for f in files]))
    want = kmodels.predict(dog_cat_run.run_dir, files)
    assert (want["error"] == "").all()
    np.testing.assert_allclose(got["probabilities"].numpy(), want[["probability_cat", "probability_dog"]],
                               atol=IMAGE_TOLERANCE)
    labels = [v.decode() for v in got["label"].numpy()]
    close = np.abs(want["probability_dog"] - dog_cat_run.metrics["threshold"]) < IMAGE_TOLERANCE
    assert all(a == b or c for a, b, c in zip(labels, want["label"], close, strict=True))
    assert (out / "assets" / "kmodels.json").is_file()


def test_an_image_export_is_served_without_its_run_directory(dog_cat_run, tmp_path):
    """`kmodels serve EXPORT` on an image SavedModel: the same answers as `kmodels predict` on the files."""
    from kmodels.serve import Service

    out = tmp_path / "export"
    kmodels.export(dog_cat_run.run_dir, out, "saved_model")
    files = _images(tmp_path / "new")
    service = Service(out)
    assert not service.tables and service.metadata()["input"]["image_size"] == [48, 48]
    got = service.predict_now([str(f) for f in files])
    want = kmodels.predict(dog_cat_run.run_dir, files)
    np.testing.assert_allclose([g["probability_dog"] for g in got], want["probability_dog"], atol=IMAGE_TOLERANCE)
    assert {g["label"] for g in got} <= {"cat", "dog"}
