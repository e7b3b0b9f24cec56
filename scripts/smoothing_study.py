"""Smoothing study: jitter and lag of raw / One Euro / Kalman landmarks on synthetic clips with
exact ground truth, over a grid of parameters; writes docs/smoothing.md and a Pareto plot.

The tracker runs once per clip with ``[filter] name = "none"`` (raw landmarks); each filter
setting is then replayed over those raw landmarks with the clip's timestamps.

* jitter: RMS of the second difference of the output on a still hand (sensor noise added to
  every frame so the landmark model's output moves), divided by hand size;
* lag: the delay (frames, sub-frame by parabolic fit) that best aligns the output with the truth
  on hands moving at several speeds, averaged over the speeds.

``python scripts/smoothing_study.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from handsdk import Tracker
from handsdk.synthetic import synthetic_clip

ROOT = Path(__file__).resolve().parents[1]
SPEEDS = (0.5, 1.0, 2.0)
#: Defaults: the largest jitter cut whose mean lag stays within half a frame (the target is
#: -70 % jitter at <= 1 frame; half a frame leaves room for faster real motion).
MAX_LAG = 0.5


def raw_track(n: int, speed: float, seed: int, noise: float = 8.0):
    rng = np.random.default_rng(seed)
    raw, truth, ts = [], [], []
    with Tracker({"filter": {"name": "none"}, "tracker": {"max_hands": 1}}) as t:
        for f in synthetic_clip(n, seed=seed, speed=speed, gestures=["open_palm"]):
            img = np.clip(f.image + rng.normal(0, noise, f.image.shape), 0, 255).astype(np.uint8)
            r = t.process(img, f.timestamp_ms)
            if r.hands and f.landmarks:
                raw.append(r.hands[0].landmarks.astype(np.float64))
                truth.append(f.landmarks[0][:, :3].astype(np.float64))
                ts.append(f.timestamp_ms / 1000)
    return np.stack(raw), np.stack(truth), np.asarray(ts)


def replay(make_filter, raw: np.ndarray, ts: np.ndarray) -> np.ndarray:
    f = make_filter()
    return np.stack([f(x, t) for x, t in zip(raw, ts, strict=True)])


def jitter(out: np.ndarray, size: float) -> float:
    d2 = out[2:, :, :2] - 2 * out[1:-1, :, :2] + out[:-2, :, :2]
    return float(np.sqrt((d2 ** 2).sum(-1).mean()) / size)


def lag(out: np.ndarray, truth: np.ndarray, max_lag: int = 8) -> float:
    errs = []
    for k in range(max_lag + 1):
        e = out[max_lag:, :, :2] - truth[max_lag - k: len(truth) - k, :, :2]
        errs.append(float((e ** 2).sum(-1).mean()))
    k = int(np.argmin(errs))
    if 0 < k < max_lag:  # parabolic refinement
        a, b, c = errs[k - 1], errs[k], errs[k + 1]
        denom = a - 2 * b + c
        return k + (0.5 * (a - c) / denom if denom > 0 else 0.0)
    return float(k)


def main() -> None:
    from handsdk_filters import IdentityFilter, KalmanFilter, OneEuroFilter

    still_raw, still_truth, still_ts = raw_track(90, 0.0, seed=1)
    size = float(np.ptp(still_truth[0][:, :2], axis=0).max())
    moving = [raw_track(90, s, seed=2 + i) for i, s in enumerate(SPEEDS)]

    def measure(make):
        j = jitter(replay(make, still_raw, still_ts), size)
        lags = [lag(replay(make, r, t), tr) for r, tr, t in moving]
        errs = [float(np.linalg.norm(replay(make, r, t)[:, :, :2] - tr[:, :, :2], axis=-1).mean()) for r, tr, t in moving]
        return {"jitter": j, "lag": float(np.mean(lags)), "lag_max": float(np.max(lags)),
                "error_px": float(np.mean(errs))}

    raw = measure(IdentityFilter)
    rows = [{"filter": "none", **raw}]
    for mc in (0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0):
        for beta in (0.0, 0.005, 0.01, 0.02, 0.03, 0.045, 0.06, 0.1):
            rows.append({"filter": "one_euro", "min_cutoff": mc, "beta": beta,
                         **measure(lambda mc=mc, beta=beta: OneEuroFilter(min_cutoff=mc, beta=beta))})
    for q in (10, 30, 100, 200, 300, 600, 1000, 3000):
        rows.append({"filter": "kalman", "process_noise": q,
                     **measure(lambda q=q: KalmanFilter(process_noise=q, measurement_noise=2.0))})
    for r in rows:
        r["jitter_cut"] = 1 - r["jitter"] / raw["jitter"]
    best = {}
    for name in ("one_euro", "kalman"):
        ok = [r for r in rows if r["filter"] == name and r["lag"] <= MAX_LAG]
        best[name] = max(ok, key=lambda r: r["jitter_cut"]) if ok else None
    (ROOT / "docs" / "smoothing.json").write_text(json.dumps({"rows": rows, "best": best}, indent=1))
    write_docs(rows, raw, best, size)


def pareto(rows):
    pts = sorted(rows, key=lambda r: (r["lag"], -r["jitter_cut"]))
    front, best = [], -1.0
    for r in pts:
        if r["jitter_cut"] > best:
            front.append(r)
            best = r["jitter_cut"]
    return front


def write_docs(rows, raw, best, size) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, c in (("one_euro", "C0"), ("kalman", "C1")):
        rs = [r for r in rows if r["filter"] == name]
        ax.scatter([r["lag"] for r in rs], [100 * r["jitter_cut"] for r in rs], c=c, s=18, label=name, alpha=0.7)
        fr = pareto(rs)
        ax.plot([r["lag"] for r in fr], [100 * r["jitter_cut"] for r in fr], c=c, lw=1)
        if best[name]:
            ax.scatter([best[name]["lag"]], [100 * best[name]["jitter_cut"]], marker="*", s=220, c=c,
                       edgecolors="k", zorder=5)
    ax.axvline(1.0, color="grey", ls="--", lw=1)
    ax.axhline(70, color="grey", ls=":", lw=1)
    ax.set_xlabel("mean lag (frames at 30 fps)")
    ax.set_ylabel("jitter reduction vs raw (%)")
    ax.set_title("Smoothing study: Pareto fronts (stars: defaults)")
    ax.legend()
    fig.tight_layout()
    (ROOT / "docs" / "images").mkdir(parents=True, exist_ok=True)
    fig.savefig(ROOT / "docs" / "images" / "smoothing_pareto.png", dpi=90)

    def fmt(r):
        params = ", ".join(f"{k} = {r[k]}" for k in ("min_cutoff", "beta", "process_noise") if k in r)
        return (f"| {r['filter']} | {params or '—'} | {100 * r['jitter_cut']:.0f} % | {r['jitter'] * 1000:.2f} | "
                f"{r['lag']:.2f} | {r['lag_max']:.2f} | {r['error_px']:.2f} |")

    lines = ["# Smoothing study", "", "Written by `python scripts/smoothing_study.py`. Synthetic clips with exact "
             "landmarks (hand ≈ {:.0f} px): a still open hand with per-frame sensor noise (σ 8 grey levels) for "
             "jitter, and the same hand moving at {}× the default clip speed for lag. The tracker ran once with "
             "no filter; each setting replays the raw landmarks with their timestamps.".format(size, ", ".join(map(str, SPEEDS))),
             "", "Jitter = RMS second difference / hand size (×1000 in the table); lag = best-aligning delay "
             "in frames (mean and worst over the speeds); error = mean distance to the truth on the moving clips.",
             "", "![Pareto fronts](images/smoothing_pareto.png)", "",
             "| filter | parameters | jitter cut | jitter ×1000 | lag (frames) | worst lag | error px |",
             "|---|---|---|---|---|---|---|", fmt(rows[0])]
    for name in ("one_euro", "kalman"):
        if best[name]:
            lines.append(fmt(best[name]) + " ← default")
    lines += ["", f"Defaults: the setting with the largest jitter cut whose mean lag is ≤ {MAX_LAG} frame "
              "(target: −70 % jitter at ≤ 1 frame lag; the margin is for faster real motion). "
              "One Euro dominates Kalman here: at equal lag it cuts far more jitter and follows "
              "motion with less error.", "", "## Pareto fronts", "",
              "| filter | parameters | jitter cut | jitter ×1000 | lag (frames) | worst lag | error px |",
              "|---|---|---|---|---|---|---|"]
    for name in ("one_euro", "kalman"):
        lines += [fmt(r) for r in pareto([r for r in rows if r["filter"] == name])]
    (ROOT / "docs" / "smoothing.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
