"""The Tracker on synthetic clips with exact ground truth, and its public contract."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
from conftest import fake_hand

from handsdk import FrameResult, Hand, Tracker, hookimpl
from handsdk.errors import ConfigError
from handsdk.synthetic import synthetic_clip


@pytest.fixture(scope="module")
def tracker():
    with Tracker() as t:
        yield t


def _match(hands: list[Hand], truth: np.ndarray) -> tuple[Hand | None, float]:
    if not hands:
        return None, float("inf")
    d = [float(np.linalg.norm(h.landmarks[:, :2] - truth[:, :2], axis=1).mean()) for h in hands]
    i = int(np.argmin(d))
    return hands[i], d[i]


def test_detect_contract(tracker):
    frame = next(iter(synthetic_clip(1, seed=7)))
    image, truth = frame.image, frame.landmarks
    hands = tracker.detect(image)
    assert hands, "no hand found in a clear synthetic render"
    hand, err = _match(hands, truth[0])
    assert hand.landmarks.shape == (21, 3) and hand.landmarks.dtype == np.float32
    assert hand.landmarks[0, 2] == 0 and np.ptp(hand.landmarks[:, 2]) > 1  # depth relative to the wrist
    assert all(h.landmarks[0, 2] == 0 for h in tracker.process(image).hands)
    tracker.reset()
    assert hand.confidence.shape == (21,)
    assert 0.5 <= hand.score <= 1.0
    assert hand.handedness.label in ("left", "right")
    assert err < 0.1 * np.ptp(truth[0][:, :2], axis=0).max()
    # stills leave no temporal state behind, and give the same answer twice
    again = tracker.detect(image)
    assert np.allclose(again[0].landmarks, hands[0].landmarks)


@pytest.mark.parametrize("seed", [0, 1])
def test_tracks_one_hand_with_pixel_accuracy(tracker, seed):
    tracker.reset()
    errors, ids, sizes = [], set(), []
    for frame in synthetic_clip(60, seed=seed):
        result = tracker.process(frame.image, timestamp_ms=frame.timestamp_ms)
        assert isinstance(result, FrameResult)
        hand, err = _match(result.hands, frame.landmarks[0])
        assert hand is not None, f"hand lost at frame {result.frame_index}"
        errors.append(err)
        ids.add(hand.track_id)
        sizes.append(np.ptp(frame.landmarks[0][:, :2], axis=0).max())
    # hands are ~200 px long here: a mean error under 5 % of hand size, no frame above 10 %
    assert np.mean(errors) < 0.05 * np.mean(sizes), np.mean(errors)
    assert np.max(errors) < 0.10 * np.mean(sizes), np.max(errors)
    assert len(ids) == 1, f"track id changed within the clip: {ids}"


def test_detector_runs_only_while_a_hand_is_missing():
    with Tracker({"tracker": {"max_hands": 1}}) as t:
        calls = [t.process(f.image, f.timestamp_ms).detector_ran for f in synthetic_clip(40, seed=4)]
    assert calls[0] is True
    assert sum(calls) <= 2, f"detector ran on {sum(calls)} of 40 frames while the hand was tracked"


def test_new_hand_interval_spaces_the_search_for_a_second_hand():
    """max_hands 2, one hand in view: MediaPipe's scheme runs the detector on every frame to look
    for the second hand; new_hand_interval = 3 looks on every third frame only, and tracks the
    hand in view the same (no hand tracked: the detector runs on every frame regardless)."""
    clip = list(synthetic_clip(24, seed=4))
    runs = {}
    for k in (1, 3):
        with Tracker({"tracker": {"new_hand_interval": k}}) as t:
            results = [t.process(f.image, f.timestamp_ms) for f in clip]
        runs[k] = ([r.detector_ran for r in results], [r.hands[0].landmarks for r in results if r.hands])
    assert all(runs[1][0])
    assert runs[3][0] == [i % 3 == 0 for i in range(len(clip))]
    assert len(runs[3][1]) == len(runs[1][1]) == len(clip)
    assert max(np.abs(a - b).max() for a, b in zip(runs[1][1], runs[3][1], strict=True)) < 1e-3


def _spy_on_detector(tracker: Tracker, on_main: list[bool]) -> None:
    """Log, for each detector call, whether it ran on the caller's (main) thread."""
    runner = tracker._detector

    def call(batch):
        on_main.append(threading.current_thread() is threading.main_thread())
        return runner(batch)

    tracker._detector = call


def test_overlap_detector_runs_beside_the_tracked_crops_with_the_same_hands():
    """max_hands 2, one hand in view: the detector looks for the second hand on every frame. With
    overlap_detector (the default) it runs on a second thread while the tracked hand's crop is
    read on the caller's; the hands and ids are exactly those of running one after the other."""
    clip = list(synthetic_clip(16, seed=4))
    runs = {}
    for overlap in (True, False):  # on: the default
        on_main: list[bool] = []
        with Tracker({} if overlap else {"tracker": {"overlap_detector": False}}) as t:
            _spy_on_detector(t, on_main)
            results = [t.process(f.image, f.timestamp_ms) for f in clip]
        assert all(r.detector_ran for r in results) and all(len(r.hands) == 1 for r in results)
        runs[overlap] = results, on_main
    (a, on_main_a), (b, on_main_b) = runs[True], runs[False]
    # frame 0 tracks nothing yet (whole frame + one tile, on the caller's thread); then one call a frame
    assert on_main_a[:2] == [True, True] and not any(on_main_a[2:]) and len(on_main_a) == len(clip) + 1
    assert all(on_main_b) and len(on_main_b) == len(clip) + 1
    for x, y in zip(a, b, strict=True):
        assert [h.track_id for h in x.hands] == [h.track_id for h in y.hands]
        assert np.array_equal(x.hands[0].landmarks, y.hands[0].landmarks)
    assert all(r.timings["detect"] > 0 and r.timings["landmarks"] > 0 for r in a[1:])


def test_overlap_detector_a_failing_landmark_call_waits_for_the_detector():
    """A backend error while the detector runs beside it reaches the caller once the detector's
    call has ended: no model call outlives its frame, and the tracker closes cleanly."""
    clip = list(synthetic_clip(4, seed=4))
    with Tracker() as t:
        det = t._detector
        running = []

        def detector(batch):
            running.append(1)
            time.sleep(0.05)  # still running when the landmark call fails
            out = det(batch)
            running.pop()
            return out

        t._detector = detector
        assert t.process(clip[0].image, clip[0].timestamp_ms).hands

        def landmark(batch):
            raise RuntimeError("landmark backend failed")

        t._landmark = landmark
        with pytest.raises(RuntimeError, match="landmark backend failed"):
            t.process(clip[1].image, clip[1].timestamp_ms)
        assert not running, "the detector was still running when process() raised"
    assert t._pool is None


def test_two_hands_get_two_stable_ids(tracker):
    tracker.reset()
    per_hand: list[set[int]] = [set(), set()]
    for frame in synthetic_clip(45, seed=2, n_hands=2):
        result = tracker.process(frame.image, frame.timestamp_ms)
        for k, truth in enumerate(frame.landmarks):
            hand, err = _match(result.hands, truth)
            if hand is not None and err < 0.1 * np.ptp(truth[:, :2], axis=0).max():
                per_hand[k].add(hand.track_id)
    assert all(len(s) == 1 for s in per_hand), per_hand
    assert per_hand[0] != per_hand[1]


def test_reacquires_a_hand_that_leaves_and_returns(tracker):
    tracker.reset()
    seen = []  # (hand truly present, tracker found a hand, track id)
    for frame in synthetic_clip(120, seed=3, leave_and_return=True):
        result = tracker.process(frame.image, frame.timestamp_ms)
        seen.append((bool(frame.landmarks), bool(result.hands),
                     result.hands[0].track_id if result.hands else None))
    absent = [i for i, s in enumerate(seen) if not s[0]]
    assert absent, "the clip should have frames without a hand"
    assert not any(seen[i][1] for i in absent[2:]), "a hand was reported while none was in the frame"
    before = {s[2] for s in seen[: absent[0]] if s[2] is not None}
    after_frames = seen[absent[-1] + 1:]
    assert all(s[1] for s in after_frames[3:]), "the hand was not re-acquired after it returned"
    after = {s[2] for s in after_frames if s[2] is not None}
    assert len(before) == 1 and len(after) == 1 and before != after, (before, after)


def test_backwards_and_repeated_timestamps_are_tolerated(tracker):
    tracker.reset()
    frames = [f.image for f in synthetic_clip(6, seed=5)]
    stamps = [0.0, 33.0, 33.0, 10.0, 66.0, 66.0]
    results = [tracker.process(f, t) for f, t in zip(frames, stamps, strict=True)]
    ts = [r.timestamp_ms for r in results]
    assert all(b > a for a, b in zip(ts, ts[1:], strict=False))
    assert all(np.isfinite(h.landmarks).all() for r in results for h in r.hands)


def test_run_takes_frame_objects_with_their_timestamps(tracker):
    """``run`` reads ``.image`` / ``.timestamp_ms`` objects, so the renderer's clip goes in as is."""
    clip = list(synthetic_clip(4, seed=2, fps=20.0))
    results = list(tracker.run(iter(clip)))
    assert [r.timestamp_ms for r in results] == [f.timestamp_ms for f in clip] == [0.0, 50.0, 100.0, 150.0]
    assert all(len(r.hands) == 1 for r in results)


def test_a_command_line_source_is_a_camera_only_if_no_such_path_exists(tmp_path, monkeypatch):
    from handsdk.sources import source_spec

    monkeypatch.chdir(tmp_path)
    assert source_spec("0") == 0 and source_spec("12") == 12
    (tmp_path / "2024").mkdir()
    assert source_spec("2024") == "2024" and source_spec("clip.mp4") == "clip.mp4"


def test_run_sources_and_writers(tmp_path):
    frames = [f.image for f in synthetic_clip(12, seed=6)]
    video = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25, (640, 480))
    for f in frames:
        w.write(f)
    w.release()
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames[:3]):
        cv2.imwrite(str(folder / f"{i:03d}.png"), f)
    out = tmp_path / "out.jsonl"
    cfg = {"consumers": [{"name": "jsonl", "path": str(out)},
                         {"name": "video", "path": str(tmp_path / "out.mp4"), "fps": 25.0}]}
    with Tracker(cfg) as t:
        from_list = list(t.run(frames))
        from_video = list(t.run(str(video)))
        from_folder = list(t.run(folder))
        from_image = list(t.run(str(folder / "000.png")))
        from_synthetic = list(t.run("synthetic", n_frames=5))
    assert [len(x) for x in (from_list, from_video, from_folder, from_image, from_synthetic)] == [12, 12, 3, 1, 5]
    assert sum(bool(r.hands) for r in from_video) >= 11
    lines = out.read_text().splitlines()
    assert len(lines) == 33
    rec = json.loads(lines[0])
    assert {"frame", "timestamp_ms", "hands"} <= rec.keys()
    assert {"landmarks", "score", "handedness", "track_id", "labels"} <= rec["hands"][0].keys()
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 33


def test_demo_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "handsdk", "demo", "--frames", "20"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "frames: 20" in proc.stdout
    records = [json.loads(x) for x in (tmp_path / "handsdk_demo.jsonl").read_text().splitlines()]
    assert len(records) == 20 and sum(bool(r["hands"]) for r in records) >= 18
    cap = cv2.VideoCapture(str(tmp_path / "handsdk_demo.mp4"))
    ok, frame = cap.read()
    assert ok and frame.shape == (480, 640, 3)


def test_detector_rotations_recover_an_upside_down_detection():
    """A detection whose wrist → knuckle direction is reversed (the detector's usual mistake on
    fists) gives an upside-down crop; with ``detector_rotations = 2`` the tracker also tries the
    crop turned 180° and keeps the more confident reading, which lands on the hand."""
    from dataclasses import replace

    from handsdk.geometry import rect_from_landmarks

    frame = next(iter(synthetic_clip(1, seed=3, n_hands=1)))
    truth = frame.landmarks[0]
    size = np.ptp(truth[:, :2], axis=0).max()
    errors = {}
    for turns in (1, 2):
        with Tracker({"tracker": {"detector_rotations": turns}}) as t:
            upright = rect_from_landmarks(truth, t.crop_scale)
            flipped = replace(upright, angle=upright.angle + np.pi)
            found = t._run_landmarks_on_detections(frame.image, [flipped])
            assert len(found) == 1
            errors[turns] = float(np.linalg.norm(found[0]["landmarks"][:, :2] - truth[:, :2], axis=1).mean())
    assert errors[2] < 0.05 * size, errors
    assert errors[1] > 2 * errors[2], errors


def test_mirrored_reading_maps_back_onto_the_hand():
    """``mirror_new`` reads the crop mirrored too: the mirrored reading, mapped back, lies on the
    same hand with the same handedness (un-mirroring x and swapping handedness are what make the
    average meaningful; without them the points land mirrored about the crop's centre line)."""
    from handsdk.geometry import rect_from_landmarks

    frame = next(iter(synthetic_clip(1, seed=5, n_hands=1)))
    truth = frame.landmarks[0]
    size = np.ptp(truth[:, :2], axis=0).max()
    with Tracker() as t:
        rect = rect_from_landmarks(truth, t.crop_scale)
        plain = t._run_landmarks(frame.image, [rect])[0]
        mirrored = t._run_landmarks(frame.image, [rect], mirror=True)[0]
        both = t._with_mirror(frame.image, [plain])[0]
    for reading in (plain, mirrored, both):
        assert np.linalg.norm(reading["landmarks"][:, :2] - truth[:, :2], axis=1).mean() < 0.05 * size
        assert (reading["right"] >= 0.5) == (plain["right"] >= 0.5)
    assert both["presence"] == pytest.approx((plain["presence"] + mirrored["presence"]) / 2)
    with Tracker() as on, Tracker({"tracker": {"mirror_new": False}}) as off:
        a, b = on.detect(frame.image), off.detect(frame.image)
    assert len(a) == len(b) == 1 and a[0].handedness.label == b[0].handedness.label
    assert np.linalg.norm(a[0].landmarks[:, :2] - truth[:, :2], axis=1).mean() < 0.05 * size


def test_min_landmark_confidence_filters_hands():
    """The mean per-landmark confidence floor drops readings below it, in stills and video."""
    frame = next(iter(synthetic_clip(1, seed=7)))
    whole = {"tile_search": False}  # a tile would read the same hand again, at another scale
    with Tracker({"tracker": whole}) as t:
        hands = t.detect(frame.image)
    assert hands
    conf = min(float(h.confidence.mean()) for h in hands)
    with Tracker({"tracker": {**whole, "min_landmark_confidence": min(1.0, conf + 1e-3)}}) as t:
        assert len(t.detect(frame.image)) < len(hands)
    with Tracker() as t:
        assert t.process(frame.image).hands
    with Tracker({"tracker": {"min_landmark_confidence": 1.0}}) as t:  # a sigmoid never reaches 1
        assert t.process(frame.image).hands == []


def test_few_false_hands_on_real_hand_free_photo_strips(data_root):
    """Held-out real photos with one human-drawn hand box: the strip beside the box (grown by a
    third) holds no hand, and the tracker should rarely report one there. Measured: 4 of 30
    with models 0.2.0 (3 without the mirrored second reading, ``mirror_new``), 3 of 30 with 0.1.1
    (5 without), 14 of 30 with the 0.1.0 landmark model, before its presence head was re-fitted.
    Thirty strips cannot rank the two readings (they differ by one or two strips, either way);
    on 1,054 teacher-verified strips of eight sets the mirrored reading lowers the rate, 0.490
    → 0.430 (docs/config.md)."""
    from handsdk.data import iter_photos
    from handsdk.geometry import hand_free_region

    found = []
    with Tracker() as t:
        for p in iter_photos(("gesture_counts", "asl_letters")):
            boxes = p.path.parent.parent / "labels" / (p.path.stem + ".txt")
            rows = boxes.read_text().split() if boxes.exists() else []
            if p.split != "valid" or len(rows) != 5:  # exactly one hand box
                continue
            img = cv2.imread(str(p.path))
            h, w = img.shape[:2]
            cx, cy, bw, bh = (float(v) for v in rows[1:5])
            corners = np.array([[(cx - bw / 2) * w, (cy - bh / 2) * h], [(cx + bw / 2) * w, (cy + bh / 2) * h]])
            region = hand_free_region((w, h), corners)
            if region is not None:
                x0, y0, x1, y1 = region
                strip = np.ascontiguousarray(img[y0:y1, x0:x1])
                found.append(bool(t.detect(strip)))
    if len(found) < 20:
        pytest.skip(f"only {len(found)} hand-free strips in the shared photos")
    assert np.mean(found) <= 0.2, f"a hand reported on {sum(found)} of {len(found)} hand-free strips"


def test_mirror_tracked_lowers_the_error_on_the_real_asl_clip(data_root):
    """``mirror_tracked`` averages every tracked reading with its mirror image: on the real ASL
    clip the mean distance to MediaPipe's per-frame landmarks falls, with a hand in every frame
    either way. The clip is scored deterministically, so any fall is the option's; how far it
    falls is the model's (models 0.2.0: 5.7 % → 5.1 % of hand size; 0.3.0, which errs less to
    begin with: 4.68 % → 4.55 %; docs/config.md)."""
    from handsdk.evaluate import evaluate_video

    clip = data_root / "asl_video" / "asl_hand.25fps.mp4"
    reference = data_root / "asl_video" / "asl_hand.full.json"
    if not (clip.is_file() and reference.is_file()):
        pytest.skip(f"no ASL clip with reference landmarks under {data_root / 'asl_video'}")
    err = {}
    for on in (False, True):
        with Tracker({"tracker": {"mirror_tracked": on}}) as t:
            scores = evaluate_video(clip, reference, t)["handsdk"]
        assert scores["detection_rate"] == 1.0
        err[on] = scores["epe_rel"]
    assert err[True] < err[False], err


def test_a_result_reads_back_from_its_json_line(tracker):
    """``FrameResult.from_dict`` inverts ``to_dict`` (what the jsonl writer writes), labels included."""
    import json

    from handsdk.types import FrameResult, Label

    tracker.reset()
    result = tracker.process(next(iter(synthetic_clip(1, seed=3))).image, 40.0)
    result.hands[0].labels["gesture"] = Label("Open_Palm", 0.9)
    line = json.dumps(result.to_dict())
    back = FrameResult.from_dict(json.loads(line))
    assert back.to_dict() == json.loads(line)
    assert back.hands[0].landmarks.shape == (21, 3) and back.hands[0].landmarks.dtype == np.float32
    assert back.hands[0].labels["gesture"].name == "Open_Palm" and back.frame_index == result.frame_index
    assert np.allclose(back.hands[0].landmarks, result.hands[0].landmarks, atol=0.006)


def test_the_landmark_model_reads_four_proposals_even_for_one_hand():
    """The detector ranks faces and clutter above small far hands (docs/models.md, "Defaults
    0.15 / 0.8"): with max_hands = 1 the hand is often its third or fourth proposal, so at least
    four are read, best first; more hands read twice their number."""
    from handsdk.detection import detect_hands

    scores = [0.9, 0.8, 0.7, 0.6, 0.5]

    def run(square: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        heat, geom = np.zeros((24, 24), np.float32), np.zeros((7, 24, 24), np.float32)
        geom[2] = np.log(0.05)  # a hand 0.05 of the frame: the peaks, 4 cells apart, stay apart
        for i, s in enumerate(scores):
            heat[4 + 4 * i, 4 + 4 * i] = s
        return heat, geom

    image = np.zeros((192, 192, 3), np.uint8)
    one = detect_hands(run, image, 192, 8, 0.15, max_hands=1)
    assert [round(d.score, 2) for d in one] == scores[:4]
    assert len(detect_hands(run, image, 192, 8, 0.15, max_hands=3)) == 5
    assert len(detect_hands(run, image, 192, 8, 0.75, max_hands=1)) == 2  # the threshold still holds


# -- small hands: the tile search ------------------------------------------------------------
def _small_white_hand(centre: tuple[int, int], side: int = 40, frame: int = 640) -> np.ndarray:
    """A frame with one white patch: the fake detector's hand (``white_hand_min_px``)."""
    image = np.zeros((frame, frame, 3), np.uint8)
    x, y = centre
    image[y - side // 2:y + side // 2, x - side // 2:x + side // 2] = 255
    return image


def test_small_hand_tiles_overlap_and_cover_the_frame():
    """Four tiles, each 0.65 of the frame's sides, overlapping by 0.3 of them, covering every
    pixel; none for a frame whose tiles would be under 64 px."""
    from handsdk.detection import TILE_SHARE, small_hand_tiles

    tiles = small_hand_tiles(640, 480)
    assert len(tiles) == 4
    covered = np.zeros((480, 640), bool)
    for x0, y0, w, h in tiles:
        assert (w, h) == (round(640 * TILE_SHARE), round(480 * TILE_SHARE))
        assert x0 >= 0 and y0 >= 0 and x0 + w <= 640 and y0 + h <= 480
        covered[y0:y0 + h, x0:x0 + w] = True
    assert covered.all()
    assert small_hand_tiles(90, 90) == []


def test_small_hands_are_looked_for_in_tiles(fake_backend):
    """A hand too small for the detector at the whole frame's scale (40 px of 640: 4 px of the
    fake detector's 64 px input, which needs 5) is found in a 2x2 tile (416 px: 6 px) with
    ``tile_search``, and lies where the patch is."""
    from handsdk.detection import small_hand_tiles

    fake_backend.state["white_hand_min_px"] = 5
    image = _small_white_hand((150, 150))
    with Tracker(fake_backend.config(tracker={"tile_search": False})) as off:
        assert off.detect(image) == []
        assert off.stats["detector_calls"] == 1
    with Tracker(fake_backend.config()) as on:
        hands = on.detect(image)
        assert on.stats["detector_calls"] == 1 + len(small_hand_tiles(640, 640)) == 5
    assert len(hands) == 1
    assert np.abs(hands[0].landmarks[:, :2].mean(0) - 150).max() < 20
    with Tracker(fake_backend.config()) as on:  # a hand found in the whole frame: no tiles
        assert len(on.detect(_small_white_hand((320, 320), side=200))) == 1
        assert on.stats["detector_calls"] == 1


def test_a_hand_found_only_in_a_tile_needs_a_confident_reading(fake_backend):
    """A tile magnifies clutter as well as hands, so a hand only a tile proposed also needs a mean
    landmark confidence of ``TILE_MIN_LANDMARK_CONFIDENCE``; one found in the whole frame does not."""
    from handsdk.tracker import TILE_MIN_LANDMARK_CONFIDENCE

    fake_backend.state["white_hand_min_px"] = 5
    for confidence, found in ((TILE_MIN_LANDMARK_CONFIDENCE + 0.05, 1), (TILE_MIN_LANDMARK_CONFIDENCE - 0.05, 0)):
        fake_backend.state["confidence"] = confidence
        with Tracker(fake_backend.config()) as t:
            assert len(t.detect(_small_white_hand((150, 150)))) == found
            assert len(t.detect(_small_white_hand((320, 320), side=200))) == 1


def test_an_unsure_whole_frame_hand_does_not_stop_the_tile_search(fake_backend):
    """Clutter the whole frame passes reads a low mean landmark confidence (docs/models.md, "Small
    hands"), so with max_hands 1 a whole-frame hand under ``TILE_MIN_LANDMARK_CONFIDENCE`` still
    lets detect() look at the tiles; a sure one does not."""
    from handsdk.tracker import TILE_MIN_LANDMARK_CONFIDENCE

    fake_backend.state["white_hand_min_px"] = 5
    image = _small_white_hand((320, 320), side=200)  # found in the whole frame
    for confidence, calls in ((TILE_MIN_LANDMARK_CONFIDENCE - 0.05, 5), (TILE_MIN_LANDMARK_CONFIDENCE + 0.05, 1)):
        fake_backend.state["confidence"] = confidence
        with Tracker(fake_backend.config()) as t:
            assert len(t.detect(image)) == 1  # the tiles' proposals on it are not read again
            assert t.stats["detector_calls"] == calls


def test_each_non_finite_reading_is_counted_once_in_detect(fake_backend):
    """detect() checks the whole frame's readings before deciding on the tiles and the tiles'
    readings after: each NaN reading is one in ``stats["nonfinite_hands"]``, not two."""
    with Tracker(fake_backend.config(tracker={"tile_search": False})) as t:
        fake_backend.state["nan"] = True  # after loading, which refuses a model that gives NaN
        assert t.detect(fake_backend.frame()) == []
        assert t.stats["nonfinite_hands"] == 1  # one proposal, one reading kept of its two turns


def test_video_looks_at_one_tile_per_frame_until_a_hand_is_tracked(fake_backend):
    """process(): while no hand is tracked, each frame also looks at one small-hand tile, in turn
    (one more detector call a frame); a hand only in the last tile is found on the fourth frame,
    and once it is tracked the detector rests (max_hands 1)."""
    fake_backend.state["white_hand_min_px"] = 5
    image = _small_white_hand((500, 500))  # inside the bottom-right tile only
    with Tracker(fake_backend.config(tracker={"tile_search": False})) as off:
        assert not any(off.process(image).hands for _ in range(6))
    with Tracker(fake_backend.config()) as on:
        calls, found = [], []
        for _ in range(6):
            before = on.stats["detector_calls"]
            found.append(len(on.process(image).hands))
            calls.append(on.stats["detector_calls"] - before)
    assert found == [0, 0, 0, 1, 1, 1]
    assert calls == [2, 2, 2, 2, 0, 0]


def test_beside_a_sure_hand_a_new_unsure_reading_is_dropped_but_alone_it_stays(fake_backend):
    """``min_confidence_beside_hand``: where one hand reads a mean landmark confidence of at least
    the cut, new readings below it (faces, clutter) are dropped; an unsure reading alone, or one
    that continues a track, stays; 0 turns it off."""
    def reading(conf, track=None):
        return {"confidence": np.full(21, conf, np.float32), "track": track}

    sure, face, tracked = reading(0.6), reading(0.25), reading(0.25, track=object())
    with Tracker(fake_backend.config(tracker={"min_confidence_beside_hand": 0.35})) as t:
        assert t._beside_sure([sure, face]) == [sure]
        assert t._beside_sure([face, sure]) == [sure]  # whichever ranks first
        assert t._beside_sure([face]) == [face]
        assert len(t._beside_sure([face, reading(0.3)])) == 2  # no sure hand: both stay
        assert t._beside_sure([sure, tracked, face]) == [sure, tracked]
    with Tracker(fake_backend.config(tracker={"min_confidence_beside_hand": 0.0})) as t:
        assert t._beside_sure([sure, face]) == [sure, face]
    with pytest.raises(ConfigError, match="min_confidence_beside_hand"):
        Tracker(fake_backend.config(tracker={"min_confidence_beside_hand": 1.5}))


# -- the presence threshold --------------------------------------------------------------------
def _with_presence_threshold(manifest, value):
    data = json.loads(manifest.read_text())
    data["models"]["landmark"]["presence_threshold"] = value
    manifest.write_text(json.dumps(data))


def test_the_presence_threshold_is_the_landmark_models_own_unless_configured(fake_backend):
    """A presence head's scale belongs to its model, so by default the tracker keeps a hand at the
    manifest's ``presence_threshold`` (0.8 when it gives none); ``min_presence_confidence`` overrides."""
    fake_backend.state["presence"] = 0.85
    with Tracker(fake_backend.config()) as t:
        assert t.min_presence_confidence == 0.8
        assert len(t.detect(fake_backend.frame())) == 1
    _with_presence_threshold(fake_backend.manifest, 0.9)
    with Tracker(fake_backend.config()) as t:
        assert t.min_presence_confidence == 0.9
        assert t.detect(fake_backend.frame()) == []
        assert t.process(fake_backend.frame()).hands == []
    with Tracker(fake_backend.config(tracker={"max_hands": 1, "min_presence_confidence": 0.5})) as t:
        assert t.min_presence_confidence == 0.5
        assert [h.score for h in t.detect(fake_backend.frame())] == [pytest.approx(0.85)]


def test_a_whole_pipeline_backend_is_not_held_to_our_models_presence_scale(fake_backend, register_plugin):
    """A backend that runs its own detect+landmark pipeline (the mediapipe baseline) reports its own
    score, already thresholded there: by default every hand it finds is kept; a configured
    ``min_presence_confidence`` still applies to it."""
    class Pipeline:
        name, device, runs_whole_pipeline = "pipeline", "cpu", True

        def load(self, spec, variant="fp32"):
            return None

        def find_hands(self, rgb, still):
            lm = fake_hand(False) * np.array([32, 32, 32], np.float32) + np.array([16, 16, 0], np.float32)
            return [{"landmarks": lm, "confidence": np.ones(21, np.float32), "presence": 0.3, "right": 0.9}]

    class Plugin:
        @hookimpl
        def handsdk_register_backends(self, register):
            register("pipeline", lambda: Pipeline())

    register_plugin(Plugin(), "test-pipeline-backend")
    _with_presence_threshold(fake_backend.manifest, 0.9)
    with Tracker(fake_backend.config(backend={"name": "pipeline"})) as t:
        assert t.min_presence_confidence == 0.0
        assert len(t.detect(fake_backend.frame())) == 1
    with Tracker(fake_backend.config(backend={"name": "pipeline"},
                                     tracker={"max_hands": 1, "min_presence_confidence": 0.5})) as t:
        assert t.detect(fake_backend.frame()) == []


def test_two_touching_hands_are_two_hands_and_a_second_reading_of_one_is_not():
    """``_dedupe`` keeps a second hand right beside the first, even with all its points inside
    the first one's crop (a signer's hands together), and drops what lies on the first hand: a
    reading a few pixels off it, or a smaller reading inside its box."""
    from handsdk.geometry import image_points_to_crop, rect_from_landmarks
    from handsdk.tracker import TWIN_BOX_OVERLAP

    first = fake_hand(False) * 200 + 100  # image pixels
    width = float(np.ptp(first[:, 0]))

    def reading(lm, presence):
        return {"landmarks": lm.astype(np.float32), "presence": presence, "rect": rect_from_landmarks(lm, 1.5)}

    beside = first.copy()
    beside[:, 0] += width * 1.05  # touching, side by side
    inside = image_points_to_crop(beside, rect_from_landmarks(first, 1.5))[:, :2]
    assert ((inside > 0) & (inside < 1)).all(1).mean() > 0.6  # what used to make it a twin
    kept = Tracker._dedupe([reading(first, 1.0), reading(beside, 0.95)])
    assert len(kept) == 2

    nudged = first + np.float32([0.04 * width, 0.0, 0.0])
    centre = first[:, :2].mean(0)
    small = first.copy()
    small[:, :2] = centre + (first[:, :2] - centre) * 0.5  # a reading of part of the hand
    for twin in (nudged, small):
        kept = Tracker._dedupe([reading(first, 1.0), reading(twin, 0.99)])
        assert len(kept) == 1 and kept[0]["presence"] == 1.0
    assert 0 < TWIN_BOX_OVERLAP < 1
