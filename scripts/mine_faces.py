"""Add ``faces`` to a labels file: the faces in each photo that are not on a labelled hand.

Why: faces are most of the false hands in the unseen lab (126 of its 168 false hands on
hand-free strips, models 0.2.6: docs/models.md, "Faces"). With ``faces`` in the labels, the pack
keeps them and the landmark trainer's ``--face-share`` cuts crops on them as "no hand", so that
the backbone learns faces are not hands (as negatives for the presence head alone they measured
worse).

The faces come from OpenCV's Haar cascades (frontal, and profile both ways), which OpenCV 5 no
longer ships, so they run in worker processes of a virtualenv of their own with
``opencv-python-headless<5`` and numpy (``--python``), as the MediaPipe baseline runs in its own.
Training-time data only: no face model ships or runs in the tracker.

    python -m venv ~/.venvs/cv4 && ~/.venvs/cv4/bin/pip install "opencv-python-headless<5" numpy
    python scripts/mine_faces.py --python ~/.venvs/cv4/bin/python --labels labels.jsonl \
        --datasets signer_home counting_hands closeup_hands asl_letters gesture_counts

Each record of those datasets gets ``faces``: a list of ``[x0, y0, x1, y1]`` boxes in image
pixels (empty: none found); other records get ``null`` (not looked at).

The cascades' boxes are kept in ``--cache`` (by default ``scripts/faces_found.json.gz``,
committed), keyed by the SHA-1 of each photo's bytes, before the filter against the hands: the
cascades took 18.5 of the 39 minutes of a fresh machine's ``scripts/training_data.sh``
(2026-12-07), and a photo whose bytes are in the cache is not read again. Only boxes are kept,
never pixels.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from handsdk.errors import ConfigError
from handsdk.script import ArgumentParser, run_script
from handsdk.train.photo_cache import photo_key, read_cache, write_cache

#: Runs in the OpenCV 4 interpreter: photo paths in (one per line), face boxes out (a JSON list
#: per line; null for an unreadable photo). Faces at least 1/25 of the short side (and 16 px).
WORKER = r"""
import json, sys, cv2
cv2.setNumThreads(1)
root = cv2.data.haarcascades
frontal = cv2.CascadeClassifier(root + "haarcascade_frontalface_default.xml")
profile = cv2.CascadeClassifier(root + "haarcascade_profileface.xml")
for line in sys.stdin:
    g = cv2.imread(line.rstrip("\n"), cv2.IMREAD_GRAYSCALE)
    if g is None:
        print("null", flush=True)
        continue
    m = max(16, min(g.shape) // 25)
    found = [tuple(f) for f in frontal.detectMultiScale(g, 1.1, 5, minSize=(m, m))]
    found += [tuple(f) for f in profile.detectMultiScale(g, 1.1, 5, minSize=(m, m))]
    found += [(g.shape[1] - x - w, y, w, h)
              for x, y, w, h in profile.detectMultiScale(cv2.flip(g, 1), 1.1, 5, minSize=(m, m))]
    print(json.dumps([[int(x), int(y), int(x + w), int(y + h)] for x, y, w, h in found]), flush=True)
"""


def off_hands(faces: list[list[int]], rec: dict) -> list[list[int]]:
    """The faces whose box (grown by 30 % each way) holds no labelled hand's centre: a hand in
    front of a face stays a hand."""
    hands = [np.asarray(rec["landmarks"])[:, :2]] + [np.asarray(o)[:, :2] for o in rec.get("others") or []]
    keep = []
    for x0, y0, x1, y1 in faces:
        mx, my = 0.3 * (x1 - x0), 0.3 * (y1 - y0)
        if not any(x0 - mx < h[:, 0].mean() < x1 + mx and y0 - my < h[:, 1].mean() < y1 + my for h in hands):
            keep.append([x0, y0, x1, y1])
    return keep


def detect_faces(python: str, paths: list[str]) -> list[list[list[int]] | None]:
    """Face boxes of each photo, from one worker process of ``python``."""
    proc = subprocess.run([python, "-c", WORKER], input="".join(p + "\n" for p in paths),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise ConfigError(f"--python {python}: the face worker failed ({last}); it needs a venv with "
                          "opencv-python-headless<5 and numpy")
    return [json.loads(line) for line in proc.stdout.splitlines()]


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="scripts/mine_faces.py", description=__doc__.split("\n")[0])
    ap.add_argument("--labels", type=Path, required=True, help="labels file, rewritten in place")
    ap.add_argument("--datasets", nargs="+", required=True)
    ap.add_argument("--python", required=True, help="interpreter of a venv with opencv-python-headless<5")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path(__file__).with_name("faces_found.json.gz"),
                    help="the cascades' boxes by SHA-1 of the photo, read and extended (default: %(default)s)")
    args = ap.parse_args(argv)
    recs = [json.loads(line) for line in args.labels.read_text().splitlines() if line.strip()]
    todo = [r for r in recs if r["dataset"] in args.datasets]
    cache = read_cache(args.cache)
    keys = {r["path"]: photo_key(r["path"]) for r in todo}
    missing = sorted({p for p, k in keys.items() if k not in cache})
    print(f"{len(keys) - len(missing)} of {len(keys)} photos in {args.cache}; the cascades read {len(missing)}")
    if missing:
        shards = [missing[k::args.workers] for k in range(args.workers)]
        with ThreadPoolExecutor(args.workers) as pool:
            boxes = list(pool.map(lambda shard: detect_faces(args.python, shard), shards))
        for shard, found in zip(shards, boxes, strict=True):
            cache.update((keys[p], f) for p, f in zip(shard, found, strict=True))
        write_cache(args.cache, cache)
    for r in recs:
        r["faces"] = None
    for r in todo:
        f = cache[keys[r["path"]]]
        r["faces"] = None if f is None else off_hands(f, r)
    args.labels.write_text("".join(json.dumps(r) + "\n" for r in recs))
    print(f"{sum(bool(r['faces']) for r in todo)} of {len(todo)} photos show a face off the hands -> {args.labels}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
