"""A training run's resume state, small enough to go to a lent GPU and come back.

A device call carries 64 MiB in all and returns files of at most 16 MiB, and each lent GPU gives
about ten minutes of training. ``last.pt`` (weights, EMA weights, Adam's two moments, all
float32) is 23 MB for the landmark model, and beside the training pack it does not fit. So that
short loans add up to one long run, the compact state keeps:
- the weights in float32, so training continues from exactly where it stopped;
- Adam's moments in bfloat16 (they only scale the steps);
- the step count, the time and crops trained (which the cosine schedule spans) and the best score
  so far.

It drops the EMA copy. :func:`expand` re-seeds the EMA from the weights: at decay 0.998 the EMA
forgets its start within ~2,000 steps, a few minutes on a GPU. The landmark model's state is
11.7 MB this way (its last.pt: 23.2 MB).

    python -m handsdk.train.state compact WORKDIR/last.pt RUN.state.pt
    python -m handsdk.train.state expand RUN.state.pt WORKDIR/last.pt   # then train with --resume
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from handsdk.script import ArgumentParser

from .loop import save_atomically

FORMAT = "handsdk-train-state/1"


def _cast(value: Any, dtype: torch.dtype) -> Any:
    """``value`` with every floating-point tensor in it cast to ``dtype`` (dicts and lists walked)."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() and value.dim() > 0 else value
    if isinstance(value, dict):
        return {k: _cast(v, dtype) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(v, dtype) for v in value)
    return value


def compact(last: Path, out: Path) -> int:
    """Write the compact state of a trainer's ``last.pt`` to ``out``; returns its size in bytes."""
    state = torch.load(last, map_location="cpu", weights_only=False)
    small = {"format": FORMAT, "model": state["model"], "opt": _cast(state["opt"], torch.bfloat16),
             **{k: state[k] for k in ("step", "elapsed", "best", "arch")}, "seen": state.get("seen", 0)}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_atomically(out, small)  # a copy back from the device never takes half a file
    return out.stat().st_size


def expand(state_path: Path, last: Path) -> None:
    """Write a ``last.pt`` that ``--resume`` continues from, out of a compact state."""
    small = torch.load(state_path, map_location="cpu", weights_only=False)
    if not isinstance(small, dict) or small.get("format") != FORMAT:
        raise SystemExit(f"error: {state_path} is not a compact training state ({FORMAT}); "
                         "make one with: python -m handsdk.train.state compact WORKDIR/last.pt OUT")
    state = {"model": small["model"], "ema": small["model"], "opt": _cast(small["opt"], torch.float32),
             **{k: small[k] for k in ("step", "elapsed", "best", "arch")}, "seen": small.get("seen", 0)}
    last.parent.mkdir(parents=True, exist_ok=True)
    save_atomically(last, state)


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="python -m handsdk.train.state", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compact", help="last.pt -> a compact state (weights float32, Adam bfloat16, no EMA)")
    c.add_argument("last", type=Path)
    c.add_argument("out", type=Path)
    e = sub.add_parser("expand", help="a compact state -> last.pt for --resume")
    e.add_argument("state", type=Path)
    e.add_argument("last", type=Path)
    a = ap.parse_args(argv)
    if a.command == "compact":
        size = compact(a.last, a.out)
        print(f"wrote {a.out} ({size / 1e6:.1f} MB)")
    else:
        expand(a.state, a.last)
        print(f"wrote {a.last}: continue with --resume --workdir {a.last.parent}")
    return 0


if __name__ == "__main__":
    from handsdk.script import run_script

    raise SystemExit(run_script(main))
