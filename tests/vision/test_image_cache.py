"""The decoded-image cache on disk and the device-side augmentation layer (current backend)."""

from __future__ import annotations

import hashlib
import json
import logging
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kmodels_vision.cache import DecodedImages
from kmodels_vision.layers import RandomAffineAugment
from kmodels_vision.pipeline import Augment, ImageBatches, augment_image, cut_mix, jitter_colors, open_rgb
from PIL import Image

import kmodels
from kmodels.task.inference import load_model
from tests.vision.conftest import SMALL


def _photos(folder, n=6, size=(40, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"{'cat' if i % 2 else 'dog'}.{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_cache_is_written_once_then_memory_mapped_and_equals_the_decoder(tmp_path, caplog):
    paths = _photos(tmp_path / "img")
    paths.append(paths[0])  # a duplicate path: one row
    digests = [_digest(p) for p in paths]
    root = tmp_path / "cache"
    store = DecodedImages.open(paths, digests, (16, 20), root=root, progress=False)
    files = list(root.iterdir())
    assert len(files) == 1 and files[0].name.endswith("-6x16x20x3.npy")  # complete: no temporary file left
    rows = store.rows(digests)
    assert rows[0] == rows[-1] and len(set(rows.tolist())) == 6
    for p, r in zip(paths, rows, strict=True):
        np.testing.assert_array_equal(store.array[r], np.asarray(open_rgb(p, (20, 16))))
    with caplog.at_level(logging.INFO, logger="kmodels"):
        again = DecodedImages.open(list(reversed(paths)), list(reversed(digests)), (16, 20), root=root, progress=False)
    assert "from the cache" in caplog.text and isinstance(again.array, np.memmap)
    np.testing.assert_array_equal(again.array, store.array)  # any order of the same images: the same file
    DecodedImages.open(paths, digests, (16, 16), root=root, progress=False)
    assert len(list(root.iterdir())) == 2  # another size: another file


def test_a_changed_image_gets_a_new_cache_file_and_the_old_one_is_kept(tmp_path):
    paths = _photos(tmp_path / "img", n=3)
    root = tmp_path / "cache"
    before = DecodedImages.open(paths, [_digest(p) for p in paths], (8, 8), root=root, progress=False)
    Image.new("RGB", (40, 30), (255, 0, 0)).save(paths[1])  # edited in place
    after = DecodedImages.open(paths, [_digest(p) for p in paths], (8, 8), root=root, progress=False)
    assert after.path != before.path and before.path.is_file()
    assert (after.array[after.rows([_digest(paths[1])])[0]] > 200)[..., 0].all()


def test_unwritable_cache_folder_decodes_into_memory(tmp_path, caplog):
    if os.geteuid() == 0:
        root = tmp_path / "file"
        root.write_text("a file where the cache folder would go")
    else:
        root = tmp_path / "ro"
        root.mkdir()
        root.chmod(0o500)
    paths = _photos(tmp_path / "img", n=2)
    with caplog.at_level(logging.WARNING, logger="kmodels"):
        store = DecodedImages.open(paths, [_digest(p) for p in paths], (8, 8), root=root / "images", progress=False)
    assert store.path is None and store.array.shape == (2, 8, 8, 3) and "decoding into memory" in caplog.text


def test_a_cache_file_of_the_wrong_shape_is_ignored_and_rebuilt(tmp_path, caplog):
    paths = _photos(tmp_path / "img", n=2)
    digests = [_digest(p) for p in paths]
    first = DecodedImages.open(paths, digests, (8, 8), root=tmp_path / "c", progress=False)
    np.save(first.path, np.zeros((1, 2, 2, 3), np.uint8))  # damaged
    with caplog.at_level(logging.WARNING, logger="kmodels"):
        again = DecodedImages.open(paths, digests, (8, 8), root=tmp_path / "c", progress=False)
    assert "Ignoring the decoded-image cache" in caplog.text and again.array.shape == (2, 8, 8, 3)


def test_batches_from_the_store_are_slices_in_the_shuffled_order(tmp_path):
    paths = _photos(tmp_path / "img", n=10)
    digests = [_digest(p) for p in paths]
    store = DecodedImages.open(paths, digests, (8, 8), root=tmp_path / "c", progress=False)
    plain = ImageBatches(paths, list(range(10)), (8, 8), batch_size=4, shuffle=True, seed=3)
    cached = ImageBatches(paths, list(range(10)), (8, 8), batch_size=4, shuffle=True, seed=3, store=store.array,
                          rows=store.rows(digests))
    for i in range(len(plain)):
        (xa, ya), (xb, yb) = plain[i], cached[i]
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
        assert xa.dtype == xb.dtype == np.uint8  # a quarter of float32's bytes to the device
    augment = Augment(flip=0.5, rotation=10.0, zoom=0.1, shift=0.1)
    plain = ImageBatches(paths, list(range(10)), (8, 8), batch_size=4, shuffle=True, seed=3, augment=augment)
    cached = ImageBatches(paths, list(range(10)), (8, 8), batch_size=4, shuffle=True, seed=3, augment=augment,
                          store=store.array, rows=store.rows(digests))
    for i in range(len(plain)):  # host augmentation from the cache: the same pixels as from the files
        np.testing.assert_array_equal(plain[i][0], cached[i][0])
    # `decoded` (what patch whitening is fitted on) is the un-augmented image, from the store or the file alike
    take = [7, 0, 3]
    np.testing.assert_array_equal(plain.decoded(take), cached.decoded(take))
    np.testing.assert_array_equal(plain.decoded(take), np.stack([np.asarray(open_rgb(paths[i], (8, 8))) for i in take]))
    with pytest.raises(ValueError, match="does not fit"):
        ImageBatches(paths, None, (16, 16), store=store.array, rows=store.rows(digests))


@settings(deadline=None, max_examples=30)
@given(n=st.integers(1, 9), batch=st.integers(1, 6), alpha=st.sampled_from([0.2, 0.4, 1.0, 4.0]),
       seed=st.integers(0, 50), epoch=st.integers(0, 3))
def test_mixup_blends_images_and_labels_with_the_same_weights(tmp_path_factory, n, batch, alpha, seed, epoch):
    rng = np.random.default_rng(seed)
    store = rng.integers(0, 256, (n, 5, 4, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, n).astype(np.float32)
    paths = [f"{i}.jpg" for i in range(n)]  # never opened: batches come from the store
    kw = dict(batch_size=batch, shuffle=True, seed=seed, store=store, rows=np.arange(n))
    plain, mixed = ImageBatches(paths, labels, (5, 4), **kw), ImageBatches(paths, labels, (5, 4), mixup=alpha, **kw)
    plain.epoch = mixed.epoch = epoch
    plain.order, mixed.order = plain._order(), mixed._order()
    for i in range(len(plain)):
        (x, y), (xm, ym) = plain[i], mixed[i]
        assert xm.dtype == np.uint8 and xm.shape == x.shape and ym.dtype == np.float32
        if len(x) == 1:  # nothing to blend with
            np.testing.assert_array_equal(xm, x)
            continue
        # every blend is lam * own + (1 - lam) * another of the batch, lam >= 0.5, the same lam for pixels and label
        for k in range(len(x)):
            fits = []
            for j in range(len(x)):
                own, other, out = (a.astype(np.float64).ravel() for a in (x[k], x[j], xm[k]))
                diff = own - other
                # the pixels' weight, by least squares (any weight fits when the two images are equal)
                lam = 1.0 if not diff.any() else float(diff @ (out - other) / (diff @ diff))
                if y[k] != y[j]:  # then the label fixes the weight, and the pixels must agree with it
                    lam_y = float((ym[k] - y[j]) / (y[k] - y[j]))
                    lam = lam if not diff.any() else lam_y if abs(lam - lam_y) < 0.02 else -1.0
                elif ym[k] != y[k]:
                    continue
                if 0.5 - 0.02 <= lam <= 1 + 1e-6 and np.abs(np.rint(lam * own + (1 - lam) * other) - out).max() <= 1:
                    fits.append(j)
            assert fits, (k, ym[k])
        assert np.all((0 <= ym) & (ym <= 1))
        np.testing.assert_array_equal(mixed[i][0], xm)  # seeded by (seed, epoch, batch): the same batch again


def test_mixup_and_cutmix_need_labels_and_a_non_negative_parameter():
    with pytest.raises(ValueError, match="mixup=0.2 needs labels"):
        ImageBatches(["a.jpg"], None, (4, 4), mixup=0.2)
    with pytest.raises(ValueError, match="mixup=-1"):
        ImageBatches(["a.jpg"], [0], (4, 4), mixup=-1)
    with pytest.raises(ValueError, match="cutmix=1.0 needs labels"):
        ImageBatches(["a.jpg"], None, (4, 4), cutmix=1.0)
    with pytest.raises(ValueError, match="mixup=0.2 and cutmix=1.0: set one"):
        ImageBatches(["a.jpg"], [0], (4, 4), mixup=0.2, cutmix=1.0)


@settings(deadline=None, max_examples=40)
@given(n=st.integers(2, 7), height=st.integers(1, 9), width=st.integers(1, 9),
       alpha=st.sampled_from([0.2, 1.0, 4.0]), seed=st.integers(0, 10_000))
def test_cut_mix_pastes_one_box_of_another_image_and_weighs_labels_by_area(n, height, width, alpha, seed):
    rng = np.random.default_rng(seed)
    # distinct images: every pixel of image k is k (all channels), so each pixel says where it came from
    x = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None] * 30, (n, height, width, 3)).copy()
    y = rng.integers(0, 2, n).astype(np.float32)
    xm, ym = cut_mix(x, y, np.random.default_rng(seed), alpha)
    assert xm.shape == x.shape and xm.dtype == np.uint8 and ym.dtype == np.float32
    assert x[:, 0, 0, 0].tolist() == [30 * k for k in range(n)]  # the input is not modified
    sources = xm[..., 0] // 30
    for k in range(n):
        moved = np.argwhere(sources[k] != k)
        if len(moved):  # one box, filled from one other image
            (y0, x0), (y1, x1) = moved.min(0), moved.max(0) + 1
            assert len(moved) == (y1 - y0) * (x1 - x0)
            (j,) = np.unique(sources[k][y0:y1, x0:x1])
            share = len(moved) / (height * width)
            assert ym[k] == pytest.approx((1 - share) * y[k] + share * y[j], abs=1e-6)
        else:  # no box within the image, or its own pixels pasted back
            assert ym[k] == pytest.approx(y[k], abs=1e-6)
        assert np.all(xm[k, ..., 0] == xm[k, ..., 2])  # whole pixels, all channels
    # the training batches: each plain batch through `cut_mix`, seeded by (seed, epoch, batch)
    store, labels = rng.integers(0, 256, (n, 6, 5, 3), dtype=np.uint8), rng.integers(0, 2, n).astype(np.float32)
    kw = dict(batch_size=n, shuffle=True, seed=seed, store=store, rows=np.arange(n))
    paths = [f"{i}.jpg" for i in range(n)]  # never opened: batches come from the store
    plain, mixed = ImageBatches(paths, labels, (6, 5), **kw), ImageBatches(paths, labels, (6, 5), cutmix=alpha, **kw)
    expected = cut_mix(*plain[0], np.random.default_rng([seed, 0, 0, 11]), alpha)
    for got, want in zip(mixed[0], expected, strict=True):
        np.testing.assert_array_equal(got, want)


# Image sides for the properties that run the device layer (the cutout one has its own, from 4 up): a few
# fixed sizes, odd and even, because JAX compiles every operation again for each new shape. With every size
# of their old ranges (3-12, cutout 4-20) the three properties took 94 s of the JAX suite instead of 38,
# measured side by side. The seeds and strengths, which cost nothing to vary, stay free.
SIDES = st.sampled_from([3, 8, 12])


@settings(deadline=None)
@given(h=SIDES, w=SIDES, seed=st.integers(0, 100),
       rotation=st.floats(0, 45), zoom=st.floats(0, 0.5), shift=st.floats(0, 0.3), flip=st.sampled_from([0.0, 0.5, 1.0]))
def test_random_affine_stays_in_range_and_is_seeded(h, w, seed, rotation, zoom, shift, flip):
    x = np.random.default_rng(seed).uniform(0, 255, (3, h, w, 3)).astype("float32")
    a = RandomAffineAugment(flip, rotation, zoom, shift, seed=seed)
    b = RandomAffineAugment(flip, rotation, zoom, shift, seed=seed)
    ya, yb = np.asarray(a(x, training=True)), np.asarray(b(x, training=True))
    assert ya.shape == x.shape and ya.dtype == np.float32
    np.testing.assert_allclose(ya, yb, atol=1e-4)  # same seed, same draws
    assert ya.min() >= x.min() - 1e-3 and ya.max() <= x.max() + 1e-3  # bilinear + reflection: no new extremes
    np.testing.assert_array_equal(np.asarray(a(x, training=False)), x)  # identity outside training


def test_random_affine_without_warp_is_exact_and_flip_mirrors():
    x = np.random.default_rng(0).uniform(0, 255, (4, 7, 9, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(RandomAffineAugment(0.0, 0.0, 0.0, 0.0)(x, training=True)), x, atol=1e-4)
    np.testing.assert_allclose(np.asarray(RandomAffineAugment(1.0, 0.0, 0.0, 0.0)(x, training=True)), x[:, :, ::-1],
                               atol=1e-4)
    layer = RandomAffineAugment(0.5, 10.0, 0.1, 0.1, seed=7, name="aug")
    assert RandomAffineAugment.from_config(layer.get_config()).get_config() == layer.get_config()



def _cut_box(changed: np.ndarray) -> tuple[int, int, int, int]:
    """The bounding box (top, bottom, left, right) of the `changed` pixels, checked to be filled whole."""
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1], cols[0], cols[-1]
    assert changed[top:bottom + 1, left:right + 1].all() and changed.sum() == (bottom - top + 1) * (right - left + 1)
    return top, bottom, left, right


def _square_side(side: int, cutout: float) -> int:
    """Whole pixels within half the square of `cutout` x `side` of a centre pixel: the side of an uncut square."""
    return 2 * int(np.ceil(cutout * side / 2)) - 1


@settings(deadline=None, max_examples=25)
@given(h=st.sampled_from([4, 9, 20]), w=st.sampled_from([5, 12, 20]), seed=st.integers(0, 100), cutout=st.floats(0.15, 0.9))
def test_cutout_fills_one_square_with_the_mean_colour_on_device_and_host(h, w, seed, cutout):
    # noise in (1, 254): no pixel equals its image's mean colour, so the changed pixels are the square
    x = np.random.default_rng(seed).uniform(1, 254, (3, h, w, 3)).round().astype("float32")
    out = np.asarray(RandomAffineAugment(0.0, 0.0, 0.0, 0.0, seed=seed, cutout=cutout)(x, training=True))
    host = [augment_image(x[i], np.random.default_rng([seed, i]), Augment(0.0, 0.0, 0.0, 0.0, cutout)) for i in range(3)]
    for i, (device_i, host_i) in enumerate(zip(out, host, strict=True)):
        for got, fill in ((device_i, x[i].mean(axis=(0, 1))), (host_i, np.round(x[i].mean(axis=(0, 1))))):
            changed = np.abs(got - x[i]).max(axis=-1) > 1e-3
            top, bottom, left, right = _cut_box(changed)
            # a square of the asked size, cut off only where it meets an edge
            for lo, hi, side in ((top, bottom, h), (left, right, w)):
                size = _square_side(side, cutout)
                assert hi - lo + 1 == size or (lo == 0 or hi == side - 1) and hi - lo + 1 < size
            np.testing.assert_allclose(got[changed], np.broadcast_to(fill, got[changed].shape), atol=1e-3)
            np.testing.assert_array_equal(got[~changed], x[i][~changed])  # the rest untouched
    np.testing.assert_array_equal(np.asarray(RandomAffineAugment(0.0, 0.0, 0.0, 0.0, cutout=cutout)(x)), x)


def test_cutout_off_keeps_the_random_stream_and_bad_sizes_are_refused():
    x = np.random.default_rng(0).uniform(0, 255, (2, 9, 9, 3)).astype("float32")
    # without cutout nothing more is drawn than the warp's five numbers (flip, angle, scale, two shifts), so a
    # run's augmentation is what it was before the option existed; with it, two more (the square's centre)
    for cutout, draws in ((0.0, 5), (0.3, 7)):
        rng, reference = np.random.default_rng(5), np.random.default_rng(5)
        augment_image(x[0], rng, Augment(0.5, 10.0, 0.1, 0.1, cutout))
        reference.random(draws)
        assert rng.random() == reference.random()
    with pytest.raises(ValueError, match="cutout=1.0"):
        RandomAffineAugment(cutout=1.0)
    with pytest.raises(ValueError, match="cutout and color_jitter in"):
        Augment(cutout=-0.1).validate()
    from kmodels_vision.options import ImageOptions

    from kmodels.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[images\].*cutout"):
        ImageOptions(cutout=1.5)
    layer = RandomAffineAugment(0.5, 10.0, 0.1, 0.1, seed=7, cutout=0.4)
    assert RandomAffineAugment.from_config(layer.get_config()).cutout == 0.4

@settings(deadline=None, max_examples=25)
@given(h=SIDES, w=SIDES, seed=st.integers(0, 100), jitter=st.floats(0.05, 0.9))
def test_color_jitter_is_the_numpy_reference_on_device_and_host(h, w, seed, jitter):
    import keras

    x = np.random.default_rng(seed).uniform(0, 255, (3, h, w, 3)).round().astype("float32")
    # on the device: the warp's five numbers per image, then three jitter factors, from the layer's seed generator
    out = np.asarray(RandomAffineAugment(0.0, 0.0, 0.0, 0.0, seed=seed, color_jitter=jitter)(x, training=True))
    replay = keras.random.SeedGenerator(seed)
    keras.random.uniform((3, 5), seed=replay)
    factors = 1.0 + (2.0 * np.asarray(keras.random.uniform((3, 3), seed=replay)) - 1.0) * jitter
    assert np.all((factors >= 1 - jitter - 1e-6) & (factors <= 1 + jitter + 1e-6))
    np.testing.assert_allclose(out, jitter_colors(x, factors), atol=1e-3)
    assert out.min() >= 0.0 and out.max() <= 255.0
    # on the host: the flip's one number, then the three factors, from the image's generator; whole levels out
    for i in range(3):
        rng, replay_host = np.random.default_rng([seed, i]), np.random.default_rng([seed, i])
        got = augment_image(x[i], rng, Augment(0.0, 0.0, 0.0, 0.0, 0.0, jitter))
        replay_host.random()
        host_factors = 1.0 + (2.0 * replay_host.random(3) - 1.0) * jitter
        np.testing.assert_allclose(got, np.rint(jitter_colors(x[i][None], host_factors[None])[0]), atol=1.0)
        assert rng.random() == replay_host.random()  # exactly four numbers drawn
    np.testing.assert_array_equal(np.asarray(RandomAffineAugment(color_jitter=jitter)(x)), x)  # not in inference


@settings(deadline=None, max_examples=50)
@given(seed=st.integers(0, 1000), grey=st.booleans())
def test_jitter_colors_keeps_grey_images_grey_and_identity_factors_change_nothing(seed, grey):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (2, 5, 4, 1 if grey else 3)).astype("float32")
    x = np.repeat(x, 3, axis=3) if grey else x
    np.testing.assert_allclose(jitter_colors(x, np.ones((2, 3))), x, atol=1e-3)
    factors = rng.uniform(0.5, 1.5, (2, 3))
    out = jitter_colors(x, factors)
    assert out.shape == x.shape and out.min() >= 0.0 and out.max() <= 255.0
    if grey:  # saturation has nothing to scale in a grey image
        np.testing.assert_allclose(out[..., 0], out[..., 2], atol=1e-3)
        np.testing.assert_allclose(out, jitter_colors(x, factors * [1.0, 1.0, 0.0]), atol=1e-3)


@pytest.mark.parametrize("option,on,draws,too_high,too_low", [
    ("color_jitter", 0.3, 8, 1.0, -0.1),  # the warp's five numbers, then three factors
    ("grayscale", 0.2, 6, 1.5, -0.1),  # the warp's five, then one
])
def test_colour_options_off_keep_the_random_stream_and_bad_values_are_refused(option, on, draws, too_high, too_low):
    from kmodels_vision.options import ImageOptions

    from kmodels.errors import ConfigError

    x = np.random.default_rng(0).uniform(0, 255, (9, 9, 3)).astype("float32")
    for value, n in ((0.0, 5), (on, draws)):
        rng, reference = np.random.default_rng(5), np.random.default_rng(5)
        augment_image(x, rng, Augment(0.5, 10.0, 0.1, 0.1, **{option: value}))
        reference.random(n)
        assert rng.random() == reference.random()
    with pytest.raises(ValueError, match=f"{option}={too_high}"):
        RandomAffineAugment(**{option: too_high})
    with pytest.raises(ConfigError, match=rf"\[images\].*{option}"):
        ImageOptions(**{option: too_low})
    layer = RandomAffineAugment(0.5, 10.0, 0.1, 0.1, seed=7, **{option: on})
    assert getattr(RandomAffineAugment.from_config(layer.get_config()), option) == on
    assert getattr(ImageOptions(**{option: on}).augmentation, option) == on


@pytest.mark.slow
def test_run_uses_the_disk_cache_and_saves_the_model_without_the_augmentation(tmp_path, caplog, backend, monkeypatch):

    monkeypatch.setenv("KMODELS_CACHE_DIR", str(tmp_path / "cache"))  # not the session's: other tests fill that

    overrides = {**SMALL, "data.count": 40, "data.min_size": 24, "data.max_size": 28, "images.image_size": [24, 24],
                 "train.epochs": 2, "images.augment": True, "images.shift": 0.1}
    with caplog.at_level(logging.INFO, logger="kmodels"):
        kmodels.run("dog_cat", overrides=overrides, out=tmp_path / "a")
    assert "decoded at 24x24 into" in caplog.text
    expected = "host" if backend == "jax" else "device"  # "auto": JAX on a CPU augments on the host
    assert f"Augmentation on the {expected}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="kmodels"):
        result = kmodels.run("dog_cat", overrides={**overrides, "train.seed": 7, "images.augment_on": "device"},
                             out=tmp_path / "b")
    assert "from the cache" in caplog.text  # another split of the same images: the same file
    model = load_model(result.run_dir / "model.keras")
    names = [layer.name for layer in model.layers]
    assert "augmentation" not in names and model.name == "simple_cnn"
    assert json.loads((result.run_dir / "metadata.json").read_text())["status"] == "completed"


@settings(deadline=None, max_examples=20)
@given(h=SIDES, w=SIDES, seed=st.integers(0, 100), p=st.floats(0.05, 1.0))
def test_grayscale_turns_the_drawn_images_grey_on_device_and_host(h, w, seed, p):
    """`grayscale = p`: one draw per image after the warp (and the jitter); an image drawn below p gets each
    pixel's channel mean in every channel, the others are left as they were; nothing in inference."""
    import keras

    x = np.random.default_rng(seed).uniform(0, 255, (4, h, w, 3)).round().astype("float32")
    out = np.asarray(RandomAffineAugment(0.0, 0.0, 0.0, 0.0, seed=seed, grayscale=p)(x, training=True))
    replay = keras.random.SeedGenerator(seed)
    keras.random.uniform((4, 5), seed=replay)
    chosen = np.asarray(keras.random.uniform((4,), seed=replay)) < p
    for i in range(4):
        want = np.repeat(x[i].mean(axis=2, keepdims=True), 3, axis=2) if chosen[i] else x[i]
        np.testing.assert_allclose(out[i], want, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(RandomAffineAugment(grayscale=p)(x)), x)
    for i in range(4):  # the host: the flip's one number, then this one, from the image's generator
        rng, replay_host = np.random.default_rng([seed, i]), np.random.default_rng([seed, i])
        got = augment_image(x[i], rng, Augment(0.0, 0.0, 0.0, 0.0, grayscale=p))
        replay_host.random()
        grey = replay_host.random() < p
        want = np.repeat(np.rint(x[i].mean(axis=2, keepdims=True)), 3, axis=2) if grey else x[i]
        np.testing.assert_allclose(got, want, atol=1.0)
        assert rng.random() == replay_host.random()  # exactly two numbers drawn
