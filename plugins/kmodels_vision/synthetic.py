"""Deterministic synthetic "cat" and "dog" photos in the Kaggle flat layout.

The class shows in the *shape* only: cats have upright triangular ears and
whiskers, dogs have long drooping ears and a muzzle. Position, scale, fur and
background colours, background texture and image size are random and drawn
from the same distributions for both classes, so colour or a single pixel
cannot give the answer. A handful of deliberately broken or unusual files
exercise the integrity scan: a zero-byte file, a truncated JPEG, a text file
named `.jpg`, grayscale / CMYK / RGBA / palette images, and an exact duplicate.

This tests the machinery, not the quality on real photos.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

#: The extra files written next to the regular images, by name → what they are.
SPECIAL_FILES = {
    "cat.9000.jpg": "zero-byte file",
    "dog.9001.jpg": "truncated JPEG",
    "cat.9002.jpg": "text file named .jpg",
    "dog.9003.jpg": "grayscale JPEG (converted to RGB)",
    "cat.9004.jpg": "CMYK JPEG (converted to RGB)",
    "dog.9005.png": "RGBA PNG (converted to RGB)",
    "cat.9006.png": "palette PNG (converted to RGB)",
    "dog.9007.jpg": "exact duplicate of dog.0.jpg",
}


def _colour(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, 3))


def _background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    base = np.zeros((h, w, 3), dtype=np.float32) + np.array(_colour(rng, 40, 220), dtype=np.float32)
    kind = rng.integers(0, 3)
    yy, xx = np.mgrid[0:h, 0:w]
    if kind == 0:  # stripes
        period = rng.uniform(6, 20)
        angle = rng.uniform(0, math.pi)
        wave = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
        base += wave[..., None] * rng.uniform(10, 40)
    elif kind == 1:  # blotches
        noise = rng.normal(0, 1, (max(2, h // 8), max(2, w // 8), 3))
        blot = np.asarray(Image.fromarray(((noise + 3) * 40).clip(0, 255).astype(np.uint8)).resize((w, h), Image.BILINEAR))
        base = base * 0.6 + blot * 0.4
    base += rng.normal(0, 8, base.shape)  # grain
    return Image.fromarray(base.clip(0, 255).astype(np.uint8))


def draw_animal(label: str, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """One synthetic photo of a `label` ("cat" or "dog") of `size` (width, height)."""
    w, h = size
    img = _background(rng, w, h)
    d = ImageDraw.Draw(img)
    r = rng.uniform(0.16, 0.26) * min(w, h)  # head radius
    cx = rng.uniform(0.3, 0.7) * w
    cy = rng.uniform(0.4, 0.65) * h
    fur = _colour(rng, 30, 240)
    dark = tuple(max(0, c - 80) for c in fur)
    if label == "cat":  # upright triangular ears
        for side in (-1, 1):
            bx = cx + side * r * 0.55
            d.polygon([(bx - r * 0.45, cy - r * 0.6), (bx + r * 0.45, cy - r * 0.6),
                       (bx + side * r * 0.15, cy - r * 1.75)], fill=fur, outline=dark)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fur, outline=dark, width=max(1, int(r / 12)))
    if label == "dog":  # long drooping ears on the sides, a muzzle
        for side in (-1, 1):
            ex = cx + side * r * 0.95
            d.ellipse([ex - r * 0.32, cy - r * 0.7, ex + r * 0.32, cy + r * 1.1], fill=dark)
        d.ellipse([cx - r * 0.45, cy + r * 0.1, cx + r * 0.45, cy + r * 0.95], fill=tuple(min(255, c + 40) for c in fur))
        d.ellipse([cx - r * 0.15, cy + r * 0.2, cx + r * 0.15, cy + r * 0.45], fill=(20, 20, 20))
    else:  # small nose and whiskers
        d.polygon([(cx - r * 0.1, cy + r * 0.15), (cx + r * 0.1, cy + r * 0.15), (cx, cy + r * 0.3)], fill=(200, 90, 110))
        for side in (-1, 1):
            for k in (-1, 0, 1):
                d.line([(cx + side * r * 0.2, cy + r * 0.3), (cx + side * r * 1.1, cy + r * (0.2 + 0.15 * k))],
                       fill=(20, 20, 20), width=max(1, int(r / 20)))
    for side in (-1, 1):  # eyes
        ex, ey = cx + side * r * 0.38, cy - r * 0.2
        d.ellipse([ex - r * 0.12, ey - r * 0.12, ex + r * 0.12, ey + r * 0.12], fill=(15, 15, 15))
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.8)))
    return img


def write_dog_cat(root: str | Path, count: int = 400, seed: int = 0, min_size: int = 96, max_size: int = 160,
                  broken: bool = True) -> Path:
    """Write `count` images per class as `cat.N.jpg` / `dog.N.jpg` into `root` (created; must be empty).

    Args:
        root: the folder to create.
        count: images per class.
        seed: the data's seed (same seed, same files).
        min_size: smallest width/height in pixels.
        max_size: largest width/height in pixels.
        broken: also write the files in `SPECIAL_FILES`.
    """
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} exists and is not empty; synthetic data is only written to a new folder.")
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        for label in ("cat", "dog"):
            size = (int(rng.integers(min_size, max_size + 1)), int(rng.integers(min_size, max_size + 1)))
            draw_animal(label, size, rng).save(root / f"{label}.{i}.jpg", quality=int(rng.integers(75, 95)))
    if broken:
        _write_special(root, rng, min_size)
    return root


def _write_special(root: Path, rng: np.random.Generator, size: int) -> None:
    (root / "cat.9000.jpg").write_bytes(b"")
    whole = root / "dog.0.jpg"
    data = whole.read_bytes()
    (root / "dog.9001.jpg").write_bytes(data[: len(data) // 2])
    (root / "cat.9002.jpg").write_text("this is not an image\n")
    draw_animal("dog", (size, size), rng).convert("L").save(root / "dog.9003.jpg")
    draw_animal("cat", (size, size), rng).convert("CMYK").save(root / "cat.9004.jpg")
    rgba = draw_animal("dog", (size, size), rng).convert("RGBA")
    rgba.putalpha(200)
    rgba.save(root / "dog.9005.png")
    draw_animal("cat", (size, size), rng).convert("P", palette=Image.ADAPTIVE).save(root / "cat.9006.png")
    (root / "dog.9007.jpg").write_bytes(data)
