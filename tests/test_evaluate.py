"""``handsdk eval`` (handsdk.evaluate): reference formats and their errors, the metrics'
arithmetic, and whole runs on rendered hands whose landmarks are known exactly."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from handsdk import Tracker
from handsdk import evaluate as ev
from handsdk.cli import main as cli_main
from handsdk.errors import ConfigError
from handsdk.synthetic import render_sample, synthetic_clip

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, list[tuple[str, np.ndarray]]]:
    """Eight rendered one-hand photos (PNG) and their exact landmarks."""
    folder = tmp_path_factory.mktemp("rendered")
    rng = np.random.default_rng(11)
    items = []
    for i in range(8):
        img, hands, _ = render_sample(rng, size=256, n_hands=1)
        name = f"hand{i}.png"
        cv2.imwrite(str(folder / name), img)
        items.append((name, np.asarray(hands[0], np.float32)))
    return folder, items


def _jsonl(folder: Path, items, name: str = "ref.jsonl") -> Path:
    path = folder / name
    path.write_text("".join(json.dumps({"path": n, "landmarks": lm.tolist()}) + "\n" for n, lm in items))
    return path


def _coco(folder: Path, items) -> Path:
    path = folder / "coco.json"
    images = [{"id": i, "file_name": n} for i, (n, _) in enumerate(items)]
    anns = [{"id": 100 + i, "image_id": i,
             "keypoints": np.concatenate([lm[:, :2], np.full((21, 1), 2.0)], 1).ravel().tolist()}
            for i, (_, lm) in enumerate(items)]
    path.write_text(json.dumps({"images": images, "annotations": anns}))
    return path


def test_the_three_reference_formats_agree(rendered, tmp_path):
    folder, items = rendered
    side = tmp_path / "sidecars"
    side.mkdir()
    for n, lm in items:
        (side / n).write_bytes((folder / n).read_bytes())
        (side / n).with_suffix(".json").write_text(json.dumps({"landmarks": lm[:, :2].tolist()}))
    loaded = [ev.load_references(p) for p in (_jsonl(folder, items), _coco(folder, items), side)]
    for samples in loaded:
        assert [s.image_path.name for s in samples] == [n for n, _ in items]
        assert all(s.image_path.is_file() for s in samples)  # relative paths: beside the file
        for s, (_, lm) in zip(samples, items, strict=True):
            np.testing.assert_allclose(s.landmarks[:, :2], lm[:, :2], atol=1e-4)


@pytest.mark.parametrize(("content", "suffix", "match"), [
    ('{"path": "a.png", "landmarks": [[1, 2]]}\n', ".jsonl", r"ref\.jsonl:1: 'landmarks' must be 21"),
    ('{"path": "a.png"}\n', ".jsonl", "needs 'path' and 'landmarks'"),
    ("{not json\n", ".jsonl", r"ref\.jsonl:1: not valid JSON"),
    ("\n\n", ".jsonl", "no records"),
    ('{"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"id": 5, "image_id": 1, '
     '"keypoints": [0, 0, 2]}]}', ".json", "annotation 5 has 1 keypoints, expected 21"),
    ('{"images": [], "annotations": [{"id": 5, "image_id": 9, "keypoints": ' + json.dumps([0] * 63)
     + "}]}", ".json", "image_id 9"),
    ('{"frames": []}', ".json", "expected a .jsonl"),
    ("[1, 2", ".json", "not valid JSON"),
])
def test_broken_references_are_config_errors(tmp_path, content, suffix, match):
    path = tmp_path / f"ref{suffix}"
    path.write_text(content)
    with pytest.raises(ConfigError, match=match):
        ev.load_references(path)


def test_missing_reference_and_empty_folder(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        ev.load_references(tmp_path / "nope.jsonl")
    with pytest.raises(ConfigError, match="no images with a <stem>.json"):
        ev.load_references(tmp_path)


def test_scores_arithmetic():
    ref = np.zeros((21, 2), np.float32)
    ref[:, 0] = np.linspace(0, 100, 21)  # hand scale 100 px
    sc = ev.Scores("x")
    pred = ref.copy()
    pred[:10, 1] += 5.0  # 0.05: within PCK@0.1
    pred[10:, 1] += 15.0  # 0.15: within PCK@0.2 only
    sc.add(pred, ref, confidence=np.r_[np.full(10, 0.9), np.full(11, 0.2)])
    sc.add(None, ref)  # not found
    out = sc.summary()
    assert out["n"] == 2 and out["detection_rate"] == 0.5
    assert out["pck10"] == pytest.approx(10 / 21) and out["pck20"] == 1.0
    assert out["epe_px"] == pytest.approx((10 * 5 + 11 * 15) / 21)
    assert out["conf_auroc"] == 1.0  # every correct point is more confident than every wrong one
    assert out["conf_mean_correct"] == pytest.approx(0.9) and out["conf_mean_wrong"] == pytest.approx(0.2)
    found, missed = sc.subset([0]).summary(), sc.subset([1]).summary()
    assert found["n"] == 1 and found["detection_rate"] == 1.0 and found["conf_auroc"] == 1.0
    assert missed == {"n": 1, "detection_rate": 0.0}


def test_unlabelled_keypoints_count_nowhere():
    """Human annotation leaves hidden keypoints out: they score neither right nor wrong, and
    the hand's size comes from the labelled ones."""
    ref = np.zeros((21, 2), np.float32)
    ref[:, 0] = np.linspace(0, 100, 21)
    pred = ref.copy()
    pred[:10, 1] += 5.0  # 5 / 70: within PCK@0.1
    pred[10:, 1] += 12.0  # 12 / 70: within PCK@0.2 only
    partial = ref.copy()
    partial[15:] = np.nan  # six keypoints not labelled: the labelled box is 70 px wide
    sc = ev.Scores("x")
    sc.add(pred, partial, confidence=np.r_[np.full(10, 0.9), np.full(11, 0.2)])
    out = sc.summary()
    assert out["pck10"] == pytest.approx(10 / 15) and out["pck20"] == 1.0
    assert out["epe_px"] == pytest.approx((10 * 5 + 5 * 12) / 15)
    assert out["pck10_joint"][:15] == [1.0] * 10 + [0.0] * 5 and out["pck10_joint"][15:] == [None] * 6
    assert out["conf_auroc"] == 1.0
    assert ev._best_match([pred], partial) is pred


def test_references_mark_unlabelled_keypoints(tmp_path):
    lm = np.tile(np.arange(21, dtype=np.float32)[:, None] * 10, (1, 2))
    coco_kp = np.concatenate([lm, np.full((21, 1), 2.0)], 1)
    coco_kp[[4, 8], :] = 0.0  # COCO: x = y = v = 0 where not labelled
    (tmp_path / "coco.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png"}],
        "annotations": [{"id": 1, "image_id": 1, "keypoints": coco_kp.ravel().tolist()}]}))
    rows = [{"path": "a.png", "landmarks": [None if j in (4, 8) else p for j, p in enumerate(lm.tolist())]},
            {"path": "a.png", "landmarks": lm.tolist(), "visible": [j not in (4, 8) for j in range(21)]}]
    (tmp_path / "ref.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    folder = tmp_path / "sidecars"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (folder / "a.json").write_text(json.dumps({k: v for k, v in rows[1].items() if k != "path"}))
    samples = [*ev.load_references(tmp_path / "coco.json"), *ev.load_references(tmp_path / "ref.jsonl"),
               *ev.load_references(folder)]
    assert len(samples) == 4
    for sample in samples:
        assert list(np.flatnonzero(~ev.labelled(sample.landmarks))) == [4, 8]
        assert np.array_equal(sample.landmarks[ev.labelled(sample.landmarks)], np.delete(lm, [4, 8], 0))
    with pytest.raises(ConfigError, match="'visible' must list 21 flags"):
        ev._landmarks(lm.tolist(), "x", visible=[1, 0])
    xyz = [[*p, 1.0] for p in lm.tolist()]  # 3-D points (the pseudo-labels' form) with nulls
    xyz[4], xyz[8] = None, [None, None, None]
    assert list(np.flatnonzero(~ev.labelled(ev._landmarks(xyz, "x")))) == [4, 8]


def test_partially_labelled_hands_are_scored_and_empty_ones_skipped(bundled_models, rendered, capsys):
    folder, items = rendered
    samples = ev.load_references(_jsonl(folder, items))
    for s in samples:
        s.landmarks[[4, 8, 12, 16, 20]] = np.nan  # the fingertips left out
    empty = ev.Sample(samples[0].image_path, np.full((21, 2), np.nan, np.float32))
    res = ev.evaluate_images(samples + [empty], Tracker({"tracker": {"max_hands": 1}}))
    crop, e2e = res["handsdk_crop"], res["handsdk_e2e"]
    assert crop["n"] == 8 and crop["too_few_keypoints"] == 1 and "fewer than 6" in capsys.readouterr().err
    # as good as on the fully labelled hands (PCK@0.2 > 0.75 there); (0, 0) points would sink it
    assert crop["pck20"] > 0.75 and e2e["detection_rate"] >= 7 / 8 and e2e["pck20"] > 0.75
    assert [crop["pck10_joint"][j] for j in (4, 8, 12, 16, 20)] == [None] * 5


def test_evaluate_images_breaks_a_mixed_reference_down_by_dataset(bundled_models, rendered, tmp_path):
    folder, items = rendered
    samples = ev.load_references(_jsonl(folder, items))
    for i, s in enumerate(samples):
        s.meta["dataset"] = "odd" if i % 2 else "even"
    samples[0].landmarks = samples[0].landmarks + 1000.0  # nowhere near the hand: misses in "even" only
    res = ev.evaluate_images(samples, Tracker({"tracker": {"max_hands": 1}}))
    crop = res["handsdk_crop"]
    parts = crop["by_dataset"]
    assert set(parts) == {"even", "odd"} and parts["even"]["n"] + parts["odd"]["n"] == crop["n"] == 8
    assert parts["odd"]["pck10"] > parts["even"]["pck10"]
    # the whole is the samples' average of its parts
    assert crop["pck10"] == pytest.approx((parts["even"]["pck10"] * 4 + parts["odd"]["pck10"] * 4) / 8)
    e2e = res["handsdk_e2e"]
    assert sum(e2e["by_dataset"][d]["hand_free_images"] for d in ("even", "odd")) == e2e["hand_free_images"]
    table = ev.format_table(res)
    assert "| handsdk_crop · odd |" in table and "| handsdk_e2e · even |" in table
    single = ev.evaluate_images(samples[1::2], Tracker({"tracker": {"max_hands": 1}}))
    assert "by_dataset" not in single["handsdk_crop"]  # one dataset: nothing to break down


def test_per_photo_records_add_up_to_the_summary(bundled_models, rendered):
    folder, items = rendered
    samples = ev.load_references(_jsonl(folder, items))
    samples[0].landmarks = samples[0].landmarks + 1000.0  # a miss, on the record of that photo
    records: list[dict] = []
    res = ev.evaluate_images(samples, Tracker({"tracker": {"max_hands": 1}}), per_photo=records)
    assert [r["image"] for r in records] == [str(s.image_path) for s in samples]
    crop = [r["handsdk_crop"]["pck10"] for r in records]
    assert crop[0] == 0.0 and np.mean(crop) == pytest.approx(res["handsdk_crop"]["pck10"])  # all 21 labelled
    found = [r["handsdk_e2e"]["pck10"] is not None for r in records]
    assert np.mean(found) == pytest.approx(res["handsdk_e2e"]["detection_rate"])
    strips = [r["handsdk_e2e"]["false_pos"] for r in records if r["handsdk_e2e"]["false_pos"] is not None]
    assert len(strips) == res["handsdk_e2e"]["hand_free_images"]


def _two_hand_references(folder, others_of) -> list:
    """Rendered two-hand photos labelled with their first hand; ``others_of(i, second_hand)`` gives
    line i's ``others`` (None: the line has no such field)."""
    rng = np.random.default_rng(4)
    lines = []
    for i in range(len(others_of)):
        img, hands, _ = render_sample(rng, size=256, n_hands=2)
        cv2.imwrite(str(folder / f"two{i}.png"), img)
        rec = {"path": f"two{i}.png", "landmarks": np.asarray(hands[0]).tolist()}
        others = others_of[i](np.asarray(hands[1]).tolist())
        if others is not None:
            rec["others"] = others
        lines.append(json.dumps(rec) + "\n")
    (folder / "ref.jsonl").write_text("".join(lines))
    return ev.load_references(folder / "ref.jsonl")


def test_both_found_scores_the_photos_whose_reference_lists_other_hands(bundled_models, tmp_path):
    """``others`` in a reference line: ``both_found`` is the share of those photos where every hand
    was found — all of them with two hands allowed, none with one; photos without others (and
    malformed others) are not counted."""
    samples = _two_hand_references(tmp_path, [lambda h: [h, [[1, 2]]], lambda h: [h], lambda h: [h],
                                              lambda h: None])
    records: list[dict] = []
    two = ev.evaluate_images(samples, Tracker({"tracker": {"max_hands": 2}}), per_photo=records)["handsdk_e2e"]
    assert two["two_hand_images"] == 3 and two["both_found"] == 1.0
    assert [r["handsdk_e2e"]["both_found"] for r in records] == [True, True, True, None]
    one = ev.evaluate_images(samples, Tracker({"tracker": {"max_hands": 1}}))["handsdk_e2e"]
    assert one["two_hand_images"] == 3 and one["both_found"] == 0.0
    assert "both_found" in ev.format_table({"handsdk_e2e": two})


def test_extra_hands_counts_a_hand_on_none_of_the_listed_ones(bundled_models, tmp_path):
    """``extra_hands``: on a photo whose reference line has ``others``, whether a hand is reported
    on none of the listed hands — a second hand left out of ``others`` is one; with it listed there
    is none; a line without ``others`` is not counted."""
    # the second line: the teacher listed no other hand, so the second one is unexpected
    samples = _two_hand_references(tmp_path, [lambda h: [h], lambda h: [], lambda h: None])
    records: list[dict] = []
    two = ev.evaluate_images(samples, Tracker({"tracker": {"max_hands": 2}}), per_photo=records)["handsdk_e2e"]
    assert [r["handsdk_e2e"]["extra_hands"] for r in records] == [False, True, None]
    assert two["listed_images"] == 2 and two["extra_hands"] == 0.5
    assert "extra_hands" in ev.format_table({"handsdk_e2e": two})


def test_compare_evals_marks_only_differences_beyond_the_choice_of_photos(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare_evals", ROOT / "scripts" / "compare_evals.py")
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    rng = np.random.default_rng(0)

    def write(name, crop):
        lines = [json.dumps({"image": f"{i}.jpg", "dataset": "d", "handsdk_crop": {"pck10": float(c), "rel": 0.05},
                             "handsdk_e2e": {"pck10": float(c), "rel": 0.05, "false_pos": False}})
                 for i, c in enumerate(crop)]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        return str(tmp_path / name)

    base = rng.uniform(0.5, 1.0, 200)
    a = write("a.jsonl", base)
    assert compare.main([a, write("same.jsonl", base)]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if "crop pck10" in r]
    assert rows and all("+0.000 [+0.000, +0.000] |" in r for r in rows)
    assert compare.main([a, write("better.jsonl", np.minimum(base + 0.05, 1.0))]) == 0
    assert "| d | crop pck10 | 200 |" in (out := capsys.readouterr().out) and "] * |" in out
    wobble = np.resize([0.02, -0.02], 200)  # per-photo changes that cancel out: no difference to mark
    assert compare.main([a, write("wobble.jsonl", base + wobble)]) == 0
    row = next(r for r in capsys.readouterr().out.splitlines() if r.startswith("| d | crop pck10"))
    assert "0.000 [" in row and not row.endswith("* |")


def test_confidence_calibration():
    ok = np.array([1, 1, 0, 0], bool)
    assert ev.confidence_calibration(np.array([0.9, 0.8, 0.2, 0.1]), ok)["conf_auroc"] == 1.0
    assert ev.confidence_calibration(np.array([0.1, 0.2, 0.8, 0.9]), ok)["conf_auroc"] == 0.0
    assert ev.confidence_calibration(np.full(4, 0.5), ok)["conf_auroc"] == 0.5  # ties: chance
    assert ev.confidence_calibration(np.array([0.9, 0.3, 0.5, 0.1]), ok)["conf_auroc"] == 0.75
    assert ev.confidence_calibration(np.ones(3), np.ones(3, bool)) == {}


def test_evaluate_images_on_rendered_hands(bundled_models, rendered, tmp_path, capsys):
    folder, items = rendered
    samples = ev.load_references(_jsonl(folder, items))
    samples.append(ev.Sample(tmp_path / "missing.png", items[0][1]))
    res = ev.evaluate_images(samples, Tracker({"tracker": {"max_hands": 1}}))
    assert set(res) == {"handsdk_crop", "handsdk_e2e"}
    crop, e2e = res["handsdk_crop"], res["handsdk_e2e"]
    assert crop["n"] == 8 and crop["unreadable"] == 1 and "could not be read" in capsys.readouterr().err
    # rendered hands at any roll and scale are harder than the real photos (measured: PCK@0.2
    # 0.88, EPE 8.5 % of the hand); a coordinate mix-up anywhere would put these near 0
    assert crop["detection_rate"] == 1.0 and crop["pck20"] > 0.75 and crop["epe_rel"] < 0.12
    assert e2e["detection_rate"] >= 7 / 8 and e2e["pck20"] > 0.75
    assert 0.5 < crop["conf_auroc"] <= 1.0 and len(crop["pck10_joint"]) == 21
    with pytest.raises(ConfigError, match="none of the 1 reference images"):
        ev.evaluate_images(samples[-1:], Tracker())


def test_evaluate_video_on_a_rendered_clip(bundled_models, tmp_path, caplog):
    frames = list(synthetic_clip(24, size=(320, 240), seed=5, n_hands=1))
    video = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25, (320, 240))
    for f in frames:
        w.write(f.image)
    w.release()
    ref = tmp_path / "clip.json"
    ref.write_text(json.dumps([f.landmarks[0].tolist() for f in frames]))
    res = ev.evaluate_video(video, ref, Tracker({"tracker": {"max_hands": 1}}))["handsdk"]
    assert res["n"] == 24 and res["detection_rate"] == 1.0
    assert res["pck20"] > 0.85 and res["epe_rel"] < 0.1
    # a reference shorter than the video, with frames left unreferenced: every frame is tracked,
    # only referenced ones are scored, and the length mismatch is said
    short = tmp_path / "short.json"
    short.write_text(json.dumps([[] if i % 2 else f.landmarks[0].tolist() for i, f in enumerate(frames[:20])]))
    tracker = Tracker({"tracker": {"max_hands": 1}})
    with caplog.at_level(logging.WARNING, logger="handsdk.evaluate"):
        res = ev.evaluate_video(video, short, tracker)["handsdk"]
    assert res["n"] == 10 and tracker.stats["frames"] == 20
    assert "has 24 frames but" in caplog.text and "has 20 per-frame references" in caplog.text


@pytest.mark.parametrize(("content", "match"), [
    ("{not json", "cannot be read"),
    ('{"frames": []}', "is a dict"),
    ("[[[1, 2]]]", "frame 0"),
    ("[" + json.dumps([[0.0] * 4] * 21) + "]", "4 values per point"),
])
def test_a_bad_video_reference_is_a_config_error(tmp_path, content, match):
    ref = tmp_path / "ref.json"
    ref.write_text(content)
    with pytest.raises(ConfigError, match=match) as info:
        ev.evaluate_video(tmp_path / "clip.mp4", ref, tracker=None)
    assert "one entry per frame" in str(info.value)


def test_a_video_reference_may_leave_keypoints_out(tmp_path):
    pts = [[float(i), 2.0 * i] for i in range(21)]
    pts[8] = None
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps([pts, [], [pts]]))  # a hand, no hand, a list of hands
    a, none, b = ev._video_reference(ref)
    assert none.size == 0
    for r in (a, b):
        assert list(np.flatnonzero(~ev.labelled(r))) == [8] and r.shape == (21, 2)


def test_video_frames_are_timed_at_the_file_frame_rate(tmp_path):
    video = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 64))
    for _ in range(3):
        w.write(np.zeros((64, 64, 3), np.uint8))
    w.release()
    assert ev.video_fps(video) == pytest.approx(10.0)
    assert ev.video_fps(tmp_path / "missing.mp4", default=30.0) == 30.0


def test_cli_perturbations_are_the_evaluators(capsys):
    with pytest.raises(SystemExit):
        cli_main(["eval", "--perturb", "nope"])
    err = capsys.readouterr().err
    listed = err.split("choose from ")[1].split(")")[0].replace("'", "").split(", ")
    assert listed == list(ev.PERTURBATIONS)


def test_cli(bundled_models, rendered, tmp_path, capsys):
    folder, items = rendered
    out = tmp_path / "res.json"
    code = cli_main(["eval", "--images", str(_coco(folder, items[:3])), "--no-mediapipe", "--out", str(out)])
    assert code == 0 and "| handsdk_crop | 3 |" in capsys.readouterr().out
    assert json.loads(out.read_text())["handsdk_e2e"]["n"] == 3
    assert cli_main(["eval", "--video", "x.mp4"]) == 2 and "--reference" in capsys.readouterr().err
    assert cli_main(["eval"]) == 2
    # filters that leave nothing are an error naming what the file holds, not a table of zeros
    assert cli_main(["eval", "--images", str(_jsonl(folder, items[:2])), "--no-mediapipe", "--datasets", "nope"]) == 2
    assert "nothing to score: none of the 2 references" in capsys.readouterr().err


def test_hand_free_region():
    from handsdk.geometry import hand_free_region

    lm = np.zeros((21, 2))
    lm[:, 0] = np.linspace(20, 80, 21)
    lm[:, 1] = np.linspace(40, 100, 21)
    # a 400 x 150 image with the hand at its left: the strip right of the grown box
    x0, y0, x1, y1 = hand_free_region((400, 150), lm)
    assert (y0, x1, y1) == (0, 400, 150) and x0 == 80 + int(np.ceil(0.35 * 60))
    assert hand_free_region((110, 150), lm) is None  # the hand fills the photo


def test_false_positives_on_hand_free_strips(bundled_models, tmp_path):
    """A rendered hand at the left of a wide photo: its reference leaves a hand-free strip on
    the right, which the end-to-end entry scores for false positives."""
    rng = np.random.default_rng(4)
    img, hands, _ = render_sample(rng, size=256, n_hands=1)
    from handsdk.synthetic import random_background

    wide = random_background(256, 640, rng)
    wide[:, :256] = img
    cv2.imwrite(str(tmp_path / "wide.png"), wide)
    samples = ev.load_references(_jsonl(tmp_path, [("wide.png", np.asarray(hands[0], np.float32))]))
    e2e = ev.evaluate_images(samples, Tracker())["handsdk_e2e"]
    assert e2e["hand_free_images"] == 1 and e2e["false_pos"] == 0.0
    assert "false_pos" in ev.format_table({"handsdk_e2e": e2e})
    samples[0].meta["hand_free"] = None  # the labels' teacher saw a hand on that strip: not scored
    unverified = ev.evaluate_images(samples, Tracker())["handsdk_e2e"]
    assert unverified["hand_free_images"] == 0 and unverified["false_pos"] is None
    samples[0].meta["hand_free"] = [256, 0, 640, 256]  # verified: scored as before
    assert ev.evaluate_images(samples, Tracker())["handsdk_e2e"]["hand_free_images"] == 1


@pytest.mark.parametrize("name", ["small", "tight", "rot90"])
def test_geometric_perturbations_move_the_reference_with_the_pixels(name):
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)  # every pixel tells where it came from
    ref = np.stack([rng.integers(40, 120, 21), rng.integers(30, 90, 21), rng.normal(0, 5, 21)], 1).astype(np.float32)
    out, moved = ev.perturb_sample(name, img, ref, index=7)
    assert moved.shape == ref.shape and np.allclose(moved[:, 2], ref[:, 2])
    xy = np.rint(moved[:, :2]).astype(int)
    assert (xy >= 0).all() and (xy[:, 0] < out.shape[1]).all() and (xy[:, 1] < out.shape[0]).all()
    src = np.rint(ref[:, :2]).astype(int)
    assert np.array_equal(out[xy[:, 1], xy[:, 0]], img[src[:, 1], src[:, 0]])
    again, _ = ev.perturb_sample(name, img, ref, index=7)
    assert np.array_equal(out, again)  # seeded by the sample's index: runs repeat


def test_photometric_perturbations_keep_the_reference():
    rng = np.random.default_rng(4)
    img = cv2.GaussianBlur(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8), (0, 0), 1.0)
    ref = np.stack([np.linspace(20, 70, 21), np.linspace(10, 80, 21)], 1).astype(np.float32)
    dark, same = ev.perturb_sample("dark", img, ref, 0)
    assert np.array_equal(same, ref) and dark.mean() < 0.6 * img.mean()
    blur, same = ev.perturb_sample("blur", img, ref, 0)
    detail = lambda x: np.abs(np.diff(x.astype(np.float32), axis=1)).mean()  # noqa: E731
    assert np.array_equal(same, ref) and detail(blur) < 0.7 * detail(img)
    assert ev.perturb_sample("tight", img, np.full((21, 2), 5, np.float32), 0) is None  # nothing to crop
    with pytest.raises(ConfigError, match="unknown perturbation 'fog'; accepted: small, tight"):
        ev.perturb_sample("fog", img, ref, 0)


def test_evaluate_perturbed_rendered_hands(bundled_models, rendered, capsys):
    folder, items = rendered
    samples = ev.load_references(_jsonl(folder, items))
    tracker = Tracker({"tracker": {"max_hands": 1}})
    res = ev.evaluate_images(samples, tracker, perturb="rot90")
    # a turned photo is no harder for a tracker that aligns its crops (rendered, PCK@0.2 > 0.75 as above)
    assert res["handsdk_crop"]["n"] == 8 and res["handsdk_e2e"]["detection_rate"] >= 7 / 8
    assert res["handsdk_e2e"]["pck20"] > 0.75
    with pytest.raises(ConfigError, match="unknown perturbation"):
        ev.evaluate_images(samples, tracker, perturb="fog")
    assert cli_main(["eval", "--images", str(_jsonl(folder, items[:2])), "--no-mediapipe",
                     "--perturb", "small"]) == 0
    assert "| handsdk_e2e | 2 |" in capsys.readouterr().out


def test_cli_offers_every_perturbation(capsys):
    with pytest.raises(SystemExit):
        cli_main(["eval", "--help"])
    assert "{" + ",".join(ev.PERTURBATIONS) + "}" in capsys.readouterr().out


def test_gross_failures_are_photos_whose_mean_error_passes_a_fifth_of_the_hand():
    from handsdk.evaluate import Scores

    ref = np.zeros((21, 3))
    ref[:, 0] = np.linspace(0, 100, 21)  # a hand 100 px across
    ref[:, 1] = np.linspace(0, 100, 21)
    scores = Scores("m")
    for shift in (5.0, 10.0, 30.0, 50.0):  # mean errors of 0.05, 0.1, 0.3, 0.5 hand sizes (size ~100)
        scores.add(ref + [shift, 0, 0], ref)
    scores.add(None, ref)  # not found: counts in detection, not in gross
    s = scores.summary()
    size = scores.scales[0]
    assert s["gross"] == pytest.approx(np.mean([d / size > 0.2 for d in (5, 10, 30, 50)]))
    assert s["gross"] == 0.5 and s["median_rel"] == pytest.approx(20 / size)


def test_handshape_scores_read_depth():
    """``flex_err`` and ``finger_state`` compare finger flexion in 3D: a landmark set that is
    right in x and y but reads the pointing index bent through its depth scores perfect PCK and
    a wrong finger; a reference without depth is not scored for handshape."""
    from handsdk.synthetic import HandPose, hand_landmarks_3d

    ref = hand_landmarks_3d(HandPose.gesture("point_up")).astype(np.float64) * 100.0
    bent = ref.copy()
    bent[7, 2] += 30.0  # the index's DIP pushed toward the camera: x, y unchanged
    sc = ev.Scores("x")
    sc.add(ref.copy(), ref)
    sc.add(bent, ref)
    exact, depth_wrong = sc.subset([0]).summary(), sc.subset([1]).summary()
    assert exact["flex_err"] == pytest.approx(0.0, abs=1e-6) and exact["finger_state"] == 1.0
    assert depth_wrong["pck10"] == 1.0
    assert depth_wrong["finger_state"] == pytest.approx(4 / 5) and depth_wrong["flex_err"] > 10.0
    assert sc.flex_error(1) == pytest.approx(depth_wrong["flex_err"])
    flat = ev.Scores("x")
    flat.add(ref[:, :2].copy(), ref[:, :2])
    assert "flex_err" not in flat.summary() and flat.flex_error(0) is None
