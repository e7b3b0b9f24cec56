"""Compare two training runs' validation logs (``metrics.jsonl``) at equal crops.

    python scripts/compare_runs.py BASE/metrics.jsonl NEW/metrics.jsonl [--plot curves.png]

Why: runs of one recipe validate at different steps (a sitting stops where its time ends), so
"ahead of the last attempt" means something only at the same number of crops trained. For each
of NEW's validations this prints BASE's value interpolated linearly at NEW's crops (crops beyond
BASE's last validation are left out), overall and per validation set, then the range of the
differences. ``--plot`` overlays the two curves (needs matplotlib).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from handsdk.script import ArgumentParser


def read_log(path: Path) -> list[dict]:
    """The validation rows of a metrics log, in order of crops; each must count its crops."""
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"error: {path}: {exc}") from None
    missing = [i for i, r in enumerate(rows) if not r.get("crops")]
    if not rows or missing:
        raise SystemExit(f"error: {path}: {'no rows' if not rows else f'rows {missing[:5]} have no crops'}; "
                         "expected a metrics.jsonl written by handsdk.train (one JSON object per validation)")
    return sorted(rows, key=lambda r: r["crops"])


def at_equal_crops(base: list[dict], new: list[dict], key: str) -> list[tuple[int, float, float]]:
    """(crops, base value interpolated at those crops, new value) for each of NEW's validations
    that falls within BASE's range and where both logs have KEY."""
    b = [(r["crops"], r[key]) for r in base if key in r]
    if not b:
        return []
    bx, by = np.array(b, dtype=float).T
    return [(r["crops"], float(np.interp(r["crops"], bx, by)), r[key])
            for r in new if key in r and bx[0] <= r["crops"] <= bx[-1]]


def main(argv: list[str] | None = None) -> None:
    ap = ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", type=Path, help="metrics.jsonl of the run compared against")
    ap.add_argument("new", type=Path, help="metrics.jsonl of the run being judged")
    ap.add_argument("--plot", type=Path, help="write both curves of overall PCK@0.1 here (PNG)")
    args = ap.parse_args(argv)
    base, new = read_log(args.base), read_log(args.new)
    keys = ["pck10"] + sorted({k for r in new for k in r if k.startswith("pck10_")}
                              & {k for r in base for k in r})
    pairs = at_equal_crops(base, new, "pck10")
    if not pairs:
        raise SystemExit(f"error: no validation of {args.new} lies within the crops {args.base} covers")
    print(f"{'crops':>9}  {'base':>6}  {'new':>6}  {'new-base':>8}")
    for crops, b, n in pairs:
        print(f"{crops:>9,}  {b:6.3f}  {n:6.3f}  {n - b:+8.3f}")
    print("\nnew − base over NEW's validations within BASE's crops (min / last / max):")
    for k in keys:
        d = [n - b for _, b, n in at_equal_crops(base, new, k)]
        if d:
            print(f"  {k:<24} {min(d):+.3f} / {d[-1]:+.3f} / {max(d):+.3f}  ({len(d)} validations)")
    if args.plot:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise SystemExit("error: --plot needs matplotlib (pip install matplotlib)") from None
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for rows, name in ((base, args.base.parent.name), (new, args.new.parent.name)):
            ax.plot([r["crops"] / 1e6 for r in rows], [r["pck10"] for r in rows], label=name)
        ax.set_xlabel("million crops")
        ax.set_ylabel("validation PCK@0.1")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)


if __name__ == "__main__":
    main()
