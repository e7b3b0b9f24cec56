"""Representative inputs for INT8 calibration: real crops / letterboxed frames from the pack,
or synthetic renders when no pack is given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .augment import Canvas, rect_matrices
from .loop import build_pool


def calibration_batches(kind: str, size: int, pack: Path | None, n: int = 128) -> np.ndarray:
    pool = build_pool(pack, 0 if pack else n, seed=7)
    rng = np.random.default_rng(0)
    idx = torch.from_numpy(rng.choice(len(pool.images), min(n, len(pool.images)), replace=False))
    canvas = Canvas(pool.images, torch.device("cpu"))
    lm = torch.from_numpy(pool.landmarks)[idx]
    if kind == "landmark":
        from .augment import hand_frame
        from .landmark import CROP_SCALE

        angle, center, side = hand_frame(lm)
        m = rect_matrices(center, side * CROP_SCALE, angle, size)
    else:
        wh = canvas.sizes[idx]
        side = wh.max(-1).values
        m = rect_matrices(wh / 2, side, torch.zeros_like(side), size)
    x = canvas.sample(idx, m, size)
    return x.permute(0, 2, 3, 1).contiguous().numpy()
