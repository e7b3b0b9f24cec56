"""Batched augmentation in torch, on whatever device trains (GPU or CPU).

Crops are cut with one ``grid_sample`` per batch from a padded canvas of source images, so a
GPU is never starved by a 2-core loader.
"""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..types import HAND_CONNECTIONS

PALM = (0, 1, 5, 9, 13, 17)


class Canvas:
    """Source images padded into one (N, 3, S, S) uint8 tensor, with their true sizes."""

    def __init__(self, images: list[np.ndarray], device: torch.device, side: int | None = None):
        side = side or max(max(im.shape[:2]) for im in images)
        data = np.zeros((len(images), side, side, 3), np.uint8)
        sizes = np.zeros((len(images), 2), np.float32)
        for i, im in enumerate(images):
            h, w = im.shape[:2]
            data[i, :h, :w] = im[:, :, ::-1]  # BGR → RGB
            sizes[i] = (w, h)
        self.data = torch.from_numpy(data).to(device).permute(0, 3, 1, 2).contiguous()
        self.sizes = torch.from_numpy(sizes).to(device)
        self.side = side
        self.device = device

    def __len__(self) -> int:
        return self.data.shape[0]

    def sample(self, idx: torch.Tensor, crop_to_image: torch.Tensor, out_size: int) -> torch.Tensor:
        """Warp images ``idx`` with per-sample 2×3 crop-pixel → image-pixel matrices.

        Returns (B, 3, out, out) float in [0, 1]; outside the image is zero, like the tracker.
        """
        b = idx.shape[0]
        s = self.side
        # crop normalised u ∈ [-1, 1] → crop pixel p = (u + 1) * out / 2 - 0.5
        n_crop_inv = torch.tensor([[out_size / 2, 0, out_size / 2 - 0.5],
                                   [0, out_size / 2, out_size / 2 - 0.5], [0, 0, 1]],
                                  device=self.device, dtype=torch.float32)
        # image pixel q → image normalised v = (q + 0.5) * 2 / s - 1
        n_img = torch.tensor([[2 / s, 0, 1 / s - 1], [0, 2 / s, 1 / s - 1]],
                             device=self.device, dtype=torch.float32)
        m = torch.cat([crop_to_image, torch.tensor([0, 0, 1.0], device=self.device)
                       .expand(b, 1, 3)], 1)
        theta = n_img @ m @ n_crop_inv
        grid = F.affine_grid(theta, (b, 3, out_size, out_size), align_corners=False)
        src = self.data[idx].float() / 255.0
        out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        # zero what lies outside the image's true size (the canvas is padded)
        q = (grid + 1) * s / 2  # image pixel coords of each output pixel
        wh = self.sizes[idx][:, None, None, :]
        inside = ((q >= 0) & (q < wh)).all(-1)
        return out * inside[:, None].float()


def rect_matrices(center: torch.Tensor, side: torch.Tensor, angle: torch.Tensor,
                  out_size: int) -> torch.Tensor:
    """Batched :func:`handsdk.geometry.crop_to_image_matrix` (B, 2, 3)."""
    c, s = torch.cos(angle), torch.sin(angle)
    k = side / out_size
    lin = torch.stack([torch.stack([c * k, -s * k], -1), torch.stack([s * k, c * k], -1)], -2)
    offset = center - (lin @ torch.full_like(center, out_size / 2)[..., None])[..., 0]
    return torch.cat([lin, offset[..., None]], -1)


def random_stretch(m: torch.Tensor, out_size: int, share: float, gen: torch.Generator | None = None,
                   max_log: float = 0.2) -> torch.Tensor:
    """Stretch a ``share`` of the crops (B, 2, 3 crop → image) along a random direction by up to
    e^±``max_log`` (area kept, crop centre fixed): phone photos resized to a square stretch hands so."""
    b, dev = m.shape[0], m.device
    a = (torch.rand(b, device=dev, generator=gen) * 2 - 1) * max_log
    a = a * (torch.rand(b, device=dev, generator=gen) < share)
    phi = torch.rand(b, device=dev, generator=gen) * math.pi
    c, s = torch.cos(phi), torch.sin(phi)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    scale = torch.diag_embed(torch.stack([torch.exp(a), torch.exp(-a)], -1))
    stretch = rot @ scale @ rot.transpose(1, 2)
    lin = m[..., :2]
    mid = torch.full((b, 2, 1), out_size / 2, device=dev)
    offset = m[..., 2] + (lin @ (mid - stretch @ mid))[..., 0]
    return torch.cat([lin @ stretch, offset[..., None]], -1)


def hand_frame(landmarks: torch.Tensor):
    """Angle (wrist → middle MCP up) and the rotated bounding box (centre, side) of each hand."""
    v = landmarks[:, 9, :2] - landmarks[:, 0, :2]
    angle = torch.atan2(v[:, 0], -v[:, 1])
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (B, 2, 2)
    local = landmarks[..., :2] @ rot  # R^T p for each point
    lo, hi = local.min(1).values, local.max(1).values
    mid = (lo + hi) / 2
    center = (rot @ mid[..., None])[..., 0]
    side = (hi - lo).max(-1).values
    return angle, center, side


def to_crop_coords(points: torch.Tensor, crop_to_image: torch.Tensor, out_size: int) -> torch.Tensor:
    """Image-pixel points (B, K, 2) → crop-normalised [0, 1] coordinates."""
    lin, off = crop_to_image[..., :2], crop_to_image[..., 2]
    inv = torch.linalg.inv(lin)
    p = (points - off[:, None, :]) @ inv.transpose(1, 2)
    return p / out_size


def motion_blur_kernels(length: torch.Tensor, angle: torch.Tensor, size: int) -> torch.Tensor:
    """(n, size, size) line kernels: ``length`` pixels long (≤ size), at ``angle`` radians."""
    n = length.shape[0]
    t = torch.linspace(-0.5, 0.5, 4 * size, device=length.device)[None, :] * (length[:, None] - 1).clamp(min=0)
    c = (size - 1) / 2
    xs = (c + t * torch.cos(angle)[:, None]).round().long().clamp(0, size - 1)
    ys = (c + t * torch.sin(angle)[:, None]).round().long().clamp(0, size - 1)
    k = torch.zeros(n, size * size, device=length.device)
    k.scatter_add_(1, ys * size + xs, torch.ones_like(t.expand(n, -1)))
    return (k / k.sum(1, keepdim=True)).reshape(n, size, size)


def photometric(x: torch.Tensor, gen: torch.Generator | None = None, motion_blur: float = 0.0,
                low_light: float = 0.0) -> torch.Tensor:
    """Colour, grey, blur, motion blur, low light, down-up sampling, noise and cut-out
    occlusion on a (B, 3, H, W) batch; ``motion_blur`` and ``low_light`` are the shares of the
    batch given a streak (3-11 % of the side, any direction) and a dark, noisy exposure
    (gamma 1.5-2.5, 40-80 % exposure) — a moving hand, a dim room."""
    b, _, h, w = x.shape
    dev = x.device

    def r(*shape):
        return torch.rand(*shape, device=dev, generator=gen)

    gain = 0.6 + 0.8 * r(b, 1, 1, 1)
    tint = 0.85 + 0.3 * r(b, 3, 1, 1)
    bias = (r(b, 1, 1, 1) - 0.5) * 0.3
    mean = x.mean((1, 2, 3), keepdim=True)
    contrast = 0.6 + 0.8 * r(b, 1, 1, 1)
    x = ((x - mean) * contrast + mean) * gain * tint + bias
    grey = (r(b, 1, 1, 1) < 0.1).float()
    x = grey * x.mean(1, keepdim=True).expand_as(x) + (1 - grey) * x
    # blur: a 5-tap box/gaussian on a random third of the batch
    k = torch.tensor([1, 4, 6, 4, 1], device=dev, dtype=x.dtype)
    k = (k[:, None] * k[None, :]) / 256
    blurred = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), k.expand(3, 1, 5, 5), groups=3)
    sel = (r(b, 1, 1, 1) < 0.3).float()
    x = sel * blurred + (1 - sel) * x
    sel = r(b) < motion_blur
    if sel.any():
        n, size = int(sel.sum()), max(3, int(0.11 * min(h, w)) | 1)
        k = motion_blur_kernels((0.03 + 0.08 * r(n)) * min(h, w), r(n) * torch.pi, size)
        xs = x[sel].reshape(1, 3 * n, h, w)
        pad = size // 2
        xs = F.conv2d(F.pad(xs, (pad, pad, pad, pad), mode="replicate"),
                      k.repeat_interleave(3, 0)[:, None], groups=3 * n)
        x[sel] = xs.reshape(n, 3, h, w)
    sel = r(b) < low_light
    if sel.any():
        n = int(sel.sum())
        gamma = (1.5 + r(n, 1, 1, 1)).to(x.dtype)
        dark = x[sel].clamp(0, 1) ** gamma * (0.4 + 0.4 * r(n, 1, 1, 1))
        x[sel] = dark + torch.randn(dark.shape, device=dev, generator=gen) * (0.01 + 0.03 * r(n, 1, 1, 1))
    # low resolution (a far-away or compressed hand)
    sel = r(b) < 0.2
    if sel.any():
        f = 0.25 + 0.5 * float(r(1))
        small = F.interpolate(x[sel], scale_factor=f, mode="bilinear", align_corners=False)
        x[sel] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    x = x + torch.randn(x.shape, device=dev, generator=gen) * (0.04 * r(b, 1, 1, 1))
    # cut-out occlusion: one rectangle of flat colour on a quarter of the batch
    sel = r(b) < 0.25
    if sel.any():
        n = int(sel.sum())
        cx, cy = r(n) * w, r(n) * h
        rw, rh = (0.1 + 0.25 * r(n)) * w, (0.1 + 0.25 * r(n)) * h
        yy = torch.arange(h, device=dev)[None, :, None]
        xx = torch.arange(w, device=dev)[None, None, :]
        mask = ((xx - cx[:, None, None]).abs() < rw[:, None, None] / 2) & (
            (yy - cy[:, None, None]).abs() < rh[:, None, None] / 2)
        colour = r(n, 3, 1, 1)
        xs = x[sel]
        x[sel] = torch.where(mask[:, None], colour.expand_as(xs), xs)
    return x.clamp(0, 1)


def random_angle_jitter(b: int, device, gen=None, sigma: float = 0.3, wide: float = 0.15) -> torch.Tensor:
    """Mostly small rotations around upright, some up to ±60°: what a detector's angle errs by."""
    a = torch.randn(b, device=device, generator=gen) * sigma
    w = torch.rand(b, device=device, generator=gen) < wide
    a[w] = (torch.rand(int(w.sum()), device=device, generator=gen) - 0.5) * (2 * math.pi / 3)
    return a


def pick_share(has: torch.Tensor, share: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """About ``share`` of the batch, drawn among the items whose photo ``has`` what they need (only
    some photos have a hand-free strip or a face: those are picked more often)."""
    rate = share * len(has) / max(1, int(has.sum()))
    return has & (torch.rand(len(has), device=has.device, generator=gen) < rate)


def background_bank(size: int, n: int = 200, seed: int = 0, device=None) -> torch.Tensor:
    """``n`` hand-free backgrounds (N, 3, size, size) in [0, 1] from the synthetic renderer's
    texture generator (flat colours when it cannot be imported)."""
    try:
        from ..synthetic import random_background

        rng = np.random.default_rng(seed)
        bgs = np.stack([random_background(size, size, rng)[:, :, ::-1] for _ in range(n)])
        return torch.from_numpy(bgs.copy()).to(device).permute(0, 3, 1, 2).float() / 255
    except ImportError:
        return torch.rand(n, 3, 1, 1, device=device).expand(n, 3, size, size).contiguous()


def real_background_bank(images: list[np.ndarray], hand_free: np.ndarray, size: int, n: int = 400,
                         seed: int = 0, device=None) -> torch.Tensor | None:
    """Up to ``n`` real backgrounds (N, 3, size, size) in [0, 1]: square cuts of the photos'
    teacher-verified hand-free strips (cluttered shelves, rooms, desks), so pasted backgrounds
    look like the scenes where the tracker fails, not only rendered textures. None without strips."""
    rng = np.random.default_rng(seed)
    have = [i for i, r in enumerate(hand_free) if r[0] >= 0 and min(r[2] - r[0], r[3] - r[1]) >= 24]
    if not have:
        return None
    out = []
    for i in rng.choice(have, min(n, len(have)), replace=False):
        x0, y0, x1, y1 = (int(v) for v in hand_free[i])
        side = int(min(x1 - x0, y1 - y0) * rng.uniform(0.6, 1.0))
        ox = int(rng.integers(x0, x1 - side + 1))
        oy = int(rng.integers(y0, y1 - side + 1))
        cut = images[i][oy:oy + side, ox:ox + side]
        out.append(cv2.resize(cut, (size, size), interpolation=cv2.INTER_LINEAR)[:, :, ::-1])
    bank = torch.from_numpy(np.ascontiguousarray(np.stack(out))).to(device)
    return bank.permute(0, 3, 1, 2).float() / 255


def edge_cut(x: torch.Tensor, xy: torch.Tensor, share: float,
             gen: torch.Generator | None = None) -> torch.Tensor:
    """Blank the part of a share of the crops (B, 3, H, W) beyond a random straight edge that cuts
    through the hand (10-40 % of its keypoints beyond it), as the tracker sees a close-up hand
    that fills the frame and is cut by its border: the crop is padded with zeros there."""
    b, _, h, w = x.shape
    sel = torch.rand(b, device=x.device, generator=gen) < share
    if not sel.any():
        return x
    idx = torch.nonzero(sel)[:, 0]
    k = len(idx)
    theta = torch.rand(k, device=x.device, generator=gen) * 2 * math.pi
    normal = torch.stack([torch.cos(theta), torch.sin(theta)], -1)  # (k, 2)
    proj = (xy[idx] * normal[:, None]).sum(-1)  # (k, 21)
    q = 0.6 + 0.3 * torch.rand(k, device=x.device, generator=gen)
    cut = row_quantile(proj, q)
    ys, xs = torch.meshgrid((torch.arange(h, device=x.device) + 0.5) / h,
                            (torch.arange(w, device=x.device) + 0.5) / w, indexing="ij")
    pix = xs[None] * normal[:, 0, None, None] + ys[None] * normal[:, 1, None, None]
    keep = (pix <= cut[:, None, None]).float()[:, None]
    x = x.clone()
    x[idx] = x[idx] * keep
    return x


def row_quantile(values: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Quantile ``q[i]`` of each row ``values[i]`` with :func:`torch.quantile`'s linear rule, in a
    few batched kernels: a Python loop of ``torch.quantile`` calls kept the GPU trainer host-bound."""
    v = values.sort(-1).values
    pos = q.clamp(0, 1) * (v.shape[-1] - 1)
    lo = pos.floor().long()
    hi = pos.ceil().long()
    v_lo = v.gather(-1, lo[:, None])[:, 0]
    v_hi = v.gather(-1, hi[:, None])[:, 0]
    return v_lo + (v_hi - v_lo) * (pos - lo)


def hand_masks(xy: np.ndarray, size: int) -> np.ndarray:
    """Soft masks (B, size, size) in [0, 1] covering each hand: the palm polygon, a thick line
    per bone and the start of the forearm, from crop-normalised landmarks (B, 21, 2). An approximation of the hand's
    silhouette (no segmentation labels exist), slightly generous so fingers are not clipped."""
    out = np.zeros((len(xy), size, size), np.float32)
    for i, pts in enumerate(xy * size):
        palm = float(np.linalg.norm(pts[9] - pts[0]))
        width = max(2, int(round(0.32 * palm)))
        m = np.zeros((size, size), np.uint8)
        p = np.round(pts * 16).astype(np.int32)  # 4 bits of sub-pixel precision
        cv2.fillPoly(m, [cv2.convexHull(p[list(PALM)])], 255, cv2.LINE_AA, shift=4)
        for a, b in HAND_CONNECTIONS:
            cv2.line(m, tuple(p[a]), tuple(p[b]), 255, width, cv2.LINE_AA, shift=4)
        for j in (4, 8, 12, 16, 20):  # round fingertips
            cv2.circle(m, tuple(p[j]), width * 8, 255, -1, cv2.LINE_AA, shift=4)
        elbow = np.round((pts[0] + 1.5 * (pts[0] - pts[9])) * 16).astype(np.int32)  # the forearm
        cv2.line(m, tuple(p[0]), tuple(elbow), 255, int(2.2 * width), cv2.LINE_AA, shift=4)
        k = max(3, (width // 2) * 2 + 1)
        out[i] = cv2.GaussianBlur(m, (k, k), 0).astype(np.float32) / 255.0
    return out


def _segment_distance(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance from points ``p`` (P, 2) to the segments ``a`` → ``b`` (B, K, 2): (B, P, K)."""
    ab = b - a
    ap = p[None, :, None, :] - a[:, None]
    t = ((ap * ab[:, None]).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-9)[:, None]).clamp(0, 1)
    return (ap - t[..., None] * ab[:, None]).norm(dim=-1)


_BONES = torch.tensor(HAND_CONNECTIONS)
_PALM_PAIRS = torch.tensor(list(itertools.combinations(PALM, 2)))
_PALM_TRIANGLES = torch.tensor(list(itertools.combinations(PALM, 3)))


def hand_masks_batched(xy: torch.Tensor, size: int) -> torch.Tensor:
    """:func:`hand_masks` as batched tensor maths on ``xy``'s own device (B, 21, 2) → (B, size, size).

    Why a second form: on a GPU the per-crop cv2 drawing and its copy to the host kept the trainer
    host-bound (~150 ms a step on an H200, the GPU ~40 % busy); this takes a few kernels there. On
    a CPU :func:`hand_masks` is ~10× faster, so the trainer picks by device. Same shape: capsules
    around the bones and the forearm, the palm's convex hull (the union of the triangles of its
    points), a Gaussian edge as the blur gives; drawn at a quarter of ``size`` and upsampled (the
    edge is soft). Measured against :func:`hand_masks` on 116 training crops: IoU 0.93–0.97 (the
    test asserts > 0.88 on renders)."""
    n, dev = xy.shape[0], xy.device
    s = max(16, size // 4)
    pts = xy.float() * s
    c = torch.arange(s, device=dev, dtype=torch.float32) + 0.5
    gy, gx = torch.meshgrid(c, c, indexing="ij")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)  # pixel centres
    width = (0.32 * (pts[:, 9] - pts[:, 0]).norm(dim=-1)).clamp_min(2 * s / size)
    bones = _BONES.to(dev)
    elbow = pts[:, 0] + 1.5 * (pts[:, 0] - pts[:, 9])
    a = torch.cat([pts[:, bones[:, 0]], pts[:, :1]], 1)
    b = torch.cat([pts[:, bones[:, 1]], elbow[:, None]], 1)
    radius = torch.cat([(width / 2)[:, None].expand(n, len(bones)), 1.1 * width[:, None]], 1)
    signed = (_segment_distance(grid, a, b) - radius[:, None]).min(-1).values
    # the palm: inside the hull when inside a triangle of its points; outside, the distance to the
    # nearest segment between two of them is the distance to the hull
    pairs = _PALM_PAIRS.to(dev)
    outside = _segment_distance(grid, pts[:, pairs[:, 0]], pts[:, pairs[:, 1]]).min(-1).values
    tri = pts[:, _PALM_TRIANGLES.to(dev)][:, None]  # (B, 1, T, 3, 2)
    q = grid[None, :, None, :]

    def side(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (v[..., 0] - u[..., 0]) * (q[..., 1] - u[..., 1]) - (v[..., 1] - u[..., 1]) * (q[..., 0] - u[..., 0])

    s0, s1, s2 = side(tri[..., 0, :], tri[..., 1, :]), side(tri[..., 1, :], tri[..., 2, :]), side(tri[..., 2, :], tri[..., 0, :])
    inside = (((s0 >= 0) & (s1 >= 0) & (s2 >= 0)) | ((s0 <= 0) & (s1 <= 0) & (s2 <= 0))).any(-1)
    signed = torch.minimum(signed, torch.where(inside, torch.zeros_like(outside), outside))
    sigma = (0.15 * width + 0.35 * s / size).clamp_min(0.3)  # cv2.GaussianBlur's sigma for its kernel
    m = 0.5 * torch.erfc(signed / (sigma[:, None] * math.sqrt(2)))
    return F.interpolate(m.reshape(n, 1, s, s), size=(size, size), mode="bilinear", align_corners=False)[:, 0]


def replace_background(x: torch.Tensor, xy: torch.Tensor, bank: torch.Tensor, p: float,
                       gen: torch.Generator | None = None) -> torch.Tensor:
    """Put a random background from ``bank`` behind the hand in a share ``p`` of the crops
    (B, 3, H, W), keeping the hand under :func:`hand_masks`: the model cannot lean on the
    few rooms and tables the photos were taken in."""
    b, _, h, _ = x.shape
    sel = torch.rand(b, device=x.device, generator=gen) < p
    if not sel.any():
        return x
    idx = torch.nonzero(sel)[:, 0]
    if x.is_cuda:
        m = hand_masks_batched(xy[idx].detach(), h)[:, None]
    else:
        m = torch.from_numpy(hand_masks(xy[idx].detach().cpu().numpy(), h)).to(x.device)[:, None]
    pick = torch.randint(0, bank.shape[0], (len(idx),), device=x.device, generator=gen)
    x = x.clone()
    x[idx] = m * x[idx] + (1 - m) * bank[pick]
    return x
