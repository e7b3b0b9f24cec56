"""MediaPipe Hands in a process of its own (it pins numpy<2 and protobuf<5, so it usually lives
in a separate virtualenv). Imports nothing from handsdk: run it with that env's python.

Protocol on stdin/stdout, one request per line of JSON followed by the raw frame bytes:
``{"h": H, "w": W, "still": bool}`` + H*W*3 uint8 RGB bytes → one JSON line
``{"hands": [{"landmarks": [[x, y, z]*21] (pixels), "right": p, "score": s}], "ms": t}``.

``--bench FRAMES.npy`` instead times MediaPipe on pre-decoded frames inside this process and
prints one JSON object (so no pipe overhead is charged to MediaPipe).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

import numpy as np

try:  # handsdk's parser (no prefix matching, one error line) where handsdk is importable
    from handsdk.script import ArgumentParser
except ImportError:  # MediaPipe's own virtualenv has no handsdk: the same two rules, here
    import argparse

    class ArgumentParser(argparse.ArgumentParser):  # type: ignore[no-redef]
        def __init__(self, *args, **kwargs):
            kwargs["allow_abbrev"] = False
            super().__init__(*args, **kwargs)

        def error(self, message):
            self.exit(2, f"error: {self.prog}: {' '.join(message.split())}\n")


def _hands(complexity: int, still: bool, max_hands: int, min_det: float, min_track: float):
    import mediapipe as mp

    return mp.solutions.hands.Hands(static_image_mode=still, max_num_hands=max_hands,
                                    model_complexity=complexity, min_detection_confidence=min_det,
                                    min_tracking_confidence=min_track)


def _convert(res, w: int, h: int) -> list[dict]:
    out = []
    for lms, handed in zip(res.multi_hand_landmarks or [], res.multi_handedness or [], strict=False):
        pts = [[p.x * w, p.y * h, p.z * w] for p in lms.landmark]
        c = handed.classification[0]
        # MediaPipe assumes a mirrored (selfie) image: its "Left" is a right hand in a plain photo
        right = c.score if c.label == "Left" else 1.0 - c.score
        out.append({"landmarks": pts, "right": right, "score": c.score})
    return out


def serve(args) -> None:
    # the protocol gets stdout to itself: anything a library prints goes to stderr instead
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    video = _hands(args.complexity, False, args.max_hands, args.min_detection, args.min_tracking)
    still = _hands(args.complexity, True, args.max_hands, args.min_detection, args.min_tracking)
    inp = sys.stdin.buffer
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    while True:
        line = inp.readline()
        if not line:
            return
        req = json.loads(line)
        h, w = req["h"], req["w"]
        frame = np.frombuffer(inp.read(h * w * 3), np.uint8).reshape(h, w, 3)
        t0 = time.perf_counter()
        res = (still if req.get("still") else video).process(frame)
        ms = (time.perf_counter() - t0) * 1000
        out.write(json.dumps({"hands": _convert(res, w, h), "ms": ms}) + "\n")
        out.flush()


def _rss_anon_mb() -> float:
    """Anonymous resident memory (what the process allocated; mapped frames not counted)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(args) -> None:
    frames = np.load(args.bench, mmap_mode="r")
    video = _hands(args.complexity, False, args.max_hands, args.min_detection, args.min_tracking)
    times, cpu, hands, peak = [], [], [], _rss_anon_mb()
    for i in range(len(frames)):
        rgb = np.ascontiguousarray(frames[i][:, :, ::-1])  # stored BGR, like handsdk's input
        t0, c0 = time.perf_counter(), time.process_time()
        res = video.process(rgb)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)  # every thread of the process, as handsdk's
        hands.append(_convert(res, rgb.shape[1], rgb.shape[0]))
        peak = max(peak, _rss_anon_mb())
    print(json.dumps({"ms": times, "cpu_ms": cpu, "hands": hands, "peak_rss_mb": peak}))


def main() -> None:
    ap = ArgumentParser()
    ap.add_argument("--complexity", type=int, default=1)
    ap.add_argument("--max-hands", type=int, default=2)
    ap.add_argument("--min-detection", type=float, default=0.5)
    ap.add_argument("--min-tracking", type=float, default=0.5)
    ap.add_argument("--bench")
    args = ap.parse_args()
    bench(args) if args.bench else serve(args)


if __name__ == "__main__":
    main()
