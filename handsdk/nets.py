"""handsdk's networks in plain torch: a MobileNetV3-Small backbone, the landmark model with a
SimCC head (decoded inside the graph), and a CenterNet-style single-shot hand detector.

Both models take NHWC float32 RGB in [0, 1] — what every backend feeds them — and return
decoded, backend-independent outputs (see ``models/manifest.json``). The torch backend
(inference) and ``handsdk.train`` (training, export) both build them, so they live below both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _make_divisible(v: float, d: int = 8) -> int:
    n = max(d, int(v + d / 2) // d * d)
    return n + d if n < 0.9 * v else n


class SqueezeExcite(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        mid = _make_divisible(c // 4)
        self.fc1, self.fc2 = nn.Conv2d(c, mid, 1), nn.Conv2d(mid, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))


def conv_bn(cin: int, cout: int, k: int, s: int = 1, groups: int = 1, act: type | None = nn.Hardswish):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, k: int, exp: int, cout: int, se: bool, hs: bool, stride: int):
        super().__init__()
        act = nn.Hardswish if hs else nn.ReLU
        layers = [] if exp == cin else [conv_bn(cin, exp, 1, act=act)]
        layers += [conv_bn(exp, exp, k, stride, groups=exp, act=act)]
        if se:
            layers.append(SqueezeExcite(exp))
        layers.append(conv_bn(exp, cout, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


# MobileNetV3-Small (Howard et al. 2019, table 2): k, exp, out, SE, hard-swish, stride
MNV3_SMALL = [
    (3, 16, 16, True, False, 2), (3, 72, 24, False, False, 2), (3, 88, 24, False, False, 1),
    (5, 96, 40, True, True, 2), (5, 240, 40, True, True, 1), (5, 240, 40, True, True, 1),
    (5, 120, 48, True, True, 1), (5, 144, 48, True, True, 1), (5, 288, 96, True, True, 2),
    (5, 576, 96, True, True, 1), (5, 576, 96, True, True, 1),
]


class MobileNetV3Small(nn.Module):
    """Feature extractor; ``forward`` returns the stride-8, -16 and -32 feature maps."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        c = _make_divisible(16 * width)
        self.stem = conv_bn(3, c, 3, 2)
        blocks = []
        for k, exp, out, se, hs, s in MNV3_SMALL:
            out_c = _make_divisible(out * width)
            blocks.append(InvertedResidual(c, k, _make_divisible(exp * width), out_c, se, hs, s))
            c = out_c
        self.blocks = nn.ModuleList(blocks)
        self.last = conv_bn(c, _make_divisible(576 * width), 1)
        self.channels = (_make_divisible(24 * width), _make_divisible(48 * width),
                         _make_divisible(576 * width))

    def forward(self, x):
        x = self.stem(x)
        feats = []
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i in (2, 7):  # end of stride 8 and stride 16 stages
                feats.append(x)
        feats.append(self.last(x))
        return feats


def _to_nchw_normalised(x: torch.Tensor) -> torch.Tensor:
    return (x.permute(0, 3, 1, 2) - 0.5) / 0.25


class _Network(nn.Module):
    """A network that can describe itself for :func:`build` (``input_size`` and ``width`` set by
    the subclass)."""

    input_size: int
    width: float

    @property
    def arch(self) -> dict:
        """What :func:`build` needs to make this network again (saved with its weights)."""
        return {"class": type(self).__name__, "input_size": self.input_size, "width": self.width}


class LandmarkNet(_Network):
    """Hand crop → 21 landmarks (SimCC), per-landmark confidence, presence, handedness.

    SimCC (Li et al. 2022) classifies x and y separately over ``2 × size`` bins spanning
    [-margin, 1 + margin] of the crop; the graph decodes them with a soft-argmax so every
    backend returns coordinates.
    """

    K = 21

    def __init__(self, input_size: int = 224, split: float = 2.0, margin: float = 0.1,
                 hidden: int = 256, width: float = 1.0):
        super().__init__()
        self.input_size, self.margin, self.width = input_size, margin, width
        self.bins = int(input_size * split)
        self.backbone = MobileNetV3Small(width)
        c8, c16, c32 = self.backbone.channels
        cells = (input_size // 32) ** 2
        self.kp_conv = nn.Conv2d(c32, self.K * 8, 1)
        self.kp_fc = nn.Sequential(nn.Linear(8 * cells, hidden), nn.LayerNorm(hidden), nn.GELU())
        self.x_head, self.y_head = nn.Linear(hidden, self.bins), nn.Linear(hidden, self.bins)
        self.z_head, self.conf_head = nn.Linear(hidden, 1), nn.Linear(hidden, 1)
        self.global_head = nn.Sequential(nn.Linear(c32, 128), nn.Hardswish(), nn.Linear(128, 2))
        centers = (torch.arange(self.bins) + 0.5) / self.bins * (1 + 2 * margin) - margin
        self.register_buffer("bin_centers", centers, persistent=False)

    def forward_raw(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.backbone(_to_nchw_normalised(x))[-1]
        n = f.shape[0]
        kp = self.kp_conv(f).reshape(n, self.K, 8 * f.shape[2] * f.shape[3])
        h = self.kp_fc(kp)
        g = self.global_head(f.mean((2, 3)))
        return {"x_logits": self.x_head(h), "y_logits": self.y_head(h),
                "z": self.z_head(h)[..., 0], "conf_logit": self.conf_head(h)[..., 0],
                "presence_logit": g[:, 0], "handedness_logit": g[:, 1]}

    def decode(self, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        px = torch.softmax(raw["x_logits"], -1)
        py = torch.softmax(raw["y_logits"], -1)
        xs = (px * self.bin_centers).sum(-1)
        ys = (py * self.bin_centers).sum(-1)
        return {"landmarks": torch.stack([xs, ys, raw["z"]], -1),
                "confidence": torch.sigmoid(raw["conf_logit"]),
                "presence": torch.sigmoid(raw["presence_logit"])[:, None],
                "handedness": torch.sigmoid(raw["handedness_logit"])[:, None]}

    def forward(self, x: torch.Tensor):
        d = self.decode(self.forward_raw(x))
        return d["landmarks"], d["confidence"], d["presence"], d["handedness"]


class DetectorNet(_Network):
    """Letterboxed frame → stride-8 CenterNet maps (Zhou et al. 2019).

    Outputs ``heatmap`` (N, 1, H/8, W/8), sigmoid hand-centre score, and ``geometry``
    (N, 7, H/8, W/8): centre offset in cells (2), log of the hand's crop side over the input
    size (1), and wrist and middle-MCP offsets from the centre in units of that side (4).
    Fully convolutional: ``input_size`` is the frame size it is trained and exported at.
    """

    def __init__(self, width: float = 0.75, input_size: int = 192):
        super().__init__()
        self.input_size, self.width = input_size, width
        self.backbone = MobileNetV3Small(width)
        c8, c16, c32 = self.backbone.channels
        d = 64
        self.lat32, self.lat16, self.lat8 = nn.Conv2d(c32, d, 1), nn.Conv2d(c16, d, 1), nn.Conv2d(c8, d, 1)
        self.smooth = conv_bn(d, d, 3, groups=d, act=nn.ReLU)
        self.mix = conv_bn(d, d, 1, act=nn.ReLU)
        self.heat = nn.Conv2d(d, 1, 1)
        self.geom = nn.Conv2d(d, 7, 1)
        nn.init.constant_(self.heat.bias, -4.0)

    def forward_raw(self, x: torch.Tensor):
        f8, f16, f32 = self.backbone(_to_nchw_normalised(x))
        p = self.lat32(f32)
        p = F.interpolate(p, size=f16.shape[2:], mode="nearest") + self.lat16(f16)
        p = F.interpolate(p, size=f8.shape[2:], mode="nearest") + self.lat8(f8)
        p = self.mix(self.smooth(p))
        return self.heat(p), self.geom(p)

    def forward(self, x: torch.Tensor):
        heat, geom = self.forward_raw(x)
        return torch.sigmoid(heat), geom


#: Backbone width of checkpoints saved before ``arch`` recorded one.
DEFAULT_WIDTH = {"LandmarkNet": 1.0, "DetectorNet": 0.75}


def build(arch: dict) -> nn.Module:
    """The network a checkpoint's ``arch`` describes (``class``, ``input_size``, ``width``): one
    place that turns saved weights' metadata back into a model, for the torch backend and the
    trainers alike. A width missing from older checkpoints is the class's default."""
    cls = {"LandmarkNet": LandmarkNet, "DetectorNet": DetectorNet}.get(arch.get("class", ""))
    if cls is None:
        raise ValueError(f"unknown network class {arch.get('class')!r}; known: LandmarkNet, DetectorNet")
    width = float(arch.get("width", DEFAULT_WIDTH[arch["class"]]))
    return cls(input_size=int(arch["input_size"]), width=width)
