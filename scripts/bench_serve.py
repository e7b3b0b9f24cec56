"""``handsdk serve`` measured in headless Chromium: frames per second delivered to the page and
the round-trip latency (the browser's capture timestamp -> the result drawn on the canvas),
p50 / p99, at 640x480 and 320x240 frames.

The fake camera plays the first frames of the shared ASL clip (y4m, 640x480), looped, at the
clip's 25 FPS and again at 60 FPS (so that the pipeline, not the camera, sets the pace). Same
harness as tests/test_serve_browser.py (handsdk_serve.browser). Results: docs/benchmarks.md.

    python scripts/bench_serve.py                          # prints a markdown table
    python scripts/bench_serve.py --seconds 30 --json serve_bench.json --screenshot docs/images/serve.png
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from handsdk_serve.browser import chromium_page, clip_frames, percentile, wait_for, write_y4m
from handsdk_serve.server import BackgroundServer, ServeApp

from handsdk.data import data_root
from handsdk.script import ArgumentParser, positive_int


def measure(url: str, y4m: Path, size: int, seconds: float, warmup: float, screenshot: str | None) -> dict:
    with chromium_page(y4m) as page:
        page.goto(f"{url}?size={size}&mirror=0")
        wait_for(page, "window.handsdkStats.frames >= 10", 60, "the first results")
        if screenshot:  # once the speller has added two letters (the clip loops every 4 s)
            wait_for(page, "window.handsdkStats.spelled.length >= 2", 30, "two letters spelled")
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            page.locator("body").screenshot(path=screenshot)
        time.sleep(warmup)
        page.evaluate("window.handsdkResetStats()")
        time.sleep(seconds)
        s = page.evaluate("Object.assign({}, window.handsdkStats, {lastResult: undefined, hello: undefined})")
    rtt = s["rtt"]
    return {"size": s["size"], "frames": s["frames"], "fps": round(s["meanFps"], 1),
            "rtt_p50_ms": round(percentile(rtt, 50), 1), "rtt_p99_ms": round(percentile(rtt, 99), 1),
            "server_ms": round(s["serverTotalMs"] / max(s["frames"], 1), 1),
            "with_hand": round(s["withHands"] / max(s["frames"], 1), 3), "errors": s["errors"]}


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", help="a video with a hand (default: the shared ASL clip)")
    ap.add_argument("--frames", type=positive_int, default=100, help="clip frames the camera loops")
    ap.add_argument("--sizes", type=positive_int, nargs="+", default=[640, 320], help="frame widths sent")
    ap.add_argument("--camera-fps", type=positive_int, nargs="+", default=[25, 60])
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--config", help="a handsdk config for the server")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--screenshot", help="save the page (640 run, first camera rate) as this PNG")
    a = ap.parse_args(argv)

    clip = Path(a.clip) if a.clip else (data_root() or Path("../shared/data")) / "asl_video" / "asl_hand.25fps.mp4"
    if not clip.is_file():
        print(f"error: {clip} not found (give --clip)", file=sys.stderr)
        return 2
    frames = list(clip_frames(clip, a.frames, (640, 480)))
    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, BackgroundServer(ServeApp(a.config)) as server:
        for fps in a.camera_fps:
            y4m = write_y4m(frames, Path(tmp) / f"cam{fps}.y4m", fps=fps)
            for size in a.sizes:
                shot = a.screenshot if (a.screenshot and size == a.sizes[0] and fps == a.camera_fps[0]) else None
                r = {"camera_fps": fps, **measure(server.url, y4m, size, a.seconds, a.warmup, shot)}
                rows.append(r)
                print(json.dumps(r), flush=True)
    meta = {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()], "seconds": a.seconds, "clip": clip.name}
    print()
    print("| camera | frames sent | FPS delivered | round trip p50 | p99 | server per frame | frames with a hand |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        w, h = r["size"]
        print(f"| {r['camera_fps']} FPS | {w}×{h} | {r['fps']} | {r['rtt_p50_ms']} ms | {r['rtt_p99_ms']} ms | "
              f"{r['server_ms']} ms | {r['with_hand']:.0%} |")
    print(f"\n{meta}")
    if a.json:
        Path(a.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
