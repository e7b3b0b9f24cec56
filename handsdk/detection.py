"""Detector pre- and post-processing: letterbox the frame, decode the CenterNet maps into
rotated hand crops, suppress duplicates."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .geometry import hand_angle
from .types import RotatedRect


@dataclass
class Detection:
    score: float
    center: np.ndarray  # image pixels
    side: float  # the hand's rotated bounding-box side, image pixels
    wrist: np.ndarray
    middle_mcp: np.ndarray

    def rect(self, crop_scale: float) -> RotatedRect:
        s = self.side * crop_scale
        return RotatedRect((float(self.center[0]), float(self.center[1])), (s, s),
                           hand_angle(self.wrist, self.middle_mcp))


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, np.ndarray]:
    """Fit the image in a ``size``² square (zero padding): (square, scale, offset)."""
    h, w = image.shape[:2]
    s = size / max(h, w)
    off = np.array([(size - w * s) / 2, (size - h * s) / 2])
    m = np.array([[s, 0, off[0]], [0, s, off[1]]])
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(image, m, (size, size), flags=interp), s, off


def decode(heat: np.ndarray, geom: np.ndarray, size: int, scale: float, offset: np.ndarray,
           min_score: float, max_hands: int, stride: int = 8) -> list[Detection]:
    """Peaks of ``heat`` (g, g) above ``min_score`` → detections in image pixels, best first."""
    g = heat.shape[0]
    padded = np.pad(heat, 1, constant_values=-1)
    peak = np.ones_like(heat, bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dx == 1 and dy == 1:
                continue
            peak &= heat >= padded[dy:dy + g, dx:dx + g]
    ys, xs = np.nonzero(peak & (heat >= min_score))
    order = np.argsort(-heat[ys, xs])
    dets: list[Detection] = []
    for i in order:
        y, x = ys[i], xs[i]
        gp = geom[:, y, x]
        c = (np.array([x + 0.5 + gp[0], y + 0.5 + gp[1]]) * stride - offset) / scale
        side = float(np.exp(np.clip(gp[2], -6, 2)) * size / scale)
        wrist = c + gp[3:5] * side
        mcp = c + gp[5:7] * side
        if any(np.linalg.norm(c - d.center) < 0.5 * max(side, d.side) for d in dets):
            continue  # the same hand seen from a neighbouring cell
        dets.append(Detection(float(heat[y, x]), c, side, wrist, mcp))
        if len(dets) >= max_hands * 2:
            break
    return dets
