"""Re-fit the landmark model's presence head on hard negatives:
``python -m handsdk.train.presence --pack PACK --out landmark.pt``.

Why: the landmark model's only negatives in training were crops beside the hand, and on the
hand-free parts of real photos (lamp bases, door frames, carpets, sleeves) the detector proposes
crops that the model then calls a hand with presence ~1 (see docs/models.md, "false
positives"). This step keeps the backbone and the landmark heads frozen — the landmarks stay
bit-identical — and re-fits only the small head on pooled backbone features that gives presence
and handedness, from:

* positives: the landmark trainer's augmented hand crops, and the detector's own crops on the
  training photos (at every turn the tracker tries), plus synthetic renders;
* negatives: the trainer's beside-the-hand crops, the detector's proposals (at a low threshold)
  and random crops on the strip beside each training photo's hand that the teacher confirmed
  hand-free (``hand_free`` in the labels: :mod:`handsdk.train.pseudolabel`), synthetic
  textures, and (``--texture-frames``) the detector's proposals on rendered hand-free frames.

Only the pack's training split is used to fit; its validation split reports the result.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from handsdk.script import ArgumentParser

from ..config import DETECTOR_ROTATIONS
from ..geometry import rect_from_landmarks, warp_crop
from ..nets import LandmarkNet, _to_nchw_normalised
from ..types import RotatedRect
from .augment import Canvas, background_bank
from .export import load_checkpoint
from .landmark import make_batch
from .loop import build_pool


@torch.no_grad()
def pooled_features(model: LandmarkNet, crops: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """(N, H, W, 3) float crops in [0, 1] → (N, C) the pooled last backbone features that the
    presence/handedness head reads."""
    out = []
    for s in range(0, len(crops), batch):
        x = _to_nchw_normalised(crops[s:s + batch]).contiguous(memory_format=torch.channels_last)
        out.append(model.backbone(x)[-1].mean((2, 3)))
    return torch.cat(out) if out else torch.zeros(0, model.backbone.channels[-1])


def _crops(image_bgr: np.ndarray, rects: list[RotatedRect], size: int) -> list[np.ndarray]:
    return [cv2.cvtColor(warp_crop(image_bgr, r, size), cv2.COLOR_BGR2RGB) for r in rects]


def _random_rects(width: int, height: int, n: int, rng: np.random.Generator) -> list[RotatedRect]:
    short = min(width, height)
    out = []
    for _ in range(n):
        side = short * rng.uniform(0.3, 1.0)
        center = (rng.uniform(side / 3, width - side / 3), rng.uniform(side / 3, height - side / 3))
        out.append(RotatedRect(center, (side, side), float(rng.uniform(-math.pi, math.pi))))
    return out


def add_detector_crops(fs: FeatureSet, images: list[np.ndarray], landmarks: np.ndarray, hand_free: np.ndarray,
                       tracker, turns: tuple[float, ...], rng: np.random.Generator, random_per_strip: int = 3,
                       others: np.ndarray | None = None) -> None:
    """Crops the tracker would see on real photos.

    Positives: the detector's crops on the photo whose centre is within 0.3 crop sides of a
    hand's own crop and whose size is within 2× of it, at every turn — the labelled hand's, and
    those of the photo's ``others`` (pool size, K, 21, 2; NaN: none), the hands the label does not
    cover. Negatives: the detector's proposals (every turn) and random crops on the photo's
    teacher-verified hand-free strip, cut from the strip alone so that no part of the hand beside
    it leaks in. Other detector crops on the photo are not used: they may hold a hand the teacher
    missed.
    """
    size = fs.model.input_size
    if others is None:
        others = np.full((len(images), 0, 21, 2), np.nan, np.float32)
    for img, lm, free, more in zip(images, landmarks, hand_free, others, strict=True):
        hands = [rect_from_landmarks(h, tracker.crop_scale)
                 for h in [lm, *(o for o in more if np.isfinite(o).all())]]
        pos = []
        for det in tracker._run_detector(img):
            rect = det.rect(tracker.crop_scale)
            if any(np.hypot(*np.subtract(rect.center, hand.center)) < 0.3 * hand.size[0]
                   and 0.5 < rect.size[0] / hand.size[0] < 2.0 for hand in hands):
                pos += _crops(img, [replace(rect, angle=rect.angle + t) for t in turns], size)
        fs.add(pos, 1.0)
        if free[0] < 0:
            continue
        x0, y0, x1, y1 = (int(v) for v in free)
        strip = np.ascontiguousarray(img[y0:y1, x0:x1])
        rects = [replace(r, angle=r.angle + t) for det in tracker._run_detector(strip)
                 for r in [det.rect(tracker.crop_scale)] for t in turns]
        rects += _random_rects(x1 - x0, y1 - y0, random_per_strip, rng)
        fs.add(_crops(strip, rects, size), 0.0)


class FeatureSet:
    """Pooled features and targets, computed as crops arrive (crops themselves are not kept:
    tens of thousands of 224² crops would not fit in memory)."""

    def __init__(self, model: LandmarkNet):
        self.model = model
        self.feats: list[torch.Tensor] = []
        self.targets: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def add(self, crops: torch.Tensor | list[np.ndarray], presence: float | torch.Tensor,
            weight: float | torch.Tensor = 1.0, right: float | torch.Tensor = 0.5) -> None:
        if isinstance(crops, list):
            if not crops:
                return
            crops = torch.from_numpy(np.stack(crops)).float() / 255.0
        n = len(crops)
        self.feats.append(pooled_features(self.model, crops))
        self.targets.append(tuple(torch.as_tensor(v, dtype=torch.float32).expand(n).clone()
                                  for v in (presence, weight, right)))

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(features, presence, presence weight, right-hand target)."""
        return (torch.cat(self.feats), *(torch.cat([t[k] for t in self.targets]) for k in range(3)))


def add_sampler_crops(fs: FeatureSet, pool, idx: np.ndarray, rounds: int, train: bool, seed: int) -> None:
    """The landmark trainer's own crops (augmented, with its beside-the-hand negatives, when
    ``train``)."""
    canvas = Canvas([pool.images[i] for i in idx], torch.device("cpu"))
    lm = torch.from_numpy(pool.landmarks[idx])
    right = torch.from_numpy(pool.right[idx])
    others = torch.from_numpy(pool.others[idx])
    gen = torch.Generator().manual_seed(seed)
    size = fs.model.input_size
    bank = background_bank(size, seed=seed)
    order = torch.arange(len(idx))
    for _ in range(rounds):
        for s in range(0, len(idx), 128):
            x, t = make_batch(canvas, lm, right, order[s:s + 128], size, train,
                              neg_fraction=0.15 if train else 0.0, gen=gen, backgrounds=bank,
                              background_share=0.3 if train else 0.0, others=others)
            fs.add(x, t["presence"], t["presence_w"], t["right"])


def texture_crops(n: int, size: int, seed: int) -> torch.Tensor:
    """Synthetic hand-free textures (the renderer's backgrounds), as crops."""
    return background_bank(size, n=n, seed=seed + 1).permute(0, 2, 3, 1).contiguous()


def fit_head(head: torch.nn.Module, feats: torch.Tensor, presence: torch.Tensor, weight: torch.Tensor,
             right: torch.Tensor, epochs: int = 60, lr: float = 1e-3, seed: int = 0) -> torch.nn.Module:
    """Train a copy of the presence/handedness head on frozen features: presence BCE with the
    two classes weighted equally, handedness BCE on positives whose handedness is sure."""
    head = copy.deepcopy(head).train()
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-3)
    pos = (presence > 0.5) & (weight > 0)
    neg = (presence <= 0.5) & (weight > 0)
    w = torch.zeros_like(presence)
    w[pos] = 0.5 / max(1, int(pos.sum()))
    w[neg] = 0.5 / max(1, int(neg.sum()))
    sure = pos & ((right - 0.5).abs() > 0.3)
    gen = torch.Generator().manual_seed(seed)
    n = len(feats)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for s in range(0, n, 512):
            b = order[s:s + 512]
            g = head(feats[b])
            l_p = (F.binary_cross_entropy_with_logits(g[:, 0], presence[b], reduction="none") * w[b]).sum() * n / len(b)
            sb = sure[b]
            l_h = F.binary_cross_entropy_with_logits(g[sb, 1], right[b][sb]) if sb.any() else g.sum() * 0
            loss = l_p + 0.5 * l_h
            opt.zero_grad()
            loss.backward()
            opt.step()
    return head.eval()


@torch.no_grad()
def head_report(head: torch.nn.Module, feats: torch.Tensor, presence: torch.Tensor, weight: torch.Tensor,
                right: torch.Tensor) -> dict[str, float]:
    """Recall of hands and false-positive rate at presence 0.5; handedness accuracy."""
    g = head(feats)
    p = torch.sigmoid(g[:, 0])
    pos = (presence > 0.5) & (weight > 0)
    neg = (presence <= 0.5) & (weight > 0)
    sure = pos & ((right - 0.5).abs() > 0.3)
    return {"hand_recall": float((p[pos] >= 0.5).float().mean()) if pos.any() else math.nan,
            "false_positive_rate": float((p[neg] >= 0.5).float().mean()) if neg.any() else math.nan,
            "handedness_acc": float(((torch.sigmoid(g[sure, 1]) > 0.5) == (right[sure] > 0.5)).float().mean())
            if sure.any() else math.nan,
            "positives": int(pos.sum()), "negatives": int(neg.sum())}


def add_texture_proposals(fs: FeatureSet, tracker, turns: tuple[float, ...], n: int, seed: int) -> None:
    """Negatives: the detector's proposals on ``n`` rendered hand-free frames (the renderer's
    backgrounds, every kind) — the clutter it mistakes for a hand, unlike random texture crops."""
    from ..synthetic import random_background

    rng = np.random.default_rng(seed + 7)
    kinds = ("room", "shapes", "noise", "wood", "linear")
    for i in range(n):
        img = random_background(480, 640, rng, kind=kinds[i % len(kinds)])
        rects = [replace(r, angle=r.angle + t) for det in tracker._run_detector(img)
                 for r in [det.rect(tracker.crop_scale)] for t in turns]
        fs.add(_crops(img, rects, fs.model.input_size), 0.0)


def build_set(model: LandmarkNet, pool, idx: np.ndarray, tracker, turns, rounds: int, train: bool,
              seed: int, texture_frames: int = 0) -> tuple[torch.Tensor, ...]:
    """Features and targets for the photos ``idx`` of the pool."""
    fs = FeatureSet(model)
    add_sampler_crops(fs, pool, idx, rounds, train, seed)
    real = idx[~pool.synthetic[idx]]
    add_detector_crops(fs, [pool.images[i] for i in real], pool.landmarks[real], pool.hand_free[real],
                       tracker, turns, np.random.default_rng(seed), others=pool.others[real])
    if train:
        fs.add(texture_crops(200, model.input_size, seed), 0.0)
    add_texture_proposals(fs, tracker, turns, texture_frames, seed)
    return fs.tensors()


def main(argv: list[str] | None = None) -> int:
    from .. import Tracker

    ap = ArgumentParser(prog="python -m handsdk.train.presence", description=__doc__.split("\n")[0])
    ap.add_argument("--pack", type=Path, required=True, help="training pack (python -m handsdk.train.pack)")
    ap.add_argument("--landmark", type=Path, default=None, help="landmark checkpoint (default: models/landmark.pt)")
    ap.add_argument("--out", type=Path, required=True, help="where to write the re-fitted checkpoint")
    ap.add_argument("--rounds", type=int, default=4, help="augmented passes over the training photos")
    ap.add_argument("--synthetic", type=int, default=300, help="synthetic renders among the positives")
    ap.add_argument("--texture-frames", type=int, default=0,
                    help="rendered hand-free frames whose detector proposals join the negatives (half as "
                         "many for validation)")
    ap.add_argument("--models", type=Path, default=None,
                    help="manifest of the models whose detector proposes the hard negatives (default: the "
                         "bundled models; give the new detector's when it ships with this landmark model)")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="use only this many photos per split (a quick check)")
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    ckpt = args.landmark or Path(__file__).resolve().parents[2] / "models" / "landmark.pt"
    model, metrics = load_checkpoint(ckpt, "landmark")
    model = model.to(memory_format=torch.channels_last).eval()
    pool = build_pool(args.pack, args.synthetic, seed=args.seed)
    if not (pool.hand_free[:, 0] >= 0).any():
        print("warning: the pack has no teacher-verified hand-free strips (labels from an older "
              "pseudolabel: add them with `python -m handsdk.train.pseudolabel --hand-free-only` and "
              "rebuild the pack); negatives are only crops beside the hands and textures")
    config = {"tracker": {"min_detection_confidence": 0.05, "max_hands": 4}}
    if args.models:
        config["models"] = {"manifest": str(args.models)}
    tracker = Tracker(config)
    turns = DETECTOR_ROTATIONS[max(DETECTOR_ROTATIONS)]
    t0 = time.time()
    train_idx = np.where(~pool.valid)[0]
    valid_idx = np.where(pool.valid & ~pool.synthetic)[0]
    if args.limit:
        train_idx, valid_idx = train_idx[:: max(1, len(train_idx) // args.limit)], valid_idx[: args.limit]
    train = build_set(model, pool, train_idx, tracker, turns, args.rounds, True, args.seed, args.texture_frames)
    valid = build_set(model, pool, valid_idx, tracker, turns, 1, False, args.seed + 1, args.texture_frames // 2)
    print(f"features: {len(train[0])} training, {len(valid[0])} validation crops in {time.time() - t0:.0f} s")
    before = head_report(model.global_head, *valid)
    head = fit_head(model.global_head, *train, epochs=args.epochs, seed=args.seed)
    after = head_report(head, *valid)
    for name, rep in (("before", before), ("after", after)):
        print(f"validation {name}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                                   for k, v in rep.items()))
    model.global_head = head
    model = model.to(memory_format=torch.contiguous_format)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "arch": model.arch,
                "metrics": {**metrics, **{f"presence_{k}": v for k, v in after.items()}}}, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from handsdk.script import run_script

    raise SystemExit(run_script(main))
