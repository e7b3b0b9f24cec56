"""Sign features from one hand's 21 landmarks, invariant to translation, scale, in-plane rotation
and handedness.

Canonicalisation (:func:`canonical_landmarks`):

1. mirror: a left hand (``handedness == "left"``) has its x negated, so every hand looks like a
   right hand (a left-handed signer's letters are the mirror images of a right-handed one's);
2. translate: the wrist goes to the origin;
3. scale: divide by the palm size (mean 3-D wrist-to-MCP distance of the four fingers);
4. rotate in the image plane: the palm axis (wrist -> mean of the four finger MCPs) points up.

z (MediaPipe's relative depth, same pixel scale as x and y) is kept: after these steps it
distinguishes e.g. a thumb in front of the fingers (E, S, T) from one beside them (A).

:func:`shape_features` then concatenates the 20 canonical points (60 values, wrist dropped),
fingertip-to-fingertip and thumb-tip-to-joint distances, and the joint bends / spreads of
``handsdk.handshape.feature_vector`` (lengths and unsigned angles only, fully 3-D rotation and
mirror invariant). All of it is unchanged by moving, scaling or turning the hand in the image,
or by showing the other hand.

**Orientation.** A few ASL letters share a handshape and differ only in how the hand is held:
H is U held sideways, P is K pointing down, Q is G pointing down, and the photographed end
pose of J is I turned. :func:`orientation_features` (the palm axis as a unit vector in the
image, x mirrored for left hands, plus the palm normal) is therefore appended when a
vocabulary sets ``orientation = true`` (``asl_letters`` does; ``digits`` does not). Those two to
five values are the only ones that depend on image rotation, by design.
"""

from __future__ import annotations

import numpy as np

from handsdk.handshape import as_landmarks, feature_vector, palm_size

#: Version tag stored in vocabulary files; a file with another version is refused.
FEATURE_VERSION = "handsdk_signs.v1"
TIPS = (4, 8, 12, 16, 20)
MCPS = (5, 9, 13, 17)
#: thumb tip against these (index..pinky PIP and DIP, index/middle MCP): where it rests tells
#: A / S / T / N / M / E apart.
THUMB_TARGETS = (5, 6, 7, 9, 10, 11, 14, 15, 18, 19)
ORIENTATION_SIZE = 5


def _mirror(p: np.ndarray, handedness: str | None) -> np.ndarray:
    if handedness is not None and str(handedness).lower() == "left":
        p = p.copy()
        p[:, 0] = -p[:, 0]
    return p


def _axis(p: np.ndarray) -> np.ndarray:
    """The palm axis in the image plane (wrist -> mean finger MCP), unit length."""
    v = p[list(MCPS), :2].mean(axis=0) - p[0, :2]
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else np.array([0.0, -1.0])


def canonical_landmarks(landmarks: object, handedness: str | None = None) -> np.ndarray:
    """(21, 3) float64: the hand mirrored to a right hand, wrist at 0, palm size 1, palm axis up
    (-y). Unchanged by translation, scale, in-plane rotation and (with handedness) mirroring."""
    p = _mirror(as_landmarks(landmarks), handedness)
    p = (p - p[0]) / palm_size(p)
    ax = _axis(p)
    # rotation taking ax to (0, -1): angle of ax measured from "up"
    c, s = -ax[1], ax[0]  # cos, sin of the angle from up (clockwise on screen)
    rot = np.array([[c, -s], [s, c]]).T  # inverse rotation
    p[:, :2] = p[:, :2] @ rot.T
    return p


def shape_features(landmarks: object, handedness: str | None = None) -> np.ndarray:
    """Rotation-, scale-, translation- and handedness-invariant shape vector (float64)."""
    p = canonical_landmarks(landmarks, handedness)
    tips = p[list(TIPS)]
    iu = np.triu_indices(5, 1)
    tip_d = np.linalg.norm(tips[:, None] - tips[None], axis=-1)[iu]  # 10
    thumb_d = np.linalg.norm(p[list(THUMB_TARGETS)] - p[4], axis=1)  # 10
    return np.concatenate([p[1:].ravel(), tip_d, thumb_d, feature_vector(p)])


def orientation_features(landmarks: object, handedness: str | None = None) -> np.ndarray:
    """How the hand is held in the image (5 values): the palm axis as a unit 2-D vector and the
    palm normal (index MCP -> pinky MCP x wrist -> middle MCP) as a unit 3-D vector, with x
    mirrored for left hands. Invariant to translation, scale and handedness; NOT to rotation."""
    p = _mirror(as_landmarks(landmarks), handedness)
    ax = _axis(p)
    n = np.cross(p[17] - p[5], p[9] - p[0])
    nn = float(np.linalg.norm(n))
    n = n / nn if nn > 1e-9 else np.zeros(3)
    return np.concatenate([ax, n])


def sign_features(landmarks: object, handedness: str | None = None, orientation: bool = False) -> np.ndarray:
    """The classifier's input: :func:`shape_features`, plus :func:`orientation_features` when
    ``orientation``."""
    f = shape_features(landmarks, handedness)
    if orientation:
        f = np.concatenate([f, orientation_features(landmarks, handedness)])
    return f


def feature_size(orientation: bool = False) -> int:
    return 60 + 10 + 10 + 28 + (ORIENTATION_SIZE if orientation else 0)
