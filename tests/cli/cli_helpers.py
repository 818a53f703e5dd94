"""Shared input images for the command-line tests (imported by name, like training_helpers)."""

import numpy as np
from PIL import Image


def write_step_images(folder, height, width):
    """Write ``a.png`` and ``b.png`` into a new ``folder``: a vertical step (dark left, light
    right half) with a little seeded noise."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        arr = np.zeros((height, width, 3), dtype=np.uint8)
        arr[:, width // 2:] = 200
        arr += rng.integers(0, 20, arr.shape, dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"{name}.png")
    return folder
