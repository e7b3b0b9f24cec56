"""Which landmark head to train: SimCC (shipped) vs heatmaps vs direct regression, same budget.

    python scripts/landmark_heads.py --pack PACK --out DIR --minutes 30            # all three, one after another
    python scripts/landmark_heads.py --pack PACK --out DIR --report                 # train vs held-out PCK@0.1
    python scripts/landmark_heads.py --latency                                      # each head at 224², ONNX Runtime

The issue asked for the head to be decided by numbers. Each head sits on the same
MobileNetV3-Small backbone and is trained from scratch with the landmark trainer's own crops,
augmentation, presence/handedness head, schedule and validation (``handsdk.train.landmark``),
for the same wall-clock budget:

* ``simcc``: the shipped :class:`~handsdk.nets.LandmarkNet` (x and y classified over bins);
* ``heatmap``: a small FPN to stride 8 and 21 heatmaps read by a soft-argmax (integral
  regression), cross-entropy to Gaussian targets (σ = one cell) + 10 × L1 on the coordinates;
* ``regress``: 21 × (x, y, z) straight from the pooled features, Wing loss (Feng et al. 2018)
  on the error in % of the crop — the seed system's approach.

Results go into docs/models.md ("Choosing the head").
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from backbone_latency import median_ms  # this folder's sibling script
from torch import nn

from handsdk.nets import LandmarkNet, MobileNetV3Small, _to_nchw_normalised, conv_bn
from handsdk.script import ArgumentParser
from handsdk.train.augment import Canvas, background_bank
from handsdk.train.landmark import make_batch, simcc_targets, validate
from handsdk.train.loop import Trainer, build_pool, setup

HEADS = ("simcc", "heatmap", "regress")


def _decoded(xy: torch.Tensor, z: torch.Tensor, conf_logit: torch.Tensor, g: torch.Tensor) -> dict:
    return {"landmarks": torch.cat([xy, z[..., None]], -1), "confidence": torch.sigmoid(conf_logit),
            "presence": torch.sigmoid(g[:, :1]), "handedness": torch.sigmoid(g[:, 1:2])}


class RegressNet(nn.Module):
    """21 × (x, y, z, confidence) from the pooled last features."""

    K = 21

    def __init__(self, input_size: int):
        super().__init__()
        self.input_size = input_size
        self.backbone = MobileNetV3Small()
        c = self.backbone.channels[-1]
        self.fc = nn.Sequential(nn.Linear(c, 512), nn.Hardswish())
        self.out = nn.Linear(512, self.K * 4)
        self.global_head = nn.Sequential(nn.Linear(c, 128), nn.Hardswish(), nn.Linear(128, 2))
        nn.init.zeros_(self.out.weight)
        nn.init.constant_(self.out.bias, 0.5)

    def forward_raw(self, x: torch.Tensor) -> dict:
        f = self.backbone(_to_nchw_normalised(x))[-1].mean((2, 3))
        o = self.out(self.fc(f)).reshape(-1, self.K, 4)
        return {"xy": o[..., :2], "z": o[..., 2] - 0.5, "conf_logit": o[..., 3], "g": self.global_head(f)}

    def decode(self, raw: dict) -> dict:
        return _decoded(raw["xy"], raw["z"], raw["conf_logit"], raw["g"])


class HeatmapNet(nn.Module):
    """Stride-8 FPN (as the detector's) → 21 heatmaps + z and confidence maps, soft-argmax."""

    K = 21

    def __init__(self, input_size: int, d: int = 96):
        super().__init__()
        self.input_size = input_size
        self.backbone = MobileNetV3Small()
        c8, c16, c32 = self.backbone.channels
        self.lat32, self.lat16, self.lat8 = nn.Conv2d(c32, d, 1), nn.Conv2d(c16, d, 1), nn.Conv2d(c8, d, 1)
        self.smooth, self.mix = conv_bn(d, d, 3, groups=d, act=nn.ReLU), conv_bn(d, d, 1, act=nn.ReLU)
        self.smooth2, self.mix2 = conv_bn(d, d, 3, groups=d, act=nn.ReLU), conv_bn(d, d, 1, act=nn.ReLU)
        self.out = nn.Conv2d(d, self.K * 3, 1)
        self.global_head = nn.Sequential(nn.Linear(c32, 128), nn.Hardswish(), nn.Linear(128, 2))
        s = input_size // 8
        centres = (torch.arange(s) + 0.5) / s
        self.register_buffer("gx", centres.repeat(s), persistent=False)
        self.register_buffer("gy", centres.repeat_interleave(s), persistent=False)

    def forward_raw(self, x: torch.Tensor) -> dict:
        f8, f16, f32 = self.backbone(_to_nchw_normalised(x))
        p = F.interpolate(self.lat32(f32), size=f16.shape[2:], mode="nearest") + self.lat16(f16)
        p = F.interpolate(p, size=f8.shape[2:], mode="nearest") + self.lat8(f8)
        o = self.out(self.mix2(self.smooth2(self.mix(self.smooth(p))))).flatten(2)  # (N, 3K, cells)
        return {"heat": o[:, :self.K], "zmap": o[:, self.K:2 * self.K], "cmap": o[:, 2 * self.K:],
                "g": self.global_head(f32.mean((2, 3)))}

    def decode(self, raw: dict) -> dict:
        p = torch.softmax(raw["heat"], -1)
        xy = torch.stack([(p * self.gx).sum(-1), (p * self.gy).sum(-1)], -1)
        return _decoded(xy, (p * raw["zmap"]).sum(-1), (p * raw["cmap"]).sum(-1), raw["g"])


class SimccNet(LandmarkNet):
    """The shipped model, with its raw outputs in the shape the other two use."""

    def forward_raw(self, x: torch.Tensor) -> dict:
        raw = super().forward_raw(x)
        raw["g"] = torch.stack([raw.pop("presence_logit"), raw.pop("handedness_logit")], 1)
        return raw

    def decode(self, raw: dict) -> dict:
        px, py = torch.softmax(raw["x_logits"], -1), torch.softmax(raw["y_logits"], -1)
        xy = torch.stack([(px * self.bin_centers).sum(-1), (py * self.bin_centers).sum(-1)], -1)
        return _decoded(xy, raw["z"], raw["conf_logit"], raw["g"])


def build(head: str, input_size: int) -> nn.Module:
    return {"simcc": SimccNet, "heatmap": HeatmapNet, "regress": RegressNet}[head](input_size)


def wing(x: torch.Tensor, w: float = 10.0, eps: float = 2.0) -> torch.Tensor:
    c = w - w * math.log(1 + w / eps)
    return torch.where(x < w, w * torch.log(1 + x / eps), x - c)


def losses(head: str, model: nn.Module, raw: dict, t: dict) -> tuple[torch.Tensor, dict]:
    """The head's own landmark loss, plus the shipped trainer's z, confidence, presence and
    handedness terms."""
    pos = t["presence"] * t["presence_w"]
    npos = pos.sum().clamp_min(1)
    dec = model.decode(raw)
    err = (dec["landmarks"][..., :2] - t["xy"]).norm(dim=-1)
    l_coord = (err.mean(-1) * pos).sum() / npos
    if head == "simcc":
        sigma = 2.5 * float(model.bin_centers[1] - model.bin_centers[0])
        ce = sum(-(simcc_targets(t["xy"][..., k], model.bin_centers, sigma) * F.log_softmax(raw[f"{a}_logits"], -1)).sum(-1)
                 for k, a in enumerate("xy"))
        l_main = (ce.mean(-1) * pos).sum() / npos + 10 * l_coord
    elif head == "heatmap":
        d2 = (model.gx - t["xy"][..., :1]) ** 2 + (model.gy - t["xy"][..., 1:]) ** 2
        target = torch.exp(-0.5 * d2 * (model.input_size // 8) ** 2)
        target = target / target.sum(-1, keepdim=True).clamp_min(1e-12)
        ce = -(target * F.log_softmax(raw["heat"], -1)).sum(-1)
        l_main = (ce.mean(-1) * pos).sum() / npos + 10 * l_coord
    else:
        w = wing((dec["landmarks"][..., :2] - t["xy"]).abs() * 100).sum(-1).mean(-1)
        l_main = 0.1 * (w * pos).sum() / npos
    l_z = ((dec["landmarks"][..., 2] - t["z"]).abs().mean(-1) * pos).sum() / npos
    conf_t = torch.exp(-((err.detach() / 0.05) ** 2))
    l_conf = (F.binary_cross_entropy(dec["confidence"].clamp(1e-6, 1 - 1e-6), conf_t, reduction="none")
              .mean(-1) * pos).sum() / npos
    l_pres = (F.binary_cross_entropy_with_logits(raw["g"][:, 0], t["presence"], reduction="none")
              * t["presence_w"]).mean()
    sure = pos * ((t["right"] - 0.5).abs() > 0.3).float()
    l_hand = (F.binary_cross_entropy_with_logits(raw["g"][:, 1], t["right"], reduction="none")
              * sure).sum() / sure.sum().clamp_min(1)
    total = l_main + 2 * l_z + 0.5 * l_conf + l_pres + 0.5 * l_hand
    return total, {"main": l_main.detach(), "coord": l_coord.detach()}


def train(head: str, args: argparse.Namespace) -> None:
    args.batch, args.lr, args.synthetic, args.seed = 0, 0.0, 1500, 0
    dev, batch, lr, pool = setup(args, gpu_batch=256, cpu_batch=48)
    canvas = Canvas(pool.images, dev)
    backgrounds = background_bank(args.input_size, seed=0, device=dev)
    lm, right = torch.from_numpy(pool.landmarks).to(dev), torch.from_numpy(pool.right).to(dev)
    hand_free = torch.from_numpy(pool.hand_free).to(dev)
    others = torch.from_numpy(pool.others).to(dev)
    train_real = np.where(~pool.valid & ~pool.synthetic)[0]
    train_syn = np.where(~pool.valid & pool.synthetic)[0]
    val_idx = np.where(pool.valid)[0]
    tr = Trainer(build(head, args.input_size), args.out / head, args.minutes * 60, lr, dev, False,
                 arch={"input_size": args.input_size})
    rng = np.random.default_rng(tr.step)
    while not tr.done():
        n_syn = int(round(batch * 0.2))
        idx = np.concatenate([rng.choice(train_real, batch - n_syn), rng.choice(train_syn, n_syn)]).astype(np.int64)
        x, t = make_batch(canvas, lm, right, torch.from_numpy(idx).to(dev), args.input_size, True,
                          backgrounds=backgrounds, background_share=0.3, hand_free=hand_free, hand_free_share=0.1,
                          others=others)
        loss, parts = losses(head, tr.model, tr.model.forward_raw(x.contiguous()), t)
        tr.update(loss)
        tr.log_step(loss, parts)
        if tr.validation_due(150):
            m = validate(tr.ema, canvas, lm, right, torch.from_numpy(val_idx).to(dev), args.input_size,
                         pool.dataset[val_idx])
            tr.checkpoint({"loss": float(loss.detach()), **m}, "pck10")
            print(f"{head} step {tr.step} val pck10 {m['pck10']:.4f} pck20 {m['pck20']:.4f}", flush=True)


def report(args: argparse.Namespace) -> None:
    """PCK@0.1 of each head's final EMA weights on training photos (800) and held-out ones."""
    pool = build_pool(args.pack, 0)
    canvas = Canvas(pool.images, torch.device("cpu"))
    lm, right = torch.from_numpy(pool.landmarks), torch.from_numpy(pool.right)
    tr = np.where(~pool.valid & ~pool.synthetic)[0]
    tr = tr[:: max(1, len(tr) // 800)]
    va = np.where(pool.valid & ~pool.synthetic)[0]
    for head in HEADS:
        path = args.out / head / "last.pt"
        if not path.exists():
            continue
        ck = torch.load(path, map_location="cpu", weights_only=False)
        model = build(head, ck["arch"]["input_size"])
        model.load_state_dict(ck["ema"])
        model.eval()
        size = model.input_size
        a = validate(model, canvas, lm, right, torch.from_numpy(tr), size, pool.dataset[tr])
        b = validate(model, canvas, lm, right, torch.from_numpy(va), size, pool.dataset[va])
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"{head:8s} {params:.2f} M params, {ck['step']} steps: PCK@0.1 training {a['pck10']:.4f}, "
              f"held-out {b['pck10']:.4f} (@0.2 {b['pck20']:.4f}) | "
              + " ".join(f"{k[6:]} {a[k]:.3f}/{b[k]:.3f}" for k in b if k.startswith("pck10_")), flush=True)


class _Decoded(nn.Module):
    """A head's model as the backends see it: crop in, decoded outputs out."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        d = self.model.decode(self.model.forward_raw(x))
        return d["landmarks"], d["confidence"], d["presence"], d["handedness"]


def latency(size: int = 224, rounds: int = 2) -> None:
    """Each head exported to ONNX at ``size`` (random weights: speed does not depend on them),
    median ms per crop with 1 and 2 threads, ``rounds`` alternating rounds."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for head in HEADS:
            paths[head] = Path(tmp) / f"{head}.onnx"
            torch.onnx.export(_Decoded(build(head, size).eval()), torch.rand(1, size, size, 3), str(paths[head]),
                              dynamo=False, opset_version=17)
        for r in range(rounds):
            for head, path in paths.items():
                shape = (1, size, size, 3)
                print(f"round {r + 1} {head:8s} {size}²: 1 thread {median_ms(path, shape, 1):.3f} ms, "
                      f"2 threads {median_ms(path, shape, 2):.3f} ms", flush=True)


def main() -> int:
    ap = ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pack", type=Path)
    ap.add_argument("--out", type=Path, help="a folder per head (checkpoints, metrics log)")
    ap.add_argument("--minutes", type=float, default=30.0, help="budget per head")
    ap.add_argument("--input-size", type=int, default=128, help="128² keeps a CPU comparison affordable")
    ap.add_argument("--heads", nargs="+", choices=HEADS, default=list(HEADS))
    ap.add_argument("--report", action="store_true", help="only score the finished runs")
    ap.add_argument("--latency", action="store_true", help="only time each head at 224² (no pack needed)")
    args = ap.parse_args()
    if args.latency:
        latency()
        return 0
    if args.pack is None or args.out is None:
        ap.error("--pack and --out are needed to train or report")
    if not args.report:
        for head in args.heads:
            train(head, args)
    report(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
