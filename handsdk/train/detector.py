"""Train the hand detector: ``python -m handsdk.train.detector --pack PACK --minutes 20``.

Each training frame places a pseudo-labelled hand at a random scale, position and rotation
(full circle) in a letterboxed 192² frame over a random background; a third of the frames are
two-hand mosaics. Targets are CenterNet heatmaps plus the crop geometry the tracker needs
(centre, side, wrist and middle-MCP points).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from handsdk.script import ArgumentParser

from ..nets import DetectorNet
from .augment import (
    Canvas,
    background_bank,
    hand_frame,
    photometric,
    pick_share,
    rect_matrices,
    to_crop_coords,
)
from .loop import (
    Trainer,
    add_common_arguments,
    parse_with_config,
    plot_curves,
    require_in_pack,
    setup,
)

STRIDE = 8


def _frames(canvas, lm, idx, size, frac, cxy, angle, upright=None):
    """Frames where hand ``idx`` has side ``frac*size`` and centre ``cxy`` (pixels), turned by
    ``angle`` from upright (or from the photo's own orientation where ``upright`` is False)."""
    h_angle, h_center, h_side = hand_frame(lm[idx])
    theta = angle if upright is None else torch.where(upright, h_angle + angle, angle)
    scale = h_side / (frac * size)  # image pixels per frame pixel
    c, s = torch.cos(theta), torch.sin(theta)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    # frame pixel p ↦ image  h_center + R (p - cxy) scale; the frame centre is p = size / 2
    d = (size / 2 - cxy) * scale[:, None]
    center = h_center + (rot @ d[..., None])[..., 0]
    m = rect_matrices(center, scale * size, theta, size)
    return canvas.sample(idx, m, size), m


def make_batch(canvas, lm, idx, idx2, bg, size, gen=None, full_circle: float = 0.5, turn: float = 0.0,
               hand_free: torch.Tensor | None = None, free_idx: torch.Tensor | None = None,
               hand_free_share: float = 0.0, min_frac: float = 0.12, others: torch.Tensor | None = None,
               faces: torch.Tensor | None = None, face_share: float = 0.0):
    """Frames (NHWC) and per-frame lists of hand landmarks in frame pixels (NaN: none).

    Of the re-framed hands ``full_circle`` are turned to any angle, the rest kept near upright;
    ``turn`` of the frames that keep the photo's own framing are turned a quarter or half turn
    whole, as a phone held sideways or upside down gives them — without it the detector learns
    that hands point up (its wrist → knuckle direction then errs more on turned photos).
    ``hand_free`` (pool size, 4): a teacher-verified hand-free strip per photo (-1: none); with
    ``hand_free_share`` > 0 that share of the frames shows only clutter from the strip of a photo
    drawn from ``free_idx`` — the lamp bases, door handles and sleeves the detector otherwise
    proposes as hands — with no hand to find. Re-framed hands span ``min_frac``–0.85 of the frame
    (log-uniform). ``others`` (pool size, K, 21, 2; NaN: none) are the photos' hands the label
    does not cover: they are targets too wherever the frame shows them, not background.
    ``faces`` (pool size, F, 4; NaN: none): face boxes x0, y0, x1, y1; with ``face_share`` > 0 that
    share of the frames (of photos that have one) is framed on a face, its side ``min_frac``–0.5 of
    the frame's, near upright — the faces the detector proposes as hands in a room it never saw,
    and small, as a person a few metres away shows them. Whatever hands the frame holds stay
    targets. The returned hands are the labelled ones (≤ 2), then those (≤ 2K)."""
    dev = canvas.device
    b = idx.shape[0]

    def r(*shape):
        return torch.rand(*shape, device=dev, generator=gen)

    full = r(b) < full_circle
    angle = torch.where(full, (r(b) - 0.5) * 2 * math.pi, torch.randn(b, device=dev, generator=gen) * 0.35)
    frac = torch.exp(math.log(min_frac) + r(b) * (math.log(0.85) - math.log(min_frac)))
    margin = frac * size * 0.4
    cxy = margin[:, None] + r(b, 2) * (size - 2 * margin[:, None])
    # a third keep the photo's own framing (letterboxed as at inference), slightly jittered
    natural = r(b) < 0.33
    if natural.any():
        n = int(natural.sum())
        _, h_center, h_side = hand_frame(lm[idx[natural]])
        wh = canvas.sizes[idx[natural]]
        zoom = size / wh.max(-1).values * (0.8 + 0.3 * r(n))
        frac[natural] = h_side * zoom / size
        cxy[natural] = (h_center - wh / 2) * zoom[:, None] + size / 2 + (r(n, 2) - 0.5) * 0.1 * size
        angle[natural] = torch.randn(n, device=dev, generator=gen) * 0.15
        if turn > 0:
            quarter = (torch.randint(1, 4, (n,), device=dev, generator=gen) * (r(n) < turn)).float() * (math.pi / 2)
            c, s = torch.cos(quarter), torch.sin(quarter)  # the whole frame turned about its centre
            v = cxy[natural] - size / 2
            cxy[natural] = size / 2 + torch.stack([c * v[:, 0] + s * v[:, 1], -s * v[:, 0] + c * v[:, 1]], -1)
            angle[natural] = angle[natural] + quarter
    x, m = _frames(canvas, lm, idx, size, frac, cxy, angle, upright=~natural)
    pts = [to_crop_coords(lm[idx, :, :2], m, size) * size]
    k = 0 if others is None else others.shape[1]
    extra = torch.full((b, 2 * k, 21, 2), float("nan"), device=dev)

    def in_frame(i, mat):  # the photos' other hands in frame pixels
        return to_crop_coords(others[i].reshape(len(i), -1, 2), mat, size).reshape(len(i), k, 21, 2) * size

    if k:
        extra[:, :k] = in_frame(idx, m)
    # two-hand mosaics: left half from one frame, right half from another
    mosaic = r(b) < 0.33
    if mosaic.any():
        n = int(mosaic.sum())
        f2 = 0.12 + r(n) * 0.18
        c1 = torch.stack([(0.15 + 0.15 * r(n)) * size, (0.25 + 0.5 * r(n)) * size], -1)
        c2 = torch.stack([(0.70 + 0.15 * r(n)) * size, (0.25 + 0.5 * r(n)) * size], -1)
        a1 = (r(n) - 0.5) * 2 * math.pi
        a2 = (r(n) - 0.5) * 2 * math.pi
        x1, m1 = _frames(canvas, lm, idx[mosaic], size, f2, c1, a1)
        x2, m2 = _frames(canvas, lm, idx2[mosaic], size, f2, c2, a2)
        half = size // 2
        x[mosaic] = torch.cat([x1[..., :half], x2[..., half:]], -1)
        p1 = to_crop_coords(lm[idx[mosaic], :, :2], m1, size) * size
        p2 = to_crop_coords(lm[idx2[mosaic], :, :2], m2, size) * size
        pts[0] = pts[0].clone()
        pts[0][mosaic] = p1
        second = torch.full_like(pts[0], float("nan"))
        second[mosaic] = p2
        pts.append(second)
        if k:  # each half keeps the other hands wholly on its side of the seam
            o1, o2 = in_frame(idx[mosaic], m1), in_frame(idx2[mosaic], m2)
            o1 = torch.where((o1[..., 0] < half).all(-1)[..., None, None], o1, float("nan"))
            o2 = torch.where((o2[..., 0] >= half).all(-1)[..., None, None], o2, float("nan"))
            extra[mosaic] = torch.cat([o1, o2], 1)
    if faces is not None and face_share > 0 and faces.shape[1]:
        box = faces[idx, 0].float()  # the photo's first face
        pick = ~mosaic & pick_share(torch.isfinite(box).all(-1), face_share, gen)
        if pick.any():
            n = int(pick.sum())
            face_side = (box[pick, 2:] - box[pick, :2]).max(-1).values
            face_frac = torch.exp(math.log(min_frac) + r(n) * (math.log(0.5) - math.log(min_frac)))
            side = face_side / face_frac  # the frame's side in image pixels
            reach = (side - face_side)[:, None] / 2  # the face anywhere inside the frame
            center = (box[pick, :2] + box[pick, 2:]) / 2 + (r(n, 2) * 2 - 1) * reach
            mf = rect_matrices(center, side, torch.randn(n, device=dev, generator=gen) * 0.15, size)
            x[pick] = canvas.sample(idx[pick], mf, size)
            hand = to_crop_coords(lm[idx[pick], :, :2], mf, size) * size
            mid = (hand.amin(1) + hand.amax(1)) / 2  # the hand is a target where its box's centre is in frame
            seen = ((mid >= 0) & (mid < size)).all(-1)
            pts[0] = pts[0].clone()
            pts[0][pick] = torch.where(seen[:, None, None], hand, float("nan"))
            extra[pick] = float("nan")
            if k:
                extra[pick, :k] = in_frame(idx[pick], mf)
    if hand_free is not None and free_idx is not None and len(free_idx) and hand_free_share > 0:
        pick = ~mosaic & (r(b) < hand_free_share)
        if pick.any():
            src = free_idx[torch.randint(0, len(free_idx), (int(pick.sum()),), device=dev, generator=gen)]
            x[pick] = strip_frames(canvas, src, hand_free[src].float(), size, gen)
            pts = [torch.where(pick[:, None, None], float("nan"), p) for p in pts]
            extra[pick] = float("nan")
    # random backgrounds where the frame falls outside the photo
    empty = (x.sum(1, keepdim=True) == 0).float()
    use_bg = (r(b, 1, 1, 1) < 0.7).float()
    x = x + empty * use_bg * bg[torch.randint(0, bg.shape[0], (b,), device=dev, generator=gen)]
    x = photometric(x, gen)
    if k:  # an other hand counts where its box's centre is in the frame (NaN compares False)
        mid = (extra.amin(2) + extra.amax(2)) / 2
        extra[~((mid >= 0) & (mid < size)).all(-1)] = float("nan")
    hands = torch.cat([torch.stack(pts, 1), extra], 1)
    return x.permute(0, 2, 3, 1).contiguous(), hands  # (B, H, 21, 2)


def strip_frames(canvas, idx, strip, size, gen=None, train: bool = True):
    """Frames cut wholly inside hand-free strips (x0, y0, x1, y1): a square of 0.4–0.9 × the strip's
    short side turned a multiple of 90° (± 6°), or its largest upright square at the centre when
    not ``train`` — so no part of the hand beside the strip is ever in the frame."""
    dev = canvas.device
    n = idx.shape[0]
    lo, hi = strip[:, :2], strip[:, 2:]
    short = (hi - lo).min(-1).values
    if not train:
        return canvas.sample(idx, rect_matrices((lo + hi) / 2, short, torch.zeros(n, device=dev), size), size)
    side = short * (0.4 + 0.5 * torch.rand(n, device=dev, generator=gen))
    angle = (torch.randint(0, 4, (n,), device=dev, generator=gen) * (math.pi / 2)
             + (torch.rand(n, device=dev, generator=gen) * 2 - 1) * 0.1)
    reach = side / 2 * (angle.cos().abs() + angle.sin().abs())  # half the turned square's extent
    u = torch.rand(n, 2, device=dev, generator=gen)
    center = lo + reach[:, None] + u * (hi - lo - 2 * reach[:, None]).clamp_min(0)
    return canvas.sample(idx, rect_matrices(center, side, angle, size), size)


def targets(hands: torch.Tensor, size: int):
    """CenterNet targets on the stride-8 grid from (B, H, 21, 2) frame-pixel landmarks."""
    b, nh = hands.shape[:2]
    g = size // STRIDE
    dev = hands.device
    heat = torch.zeros(b, 1, g, g, device=dev)
    geom = torch.zeros(b, 7, g, g, device=dev)
    mask = torch.zeros(b, 1, g, g, device=dev)
    ys, xs = torch.meshgrid(torch.arange(g, device=dev), torch.arange(g, device=dev), indexing="ij")
    for h in range(nh):
        p = hands[:, h]
        ok = ~torch.isnan(p).any(-1).any(-1)
        if not ok.any():
            continue
        pp = torch.nan_to_num(p)
        _, center, side = hand_frame(pp)
        cc = center / STRIDE
        sigma = (side / STRIDE / 6).clamp_min(0.6)
        gauss = torch.exp(-((xs[None] + 0.5 - cc[:, 0, None, None]) ** 2 +
                            (ys[None] + 0.5 - cc[:, 1, None, None]) ** 2) / (2 * sigma[:, None, None] ** 2))
        gauss = gauss * ok[:, None, None].float()
        heat[:, 0] = torch.maximum(heat[:, 0], gauss)
        ci = cc.floor().long().clamp(0, g - 1)
        k = torch.where(ok)[0]
        cx, cy = ci[k, 0], ci[k, 1]
        sk = side[k].clamp_min(1.0)
        vals = torch.cat([cc[k] - (ci[k].float() + 0.5), torch.log(sk / size)[:, None],
                          (pp[k, 0] - center[k]) / sk[:, None], (pp[k, 9] - center[k]) / sk[:, None]], 1)
        geom[k, :, cy, cx] = vals
        mask[k, 0, cy, cx] = 1.0
        heat[k, 0, cy, cx] = 1.0
    return heat, geom, mask


def losses(heat_logit, geom_pred, heat_t, geom_t, mask):
    p = torch.sigmoid(heat_logit).clamp(1e-4, 1 - 1e-4)
    pos = (heat_t >= 1.0).float()
    n = pos.sum().clamp_min(1)
    focal = -(pos * (1 - p) ** 2 * torch.log(p) +
              (1 - pos) * (1 - heat_t) ** 4 * p ** 2 * torch.log(1 - p)).sum() / n
    w = torch.tensor([1, 1, 2, 2, 2, 2, 2], device=geom_pred.device, dtype=geom_pred.dtype)[None, :, None, None]
    l_geom = (F.smooth_l1_loss(geom_pred, geom_t, reduction="none", beta=0.05) * w * mask).sum() / n
    return focal + l_geom, {"focal": focal.detach(), "geom": l_geom.detach()}


@torch.no_grad()
def validate(model, canvas, lm, idx, size, hand_free: torch.Tensor | None = None):
    """On letterboxed held-out photos, as they are and turned a quarter turn (the tracker meets
    both): share found (centre within 0.25 side, side within ±30 %) and the mean angle error of the
    found ones. ``found`` — what picks ``best.pt`` — is the mean over the two. With ``hand_free``
    also ``false_found``: the share of the held-out photos' hand-free strips with a peak > 0.3."""
    model.eval()
    out = {}
    if hand_free is not None:
        with_strip, peaks = idx[hand_free[idx, 0] >= 0], []
        for s in range(0, len(with_strip), 128):
            bi = with_strip[s:s + 128]
            x = strip_frames(canvas, bi, hand_free[bi].float(), size, train=False)
            peaks.append(model(x.permute(0, 2, 3, 1).contiguous())[0].flatten(1).max(-1).values)
        if peaks:
            out["false_found"] = float((torch.cat(peaks) > 0.3).float().mean())
    for name, turn in (("upright", 0.0), ("turned", math.pi / 2)):
        found, ang_err = [], []
        for s in range(0, len(idx), 128):
            bi = idx[s:s + 128]
            wh = canvas.sizes[bi]
            side_img = wh.max(-1).values
            m = rect_matrices(wh / 2, side_img, torch.full_like(side_img, turn), size)
            x = canvas.sample(bi, m, size).permute(0, 2, 3, 1).contiguous()
            heat, geom = model(x)
            pts = to_crop_coords(lm[bi, :, :2], m, size) * size
            a_t, c_t, s_t = hand_frame(pts)
            g = size // STRIDE
            flat = heat.reshape(len(bi), -1)
            score, best = flat.max(-1)
            cy, cx = best // g, best % g
            gp = geom[torch.arange(len(bi)), :, cy, cx]
            c = (torch.stack([cx, cy], -1).float() + 0.5 + gp[:, :2]) * STRIDE
            side = torch.exp(gp[:, 2]) * size
            v = gp[:, 5:7] - gp[:, 3:5]
            a = torch.atan2(v[:, 0], -v[:, 1])
            ok = (score > 0.3) & ((c - c_t).norm(dim=-1) < 0.25 * s_t) & ((side / s_t - 1).abs() < 0.3)
            found.append(ok.float())
            d = torch.remainder(a - a_t + math.pi, 2 * math.pi) - math.pi
            ang_err.append(d.abs()[ok])
        ae = torch.cat(ang_err) if ang_err else torch.zeros(0)
        out[f"found_{name}"] = float(torch.cat(found).mean()) if found else 0.0
        out[f"angle_err_{name}_deg"] = float(ae.mean() * 180 / math.pi) if len(ae) else 180.0
    model.train()
    out["found"] = (out["found_upright"] + out["found_turned"]) / 2
    return out


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="python -m handsdk.train.detector", description=__doc__)
    ap.add_argument("--workdir", type=Path, default=Path.home() / ".cache/handsdk/detector")
    add_common_arguments(ap, minutes=20.0, input_size=192, batch_help="0: 128 on a GPU, 32 on a CPU", seed=1)
    ap.add_argument("--full-circle", type=float, default=0.5,
                    help="share of the re-framed hands turned to any angle (the rest near upright)")
    ap.add_argument("--turn", type=float, default=0.0,
                    help="share of the photo-framed frames turned a quarter or half turn whole")
    ap.add_argument("--hand-free-share", type=float, default=0.0,
                    help="share of the frames cut from teacher-verified hand-free strips: clutter, no hand "
                         "(needs a pack with hand_free)")
    ap.add_argument("--face-share", type=float, default=0.0,
                    help="share of the frames framed on the faces in the photos, small to large, the hands "
                         "they hold still targets (needs a pack with faces: scripts/mine_faces.py). At 0.15 "
                         "for 40 CPU minutes: fewer peaks on faces in its own frames, no fewer false hands "
                         "end to end (docs/experiments.md)")
    ap.add_argument("--min-hand-frac", type=float, default=0.12,
                    help="smallest re-framed hand, as a share of the frame side (a person's hand a few "
                         "metres from the camera is ~0.05)")
    args = parse_with_config(ap, argv)
    dev, batch, lr, pool = setup(args, gpu_batch=128, cpu_batch=32)
    canvas = Canvas(pool.images, dev)
    lm = torch.from_numpy(pool.landmarks).to(dev)
    size = args.input_size
    bg = background_bank(size, seed=args.seed, device=dev)
    train_idx = np.where(~pool.valid)[0]
    val = np.where(pool.valid & ~pool.synthetic)[0]
    val_idx = torch.from_numpy(val if len(val) else np.where(pool.valid)[0]).to(dev)
    hand_free = torch.from_numpy(pool.hand_free).to(dev)
    free_idx = torch.from_numpy(train_idx[pool.hand_free[train_idx, 0] >= 0]).to(dev)
    others = torch.from_numpy(pool.others).to(dev)
    faces = torch.from_numpy(pool.faces).to(dev)
    print(f"other hands (targets too): {int((~torch.isnan(others[:, :, 0, 0])).sum())} in "
          f"{int((~torch.isnan(others[:, :, 0, 0])).any(1).sum())} photos")
    require_in_pack(pool, args.hand_free_share, args.face_share)
    net = DetectorNet(input_size=size)
    tr = Trainer(net, args.workdir, args.minutes * 60, lr, dev, args.resume,
                 init=args.init, arch=net.arch, budget_crops=args.crops,
                 stop_after_s=args.stop_after * 60)
    rng = np.random.default_rng(args.seed + tr.step)
    while not tr.done():
        i1 = torch.from_numpy(rng.choice(train_idx, batch)).to(dev)
        i2 = torch.from_numpy(rng.choice(train_idx, batch)).to(dev)
        x, hands = make_batch(canvas, lm, i1, i2, bg, size, full_circle=args.full_circle, turn=args.turn,
                               hand_free=hand_free, free_idx=free_idx, hand_free_share=args.hand_free_share,
                               min_frac=args.min_hand_frac, others=others, faces=faces,
                               face_share=args.face_share)
        heat_t, geom_t, mask = targets(hands, size)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            heat, geom = tr.model.forward_raw(x)
        loss, parts = losses(heat.float(), geom.float(), heat_t, geom_t, mask)
        tr.update(loss, len(x))
        tr.log_step(loss, parts)
        if tr.validation_due(args.val_every):
            metrics = validate(tr.ema, canvas, lm, val_idx, size, hand_free)
            better = tr.checkpoint({"loss": float(loss.detach()), **metrics}, "found")
            print(f"  val found {metrics['found_upright']:.4f} upright, {metrics['found_turned']:.4f} turned; "
                  f"angle err {metrics['angle_err_upright_deg']:.1f}° / {metrics['angle_err_turned_deg']:.1f}°; "
                  f"peaks on {metrics.get('false_found', float('nan')):.3f} of hand-free strips "
                  f"{'(best)' if better else ''}", flush=True)
    plot_curves(tr.log_path, args.workdir / "curves.png",
                ["loss", "found_upright", "found_turned", "angle_err_upright_deg", "angle_err_turned_deg",
                 "false_found"])
    print(tr.closing_line("found"))
    return 0


if __name__ == "__main__":
    from handsdk.script import run_script

    raise SystemExit(run_script(main))
