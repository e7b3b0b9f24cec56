"""Train a sign vocabulary from labelled photos: ``python -m handsdk_signs.train``.

Built-in vocabularies, from the shared photos (``handsdk.data``)::

    python -m handsdk_signs.train --vocabulary asl_letters     # -> models/signs/asl_letters.json
    python -m handsdk_signs.train --vocabulary digits --degrade 2   # -> models/signs/digits.json

Your own, from a folder of photos ``PATH/<label>/*.jpg`` (one folder per sign)::

    python -m handsdk_signs.train --folder PATH --name myvocab   # -> models/signs/myvocab.json
    python -m handsdk_signs.train --folder PATH --out my/signs.json
    python -m handsdk_signs.train --folder PATH --name myvocab --augment 2 --degrade 2   # small folders

``--augment`` adds turned / scaled / shifted copies of each training photo, ``--degrade`` copies
as a poorer camera would take them (blur, low light, low resolution, JPEG): each is read by the
tracker like the photo, so the classifier sees more of the landmark noise it will meet.

then ``[[consumers]] name = "sign_classifier"`` with ``vocabulary = "myvocab"`` (or the path).

Every photo goes through handsdk's own tracker (``Tracker.detect``), so the model learns the
landmarks it will really see; the landmarks are cached (``$HANDSDK_SIGNS_CACHE`` or ``../cache``
beside the project, else ``~/.cache/handsdk``). Photos are split by source photo: the shared
datasets' own split (``Photo.split``), or for a folder a hash of each file's path
(``--holdout`` percent held out; ``--holdout 0`` trains on everything and stores no
metrics). The held-out top-1 stored in the file is end to end: a photo where the tracker finds
no hand counts as wrong. The model is trained in numpy (no torch needed).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from handsdk.script import ArgumentParser

from .classifier import BUILTIN, OTHER_HAND, SignClassifier, vocabulary_dir
from .dataset import (
    DATASETS,
    Sample,
    cached_samples,
    dataset_photos,
    folder_photos,
    largest_hand,
    main_hand,
)
from .features import sign_features
from .model import SignModel, fit

#: Per built-in vocabulary: whether the orientation features are used, and notes kept in the file.
BUILTIN_SETTINGS: dict[str, dict[str, Any]] = {
    "asl_letters": {
        "orientation": True,
        "notes": {
            "data": "asl_letters (David Lee's ASL alphabet photos via Roboflow, public domain): "
                    "~500 source photos (train, x3 augmented copies) + 144 held out, split by "
                    "source photo",
            "J_and_Z": "J and Z are signed with motion (J: the pinky draws a J; Z: the index "
                       "draws a Z). This model sees still images, so it reads J and Z from the "
                       "static pose the photos show: J = the I handshape turned so the pinky "
                       "points down or sideways (the end of its stroke), Z = the pointing index "
                       "held sideways or diagonally (a point on its stroke). In video the "
                       "sign_classifier also recognises the motion itself from the fingertip's "
                       "trajectory (handsdk_signs.motion, option motion = true).",
            "orientation": "uses orientation features: H/U, K/P, G/Q differ mainly in how the "
                           "hand is held",
        },
    },
    "digits": {
        "orientation": False,
        "notes": {
            "data": "sign_digits (Turkish Sign Language digits 0-9, Apache-2.0): ~1650 "
                    "close-ups, many people, hash split by photo",
        },
    },
}

def training_arrays(samples: Sequence[Sample], labels: Sequence[str], orientation: bool
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Features of each sample's hand, in both mirror images (so the model does not depend on
    the tracker's handedness), and the class indices."""
    xs, ys = [], []
    for s in samples:
        i = main_hand(s)
        if i is None:
            continue
        y = labels.index(s.label)
        for h in (s.handedness[i], OTHER_HAND[s.handedness[i]]):
            xs.append(sign_features(s.landmarks[i], h, orientation))
            ys.append(y)
    if not xs:
        raise ValueError("no hand was found in any training photo")
    return np.array(xs), np.array(ys)


def train_model(samples: Sequence[Sample], labels: Sequence[str], *, orientation: bool, name: str,
                hidden: int = 128, epochs: int = 100, seeds: int = 3, **kw: Any) -> SignModel:
    """Fit ``seeds`` MLPs and merge them into one: averaging the logits of one-hidden-layer
    MLPs is a single MLP with their hidden units side by side."""
    x, y = training_arrays(samples, labels, orientation)
    models = [fit(x, y, labels, hidden=hidden, epochs=epochs, seed=k, orientation=orientation,
                  name=name, **kw) for k in range(seeds)]
    first = models[0]
    if seeds == 1:
        return first
    # all share mean/std (same x); concatenate hidden units, average output layers
    w1 = np.concatenate([m.w1 for m in models], axis=1)
    b1 = np.concatenate([m.b1 for m in models])
    w2 = np.concatenate([m.w2 for m in models], axis=0) / seeds
    b2 = np.mean([m.b2 for m in models], axis=0)
    return SignModel(labels=list(labels), mean=first.mean, std=first.std, w1=w1, b1=b1, w2=w2, b2=b2,
                     orientation=orientation, name=name)


def predict_samples(model: SignModel, samples: Sequence[Sample]) -> list[tuple[str | None, float]]:
    """What ``Tracker.detect`` + ``sign_classifier`` say for each (cached) photo: the largest
    hand's sign, or (None, 0) when no hand was found — the consumer's own ``predict``."""
    classifier = SignClassifier(model, motion=False)
    out: list[tuple[str | None, float]] = []
    for s in samples:
        if not s.handedness:
            out.append((None, 0.0))
            continue
        i = largest_hand(s.landmarks)
        label = classifier.predict(s.landmarks[i], s.handedness[i])
        out.append((label.name, label.score))
    return out


def held_out_metrics(model: SignModel, samples: Sequence[Sample]) -> dict[str, Any]:
    from .evaluate import score

    held = [s for s in samples if s.split == "valid" and not s.flipped]
    if not held:
        return {}
    preds = [p for p, _ in predict_samples(model, held)]
    m = score([s.label for s in held], preds, model.labels)
    return {"held_out_photos": m["n"], "top1_end_to_end": m["top1"], "hand_found": m["found"],
            "top1_when_found": m["top1_found"], "per_class": m["per_class"]}


def main(argv: Sequence[str] | None = None) -> int:
    ap = ArgumentParser(prog="python -m handsdk_signs.train", description=__doc__.split("\n\n")[0],
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--vocabulary", choices=sorted(DATASETS), help="a built-in vocabulary (shared photos)")
    src.add_argument("--folder", help="a folder of labelled photos: FOLDER/<label>/*.jpg")
    ap.add_argument("--name", help="vocabulary name (default: the built-in name or the folder's name)")
    ap.add_argument("--out", help="output file (default: models/signs/<name>.json)")
    ap.add_argument("--orientation", choices=("auto", "yes", "no"), default="auto",
                    help="add how the hand is held to the features (auto: yes for asl_letters, "
                         "no otherwise)")
    ap.add_argument("--holdout", type=int, default=15, help="--folder: percent of photos held out (0-90)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=3, help="ensemble size (merged into one MLP)")
    ap.add_argument("--no-flip", action="store_true", help="do not add mirrored copies of the photos")
    ap.add_argument("--augment", type=int, default=0,
                    help="also run the tracker on N randomly rotated/scaled/shifted copies of each "
                         "training photo (more landmark variety for small folders; slower)")
    ap.add_argument("--degrade", type=int, default=0,
                    help="also run the tracker on N copies of each training photo as a poorer camera "
                         "would take them (motion blur, low light, low resolution, JPEG)")
    ap.add_argument("--refresh", action="store_true", help="re-extract landmarks (ignore the cache)")
    a = ap.parse_args(argv)

    if a.vocabulary:
        name = a.name or a.vocabulary
        photos = dataset_photos(a.vocabulary)
        if not photos:
            print(f"no photos for {a.vocabulary!r}: the shared data folder (handsdk.data.data_root, "
                  "$HANDSDK_DATA) is missing", file=sys.stderr)
            return 2
        settings = BUILTIN_SETTINGS[a.vocabulary]
        cache_name = a.vocabulary
    else:
        if not 0 <= a.holdout <= 90:
            ap.error("--holdout must be in 0..90")
        photos = folder_photos(a.folder, a.holdout)
        name = a.name or Path(a.folder).resolve().name
        settings = {"orientation": False, "notes": {"data": f"photos of {Path(a.folder).resolve()}"}}
        cache_name = "folder_" + "".join(c if c.isalnum() else "_" for c in name)
    orientation = settings["orientation"] if a.orientation == "auto" else a.orientation == "yes"
    out = Path(a.out) if a.out else vocabulary_dir() / f"{name}.json"
    if not a.out and a.vocabulary is None and name in BUILTIN:
        ap.error(f"--name {name!r} would overwrite a shipped vocabulary; pick another name or --out")

    t0 = time.time()
    if a.augment < 0 or a.degrade < 0:
        ap.error("--augment and --degrade must be >= 0")
    samples = cached_samples(cache_name, photos, flips=not a.no_flip, refresh=a.refresh, augment=a.augment,
                             degrade=a.degrade)
    labels = sorted({s.label for s in samples})
    train = [s for s in samples if s.split == "train"]
    if len(labels) < 2:
        ap.error(f"need at least two labels, found {labels}")
    found = sum(1 for s in train if s.handedness)
    handless = [lab for lab in labels if not any(s.handedness for s in train if s.label == lab)]
    if handless:  # such a class would be a label the classifier can never have learnt
        ap.error(f"no hand was found in any training photo of {', '.join(handless)}: remove those "
                 "folders or add photos where the hand shows")
    print(f"{len(photos)} photos, {len(labels)} signs; training on {found}/{len(train)} train images "
          f"with a hand (mirrored copies included)", file=sys.stderr)
    model = train_model(train, labels, orientation=orientation, name=name, hidden=a.hidden,
                        epochs=a.epochs, seeds=a.seeds)
    model.notes = dict(settings["notes"])
    model.training = {"photos": len(photos), "train_images": len(train), "train_with_hand": found,
                      "hidden": a.hidden * a.seeds, "epochs": a.epochs, "seeds": a.seeds,
                      "mirrored_copies": not a.no_flip, "augmented_copies": a.augment,
                      "degraded_copies": a.degrade,
                      **({"holdout_percent": a.holdout} if a.folder else {}),
                      "seconds": round(time.time() - t0, 1)}
    model.metrics = held_out_metrics(model, samples)
    model.save(out)
    m = model.metrics
    if m:
        print(f"held out: top-1 {m['top1_end_to_end']:.3f} end to end on {m['held_out_photos']} photos "
              f"(hand found in {m['hand_found']:.3f}; {m['top1_when_found']:.3f} of those)")
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    from handsdk.script import run_script

    raise SystemExit(run_script(main))
