#!/usr/bin/env python3
"""Preprocessing fixtures: images and the tensors timm's eval transform makes of them.

Writes tests/fixtures/images/ (next to this tools/ folder):
  landscape.png      317 x 211 RGB (downscaled to a 256 short side)
  portrait_gray.png  150 x 190 grayscale (upscaled; converted to RGB)
  alpha.png          260 x 260 RGBA (alpha dropped by convert("RGB"))
  photo.jpg          640 x 480 RGB, JPEG quality 92, 4:2:0 chroma subsampling
  expected.safetensors  one [3, 224, 224] f32 tensor per image, keyed by file name
  manifest.json      the transform, its parameters and the package versions

The images are synthetic (gradients, discs, stripes, seeded noise) so the fixture needs no
download and exercises every resampling weight. The tensors come from the same code path timm
uses for RepVGG at evaluation: PIL decodes (`Image.open(f).convert("RGB")`), then
`timm.data.create_transform(**resolve_data_config({}, model=repvgg_a0))`, i.e. torchvision's
Resize(256, bilinear, antialias) -> CenterCrop(224) -> ToTensor -> Normalize(ImageNet mean, std).

Requires: pip install torch torchvision timm safetensors pillow numpy
"""
import json
import os

import numpy as np
import PIL
import timm
import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file
from timm.data import create_transform, resolve_data_config

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "images")


def scene(w, h, seed):
    """An RGB uint8 picture with smooth and sharp content."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127 + 120 * np.sin(x / w * 6.3 + seed)
    g = 255 * y / max(h - 1, 1)
    b = 127 + 120 * np.cos((x + y) / (w + h) * 12.0)
    img = np.stack([r, g, b], axis=-1)
    for _ in range(6):
        cx, cy, rad = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(8, min(w, h) / 3)
        disc = (x - cx) ** 2 + (y - cy) ** 2 < rad ** 2
        img[disc] = rng.uniform(0, 255, size=3)
    img[:, ::7] = 255 - img[:, ::7]
    img += rng.normal(0, 6, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    Image.fromarray(scene(317, 211, 1), "RGB").save(os.path.join(OUT, "landscape.png"))
    gray = scene(150, 190, 2).mean(axis=-1).round().astype(np.uint8)
    Image.fromarray(gray, "L").save(os.path.join(OUT, "portrait_gray.png"))
    rgba = np.concatenate([scene(260, 260, 3), scene(260, 260, 4)[..., :1]], axis=-1)
    Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, "alpha.png"))
    Image.fromarray(scene(640, 480, 5), "RGB").save(
        os.path.join(OUT, "photo.jpg"), quality=92, subsampling="4:2:0")

    model = timm.create_model("repvgg_a0", pretrained=False)
    config = resolve_data_config({}, model=model)
    transform = create_transform(**config)
    expected = {}
    for name in ["landscape.png", "portrait_gray.png", "alpha.png", "photo.jpg"]:
        with Image.open(os.path.join(OUT, name)) as im:
            expected[name] = transform(im.convert("RGB")).contiguous()
    save_file(expected, os.path.join(OUT, "expected.safetensors"))
    manifest = {
        "transform": str(transform),
        "data_config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "timm": timm.__version__, "pillow": PIL.__version__, "numpy": np.__version__},
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
