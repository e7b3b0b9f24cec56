"""Crop geometry shared by the tracker and the training scripts.

A crop is a :class:`~handsdk.types.RotatedRect`. Crop-normalised coordinates (a, b) in [0, 1]²
map to the image as ``center + R(angle) @ ((a - .5) * w, (b - .5) * h)`` with ``R`` the usual
rotation matrix in image coordinates (y down). ``angle`` is chosen so that the wrist → middle
finger MCP direction points up in the crop, which is what the landmark model is trained on.
"""

from __future__ import annotations

import cv2
import numpy as np

from .types import RotatedRect

WRIST, MIDDLE_MCP = 0, 9


def rotation_matrix(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]], dtype=np.float64)


def hand_angle(wrist: np.ndarray, middle_mcp: np.ndarray) -> float:
    """Angle that turns the wrist → middle-MCP vector to point up (0, -1) in the crop."""
    v = np.asarray(middle_mcp, np.float64)[:2] - np.asarray(wrist, np.float64)[:2]
    return float(np.arctan2(v[0], -v[1]))


def rect_from_points(
    points: np.ndarray, angle: float, scale: float = 1.5, shift: tuple[float, float] = (0.0, 0.0)
) -> RotatedRect:
    """Square crop that holds ``points`` (N, ≥2) in the frame rotated by ``angle``, enlarged by
    ``scale``; ``shift`` moves it by a fraction of its size along the crop's own axes."""
    pts = np.asarray(points, np.float64)[:, :2]
    rot = rotation_matrix(angle)
    local = pts @ rot  # rotate into the crop frame (R^T p)
    lo, hi = local.min(0), local.max(0)
    mid = (lo + hi) / 2
    side = float(max(hi - lo)) * scale
    mid = mid + np.asarray(shift) * side
    center = rot @ mid
    side = max(side, 1.0)
    return RotatedRect(center=(float(center[0]), float(center[1])), size=(side, side), angle=angle)


def rect_from_landmarks(landmarks: np.ndarray, scale: float = 1.5) -> RotatedRect:
    """The crop the tracker uses for the next frame, computed from this frame's 21 landmarks."""
    lm = np.asarray(landmarks)
    return rect_from_points(lm, hand_angle(lm[WRIST], lm[MIDDLE_MCP]), scale)


def crop_to_image_matrix(rect: RotatedRect, crop_size: int) -> np.ndarray:
    """2×3 affine matrix mapping crop pixel coordinates to image pixel coordinates."""
    w, h = rect.size
    rot = rotation_matrix(rect.angle)
    lin = rot @ np.diag([w / crop_size, h / crop_size])
    offset = np.asarray(rect.center) - lin @ np.array([crop_size / 2, crop_size / 2])
    return np.hstack([lin, offset[:, None]])


def image_to_crop_matrix(rect: RotatedRect, crop_size: int) -> np.ndarray:
    """2×3 affine matrix mapping image pixel coordinates to crop pixel coordinates."""
    return cv2.invertAffineTransform(crop_to_image_matrix(rect, crop_size))


def warp_crop(image: np.ndarray, rect: RotatedRect, crop_size: int) -> np.ndarray:
    """Cut the rotated ``rect`` out of ``image`` as a ``crop_size``² image (zero padding)."""
    m = image_to_crop_matrix(rect, crop_size)
    return cv2.warpAffine(
        image, m, (crop_size, crop_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def crop_points_to_image(points: np.ndarray, rect: RotatedRect) -> np.ndarray:
    """Map crop-normalised landmarks (N, 3) [a, b, z/size] back to image pixels (N, 3).

    z is scaled by the crop width so it shares the x/y pixel scale.
    """
    pts = np.asarray(points, np.float64)
    w, h = rect.size
    local = np.stack([(pts[:, 0] - 0.5) * w, (pts[:, 1] - 0.5) * h], axis=1)
    xy = local @ rotation_matrix(rect.angle).T + np.asarray(rect.center)
    out = np.empty((len(pts), 3), np.float32)
    out[:, :2] = xy
    out[:, 2] = pts[:, 2] * w if pts.shape[1] > 2 else 0.0
    return out


def image_points_to_crop(points: np.ndarray, rect: RotatedRect) -> np.ndarray:
    """Inverse of :func:`crop_points_to_image` (used to build training targets)."""
    pts = np.asarray(points, np.float64)
    w, h = rect.size
    local = (pts[:, :2] - np.asarray(rect.center)) @ rotation_matrix(rect.angle)
    out = np.empty((len(pts), 3), np.float32)
    out[:, 0] = local[:, 0] / w + 0.5
    out[:, 1] = local[:, 1] / h + 0.5
    out[:, 2] = pts[:, 2] / w if pts.shape[1] > 2 else 0.0
    return out


def rect_iou(a: RotatedRect, b: RotatedRect) -> float:
    """Intersection over union of two rotated rectangles."""
    pa = cv2.RotatedRect(a.center, a.size, float(np.degrees(a.angle)))
    pb = cv2.RotatedRect(b.center, b.size, float(np.degrees(b.angle)))
    kind, inter = cv2.rotatedRectangleIntersection(pa, pb)
    if kind == cv2.INTERSECT_NONE or inter is None or len(inter) < 3:
        return 0.0
    area = float(cv2.contourArea(cv2.convexHull(inter)))
    union = a.size[0] * a.size[1] + b.size[0] * b.size[1] - area
    return area / union if union > 0 else 0.0


def hand_free_region(image_size: tuple[int, int], landmarks: np.ndarray, margin: float = 0.35,
                     min_side: float = 0.3) -> tuple[int, int, int, int] | None:
    """The largest strip of an image beside a hand (left, right, above or below its landmarks'
    box grown by ``margin`` × its size): (x0, y0, x1, y1), or None when no strip has both sides
    ≥ ``min_side`` × the image's short side. Real hand-free backgrounds (furniture, arms, faces)
    for measuring and training false positives. ``image_size`` is (width, height).
    """
    w, h = image_size
    xy = np.asarray(landmarks, np.float64)[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    m = margin * float((hi - lo).max())
    x0, y0 = np.floor(lo - m).astype(int)
    x1, y1 = np.ceil(hi + m).astype(int)
    strips = [(0, 0, x0, h), (x1, 0, w, h), (0, 0, w, y0), (0, y1, w, h)]
    need = min_side * min(w, h)
    strips = [s for s in strips if s[2] - s[0] >= need and s[3] - s[1] >= need]
    if not strips:
        return None
    return tuple(int(v) for v in max(strips, key=lambda s: (s[2] - s[0]) * (s[3] - s[1])))
