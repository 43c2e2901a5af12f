"""Table building, integrity scan, image decoding and augmentation."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kmodels_vision.images import image_table, scan_images
from kmodels_vision.pipeline import Augment, ImageBatches, augment_image, load_image
from kmodels_vision.synthetic import SPECIAL_FILES, draw_animal, write_dog_cat
from PIL import Image

from kmodels.errors import DataError

CLASSES = ("cat", "dog")


def _img(path, size=(20, 16), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size).save(path)
    return path


def test_flat_kaggle_layout(tmp_path):
    for name in ["cat.0.jpg", "dog.12.jpg", "Cat_3.png", "readme.txt", "bird.1.jpg"]:
        _img(tmp_path / name) if name.endswith(("jpg", "png")) else (tmp_path / name).write_text("x")
    t = image_table(tmp_path, CLASSES)
    assert sorted(t["label"]) == ["cat", "cat", "dog"] and "split" not in t


@pytest.mark.parametrize("folders", [("Cat", "Dog"), ("cats", "dogs"), ("CAT", "dogs")])
def test_class_folders_any_case_or_plural(tmp_path, folders):
    _img(tmp_path / "PetImages" / folders[0] / "1.jpg")
    _img(tmp_path / "PetImages" / folders[1] / "1.jpg")
    t = image_table(tmp_path / "PetImages", CLASSES)
    assert sorted(t["label"]) == ["cat", "dog"]


@pytest.mark.parametrize("val_name", ["val", "validation"])
def test_split_folders_are_kept(tmp_path, val_name):
    for split in ["train", val_name, "test"]:
        for c in ["cats", "dogs"]:
            _img(tmp_path / split / c / "a.jpg")
    t = image_table(tmp_path, CLASSES)
    assert sorted(set(t["split"])) == ["test", "train", "val"] and len(t) == 6


def test_csv_layout_with_relative_paths(tmp_path):
    _img(tmp_path / "imgs" / "a.jpg")
    _img(tmp_path / "imgs" / "b.jpg")
    (tmp_path / "list.csv").write_text("path,label\nimgs/a.jpg,Cat\nimgs/b.jpg,dog\n")
    t = image_table(tmp_path / "list.csv", CLASSES)
    assert t["label"].tolist() == ["cat", "dog"] and t["path"].iloc[0] == str(tmp_path / "imgs" / "a.jpg")
    (tmp_path / "bad.csv").write_text("path,label\nimgs/a.jpg,horse\n")
    with pytest.raises(DataError, match="'horse'"):
        image_table(tmp_path / "bad.csv", CLASSES)


def test_layout_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        image_table(tmp_path / "nope", CLASSES)
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(DataError, match="No labelled images"):
        image_table(tmp_path, CLASSES)
    _img(tmp_path / "train" / "cat" / "a.jpg")
    _img(tmp_path / "cat.1.jpg")
    with pytest.raises(DataError, match="mixes split folders"):
        image_table(tmp_path, CLASSES)


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_integrity_scan_skips_reports_converts_and_never_modifies(tmp_path, caplog):
    root = write_dog_cat(tmp_path / "data", count=3, min_size=32, max_size=40)
    before = _digest(root)
    paths = image_table(root, CLASSES)["path"].tolist()
    scan = scan_images(paths, progress=False).set_index("path")
    by_name = {p.split("/")[-1]: row for p, row in scan.iterrows()}
    assert by_name["cat.9000.jpg"]["reason"] == "empty file (0 bytes)"
    assert by_name["dog.9001.jpg"]["reason"] == "truncated image"
    assert by_name["cat.9002.jpg"]["reason"] == "not an image (unrecognised format)"
    assert not any(by_name[n]["ok"] for n in ["cat.9000.jpg", "dog.9001.jpg", "cat.9002.jpg"])
    modes = {n: by_name[n]["mode"] for n in ["dog.9003.jpg", "cat.9004.jpg", "dog.9005.png", "cat.9006.png"]}
    assert modes == {"dog.9003.jpg": "L", "cat.9004.jpg": "CMYK", "dog.9005.png": "RGBA", "cat.9006.png": "P"}
    assert all(by_name[n]["ok"] for n in modes)
    assert by_name["dog.9007.jpg"]["sha256"] == by_name["dog.0.jpg"]["sha256"]
    assert len(SPECIAL_FILES) == 8
    assert _digest(root) == before  # nothing modified, nothing deleted
    with caplog.at_level("INFO", logger="kmodels"):
        again = scan_images(paths, progress=False)
    assert f"0 decoded now, {len(paths)} from the cache" in caplog.text
    assert again["ok"].tolist() == scan.loc[paths, "ok"].tolist()


def test_scan_cache_notices_changed_files(tmp_path):
    p = _img(tmp_path / "cat.1.jpg")
    assert scan_images([str(p)], progress=False)["ok"].iloc[0]
    p.write_bytes(b"")
    assert scan_images([str(p)], progress=False)["reason"].iloc[0] == "empty file (0 bytes)"


modes = st.sampled_from(["RGB", "L", "RGBA", "P", "CMYK", "LA", "I;16"])
sides = st.integers(min_value=1, max_value=90)


@given(w=sides, h=sides, mode=modes, out=st.tuples(st.integers(8, 64), st.integers(8, 64)),
       fmt=st.sampled_from(["PNG", "JPEG", "BMP"]))
def test_load_image_shape_dtype_range_for_any_size_and_mode(tmp_path_factory, w, h, mode, out, fmt):
    if mode == "CMYK":
        fmt = "JPEG"  # the format CMYK photos come in
    elif fmt == "JPEG" and mode not in ("RGB", "L"):
        fmt = "PNG"
    elif fmt == "BMP" and mode in ("LA", "I;16", "RGBA"):
        fmt = "PNG"
    path = tmp_path_factory.mktemp("img") / f"x.{fmt.lower()}"
    Image.new(mode, (w, h)).save(path, format=fmt)
    arr = load_image(str(path), out)
    assert arr.shape == (out[1], out[0], 3) and arr.dtype == np.float32
    assert arr.min() >= 0 and arr.max() <= 255


@given(seed=st.integers(0, 2**16), flip=st.floats(0, 1), rotation=st.floats(0, 45), zoom=st.floats(0, 0.5),
       size=st.tuples(st.integers(8, 48), st.integers(8, 48)))
def test_augmentation_keeps_shape_range_and_is_seeded(seed, flip, rotation, zoom, size):
    img = np.asarray(draw_animal("cat", size, np.random.default_rng(seed)), dtype=np.float32)
    aug = Augment(flip, rotation, zoom)
    a = augment_image(img, np.random.default_rng([seed, 1]), aug)
    b = augment_image(img, np.random.default_rng([seed, 1]), aug)
    assert a.shape == img.shape and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 255
    np.testing.assert_array_equal(a, b)


@given(seed=st.integers(0, 2**16), rotation=st.floats(0, 45), zoom=st.floats(0, 0.5),
       size=st.tuples(st.integers(8, 48), st.integers(8, 48)))
def test_flip_folded_into_the_warp_equals_mirroring_first(seed, rotation, zoom, size):
    img = np.asarray(draw_animal("dog", size, np.random.default_rng(seed)), dtype=np.float32)
    folded = augment_image(img, np.random.default_rng(seed), Augment(1.0, rotation, zoom))
    mirrored_first = augment_image(img[:, ::-1], np.random.default_rng(seed), Augment(0.0, rotation, zoom))
    diff = np.abs(folded - mirrored_first)
    assert diff.mean() < 0.5 and diff.max() <= 2, (diff.mean(), diff.max())


def test_flip_only_is_a_mirror():
    img = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    out = augment_image(img, np.random.default_rng(0), Augment(flip=1.0, rotation=0, zoom=0))
    np.testing.assert_array_equal(out, img[:, ::-1])


def test_batches_are_reproducible_and_reshuffle_per_epoch(tmp_path):
    root = write_dog_cat(tmp_path / "d", count=6, min_size=24, max_size=30, broken=False)
    t = image_table(root, CLASSES)
    y = (t["label"] == "dog").astype(int).to_numpy()

    def make():
        return ImageBatches(t["path"].tolist(), y, (16, 16), batch_size=4, shuffle=True, augment=Augment(), seed=3,
                            workers=1)

    a, b = make(), make()
    assert len(a) == 3
    xa, ya = a[0]
    xb, yb = b[0]
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    assert xa.shape == (4, 16, 16, 3)
    a.on_epoch_end()
    assert not np.array_equal(a.order, b.order)


def test_cached_batches_equal_uncached_and_later_epochs_read_no_file(tmp_path, monkeypatch):
    import kmodels_vision.pipeline as pipeline

    root = write_dog_cat(tmp_path / "d", count=6, min_size=24, max_size=30, broken=False)
    t = image_table(root, CLASSES)
    y = (t["label"] == "dog").astype(int).to_numpy()

    def make(cache):
        return ImageBatches(t["path"].tolist(), y, (16, 16), batch_size=4, shuffle=True, augment=Augment(), seed=3,
                            workers=1, cache=cache)

    def epoch(ds):
        return np.concatenate([ds[i][0] for i in range(len(ds))])

    cached, plain = make(True), make(False)
    np.testing.assert_array_equal(epoch(cached), epoch(plain))
    assert len(cached._decoded) == len(t) and not plain._decoded
    cached.on_epoch_end()
    plain.on_epoch_end()
    expected = epoch(plain)

    def no_disk(*args):
        raise AssertionError("a cached image was read from disk again")

    monkeypatch.setattr(pipeline, "open_rgb", no_disk)
    np.testing.assert_array_equal(epoch(cached), expected)  # new shuffle and augmentation, no decoding
    assert ImageBatches.cache_bytes(len(t), (16, 16)) == len(t) * 16 * 16 * 3


def _png_header_only(path, width, height):
    """A PNG whose header claims width x height pixels: 100 bytes on disk (a decompression bomb's shape)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_scan_skips_hostile_files_with_a_reason_and_goes_on(tmp_path):
    """Symlink loop, FIFO, a device, a directory named .jpg, a pixel bomb: each skipped, nothing hangs or grows."""
    import os

    from kmodels_vision.images import scan_images

    good = tmp_path / "cat.0.jpg"
    Image.new("RGB", (20, 20), (200, 10, 10)).save(good)
    (tmp_path / "cat.1.jpg").symlink_to(tmp_path / "cat.2.jpg")
    (tmp_path / "cat.2.jpg").symlink_to(tmp_path / "cat.1.jpg")  # a two-file loop
    os.mkfifo(tmp_path / "dog.0.jpg")
    (tmp_path / "dog.1.jpg").symlink_to("/dev/zero")
    (tmp_path / "dog.2.jpg").mkdir()
    _png_header_only(tmp_path / "dog.3.png", 30000, 30000)
    before = {p.name: p.lstat().st_size for p in tmp_path.iterdir()}
    paths = [str(tmp_path / n) for n in ["cat.0.jpg", "cat.1.jpg", "dog.0.jpg", "dog.1.jpg", "dog.2.jpg", "dog.3.png"]]
    scan = scan_images(paths, progress=False).set_index("path")
    reasons = {Path(p).name: r for p, r in scan["reason"].items()}
    assert bool(scan.loc[paths[0], "ok"]) and not isinstance(reasons["cat.0.jpg"], str)
    assert "symbolic links" in reasons["cat.1.jpg"]
    assert reasons["dog.0.jpg"] == "not a regular file (FIFO)"
    assert reasons["dog.1.jpg"] == "not a regular file (character device)"
    assert reasons["dog.2.jpg"] == "not a regular file (directory)"
    assert reasons["dog.3.png"].startswith("too many pixels")
    assert {p.name: p.lstat().st_size for p in tmp_path.iterdir()} == before  # nothing touched


def test_predict_reports_hostile_inputs_on_their_rows(dog_cat_run, tmp_path):
    import os

    from kmodels.task import predict

    os.mkfifo(tmp_path / "fifo.jpg")
    _png_header_only(tmp_path / "bomb.png", 30000, 30000)
    _png_header_only(tmp_path / "huge.png", 10000, 6000)  # 60 Mpx: under Pillow's own bomb limit, over the scan's
    pred = predict(dog_cat_run.run_dir, [tmp_path / "fifo.jpg", tmp_path / "bomb.png", tmp_path / "huge.png"])
    assert pred["error"].tolist()[0] == "not a regular file (FIFO)"
    assert "DecompressionBomb" in pred["error"].tolist()[1] and pred["label"].tolist() == ["", "", ""]
    assert pred["error"].tolist()[2].startswith("too many pixels (10000x6000 > 50,000,000)")


def test_scan_skips_a_file_that_decodes_past_the_time_limit(tmp_path, monkeypatch):
    """A stalled read (a hung network mount) is skipped with its reason; the scan does not wait for it."""
    import threading
    import time

    from kmodels_vision import images

    paths = []
    for i in range(4):
        Image.new("RGB", (12, 12), (i * 40, 0, 0)).save(tmp_path / f"cat.{i}.png")
        paths.append(str(tmp_path / f"cat.{i}.png"))
    release = threading.Event()
    real = images._inspect

    def stalls_on_one(path):
        if path == paths[1]:
            release.wait(30)
        return real(path)

    monkeypatch.setattr(images, "_inspect", stalls_on_one)
    monkeypatch.setattr(images, "DECODE_SECONDS", 0.5)
    monkeypatch.setattr(images, "cache_dir", lambda: tmp_path / "cache")
    start = time.monotonic()
    try:
        scan = images.scan_images(paths, workers=2, progress=False).set_index("path")
    finally:
        release.set()
    assert time.monotonic() - start < 10
    assert scan.loc[paths[1], "reason"] == "decode took longer than 0.5 s" and not scan.loc[paths[1], "ok"]
    assert scan.drop(index=paths[1])["ok"].all()
    assert "timed_out" not in scan.columns
    cached = json.loads(next((tmp_path / "cache" / "scans").iterdir()).read_text())
    assert paths[1] not in cached and paths[0] in cached  # a stall is not remembered


def test_scan_keeps_a_bounded_window_of_files_in_flight(monkeypatch):
    # submitting every file at once made each finished file cost O(n): 25,000 photos scanned in 15 min, not 25 s
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from kmodels_vision import images

    in_flight, most = [0], [0]
    lock = threading.Lock()

    class Counting(ThreadPoolExecutor):
        def submit(self, fn, *args, **kwargs):
            with lock:
                in_flight[0] += 1
                most[0] = max(most[0], in_flight[0])

            def counted(*a, **k):
                try:
                    return fn(*a, **k)
                finally:  # before the future is done: a done-callback runs after `wait` wakes, and counted one too many
                    with lock:
                        in_flight[0] -= 1

            return super().submit(counted, *args, **kwargs)

    monkeypatch.setattr(images, "ThreadPoolExecutor", Counting)
    monkeypatch.setattr(images, "_inspect", lambda path: {"ok": True, "path": path})
    paths = [f"img{i}.jpg" for i in range(500)]
    out = images._inspect_all(paths, workers=2, progress=False)
    assert [r["path"] for r in out] == paths  # every file, in order
    assert 2 <= most[0] <= 16  # 8 per thread, never all 500


def test_image_size_is_bounded():
    import kmodels
    from kmodels.errors import ConfigError

    with pytest.raises(ConfigError, match=r"image_size=\[100000, 100000\]: expected two sides in \[8, 2048\]"):
        kmodels.load_spec("image_classification", {"images.image_size": [100000, 100000]})


def test_nested_folders_belong_to_their_class_and_hidden_files_are_reported(tmp_path, caplog):
    from kmodels_vision.images import image_table

    for name in ["cat/1.png", "cat/indoor/2.png", "dog/3.png", "dog/.4.png", ".thumbs/5.png", "dog/.cache/6.png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    with caplog.at_level("WARNING", logger="kmodels"):
        frame = image_table(tmp_path)
    assert dict(zip(frame["path"].map(lambda p: Path(p).name), frame["label"], strict=True)) == {
        "1.png": "cat", "2.png": "cat", "3.png": "dog"}  # 'indoor' is not a class
    assert "Skipped 3 hidden image file(s)" in caplog.text and "'cat/indoor'" in caplog.text
    wrapped = tmp_path / "wrap"
    for name in ["PetImages/Cat/1.png", "PetImages/Dog/2.png"]:
        (wrapped / name).parent.mkdir(parents=True, exist_ok=True)
        (wrapped / name).write_bytes(b"")
    assert sorted(image_table(wrapped)["label"]) == ["Cat", "Dog"]  # a wrapping folder is not the class


def test_a_file_rewritten_with_its_size_and_mtime_restored_is_scanned_again(tmp_path):
    from kmodels_vision.images import scan_images
    from PIL import Image

    path = tmp_path / "a.png"
    Image.new("RGB", (20, 20), "red").save(path)
    assert scan_images([str(path)], workers=1, progress=False)["ok"].iloc[0]
    st = os.stat(path)
    path.write_bytes(b"\0" * st.st_size)  # zeroed, same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime
    again = scan_images([str(path)], workers=1, progress=False)
    assert not again["ok"].iloc[0]
