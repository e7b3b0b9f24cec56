"""Compare two ``handsdk eval --per-photo`` files photo by photo, per dataset, with a paired
bootstrap: is model B better or worse than model A beyond what the choice of photos explains?

    python scripts/compare_evals.py shipped.jsonl candidate.jsonl [--markdown]

Why: the differences between two checkpoints on a held-out set of ~100-200 photos are often a
few thousandths of PCK, which one photo more or less can make. Both runs score the same photos,
so the paired difference and its 95 % bootstrap interval (photos resampled with replacement)
say which differences to believe. A difference whose interval excludes 0 is marked ``*``.

Per dataset, B − A of: crop PCK@0.1 (same reference crop), the crop's mean finger-flexion error
in degrees (3D, depth included: what the gesture and sign rules read), end-to-end detection (share of
photos whose hand was found), end-to-end PCK@0.1 and gross failures (mean error > 0.2 hand size)
on the photos both found, false hands on the photos' hand-free strips, and every hand found on
the photos whose reference lists other hands (``both_found``), and a hand reported on none of the
labelled hands in the whole photo (``extra_hands``; files from before these lack their rows).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from handsdk.evaluate import GROSS
from handsdk.script import ArgumentParser

BOOTSTRAP = 2000


def load(path: Path) -> dict[str, dict]:
    """Records by image path."""
    if not path.is_file():
        raise SystemExit(f"error: {path} does not exist (expected a `handsdk eval --per-photo` file)")
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rec = json.loads(line)
                out[rec["image"]] = rec
            except (ValueError, KeyError, TypeError) as exc:
                raise SystemExit(f"error: {path}:{n} is not a `handsdk eval --per-photo` line ({exc})") from None
    return out


def paired(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float, float, float]:
    """Mean of A, mean of B, B − A and its 95 % bootstrap interval."""
    d = b - a
    idx = rng.integers(0, len(d), size=(BOOTSTRAP, len(d)))
    lo, hi = np.percentile(d[idx].mean(1), [2.5, 97.5])
    return float(a.mean()), float(b.mean()), float(d.mean()), float(lo), float(hi)


def measures(ra: list[dict], rb: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per measure, the paired per-photo values of A and B on the photos where it is defined."""
    def col(recs, model, key):
        return [r.get(model, {}).get(key) for r in recs]

    def defined(model: str, key: str) -> tuple[np.ndarray, np.ndarray]:
        """A's and B's values of ``key`` on the photos where both have one."""
        a, b = col(ra, model, key), col(rb, model, key)
        keep = [i for i in range(len(ra)) if a[i] is not None and b[i] is not None]
        return np.array([a[i] for i in keep], float), np.array([b[i] for i in keep], float)

    out = {"crop pck10": defined("handsdk_crop", "pck10")}
    flex = defined("handsdk_crop", "flex_err")
    if len(flex[0]):  # files from before the measure lack it
        out["crop finger flexion error (deg)"] = flex
    ea, eb = col(ra, "handsdk_e2e", "pck10"), col(rb, "handsdk_e2e", "pck10")
    out["e2e detection"] = (np.array([x is not None for x in ea], float), np.array([x is not None for x in eb], float))
    out["e2e pck10 (both found)"] = defined("handsdk_e2e", "pck10")
    ga, gb = defined("handsdk_e2e", "rel")
    out["e2e gross (both found)"] = ((ga > GROSS).astype(float), (gb > GROSS).astype(float))
    out["false hands on strips"] = defined("handsdk_e2e", "false_pos")
    for key, name in (("both_found", "every hand found (two-hand photos)"),
                      ("extra_hands", "a hand on no labelled hand (whole photo)")):
        pair = defined("handsdk_e2e", key)
        if len(pair[0]):  # files from before the measure lack it
            out[name] = pair
    return out


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="scripts/compare_evals.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="per-photo file of the reference run (e.g. the shipped models)")
    ap.add_argument("b", type=Path, help="per-photo file of the candidate run")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    a, b = load(args.a), load(args.b)
    common = sorted(a.keys() & b.keys())
    if not common:
        print(f"error: {args.a} and {args.b} score no photo in common", file=sys.stderr)
        return 2
    if len(common) < max(len(a), len(b)):
        print(f"note: {len(common)} photos in both files ({len(a)} in A, {len(b)} in B); only those are compared",
              file=sys.stderr)
    rng = np.random.default_rng(args.seed)
    datasets = sorted({a[k]["dataset"] for k in common})
    print("| dataset | measure | n | A | B | B − A [95 % interval] |\n|---|---|---|---|---|---|")
    for ds in [*datasets, "(all)"]:
        keys = [k for k in common if ds == "(all)" or a[k]["dataset"] == ds]
        for name, (va, vb) in measures([a[k] for k in keys], [b[k] for k in keys]).items():
            if len(va) == 0:
                continue
            ma, mb, d, lo, hi = paired(va, vb, rng)
            mark = " *" if lo > 0 or hi < 0 else ""
            print(f"| {ds} | {name} | {len(va)} | {ma:.3f} | {mb:.3f} | {d:+.3f} [{lo:+.3f}, {hi:+.3f}]{mark} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
