"""Held-out accuracy of a sign vocabulary, end to end: ``python -m handsdk_signs.evaluate``.

::

    python -m handsdk_signs.evaluate --vocabulary asl_letters
    python -m handsdk_signs.evaluate --vocabulary digits
    python -m handsdk_signs.evaluate --vocabulary path/to/myvocab.json --folder PATH

Each held-out photo (``split == "valid"``: never a source photo the model was trained on) goes
through ``Tracker({"consumers": [{"name": "sign_classifier", ...}]}).detect(image)``, exactly as
an application would call it; the largest hand's ``labels["sign"]`` is the answer, and a photo
where no hand is found counts as wrong. Prints top-1, how often a hand was found, per-class
accuracy and the most frequent confusions, and writes a confusion-matrix PNG (its last column is
"no hand") where ``--png`` says — by default ``docs/images/confusion_<vocabulary>.png``, and only
for the figure the docs show: a built-in vocabulary on every held-out photo, default tracker.

``--limit N`` scores a fixed subsample (the same N photos every time, spread over the classes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from handsdk.data import Photo, yolo_box
from handsdk.evaluate import PERTURBATIONS, perturb_sample
from handsdk.script import ArgumentParser

from .classifier import resolve_vocabulary
from .dataset import DATASETS, dataset_photos, folder_photos, largest_hand
from .model import SignModel

NO_HAND = "(no hand)"
#: The perturbations of ``handsdk eval`` that keep a sign what it is (turning the photo would
#: not: H and U, K and P, G and Q differ by how the hand is held).
SIGN_PERTURBATIONS = tuple(k for k in PERTURBATIONS if k != "rot90")
#: Targets of the built-in vocabularies (end-to-end top-1 on held-out photos).
TARGETS = {"asl_letters": 0.90, "digits": 0.95}


def score(truths: Sequence[str], preds: Sequence[str | None], labels: Sequence[str]) -> dict[str, Any]:
    """Top-1 (None = no hand = wrong), hand-found rate, per-class accuracy and the confusion
    matrix (rows: true label, columns: labels + no hand)."""
    labels = list(labels)
    n = len(truths)
    cols = {lab: i for i, lab in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels) + 1), np.int64)
    for t, p in zip(truths, preds, strict=True):
        if t in cols:
            cm[cols[t], cols.get(p, len(labels)) if p is not None else len(labels)] += 1
    ok = sum(1 for t, p in zip(truths, preds, strict=True) if p == t)
    found = sum(1 for p in preds if p is not None)
    per_class = {}
    for lab in labels:
        k = sum(1 for t in truths if t == lab)
        if k:
            per_class[lab] = {"n": k, "top1": round(sum(1 for t, p in zip(truths, preds, strict=True)
                                                        if t == lab and p == t) / k, 4)}
    return {"n": n, "top1": round(ok / n, 4) if n else 0.0, "found": round(found / n, 4) if n else 0.0,
            "top1_found": round(ok / found, 4) if found else 0.0, "per_class": per_class,
            "confusion": cm, "labels": labels}


def subsample(photos: Sequence[Photo], limit: int | None) -> list[Photo]:
    """A fixed, class-balanced subsample of at most ``limit`` photos (ordered by a hash of each
    photo's group, taken round-robin over the classes)."""
    photos = list(photos)
    if limit is None or len(photos) <= limit:
        return photos
    by_class: dict[str, list[Photo]] = {}
    for p in sorted(photos, key=lambda p: hashlib.md5(p.group.encode()).hexdigest()):
        by_class.setdefault(p.label, []).append(p)
    out: list[Photo] = []
    while len(out) < limit:
        for lab in sorted(by_class):
            if by_class[lab] and len(out) < limit:
                out.append(by_class[lab].pop(0))
    return out


def hand_box_corners(photo: Photo, image: np.ndarray) -> np.ndarray:
    """The photo's hand box (its YOLO label) as 4 corner points in pixels; photos without a box
    (the sign-digit close-ups) are the hand: the whole image."""
    h, w = image.shape[:2]
    box = yolo_box(photo)
    cx, cy, bw, bh = (box[0] * w, box[1] * h, box[2] * w, box[3] * h) if box else (w / 2, h / 2, w, h)
    return np.array([[cx - bw / 2, cy - bh / 2], [cx + bw / 2, cy - bh / 2],
                     [cx - bw / 2, cy + bh / 2], [cx + bw / 2, cy + bh / 2]], np.float32)


def perturbed(photo: Photo, image: np.ndarray, name: str, index: int) -> np.ndarray | None:
    """The photo made harder by ``name`` (one of :data:`SIGN_PERTURBATIONS`, seeded by
    ``index``), the hand placed by its box; None where it does not apply."""
    out = perturb_sample(name, image, hand_box_corners(photo, image), index)
    return None if out is None else out[0]


def predict_photos(photos: Sequence[Photo], vocabulary: str | Path | SignModel,
                   tracker_options: dict[str, Any] | None = None,
                   perturb: str | None = None) -> list[str | None]:
    """``Tracker.detect`` with the ``sign_classifier`` consumer on each photo (made harder by
    ``perturb`` if given, where it applies): the largest hand's sign, or None when no hand was
    found (or the image cannot be read)."""
    from handsdk import Tracker

    consumer: dict[str, Any] = {"name": "sign_classifier", "vocabulary": vocabulary}
    if isinstance(vocabulary, Path):
        consumer["vocabulary"] = str(vocabulary)
    cfg = {"tracker": dict(tracker_options or {}), "consumers": [consumer]}
    preds: list[str | None] = []
    with Tracker(cfg) as tracker:
        for i, ph in enumerate(photos):
            img = cv2.imread(str(ph.path))
            if img is not None and perturb is not None:
                harder = perturbed(ph, img, perturb, i)
                img = img if harder is None else harder  # where it does not apply: the photo as is
            hands = tracker.detect(img) if img is not None else []
            if not hands:
                preds.append(None)
                continue
            hand = hands[largest_hand([h.landmarks for h in hands])]
            lab = hand.labels.get("sign")
            preds.append(lab.name if lab is not None else None)
    return preds


def plot_confusion(result: dict[str, Any], path: str | Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = result["confusion"].astype(float)
    labels = result["labels"]
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    k = len(labels)
    size = 3.0 + 0.28 * k
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k + 1), labels + ["no\nhand"], fontsize=8)
    ax.set_yticks(range(k), labels, fontsize=8)
    ax.set_xlabel("predicted (end to end: Tracker.detect + sign_classifier)")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k + 1):
            if cm[i, j]:
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] > 0.5 else "black")
    ax.axvline(k - 0.5, color="grey", lw=0.8)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="fraction of the true class")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _default_png(name: str) -> Path:
    root = Path(__file__).resolve().parents[2]
    base = root if (root / "pyproject.toml").is_file() else Path.cwd()
    return base / "docs" / "images" / f"confusion_{name}.png"


def main(argv: Sequence[str] | None = None) -> int:
    ap = ArgumentParser(prog="python -m handsdk_signs.evaluate", description=__doc__.split("\n\n")[0],
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocabulary", required=True, help="asl_letters, digits, or a vocabulary file")
    ap.add_argument("--folder", help="photos FOLDER/<label>/*.jpg (for your own vocabulary; its "
                                     "hash split, as in training)")
    ap.add_argument("--holdout", type=int, default=None,
                    help="--folder: the percent held out in training (default: what the vocabulary file "
                         "records, else 15)")
    ap.add_argument("--all", action="store_true", help="score every photo, not only the held-out ones")
    ap.add_argument("--limit", type=int, help="score a fixed subsample of at most N photos")
    ap.add_argument("--min-detection-confidence", type=float,
                    help="tracker option (default: the tracker's own)")
    ap.add_argument("--perturb", choices=SIGN_PERTURBATIONS,
                    help="score the photos made harder (as handsdk eval --perturb; no --png)")
    ap.add_argument("--png", help="confusion matrix PNG (default: docs/images/confusion_<name>.png, "
                                  "for a built-in vocabulary's full held-out run only)")
    ap.add_argument("--no-png", action="store_true")
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    a = ap.parse_args(argv)

    path = resolve_vocabulary(a.vocabulary)
    model = SignModel.load(path)
    name = model.name or path.stem
    if a.folder:
        holdout = a.holdout if a.holdout is not None else model.training.get("holdout_percent", 15)
        if holdout == 0 and not a.all:
            print("error: this vocabulary was trained on every photo (--holdout 0): no held-out photo "
                  "to score; pass --all to score the training photos", file=sys.stderr)
            return 2
        photos = folder_photos(a.folder, holdout)
    else:
        builtin = a.vocabulary if a.vocabulary in DATASETS else (name if name in DATASETS else None)
        if builtin is None:
            ap.error(f"{a.vocabulary!r} is not a built-in vocabulary: pass --folder with its photos")
        photos = dataset_photos(builtin)
        if not photos:
            print("the shared data folder is missing (handsdk.data.data_root)", file=sys.stderr)
            return 2
    if not a.all:
        photos = [p for p in photos if p.split == "valid"]
    photos = subsample(photos, a.limit)
    unknown = sorted({p.label for p in photos} - set(model.labels))
    if unknown:
        print(f"warning: labels not in the vocabulary (always wrong): {unknown}", file=sys.stderr)
    opts = {}
    if a.min_detection_confidence is not None:
        opts["min_detection_confidence"] = a.min_detection_confidence
    t0 = time.time()
    preds = predict_photos(photos, path, opts, perturb=a.perturb)
    dt = time.time() - t0
    truths = [p.label for p in photos]
    res = score(truths, preds, model.labels)
    what = ("all" if a.all else "held-out") + (f", {a.perturb}" if a.perturb else "")
    print(f"{name}: top-1 {res['top1']:.3f} end to end on {res['n']} {what} photos "
          f"(hand found in {res['found']:.3f}; top-1 {res['top1_found']:.3f} where found); "
          f"{1000 * dt / max(1, len(photos)):.0f} ms/photo")
    target = TARGETS.get(name)
    if target is not None:
        print(f"target {target:.2f}: {'met' if res['top1'] >= target else 'NOT met'}")
    print("per class: " + "  ".join(f"{k} {v['top1']:.2f}/{v['n']}" for k, v in res["per_class"].items()))
    conf = Counter((t, p or NO_HAND) for t, p in zip(truths, preds, strict=True) if t != p)
    if conf:
        print("confusions (true -> predicted, count): "
              + ", ".join(f"{t}->{p} {n}" for (t, p), n in conf.most_common(12)))
    # the docs' figure only from the run it shows (a built-in vocabulary, every held-out photo,
    # default tracker); any other run writes a PNG only where --png says
    canonical = a.vocabulary in DATASETS and not (a.folder or a.all or a.limit or a.perturb
                                                  or a.min_detection_confidence is not None)
    png_path = a.png or (_default_png(name) if canonical else None)
    if not a.no_png and png_path is not None:
        png = plot_confusion(res, png_path,
                             f"{name}: top-1 {res['top1']:.1%} end to end, {res['n']} {what} photos")
        print(f"wrote {png}")
    if a.json:
        out = {k: v for k, v in res.items() if k != "confusion"}
        out["confusion"] = res["confusion"].tolist()
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    from handsdk.script import run_script

    raise SystemExit(run_script(main))
