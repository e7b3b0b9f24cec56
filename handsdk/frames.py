"""Turn whatever a user passes as an image into a contiguous BGR uint8 (H, W, 3) array.

Conversions with one obvious meaning happen silently (grey, BGRA, float in [0, 1] or [0, 255],
uint16, non-contiguous views); everything else is refused with a :class:`FrameError` that says
what was passed and what is accepted. Two guesses are made per frame, so convert first where they
would be wrong: a float frame whose maximum is ≤ 1 is read as [0, 1] (a very dark [0, 255] frame
would be brightened), and uint16 is read as full 16-bit (shift 10- or 12-bit sensor data up first).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .errors import FrameError

#: The tracker letterboxes any frame for the detector and cuts hand crops from it, so any
#: shape works — a 20000x300 panorama, an 8x8 thumbnail; the bounds are a frame with some area
#: and one that fits in memory (OpenCV's own reading limit, 2**30 pixels).
MIN_SIDE, MAX_PIXELS = 2, 1 << 30
ACCEPTED = (
    "a numpy array of shape (H, W) grey, (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA; dtype uint8, "
    f"uint16, or float in [0, 1] or [0, 255]; at least {MIN_SIDE}x{MIN_SIDE} and at most {MAX_PIXELS:,} pixels"
)


def as_bgr(image: Any, name: str = "image") -> np.ndarray:
    """Validate and convert ``image``; raises :class:`FrameError` naming what was wrong."""
    if image is None:
        raise FrameError(f"{name} is None; expected {ACCEPTED}")
    if not isinstance(image, np.ndarray):
        raise FrameError(f"{name} is a {type(image).__name__}, not a numpy array; expected {ACCEPTED}"
                         " (convert lists with np.asarray, PIL images with np.asarray(img)[:, :, ::-1])")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise FrameError(f"{name} has shape {image.shape}; expected {ACCEPTED}")
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE or h * w > MAX_PIXELS:
        raise FrameError(f"{name} is {w}x{h} pixels; expected {ACCEPTED}")
    if image.dtype == np.uint8:
        out = image
    elif image.dtype == np.uint16:
        out = (image >> 8).astype(np.uint8)
    elif image.dtype.kind == "f":
        if not np.isfinite(image).all():
            raise FrameError(f"{name} contains NaN or infinite values; expected {ACCEPTED}")
        lo, hi = float(image.min()), float(image.max())
        if lo < 0 or hi > 255:
            raise FrameError(f"{name} is float with values in [{lo:g}, {hi:g}]; expected {ACCEPTED}")
        scale = 255.0 if hi <= 1.0 else 1.0
        out = np.clip(image * scale + 0.5, 0, 255).astype(np.uint8)
    else:  # other ints, bool, complex, objects...
        raise FrameError(f"{name} has dtype {image.dtype}; expected {ACCEPTED}")
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    elif out.shape[2] == 4:
        out = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(out)
