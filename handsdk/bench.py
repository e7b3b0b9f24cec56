"""``handsdk bench``: handsdk's pipelines and MediaPipe Hands side by side on the same frames.

Every pipeline runs in a fresh process of its own over the same pre-decoded frames (a
memory-mapped ``.npy``), in rounds that alternate the pipelines; each pipeline keeps its best
round. Reported: end-to-end FPS, per-stage latency p50/p99, detector call rate, peak anonymous
RSS (the memory the process allocated itself; the mapped frames are not counted), agreement
with MediaPipe full's landmarks, and ratios against MediaPipe — absolute times on a shared
machine are noise, ratios measured in one run are not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from handsdk.script import ArgumentParser, positive_int

from .errors import ConfigError, HandSDKError
from .models import model_spec
from .types import hand_size

WARMUP = 5


def rss_anon_mb() -> float:
    """Anonymous resident memory of this process in MB (Linux), else the peak RSS."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def decode_source(spec: str, out: Path, max_frames: int) -> dict[str, Any]:
    """Decode ``spec`` (a video path or ``synthetic``) into ``out`` (.npy, BGR frames)."""
    if spec == "synthetic":
        from .synthetic import synthetic_clip

        frames = [f.image for f in synthetic_clip(max_frames, seed=0)]
        fps = 30.0
    else:
        cap = cv2.VideoCapture(spec)
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        frames = []
        while len(frames) < max_frames:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(f)
        cap.release()
    if not frames:
        raise SystemExit(f"bench: no frames could be read from {spec!r}")
    np.save(out, np.stack(frames))
    h, w = frames[0].shape[:2]
    return {"source": spec, "frames": len(frames), "size": f"{w}x{h}", "fps": fps}


def worker(config: dict[str, Any], frames_path: str, fps: float) -> dict[str, Any]:
    """Run one handsdk pipeline over the frames in this process and report per-frame data."""
    from .tracker import Tracker

    frames = np.load(frames_path, mmap_mode="r")
    base = rss_anon_mb()
    peak = base
    stages: dict[str, list[float]] = {}
    total, cpu, det, hands = [], [], [], []
    with Tracker(config) as tracker:
        for i in range(len(frames)):
            frame = np.ascontiguousarray(frames[i])
            c0 = time.process_time()
            r = tracker.process(frame, timestamp_ms=i * 1000.0 / fps)
            cpu.append((time.process_time() - c0) * 1000)
            total.append(r.timings["total"])
            for k, v in r.timings.items():
                stages.setdefault(k, []).append(v)
            det.append(r.detector_ran)
            hands.append([h.landmarks.tolist() for h in r.hands])
            peak = max(peak, rss_anon_mb())
    return {"ms": total, "cpu_ms": cpu, "stages": stages, "detector": det, "hands": hands, "peak_rss_mb": peak,
            "rss_at_start_mb": base}


PIPELINES: dict[str, dict[str, Any]] = {
    "handsdk onnxruntime fp32": {"config": {}},
    # the same, the detector's search run after the tracked crops instead of beside them
    "handsdk onnxruntime fp32, no overlap": {"config": {"tracker": {"overlap_detector": False}}},
    "handsdk onnxruntime int8": {"config": {"models": {"variant": "int8"}}},
    "handsdk torch": {"config": {"backend": {"name": "torch"}}},
    "handsdk tflite": {"config": {"backend": {"name": "tflite"}}},
    "mediapipe lite": {"mediapipe": 0},
    "mediapipe full": {"mediapipe": 1},
}


def run_pipeline(name: str, frames: Path, fps: float, max_hands: int) -> dict[str, Any] | None:
    p = PIPELINES[name]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", ""))
    if "mediapipe" in p:
        from .errors import PluginNotFoundError
        from .plugins import get_component

        try:  # the mediapipe plugin says how to run it; the core never imports a plugin
            factory = get_component("backend", "mediapipe").factory
        except PluginNotFoundError as exc:
            print(f"  {name}: skipped ({exc})")
            return None
        cmd = factory.bench_command(frames, p["mediapipe"], max_hands)
    else:
        cfg = json.loads(json.dumps(p["config"]))
        cfg.setdefault("tracker", {})["max_hands"] = max_hands
        cmd = [sys.executable, "-m", "handsdk.bench", "--worker", json.dumps(cfg), str(frames), str(fps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={k: v for k, v in env.items() if v})
    if proc.returncode == 0 and "mediapipe" in p:  # same shape as ours: per frame, a list of landmarks
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["hands"] = [[h["landmarks"] for h in frame] for frame in res["hands"]]
        return res
    if proc.returncode != 0:
        print(f"  {name}: failed ({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode})")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def model_latency(backends: list[tuple[str, dict[str, Any]]], repeats: int = 200) -> dict[str, dict[str, float]]:
    """Median latency (ms) of each model alone, batch 1, per backend configuration."""
    from .config import build_component
    from .plugins import get_component

    out: dict[str, dict[str, float]] = {}
    for label, cfg in backends:
        try:
            backend = build_component(get_component("backend", cfg["name"]).factory,
                                      cfg.get("options", {}), label)
        except Exception as exc:  # a backend that is not installed is skipped, and said so
            print(f"  {label}: skipped ({exc})")
            continue
        row = {}
        for kind in ("landmark", "detector"):
            spec = model_spec(kind)
            try:
                runner = backend.load(spec, cfg.get("variant", "fp32"))
            except HandSDKError as exc:  # a models folder without this backend's file (no TFLite export)
                print(f"  {label}: skipped ({exc})")
                break
            x = np.random.default_rng(0).random((1, spec.input_size, spec.input_size, 3), np.float32)
            for _ in range(20):
                runner(x)
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                runner(x)
                ts.append((time.perf_counter() - t0) * 1000)
            row[kind] = float(np.median(ts))
        else:
            out[label] = row
            print(f"  {label:28s} landmark {row['landmark']:.3f} ms  detector {row['detector']:.3f} ms")
    return out


MODEL_BACKENDS = [
    ("onnxruntime fp32, 2 threads", {"name": "onnxruntime", "options": {"threads": 2}}),
    ("onnxruntime fp32, 1 thread", {"name": "onnxruntime", "options": {"threads": 1}}),
    ("onnxruntime int8, 2 threads", {"name": "onnxruntime", "options": {"threads": 2}, "variant": "int8"}),
    ("torch, 2 threads", {"name": "torch", "options": {"threads": 2}}),
    ("tflite (XNNPACK), 2 threads", {"name": "tflite", "options": {"threads": 2}}),
]


def agreement(hands: list[list], ref: list[list]) -> tuple[float, int]:
    """Mean landmark distance to the reference (e.g. MediaPipe full) in units of hand size,
    over frames where both found a hand, and the number of such frames."""
    d = []
    for ours, theirs in zip(hands, ref, strict=False):
        if not ours or not theirs:
            continue
        r = np.asarray(theirs[0])[:, :2]
        size = hand_size(r)
        d.append(min(np.linalg.norm(np.asarray(o)[:, :2] - r, axis=1).mean() for o in ours) / size)
    return (float(np.mean(d)) if d else float("nan")), len(d)


def summarise(res: dict[str, Any]) -> dict[str, Any]:
    ms = np.asarray(res["ms"][WARMUP:])
    out = {"fps": 1000.0 / ms.mean(), "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
           "peak_rss_mb": res["peak_rss_mb"], "frames_with_hand": sum(bool(h) for h in res["hands"]),
           "n": len(res["ms"])}
    if "cpu_ms" in res:  # CPU time of every thread of the process: what a frame costs the machine
        out["cpu_ms"] = float(np.mean(res["cpu_ms"][WARMUP:]))
    if "detector" in res:
        out["detector_rate"] = float(np.mean(res["detector"]))
        out["stages"] = {k: (float(np.percentile(v[WARMUP:], 50)), float(np.percentile(v[WARMUP:], 99)))
                         for k, v in res["stages"].items() if k in ("preprocess", "detect", "landmarks", "smooth")}
    return out


def bench(sources: list[str], pipelines: list[str], rounds: int, max_frames: int, max_hands: int,
          out_md: Path | None, images: Path | None) -> dict[str, Any]:
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for src in sources:
            npy = Path(tmp) / "frames.npy"
            info = decode_source(src, npy, max_frames)
            print(f"{src}: {info['frames']} frames {info['size']}")
            best: dict[str, dict[str, Any]] = {}
            for r in range(rounds):
                for name in pipelines:
                    res = run_pipeline(name, npy, info["fps"], max_hands)
                    if res is None:
                        continue
                    s = summarise(res)
                    cpu = f"  CPU {s['cpu_ms']:5.2f} ms/frame" if "cpu_ms" in s else ""
                    print(f"  round {r + 1} {name:36s} {s['fps']:7.1f} FPS  p50 {s['p50']:6.2f} ms  "
                          f"p99 {s['p99']:6.2f} ms  RSS {s['peak_rss_mb']:.0f} MB{cpu}")
                    if name not in best or s["fps"] > best[name]["summary"]["fps"]:
                        best[name] = {"summary": s, "hands": res["hands"]}
            ref = best.get("mediapipe full", {}).get("hands")
            for b in best.values():
                if ref is not None:
                    b["summary"]["agreement"], b["summary"]["agreement_frames"] = agreement(b["hands"], ref)
            report[src] = {"info": info, "results": {k: v["summary"] for k, v in best.items()}}
    print("models alone (batch 1, median of 200):")
    report["__models__"] = model_latency(MODEL_BACKENDS)
    if out_md is not None:
        write_markdown(report, out_md, images, rounds, max_hands)
    return report


NOTES_BEGIN, NOTES_END = "<!-- notes: kept when handsdk bench rewrites this page -->", "<!-- /notes -->"


def kept_notes(path: Path) -> list[str]:
    """The hand-written block between the notes markers of an earlier page (with the markers),
    so that re-running the benchmark refreshes the tables without dropping the analysis."""
    if not path.is_file():
        return []
    text = path.read_text()
    start, end = text.find(NOTES_BEGIN), text.find(NOTES_END)
    if start < 0 or end < start:
        return []
    return [*text[start:end + len(NOTES_END)].splitlines(), ""]


def write_markdown(report: dict[str, Any], out: Path, images: Path | None, rounds: int, max_hands: int) -> None:
    import platform

    lines = ["# Benchmarks", "",
             f"Written by `handsdk bench` ({platform.machine()}, {os.cpu_count()} cores, Python "
             f"{platform.python_version()}). Each pipeline ran in its own process on the same pre-decoded "
             f"frames, {rounds} alternating rounds, best round kept, first {WARMUP} frames excluded from "
             f"latency; `max_hands = {max_hands}` everywhere. Ratios are against MediaPipe Hands full "
             "(model_complexity 1) from the same run. CPU ms / frame: the process's CPU time (every thread) "
             "per frame, what a frame costs the machine where FPS is how long it takes. Agreement: mean "
             "landmark distance to MediaPipe full / hand size.", ""]
    lines += kept_notes(out)
    models = report.pop("__models__", {})
    if models:
        lm, det = model_spec("landmark").input_size, model_spec("detector").input_size
        lines += ["## Models alone", "", "Median latency of one inference (batch 1, one crop / one frame), "
                  "same run.", "", f"| backend | landmark model ({lm}²) ms | detector ({det}²) ms |", "|---|---|---|"]
        lines += [f"| {k} | {v['landmark']:.3f} | {v['detector']:.3f} |" for k, v in models.items()]
        lines.append("")
    for src, rep in report.items():
        info, res = rep["info"], rep["results"]
        mp = res.get("mediapipe full")
        lines += [f"## {Path(src).name} ({info['frames']} frames, {info['size']})", "",
                  "| pipeline | FPS | × MediaPipe full | p50 ms | p99 ms | CPU ms / frame | detector rate | peak RSS MB | "
                  "frames with a hand | agreement |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for name, s in res.items():
            ratio = f"{s['fps'] / mp['fps']:.2f}" if mp else "—"
            det = f"{s['detector_rate']:.2f}" if "detector_rate" in s else "—"
            agr = f"{s['agreement']:.3f}" if "agreement" in s and not np.isnan(s["agreement"]) else "—"
            cpu = f"{s['cpu_ms']:.2f}" if "cpu_ms" in s else "—"
            lines.append(f"| {name} | {s['fps']:.1f} | {ratio} | {s['p50']:.2f} | {s['p99']:.2f} | {cpu} | {det} | "
                         f"{s['peak_rss_mb']:.0f} | {s['frames_with_hand']}/{s['n']} | {agr} |")
        stages = res.get("handsdk onnxruntime fp32", {}).get("stages")
        if stages:
            lines += ["", "Per-stage latency of handsdk onnxruntime fp32 (p50 / p99 ms): " +
                      ", ".join(f"{k} {a:.2f} / {b:.2f}" for k, (a, b) in stages.items())]
        if mp:
            ours = res.get("handsdk onnxruntime fp32")
            if ours:
                lines += ["", f"Targets: FPS ≥ 3× MediaPipe full: **{ours['fps'] / mp['fps']:.2f}×**; "
                              f"p99 ({ours['p99']:.2f} ms) below MediaPipe's p50 ({mp['p50']:.2f} ms): "
                              f"**{'yes' if ours['p99'] < mp['p50'] else 'no'}**; peak RSS < 300 MB: "
                              f"**{ours['peak_rss_mb']:.0f} MB**."]
        if images is not None:
            png = images / f"bench_{Path(src).stem}.png"
            if plot(res, png, Path(src).name):
                lines += ["", f"![{src}](images/{png.name})"]
        lines.append("")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


def plot(res: dict[str, Any], png: Path, title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = list(res)
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.6))
    ax[0].barh(names, [res[n]["fps"] for n in names], color=["C0" if "handsdk" in n else "C3" for n in names])
    ax[0].set_xlabel("frames per second (higher is better)")
    ax[1].barh(names, [res[n]["p50"] for n in names], color="C0", label="p50")
    ax[1].barh(names, [res[n]["p99"] - res[n]["p50"] for n in names], left=[res[n]["p50"] for n in names],
               color="C1", label="p99")
    ax[1].set_xlabel("latency per frame, ms")
    ax[1].legend()
    ax[1].set_yticklabels([])
    fig.suptitle(title)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    return True


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--worker":  # internal: one pipeline in a child process
        try:
            config, frames_path, fps = json.loads(argv[1]), argv[2], float(argv[3])
        except (IndexError, ValueError) as exc:
            raise ConfigError(f"--worker is internal to handsdk bench (CONFIG_JSON FRAMES FPS): {exc}") from None
        print(json.dumps(worker(config, frames_path, fps)))
        return 0
    ap = ArgumentParser(prog="handsdk bench", description=__doc__)
    ap.add_argument("sources", nargs="*")
    ap.add_argument("--pipelines", nargs="*", default=list(PIPELINES), choices=list(PIPELINES))
    ap.add_argument("--rounds", type=positive_int, default=3)
    ap.add_argument("--max-frames", type=positive_int, default=400)
    ap.add_argument("--max-hands", type=positive_int, default=2)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = ap.parse_args(argv)
    sources = args.sources
    if not sources:
        from .data import data_root

        sources = ["synthetic"]
        root = data_root()
        if root is not None and (root / "asl_video/asl_hand.25fps.mp4").exists():
            sources.append(str(root / "asl_video/asl_hand.25fps.mp4"))
    bench(sources, args.pipelines, args.rounds, args.max_frames, args.max_hands, args.out,
          args.out.parent / "images")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
