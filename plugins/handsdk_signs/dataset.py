"""Landmarks of labelled photos, as OUR tracker (``Tracker().detect``) sees them, cached.

Both training and evaluation start here, so the classifier learns from (and is scored on) the
landmarks the shipped models really produce, errors included. Each photo is run as is and, for
training, also mirrored left-right (which shows the other hand: the features mirror it back
using the tracker's handedness, so the copy teaches robustness to handedness and landmark noise).

A :class:`Sample` keeps every hand the tracker found (up to ``max_hands``); which one stands
for the photo is chosen later (:func:`main_hand`). The cache is an ``.npz`` outside the
repository keyed by the dataset, the photo list and the tracker's model files, so retrained
models re-extract automatically.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from handsdk.data import IMAGE_SUFFIXES, Photo, iter_photos, yolo_box
from handsdk.types import hand_size

#: Built-in vocabularies and the shared dataset each is trained on.
DATASETS = {"asl_letters": "asl_letters", "digits": "sign_digits"}
MAX_HANDS = 2


def cache_dir() -> Path:
    """``$HANDSDK_SIGNS_CACHE``, else ``../cache`` beside the project, else ``~/.cache/handsdk``."""
    env = os.environ.get("HANDSDK_SIGNS_CACHE")
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parents[3] / "cache"
    if beside.is_dir():
        return beside
    return Path.home() / ".cache" / "handsdk"


@dataclass
class Sample:
    """One photo (or its mirror image) and the hands the tracker found in it."""

    path: str
    label: str
    split: str
    group: str
    flipped: bool
    width: int
    height: int
    landmarks: np.ndarray  # (k, 21, 3) float32, k = hands found (0..MAX_HANDS)
    handedness: list[str]  # k x "left"/"right"
    scores: np.ndarray  # (k,) presence
    box: tuple[float, float, float, float] | None = None  # dataset hand box (cx, cy, w, h) px
    augmented: int = 0  # 0: the photo itself (or its mirror); k > 0: k-th random affine copy


def _extraction_key() -> str:
    """A short hash of what extraction depends on: the bundled model files and the tracker's
    settings (a tracker change such as ``mirror_new`` changes the landmarks as much as new
    weights do)."""
    from handsdk.config import TrackerConfig, tracker_result_options
    from handsdk.models import bundled_models_dir

    h = hashlib.sha1()
    root = bundled_models_dir()
    for name in ("manifest.json", "landmark.onnx", "detector.onnx"):
        p = root / name
        if p.is_file():
            st = p.stat()
            h.update(f"{name}:{st.st_size}:{int(st.st_mtime)}".encode())
    h.update(repr(sorted(tracker_result_options(TrackerConfig(max_hands=MAX_HANDS)).items())).encode())
    return h.hexdigest()[:10]


def folder_photos(folder: str | Path, valid_percent: int = 15) -> list[Photo]:
    """``folder/<label>/*.jpg`` as :class:`Photo` s; each photo is its own group, split by a
    hash of its path (the same photo always falls on the same side)."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"training folder {str(root)!r} does not exist")
    out = []
    for cls in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for img in sorted(cls.iterdir()):
            if img.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            group = f"{root.name}/{cls.name}/{img.stem}"
            h = int(hashlib.md5(group.encode()).hexdigest()[:8], 16)
            split = "valid" if h % 100 < valid_percent else "train"
            out.append(Photo(img, root.name, split, group, cls.name))
    if not out:
        raise ValueError(f"no photos found in {str(root)!r}: expected {root}/<label>/*.jpg")
    return out


def dataset_photos(vocabulary: str) -> list[Photo]:
    """The shared-data photos of a built-in vocabulary (empty when the data is absent)."""
    return list(iter_photos((DATASETS[vocabulary],)))


def _detect(tracker, image: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:
    hands = tracker.detect(image)[:MAX_HANDS]
    lms = np.stack([h.landmarks for h in hands]).astype(np.float32) if hands else np.zeros((0, 21, 3), np.float32)
    return lms, [h.handedness.label for h in hands], np.array([h.score for h in hands], np.float32)


def _affine(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A random similarity transform: +-15 degrees, scale 0.85-1.15, shift +-6 %, about the centre."""
    ang = rng.uniform(-15, 15)
    scale = rng.uniform(0.85, 1.15)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, scale)
    m[:, 2] += rng.uniform(-0.06, 0.06, 2) * (w, h)
    return m


def _degraded(img: np.ndarray, hand_px: float, rng: np.random.Generator) -> np.ndarray:
    """The photo as a poorer camera would take it: one of motion blur (3-12 % of the hand, any
    direction), low light (gamma 1.6-2.6, 45-85 % exposure, sensor noise), low resolution (the
    hand 40-90 px across, scaled back up) or heavy JPEG (quality 15-40); a second one a third
    of the time. Random strengths, so that ``handsdk eval --perturb``'s fixed settings are not
    what is trained on."""
    h, w = img.shape[:2]
    out = img
    kinds = rng.permutation(4)[: 1 + int(rng.random() < 1 / 3)]
    for kind in kinds:
        if kind == 0:
            k = max(3, int(rng.uniform(0.03, 0.12) * hand_px) | 1)
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2] = 1.0 / k
            rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), rng.uniform(0, 180), 1.0)
            kernel = cv2.warpAffine(kernel, rot, (k, k))
            out = cv2.filter2D(out, -1, kernel / max(kernel.sum(), 1e-6))
        elif kind == 1:
            x = 255 * (out / 255.0) ** rng.uniform(1.6, 2.6) * rng.uniform(0.45, 0.85)
            out = np.clip(x + rng.normal(0, rng.uniform(2, 9), out.shape), 0, 255).astype(np.uint8)
        elif kind == 2:
            f = min(1.0, rng.uniform(40, 90) / max(hand_px, 1.0))
            small = cv2.resize(out, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
            out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 41))])
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else out
    return np.ascontiguousarray(out)


def extract(photos: Sequence[Photo], flips: bool = True, tracker=None, progress: bool = True,
            augment: int = 0, seed: int = 0, degrade: int = 0) -> list[Sample]:
    """Run the tracker on every photo (and its mirror image when ``flips``); training photos
    also get ``augment`` randomly rotated / scaled / shifted (and half of them mirrored)
    copies, which show the classifier more of the tracker's landmark noise, and ``degrade``
    copies as a poorer camera would take them (:func:`_degraded`; half of them mirrored),
    which show it the landmarks the tracker gives on poor photos."""
    if tracker is None:
        from handsdk import Tracker

        tracker = Tracker({"tracker": {"max_hands": MAX_HANDS}})
    out: list[Sample] = []
    t0 = time.time()
    for i, ph in enumerate(photos):
        img = cv2.imread(str(ph.path))
        if img is None:
            print(f"warning: cannot read {ph.path}", file=sys.stderr)
            continue
        h, w = img.shape[:2]
        yb = yolo_box(ph) if (ph.path.parent.name == "images") else None
        box = (yb[0] * w, yb[1] * h, yb[2] * w, yb[3] * h) if yb else None
        for flipped in (False, True) if flips else (False,):
            im = img[:, ::-1].copy() if flipped else img
            lms, hd, sc = _detect(tracker, im)
            b = box
            if flipped and box is not None:
                b = (w - box[0], box[1], box[2], box[3])
            out.append(Sample(str(ph.path), ph.label, ph.split, ph.group, flipped, w, h, lms, hd, sc, b))
        if ph.split == "train" and augment:
            rng = np.random.default_rng([seed, i])
            for k in range(1, augment + 1):
                m = _affine(rng, w, h)
                im = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                flipped = bool(rng.integers(2))
                b = None
                if box is not None:
                    cx, cy = m @ np.array([box[0], box[1], 1.0])
                    sc_ = float(np.hypot(*m[:, 0]))
                    b = (float(cx), float(cy), box[2] * sc_, box[3] * sc_)
                if flipped:
                    im = im[:, ::-1].copy()
                    if b is not None:
                        b = (w - b[0], b[1], b[2], b[3])
                lms, hd, sc = _detect(tracker, im)
                out.append(Sample(str(ph.path), ph.label, ph.split, ph.group, flipped, w, h, lms, hd, sc,
                                  b, augmented=k))
        if ph.split == "train" and degrade:
            rng = np.random.default_rng([seed, i, 1])
            hand_px = max(box[2], box[3]) if box is not None else 0.8 * min(w, h)
            for k in range(augment + 1, augment + degrade + 1):
                flipped = bool(rng.integers(2))
                im = _degraded(np.ascontiguousarray(img[:, ::-1]) if flipped else img, hand_px, rng)
                b = box if box is None or not flipped else (w - box[0], box[1], box[2], box[3])
                lms, hd, sc = _detect(tracker, im)
                out.append(Sample(str(ph.path), ph.label, ph.split, ph.group, flipped, w, h, lms, hd, sc,
                                  b, augmented=k))
        if progress and (i + 1) % 200 == 0:
            print(f"  {i + 1}/{len(photos)} photos ({time.time() - t0:.0f} s)", file=sys.stderr)
    return out


def _save(path: Path, samples: list[Sample]) -> None:
    n = len(samples)
    lms = np.full((n, MAX_HANDS, 21, 3), np.nan, np.float32)
    hd = np.zeros((n, MAX_HANDS), np.int8)  # 1 right, -1 left, 0 none
    sc = np.zeros((n, MAX_HANDS), np.float32)
    box = np.full((n, 4), np.nan, np.float32)
    for i, s in enumerate(samples):
        k = len(s.handedness)
        lms[i, :k] = s.landmarks
        hd[i, :k] = [1 if x == "right" else -1 for x in s.handedness]
        sc[i, :k] = s.scores
        if s.box is not None:
            box[i] = s.box
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp, landmarks=lms, handedness=hd, scores=sc, box=box,
        path=np.array([s.path for s in samples]), label=np.array([s.label for s in samples]),
        split=np.array([s.split for s in samples]), group=np.array([s.group for s in samples]),
        flipped=np.array([s.flipped for s in samples]),
        augmented=np.array([s.augmented for s in samples], np.int16),
        size=np.array([(s.width, s.height) for s in samples], np.int32))
    tmp.replace(path)


def _load(path: Path) -> list[Sample]:
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}  # each z[k] decompresses the whole array: read once
    aug = d.get("augmented", np.zeros(len(d["path"]), np.int16))
    out = []
    for i in range(len(d["path"])):
        k = int(np.sum(d["handedness"][i] != 0))
        box = None if np.isnan(d["box"][i]).any() else tuple(float(v) for v in d["box"][i])
        out.append(Sample(str(d["path"][i]), str(d["label"][i]), str(d["split"][i]), str(d["group"][i]),
                          bool(d["flipped"][i]), int(d["size"][i][0]), int(d["size"][i][1]),
                          d["landmarks"][i, :k], ["right" if v > 0 else "left" for v in d["handedness"][i, :k]],
                          d["scores"][i, :k], box, int(aug[i])))
    return out


def cached_samples(name: str, photos: Sequence[Photo], flips: bool = True, refresh: bool = False,
                   progress: bool = True, augment: int = 0, degrade: int = 0) -> list[Sample]:
    """:func:`extract` through a cache file ``<cache_dir>/sign_landmarks_<name>_<key>.npz``."""
    h = hashlib.sha1()
    for ph in photos:
        h.update(f"{ph.path}|{ph.label}|{ph.split}\n".encode())
    h.update(f"flips={flips}|models={_extraction_key()}".encode())
    if augment:
        h.update(f"|augment={augment}".encode())
    if degrade:
        h.update(f"|degrade={degrade}".encode())
    path = cache_dir() / f"sign_landmarks_{name}_{h.hexdigest()[:12]}.npz"
    if path.is_file() and not refresh:
        return _load(path)
    if progress:
        print(f"extracting landmarks of {len(photos)} photos{' (+ mirrored)' if flips else ''}"
              f"{f' (+ {augment} augmented copies of each training photo)' if augment else ''}"
              f"{f' (+ {degrade} degraded copies of each training photo)' if degrade else ''} "
              f"with handsdk's tracker -> {path}", file=sys.stderr)
    samples = extract(photos, flips=flips, progress=progress, augment=augment, degrade=degrade)
    _save(path, samples)
    return samples


def main_hand(sample: Sample) -> int | None:
    """Index of the hand that stands for the photo: the one nearest the dataset's hand box when
    there is one, else the largest; None when no hand was found."""
    k = len(sample.handedness)
    if k == 0:
        return None
    if k == 1:
        return 0
    if sample.box is not None:
        cx, cy = sample.box[0], sample.box[1]
        d = [float(np.hypot(*(np.median(lm[:, :2], axis=0) - (cx, cy)))) for lm in sample.landmarks]
        return int(np.argmin(d))
    return largest_hand(sample.landmarks)


def largest_hand(landmarks: Iterable[np.ndarray]) -> int:
    sizes = [hand_size(lm) for lm in landmarks]
    return int(np.argmax(sizes))
