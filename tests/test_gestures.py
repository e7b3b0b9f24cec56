"""The ``gesture_recognizer`` consumer (plugin ``handsdk_gestures``): canned gestures on
synthetic hands, invariance, hysteresis, custom few-shot gestures, option checks, registration,
the tracker end to end, and the accuracy on real photos (MediaPipe-teacher landmarks; skipped
when the labels file is absent)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

try:
    import handsdk_gestures
except ImportError:  # repo not installed: use the checkout (core in ./, plugin in plugins/)
    _ROOT = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(_ROOT), str(_ROOT / "plugins")]
    import handsdk_gestures

from conftest import to_pixels  # noqa: E402
from handsdk_gestures import CANNED_GESTURES, GestureLibrary, GestureRecognizer, feature_vector
from handsdk_gestures import evaluate as gesture_eval

from handsdk import plugins
from handsdk.config import build_component
from handsdk.errors import ConfigError
from handsdk.synthetic import HandPose, hand_landmarks_3d
from handsdk.types import FrameResult, Hand, Handedness, RotatedRect

GESTURES = [g for g in CANNED_GESTURES if g != "None"]
DIRECTIONAL = {"Thumb_Up", "Thumb_Down", "Pointing_Up"}  # meaning depends on image "up"

def canonical(name: str, handedness: str = "right") -> np.ndarray:
    """A canned gesture's 21 landmarks in hand-length units (wrist at the origin)."""
    return np.asarray(hand_landmarks_3d(HandPose.gesture(name, handedness=handedness)), np.float64)




def make_hand(landmarks: np.ndarray, track_id: int = -1) -> Hand:
    return Hand(landmarks=np.asarray(landmarks, np.float32), confidence=np.ones(21, np.float32),
                score=0.99, handedness=Handedness("right", 0.9),
                box=RotatedRect((320.0, 240.0), (300.0, 300.0), 0.0), track_id=track_id)


def frame(hands: list[Hand], index: int = 0) -> FrameResult:
    return FrameResult(index, index * 33.3, hands, (640, 480))


@pytest.fixture
def rec() -> GestureRecognizer:
    return GestureRecognizer()


# -- canned gestures -------------------------------------------------------------------------
def test_the_canned_set_is_mediapipes():
    assert CANNED_GESTURES == ("None", "Closed_Fist", "Open_Palm", "Pointing_Up", "Thumb_Down",
                               "Thumb_Up", "Victory", "ILoveYou")


@pytest.mark.parametrize("handedness", ["right", "left"])
@pytest.mark.parametrize("name", GESTURES)
def test_each_canned_gesture_is_recognised(rec, name, handedness):
    label = rec.recognize(to_pixels(canonical(name, handedness)))
    assert label.name == name
    assert 0.6 <= label.score <= 1.0
    scores = rec.scores(to_pixels(canonical(name, handedness)))
    assert set(scores) == set(GESTURES)
    assert all(0.0 <= s <= 1.0 for s in scores.values())
    others = sorted((s for g, s in scores.items() if g != name), reverse=True)
    assert others[0] < 0.5  # no second rule fires


def test_other_hand_shapes_are_none(rec):
    for fingers in ("EcccE", "cEEEc", "EcEcc", "ccccE"):  # call-me, W, middle only, pinky only
        label = rec.recognize(to_pixels(_shape(fingers)))
        assert label.name == "None", fingers
        assert 0.5 <= label.score <= 1.0


@pytest.mark.parametrize("name", GESTURES)
def test_invariant_to_rotation_scale_translation_and_mirroring(rec, name):
    rng = np.random.default_rng(7)
    base = canonical(name)
    for _ in range(24):
        angle = rng.uniform(-25, 25) if name in DIRECTIONAL else rng.uniform(0, 360)
        size = 200 * rng.uniform(0.3, 3.0)
        centre = rng.uniform(-500, 1500, size=2)
        mirror = bool(rng.integers(2))
        lm = to_pixels(base, size, centre, angle, mirror)
        assert rec.recognize(lm).name == name, (angle, size, centre, mirror)
    # the left hand is the mirror image of the right one
    assert rec.recognize(to_pixels(canonical(name, "left"), 80, (50, 60))).name == name


def test_direction_matters_only_for_the_directional_gestures(rec):
    assert rec.recognize(to_pixels(canonical("Thumb_Up"), angle_deg=180)).name == "Thumb_Down"
    assert rec.recognize(to_pixels(canonical("Thumb_Down"), angle_deg=180)).name == "Thumb_Up"
    for angle in (90, 180, 270):
        assert rec.recognize(to_pixels(canonical("Pointing_Up"), angle_deg=angle)).name != "Pointing_Up"
        # a thumbs-up turned sideways is a fist with the thumb out, not Thumb_Up/Down
    assert rec.recognize(to_pixels(canonical("Thumb_Up"), angle_deg=90)).name == "Closed_Fist"


@pytest.mark.parametrize("name", GESTURES)
def test_robust_to_3d_viewpoint(rec, name):
    """Turning the hand in depth (yaw / pitch, or showing its back) keeps the label."""
    pose_cls, landmarks_3d = HandPose, hand_landmarks_3d
    base = pose_cls.gesture(name)
    d = np.pi / 180
    views = [(-30, -30), (-30, 30), (30, -30), (30, 30), (0, 0)]
    if name not in DIRECTIONAL:
        views += [(-45, 0), (45, 0), (180, 0), (0, -40), (0, 40)]
    for yaw, pitch in views:
        pose = base.with_rotation(base.yaw + yaw * d, base.pitch + pitch * d, base.roll)
        assert rec.recognize(to_pixels(landmarks_3d(pose))).name == name, (yaw, pitch)


def test_features_are_invariant():
    lm = to_pixels(canonical("ILoveYou"))
    v = feature_vector(lm)
    assert v.shape == (28,) and np.all(np.isfinite(v))
    moved = to_pixels(canonical("ILoveYou"), 37, (5, 900), 133, mirror=True)
    np.testing.assert_allclose(feature_vector(moved), v, atol=1e-4)
    assert not np.allclose(feature_vector(to_pixels(canonical("Victory"))), v, atol=0.05)


def test_2d_landmarks_are_accepted(rec):
    assert rec.recognize(to_pixels(canonical("Open_Palm"))[:, :2]).name == "Open_Palm"


# -- still images and video ------------------------------------------------------------------
def test_classify_labels_still_hands_without_state(rec):
    hands = [make_hand(to_pixels(canonical("Victory")), 0),
             make_hand(to_pixels(canonical("Closed_Fist"), centre=(100, 100)), 1)]
    rec.classify(hands, np.zeros((480, 640, 3), np.uint8))
    assert [h.labels["gesture"].name for h in hands] == ["Victory", "Closed_Fist"]
    assert rec._tracks == {}
    rec.classify(hands, None)  # again, same answer: nothing remembered
    assert [h.labels["gesture"].name for h in hands] == ["Victory", "Closed_Fist"]


def _run(rec: GestureRecognizer, names: list[str], track_id: int = 1) -> list[str]:
    out = []
    for i, name in enumerate(names):
        hand = make_hand(to_pixels(canonical(name)), track_id)
        rec(frame([hand], i), None)
        lab = hand.labels["gesture"]
        assert 0.0 <= lab.score <= 1.0
        out.append(lab.name)
    return out


def test_a_one_frame_blip_does_not_change_the_label(rec):
    seq = ["Victory"] * 6 + ["Open_Palm"] + ["Victory"] * 6
    assert _run(rec, seq) == ["Victory"] * len(seq)
    rec.reset()
    seq = ["Closed_Fist"] * 5 + ["Thumb_Up"] + ["Closed_Fist"] * 3 + ["Pointing_Up"] + ["Closed_Fist"] * 3
    assert set(_run(rec, seq)) == {"Closed_Fist"}


def test_a_lasting_change_shows_within_min_frames(rec):
    labels = _run(rec, ["Victory"] * 5 + ["Open_Palm"] * 6)
    assert labels[:5] == ["Victory"] * 5
    switch = labels.index("Open_Palm")
    assert 6 <= switch <= 5 + rec.min_frames  # a frame or two late, never early
    assert labels[switch:] == ["Open_Palm"] * (len(labels) - switch)


def test_hysteresis_can_be_turned_off():
    rec = GestureRecognizer(min_frames=1, smoothing=1.0)
    seq = ["Victory"] * 3 + ["Open_Palm"] + ["Victory"] * 2
    assert _run(rec, seq) == seq


def test_tracks_are_independent_and_forgotten(rec):
    a = make_hand(to_pixels(canonical("Victory")), 1)
    b = make_hand(to_pixels(canonical("Closed_Fist"), centre=(100, 100)), 2)
    rec(frame([a, b]), None)
    assert (a.labels["gesture"].name, b.labels["gesture"].name) == ("Victory", "Closed_Fist")
    assert set(rec._tracks) == {1, 2}
    rec(frame([make_hand(to_pixels(canonical("Victory")), 1)], 1), None)
    assert set(rec._tracks) == {1}  # track 2 ended
    new = make_hand(to_pixels(canonical("Open_Palm")), 3)  # a new track is labelled at once
    rec(frame([new], 2), None)
    assert new.labels["gesture"].name == "Open_Palm"


def test_untracked_hands_are_labelled_frame_by_frame(rec):
    assert _run(rec, ["Victory", "Open_Palm", "Victory"], track_id=-1) == ["Victory", "Open_Palm", "Victory"]
    assert rec._tracks == {}


# -- custom gestures -------------------------------------------------------------------------
def _jittered(name: str, n: int, seed: int, sigma: float = 0.01) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = canonical(name)
    return [to_pixels(base + rng.normal(0, sigma, base.shape), rng.uniform(100, 400),
                      rng.uniform(0, 600, 2), rng.uniform(0, 360)) for _ in range(n)]


def _shape(fingers: str) -> np.ndarray:
    """A hand whose fingers (thumb..pinky) are taken from Open_Palm ('E') or Closed_Fist ('c')."""
    out = canonical("Closed_Fist").copy()
    src = canonical("Open_Palm")
    idx = [(1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20)]
    for f, state in zip(idx, fingers, strict=True):
        if state == "E":
            out[list(f)] = src[list(f)]
    return out


def test_custom_gesture_round_trip_and_recognition(tmp_path):
    call_me = _shape("EcccE")  # thumb and pinky out: not a canned gesture
    rng = np.random.default_rng(3)
    lib = GestureLibrary()
    lib.add("Call_Me", [to_pixels(call_me + rng.normal(0, 0.01, (21, 3)), 150, (200, 200), a)
                        for a in (0, 40, 200)])
    lib.add("Peace", _jittered("Victory", 4, seed=4))  # overlaps a canned gesture on purpose
    path = tmp_path / "gestures" / "mine.json"
    lib.save(path)
    data = json.loads(path.read_text())
    assert data["format"] == "handsdk-gestures" and set(data["gestures"]) == {"Call_Me", "Peace"}
    assert path.stat().st_size < 20_000  # small: a few normalised vectors
    again = GestureLibrary.load(path)
    assert again.names == ["Call_Me", "Peace"] and again.threshold == lib.threshold
    for name in again.names:
        np.testing.assert_allclose(np.array(again.examples(name)), np.array(lib.examples(name)), atol=1e-5)

    rec = GestureRecognizer(custom=str(path))
    assert GestureRecognizer().recognize(to_pixels(call_me)).name == "None"
    label = rec.recognize(to_pixels(call_me, 90, (30, 400), 123, mirror=True))
    assert label.name == "Call_Me" and 0.5 <= label.score <= 1.0
    assert rec.recognize(to_pixels(canonical("Victory"), angle_deg=77)).name == "Peace"  # custom wins
    assert rec.recognize(to_pixels(canonical("Closed_Fist"))).name == "Closed_Fist"  # canned still work
    assert rec.recognize(to_pixels(canonical("Open_Palm"))).name == "Open_Palm"


def test_custom_only_and_orientation(tmp_path):
    lib = GestureLibrary()
    lib.add("Up_Fist", [to_pixels(canonical("Closed_Fist"), angle_deg=a) for a in (-10, 0, 10)],
            orientation=True)
    rec = GestureRecognizer(custom=lib, gestures=[])
    assert rec.recognize(to_pixels(canonical("Closed_Fist"), angle_deg=5)).name == "Up_Fist"
    assert rec.recognize(to_pixels(canonical("Closed_Fist"), angle_deg=180)).name == "None"
    assert rec.recognize(to_pixels(canonical("Open_Palm"))).name == "None"
    with pytest.raises(ValueError, match="orientation"):
        lib.add("Up_Fist", [to_pixels(canonical("Closed_Fist"))])


def test_custom_threshold_option(tmp_path):
    lib = GestureLibrary()
    lib.add("Call_Me", [to_pixels(_shape("EcccE"))])
    near = to_pixels(_shape("EEccE"))  # ILoveYou: one finger off
    assert GestureRecognizer(custom=lib).recognize(near).name == "ILoveYou"
    assert GestureRecognizer(custom=lib, custom_threshold=5.0).recognize(near).name == "Call_Me"
    assert lib.threshold == pytest.approx(0.08)  # the caller's library is not changed


def test_add_from_images_runs_the_tracker(tmp_path):
    import cv2

    paths = []
    for i in range(2):
        p = tmp_path / f"ex{i}.png"
        cv2.imwrite(str(p), np.zeros((40, 40, 3), np.uint8))
        paths.append(p)

    class FakeTracker:
        def __init__(self):
            self.calls = 0

        def detect(self, image):
            self.calls += 1
            small = make_hand(to_pixels(canonical("Open_Palm"), 20))
            big = make_hand(to_pixels(_shape("EcccE"), 200))
            return [small, big] if self.calls == 1 else []

    tracker = FakeTracker()
    lib = GestureLibrary()
    assert lib.add_from_images("Call_Me", paths, tracker) == 1
    assert tracker.calls == 2
    assert lib.match(to_pixels(_shape("EcccE"), 60))[0] == "Call_Me"  # the largest hand was used
    with pytest.raises(ValueError, match="no hand"):
        lib.add_from_images("Nothing", paths[1:], tracker)


@pytest.mark.parametrize("content", ["not json", '{"format": "other"}',
                                     '{"format": "handsdk-gestures", "version": 1, "features": '
                                     '"handsdk_gestures.v1", "gestures": {"x": {"orientation": false, '
                                     '"examples": [[1, 2]]}}}'])
def test_bad_custom_files_are_config_errors(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="custom"):
        GestureRecognizer(custom=str(path))
    with pytest.raises(ConfigError, match="does not exist"):
        GestureRecognizer(custom=str(tmp_path / "missing.json"))


# -- options ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("option", "value", "valid"), [
    ("min_score", 1.5, "[0, 1]"),
    ("min_score", "high", "[0, 1]"),
    ("min_frames", 0, ">= 1"),
    ("min_frames", 2.5, ">= 1"),
    ("switch_margin", -0.1, "[0, 1]"),
    ("smoothing", 0, "(0, 1]"),
    ("custom", 42, "path"),
    ("custom_threshold", -1, "> 0"),
    ("gestures", ["Victory", "Rock"], "Closed_Fist, Open_Palm, Pointing_Up"),
    ("gestures", "Victory", "Closed_Fist"),
    ("key", "", "non-empty"),
])
def test_bad_options_name_the_option_and_the_valid_values(option, value, valid):
    with pytest.raises(ConfigError) as err:
        build_component(GestureRecognizer, {option: value}, "cfg.toml [[consumers]] #1 'gesture_recognizer'")
    msg = str(err.value)
    assert option in msg and valid in msg and "cfg.toml" in msg


def test_custom_threshold_needs_custom():
    with pytest.raises(ConfigError, match="needs option 'custom'"):
        GestureRecognizer(custom_threshold=0.1)


def test_unknown_option_lists_the_accepted_ones():
    with pytest.raises(ConfigError, match="min_frames"):
        build_component(GestureRecognizer, {"min_frame": 3}, "x")


def test_label_key_and_gesture_subset():
    rec = GestureRecognizer(key="hand_sign", gestures=["Victory"])
    hand = make_hand(to_pixels(canonical("Open_Palm")))
    rec.classify([hand], None)
    assert hand.labels["hand_sign"].name == "None" and "gesture" not in hand.labels


# -- plugin registration and the tracker -----------------------------------------------------
def test_registered_through_the_plugin_manager():
    comp = plugins.components("consumer")["gesture_recognizer"]
    assert comp.factory is GestureRecognizer
    assert comp.plugin == "gestures"
    assert comp.factory().kind == "classifier"


def test_a_subclass_plugin_adds_a_rule():
    class MyGestures(GestureRecognizer):
        rules = {**handsdk_gestures.CANNED_RULES,
                 "Call_Me": lambda f: min(f.thumb_out, f.extended[4], f.curled[1:4].min())}

    assert MyGestures().recognize(to_pixels(_shape("EcccE"))).name == "Call_Me"
    assert MyGestures(gestures=["Call_Me"]).recognize(to_pixels(canonical("Victory"))).name == "None"


def test_tracker_end_to_end(fake_backend):
    from handsdk import Tracker

    cfg = fake_backend.config(consumers=[{"name": "gesture_recognizer"}])
    with Tracker(cfg) as tracker:
        hands = tracker.detect(fake_backend.frame())
        assert hands and hands[0].labels["gesture"].name == "Open_Palm"
        for _ in range(3):
            result = tracker.process(fake_backend.frame())
        assert result.hands[0].labels["gesture"].name == "Open_Palm"
    bad = fake_backend.config(consumers=[{"name": "gesture_recognizer", "min_frames": 0}])
    with pytest.raises(ConfigError, match="min_frames"):
        Tracker(bad)


# -- real photos -----------------------------------------------------------------------------
def test_evaluate_cli_on_a_small_labels_file(tmp_path, capsys):
    rows = [{"dataset": "rock_paper_scissors", "label": lab, "group": f"rock_paper_scissors/{i}",
             "landmarks": to_pixels(canonical(g)).tolist()}
            for i, (lab, g) in enumerate([("rock", "Closed_Fist"), ("paper", "Open_Palm"),
                                          ("scissors", "Victory"), ("scissors", "Open_Palm")])]
    rows.append({"dataset": "gesture_counts", "label": "three", "group": "gesture_counts/x",
                 "landmarks": to_pixels(canonical("Victory")).tolist()})
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert gesture_eval.main(["--labels", str(path)]) == 0
    out = capsys.readouterr().out
    assert "75.0%" in out and "Confusion" in out and "gesture_counts/three" in out
    rep = gesture_eval.evaluate(gesture_eval.load_rows(path))
    assert rep.total == 4 and rep.correct == 3
    assert gesture_eval.main(["--labels", str(tmp_path / "none.jsonl")]) == 2


def test_one_counts_only_with_the_index_up():
    up = {"dataset": "gesture_counts", "label": "one", "group": "g/1",
          "landmarks": to_pixels(canonical("Pointing_Up")).tolist()}
    side = dict(up, landmarks=to_pixels(canonical("Pointing_Up"), angle_deg=90).tolist())
    assert gesture_eval.expected_gesture(up)[1] == "Pointing_Up"
    assert gesture_eval.expected_gesture(side)[1] is None


@pytest.fixture(scope="module")
def teacher_rows(data_root) -> list[dict]:
    """MediaPipe's (the teacher's) landmarks on the mapped photos: from the labels file when there
    is one (``python -m handsdk.train.pseudolabel``), else labelled here from ``../shared/teacher``
    (every 2nd photo, to stay fast); a skip only when neither teacher nor its runtime is there."""
    labels = gesture_eval.default_labels_path()
    if labels is not None:
        return gesture_eval.load_rows(labels)
    from handsdk.data import iter_photos, teacher_root

    root = teacher_root()
    if root is None:
        pytest.skip("no labels file and no ../shared/teacher (MediaPipe's TFLite models) to make one")
    pytest.importorskip("ai_edge_litert", reason="the teacher runs on ai-edge-litert (pip install handsdk[tflite])")
    from handsdk.train.pseudolabel import label_photo
    from handsdk.train.teacher import MediaPipeTeacher

    teacher = MediaPipeTeacher(root)
    photos = [p for ds in sorted({d for d, _ in gesture_eval.MAPPING}) for p in list(iter_photos((ds,)))[::2]]
    return [r for r in (label_photo(teacher, p, hand_free=False) for p in photos) if r is not None]


def test_accuracy_end_to_end_with_our_tracker(data_root):
    """Our own tracker's landmarks on the shared photos (every 2nd photo, to stay fast)."""
    rows = gesture_eval.tracker_rows(limit_per_dataset=450)
    rep = gesture_eval.evaluate(rows)
    print(gesture_eval.format_report(rep))
    assert rep.total >= 300
    assert rep.overall >= 0.90, gesture_eval.format_report(rep)


def test_accuracy_on_real_photos(teacher_rows):
    """The rules on MediaPipe's landmarks: what the recognizer scores when the landmarks are
    right (97.6 % on all 1,312 scored photos, docs)."""
    rep = gesture_eval.evaluate(teacher_rows)
    assert rep.total >= 300, f"only {rep.total} teacher-labelled photos of the mapped classes"
    print(gesture_eval.format_report(rep))
    assert rep.overall >= 0.95, gesture_eval.format_report(rep)
    for cls in rep.per_class:
        if sum(rep.per_class[cls].values()) >= 50:
            assert rep.accuracy(cls) >= 0.85, (cls, gesture_eval.format_report(rep))
