"""The canned gestures (MediaPipe's set) as fuzzy rules over :mod:`handsdk.handshape`.

Each finger gets a degree of being *extended* and *curled* (from its total flexion); the thumb a
degree of sticking out (straight, and its tip away from the knuckles and fingertips it lies on
when folded); a rule's score is the fuzzy
AND (minimum) of what it needs, so scores are in [0, 1] and a clean pose scores ~0.9-1.

=============  ==========================================================================
Closed_Fist    four fingers curled, and not a Thumb_Up / Thumb_Down (the thumb may be folded
               over the fingers, lie alongside them, or stick out sideways)
Open_Palm      four fingers extended (the thumb is not checked)
Pointing_Up    index extended, middle/ring/pinky curled, index (MCP->tip) within ~60 deg of
               image up (the thumb is not checked)
Thumb_Up       four fingers curled, thumb sticking out, thumb (MCP->tip) within ~55 deg of up
Thumb_Down     the same, pointing down
Victory        index and middle extended, ring and pinky curled (the thumb is not checked)
ILoveYou       thumb out, index and pinky extended, middle and ring curled
=============  ==========================================================================

Everything except the three image directions is invariant to rotation, scale, translation,
handedness and mirroring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from handsdk.handshape import HandShape, as_landmarks, hand_shape, image_direction

#: MediaPipe's canned gesture names; "None" is the answer when no rule fires.
CANNED_GESTURES: tuple[str, ...] = (
    "None", "Closed_Fist", "Open_Palm", "Pointing_Up", "Thumb_Down", "Thumb_Up", "Victory",
    "ILoveYou",
)  # fmt: skip

# Membership curves (logistic: 0.5 at the centre, ~0.1 / 0.9 at centre -/+ 2.2 widths).
EXTENDED_FLEX = (105.0, 12.0)  # finger total flexion, degrees: extended below, curled above
THUMB_STRAIGHT = (70.0, 10.0)  # thumb MCP + IP flexion, degrees
THUMB_OUT = (0.62, 0.06)  # thumb tip to the nearest knuckle / tip it lies on, palm sizes
POINT_UP = (60.0, 5.0)  # index MCP->tip vs image up, degrees
THUMB_UP = (55.0, 6.0)  # thumb MCP->tip vs image up (Thumb_Down: vs down), degrees


def _below(x: float | np.ndarray, centre: float, width: float) -> float | np.ndarray:
    """Logistic membership of "x is below centre"."""
    return 1.0 / (1.0 + np.exp(np.clip((np.asarray(x, dtype=np.float64) - centre) / width, -50, 50)))


@dataclass(frozen=True)
class HandFeatures:
    """What a rule sees: fuzzy finger states in [0, 1] plus the raw measurements.

    ``extended[f]`` / ``curled[f]`` (f = 0 thumb … 4 pinky; curled = 1 - extended),
    ``thumb_out`` (the thumb is straight and sticks out), ``index_up``, ``thumb_up``,
    ``thumb_down`` (image directions), ``shape`` (:class:`~handsdk.handshape.HandShape`)
    and the landmarks themselves (float64 (21, 3)).
    """

    extended: np.ndarray
    curled: np.ndarray
    thumb_out: float
    index_up: float
    thumb_up: float
    thumb_down: float
    shape: HandShape
    landmarks: np.ndarray


def hand_features(landmarks: object) -> HandFeatures:
    p = as_landmarks(landmarks)
    shape = hand_shape(p)
    ext = np.asarray(_below(shape.flex, *EXTENDED_FLEX))
    ext[0] = _below(shape.flex[0], *THUMB_STRAIGHT)
    thumb_out = float(min(ext[0], 1.0 - _below(shape.thumb_out, *THUMB_OUT)))
    thumb_dir = image_direction(p, 2, 4)
    return HandFeatures(
        extended=ext,
        curled=1.0 - ext,
        thumb_out=thumb_out,
        index_up=float(_below(image_direction(p, 5, 8), *POINT_UP)),
        thumb_up=float(_below(thumb_dir, *THUMB_UP)),
        thumb_down=float(_below(180.0 - thumb_dir, *THUMB_UP)),
        shape=shape,
        landmarks=p,
    )


Rule = Callable[[HandFeatures], float]


def _fist(f: HandFeatures) -> float:
    thumb_vertical = min(f.thumb_out, max(f.thumb_up, f.thumb_down))
    return float(min(f.curled[1:].min(), 1.0 - thumb_vertical))


def _open_palm(f: HandFeatures) -> float:
    return float(f.extended[1:].min())


def _pointing_up(f: HandFeatures) -> float:
    return float(min(f.extended[1], f.curled[2:].min(), f.index_up))


def _thumb_up(f: HandFeatures) -> float:
    return float(min(f.curled[1:].min(), f.thumb_out, f.thumb_up))


def _thumb_down(f: HandFeatures) -> float:
    return float(min(f.curled[1:].min(), f.thumb_out, f.thumb_down))


def _victory(f: HandFeatures) -> float:
    return float(min(f.extended[1], f.extended[2], f.curled[3], f.curled[4]))


def _i_love_you(f: HandFeatures) -> float:
    return float(min(f.thumb_out, f.extended[1], f.extended[4], f.curled[2], f.curled[3]))


#: name -> rule; a subclass of the recognizer can extend or replace this (see the package doc).
CANNED_RULES: dict[str, Rule] = {
    "Closed_Fist": _fist,
    "Open_Palm": _open_palm,
    "Pointing_Up": _pointing_up,
    "Thumb_Down": _thumb_down,
    "Thumb_Up": _thumb_up,
    "Victory": _victory,
    "ILoveYou": _i_love_you,
}
