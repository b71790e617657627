"""Tiny synthetic image folders and settings shared by the proxy and ``nasplay train`` tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ("circle", "square", "stripe", "dot")


def write_image_folder(root: Path, per_class: int = 16, size: int = 8, seed: int = 0,
                       split: str | None = "train") -> Path:
    """``root/[split/]<class>/NNN.png``: per class a distinct mean colour plus noise (learnable)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = root / split if split else root
    for c, name in enumerate(CLASSES):
        folder = base / name
        folder.mkdir(parents=True, exist_ok=True)
        colour = np.array([60 * c, 255 - 60 * c, (120 * c) % 256], dtype=np.float64)
        for i in range(per_class):
            noise = rng.normal(0, 30, (size, size, 3))
            pixels = np.clip(colour + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


def tiny_config(data: Path, **overrides):
    """The smallest network and budget that still runs every part of the proxy."""
    from nasplay.scorers.proxy.training import ProxyConfig

    settings = dict(data=str(data), train_size=32, val_size=16, epochs=1, batch_size=8,
                    filters=4, cells_per_stage=0, cpus=2)
    return ProxyConfig(**{**settings, **overrides})
