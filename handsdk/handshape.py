"""Hand-shape features from the 21 landmarks, shared by the gesture and sign plugins (and open
to yours) (MediaPipe order, x/y image pixels, z relative depth
in pixels), invariant to translation, scale, in-plane and 3-D rotation, handedness and mirroring:
they are built from lengths (in palm sizes) and unsigned angles only.

The one exception is :func:`image_direction`, the angle between a bone and image "up": the
canned Thumb_Up / Thumb_Down / Pointing_Up rules use it on purpose, as MediaPipe's do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WRIST = 0
#: Landmark indices of each finger from its base to its tip, thumb first (CMC, MCP, IP, TIP).
FINGERS: tuple[tuple[int, int, int, int], ...] = (
    (1, 2, 3, 4),
    (5, 6, 7, 8),
    (9, 10, 11, 12),
    (13, 14, 15, 16),
    (17, 18, 19, 20),
)
FINGER_NAMES = ("thumb", "index", "middle", "ring", "pinky")
TIPS = (4, 8, 12, 16, 20)
#: Where a thumb that does not stick out lies: index/middle/ring MCPs, middle/ring PIPs, index and
#: middle tips.
THUMB_NEAR = (5, 9, 13, 10, 14, 8, 12)

#: Version tag of :func:`feature_vector`, stored in custom-gesture files (the name predates the
#: move of this module from the gestures plugin into the core; files carry it, so it stays).
FEATURE_VERSION = "handsdk_gestures.v1"
#: Length of :func:`feature_vector` (without the optional orientation part).
FEATURE_SIZE = 28


def as_landmarks(landmarks: object) -> np.ndarray:
    """``landmarks`` as float64 (21, 3) (a (21, 2) array gets z = 0); ValueError otherwise."""
    arr = np.asarray(landmarks, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != 21 or arr.shape[1] not in (2, 3):
        raise ValueError(f"hand landmarks must be a (21, 3) or (21, 2) array, got shape {arr.shape}")
    if arr.shape[1] == 2:
        arr = np.concatenate([arr, np.zeros((21, 1))], axis=1)
    if not np.all(np.isfinite(arr)):
        raise ValueError("hand landmarks contain NaN or infinite values")
    return arr


def _angle(u: np.ndarray, v: np.ndarray) -> float:
    """Unsigned angle (radians) between two vectors; 0 if one of them is degenerate."""
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu < 1e-9 or nv < 1e-9:
        return 0.0
    return float(np.arccos(np.clip(np.dot(u, v) / (nu * nv), -1.0, 1.0)))


def palm_size(p: np.ndarray) -> float:
    """The hand's own length unit: mean wrist-to-MCP distance of the four fingers (3-D)."""
    size = float(np.mean(np.linalg.norm(p[[5, 9, 13, 17]] - p[WRIST], axis=1)))
    return size if size > 1e-9 else 1.0


def joint_angles(p: np.ndarray) -> np.ndarray:
    """(5, 3) bend angles in radians at each finger's three joints, thumb first.

    Fingers: MCP (metacarpal wrist->MCP vs proximal phalanx), PIP, DIP. Thumb: CMC (wrist->CMC
    vs CMC->MCP), MCP, IP. 0 is straight; a curled finger bends ~1.5 rad at MCP and PIP.
    """
    out = np.zeros((5, 3))
    for f, idx in enumerate(FINGERS):
        chain = (WRIST, *idx)
        bones = [p[b] - p[a] for a, b in zip(chain[:-1], chain[1:], strict=True)]
        out[f] = [_angle(a, b) for a, b in zip(bones[:-1], bones[1:], strict=True)]
    return out


@dataclass(frozen=True)
class HandShape:
    """The raw measurements the canned rules read (angles in degrees, lengths in palm sizes).

    ``flex[f]``: finger f's flexion, the sum of its bends at MCP, PIP and DIP (for the thumb: MCP
    and IP only, since the CMC angle mostly says where the thumb sits, not whether it is bent);
    ~0-50 straight, ~170-300 curled. ``reach[f]``: tip-to-wrist over PIP-to-wrist distance (thumb:
    over MCP-to-wrist). ``thumb_out``: the thumb tip's distance to the nearest of the index, middle
    and ring MCPs, the middle and ring PIPs and the index and middle tips (small, < ~0.45, when the
    thumb is folded over the fingers, lies against them or touches a fingertip; ~0.8-1.2 when it
    sticks out). ``thumb_angle``: degrees between the
    thumb (MCP->TIP) and the index metacarpal (wrist->index MCP).
    """

    flex: np.ndarray
    reach: np.ndarray
    thumb_out: float
    thumb_angle: float


def hand_shape(landmarks: object) -> HandShape:
    p = as_landmarks(landmarks)
    s = palm_size(p)
    ang = np.degrees(joint_angles(p))
    flex = ang.sum(axis=1)
    flex[0] = ang[0, 1:].sum()
    reach = np.array([
        np.linalg.norm(p[idx[3]] - p[WRIST]) / max(float(np.linalg.norm(p[idx[1]] - p[WRIST])), 1e-9)
        for idx in FINGERS
    ])
    thumb_out = float(np.min(np.linalg.norm(p[list(THUMB_NEAR)] - p[4], axis=1)) / s)
    thumb_angle = float(np.degrees(_angle(p[4] - p[2], p[5] - p[WRIST])))
    return HandShape(flex, reach, thumb_out, thumb_angle)


def image_direction(landmarks: object, a: int, b: int) -> float:
    """Angle in degrees between the image vector a->b and image "up" (0: pointing straight up,
    180: straight down). Mirroring the image does not change it; rotating the image does."""
    p = as_landmarks(landmarks)
    return float(np.degrees(_angle(p[b, :2] - p[a, :2], np.array([0.0, -1.0]))))


def feature_vector(landmarks: object, orientation: bool = False) -> np.ndarray:
    """The normalised shape vector used for custom (few-shot) gestures, float64 (28,).

    * 15 joint bends (:func:`joint_angles`) / pi;
    * 4 spreads: angles between neighbouring proximal bones (thumb MCP->IP vs index MCP->PIP,
      index vs middle, middle vs ring, ring vs pinky) / pi;
    * 4 thumb-tip to fingertip distances / (2 palm sizes);
    * 5 fingertip to wrist distances / (2 palm sizes).

    Every entry is roughly in [0, 1] and none depends on position, size, rotation or mirroring.
    ``orientation=True`` appends 2 entries, the hand axis (wrist -> middle MCP) in the image as
    (|cos|, sin) of its angle from "up" (mirror-invariant but not rotation-invariant): for custom
    gestures whose meaning depends on how the hand is held.
    """
    p = as_landmarks(landmarks)
    s = palm_size(p)
    bends = joint_angles(p).ravel() / np.pi
    proximal = [p[3] - p[2]] + [p[idx[1]] - p[idx[0]] for idx in FINGERS[1:]]
    spreads = np.array([_angle(proximal[i], proximal[i + 1]) for i in range(4)]) / np.pi
    thumb_tips = np.linalg.norm(p[list(TIPS[1:])] - p[4], axis=1) / (2 * s)
    wrist_tips = np.linalg.norm(p[list(TIPS)] - p[WRIST], axis=1) / (2 * s)
    vec = np.concatenate([bends, spreads, thumb_tips, wrist_tips])
    if orientation:
        axis = p[9, :2] - p[WRIST, :2]
        n = float(np.linalg.norm(axis)) or 1.0
        vec = np.concatenate([vec, [abs(axis[0]) / n, -axis[1] / n]])
    return vec
