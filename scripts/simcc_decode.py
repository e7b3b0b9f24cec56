"""Export the shipped landmark weights with another SimCC decode, to score it with ``handsdk eval``.

    python scripts/simcc_decode.py window:12 OUT      # soft-argmax within ±12 bins of the peak
    python scripts/simcc_decode.py temp:2 OUT         # all bins, logits × 2
    handsdk eval --images labels.jsonl --split valid --no-mediapipe --config OUT/cfg.toml

The shipped graph reads each x / y bin distribution with a soft-argmax over all bins
(``LandmarkNet.decode``); this writes the same weights with a peak-local or sharpened read, plus a
config that points the tracker at them. Results: docs/experiments.md ("Decoding SimCC by its peak").
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from handsdk.models import bundled_models_dir
from handsdk.nets import LandmarkNet
from handsdk.train import export


def make_decode(mode: str):
    kind, _, arg = mode.partition(":")
    if kind not in ("window", "temp") or not arg:
        raise SystemExit(f"decode {mode!r}: expected window:W or temp:T")
    shipped = LandmarkNet.decode

    def decode(self: LandmarkNet, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = shipped(self, raw)
        coords = []
        for key in ("x_logits", "y_logits"):
            logits = raw[key]
            if kind == "window":
                peak = logits.argmax(-1, keepdim=True).float()
                bins = torch.arange(logits.shape[-1], dtype=torch.float32)
                logits = torch.where((bins - peak).abs() <= float(arg), logits, torch.full_like(logits, -1e4))
            else:
                logits = logits * float(arg)
            coords.append((torch.softmax(logits, -1) * self.bin_centers).sum(-1))
        out["landmarks"] = torch.stack([coords[0], coords[1], raw["z"]], -1)
        return out

    return decode


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        raise SystemExit(__doc__)
    mode, out = argv[0], Path(argv[1])
    LandmarkNet.decode = make_decode(mode)
    models = bundled_models_dir()
    export.main(["--landmark", str(models / "landmark.pt"), "--detector", str(models / "detector.pt"),
                 "--out", str(out), "--version", f"decode-{mode}"])
    (out / "cfg.toml").write_text(f'[models]\nmanifest = "{(out / "manifest.json").resolve()}"\n')
    print(f"wrote {out}; score with: handsdk eval ... --config {out / 'cfg.toml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
