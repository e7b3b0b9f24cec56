"""The training entry points run on a CPU, checkpoint, resume, and export models the tracker loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from handsdk import Tracker  # noqa: E402
from handsdk.synthetic import synthetic_clip  # noqa: E402
from handsdk.train import detector, export, landmark, soup  # noqa: E402


def test_train_resume_and_export(tmp_path):
    lm_dir, det_dir = tmp_path / "lm", tmp_path / "det"
    common = ["--synthetic", "24", "--batch", "4", "--val-every", "1000"]
    assert landmark.main(["--workdir", str(lm_dir), "--minutes", "0.05", "--input-size", "128", *common]) == 0
    first = [json.loads(x) for x in (lm_dir / "metrics.jsonl").read_text().splitlines()]
    assert (lm_dir / "best.pt").exists() and (lm_dir / "curves.png").exists()
    assert {"pck10", "epe_px", "step"} <= first[-1].keys()
    assert landmark.main(["--workdir", str(lm_dir), "--minutes", "0.1", "--input-size", "128", "--resume",
                          *common]) == 0
    rows = [json.loads(x) for x in (lm_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] > first[-1]["step"] and rows[-1]["elapsed_s"] > first[-1]["elapsed_s"]
    assert detector.main(["--workdir", str(det_dir), "--minutes", "0.05", "--input-size", "160", *common]) == 0
    det = [json.loads(x) for x in (det_dir / "metrics.jsonl").read_text().splitlines()][-1]
    # best.pt is picked on upright and quarter-turned held-out photos alike
    assert det["found"] == pytest.approx((det["found_upright"] + det["found_turned"]) / 2)
    assert {"angle_err_upright_deg", "angle_err_turned_deg"} <= det.keys()

    out = tmp_path / "models"
    assert export.main(["--landmark", str(lm_dir / "best.pt"), "--detector", str(det_dir / "best.pt"),
                        "--out", str(out), "--version", "0.2.0", "--presence-threshold", "0.85"]) == 0
    assert export.main(["--out", str(out)]) == 0  # re-exported from its own .pt files: version and threshold stay
    manifest = json.loads((out / "manifest.json").read_text())
    assert {m["version"] for m in manifest["models"].values()} == {"0.2.0"}
    assert manifest["models"]["landmark"]["presence_threshold"] == 0.85
    assert "presence_threshold" not in manifest["models"]["detector"]
    assert manifest["models"]["landmark"]["input_size"] == 128
    assert manifest["models"]["detector"]["input_size"] == 160  # exported at the size it was trained at
    assert {"onnx", "onnx_int8", "torch"} <= manifest["models"]["landmark"]["files"].keys()
    frame = next(iter(synthetic_clip(1))).image
    for cfg in ({}, {"backend": {"name": "torch"}}, {"models": {"variant": "int8"}}):
        cfg = {**cfg, "models": {**cfg.get("models", {}), "manifest": str(out / "manifest.json")}}
        with Tracker(cfg) as t:
            assert isinstance(t.detect(frame), list)  # an untrained model: runs, finds what it finds
            assert t.landmark_spec.input_size == 128 and t.detector_spec.input_size == 160
    # the bundled manifest is untouched
    assert not np.isnan(Tracker().detect(frame)[0].landmarks).any()
    shutil.rmtree(tmp_path)


def test_the_long_runs_recipe_loads_and_its_crop_budget_ends_the_run(tmp_path):
    """scripts/long_run.toml is what every sitting of issue #20's run reads: its keys are the
    trainer's options, and a budget in crops ends the run after exactly that many."""

    recipe = Path(__file__).resolve().parents[1] / "scripts" / "long_run.toml"
    work = tmp_path / "long"
    assert landmark.main(["--config", str(recipe), "--crops", "12", "--face-share", "0", "--workdir", str(work),
                          "--synthetic", "24", "--batch", "4", "--input-size", "128", "--val-every", "1000"]) == 0
    last = [json.loads(x) for x in (work / "metrics.jsonl").read_text().splitlines()][-1]
    assert (last["step"], last["crops"]) == (3, 12)


def test_a_wider_landmark_model_trains_exports_and_runs_in_each_backend(tmp_path):
    """``--width`` (issue #20's capacity lever): the width travels with the weights (checkpoint
    ``arch``, manifest), so export and the torch backend rebuild the wider network, not the
    default one (a width-1.0 model cannot load these weights)."""
    import torch

    from handsdk.models import bundled_models_dir
    from handsdk.nets import LandmarkNet, build

    work, out = tmp_path / "lm", tmp_path / "models"
    assert landmark.main(["--workdir", str(work), "--crops", "8", "--width", "1.5", "--input-size", "128",
                          "--synthetic", "24", "--batch", "4", "--val-every", "1000"]) == 0
    best = torch.load(work / "best.pt", map_location="cpu", weights_only=False)
    assert best["arch"] == {"class": "LandmarkNet", "input_size": 128, "width": 1.5}
    with pytest.raises(RuntimeError):
        LandmarkNet(128).load_state_dict(best["model"])
    build(best["arch"]).load_state_dict(best["model"])
    assert export.main(["--landmark", str(work / "best.pt"), "--detector", str(bundled_models_dir() / "detector.pt"),
                        "--out", str(out), "--version", "0.0.1"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"]["landmark"]["arch"]["width"] == 1.5
    assert manifest["models"]["detector"]["arch"]["width"] == 0.75
    frame = next(iter(synthetic_clip(1))).image
    for backend in ("onnxruntime", "torch"):
        with Tracker({"backend": {"name": backend}, "models": {"manifest": str(out / "manifest.json")}}) as t:
            assert isinstance(t.detect(frame), list)


def test_resuming_or_initialising_with_another_width_names_both(tmp_path):
    """A sitting whose options build another network than its last.pt (a recipe without the run's
    ``width``) stops before training, naming the saved width and the built one."""
    import torch

    from handsdk.nets import LandmarkNet
    from handsdk.train.loop import Trainer

    wide = LandmarkNet(64, width=1.5)
    torch.save({"model": wide.state_dict(), "arch": wide.arch}, tmp_path / "wide.pt")
    narrow = LandmarkNet(64)
    with pytest.raises(SystemExit, match=r"width 1.5, this run builds width 1.0"):
        Trainer(narrow, tmp_path / "run", 1, 1e-3, torch.device("cpu"), False, init=tmp_path / "wide.pt",
                arch=narrow.arch)
    old = {"model": narrow.state_dict(), "arch": {"input_size": 64}}  # saved before widths were recorded
    torch.save(old, tmp_path / "old.pt")
    Trainer(LandmarkNet(64), tmp_path / "run", 1, 1e-3, torch.device("cpu"), False, init=tmp_path / "old.pt",
            arch=narrow.arch)
    with pytest.raises(SystemExit, match=r"width 1.0, this run builds width 1.5"):
        Trainer(LandmarkNet(64, width=1.5), tmp_path / "run", 1, 1e-3, torch.device("cpu"), False,
                init=tmp_path / "old.pt", arch=wide.arch)


def test_a_checkpoint_without_a_width_is_the_width_every_earlier_model_had():
    """Checkpoints saved before ``arch`` held a width (every model up to 0.3.0) rebuild at the
    class's old default."""
    from handsdk.nets import build

    assert build({"class": "LandmarkNet", "input_size": 128}).width == 1.0
    assert build({"class": "DetectorNet", "input_size": 192}).width == 0.75
    with pytest.raises(ValueError, match="unknown network class"):
        build({"class": "ResNet", "input_size": 128})


def test_a_trainers_last_checkpoint_loads_its_ema_weights(tmp_path):
    """Export, soup and the presence re-fit take a run's last.pt as readily as its best.pt: both
    give the EMA weights the trainer validated, not the raw weights last.pt also keeps to resume."""
    import torch

    from handsdk.nets import LandmarkNet

    torch.manual_seed(0)
    raw, ema = LandmarkNet(128).state_dict(), LandmarkNet(128).state_dict()
    torch.save({"model": raw, "ema": ema, "opt": {}, "step": 7, "arch": {"input_size": 128}}, tmp_path / "last.pt")
    torch.save({"model": ema, "metrics": {"step": 7}, "arch": {"input_size": 128}}, tmp_path / "best.pt")
    for name in ("last.pt", "best.pt"):
        model, _ = export.load_checkpoint(tmp_path / name, "landmark")
        assert all(torch.equal(v, ema[k]) for k, v in model.state_dict().items()), name
    assert not all(torch.equal(raw[k], ema[k]) for k in raw)  # the test can tell them apart


def test_export_refuses_before_writing_anything(tmp_path, bundled_models, capsys):
    """A wrong checkpoint (missing, or the other model) or ``--tflite-only`` without litert-torch
    leaves the models folder exactly as it was, with a message naming the problem."""
    out = tmp_path / "models"
    shutil.copytree(bundled_models, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert export.main(["--landmark", str(tmp_path / "nope.pt"), "--out", str(out)]) == 2
    assert "landmark checkpoint" in capsys.readouterr().err
    assert export.main(["--landmark", str(out / "detector.pt"), "--detector", str(out / "landmark.pt"),
                        "--out", str(out)]) == 2
    assert "is not a landmark checkpoint" in capsys.readouterr().err
    if not export.tflite_exporter_available():
        assert export.main(["--tflite-only", "--out", str(out)]) == 2
        assert "needs litert-torch" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_background_replacement_keeps_the_hand_and_swaps_the_rest():
    import torch

    from handsdk.synthetic import render_sample
    from handsdk.train.augment import hand_masks, replace_background

    rng = np.random.default_rng(3)
    _, hands, _ = render_sample(rng, size=224, n_hands=1)
    xy = hands[0][None, :, :2] / 224.0  # crop-normalised
    mask = hand_masks(xy, 224)[0]
    px = np.clip(np.round(hands[0][:, :2]).astype(int), 0, 223)
    assert (mask[px[:, 1], px[:, 0]] > 0.9).all()  # every landmark is on the hand
    assert 0.03 < mask.mean() < 0.6  # a hand, not the whole crop

    x = torch.full((2, 3, 224, 224), 0.5)
    bank = torch.zeros(1, 3, 224, 224)
    out = replace_background(x, torch.from_numpy(np.repeat(xy, 2, 0)).float(), bank, p=1.0)
    m = torch.from_numpy(mask)
    assert torch.allclose(out[:, :, m > 0.99], x[:, :, m > 0.99], atol=0.01)  # the hand is kept
    assert (out[:, :, m < 0.01] < 0.006).all()  # the rest is the background
    assert torch.equal(replace_background(x, torch.from_numpy(np.repeat(xy, 2, 0)).float(), bank, p=0.0), x)


def test_batched_hand_masks_agree_with_the_drawn_ones():
    """The GPU trainer's tensor-maths masks cover the same hand as the CPU trainer's cv2 drawing."""
    import torch

    from handsdk.synthetic import render_sample
    from handsdk.train.augment import hand_masks, hand_masks_batched

    rng = np.random.default_rng(5)
    xy = np.stack([render_sample(rng, size=128, n_hands=1)[1][0][:, :2] / 128.0 for _ in range(6)])  # crop-normalised
    xy[1] = xy[1] * 0.6 + 0.2  # a smaller hand
    xy[2] = (xy[2] - 0.5) * 1.4 + 0.5  # a close-up cut by the crop's edge
    drawn = torch.from_numpy(hand_masks(xy.astype(np.float32), 224))  # the trainer's crop size
    batched = hand_masks_batched(torch.from_numpy(xy).float(), 224)
    assert batched.shape == drawn.shape
    a, b = drawn > 0.5, batched > 0.5
    iou = (a & b).sum((1, 2)).float() / (a | b).sum((1, 2)).float()
    assert (iou > 0.88).all(), iou
    assert float((drawn - batched).abs().mean()) < 0.04
    far = hand_masks_batched(torch.full((1, 21, 2), 0.1) + torch.rand(1, 21, 2) * 0.05, 128)
    assert float(far[0, 100:, 100:].max()) < 0.01  # nothing drawn away from the hand


def test_presence_refit_changes_only_the_presence_head(tmp_path, bundled_models):
    """``handsdk.train.presence`` on a tiny pack of rendered photos (hand on the left, a
    hand-free strip on the right): the landmark weights come out bit-identical, only the
    presence/handedness head is re-fitted, and the result loads in the tracker."""
    import cv2
    import torch

    from handsdk.geometry import hand_free_region
    from handsdk.synthetic import random_background, render_sample
    from handsdk.train import pack, presence

    rng = np.random.default_rng(2)
    lines = []
    for i in range(6):
        img, hands, handed = render_sample(rng, size=192, n_hands=1)
        wide = random_background(192, 480, rng)
        wide[:, :192] = img
        path = tmp_path / f"photo{i}.png"
        cv2.imwrite(str(path), wide)
        region = hand_free_region((480, 192), hands[0])
        lines.append(json.dumps({
            "path": str(path), "dataset": "sign_digits", "split": "valid" if i >= 4 else "train",
            "group": f"g{i}", "label": "x", "landmarks": np.asarray(hands[0]).tolist(),
            "right": 1.0 if handed[0] == "right" else 0.0, "hand_free": list(region) if region else None}))
    (tmp_path / "labels.jsonl").write_text("\n".join(lines) + "\n")
    pack.build_pack(tmp_path / "labels.jsonl", tmp_path / "pack.npz")
    out = tmp_path / "landmark.pt"
    assert presence.main(["--pack", str(tmp_path / "pack.npz"), "--out", str(out), "--rounds", "1",
                          "--synthetic", "0", "--epochs", "2", "--texture-frames", "2"]) == 0
    before = torch.load(bundled_models / "landmark.pt", map_location="cpu", weights_only=False)["model"]
    after = torch.load(out, map_location="cpu", weights_only=False)
    assert "presence_false_positive_rate" in after["metrics"]
    changed = {k for k, v in after["model"].items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("global_head.") for k in changed), changed
    exported = tmp_path / "models"
    assert export.main(["--landmark", str(out), "--detector", str(bundled_models / "detector.pt"),
                        "--out", str(exported)]) == 0
    frame = next(iter(synthetic_clip(1, seed=1))).image
    with Tracker({"models": {"manifest": str(exported / "manifest.json")}}) as t:
        assert isinstance(t.detect(frame), list)


def test_texture_proposals_are_hand_free_negatives(bundled_models):
    """``--texture-frames``: what the detector proposes on rendered hand-free frames joins the
    presence head's negatives (presence 0, full weight)."""
    from handsdk.train.presence import FeatureSet, add_texture_proposals

    model, _ = export.load_checkpoint(bundled_models / "landmark.pt", "landmark")
    fs = FeatureSet(model.eval())
    with Tracker({"tracker": {"min_detection_confidence": 0.05, "max_hands": 4}}) as t:
        add_texture_proposals(fs, t, (0.0, 3.14159), 5, seed=0)
    feats, presence, weight, _ = fs.tensors()
    assert len(feats) >= 10 and len(feats) % 2 == 0  # every proposal at both turns
    assert (presence == 0).all() and (weight == 1).all()


def test_hand_free_crops_stay_inside_their_strip():
    """``--hand-free-share`` crops are cut wholly inside each photo's hand-free strip: the hand's
    landmarks fall outside every such crop, whose presence target is 0 with full weight."""
    import torch

    from handsdk.train.augment import Canvas
    from handsdk.train.landmark import make_batch

    img = np.zeros((200, 400, 3), np.uint8)
    lm = np.zeros((21, 3), np.float32)
    lm[:, 0] = np.linspace(20, 120, 21)
    lm[:, 1] = np.linspace(40, 160, 21)
    canvas = Canvas([img] * 4, torch.device("cpu"))
    strip = torch.tensor([[170, 0, 400, 200]] * 3 + [[-1, -1, -1, -1]])
    lms, right = torch.from_numpy(np.stack([lm] * 4)), torch.ones(4)
    gen = torch.Generator().manual_seed(0)
    idx = torch.tensor([0, 1, 2, 3] * 16)
    _, t = make_batch(canvas, lms, right, idx, 64, True, neg_fraction=0.0, gen=gen,
                      hand_free=strip, hand_free_share=1.0)
    picked = idx < 3
    assert (t["presence"][picked] == 0).all() and (t["presence_w"][picked] == 1).all()
    outside = ((t["xy"][picked] < 0) | (t["xy"][picked] > 1)).any(-1)
    assert outside.all()
    assert (t["presence"][~picked] == 1).all()  # the photo without a strip keeps its hand crops


def test_face_crops_are_cut_on_the_face_and_taught_as_no_hand():
    """``--face-share``: crops of photos that have a face are cut on it (its middle at the crop's
    centre) and, with the hand elsewhere, are "no hand" at full weight; a photo without a face
    keeps its hand crops."""
    import torch

    from handsdk.train.augment import Canvas
    from handsdk.train.landmark import make_batch

    img = np.zeros((200, 400, 3), np.uint8)
    img[60:130, 280:340] = 255  # the face
    lm = np.zeros((21, 3), np.float32)
    lm[:, 0], lm[:, 1] = np.linspace(20, 120, 21), np.linspace(40, 160, 21)
    canvas = Canvas([img] * 2, torch.device("cpu"))
    faces = torch.full((2, 4, 4), float("nan"))
    faces[0, 0] = torch.tensor([280.0, 60.0, 340.0, 130.0])
    lms, right = torch.from_numpy(np.stack([lm] * 2)), torch.ones(2)
    idx = torch.tensor([0, 1] * 16)
    x, t = make_batch(canvas, lms, right, idx, 64, True, neg_fraction=0.0, gen=torch.Generator().manual_seed(0),
                      faces=faces, face_share=0.5)
    on_face = idx == 0
    assert (t["presence"][on_face] == 0).all() and (t["presence_w"][on_face] == 1).all()
    corners = x[on_face][:, [0, 0, -1, -1], [0, -1, 0, -1]].mean((1, 2))  # (any colour jitter aside)
    assert (x[on_face, 28:36, 28:36].mean((1, 2, 3)) > corners + 0.2).all()  # the face fills the middle
    assert (t["presence"][~on_face] == 1).all()
    _, off = make_batch(canvas, lms, right, idx, 64, True, neg_fraction=0.0, gen=torch.Generator().manual_seed(0),
                        faces=faces)
    assert (off["presence"] == 1).all()  # off by default


def test_detector_turn_share_turns_photo_framed_hands():
    """``--turn``: frames that keep the photo's framing are turned a quarter or half turn whole,
    so an upright hand also appears sideways and upside down — and stays inside the frame."""
    import torch

    from handsdk.train.augment import Canvas, background_bank, hand_frame
    from handsdk.train.detector import make_batch

    img = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    lm = np.zeros((21, 3), np.float32)
    lm[:, 0] = 100 + np.linspace(-30, 30, 21)
    lm[:, 1] = np.linspace(170, 40, 21)  # wrist at the bottom, fingers up
    lm[9, :2] = (100, 90)  # middle MCP straight above the wrist
    canvas = Canvas([img], torch.device("cpu"))
    lms = torch.from_numpy(lm[None])
    idx = torch.zeros(256, dtype=torch.long)
    bg = background_bank(96, n=4)

    def angles(turn: float):
        gen = torch.Generator().manual_seed(3)
        _, hands = make_batch(canvas, lms, idx, idx, bg, 96, gen=gen, full_circle=0.0, turn=turn)
        one = torch.isnan(hands[:, 1]).any(-1).any(-1)  # two-hand mosaics turn each hand anyway
        a, center, _ = hand_frame(hands[one, 0])
        assert ((center > -1) & (center < 97)).all()  # the hand stays in the frame
        return a.abs()

    upright, turned = angles(0.0), angles(1.0)
    assert (upright < 1.2).float().mean() > 0.97  # near upright without it (σ 0.35 rad re-framed)
    share = (turned > 1.2).float().mean()
    assert 0.2 < share < 0.45, share  # the photo-framed third, turned


def test_detector_face_frames_are_framed_on_the_face_and_keep_the_hands_they_show():
    """``--face-share``: frames of photos with a face are framed on it; a hand far from the face
    is out of those frames (no target), a hand held in front of the face stays a target inside
    the frame; photos without a face, or a share of 0, keep their hand frames."""
    import torch

    from handsdk.train.augment import Canvas, background_bank
    from handsdk.train.detector import make_batch

    img = np.zeros((200, 400, 3), np.uint8)
    img[60:130, 280:340] = 255  # the face
    far, front = np.zeros((21, 3), np.float32), np.zeros((21, 3), np.float32)
    far[:, 0], far[:, 1] = np.linspace(20, 120, 21), np.linspace(160, 40, 21)
    front[:, 0], front[:, 1] = np.linspace(290, 330, 21), np.linspace(125, 65, 21)
    canvas = Canvas([img] * 2, torch.device("cpu"))
    lms = torch.from_numpy(np.stack([far, front]))
    faces = torch.full((2, 4, 4), float("nan"))
    faces[:, 0] = torch.tensor([280.0, 60.0, 340.0, 130.0])
    bg = background_bank(64, n=4)

    def frames(idx, share, face_boxes=faces):
        _, hands = make_batch(canvas, lms, idx, idx, bg, 64, gen=torch.Generator().manual_seed(2),
                              min_frac=0.3, faces=face_boxes, face_share=share)
        single = torch.isnan(hands[:, 1:]).flatten(1).all(-1)  # two-hand mosaics are left as they are
        return hands[single]

    def no_target(hands):
        return torch.isnan(hands).all(-1).all(-1).all(-1)

    zeros, ones = torch.zeros(64, dtype=torch.long), torch.ones(64, dtype=torch.long)
    assert no_target(frames(zeros, 1.0)).all()  # framed on the face: the far hand is out of view
    held = frames(ones, 1.0)[:, 0]
    assert not torch.isnan(held).any() and ((held > 0) & (held < 64)).all()  # the hand on the face stays
    assert not no_target(frames(zeros, 0.0)).any()
    assert not no_target(frames(zeros, 1.0, torch.full((2, 4, 4), float("nan")))).any()


def test_detector_hand_free_frames_show_only_the_strip_and_no_hand():
    """``--hand-free-share``: a share of the detector's frames is cut wholly inside a photo's
    hand-free strip, turned any quarter turn, with no hand to find (an all-zero heatmap target)."""
    import torch

    from handsdk.train.augment import Canvas, background_bank
    from handsdk.train.detector import make_batch, strip_frames, targets

    img = np.zeros((200, 400, 3), np.uint8)
    img[:, 170:] = 200  # the strip; the hand lies left of it
    lm = np.zeros((21, 3), np.float32)
    lm[:, 0] = np.linspace(20, 120, 21)
    lm[:, 1] = np.linspace(160, 40, 21)
    canvas = Canvas([img], torch.device("cpu"))
    strip = torch.tensor([[170, 0, 400, 200]])
    gen = torch.Generator().manual_seed(0)
    idx = torch.zeros(64, dtype=torch.long)
    frames = strip_frames(canvas, idx, strip.expand(64, 4).float(), 48, gen)
    assert frames.min() > 0.7  # nothing from outside the strip (200 / 255 = 0.78 inside)
    held_out = strip_frames(canvas, idx[:1], strip.float(), 48, train=False)
    assert held_out.min() > 0.7

    bg = background_bank(48, n=4)
    lms = torch.from_numpy(lm[None])
    for share, lo, hi in ((0.0, 0.0, 0.0), (1.0, 0.55, 0.8)):
        _, hands = make_batch(canvas, lms, idx, idx, bg, 48, gen=torch.Generator().manual_seed(1),
                              hand_free=strip, free_idx=torch.tensor([0]), hand_free_share=share)
        empty = torch.isnan(hands).all(-1).all(-1).all(-1)
        assert lo <= empty.float().mean() <= hi  # every frame but the two-hand mosaics, or none
        heat, _, mask = targets(hands, 48)
        assert heat[empty].sum() == 0 and mask[empty].sum() == 0
        assert (heat[~empty].flatten(1).max(-1).values == 1).all()

    from handsdk.nets import DetectorNet
    from handsdk.train.detector import validate

    metrics = validate(DetectorNet(input_size=64).eval(), canvas, lms, torch.tensor([0]), 64, strip)
    assert metrics["false_found"] in (0.0, 1.0)  # the one held-out strip: peaked on or not
    assert "false_found" not in validate(DetectorNet(input_size=64).eval(), canvas, lms, torch.tensor([0]), 64,
                                         torch.full((1, 4), -1))  # no strips, nothing to score


def test_motion_blur_and_low_light_augmentation():
    import torch

    from handsdk.train.augment import motion_blur_kernels, photometric

    k = motion_blur_kernels(torch.tensor([5.0, 9.0]), torch.tensor([0.0, torch.pi / 2]), 11)
    assert torch.allclose(k.sum((1, 2)), torch.ones(2))
    assert (k[0] > 0).nonzero()[:, 0].unique().tolist() == [5] and int((k[0] > 0).sum()) == 5  # a row
    assert (k[1] > 0).nonzero()[:, 1].unique().tolist() == [5] and int((k[1] > 0).sum()) == 9  # a column
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 64, 64, generator=g)  # noise: all detail
    plain = photometric(x.clone(), torch.Generator().manual_seed(1), motion_blur=0.0, low_light=0.0)
    blurred = photometric(x.clone(), torch.Generator().manual_seed(1), motion_blur=1.0, low_light=0.0)
    dark = photometric(x.clone(), torch.Generator().manual_seed(1), motion_blur=0.0, low_light=1.0)

    def detail(t):
        return float((t[..., 1:, 1:] - t[..., :-1, :-1]).abs().mean())

    assert detail(blurred) < 0.8 * detail(plain)
    assert float(dark.mean()) < 0.7 * float(plain.mean())


def test_stretch_keeps_the_labels_on_the_pixels_they_mark():
    """``--stretch-share`` crops: area and crop centre kept, and each landmark's crop coordinate
    still lands on the pixel where the image shows it (a bright dot per landmark)."""
    import torch

    from handsdk.train.augment import Canvas, random_stretch, rect_matrices
    from handsdk.train.landmark import make_batch

    m = rect_matrices(torch.tensor([[100.0, 80.0]] * 64), torch.full((64,), 90.0), torch.zeros(64), 64)
    s = random_stretch(m, 64, 1.0, torch.Generator().manual_seed(0))
    assert torch.allclose(torch.linalg.det(s[..., :2]), torch.linalg.det(m[..., :2]), rtol=1e-4)
    centre = torch.tensor([32.0, 32.0, 1.0])
    assert torch.allclose(s @ centre, m @ centre, atol=1e-3)
    axes = torch.linalg.svdvals(s[..., :2]) / torch.linalg.svdvals(m[..., :2])
    assert float(axes.max()) > 1.15 and float(axes.max()) <= float(np.exp(0.2)) + 1e-4

    img = np.zeros((320, 320, 3), np.uint8)
    gx, gy = np.meshgrid(np.arange(3) * 36 + 124, np.arange(7) * 28 + 76)  # 21 dots, far apart
    lm = np.zeros((21, 3), np.float32)
    lm[:, 0], lm[:, 1] = gx.ravel(), gy.ravel()[::-1]  # landmark 0 (wrist) at the bottom
    for x, y in lm[:, :2].round().astype(int):
        img[y - 2:y + 3, x - 2:x + 3] = 255
    canvas = Canvas([img], torch.device("cpu"))
    lms = torch.from_numpy(lm[None])
    x, targets = make_batch(canvas, lms, torch.ones(1), torch.zeros(8, dtype=torch.long), 128, True,
                            neg_fraction=0.0, gen=torch.Generator().manual_seed(3), stretch=1.0)
    grey = x.mean(-1)  # photometric jitter moves brightness, not geometry: each label is on its dot

    def peak(b, qx, qy):
        return float(grey[b, max(qy - 1, 0):qy + 2, max(qx - 1, 0):qx + 2].max())

    for b in range(8):
        px = (targets["xy"][b] * 128).long().tolist()
        on = [peak(b, qx, qy) for qx, qy in px]
        off = [peak(b, qx + 6, qy) for qx, qy in px]
        assert sum(a > c for a, c in zip(on, off, strict=True)) >= 19, (b, on, off)


def test_edge_cut_blanks_beyond_an_edge_through_the_hand():
    import torch

    from handsdk.train.augment import edge_cut

    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(16, 21, 2, generator=gen) * 0.6 + 0.2
    x = torch.ones(16, 3, 64, 64)
    assert torch.equal(edge_cut(x, xy, 0.0, gen), x)
    out = edge_cut(x, xy, 1.0, gen)
    for crop, pts in zip(out, xy, strict=True):
        blank = crop[0] == 0
        assert 0 < blank.float().mean() < 1  # some of the crop is cut away, not all
        px = (pts * 64).long().clamp(0, 63)
        beyond = blank[px[:, 1], px[:, 0]].float().mean()
        assert 0.05 <= beyond <= 0.45, beyond  # the edge runs through the hand


def test_row_quantile_matches_torch_quantile():
    import torch

    from handsdk.train.augment import row_quantile

    gen = torch.Generator().manual_seed(3)
    values = torch.randn(40, 21, generator=gen)
    q = torch.rand(40, generator=gen)
    q[:2] = torch.tensor([0.0, 1.0])
    expected = torch.stack([torch.quantile(values[i], q[i]) for i in range(40)])
    assert torch.allclose(row_quantile(values, q), expected, atol=1e-6)


def test_real_background_bank_cuts_the_hand_free_strips():
    from handsdk.train.augment import real_background_bank

    images = [np.full((100, 200, 3), (10, 20, 200), np.uint8), np.zeros((100, 200, 3), np.uint8)]
    strips = np.array([[100, 0, 200, 100], [-1, -1, -1, -1]])
    bank = real_background_bank(images, strips, 32, n=5)
    assert bank is not None and tuple(bank.shape) == (1, 3, 32, 32)
    assert float(bank[0, 0].mean()) == pytest.approx(200 / 255, abs=0.01)  # RGB order: red first
    assert real_background_bank(images, np.full((2, 4), -1), 32) is None


def test_fetched_source_keeps_clean_allowed_copies_and_splits_by_group(tmp_path):
    """A Roboflow-style export with an augmented (grayscale) train copy and a clean valid copy of one
    photo keeps only the clean copy; an oriented box becomes an axis-aligned YOLO box; files
    excluded by a source's terms stay out."""
    import subprocess

    import cv2

    from handsdk.data import iter_photos
    from handsdk.train import fetched

    repo = tmp_path / "repo"
    colour = np.zeros((60, 80, 3), np.uint8)
    colour[..., 2] = 200
    gray = np.full((60, 80, 3), 90, np.uint8)
    base = repo / "HandDetect/hands.v2i.yolov8-obb"
    for split, name, img in (("train", "7IMG__jpg.rf.aa", gray), ("valid", "7IMG__jpg.rf.bb", colour),
                             ("train", "8IMG__jpg.rf.cc", colour)):
        (base / split / "images").mkdir(parents=True, exist_ok=True)
        (base / split / "labels").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(base / split / "images" / f"{name}.jpg"), img)
        (base / split / "labels" / f"{name}.txt").write_text("0 0.7 0.1 0.3 0.1 0.3 0.9 0.7 0.9\n")
    (base / "runs/detect").mkdir(parents=True)
    cv2.imwrite(str(base / "runs/detect/plot.jpg"), colour)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
                   check=True)
    counts = fetched.materialize("closeup_hands", repo, tmp_path / "fetched")
    assert counts["train"] + counts["valid"] == 2 and counts["groups"] == 2  # 7IMG once, 8IMG, no plot
    out = tmp_path / "fetched/closeup_hands"
    kept = sorted(out.glob("*/images/*.jpg"))
    assert all(cv2.imread(str(p))[..., 2].mean() > 150 for p in kept)  # the clean colour copies
    box = [float(v) for v in next(out.glob("*/labels/7IMG*.txt")).read_text().split()[1:]]
    assert box == pytest.approx([0.5, 0.5, 0.4, 0.8])
    assert "CC BY 4.0" in (out / "SOURCE.txt").read_text()
    import os

    os.environ["HANDSDK_FETCHED"] = str(tmp_path / "fetched")
    try:
        photos = list(iter_photos(("closeup_hands",)))
    finally:
        del os.environ["HANDSDK_FETCHED"]
    assert len(photos) == 2 and {p.group for p in photos} == {"closeup_hands/7IMG", "closeup_hands/8IMG"}


def test_counting_hands_leaves_out_the_academic_only_files():
    from handsdk.train.fetched import SOURCES

    read = SOURCES["counting_hands"].read
    assert read("images/Hand_0000002.jpg", lambda p: None) is None
    assert read("images/train/pic00001.jpg", lambda p: None) is None  # a duplicate of the top folder
    assert read("images/996_pic00006.jpg", lambda p: None) == ("s996", None)


def test_pack_leaves_out_evaluation_only_and_held_out_sources(tmp_path):
    import cv2

    from handsdk.train import pack

    img = np.full((40, 40, 3), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    lm = (np.random.default_rng(0).random((21, 3)) * 30).tolist()
    lines = [json.dumps({"path": str(tmp_path / "a.png"), "dataset": ds, "split": "train", "group": ds,
                         "label": "", "landmarks": lm, "right": 1.0, "hand_free": None})
             for ds in ("sign_digits", "closeup_hands", "lab_gestures", "rock_paper_scissors")]
    (tmp_path / "labels.jsonl").write_text("\n".join(lines) + "\n")
    assert pack.build_pack(tmp_path / "labels.jsonl", tmp_path / "p.npz")["photos"] == 2
    assert set(pack.load_pack(tmp_path / "p.npz")["dataset"]) == {"sign_digits", "closeup_hands"}
    from handsdk.errors import ConfigError

    with pytest.raises(ConfigError, match="rock_paper_scissors"):  # CC BY-SA: never in shipped weights
        pack.main(["--labels", str(tmp_path / "labels.jsonl"), "--out", str(tmp_path / "q.npz"),
                   "--datasets", "rock_paper_scissors"])


def test_a_webp_pack_holds_the_same_photos_smaller_and_an_old_jpeg_pack_still_loads(tmp_path):
    """``--codec webp`` (for the device call's 64 MiB): the same photos and labels, fewer bytes; a
    pack written before the codec choice (images under ``jpeg``) loads as before."""
    import cv2

    from handsdk.errors import ConfigError
    from handsdk.train import pack

    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), np.uint8), (0, 0), 3)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    rec = {"path": str(tmp_path / "a.png"), "dataset": "sign_digits", "split": "train", "group": "g", "label": "",
           "landmarks": (rng.random((21, 3)) * 200).tolist(), "right": 1.0, "hand_free": None}
    (tmp_path / "labels.jsonl").write_text(json.dumps(rec) + "\n")
    jpeg = pack.build_pack(tmp_path / "labels.jsonl", tmp_path / "j.npz", quality=65)
    webp = pack.build_pack(tmp_path / "labels.jsonl", tmp_path / "w.npz", quality=75, codec="webp")
    assert webp["bytes"] < jpeg["bytes"]
    a, b = pack.load_pack(tmp_path / "j.npz"), pack.load_pack(tmp_path / "w.npz")
    assert a["images"][0].shape == b["images"][0].shape == img.shape
    assert np.abs(b["images"][0].astype(int) - img).mean() < 4
    assert np.array_equal(a["landmarks"], b["landmarks"])
    z = dict(np.load(tmp_path / "j.npz"))
    z["jpeg"] = z.pop("encoded")
    np.savez(tmp_path / "old.npz", **z)
    assert np.array_equal(pack.load_pack(tmp_path / "old.npz")["images"][0], a["images"][0])
    with pytest.raises(ConfigError, match="jpeg or webp"):
        pack.build_pack(tmp_path / "labels.jsonl", tmp_path / "x.npz", codec="png")


def test_pack_hand_context_keeps_a_small_hand_sharp(tmp_path):
    """--hand-context: a small hand in a wide photo is cut out around it before the photo is shrunk
    to max_side, its landmarks moved along (same pixels under the same points)."""
    import cv2

    from handsdk.train import pack

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (1000, 1600, 3), np.uint8)
    lm = np.stack([1200 + rng.random(21) * 40, 300 + rng.random(21) * 40, np.zeros(21)], -1)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    rec = {"path": str(tmp_path / "a.png"), "dataset": "sign_digits", "split": "train", "group": "g",
           "label": "", "landmarks": lm.tolist(), "right": 1.0, "hand_free": [1250, 0, 1600, 1000]}
    (tmp_path / "labels.jsonl").write_text(json.dumps(rec) + "\n")
    pack.build_pack(tmp_path / "labels.jsonl", tmp_path / "p.npz", max_side=320, hand_context=5)
    p = pack.load_pack(tmp_path / "p.npz")
    out, got = p["images"][0], p["landmarks"][0]
    assert max(out.shape[:2]) <= 320 and np.ptp(got[:, 0]) > 30  # the hand kept its size
    x, y = np.round(got[0, :2]).astype(int)
    x0, y0 = np.round(lm[0, :2]).astype(int)
    assert np.abs(out[y, x].astype(int) - img[y0, x0]).mean() < 40  # same place (JPEG-lossy)
    assert (p["hand_free"][0] >= 0).all() and p["hand_free"][0][2] <= out.shape[1]  # clipped to the cut
    rec["hand_free"] = [0, 0, 1000, 1000]  # a strip wholly outside the cut is dropped
    (tmp_path / "labels.jsonl").write_text(json.dumps(rec) + "\n")
    pack.build_pack(tmp_path / "labels.jsonl", tmp_path / "p.npz", max_side=320, hand_context=5)
    assert (pack.load_pack(tmp_path / "p.npz")["hand_free"][0] == -1).all()


def test_soup_lands_on_the_line_between_two_checkpoints(tmp_path, capsys):
    import torch

    from handsdk.errors import ModelError
    from handsdk.nets import DetectorNet

    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        net = DetectorNet(input_size=160)
        paths.append(tmp_path / f"det{seed}.pt")
        torch.save({"model": net.state_dict(), "arch": {"input_size": 160}, "metrics": {"step": 7 + seed}}, paths[-1])
    out = tmp_path / "soup.pt"
    assert soup.main(["--kind", "detector", "--base", str(paths[0]), "--tuned", str(paths[1]),
                      "--alpha", "0.25", "--out", str(out)]) == 0
    a, b = (torch.load(p, weights_only=False)["model"] for p in paths)
    mixed, metrics = export.load_checkpoint(out, "detector")  # loads as an ordinary checkpoint
    assert metrics == {"soup_alpha": 0.25, "step": 8}
    name = next(k for k, v in a.items() if v.is_floating_point() and not torch.equal(v, b[k]))
    assert torch.allclose(mixed.state_dict()[name], 0.75 * a[name] + 0.25 * b[name], atol=1e-6)
    counts = [k for k in a if k.endswith("num_batches_tracked")]
    assert counts and all(torch.equal(mixed.state_dict()[k], b[k]) for k in counts)
    with pytest.raises(ModelError, match="different models"):
        soup.interpolate(a, {k: v for k, v in b.items() if k != name}, 0.5)
    with pytest.raises(SystemExit):
        soup.main(["--kind", "detector", "--base", str(paths[0]), "--tuned", str(paths[1]), "--alpha", "1.5",
                   "--out", str(out)])
    assert "--alpha must be between 0 and 1" in capsys.readouterr().err


def test_ema_update_blends_weights_and_copies_batchnorm_statistics(tmp_path):
    import copy

    import torch

    from handsdk.train.loop import Trainer

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    tr = Trainer(model, tmp_path, 60, 1e-3, torch.device("cpu"), False)
    before = copy.deepcopy(tr.ema.state_dict())
    tr.model(torch.randn(2, 3, 8, 8)).sum().backward()  # moves the BatchNorm statistics
    tr.opt.step()
    tr.update_ema(0.9)
    now = tr.model.state_dict()
    for name, value in tr.ema.state_dict().items():
        if "running" in name or "num_batches" in name:
            assert torch.equal(value, now[name]), name
        else:
            assert torch.allclose(value, 0.9 * before[name] + 0.1 * now[name]), name
    assert not torch.equal(tr.ema.state_dict()["1.running_mean"], before["1.running_mean"])


def test_int8_export_survives_an_output_saturated_on_every_calibration_crop(tmp_path, capsys):
    """A presence head re-fitted on little data can read 1.0 on every calibration crop; percentile
    calibration cannot bin a tensor that constant, so the export falls back to min / max ranges
    for that model and says so, instead of failing."""
    import onnxruntime as ort

    class Saturated(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            y = self.conv(x.permute(0, 3, 1, 2))
            return y, torch.sigmoid(17.33 + 60 * (x.mean((1, 2, 3)) - 0.5))  # 1 - 6e-8 or 1 in float32

    src = tmp_path / "m.onnx"
    export.export_onnx(Saturated().eval(), 32, src, ["features", "presence"])
    calibration = np.random.default_rng(0).random((8, 32, 32, 3), dtype=np.float32)
    export.quantize_int8(src, tmp_path / "m_int8.onnx", calibration)
    assert "min / max instead" in capsys.readouterr().err
    session = ort.InferenceSession(str(tmp_path / "m_int8.onnx"), providers=["CPUExecutionProvider"])
    features, presence = session.run(None, {"image": calibration[:2]})
    assert features.shape == (2, 4, 32, 32) and np.allclose(presence, 1.0, atol=0.01)


def test_a_crop_budget_spans_the_schedule_and_survives_a_resume(tmp_path, capsys):
    """With ``budget_crops`` the schedule follows the crops trained, not the clock, so a run keeps
    one schedule across a CPU and a lent GPU; ``stop_after_s`` ends a sitting early, and
    ``--resume`` goes on from the crops already seen."""
    from handsdk.train.loop import Trainer

    def step(tr):
        tr.update(tr.model(torch.randn(2, 3, 8, 8)).square().mean(), crops=4)

    torch.manual_seed(0)
    tr = Trainer(torch.nn.Conv2d(3, 4, 3), tmp_path, 1e-6, 1e-3, torch.device("cpu"), False, budget_crops=10)
    assert tr.fraction == 0.0 and not tr.done()  # the 1 µs time budget plays no part
    step(tr)
    assert tr.fraction == pytest.approx(0.4) and not tr.done()
    step(tr)
    tr.checkpoint({"pck10": 0.1}, "pck10")
    again = Trainer(torch.nn.Conv2d(3, 4, 3), tmp_path, 1e-6, 1e-3, torch.device("cpu"), True, budget_crops=10)
    assert again.seen == 8 and again.fraction == pytest.approx(0.8) and not again.done()
    assert "8 crops trained, 2 to go" in capsys.readouterr().out
    step(again)
    assert again.done()
    sitting = Trainer(torch.nn.Conv2d(3, 4, 3), tmp_path / "s", 1e-6, 1e-3, torch.device("cpu"), False,
                      budget_crops=10**9, stop_after_s=1e-9)
    assert sitting.fraction == 0.0 and sitting.done()  # the sitting is over, the budget is not
    assert "stopped at 0.0 % of the budget" in sitting.closing_line("pck10")
    assert again.closing_line("pck10").startswith("done: best pck10 0.1000")


def test_a_compact_state_resumes_the_run_where_it_stopped(tmp_path):
    """The state that travels to a lent GPU and back: weights exact, Adam's moments to bfloat16,
    step / time / best kept, EMA re-seeded from the weights, and about half of last.pt's size."""
    from handsdk.train import state
    from handsdk.train.loop import Trainer

    def model():
        return torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.BatchNorm2d(64), torch.nn.Conv2d(64, 64, 3))

    torch.manual_seed(0)
    first = Trainer(model(), tmp_path / "a", 600, 1e-3, torch.device("cpu"), False)
    for _ in range(3):
        first.update(first.model(torch.randn(2, 3, 12, 12)).square().mean(), crops=2)
    first.checkpoint({"pck10": 0.5}, "pck10")
    last = tmp_path / "a" / "last.pt"
    small = tmp_path / "run.state.pt"
    assert state.main(["compact", str(last), str(small)]) == 0
    assert small.stat().st_size < 0.6 * last.stat().st_size
    assert state.main(["expand", str(small), str(tmp_path / "b" / "last.pt")]) == 0
    again = Trainer(model(), tmp_path / "b", 1200, 1e-3, torch.device("cpu"), True)
    assert (again.step, again.best, again.seen) == (3, 0.5, 6) and again.elapsed == pytest.approx(first.elapsed)
    for name, value in first.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[name], value), name
        assert torch.equal(again.ema.state_dict()[name], value), name
    moments = [(a["exp_avg_sq"], b["exp_avg_sq"]) for a, b in
               zip(first.opt.state_dict()["state"].values(), again.opt.state_dict()["state"].values(), strict=True)]
    assert moments and all(b.dtype == torch.float32 and torch.allclose(a, b, rtol=1e-2, atol=0) for a, b in moments)
    again.update(again.model(torch.randn(2, 3, 12, 12)).square().mean())  # and it trains on
    assert again.step == 4
    with pytest.raises(SystemExit, match="not a compact training state"):
        state.expand(last, tmp_path / "c" / "last.pt")


def test_the_long_run_goes_on_from_its_committed_state_on_a_fresh_machine(tmp_path):
    """scripts/long_run.sh --save puts the run's compact state and metrics beside its records (to be
    committed); a sitting on a machine without WORKDIR/last.pt starts from them, not from nothing
    (the first long run was lost with the machine that held its state)."""
    import os
    import subprocess
    import sys

    from handsdk.train.loop import Trainer

    script = Path(__file__).resolve().parents[1] / "scripts" / "long_run.sh"
    env = {**os.environ, "HANDSDK_LONG_RUN": str(tmp_path / "records"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    (tmp_path / "records").mkdir()
    torch.manual_seed(0)
    old = Trainer(torch.nn.Conv2d(3, 4, 3), tmp_path / "old", 600, 1e-3, torch.device("cpu"), False, budget_crops=100)
    old.update(old.model(torch.randn(2, 3, 8, 8)).square().mean(), crops=48)
    old.checkpoint({"pck10": 0.25}, "pck10")
    saved = subprocess.run(["bash", str(script), "--save", str(tmp_path / "old")], env=env,
                           capture_output=True, text=True)
    assert saved.returncode == 0, saved.stderr
    assert {p.name for p in (tmp_path / "records").iterdir()} == {"long.state.pt", "metrics.jsonl", "curves.png"}

    fresh = tmp_path / "fresh"  # the trainer then stops on the missing pack: the state is what counts here
    sitting = subprocess.run(["bash", str(script), str(tmp_path / "no_pack.npz"), str(fresh), "1"], env=env,
                             capture_output=True, text=True)
    assert "going on from the committed state" in sitting.stdout
    state = torch.load(fresh / "last.pt", map_location="cpu", weights_only=False)
    assert (state["step"], state["seen"], state["best"]) == (1, 48, 0.25)
    assert (fresh / "metrics.jsonl").read_text() == (tmp_path / "old" / "metrics.jsonl").read_text()
    nothing = subprocess.run(["bash", str(script), "--save", str(tmp_path / "none")], env=env,
                             capture_output=True, text=True)
    assert nothing.returncode == 2 and "nothing to save" in nothing.stderr


def test_pack_carries_the_other_hands_scaled_and_moved_with_the_photo(tmp_path):
    """``others`` in the labels (the hands a label does not cover) reach the trainers' pool in the
    packed photo's pixels: scaled with it by ``max_side``, moved with it by ``hand_context``."""
    import cv2

    from handsdk.train import pack
    from handsdk.train.loop import build_pool

    img = np.full((400, 800, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "two.png"), img)
    hand = np.zeros((21, 3))
    hand[:, 0], hand[:, 1] = np.linspace(100, 160, 21), np.linspace(300, 200, 21)
    other = hand.copy()
    other[:, 0] += 500
    rec = {"path": str(tmp_path / "two.png"), "dataset": "sign_digits", "split": "train", "group": "g",
           "label": "x", "landmarks": hand.tolist(), "right": 1.0, "hand_free": None}
    lines = [dict(rec, others=[other.tolist()]), dict(rec, group="h")]  # the second: a record from before
    (tmp_path / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    pack.build_pack(tmp_path / "labels.jsonl", tmp_path / "pack.npz", max_side=400)
    pool = build_pool(tmp_path / "pack.npz", 0)
    assert pool.others.shape == (2, pack.MAX_OTHERS, 21, 2)
    np.testing.assert_allclose(pool.others[0, 0], other[:, :2] * 0.5, atol=0.25)  # 800 → 400 px, half precision
    assert pool.others.dtype == np.float32
    assert np.isnan(pool.others[0, 1:]).all() and np.isnan(pool.others[1]).all()

    pack.build_pack(tmp_path / "labels.jsonl", tmp_path / "ctx.npz", max_side=1000, hand_context=3.0)
    z = np.load(tmp_path / "ctx.npz")
    shift = hand[0, :2] - z["landmarks"][0, 0, :2]  # where the square around the hand starts
    assert shift[1] > 0  # cut above the hand (the photo's left edge is within reach)
    np.testing.assert_allclose(z["others"][0, 0], other[:, :2] - shift, atol=0.5)


def test_detector_frames_keep_the_photos_other_hands_as_targets():
    """A photo's unlabelled second hand is a target wherever the frame shows it (the same
    transform as the labelled hand's), never background, and never on a hand-free frame."""
    import torch

    from handsdk.train.augment import Canvas, background_bank
    from handsdk.train.detector import make_batch, targets

    img = np.full((200, 400, 3), 120, np.uint8)
    lm = np.zeros((21, 3), np.float32)
    lm[:, 0], lm[:, 1] = np.linspace(40, 90, 21), np.linspace(150, 60, 21)
    other = lm[:, :2].copy()
    other[:, 0] += 250
    canvas = Canvas([img], torch.device("cpu"))
    idx = torch.zeros(96, dtype=torch.long)
    bg = background_bank(64, n=4)
    lms, others = torch.from_numpy(lm[None]), torch.full((1, 2, 21, 2), float("nan"))
    others[0, 0] = torch.from_numpy(other)

    _, plain = make_batch(canvas, lms, idx, idx, bg, 64, gen=torch.Generator().manual_seed(3))
    _, hands = make_batch(canvas, lms, idx, idx, bg, 64, gen=torch.Generator().manual_seed(3), others=others)
    assert plain.shape[1] == 2 and hands.shape[1] == 2 + 4
    torch.testing.assert_close(hands[:, :2], plain, equal_nan=True)  # the labelled hands as before
    shown = ~torch.isnan(hands[:, 2:]).any(-1).any(-1)  # (B, 4)
    assert 10 < int(shown.any(1).sum()) < 96  # photo-framed frames show it; close re-framings do not
    for b, h in shown.nonzero().tolist():
        o, first = hands[b, 2 + h], hands[b, 0] if h < 2 else hands[b, 1]
        # a similarity transform: the distance between the hands in wrist-to-tip lengths is kept
        ratio = (o[0] - first[0]).norm() / (first[20] - first[0]).norm()
        assert abs(float(ratio) - 250 / float(np.hypot(50, 90))) < 0.02
        mid = (o.amin(0) + o.amax(0)) / 2
        assert ((mid >= 0) & (mid < 64)).all()
    heat, _, mask = targets(hands, 64)
    b = int(shown.nonzero()[0, 0])
    assert heat[b, 0].flatten().topk(2).values.min() == 1 and mask[b].sum() >= 2  # both hands peak

    strip = torch.tensor([[200, 0, 400, 200]])
    _, free = make_batch(canvas, lms, idx, idx, bg, 64, gen=torch.Generator().manual_seed(3), others=others,
                         hand_free=strip, free_idx=torch.tensor([0]), hand_free_share=1.0)
    empty = torch.isnan(free[:, :2]).all(-1).all(-1).all(-1)
    assert empty.any() and torch.isnan(free[empty]).all()  # hand-free frames: no hand at all


def test_crops_beside_the_hand_that_hold_another_hand_are_not_negatives():
    """The landmark trainer's beside-the-hand crops teach "no hand" (presence 0), except where
    the crop holds a third of another hand the label does not cover: those are left out
    (presence weight 0) rather than taught as clutter."""
    import torch

    from handsdk.train.augment import Canvas
    from handsdk.train.landmark import make_batch

    img = np.full((300, 600, 3), 120, np.uint8)
    lm = np.zeros((21, 3), np.float32)
    lm[:, 0], lm[:, 1] = np.linspace(250, 290, 21), np.linspace(200, 120, 21)
    other = lm[:, :2].copy()
    other[:, 0] += 120  # the signer's other hand, right beside
    canvas = Canvas([img], torch.device("cpu"))
    idx = torch.zeros(256, dtype=torch.long)
    lms, right = torch.from_numpy(lm[None]), torch.ones(1)
    others = torch.full((1, 1, 21, 2), float("nan"))
    others[0, 0] = torch.from_numpy(other)

    def weights(o):
        _, t = make_batch(canvas, lms, right, idx, 64, True, neg_fraction=1.0,
                          gen=torch.Generator().manual_seed(5), others=o)
        return t["presence"], t["presence_w"]

    presence, before = weights(None)
    _, after = weights(others)
    negatives = (presence == 0) & (before == 1)
    assert negatives.sum() > 100
    dropped = negatives & (after == 0)
    assert 10 < int(dropped.sum()) < int(negatives.sum())  # the crops on the right side, not all
    assert torch.equal(after[~dropped], before[~dropped])
    _, none = weights(torch.full((1, 1, 21, 2), float("nan")))
    assert torch.equal(none, before)  # no other hand: nothing changes


def test_the_presence_refit_takes_proposals_on_the_other_hands_as_positives():
    """``add_detector_crops``: a detector proposal on a photo's second hand (``others``) is a
    positive like one on the labelled hand; without ``others`` it is left out, never a negative."""
    from types import SimpleNamespace

    from handsdk.geometry import rect_from_landmarks
    from handsdk.train.presence import add_detector_crops

    hand = np.zeros((21, 3), np.float32)
    hand[:, 0], hand[:, 1] = np.linspace(40, 80, 21), np.linspace(150, 90, 21)
    other = hand[:, :2] + np.float32([200, 0])
    proposals = [rect_from_landmarks(hand, 1.5), rect_from_landmarks(other, 1.5)]
    tracker = SimpleNamespace(crop_scale=1.5, _run_detector=lambda img: [
        SimpleNamespace(rect=lambda scale, r=r: r) for r in proposals])
    added = []
    fs = SimpleNamespace(model=SimpleNamespace(input_size=32), add=lambda crops, target: added.append((len(crops), target)))
    img = np.full((240, 400, 3), 128, np.uint8)
    no_strip = np.full((1, 4), -1)
    turns = (0.0, np.pi)
    add_detector_crops(fs, [img], hand[None], no_strip, tracker, turns, np.random.default_rng(0))
    assert added == [(2, 1.0)]  # the labelled hand's proposal at both turns
    added.clear()
    more = np.full((1, 2, 21, 2), np.nan, np.float32)
    more[0, 0] = other
    add_detector_crops(fs, [img], hand[None], no_strip, tracker, turns, np.random.default_rng(0), others=more)
    assert added == [(4, 1.0)]  # and the other hand's


def test_pack_carries_the_faces_scaled_and_moved_with_the_photo(tmp_path):
    """``faces`` in the labels (scripts/mine_faces.py) reach the pool as boxes in the packed
    photo's pixels; a record without them has none (NaN)."""
    import cv2

    from handsdk.train import pack
    from handsdk.train.loop import build_pool

    cv2.imwrite(str(tmp_path / "p.png"), np.full((400, 800, 3), 90, np.uint8))
    hand = np.zeros((21, 3))
    hand[:, 0], hand[:, 1] = np.linspace(100, 160, 21), np.linspace(300, 200, 21)
    rec = {"path": str(tmp_path / "p.png"), "dataset": "sign_digits", "split": "train", "group": "g",
           "label": "x", "landmarks": hand.tolist(), "right": 1.0, "hand_free": None}
    face = [300, 100, 360, 170]
    lines = [dict(rec, faces=[face]), dict(rec, group="h", faces=None)]
    (tmp_path / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    pack.build_pack(tmp_path / "labels.jsonl", tmp_path / "pack.npz", max_side=400)
    pool = build_pool(tmp_path / "pack.npz", 0)
    assert pool.faces.shape == (2, pack.MAX_FACES, 4)
    np.testing.assert_allclose(pool.faces[0, 0], np.multiply(face, 0.5), atol=0.25)
    assert np.isnan(pool.faces[0, 1:]).all() and np.isnan(pool.faces[1]).all()

    pack.build_pack(tmp_path / "labels.jsonl", tmp_path / "ctx.npz", max_side=1000, hand_context=4.0)
    z = np.load(tmp_path / "ctx.npz")
    shift = hand[0, :2] - z["landmarks"][0, 0, :2]
    np.testing.assert_allclose(z["faces"][0, 0], np.subtract(face, np.tile(shift, 2)), atol=0.5)


def test_mine_faces_reads_each_photo_once_then_takes_its_boxes_from_the_cache(tmp_path, monkeypatch):
    """scripts/mine_faces.py keeps the cascades' boxes by the photo's bytes: a second run (a fresh
    machine with the committed cache) reads no photo, and writes the same labels; a face on a
    labelled hand is dropped either way."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mine_faces", Path(__file__).parents[1] / "scripts" / "mine_faces.py")
    mine = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mine)
    hand = np.zeros((21, 3))
    hand[:, :2] = 50.0  # the hand's centre is at (50, 50)
    recs = []
    for k in range(3):
        (tmp_path / f"p{k}.jpg").write_bytes(bytes([k]) * 10)
        recs.append({"path": str(tmp_path / f"p{k}.jpg"), "dataset": "signer_home" if k < 2 else "sign_digits",
                     "landmarks": hand.tolist()})
    read = []

    def cascades(python, paths):
        read.extend(paths)
        return [[[0, 0, 100, 100], [200, 200, 260, 260]] for _ in paths]  # one face on the hand, one off

    monkeypatch.setattr(mine, "detect_faces", cascades)
    labels, cache = tmp_path / "labels.jsonl", tmp_path / "cache.json.gz"
    argv = ["--labels", str(labels), "--datasets", "signer_home", "--python", "py", "--cache", str(cache)]
    labels.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert mine.main(argv) == 0
    first = labels.read_text()
    assert sorted(read) == [r["path"] for r in recs[:2]]
    assert [json.loads(line)["faces"] for line in first.splitlines()] == [[[200, 200, 260, 260]]] * 2 + [None]
    assert len(mine.read_cache(cache)) == 2  # raw boxes, before the filter against the hands
    read.clear()
    labels.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert mine.main(argv) == 0
    assert read == [] and labels.read_text() == first


def test_pseudolabel_runs_the_teacher_once_per_photo_then_takes_its_findings_from_the_cache(tmp_path, monkeypatch):
    """``--cache`` keeps the teacher's findings by the photo's bytes and dataset box: a second run
    (a fresh machine with the committed cache) runs the teacher on no photo, a rejected one
    included, and writes the same labels; a cache of another version is not trusted."""
    import cv2

    from handsdk.data import Photo
    from handsdk.train import pseudolabel

    photos = []
    for k in range(3):
        path = tmp_path / "set" / "images" / f"p{k}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.full((8, 8, 3), k, np.uint8))
        photos.append(Photo(path, "sign_digits", "train", f"g{k}", str(k)))
    taught = []

    def teacher_fields(teacher, photo, image, min_presence=0.9, hand_free=True):
        taught.append(photo.path.name)
        k = int(photo.label)
        return None if k == 2 else {"size": [8, 8], "landmarks": [[k, k, 0.0]] * 21, "presence": 0.95}

    monkeypatch.setattr(pseudolabel, "MediaPipeTeacher", lambda root, variant: object())
    monkeypatch.setattr(pseudolabel, "iter_photos", lambda datasets: iter(photos))
    monkeypatch.setattr(pseudolabel, "teacher_fields", teacher_fields)
    out, cache = tmp_path / "labels.jsonl", tmp_path / "cache.json.gz"
    argv = ["--out", str(out), "--teacher", str(tmp_path), "--datasets", "sign_digits", "--cache", str(cache)]
    assert pseudolabel.main(argv) == 0
    first = out.read_text()
    assert sorted(taught) == ["p0.png", "p1.png", "p2.png"]
    assert [json.loads(line)["label"] for line in first.splitlines()] == ["0", "1"]  # p2: not confident
    taught.clear()
    assert pseudolabel.main(argv) == 0
    assert taught == [] and out.read_text() == first
    cv2.imwrite(str(photos[1].path), np.full((8, 8, 3), 7, np.uint8))  # other bytes: the teacher again
    assert pseudolabel.main(argv) == 0
    assert taught == ["p1.png"]
    taught.clear()
    assert pseudolabel.main([*argv, "--min-presence", "0.8"]) == 0  # found at 0.9: not trusted at 0.8
    assert sorted(taught) == ["p0.png", "p1.png", "p2.png"]
    taught.clear()
    assert pseudolabel.main(argv) == 0  # and left the cache as it was
    assert taught == []


def test_an_option_asking_for_crops_the_pack_lacks_stops_with_how_to_make_them():
    """``--face-share`` / ``--hand-free-share`` on a pool with no faces / strips would do nothing:
    the trainers stop and say which script adds them; at 0 they train as before."""
    from handsdk.train.loop import build_pool, require_in_pack

    pool = build_pool(None, 4)  # synthetic renders: no faces, no hand-free strips
    require_in_pack(pool)
    with pytest.raises(SystemExit, match="mine_faces"):
        require_in_pack(pool, face_share=0.1)
    with pytest.raises(SystemExit, match="hand-free-only"):
        require_in_pack(pool, hand_free_share=0.1)


def test_an_anchor_keeps_its_own_landmarks_while_presence_learns_from_the_labels():
    """``--anchor``: the landmark losses pull toward the frozen model's reading of each crop, on
    every crop (a face crop too), whatever the labels say; presence still learns the labels."""
    import torch

    from handsdk.nets import LandmarkNet
    from handsdk.train.landmark import losses

    torch.manual_seed(0)
    model = LandmarkNet(64).eval()
    x = torch.rand(4, 64, 64, 3)
    raw = model.forward_raw(x)
    t = {"xy": torch.full((4, 21, 2), 0.9), "z": torch.zeros(4, 21), "right": torch.ones(4),
         "presence": torch.tensor([1.0, 1.0, 0.0, 0.0]), "presence_w": torch.ones(4)}
    _, labelled = losses(model, raw, t)
    _, anchored = losses(model, raw, t, {k: v.detach() for k, v in raw.items()})
    assert labelled["coord"] > 0.1 and anchored["coord"] < 1e-6
    assert torch.isclose(labelled["presence"], anchored["presence"])
    other = LandmarkNet(64).eval()
    _, off = losses(model, raw, t, {k: v.detach() for k, v in other.forward_raw(x).items()})
    assert off["coord"] > anchored["coord"]
    t["presence"][:] = 0  # no hand anywhere: the labels teach no landmarks, the anchor still does
    _, none = losses(model, raw, t, {k: v.detach() for k, v in other.forward_raw(x).items()})
    assert torch.isclose(none["coord"], off["coord"])


def test_the_teacher_reads_ready_crops_in_the_trainers_coordinates():
    """``MediaPipeTeacher.read_crops`` (``scripts/teacher_on_crops.py``): on rendered hands cut as
    the trainer cuts them, its landmarks land on the crop's own targets (crop units, [0, 1]) and
    a blank crop holds no hand."""
    import torch

    from handsdk.data import teacher_root

    root = teacher_root()
    if root is None:
        pytest.skip("no ../shared/teacher (MediaPipe's TFLite models)")
    pytest.importorskip("ai_edge_litert", reason="the teacher runs on ai-edge-litert (pip install handsdk[tflite])")
    from handsdk.train.augment import Canvas
    from handsdk.train.landmark import make_batch
    from handsdk.train.loop import build_pool
    from handsdk.train.teacher import MediaPipeTeacher

    pool = build_pool(None, 8)
    x, t = make_batch(Canvas(pool.images, torch.device("cpu")), torch.from_numpy(pool.landmarks),
                      torch.from_numpy(pool.right), torch.arange(8), 224, False)
    teacher = MediaPipeTeacher(root)
    read, presence, right = teacher.read_crops(x.numpy())
    assert read.shape == (8, 21, 3) and presence.shape == right.shape == (8,)
    sure = presence > 0.5
    assert sure.sum() >= 5
    xy = t["xy"].numpy()
    box = (xy.max(1) - xy.min(1)).max(-1)
    err = np.linalg.norm(read[:, :, :2] - xy, axis=-1) / box[:, None]
    assert np.median(err[sure]) < 0.1
    assert np.all(read[:, 0, 2] == 0)  # z relative to the wrist
    _, blank, _ = teacher.read_crops(np.zeros((1, 224, 224, 3), np.float32))
    assert blank[0] < 0.1


def test_compare_runs_reads_the_base_at_the_new_runs_crops(tmp_path, capsys):
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "scripts" / "compare_runs.py"
    spec = importlib.util.spec_from_file_location("compare_runs", script)
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)

    def write(name, rows):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(tmp_path / name)

    base = write("base.jsonl", [{"crops": 1000, "pck10": 0.2, "pck10_a": 0.1},
                                {"crops": 3000, "pck10": 0.6, "pck10_a": 0.5}])
    # 2000 crops lies halfway: base 0.4 there; 4000 lies beyond the base's last validation
    new = write("new.jsonl", [{"crops": 2000, "pck10": 0.45, "pck10_a": 0.2},
                              {"crops": 4000, "pck10": 0.9, "pck10_a": 0.9}])
    compare.main([base, new])
    out = capsys.readouterr().out
    assert "    2,000   0.400   0.450    +0.050" in out and "4,000" not in out
    assert "pck10_a                  -0.100 / -0.100 / -0.100  (1 validations)" in out
    with pytest.raises(SystemExit, match="rows \\[0\\] have no crops"):
        compare.main([base, write("old.jsonl", [{"step": 5, "pck10": 0.3}])])
    with pytest.raises(SystemExit, match="no validation of"):
        compare.main([base, write("late.jsonl", [{"crops": 9000, "pck10": 0.3}])])
