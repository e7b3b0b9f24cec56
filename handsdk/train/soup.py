"""Interpolate the weights of two checkpoints of one model (WiSE-FT, Wortsman et al., CVPR 2022):
``python -m handsdk.train.soup --kind landmark --base models/landmark.pt --tuned best.pt --alpha 0.5
--out soup.pt``.

Why: a fine-tune on new people and rooms gains there and loses a little on the sets the base
model held up on (docs/models.md, issue #20). Both start from the same weights, so the straight
line between them stays in one basin, and a point on it often keeps most of both gains. It costs
no training, so a sweep over ``alpha`` is cheap; pick the point by held-out numbers.

BatchNorm running statistics are interpolated like the weights; ``num_batches_tracked`` comes
from the tuned model.
"""

from __future__ import annotations

from pathlib import Path

import torch

from handsdk.script import ArgumentParser

from ..errors import ModelError
from .export import load_checkpoint


def interpolate(base: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor],
                alpha: float) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * base + alpha * tuned`` for every floating tensor; others from ``tuned``."""
    if base.keys() != tuned.keys():
        missing = sorted(base.keys() ^ tuned.keys())[:5]
        raise ModelError(f"the two checkpoints hold different models (keys differ: {missing})")
    out = {}
    for name, b in base.items():
        t = tuned[name]
        if b.shape != t.shape:
            raise ModelError(f"the two checkpoints hold different models ({name}: {tuple(b.shape)} "
                             f"vs {tuple(t.shape)})")
        out[name] = torch.lerp(b, t, alpha) if t.is_floating_point() else t.clone()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="python -m handsdk.train.soup", description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", choices=("landmark", "detector"), required=True)
    ap.add_argument("--base", type=Path, required=True, help="the checkpoint the fine-tune started from")
    ap.add_argument("--tuned", type=Path, required=True, help="the fine-tuned checkpoint")
    ap.add_argument("--alpha", type=float, required=True, help="0 = base, 1 = tuned")
    ap.add_argument("--out", type=Path, required=True, help="where to write the interpolated checkpoint")
    args = ap.parse_args(argv)
    if not 0.0 <= args.alpha <= 1.0:
        ap.error(f"--alpha must be between 0 and 1, got {args.alpha}")
    base, _ = load_checkpoint(args.base, args.kind)  # a ModelError is one line, exit 2 (run_script)
    tuned, metrics = load_checkpoint(args.tuned, args.kind)
    tuned.load_state_dict(interpolate(base.state_dict(), tuned.state_dict(), args.alpha))
    arch = {"class": type(tuned).__name__, "input_size": tuned.input_size}
    torch.save({"model": tuned.state_dict(), "arch": arch,
                "metrics": {"soup_alpha": args.alpha, **({"step": metrics["step"]} if "step" in metrics else {})}},
               args.out)
    print(f"{args.out}: {args.alpha:.2f} of {args.tuned} + {1 - args.alpha:.2f} of {args.base}")
    return 0


if __name__ == "__main__":
    from handsdk.script import run_script

    raise SystemExit(run_script(main))
