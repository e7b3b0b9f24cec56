"""Train the landmark model: ``python -m handsdk.train.landmark --pack PACK --minutes 40``.

Crops are cut around the pseudo-labelled hands with the tracker's own crop geometry, jittered
(rotation, scale, shift), given a random background behind the hand (``--background-share``),
flipped with handedness swapped, colour/blur/noise/occlusion augmented, cut by a frame edge
(``--edge-cut-share``), pasted on real hand-free backgrounds (``--real-backgrounds``); 15 % of each batch are
crops beside the hand, ``--hand-free-share`` are crops of the photos' teacher-verified
hand-free strips and ``--face-share`` crops of the faces in them (``faces`` in the labels), which
train the presence head. ``--anchor MODEL`` replaces the labels' landmarks with a frozen model's
reading of each crop.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from handsdk.script import ArgumentParser

from ..nets import LandmarkNet
from .augment import (
    Canvas,
    background_bank,
    edge_cut,
    hand_frame,
    photometric,
    pick_share,
    random_angle_jitter,
    random_stretch,
    real_background_bank,
    rect_matrices,
    replace_background,
    to_crop_coords,
)
from .export import load_checkpoint
from .loop import (
    Trainer,
    add_common_arguments,
    parse_with_config,
    plot_curves,
    require_in_pack,
    setup,
)

#: what curves.png plots, here and in scripts/long_run.sh --save
CURVES = ["loss", "pck10", "epe_px"]
CROP_SCALE = 1.5  # crop side / hand's rotated bounding-box side; the tracker uses the same


def make_batch(canvas: Canvas, pool_lm: torch.Tensor, pool_right: torch.Tensor, idx: torch.Tensor,
               size: int, train: bool, neg_fraction: float = 0.15, gen=None,
               backgrounds: torch.Tensor | None = None, background_share: float = 0.0,
               hand_free: torch.Tensor | None = None, hand_free_share: float = 0.0,
               motion_blur: float = 0.0, low_light: float = 0.0, stretch: float = 0.0,
               edge_cut_share: float = 0.0, others: torch.Tensor | None = None,
               faces: torch.Tensor | None = None, face_share: float = 0.0):
    """Cut crops for ``idx`` → (input NHWC, targets dict).

    ``hand_free`` (pool size, 4): a teacher-verified hand-free strip per photo (x0, y0, x1, y1;
    -1 for none); with ``hand_free_share`` > 0 that share of the batch (photos that have one)
    becomes random crops lying wholly inside the strip — real clutter, presence 0.
    ``others`` (pool size, K, 21, 2; NaN: none): the photos' hands the label does not cover. A
    crop beside the labelled hand that holds a third of another hand's points is not taught as
    "no hand" (presence weight 0): the signer's other hand is often right beside the labelled one.
    ``faces`` (pool size, F, 4; NaN: none): face boxes x0, y0, x1, y1; with ``face_share`` > 0 that
    share of the batch (photos that have one) becomes crops on a face, 1.2-2.5 × its size at any
    angle — the unseen lab's false hands are faces. Their targets follow from what the crop holds,
    as for every crop: a hand in front of the face stays a hand.
    """
    dev = canvas.device
    b = idx.shape[0]
    lm = pool_lm[idx]
    angle, center, side = hand_frame(lm)
    side = side * CROP_SCALE
    if train:
        angle = angle + random_angle_jitter(b, dev, gen)
        side = side * torch.exp((torch.rand(b, device=dev, generator=gen) - 0.4) * 0.45)
        center = center + torch.randn(b, 2, device=dev, generator=gen) * 0.06 * side[:, None]
        neg = torch.rand(b, device=dev, generator=gen) < neg_fraction
        if neg.any():
            n = int(neg.sum())
            theta = torch.rand(n, device=dev, generator=gen) * 2 * math.pi
            dist = side[neg] * (0.9 + 1.2 * torch.rand(n, device=dev, generator=gen))
            center[neg] += torch.stack([torch.cos(theta), torch.sin(theta)], -1) * dist[:, None]
            side[neg] *= 0.5 + 1.5 * torch.rand(n, device=dev, generator=gen)
        if hand_free is not None and hand_free_share > 0:
            strip = hand_free[idx].float()
            pick = pick_share(strip[:, 0] >= 0, hand_free_share, gen)
            if pick.any():
                lo, hi = strip[pick, :2], strip[pick, 2:]
                short = (hi - lo).min(-1).values
                # a rotated square reaches 0.71 x its side from its centre: keep it inside the strip
                side[pick] = short * (0.3 + 0.4 * torch.rand(int(pick.sum()), device=dev, generator=gen))
                reach = 0.71 * side[pick, None]
                u = torch.rand(int(pick.sum()), 2, device=dev, generator=gen)
                center[pick] = lo + reach + u * (hi - lo - 2 * reach).clamp_min(0)
                angle[pick] = (torch.rand(int(pick.sum()), device=dev, generator=gen) * 2 - 1) * math.pi
        if faces is not None and face_share > 0 and faces.shape[1]:
            box = faces[idx, 0].float()  # the photo's first face
            pick = pick_share(torch.isfinite(box).all(-1), face_share, gen)
            if pick.any():
                n = int(pick.sum())
                wh = box[pick, 2:] - box[pick, :2]
                side[pick] = wh.max(-1).values * (1.2 + 1.3 * torch.rand(n, device=dev, generator=gen))
                center[pick] = (box[pick, :2] + box[pick, 2:]) / 2 + (
                    torch.rand(n, 2, device=dev, generator=gen) - 0.5) * 0.3 * wh
                angle[pick] = (torch.rand(n, device=dev, generator=gen) * 2 - 1) * math.pi
    m = rect_matrices(center, side, angle, size)
    if train and stretch > 0:
        m = random_stretch(m, size, stretch, gen)
    x = canvas.sample(idx, m, size)
    xy = to_crop_coords(lm[..., :2], m, size)
    z = lm[..., 2] / side[:, None]
    right = pool_right[idx].clone()
    if train:
        if backgrounds is not None and background_share > 0:
            x = replace_background(x, xy, backgrounds, background_share, gen)
        if edge_cut_share > 0:
            x = edge_cut(x, xy, edge_cut_share, gen)
        x = photometric(x, gen, motion_blur=motion_blur, low_light=low_light)
        flip = torch.rand(b, device=dev, generator=gen) < 0.5
        x[flip] = x[flip].flip(-1)
        xy[flip, :, 0] = 1 - xy[flip, :, 0]
        right[flip] = 1 - right[flip]
    inside = ((xy > 0) & (xy < 1)).all(-1).float().mean(-1)
    presence = (inside >= 0.85).float()
    presence_w = ((inside >= 0.85) | (inside <= 0.3)).float()
    if others is not None and others.shape[1]:
        o = to_crop_coords(others[idx].reshape(b, -1, 2), m, size).reshape(b, others.shape[1], 21, 2)
        holds_other = (((o > 0) & (o < 1)).all(-1).float().mean(-1) > 1 / 3).any(-1)  # NaN: outside
        presence_w = torch.where((presence == 0) & holds_other, 0.0, presence_w)
    targets = {"xy": xy, "z": z, "right": right, "presence": presence, "presence_w": presence_w}
    return x.permute(0, 2, 3, 1).contiguous(), targets


def simcc_targets(coords: torch.Tensor, centers: torch.Tensor, sigma: float) -> torch.Tensor:
    d = coords[..., None] - centers
    t = torch.exp(-0.5 * (d / sigma) ** 2)
    return t / t.sum(-1, keepdim=True).clamp_min(1e-12)


def losses(model: LandmarkNet, raw: dict, t: dict,
           anchor: dict | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss; with ``anchor`` (a frozen model's raw outputs on the same crops) its
    landmark readings replace the labels' on every crop (learning without forgetting, Li and
    Hoiem 2016): presence and handedness learn from the labels while the landmarks stay that
    model's."""
    dec = model.decode(raw)
    hand = t["presence"] * t["presence_w"]  # the crops whose landmarks the labels teach
    if anchor is None:
        pos = hand
        sigma = 2.5 * float(model.bin_centers[1] - model.bin_centers[0])
        tx = simcc_targets(t["xy"][..., 0], model.bin_centers, sigma)
        ty = simcc_targets(t["xy"][..., 1], model.bin_centers, sigma)
        txy, tz = t["xy"], t["z"]
    else:
        pos = torch.ones_like(hand)
        tx, ty = torch.softmax(anchor["x_logits"], -1), torch.softmax(anchor["y_logits"], -1)
        a = model.decode(anchor)["landmarks"]
        txy, tz = a[..., :2], a[..., 2]
    npos = pos.sum().clamp_min(1)
    ce = -(tx * F.log_softmax(raw["x_logits"], -1)).sum(-1) - (
        ty * F.log_softmax(raw["y_logits"], -1)).sum(-1)
    l_simcc = (ce.mean(-1) * pos).sum() / npos
    err = (dec["landmarks"][..., :2] - txy).norm(dim=-1)
    l_coord = (err.mean(-1) * pos).sum() / npos
    l_z = ((dec["landmarks"][..., 2] - tz).abs().mean(-1) * pos).sum() / npos
    conf_t = (torch.exp(-((err.detach() / 0.05) ** 2)) if anchor is None
              else torch.sigmoid(anchor["conf_logit"]))
    l_conf = (F.binary_cross_entropy_with_logits(raw["conf_logit"], conf_t, reduction="none")
              .mean(-1) * pos).sum() / npos
    l_pres = (F.binary_cross_entropy_with_logits(raw["presence_logit"], t["presence"],
                                                 reduction="none") * t["presence_w"]).mean()
    sure = hand * ((t["right"] - 0.5).abs() > 0.3).float()
    l_hand = (F.binary_cross_entropy_with_logits(raw["handedness_logit"], t["right"],
                                                 reduction="none") * sure).sum() / sure.sum().clamp_min(1)
    total = l_simcc + 10 * l_coord + 2 * l_z + 0.5 * l_conf + l_pres + 0.5 * l_hand
    parts = {"simcc": l_simcc, "coord": l_coord, "presence": l_pres, "hand": l_hand}
    return total, {k: v.detach() for k, v in parts.items()}


@torch.no_grad()
def validate(model: LandmarkNet, canvas: Canvas, lm: torch.Tensor, right: torch.Tensor,
             idx: torch.Tensor, size: int, groups: np.ndarray) -> dict[str, float]:
    """PCK@0.1 / @0.2 (error / max side of the reference keypoints' box) on untouched crops."""
    model.eval()
    errs, norms, pres, hand_ok = [], [], [], []
    for s in range(0, len(idx), 256):
        bi = idx[s:s + 256]
        x, t = make_batch(canvas, lm, right, bi, size, train=False)
        d = model.decode(model.forward_raw(x))
        _, _, side = hand_frame(lm[bi])
        e = (d["landmarks"][..., :2] - t["xy"]).norm(dim=-1) * side[:, None] * CROP_SCALE
        box = lm[bi, :, :2].max(1).values - lm[bi, :, :2].min(1).values
        errs.append(e)
        norms.append(box.max(-1).values)
        pres.append(d["presence"][:, 0])
        sure = (t["right"] - 0.5).abs() > 0.3
        hand_ok.append(((d["handedness"][:, 0] > 0.5) == (t["right"] > 0.5))[sure].float())
    e, n = torch.cat(errs), torch.cat(norms)
    r = e / n[:, None]
    out = {"pck10": float((r < 0.1).float().mean()), "pck20": float((r < 0.2).float().mean()),
           "epe_px": float(e.mean()), "presence_mean": float(torch.cat(pres).mean()),
           "handedness_acc": float(torch.cat(hand_ok).mean())}
    for name in np.unique(groups):
        sel = torch.from_numpy(groups == name).to(r.device)
        out[f"pck10_{name}"] = float((r[sel] < 0.1).float().mean())
    model.train()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="python -m handsdk.train.landmark", description=__doc__)
    ap.add_argument("--workdir", type=Path, default=Path.home() / ".cache/handsdk/landmark")
    add_common_arguments(ap, minutes=30.0, input_size=224, batch_help="0: 256 on a GPU, 48 on a CPU", seed=0)
    ap.add_argument("--width", type=float, default=1.0,
                    help="MobileNetV3-Small width multiplier (1.0: every model shipped so far; 1.5 costs "
                         "1.7-2.0 ms more per crop on 1 thread, the tracker's default: 3.90x MediaPipe full "
                         "end to end with the tracker's overlap_detector, 2.43x without; docs/benchmarks.md)")
    ap.add_argument("--synthetic-weight", type=float, default=0.2, help="share of each batch")
    ap.add_argument("--background-share", type=float, default=0.3,
                    help="share of the crops given a random background behind the hand")
    ap.add_argument("--motion-blur-share", type=float, default=0.0,
                    help="share of the crops streaked by motion blur (measured mixed on a CPU fine-tune: "
                         "docs/experiments.md)")
    ap.add_argument("--stretch-share", type=float, default=0.0,
                    help="share of the crops stretched along a random direction by up to ±22 %% (area kept)")
    ap.add_argument("--low-light-share", type=float, default=0.0,
                    help="share of the crops made dark and noisy (same experiment)")
    ap.add_argument("--edge-cut-share", type=float, default=0.15,
                    help="share of the crops blanked beyond a random edge through the hand (a close-up "
                         "hand cut by the frame's border)")
    ap.add_argument("--real-backgrounds", type=int, default=400,
                    help="cuts of the photos' hand-free strips added to the pasted-background bank")
    ap.add_argument("--hand-free-share", type=float, default=0.1,
                    help="share of the crops cut from the photos' teacher-verified hand-free strips "
                         "(negatives for the presence head; needs a pack with hand_free)")
    ap.add_argument("--face-share", type=float, default=0.0,
                    help="share of the crops cut on the faces in the photos (negatives for the presence head; "
                         "needs a pack with faces: scripts/mine_faces.py). A CPU fine-tune at 0.1: "
                         "fewer false hands, less precise on unseen sets (docs/experiments.md); "
                         "for the long run")
    ap.add_argument("--anchor", type=Path,
                    help="a frozen landmark model (.pt) whose reading of each crop replaces the labels' "
                         "landmarks: presence learns new crops (e.g. --face-share) while the landmarks "
                         "stay that model's. With --face-share 0.1 on a CPU fine-tune the landmarks held "
                         "but the false hands did not fall (docs/experiments.md)")
    args = parse_with_config(ap, argv)
    dev, batch, lr, pool = setup(args, gpu_batch=256, cpu_batch=48)
    canvas = Canvas(pool.images, dev)
    backgrounds = background_bank(args.input_size, seed=args.seed, device=dev)
    real = (real_background_bank(pool.images, pool.hand_free, args.input_size, args.real_backgrounds,
                                 args.seed, dev) if args.real_backgrounds else None)
    if real is not None:
        backgrounds = torch.cat([backgrounds, real])
    lm = torch.from_numpy(pool.landmarks).to(dev)
    right = torch.from_numpy(pool.right).to(dev)
    hand_free = torch.from_numpy(pool.hand_free).to(dev)
    others = torch.from_numpy(pool.others).to(dev)
    faces = torch.from_numpy(pool.faces).to(dev)
    require_in_pack(pool, face_share=args.face_share)  # hand-free strips: used where the pack has them
    train_real = np.where(~pool.valid & ~pool.synthetic)[0]
    train_syn = np.where(~pool.valid & pool.synthetic)[0]
    val_idx = np.where(pool.valid)[0]
    val_t = torch.from_numpy(val_idx).to(dev)
    model = LandmarkNet(args.input_size, width=args.width)
    tr = Trainer(model, args.workdir, args.minutes * 60, lr, dev, args.resume, init=args.init,
                 arch=model.arch, budget_crops=args.crops, stop_after_s=args.stop_after * 60)
    anchor = None
    if args.anchor is not None:
        if not args.anchor.is_file():
            raise SystemExit(f"--anchor {args.anchor}: no such file (a landmark .pt: models/landmark.pt, a best.pt)")
        anchor = load_checkpoint(args.anchor, "landmark")[0].to(dev)
        anchor.requires_grad_(False)
    rng = np.random.default_rng(args.seed + tr.step)
    while not tr.done():
        n_syn = int(round(batch * args.synthetic_weight)) if len(train_syn) else 0
        if not len(train_real):  # no photos (a smoke test): synthetic only
            n_syn = batch
        idx = np.concatenate([rng.choice(train_real, batch - n_syn) if batch > n_syn else [],
                              rng.choice(train_syn, n_syn) if n_syn else []]).astype(np.int64)
        x, t = make_batch(canvas, lm, right, torch.from_numpy(idx).to(dev), args.input_size, True,
                          backgrounds=backgrounds, background_share=args.background_share,
                          hand_free=hand_free, hand_free_share=args.hand_free_share,
                          motion_blur=args.motion_blur_share, low_light=args.low_light_share,
                          stretch=args.stretch_share, edge_cut_share=args.edge_cut_share, others=others,
                          faces=faces, face_share=args.face_share)
        if dev.type == "cpu":
            x = x.contiguous()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            raw = tr.model.forward_raw(x)
            anchor_raw = None
            if anchor is not None:
                with torch.no_grad():
                    anchor_raw = anchor.forward_raw(x)
        raw = {k: v.float() for k, v in raw.items()}
        if anchor_raw is not None:
            anchor_raw = {k: v.float() for k, v in anchor_raw.items()}
        loss, parts = losses(tr.model, raw, t, anchor_raw)
        tr.update(loss, len(idx))
        tr.log_step(loss, parts)
        if tr.validation_due(args.val_every):
            metrics = validate(tr.ema, canvas, lm, right, val_t, args.input_size, pool.dataset[val_idx])
            better = tr.checkpoint({"loss": float(loss.detach()), **metrics}, "pck10")
            print(f"  val pck10 {metrics['pck10']:.4f} pck20 {metrics['pck20']:.4f} "
                  f"epe {metrics['epe_px']:.2f}px {'(best)' if better else ''} " +
                  " ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k.startswith("pck10_")),
                  flush=True)
    plot_curves(tr.log_path, args.workdir / "curves.png", CURVES)
    print(tr.closing_line("pck10"))
    return 0


if __name__ == "__main__":
    from handsdk.script import run_script

    raise SystemExit(run_script(main))
