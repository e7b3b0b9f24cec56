"""Soak test: track N synthetic frames with one Tracker and report resident-memory growth.

``python scripts/soak.py --frames 100000`` is the long run; CI runs it smaller (tests/test_soak.py).
Growth is measured between the end of warm-up (first 10 % of frames) and the end, so allocator
and session warm-up are not counted; the target is < 5 MB.
"""

from __future__ import annotations

import json
import time

from handsdk import Tracker
from handsdk.bench import rss_anon_mb
from handsdk.script import ArgumentParser
from handsdk.synthetic import synthetic_clip


def soak(frames: int, clip_len: int = 60) -> dict[str, float]:
    clip = [(f.image, f.timestamp_ms) for f in synthetic_clip(clip_len, seed=0, leave_and_return=True)]
    period = clip[-1][1] + 1000.0 / 30
    with Tracker({"consumers": [{"name": "overlay"}]}) as tracker:
        warm = max(1, frames // 10)
        start = None
        t0 = time.perf_counter()
        for i in range(frames):
            image, ts = clip[i % clip_len]
            tracker.process(image, timestamp_ms=ts + (i // clip_len) * period)
            if i + 1 == warm:
                start = rss_anon_mb()
        end = rss_anon_mb()
        elapsed = time.perf_counter() - t0
    return {"frames": frames, "rss_after_warmup_mb": start, "rss_end_mb": end,
            "growth_mb": end - start, "fps": frames / elapsed}


def main() -> None:
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=100_000)
    args = ap.parse_args()
    print(json.dumps(soak(args.frames)))


if __name__ == "__main__":
    main()
