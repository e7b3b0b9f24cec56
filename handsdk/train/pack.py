"""Build the compact training pack: pseudo-labelled real photos (JPEG bytes, max side
``--max-side``) plus the labels, in one ``.npz`` that a GPU machine can take along.

Synthetic renders are not packed: the trainers render them on the fly from
:mod:`handsdk.synthetic`.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from handsdk.script import ArgumentParser

from ..data import FETCHED, TRAINABLE
from ..errors import ConfigError

#: other hands kept per photo (``others`` in the labels); a photo rarely holds more
MAX_OTHERS = 3
#: faces kept per photo (``faces`` in the labels: scripts/mine_faces.py)
MAX_FACES = 4


def trainable_sets() -> tuple[str, ...]:
    """The shared sets whose licence allows shipped weights, and the fetched sets except the one
    held out whole for the leave-one-source-out check."""
    from .fetched import HELD_OUT

    return TRAINABLE + tuple(f for f in FETCHED if f not in HELD_OUT)


def _around_hand(img: np.ndarray, lm: np.ndarray, region: list | None, context: float):
    """The part of ``img`` within ``context`` hand sizes of the hand (a square, clipped to the
    photo), the landmarks and hand-free strip moved into it: a small hand in a wide room keeps
    its pixels through ``max_side``, where shrinking the whole photo would leave it a few pixels."""
    h, w = img.shape[:2]
    lo, hi = lm[:, :2].min(0), lm[:, :2].max(0)
    half = max(hi - lo) * context / 2
    cx, cy = (lo + hi) / 2
    x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
    x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
    if x0 == 0 and y0 == 0 and x1 == w and y1 == h:
        return img, lm, region
    lm = lm.copy()
    lm[:, 0] -= x0
    lm[:, 1] -= y0
    if region:
        rx0, ry0, rx1, ry1 = max(region[0], x0) - x0, max(region[1], y0) - y0, min(region[2], x1) - x0, \
            min(region[3], y1) - y0
        region = [rx0, ry0, rx1, ry1] if min(rx1 - rx0, ry1 - ry0) >= 24 else None
    return np.ascontiguousarray(img[y0:y1, x0:x1]), lm, region


#: Image codecs a pack may hold, by file extension for ``cv2.imencode``. pack_gpu's 6,845 images
#: take 24.9 MB at WebP 75 against 40.6 MB at JPEG 65, which lets a wider model's larger resume
#: state travel beside the pack in one device call.
CODECS = {"jpeg": (".jpg", cv2.IMWRITE_JPEG_QUALITY), "webp": (".webp", cv2.IMWRITE_WEBP_QUALITY)}


def build_pack(labels: Path, out: Path, max_side: int = 320, quality: int = 90,
               datasets: tuple[str, ...] | None = None, hand_context: float = 0.0,
               codec: str = "jpeg") -> dict[str, int]:
    """Pack the labelled photos of ``datasets``; ``hand_context`` > 0 keeps only a square of that
    many hand sizes around each hand (the landmark trainer's crops need no more)."""
    if codec not in CODECS:
        raise ConfigError(f"codec {codec!r}: a pack holds {' or '.join(CODECS)} images")
    ext, quality_flag = CODECS[codec]
    datasets = datasets or trainable_sets()
    blobs, lms, rights, splits, groups, names, sets, free, others, faces = [], [], [], [], [], [], [], [], [], []
    for line in labels.read_text().splitlines():
        rec = json.loads(line)
        if rec["dataset"] not in datasets:
            continue
        img = cv2.imread(rec["path"])
        if img is None:
            continue
        lm = np.asarray(rec["landmarks"], np.float32)
        region = rec.get("hand_free")  # teacher-verified hand-free strip (pseudolabel), or none
        other = np.full((MAX_OTHERS, 21, 2), np.nan, np.float32)  # the hands the label does not cover
        for k, o in enumerate((rec.get("others") or [])[:MAX_OTHERS]):
            other[k] = np.asarray(o, np.float32)[:, :2]
        face = np.full((MAX_FACES, 4), np.nan, np.float32)  # x0, y0, x1, y1 of faces off the hands
        for k, f in enumerate((rec.get("faces") or [])[:MAX_FACES]):
            face[k] = f
        if hand_context:
            before = lm[0, :2].copy()
            img, lm, region = _around_hand(img, lm, region, hand_context)
            other -= before - lm[0, :2]
            face -= np.tile(before - lm[0, :2], 2)
        s = min(1.0, max_side / max(img.shape[:2]))
        if s < 1.0:
            img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(ext, img, [quality_flag, quality])
        blobs.append(buf.tobytes())
        lm *= s
        lms.append(lm)
        others.append(other * s)
        faces.append(face * s)
        rights.append(rec["right"])
        splits.append(rec["split"])
        groups.append(rec["group"])
        names.append(rec["label"])
        sets.append(rec["dataset"])
        if region:  # scaled inwards, so the strip stays clear of the hand
            x0, y0, x1, y1 = np.asarray(region, np.float64) * s
            free.append(np.array([np.ceil(x0), np.ceil(y0), np.floor(x1), np.floor(y1)], np.float32))
        else:
            free.append(np.full(4, -1, np.float32))
    if not blobs:
        raise ConfigError(f"{labels}: no readable photo of the trainable datasets ({', '.join(datasets)}) "
                          "to pack")
    out = Path(out)
    if out.suffix != ".npz":
        raise ConfigError(f"--out {str(out)!r}: a pack is an .npz file")
    out.parent.mkdir(parents=True, exist_ok=True)
    offsets = np.cumsum([0] + [len(b) for b in blobs])
    np.savez(out, encoded=np.frombuffer(b"".join(blobs), np.uint8), offsets=offsets,
             landmarks=np.stack(lms), right=np.asarray(rights, np.float32),
             split=np.asarray(splits), group=np.asarray(groups), label=np.asarray(names),
             dataset=np.asarray(sets), hand_free=np.asarray(free, np.int32).reshape(-1, 4),
             # boxes' pixels: half precision does (and the GPU carry is tight)
             others=np.stack(others).astype(np.float16), faces=np.stack(faces).astype(np.float16))
    return {"photos": len(blobs), "bytes": int(offsets[-1])}


def load_pack(path: Path) -> dict[str, np.ndarray | list[np.ndarray]]:
    """Decode the pack: ``images`` is a list of BGR uint8 arrays, the rest as stored."""
    z = np.load(path)
    key = "encoded" if "encoded" in z.files else "jpeg"  # packs made before WebP: "jpeg"
    data, off = z[key], z["offsets"]
    images = [cv2.imdecode(data[off[i]:off[i + 1]], cv2.IMREAD_COLOR) for i in range(len(off) - 1)]
    out = {k: z[k] for k in z.files if k not in (key, "offsets")}
    out["images"] = images
    return out


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="python -m handsdk.train.pack", description=__doc__)
    ap.add_argument("--labels", type=Path, default=Path.home() / ".cache/handsdk/labels.jsonl")
    ap.add_argument("--out", type=Path, default=Path.home() / ".cache/handsdk/pack.npz")
    ap.add_argument("--max-side", type=int, default=320)
    ap.add_argument("--quality", type=int, default=90, help="the codec's quality, 0-100")
    ap.add_argument("--codec", choices=sorted(CODECS), default="jpeg",
                    help="how the images are stored (webp: smaller, for what a device call carries)")
    ap.add_argument("--datasets", nargs="*", help=f"default: {' '.join(trainable_sets())}")
    ap.add_argument("--hand-context", type=float, default=0.0,
                    help="keep a square of this many hand sizes around each hand (0: the whole photo; "
                         "4 keeps small hands sharp for the landmark trainer)")
    args = ap.parse_args(argv)
    allowed = set(trainable_sets()) | set(FETCHED)
    if args.datasets and set(args.datasets) - allowed:
        raise ConfigError(f"--datasets: {', '.join(sorted(set(args.datasets) - allowed))} cannot go into "
                          f"a pack (evaluation only, or unknown); valid: {', '.join(sorted(allowed))}")
    print(build_pack(args.labels, args.out, args.max_side, args.quality,
                     tuple(args.datasets) if args.datasets else None, args.hand_context, args.codec))
    return 0


if __name__ == "__main__":
    from handsdk.script import run_script

    raise SystemExit(run_script(main))
