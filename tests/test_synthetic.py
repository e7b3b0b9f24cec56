"""The synthetic hand renderer: exact, deterministic ground truth that matches what is drawn."""

from __future__ import annotations

import numpy as np
import pytest

from handsdk.synthetic import (
    GESTURES,
    JOINT_LIMITS,
    HandPose,
    hand_landmarks_3d,
    random_background,
    render_hand,
    render_sample,
    synthetic_clip,
)
from handsdk.types import HAND_CONNECTIONS, LANDMARK_NAMES

BLUE = (255, 0, 0)  # BGR: no skin tone comes close to it
TIPS = [8, 12, 16, 20]


def _render_on_blue(pose: HandPose, size: float = 180.0) -> tuple[np.ndarray, np.ndarray]:
    img = np.zeros((400, 400, 3), np.uint8)
    img[:] = BLUE
    lm = render_hand(img, pose, (200.0, 210.0), size, skin=(120, 150, 205))
    return img, lm


def _palm_side_of_thumb(lm: np.ndarray) -> float:
    """z of the 2-D cross product (wrist -> middle MCP) x (wrist -> thumb tip)."""
    a = lm[9, :2] - lm[0, :2]
    b = lm[4, :2] - lm[0, :2]
    return float(a[0] * b[1] - a[1] * b[0])


def test_landmark_layout_matches_mediapipe_order():
    lm = hand_landmarks_3d(HandPose.gesture("open_palm"))
    assert lm.shape == (len(LANDMARK_NAMES), 3)
    np.testing.assert_allclose(lm[0], 0.0, atol=1e-12)  # wrist at the origin
    assert 0.9 < np.linalg.norm(lm[12] - lm[0]) < 1.05  # hand length ~1
    # fingers point up (-y) with the palm to the camera; tips beyond their MCPs
    for tip, mcp in zip(TIPS, [5, 9, 13, 17], strict=True):
        assert lm[tip, 1] < lm[mcp, 1] < lm[0, 1]
    # every bone has a sensible length
    bones = np.array([np.linalg.norm(lm[a] - lm[b]) for a, b in HAND_CONNECTIONS])
    assert bones.min() > 0.05 and bones.max() < 0.6


def test_render_sample_is_deterministic_by_seed():
    a = render_sample(np.random.default_rng(123), 96, n_hands=2)
    b = render_sample(np.random.default_rng(123), 96, n_hands=2)
    c = render_sample(np.random.default_rng(124), 96, n_hands=2)
    assert np.array_equal(a[0], b[0]) and a[2] == b[2]
    assert all(np.array_equal(x, y) for x, y in zip(a[1], b[1], strict=True))
    assert not np.array_equal(a[0], c[0])


def test_clip_is_deterministic_by_seed():
    kw = dict(size=(128, 96), seed=5, leave_and_return=True)
    a = list(synthetic_clip(6, **kw))
    b = list(synthetic_clip(6, **kw))
    for fa, fb in zip(a, b, strict=True):
        assert np.array_equal(fa.image, fb.image)
        assert fa.handedness == fb.handedness and fa.timestamp_ms == fb.timestamp_ms
        assert all(np.array_equal(x, y) for x, y in zip(fa.landmarks, fb.landmarks, strict=True))
    c = next(iter(synthetic_clip(1, size=(128, 96), seed=6)))
    assert not np.array_equal(a[0].image, c.image)


@pytest.mark.parametrize("seed", range(6))
def test_render_sample_landmarks_inside_image(seed):
    size = 128
    img, lms, hands = render_sample(np.random.default_rng(seed), size, n_hands=1 + seed % 2)
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    assert len(lms) == len(hands) >= 1
    for lm, hand in zip(lms, hands, strict=True):
        assert lm.shape == (21, 3) and lm.dtype == np.float32
        assert hand in ("left", "right")
        assert (lm[:, :2] >= 0).all() and (lm[:, :2] < size).all()
        assert lm[0, 2] == 0.0  # wrist depth is the reference


def test_two_hands_in_a_sample_do_not_overlap():
    for seed in range(4):
        _, lms, _ = render_sample(np.random.default_rng(seed), 160, n_hands=2)
        if len(lms) == 2:
            lo0, hi0 = lms[0][:, :2].min(0), lms[0][:, :2].max(0)
            lo1, hi1 = lms[1][:, :2].min(0), lms[1][:, :2].max(0)
            inter = np.maximum(0, np.minimum(hi0, hi1) - np.maximum(lo0, lo1))
            area = min(np.prod(hi0 - lo0), np.prod(hi1 - lo1))
            assert inter.prod() < 0.35 * area  # boxes may touch; the hands themselves do not


@pytest.mark.parametrize("seed", range(4))
def test_drawn_pixels_match_landmarks(seed):
    rng = np.random.default_rng(seed)
    pose = HandPose.gesture("open_palm") if seed == 0 else HandPose.random(rng)
    img, lm = _render_on_blue(pose)
    for a, b in HAND_CONNECTIONS:
        x, y = np.round((lm[a, :2] + lm[b, :2]) / 2).astype(int)
        px = img[y, x].astype(int)
        assert tuple(px) != BLUE, f"bone {a}-{b} not drawn"
        assert px[2] > px[0], f"bone {a}-{b}: {px} is not skin-coloured"
    for j in range(21):  # every landmark sits on (or at the very edge of) the drawn hand
        x, y = np.round(lm[j, :2]).astype(int)
        patch = img[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).astype(int)
        assert (patch[:, 2] > patch[:, 0]).any(), f"landmark {j} off the hand"


def test_render_hand_geometry_and_background_untouched():
    img, lm = _render_on_blue(HandPose.gesture("open_palm"), size=150)
    # size = hand length in pixels, wrist -> middle tip
    assert abs(np.linalg.norm(lm[12, :2] - lm[0, :2]) - 150) < 15
    assert (img[:5, :5] == BLUE).all()  # far from the hand nothing changes
    # the palm faces the camera: with fingers curled the tips come toward it (smaller z)
    _, fist = _render_on_blue(HandPose.gesture("fist"), size=150)
    assert (fist[TIPS, 2] < 0).all()


def test_fist_tips_closer_to_wrist_than_open_palm():
    open_ = hand_landmarks_3d(HandPose.gesture("open_palm"))
    fist = hand_landmarks_3d(HandPose.gesture("fist"))
    d_open = np.linalg.norm(open_[TIPS] - open_[0], axis=1)
    d_fist = np.linalg.norm(fist[TIPS] - fist[0], axis=1)
    assert (d_fist < 0.8 * d_open).all()


def test_random_poses_respect_joint_limits():
    rng = np.random.default_rng(0)
    for _ in range(50):
        pose = HandPose.random(rng)
        for name, (lo, hi) in JOINT_LIMITS.items():
            v = np.asarray(getattr(pose, name))
            assert (v >= lo - 1e-9).all() and (v <= hi + 1e-9).all(), name
        lm = hand_landmarks_3d(pose)
        assert np.isfinite(lm).all()
        assert np.linalg.norm(lm[9] - lm[0]) == pytest.approx(0.5, abs=1e-6)  # rigid palm


def test_handedness_mirrors_geometry():
    for name in ("open_palm", "victory", "pinch"):
        right = HandPose.gesture(name, "right")
        left = HandPose.gesture(name, "left")
        r3, l3 = hand_landmarks_3d(right), hand_landmarks_3d(left)
        np.testing.assert_allclose(l3, r3 * [-1.0, 1.0, 1.0], atol=1e-12)
    # palm facing the camera: the thumb is on opposite sides of the wrist -> middle MCP axis
    _, r = _render_on_blue(HandPose.gesture("open_palm", "right"))
    _, lf = _render_on_blue(HandPose.gesture("open_palm", "left"))
    assert _palm_side_of_thumb(r) * _palm_side_of_thumb(lf) < 0
    np.testing.assert_allclose(lf[:, 0], 2 * 200.0 - r[:, 0], atol=1e-3)
    np.testing.assert_allclose(lf[:, 1:], r[:, 1:], atol=1e-3)
    assert HandPose.gesture("fist").mirrored().handedness == "left"


def test_gestures_by_name():
    for name in GESTURES:
        lm = hand_landmarks_3d(HandPose.gesture(name))
        assert np.isfinite(lm).all()
    assert HandPose.gesture("Closed_Fist") == HandPose.gesture("fist")
    assert HandPose.gesture("Pointing_Up") == HandPose.gesture("point_up")
    pinch = hand_landmarks_3d(HandPose.gesture("pinch"))
    assert np.linalg.norm(pinch[4] - pinch[8]) < 0.06  # thumb and index tips touch
    up, down = (
        hand_landmarks_3d(HandPose.gesture("thumb_up")),
        hand_landmarks_3d(HandPose.gesture("thumb_down")),
    )
    assert up[4, 1] < up[2, 1] and down[4, 1] > down[2, 1]  # image y points down
    with pytest.raises(KeyError):
        HandPose.gesture("no_such_gesture")


def test_pose_vector_round_trip_and_lerp():
    a, b = HandPose.gesture("open_palm"), HandPose.gesture("fist", "left")
    assert HandPose.from_vector(a.to_vector()) == a
    mid = a.lerp(b, 0.5)
    np.testing.assert_allclose(mid.to_vector(), (a.to_vector() + b.to_vector()) / 2)
    assert mid.handedness == "right"


def test_random_background_shapes_and_kinds():
    rng = np.random.default_rng(1)
    for kind in ("flat", "linear", "radial", "noise", "stripes", "wood", "room", "shapes"):
        bg = random_background(48, 64, rng, kind=kind)
        assert bg.shape == (48, 64, 3) and bg.dtype == np.uint8
    assert random_background(33, 17, rng).shape == (33, 17, 3)


def test_leave_and_return_clip():
    n = 40
    frames = list(synthetic_clip(n, size=(160, 120), seed=2, leave_and_return=True, fps=20.0))
    counts = [len(f.landmarks) for f in frames]
    assert counts[0] == 1 and counts[-1] == 1
    empty = [i for i, c in enumerate(counts) if c == 0]
    assert empty, "the hand never left"
    assert 0.1 * n <= len(empty) <= 0.25 * n
    assert empty == list(range(empty[0], empty[-1] + 1))  # one contiguous gap in the middle
    assert 0.3 * n < empty[0] and empty[-1] < 0.7 * n
    assert frames[1].timestamp_ms == pytest.approx(50.0)
    for f in frames:
        assert f.image.shape == (120, 160, 3)
        assert len(f.handedness) == len(f.landmarks)
        if f.landmarks:
            lm = f.landmarks[0]
            assert lm.shape == (21, 3) and lm.dtype == np.float32
            inside = (lm[:, 0] >= 0) & (lm[:, 0] < 160) & (lm[:, 1] >= 0) & (lm[:, 1] < 120)
            assert inside.any()


def test_clip_hands_are_big_smooth_and_apart():
    frames = list(synthetic_clip(12, size=(192, 144), n_hands=2, seed=4, gestures=["open_palm"]))
    prev = None
    for f in frames:
        assert len(f.landmarks) == 2 and sorted(f.handedness) == ["left", "right"]
        a, b = f.landmarks
        assert a[:, 0].max() < b[:, 0].min() or b[:, 0].max() < a[:, 0].min()  # apart
        for lm in f.landmarks:
            assert 0.3 * 144 < np.linalg.norm(lm[12, :2] - lm[0, :2]) < 0.6 * 144
            assert (lm[:, :2] >= 0).all() and (lm[:, 0] < 192).all() and (lm[:, 1] < 144).all()
        if prev is not None:  # smooth motion: small steps between frames
            step = np.abs(f.landmarks[0][:, :2] - prev).max()
            assert step < 0.1 * 144
        prev = f.landmarks[0][:, :2]
