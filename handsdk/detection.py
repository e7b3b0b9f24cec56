"""Detector pre- and post-processing: letterbox the frame, decode the CenterNet maps into
rotated hand crops, suppress duplicates, and look at crowded frames again in tiles (and, for
the tracker's ``tile_search``, at tiles where small hands are seen larger)."""

from __future__ import annotations

from collections.abc import Callable
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


def _peaks(heat: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Cells of ``heat`` that are a 3x3 local maximum and >= ``threshold``: (ys, xs)."""
    g = heat.shape
    padded = np.pad(heat, 1, constant_values=-1)
    peak = np.ones_like(heat, bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dx == 1 and dy == 1:
                continue
            peak &= heat >= padded[dy:dy + g[0], dx:dx + g[1]]
    return np.nonzero(peak & (heat >= threshold))


def decode(heat: np.ndarray, geom: np.ndarray, size: int, scale: float, offset: np.ndarray,
           min_score: float, max_hands: int, stride: int = 8) -> list[Detection]:
    """Peaks of ``heat`` (g, g) above ``min_score`` → detections in image pixels, best first.
    A cell whose geometry is not finite (a broken model's NaN) is no detection."""
    ys, xs = _peaks(heat, min_score)
    order = np.argsort(-heat[ys, xs])
    dets: list[Detection] = []
    for i in order:
        y, x = ys[i], xs[i]
        gp = geom[:, y, x]
        if not np.isfinite(gp).all():
            continue
        c = (np.array([x + 0.5 + gp[0], y + 0.5 + gp[1]]) * stride - offset) / scale
        side = float(np.exp(np.clip(gp[2], -6, 2)) * size / scale)
        wrist = c + gp[3:5] * side
        mcp = c + gp[5:7] * side
        if _duplicate(c, side, dets) is not None:
            continue  # the same hand seen from a neighbouring cell
        dets.append(Detection(float(heat[y, x]), c, side, wrist, mcp))
        if len(dets) >= proposals(max_hands):
            break
    return dets


#: At least this many of the detector's proposals are read by the landmark model, whatever
#: ``max_hands``: the detector ranks faces and clutter above hands a few metres away, so with
#: ``max_hands = 1`` the hand is often its third or fourth proposal (measured: docs/models.md).
MIN_PROPOSALS = 4


def proposals(max_hands: int) -> int:
    """How many of the detector's proposals (best first) the landmark model reads."""
    return max(MIN_PROPOSALS, 2 * max_hands)


def _duplicate(center: np.ndarray, side: float, dets: list[Detection]) -> int | None:
    """The index of a detection of the same hand (centres within half a hand), or None."""
    for i, d in enumerate(dets):
        if np.linalg.norm(center - d.center) < 0.5 * max(side, d.side):
            return i
    return None


#: Crowd tiling (below) runs only for ``max_hands`` of at least this: the detector's scores fall
#: in crowds, not with one or two hands (it was trained on one- and two-hand frames).
TILE_MIN_HANDS = 3
#: A view is crowded, and tiled, when it has at least two peaks this high (or min_score if lower)
#: and one of them is below the view's floor (min_score; in a tile, TILE_MIN_SCORE).
CROWD_FLOOR = 0.1
TILE_SHARE = 0.65  # a tile's side over its view's: 2x2 tiles overlap by 0.3 of the view
TILE_DEPTH = 2  # tiles of tiles, at most
#: A tile's own detections count from this score (or min_score if higher): a tile magnifies
#: clutter as well as hands; a hand seen in a tile of few hands scores 0.5-0.85.
TILE_MIN_SCORE = 0.5
TILE_MIN_PX = 64


View = tuple[int, int, int, int]  # x0, y0, width, height: a part of the frame the detector looks at


def _tiles(x0: int, y0: int, vw: int, vh: int) -> list[View]:
    """A view's 2x2 overlapping tiles (``TILE_SHARE`` of its sides each)."""
    tw, th = round(vw * TILE_SHARE), round(vh * TILE_SHARE)
    return [(x0 + dx, y0 + dy, tw, th) for dy in (0, vh - th) for dx in (0, vw - tw)]


def small_hand_tiles(width: int, height: int) -> list[View]:
    """The frame's 2x2 overlapping tiles, where a hand too small for the detector at the whole
    frame's scale is seen 1 / ``TILE_SHARE`` = 1.5x larger: a person standing a few metres from
    the camera, whose hand is 7-15 % of the frame (the detector's input is 256 px for the whole
    frame). Empty when a tile would be under ``TILE_MIN_PX``."""
    if min(width, height) * TILE_SHARE < TILE_MIN_PX:
        return []
    return _tiles(0, 0, width, height)


def detect_hands(run: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], image: np.ndarray,
                 size: int, stride: int, min_score: float, max_hands: int,
                 tiles: list[View] | None = None) -> list[Detection]:
    """Hands in ``image`` (BGR): ``run(square)`` gives the detector's (heat, geometry) maps for a
    ``size``² letterboxed BGR view.

    The detector's scores fall as hands are added to a frame — alone, each of nine hands in a
    3x3 collage scores 0.62-0.85; together 0.04-0.46 — because it judges each cell in the context
    of the whole frame (its receptive field spans it) and was trained on frames of one or two
    hands; it is not the decoding (a sigmoid per cell, no normalisation over the map). So, with
    ``max_hands >= 3``, a view with two or more peaks (a crowd), one of them below the score the
    view's detections count from (a hand the crowd may have held back), and room for more hands is
    looked at again as 2x2 overlapping tiles (and their crowded tiles as tiles, ``TILE_DEPTH``):
    each tile holds fewer hands, seen larger. Detections from all views merge, a hand found in
    several views once (a view that cuts the hand at its edge yields to one that does not, then
    the higher score).

    ``tiles``: look at these parts of the frame (as tiles, with a tile's floor) instead of the
    whole frame (:func:`small_hand_tiles`)."""
    h, w = image.shape[:2]
    found: list[tuple[Detection, bool]] = []  # (detection, cut by its view's inner edge)
    views = [(0, 0, w, h, 0)] if tiles is None else [(*v, 1) for v in tiles]
    while views:
        x0, y0, vw, vh, depth = views.pop(0)
        square, scale, offset = letterbox(image[y0:y0 + vh, x0:x0 + vw], size)
        heat, geom = run(square)
        shift = np.array([x0, y0], np.float64)
        floor = min_score if depth == 0 else max(min_score, TILE_MIN_SCORE)
        for d in decode(heat, geom, size, scale, offset, floor, max_hands, stride):
            d.center, d.wrist, d.middle_mcp = d.center + shift, d.wrist + shift, d.middle_mcp + shift
            half = d.side / 2
            cut = ((x0 > 0 and d.center[0] - half < x0) or (y0 > 0 and d.center[1] - half < y0)
                   or (x0 + vw < w and d.center[0] + half > x0 + vw)
                   or (y0 + vh < h and d.center[1] + half > y0 + vh))
            i = _duplicate(d.center, d.side, [f for f, _ in found])
            if i is None:
                found.append((d, cut))
            elif (found[i][1], -found[i][0].score) > (cut, -d.score):
                found[i] = (d, cut)
        ys, xs = _peaks(heat, min(min_score, CROWD_FLOOR))
        crowded = len(ys) >= 2 and bool((heat[ys, xs] < floor).any())  # a crowd, some held back
        if (max_hands >= TILE_MIN_HANDS and crowded and len(found) < max_hands and depth < TILE_DEPTH
                and min(vw, vh) * TILE_SHARE >= TILE_MIN_PX):
            views += [(*v, depth + 1) for v in _tiles(x0, y0, vw, vh)]
    dets = sorted((d for d, _ in found), key=lambda d: -d.score)
    return dets[: proposals(max_hands)]
