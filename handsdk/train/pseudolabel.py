"""Pseudo-label the shared real photos with the MediaPipe teacher.

For each photo, candidate crops (palm detections, and the dataset's hand box or the whole
image at 0°, ±90° and 180° — rock-paper-scissors hands lie sideways) go through the teacher's
landmark model; the most confident one is refined twice from its own landmarks, and kept only
if the teacher stays confident. Output: one JSON line per photo in ``--out``.

Each record also gets ``hand_free``: the photo's largest strip beside the labelled hand
(:func:`handsdk.geometry.hand_free_region`) if the teacher finds no hand in it, else null — real
backgrounds verified hand-free, the negatives that train the presence head
(:mod:`handsdk.train.presence`). A photo can hold a second hand the label does not cover, so the
strip alone is not enough. ``--hand-free-only`` adds the field to an existing labels file.

And ``others``: the landmarks of every other hand the teacher finds in the photo (presence at
least :data:`OTHER_MIN_PRESENCE`). A label covers one hand; without ``others`` the detector
trainer, which shows whole photos, would teach that a signer's second hand is background (measured:
docs/models.md, "Second hands"). ``--others-only`` adds the field to an existing labels file.

``--cache`` (``scripts/training_data.sh`` gives the committed ``scripts/teacher_labels.json.gz``)
keeps what the teacher finds in each photo, rejections included, by the SHA-1 of the photo's bytes
and its dataset box: the teacher took 18 of a fresh machine's 39 minutes of data rebuild
(2026-12-07), and a photo in the cache is not run again. Findings only, never pixels.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from handsdk.script import ArgumentParser

from ..data import EVAL_ONLY, FETCHED, TRAINABLE, iter_photos, teacher_root, yolo_box
from ..errors import ConfigError
from ..geometry import hand_free_region
from ..types import RotatedRect, hand_size
from .photo_cache import photo_key, read_cache, write_cache
from .teacher import MediaPipeTeacher

#: an unlabelled hand counts for ``others`` from this teacher presence (the label itself needs 0.9)
OTHER_MIN_PRESENCE = 0.8
#: what ``--cache`` holds was found by this version of :func:`teacher_fields`: change it with the
#: function (or the teacher's models), and the cache is ignored rather than trusted
LABELS_VERSION = "1"


def _box_candidates(photo, image: np.ndarray) -> list[RotatedRect]:
    h, w = image.shape[:2]
    box = yolo_box(photo)
    if box is not None:
        cx, cy, bw, bh = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    else:  # close-up datasets: the hand fills most of the photo
        cx, cy, bw, bh = w / 2, h / 2, w * 0.8, h * 0.8
    rects = []
    for scale in (1.3, 1.8):
        side = max(bw, bh) * scale
        for angle in (0.0, np.pi / 2, -np.pi / 2, np.pi):
            rects.append(RotatedRect((cx, cy), (side, side), angle))
    return rects


def label_photo(teacher: MediaPipeTeacher, photo, min_presence: float = 0.9,
                hand_free: bool = True) -> dict | None:
    """The teacher's record of one photo, or None where it is not confident; ``hand_free=False``
    skips the strip check (the teacher run once more on the strip) when only the hand is wanted."""
    image = cv2.imread(str(photo.path))
    if image is None:
        return None
    found = teacher_fields(teacher, photo, image, min_presence, hand_free)
    return None if found is None else photo_record(photo, found)


def teacher_fields(teacher: MediaPipeTeacher, photo, image: np.ndarray, min_presence: float = 0.9,
                   hand_free: bool = True) -> dict | None:
    """What the teacher finds in one photo (the record's fields that do not come from the
    dataset), or None where it is not confident: what ``--cache`` keeps."""
    candidates = teacher.detect_palms(image) + _box_candidates(photo, image)
    best = max((teacher.landmarks_in(image, r) for r in candidates), key=lambda t: t.presence)
    for _ in range(2):
        refined = teacher.landmarks_in(image, teacher.roi_from_landmarks(best.landmarks))
        if refined.presence < best.presence - 0.05:
            break
        best = refined
    if best.presence < min_presence:
        return None
    return {
        "size": [image.shape[1], image.shape[0]],
        "landmarks": np.round(best.landmarks, 2).tolist(), "presence": round(best.presence, 4),
        "right": round(best.right, 4),
        "hand_free": verified_hand_free(teacher, image, best.landmarks) if hand_free else None,
        "others": other_hands(teacher, image, best.landmarks),
    }


def photo_record(photo, found: dict) -> dict:
    """One line of the labels file: the photo's place in its dataset, then the teacher's fields."""
    return {"path": str(photo.path), "dataset": photo.dataset, "split": photo.split,
            "group": photo.group, "label": photo.label, **found}


def cache_key(photo) -> str:
    """The teacher's result depends on the photo's bytes and on its dataset box (a candidate crop)."""
    return photo_key(photo.path, json.dumps(yolo_box(photo)).encode())


def other_hands(teacher: MediaPipeTeacher, image: np.ndarray, landmarks) -> list[list[list[float]]]:
    """The other hands the teacher finds in the photo (landmarks in pixels, rounded): every hand
    it tracks with presence ≥ :data:`OTHER_MIN_PRESENCE` whose points lie on average more than half
    a hand size from the labelled ``landmarks``."""
    ref = np.asarray(landmarks, np.float64)[:, :2]
    size = hand_size(ref)
    out = []
    for h in teacher.track(image, max_hands=4, min_presence=OTHER_MIN_PRESENCE):
        if float(np.linalg.norm(h.landmarks[:, :2] - ref, axis=1).mean()) <= 0.5 * size:
            continue
        refined = teacher.landmarks_in(image, teacher.roi_from_landmarks(h.landmarks))
        h = refined if refined.presence >= h.presence - 0.05 else h  # the crop from its landmarks
        out.append(np.round(h.landmarks, 2).tolist())
    return out


def verified_hand_free(teacher: MediaPipeTeacher, image: np.ndarray, landmarks) -> list[int] | None:
    """The hand-free strip beside ``landmarks`` as [x0, y0, x1, y1] if the teacher sees no hand
    in it (palm detector + landmarks, presence 0.5), else None."""
    region = hand_free_region((image.shape[1], image.shape[0]), np.asarray(landmarks))
    if region is None:
        return None
    x0, y0, x1, y1 = region
    return None if teacher.track(np.ascontiguousarray(image[y0:y1, x0:x1])) else list(region)


def add_field(path: Path, name: str, compute: Callable[[np.ndarray, dict], Any], missing: Any) -> list[dict]:
    """Add ``name`` to every record of an existing labels file (in place): ``compute(image,
    record)``, or ``missing`` where the photo cannot be read. Returns the records."""
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for rec in recs:
        image = cv2.imread(rec["path"])
        rec[name] = missing if image is None else compute(image, rec)
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return recs


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="python -m handsdk.train.pseudolabel", description=__doc__)
    ap.add_argument("--out", type=Path, default=Path.home() / ".cache/handsdk/labels.jsonl")
    ap.add_argument("--teacher", type=Path, default=teacher_root())
    ap.add_argument("--min-presence", type=float, default=0.9)
    ap.add_argument("--datasets", nargs="*", default=list(TRAINABLE + EVAL_ONLY + FETCHED))
    ap.add_argument("--hand-free-only", action="store_true",
                    help="only add the verified hand-free strips to the existing --out file")
    ap.add_argument("--others-only", action="store_true",
                    help="only add the other hands in each photo to the existing --out file")
    ap.add_argument("--cache", type=Path, default=None,
                    help="the teacher's findings by SHA-1 of the photo (scripts/teacher_labels.json.gz), "
                         "read, and extended with the photos it lacks")
    args = ap.parse_args(argv)
    if args.teacher is None:
        print("no teacher models found (../shared/teacher or HANDSDK_TEACHER)", file=sys.stderr)
        return 2
    teacher = MediaPipeTeacher(args.teacher, "full")
    if args.hand_free_only:
        recs = add_field(args.out, "hand_free", lambda img, r: verified_hand_free(teacher, img, r["landmarks"]), None)
        print(f"{sum(r['hand_free'] is not None for r in recs)} of {len(recs)} photos have a hand-free strip "
              f"the teacher confirms -> {args.out}")
        return 0
    if args.others_only:
        recs = add_field(args.out, "others", lambda img, r: other_hands(teacher, img, r["landmarks"]), [])
        print(f"{sum(bool(r['others']) for r in recs)} of {len(recs)} photos hold another hand the teacher "
              f"finds -> {args.out}")
        return 0
    known = set(TRAINABLE + EVAL_ONLY + FETCHED)
    unknown = sorted(set(args.datasets) - known)
    if unknown:
        raise ConfigError(f"--datasets: unknown {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    photos = list(iter_photos(tuple(args.datasets)))
    version = f"{LABELS_VERSION} min_presence={args.min_presence}"
    known_found = _cached(args.cache, version)
    if known_found is None:
        print(f"--cache {args.cache} holds labels of another version or --min-presence; not used")
    new: dict[str, dict | None] = {}
    kept, t0 = 0, time.time()
    with args.out.open("w") as f:
        for i, photo in enumerate(photos):
            key = cache_key(photo) if known_found is not None else ""
            if known_found is not None and key in known_found:
                found = known_found[key]
            else:
                image = cv2.imread(str(photo.path))
                if image is None:
                    continue
                found = teacher_fields(teacher, photo, image, args.min_presence)
                if known_found is not None:
                    new[key] = found
            if found is not None:
                kept += 1
                f.write(json.dumps(photo_record(photo, found)) + "\n")
            if i % 200 == 0:
                print(f"{i}/{len(photos)} kept {kept} ({time.time() - t0:.0f}s)", flush=True)
    if args.cache is not None and new:
        _add_to_cache(args.cache, version, new)
    taught = f"; the teacher read {len(new)}, the rest came from {args.cache}" if args.cache else ""
    print(f"kept {kept} of {len(photos)} photos -> {args.out}{taught}")
    return 0


def _cached(path: Path | None, version: str) -> dict | None:
    """The cache's photos ({} without a cache or a file yet), None where it is of another version."""
    stored = read_cache(path) if path is not None else {}
    if stored and stored.get("version") != version:
        return None
    return stored.get("photos", {})


def _add_to_cache(path: Path, version: str, new: dict) -> None:
    """Read, extend and write the cache under a lock on its folder: training_data.sh runs two
    teacher processes at once, each adding its own photos."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (run one process at a time there)
        fcntl = None
    folder = os.open(path.parent, os.O_RDONLY) if fcntl is not None else None
    try:
        if folder is not None:
            fcntl.flock(folder, fcntl.LOCK_EX)
        photos = _cached(path, version) or {}
        photos.update(new)
        write_cache(path, {"version": version, "photos": photos})
    finally:
        if folder is not None:
            os.close(folder)


if __name__ == "__main__":
    from handsdk.script import run_script

    raise SystemExit(run_script(main))
