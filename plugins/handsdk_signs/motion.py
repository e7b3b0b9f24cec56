"""J and Z from the fingertip's trajectory: the two ASL letters signed with motion.

A photo shows only one moment of them, so the per-frame classifier reads J and Z from a static
pose at best. :class:`MotionLetters` watches each track over the last ``window_ms`` instead:

J
    the I handshape (pinky extended, index / middle / ring curled) whose pinky tip draws two
    strokes: a drop (at least ``min_stroke`` palm sizes, within 50 deg of straight down), then a
    hook sideways (at least half of that, not going further down than it goes sideways).
Z
    the pointing index (index extended, middle / ring / pinky curled) whose tip draws three
    strokes: across, diagonally down and back, across again in the first stroke's direction
    (each at least ``min_stroke`` palm sizes wide; the diagonal at least that far down).

Both are accepted drawn either way across (left- or right-handed signers, mirrored cameras).
Distances are in palm sizes (:func:`handsdk.handshape.palm_size`), so they do not depend on how
far the hand is from the camera; the handshapes come from the same finger flexion the gesture
rules read, except that a finger the image shows straight and long counts as extended whatever
its depth reads (:func:`extended_fingers`). A stroke counts only while the handshape holds (a few
frames of dropout are bridged). Once a letter fires, its track's history is cleared so one
stroke gives one letter.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from handsdk.handshape import as_landmarks, hand_shape, palm_size
from handsdk.types import Label

#: Finger flexion (degrees, :attr:`handsdk.handshape.HandShape.flex`): below EXTENDED the finger is
#: straight, above CURLED folded (the gesture rules put the boundary at 105).
EXTENDED, CURLED = 90.0, 120.0
#: A finger bent less than IMAGE_STRAIGHT degrees in the image plane, whose tip lies at least
#: IMAGE_REACH times as far from the wrist as its PIP in the image, is straight in 3D too: bent
#: toward or away from the camera, a finger shortens in the image (the synthetic hand's straight
#: index reaches 1.33; bent 40 deg at the PIP and 30 at the DIP toward the camera, 1.17; folded
#: 60 / 30 / 20 deg at MCP / PIP / DIP, 0.94, though the image shows it straight).
IMAGE_STRAIGHT, IMAGE_REACH = 30.0, 1.2


def extended_fingers(landmarks: np.ndarray) -> np.ndarray:
    """(4,) bool, index .. pinky: flexion in 3D below :data:`EXTENDED`, or straight and long in
    the image (:data:`IMAGE_STRAIGHT`, :data:`IMAGE_REACH`).

    Why both: the 3D flexion reads depth, each model's least certain output (``handsdk eval``'s
    ``flex_err`` against the teacher, models 0.2.6 and 0.3.0: 14-15 deg per finger on the held-out
    photos, 17-20 on the ASL clip), and a straight finger whose joints are read at slightly
    different depths sums to a bend. The image-plane test does not depend on depth and cannot
    pass a finger folded toward the camera, which the image shows short.
    """
    p = as_landmarks(landmarks)
    return (hand_shape(p).flex[1:] < EXTENDED) | _straight_in_image(p)


def _straight_in_image(p: np.ndarray) -> np.ndarray:
    """(4,) bool, index .. pinky: straight and long in the image plane (depth ignored)."""
    flat = p.copy()
    flat[:, 2] = 0.0
    in_image = hand_shape(flat)
    return (in_image.flex[1:] < IMAGE_STRAIGHT) & (in_image.reach[1:] > IMAGE_REACH)


def stroke_handshape(landmarks: np.ndarray) -> str | None:
    """``"I"`` (only the pinky extended), ``"index"`` (only the index extended) or None."""
    p = as_landmarks(landmarks)
    flex = hand_shape(p).flex[1:]  # index .. pinky
    ext, cur = (flex < EXTENDED) | _straight_in_image(p), flex > CURLED
    if ext[3] and cur[0] and cur[1] and cur[2]:
        return "I"
    if ext[0] and cur[1] and cur[2] and cur[3]:
        return "index"
    return None


def simplify(points: np.ndarray, eps: float) -> np.ndarray:
    """Ramer-Douglas-Peucker: the corners of a polyline, dropping wiggles smaller than ``eps``."""
    if len(points) < 3:
        return points
    a, b = points[0], points[-1]
    ab = b - a
    # distance to the segment (not its line), so a path that doubles back keeps its turn
    t = np.clip((points - a) @ ab / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    d = np.linalg.norm(points - (a + t[:, None] * ab), axis=1)
    i = int(np.argmax(d))
    if d[i] <= eps:
        return np.stack([a, b])
    return np.concatenate([simplify(points[: i + 1], eps)[:-1], simplify(points[i:], eps)])


def _grade(value: float, threshold: float) -> float:
    """0.5 at the threshold, 1.0 at twice it (a stroke's score)."""
    return float(min(max(value / threshold, 0.0), 2.0) / 2.0)


def _corners(tip: np.ndarray, min_stroke: float, most: int = 12) -> np.ndarray:
    """The path's corners, coarsened until there are at most ``most``."""
    eps = 0.15 * min_stroke
    corners = simplify(tip, eps)
    while len(corners) > most:
        eps *= 1.5
        corners = simplify(tip, eps)
    return corners


def j_score(tip: np.ndarray, min_stroke: float) -> float:
    """Score (0: no J) of a pinky-tip path in palm sizes, image axes (y down): a drop, then a
    hook sideways, between any corners of the path (so a curved stroke still counts)."""
    if len(tip) < 5:
        return 0.0
    p = _corners(tip, min_stroke)
    best = 0.0
    for i, k, j in combinations(range(len(p)), 3):
        a, b = p[k] - p[i], p[j] - p[k]
        drop = a[1] >= min_stroke and math.degrees(math.atan2(abs(a[0]), a[1])) <= 50
        hook = abs(b[0]) >= 0.5 * min_stroke and b[1] <= abs(b[0])
        if drop and hook:
            best = max(best, min(_grade(a[1], min_stroke), _grade(abs(b[0]), 0.5 * min_stroke)))
    return best


def z_score(tip: np.ndarray, min_stroke: float) -> float:
    """Score (0: no Z) of an index-tip path in palm sizes, image axes (y down): across,
    diagonally down and back, across again, between any corners of the path."""
    if len(tip) < 6:
        return 0.0
    p = _corners(tip, min_stroke)
    best = 0.0
    for i, k, m, j in combinations(range(len(p)), 4):
        a, b, c = p[k] - p[i], p[m] - p[k], p[j] - p[m]
        across = abs(a[0]) >= min_stroke and abs(a[1]) <= 0.6 * abs(a[0])
        back = np.sign(b[0]) == -np.sign(a[0]) and abs(b[0]) >= 0.5 * min_stroke and b[1] >= min_stroke
        again = (np.sign(c[0]) == np.sign(a[0]) and abs(c[0]) >= min_stroke
                 and abs(c[1]) <= 0.6 * abs(c[0]))
        if across and back and again:
            best = max(best, min(_grade(abs(a[0]), min_stroke), _grade(b[1], min_stroke),
                                 _grade(abs(c[0]), min_stroke)))
    return best


@dataclass
class _History:
    times: deque = field(default_factory=deque)
    shapes: deque = field(default_factory=deque)
    pinky: deque = field(default_factory=deque)
    index: deque = field(default_factory=deque)
    palm: deque = field(default_factory=deque)
    fired: Label | None = None
    fired_at: float = -math.inf


class MotionLetters:
    """Per-track J / Z detector fed one hand per frame; see the module doc.

    ``letters`` limits it (e.g. a vocabulary without Z); ``hold_ms`` is how long a fired letter
    is reported after its stroke ends, so a speller that needs a sign held for a few frames
    commits it.
    """

    def __init__(self, letters: str = "JZ", window_ms: float = 1500.0, hold_ms: float = 600.0,
                 min_stroke: float = 0.5, max_gap: int = 3):
        self.letters = {c for c in letters.upper() if c in "JZ"}
        self.window_ms, self.hold_ms = float(window_ms), float(hold_ms)
        self.min_stroke, self.max_gap = float(min_stroke), int(max_gap)
        self._tracks: dict[int, _History] = {}

    def update(self, track_id: int, landmarks: np.ndarray, timestamp_ms: float) -> Label | None:
        """Add this frame's hand; returns ``Label("J"|"Z", score)`` while a stroke just drawn
        is being held (``hold_ms``), else None."""
        h = self._tracks.setdefault(track_id, _History())
        p = as_landmarks(landmarks)
        h.times.append(float(timestamp_ms))
        h.shapes.append(stroke_handshape(p))
        h.pinky.append(p[20, :2])
        h.index.append(p[8, :2])
        h.palm.append(palm_size(p))
        while h.times and h.times[0] < timestamp_ms - self.window_ms:
            for q in (h.times, h.shapes, h.pinky, h.index, h.palm):
                q.popleft()
        for letter, shape, tips, score_fn in (("J", "I", h.pinky, j_score), ("Z", "index", h.index, z_score)):
            if letter not in self.letters:
                continue
            path = self._stroke(h, shape, tips)
            score = score_fn(path, self.min_stroke) if path is not None else 0.0
            if score > 0:
                h.fired, h.fired_at = Label(letter, score), float(timestamp_ms)
                for q in (h.times, h.shapes, h.pinky, h.index, h.palm):
                    q.clear()
                break
        if h.fired is not None and timestamp_ms - h.fired_at <= self.hold_ms:
            return h.fired
        h.fired = None
        return None

    def _stroke(self, h: _History, shape: str, tips: deque) -> np.ndarray | None:
        """The newest run of frames in ``shape`` (gaps up to ``max_gap`` bridged), as a path
        in palm sizes; None if the newest frame is not in the run."""
        shapes = list(h.shapes)
        if not shapes or shapes[-1] != shape:
            return None
        keep, gap = [], 0
        for i in range(len(shapes) - 1, -1, -1):
            if shapes[i] == shape:
                keep.append(i)
                gap = 0
            else:
                gap += 1
                if gap > self.max_gap:
                    break
        keep.reverse()
        palm = float(np.median([h.palm[i] for i in keep]))
        return np.stack([tips[i] for i in keep]) / palm

    def forget(self, track_id: int) -> None:
        self._tracks.pop(track_id, None)

    def reset(self) -> None:
        self._tracks.clear()
