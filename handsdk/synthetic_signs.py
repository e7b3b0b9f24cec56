"""A rendered hand fingerspelling a word: the no-data, no-camera clip of the sign demo.

:func:`handsdk.synthetic.synthetic_clip` cycles through gestures with a large, constant wobble
and spends 40 % of every gesture blending into the next; fingerspelling is the opposite: each
letter is held, then the hand moves quickly to the next one. :func:`fingerspelling_clip`
renders that, with the ASL letters :class:`~handsdk.synthetic.HandPose` can pose (see
:data:`LETTERS`) and a gentle sway.

The poses are approximations of ASL handshapes built from the synthetic hand's joint angles,
not recordings of a signer. J and Z are signed with motion, and are rendered with it: J is the
I handshape whose hand drops and hooks sideways while turning (the pinky draws a J), Z the
pointing index drawing a Z (right, down-and-back, right) — see :data:`MOTION_LETTERS`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from .synthetic import HandPose, SyntheticFrame, random_background, render_hand

#: Letters :func:`fingerspelling_clip` can show (``HandPose.gesture("asl_<letter>")``, and the
#: moving letters of :data:`MOTION_LETTERS`).
LETTERS = "ABCDEIJLOVWYZ"
#: Letters drawn with motion -> the pose they are drawn with.
MOTION_LETTERS = {"J": "asl_i", "Z": "point_up"}
_D = math.pi / 180.0


def letter_pose(letter: str, handedness: str = "right") -> HandPose:
    """The synthetic hand's pose for an ASL letter of :data:`LETTERS`.

    V gets a wider spread of the index and middle fingers than the ``asl_v`` gesture (whose
    fingers stay close enough to read as U)."""
    c = letter.upper()
    if len(c) != 1 or c not in LETTERS:
        raise KeyError(f"no synthetic pose for letter {letter!r}; available: {', '.join(LETTERS)}")
    pose = HandPose.gesture(MOTION_LETTERS.get(c, f"asl_{c.lower()}"), handedness=handedness)
    if c == "V":
        abd = pose.mcp_abd.copy()
        abd[0], abd[1] = 20 * _D, -8 * _D  # index toward the thumb, middle toward the ring
        pose = replace(pose, mcp_abd=abd)
    return pose


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def letter_motion(letter: str, u: float, handedness: str = "right") -> tuple[float, float, float]:
    """Where a moving letter's hand is at progress ``u`` (0..1) of its stroke: offsets of the
    hand centre in hand lengths (x right, y down) and an extra roll in radians; zeros for the
    static letters. The stroke's sideways parts point toward the thumb for a right hand seen
    palm-on (image right) and are mirrored for a left hand (whose pose mirrors the roll itself)."""
    side = 1.0 if handedness == "right" else -1.0
    u = _smoothstep(u)
    if letter == "J":  # drop, then hook sideways and up a little while the hand turns
        down = min(u / 0.55, 1.0)
        hook = max(u - 0.55, 0.0) / 0.45
        return (side * 0.30 * math.sin(0.5 * math.pi * hook),
                0.45 * down - 0.10 * hook - 0.20, 70 * _D * hook)
    if letter == "Z":  # three strokes of equal duration: across, down-and-back, across
        w, h = 0.60, 0.45
        if u < 1 / 3:
            x, y = w * 3 * u, 0.0
        elif u < 2 / 3:
            x, y = w * (1 - 3 * (u - 1 / 3)), h * 3 * (u - 1 / 3)
        else:
            x, y = w * 3 * (u - 2 / 3), h
        return side * (x - w / 2), y - h / 2, 0.0
    return 0.0, 0.0, 0.0


def fingerspelling_clip(word: str, *, fps: float = 30.0, seconds_per_letter: float = 1.2,
                        transition: float = 0.3, size: tuple[int, int] = (640, 480), seed: int = 0,
                        handedness: str = "right", sway: float = 1.0) -> Iterator[SyntheticFrame]:
    """Frames of one hand spelling ``word`` (letters of :data:`LETTERS`; others raise KeyError).

    Each letter lasts ``seconds_per_letter``: held (J and Z: drawn, over the first 80 % of the
    hold), then blended into the next over the last ``transition`` seconds. The hand sways
    gently (``sway`` scales it; 0 holds it still) in front of a fixed background.
    ``SyntheticFrame.landmarks`` holds the exact landmarks. Same arguments -> identical frames.
    """
    letters = [c for c in word.upper() if not c.isspace()]
    if not letters:
        raise ValueError("fingerspelling_clip needs a non-empty word")
    poses = [letter_pose(c, handedness) for c in letters]
    W, H = int(size[0]), int(size[1])
    rng = np.random.default_rng(seed)
    bg = random_background(H, W, rng, kind=("room", "wood", "linear", "noise")[int(rng.integers(4))])
    skin = tuple(int(v) for v in rng.uniform([90, 120, 170], [150, 175, 225]))
    phase = rng.uniform(0, 2 * math.pi, 5)
    hand_len = 0.48 * H
    spl = float(seconds_per_letter)
    tr = min(max(float(transition), 0.0), 0.9 * spl)
    n = int(round(len(letters) * spl * fps))
    for i in range(n):
        t = i / fps
        k = min(int(t // spl), len(letters) - 1)
        u = t - k * spl
        pose = poses[k]
        blend = 0.0
        if k + 1 < len(letters) and tr > 0 and u > spl - tr:
            blend = _smoothstep((u - (spl - tr)) / tr)
            pose = pose.lerp(poses[k + 1], blend)
        mx, my, mroll = letter_motion(letters[k], u / (0.8 * (spl - tr)), handedness)
        mx, my, mroll = mx * (1 - blend), my * (1 - blend), mroll * (1 - blend)
        s = float(sway)
        pose = pose.with_rotation(pose.yaw + 0.10 * s * math.sin(0.9 * t + phase[0]),
                                  pose.pitch + 0.07 * s * math.sin(1.3 * t + phase[1]),
                                  pose.roll + mroll + 0.10 * s * math.sin(0.7 * t + phase[2]))
        cx = W * (0.5 + 0.05 * s * math.sin(0.5 * t + phase[3])) + mx * hand_len
        cy = H * (0.52 + 0.04 * s * math.sin(0.6 * t + phase[4])) + my * hand_len
        frame = bg.copy()
        lm = render_hand(frame, pose, (cx, cy), hand_len, skin=skin)
        noise = np.random.default_rng([seed, i]).normal(0, 2.0, frame.shape)
        frame = np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8)
        yield SyntheticFrame(frame, [lm], [handedness], t * 1000.0)
