"""``handsdk eval``: landmark accuracy on images with reference keypoints or on a video with
per-frame reference landmarks, for handsdk and (when ``../shared/teacher`` is there) for
MediaPipe's own TFLite models in the same run.

Metrics: detection rate, PCK@0.1 and PCK@0.2 (error / max side of the reference keypoints'
box), EPE in pixels, AUC of the PCK curve over [0, 0.2], all per joint too. Where the model
reports a confidence per landmark, how well it ranks its own errors: ``conf_auroc`` (the chance
that a landmark within PCK@0.1 has a higher confidence than one outside it; 0.5 = no better
than chance) and the mean confidence of correct and of wrong landmarks. End to end, also
``false_pos``: the share of hand-free images where a hand is reported anyway — each photo's
largest strip beside its reference hand (:func:`handsdk.geometry.hand_free_region`; photos
framed too tightly have none, and a JSONL line whose ``hand_free`` is null — the teacher found a
hand there: a second hand is no false one — is left out), run through the same pipeline; ``both_found``: of the photos
whose JSONL line lists ``others`` (the hands its label does not cover), the share where every
hand is found; and ``extra_hands``: of the photos whose JSONL line has an ``others`` field (so
every hand the teacher sees is listed), the share where a hand is reported on none of them — faces
and clutter in the whole photo, and the few real hands the teacher misses (an upper bound). A JSONL whose lines name more
than one ``dataset`` is also scored per dataset (``by_dataset``, and a row each in the table).

Handshape, where the reference has all 21 points with depth (the teacher's labels, MediaPipe's
video references): ``flex_err`` is the mean absolute difference, in degrees, between each
finger's flexion in 3D (:attr:`handsdk.handshape.HandShape.flex`, depth included) read from the
model's landmarks and from the reference's, and ``finger_state`` the share of fingers that both
call extended or both folded (flexion below or above :data:`FLEX_BOUNDARY`). PCK scores x and y
only; these two are what the gesture and sign rules read, and they include the depth channel.

``perturb`` (``handsdk eval --perturb NAME``) scores the same photos made harder, with the
reference moved along — :data:`PERTURBATIONS`: the hand small in a frame three times larger,
cropped tight to the hand, turned 90°, in low light with sensor noise, or motion-blurred — to
measure how the models generalise beyond the conditions of the photos they were trained on.

Reference formats: a JSONL with ``path`` and ``landmarks`` per line (what
``handsdk.train.pseudolabel`` writes), a COCO keypoints JSON (21 keypoints per annotation),
or a folder of images each with a ``<stem>.json`` holding ``{"landmarks": [[x, y], …]}``.
Human annotation often leaves keypoints out (hidden fingers): COCO keypoints with visibility 0,
``null`` points, or a ``visible`` list of 21 flags beside ``landmarks`` mark them, and every
score uses the labelled keypoints only (hand size from their box too). A hand with fewer than
:data:`MIN_LABELLED` labelled keypoints is not scored (``too_few_keypoints`` counts them).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .data import IMAGE_SUFFIXES
from .errors import ConfigError
from .geometry import hand_angle, hand_free_region, rect_from_landmarks, rect_from_points
from .handshape import hand_shape
from .types import RotatedRect, hand_size

THRESHOLDS = np.linspace(0, 0.2, 41)
#: Fewest labelled keypoints for a reference hand to be scored (its size needs a few).
MIN_LABELLED = 6
#: Flexion (degrees) between an extended and a folded finger: the gesture rules' boundary.
FLEX_BOUNDARY = 105.0
log = logging.getLogger(__name__)


@dataclass
class Sample:
    image_path: Path
    landmarks: np.ndarray  # (21, 2+) reference, image pixels
    meta: dict[str, Any] = field(default_factory=dict)


def _landmarks(value: Any, where: str, visible: Any = None) -> np.ndarray:
    """(21, 2+) float32 reference points; unlabelled ones (``null`` or not ``visible``) are NaN."""
    try:
        lm = np.asarray(_null_to_nan(value), np.float32)
    except (TypeError, ValueError):
        lm = np.zeros(0, np.float32)
    if lm.ndim != 2 or lm.shape[0] != 21 or lm.shape[1] < 2 or np.isinf(lm[:, :2]).any():
        raise ConfigError(f"{where}: 'landmarks' must be 21 [x, y(, z)] points in image pixels "
                          f"(null where not labelled), got shape {getattr(lm, 'shape', None)}")
    if visible is not None:
        flags = np.asarray(visible).ravel()
        if flags.shape != (21,):
            raise ConfigError(f"{where}: 'visible' must list 21 flags, got {flags.shape[0]}")
        lm = lm.copy()
        lm[~flags.astype(bool), :2] = np.nan
    lm[np.isnan(lm[:, :2]).any(1), :2] = np.nan
    return lm


def _null_to_nan(value: Any) -> Any:
    """JSON ``null`` keypoints (or coordinates) as NaN, in points or lists of points (of hands)."""
    if not isinstance(value, list):
        return value
    if len(value) <= 3 and all(v is None or isinstance(v, int | float) for v in value):  # one point
        return [np.nan if v is None else v for v in value]
    width = max((len(p) for p in value if isinstance(p, list) and p and not isinstance(p[0], list)), default=2)
    return [[np.nan] * width if p is None else _null_to_nan(p) for p in value]  # a null point as wide as the rest


def labelled(ref: np.ndarray) -> np.ndarray:
    """(21,) mask of the reference keypoints that are labelled (finite x and y)."""
    return np.isfinite(np.asarray(ref)[:, :2]).all(1)


def reference_rect(ref: np.ndarray, scale: float) -> RotatedRect:
    """The tracker's crop rule on the reference; with keypoints left out, the box of the
    labelled ones, turned by the wrist → middle knuckle direction if both are labelled."""
    ok = labelled(ref)
    if ok.all():
        return rect_from_landmarks(ref, scale)
    angle = hand_angle(ref[0], ref[9]) if ok[0] and ok[9] else 0.0
    return rect_from_points(ref[ok], angle, scale)


def load_references(ref: Path, base: Path | None = None) -> list[Sample]:
    """Samples from a JSONL, a COCO keypoints JSON, or a folder of images with sidecar JSONs.

    Relative image paths are taken relative to the reference file's folder (or ``base``)."""
    ref = Path(ref)
    root = Path(base) if base is not None else (ref if ref.is_dir() else ref.parent)
    if ref.is_dir():
        out = []
        for img in sorted(ref.iterdir()):
            side = img.with_suffix(".json")
            if img.suffix.lower() in IMAGE_SUFFIXES and side.exists():
                try:
                    rec = json.loads(side.read_text(encoding="utf-8"))
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise ConfigError(f"{side}: not valid JSON ({exc})") from None
                rec = rec if isinstance(rec, dict) else {}
                out.append(Sample(img, _landmarks(rec.get("landmarks"), str(side), rec.get("visible"))))
        if not out:
            raise ConfigError(f"reference folder {str(ref)!r} has no images with a <stem>.json "
                              "sidecar holding {\"landmarks\": [[x, y], ...]}")
        return out
    if not ref.is_file():
        raise ConfigError(f"reference {str(ref)!r} does not exist")
    try:
        text = ref.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"reference {str(ref)!r} is not a text file (a video or an image?); expected a .jsonl "
                          "of {path, landmarks}, a COCO keypoints JSON, or a folder (for a video: --video "
                          "VIDEO --reference JSON)") from None
    if ref.suffix == ".jsonl":
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            where = f"{ref}:{n}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{where}: not valid JSON ({exc})") from None
            if not isinstance(rec, dict) or "path" not in rec or "landmarks" not in rec:
                raise ConfigError(f"{where}: each line needs 'path' and 'landmarks'")
            path = Path(rec["path"])
            lm = _landmarks(rec["landmarks"], where, rec.get("visible"))
            out.append(Sample(path if path.is_absolute() else root / path, lm, rec))
        if not out:
            raise ConfigError(f"{ref}: no records")
        return out
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{ref}: not valid JSON ({exc}); expected a .jsonl of {{path, landmarks}}, "
                          "a COCO keypoints JSON, or a folder") from None
    if isinstance(data, dict) and "annotations" in data and "images" in data:  # COCO keypoints
        try:
            files = {im["id"]: im["file_name"] for im in data["images"]}
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{ref}: every COCO image needs an 'id' and a 'file_name' (missing {exc})") from None
        out = []
        for ann in data["annotations"]:
            kp = np.asarray(ann.get("keypoints", []), np.float32)
            if kp.size != 63:
                raise ConfigError(f"{ref}: annotation {ann.get('id')} has {kp.size // 3} keypoints, expected 21")
            kp = kp.reshape(21, 3)
            if ann.get("image_id") not in files:
                raise ConfigError(f"{ref}: annotation {ann.get('id')} refers to image_id "
                                  f"{ann.get('image_id')!r}, which is not in 'images'")
            xy = kp[:, :2].copy()
            xy[kp[:, 2] <= 0] = np.nan  # COCO visibility 0: not labelled
            out.append(Sample(root / files[ann["image_id"]], xy, {"visible": kp[:, 2]}))
        return out
    raise ConfigError(f"{ref}: expected a .jsonl of {{path, landmarks}}, a COCO keypoints JSON, or a folder")


def _small(img: np.ndarray, ref: np.ndarray, rng: np.random.Generator):
    """The photo pasted at a random place into a frame 3× its size, whose background is the
    photo itself enlarged and blurred past recognition: the hand a third of its size in the frame."""
    h, w = img.shape[:2]
    big = cv2.resize(img, (3 * w, 3 * h), interpolation=cv2.INTER_LINEAR)
    canvas = cv2.GaussianBlur(big, (0, 0), 0.05 * max(big.shape[:2]))
    ox, oy = int(rng.integers(0, 2 * w + 1)), int(rng.integers(0, 2 * h + 1))
    canvas[oy:oy + h, ox:ox + w] = img
    return canvas, ref + np.array([ox, oy, 0][: ref.shape[1]], np.float32)


def _tight(img: np.ndarray, ref: np.ndarray, rng: np.random.Generator):
    """Cropped to the reference box grown 1.15×: fingers at the border, no room around the hand."""
    h, w = img.shape[:2]
    (x0, y0), (x1, y1) = np.nanmin(ref[:, :2], 0), np.nanmax(ref[:, :2], 0)
    cx, cy, s = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * 1.15 / 2
    a0, b0, a1, b1 = int(max(0, cx - s)), int(max(0, cy - s)), int(min(w, cx + s)), int(min(h, cy + s))
    if min(a1 - a0, b1 - b0) < 32:
        return None
    return np.ascontiguousarray(img[b0:b1, a0:a1]), ref - np.array([a0, b0, 0][: ref.shape[1]], np.float32)


def _rot90(img: np.ndarray, ref: np.ndarray, rng: np.random.Generator):
    """Turned 90° clockwise (a phone held sideways)."""
    out = ref.copy()
    out[:, 0], out[:, 1] = img.shape[0] - 1 - ref[:, 1], ref[:, 0]
    return cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE), out


def _dark(img: np.ndarray, ref: np.ndarray, rng: np.random.Generator):
    """Low light: gamma 2.2, 60 % exposure, Gaussian sensor noise (σ = 6 levels)."""
    x = 255 * (img / 255.0) ** 2.2 * 0.6 + rng.normal(0, 6, img.shape)
    return np.clip(x, 0, 255).astype(np.uint8), ref


def _blur(img: np.ndarray, ref: np.ndarray, rng: np.random.Generator):
    """Horizontal motion blur over 8 % of the hand's size."""
    k = max(3, int(0.08 * hand_size(ref)) | 1)
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2] = 1.0 / k
    return cv2.filter2D(img, -1, kernel), ref


Perturbation = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray] | None]
PERTURBATIONS: dict[str, Perturbation] = {
    "small": _small, "tight": _tight, "rot90": _rot90, "dark": _dark, "blur": _blur,
}


def _perturbation(name: str) -> Perturbation:
    if name not in PERTURBATIONS:
        raise ConfigError(f"unknown perturbation {name!r}; accepted: {', '.join(PERTURBATIONS)}")
    return PERTURBATIONS[name]


def perturb_sample(name: str, img: np.ndarray, ref: np.ndarray, index: int):
    """``(image, reference)`` made harder by the perturbation ``name`` (seeded by the sample's
    index, so runs repeat), or ``None`` where it does not apply (a photo too small to crop)."""
    return _perturbation(name)(img, np.asarray(ref, np.float32), np.random.default_rng(index))


#: A photo whose mean landmark error exceeds this share of the hand's size is a gross failure
#: (``gross``: the share of found hands that are).
GROSS = 0.2


@dataclass
class Scores:
    """Per-sample errors; ``None`` where the hand was not found."""

    name: str
    errors: list[np.ndarray | None] = field(default_factory=list)  # (21,) px
    scales: list[float] = field(default_factory=list)
    confidences: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (sample, (21,)) where reported
    #: per sample, (2, 5) finger flexion in degrees (model, reference); None where the hand was
    #: not found or the reference lacks a point or its depth
    flexions: list[np.ndarray | None] = field(default_factory=list)

    def add(self, pred: np.ndarray | None, ref: np.ndarray, confidence: np.ndarray | None = None) -> None:
        """One reference hand; ``pred`` None where it was not found. Unlabelled reference
        keypoints (NaN) get a NaN error and count nowhere."""
        self.scales.append(hand_size(ref))
        self.errors.append(None if pred is None else np.linalg.norm(pred[:, :2] - ref[:, :2], axis=1))
        if pred is not None and confidence is not None:
            self.confidences.append((len(self.errors) - 1, np.asarray(confidence, np.float64).ravel()))
        with_depth = (pred is not None and ref.shape[1] >= 3 and pred.shape[1] >= 3
                      and np.isfinite(ref).all() and np.isfinite(pred[:, :3]).all())
        self.flexions.append(np.stack([hand_shape(pred[:, :3]).flex, hand_shape(ref[:, :3]).flex])
                             if with_depth else None)

    def subset(self, indices: list[int]) -> Scores:
        """The scores of these samples only (e.g. one dataset of a mixed reference file)."""
        order = sorted(set(indices))
        new = {old: k for k, old in enumerate(order)}
        return Scores(self.name, [self.errors[i] for i in order], [self.scales[i] for i in order],
                      [(new[i], c) for i, c in self.confidences if i in new],
                      [self.flexions[i] for i in order])

    def flex_error(self, i: int) -> float | None:
        """Sample i's mean absolute finger-flexion difference (degrees), None where not scored."""
        f = self.flexions[i]
        return None if f is None else float(np.abs(f[0] - f[1]).mean())

    def summary(self) -> dict[str, Any]:
        found = [i for i, e in enumerate(self.errors) if e is not None]
        n = len(self.errors)
        out: dict[str, Any] = {"n": n, "detection_rate": len(found) / n if n else 0.0}
        if not found:
            return out
        e = np.stack([self.errors[i] for i in found])
        r = e / np.asarray([self.scales[i] for i in found])[:, None]
        ok = np.isfinite(r)  # labelled keypoints
        rv = r[ok]
        pck = np.array([(rv < t).mean() for t in THRESHOLDS])
        per_joint = [round(float((r[ok[:, j], j] < 0.1).mean()), 4) if ok[:, j].any() else None
                     for j in range(r.shape[1])]
        per_photo = np.array([row[np.isfinite(row)].mean() for row in r])
        out.update({"pck10": float((rv < 0.1).mean()), "pck20": float((rv < 0.2).mean()),
                    "epe_px": float(e[ok].mean()), "epe_rel": float(rv.mean()),
                    "median_rel": float(np.median(per_photo)),
                    "gross": float((per_photo > GROSS).mean()),
                    "auc": float(np.trapezoid(pck, THRESHOLDS) / THRESHOLDS[-1]),
                    "pck10_joint": per_joint})
        flexed = [f for f in self.flexions if f is not None]
        if flexed:
            flex = np.stack(flexed)
            out.update({"flex_err": float(np.abs(flex[:, 0] - flex[:, 1]).mean()),
                        "finger_state": float(((flex[:, 0] < FLEX_BOUNDARY) == (flex[:, 1] < FLEX_BOUNDARY)).mean())})
        if self.confidences:
            conf, correct = [], []
            for i, c in self.confidences:
                rel = self.errors[i] / self.scales[i]
                conf.append(c[np.isfinite(rel)])
                correct.append(rel[np.isfinite(rel)] < 0.1)
            out.update(confidence_calibration(np.concatenate(conf), np.concatenate(correct)))
        return out


def confidence_calibration(conf: np.ndarray, correct: np.ndarray) -> dict[str, float]:
    """AUROC of the per-landmark confidence for telling correct landmarks from wrong ones, and
    the mean confidence of each (empty dict when all are correct or all wrong)."""
    correct = correct.astype(bool)
    n_ok, n_bad = int(correct.sum()), int((~correct).sum())
    if not n_ok or not n_bad:
        return {}
    _, inverse, counts = np.unique(conf, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # 1-based ranks, ties averaged
    auroc = (ranks[correct].sum() - n_ok * (n_ok + 1) / 2) / (n_ok * n_bad)  # Mann-Whitney U
    return {"conf_auroc": float(auroc), "conf_mean_correct": float(conf[correct].mean()),
            "conf_mean_wrong": float(conf[~correct].mean())}


def _best_match(cands: list[np.ndarray], ref: np.ndarray) -> np.ndarray | None:
    """The candidate hand closest to the reference, if it is plausibly the same hand."""
    if not cands:
        return None
    ok = labelled(ref)
    d = [float(np.linalg.norm(c[ok, :2] - ref[ok, :2], axis=1).mean()) for c in cands]
    i = int(np.argmin(d))
    return cands[i] if d[i] < 0.5 * hand_size(ref) else None


def _other_hands(meta: dict[str, Any]) -> list[np.ndarray]:
    """The reference's other hands (``others`` in a labels line: the hands its label does not
    cover, e.g. :mod:`handsdk.train.pseudolabel`'s), as (21, 2+) arrays; malformed ones are skipped."""
    out = []
    for o in meta.get("others") or []:
        a = np.asarray(o, np.float64)
        if a.ndim == 2 and a.shape[0] == 21 and a.shape[1] >= 2:
            out.append(a)
    return out


def _any_unmatched(cands: list[np.ndarray], refs: list[np.ndarray]) -> bool:
    """Whether some candidate hand is plausibly none of the reference hands (:func:`_best_match`)."""
    return any(all(_best_match([c], r) is None for r in refs) for c in cands)


def _all_found(cands: list[np.ndarray], refs: list[np.ndarray]) -> bool:
    """Whether each reference hand has a candidate of its own (:func:`_best_match`, each candidate
    used once)."""
    left = list(cands)
    for ref in refs:
        match = _best_match(left, ref)
        if match is None:
            return False
        left = [c for c in left if c is not match]
    return True


def _add_hands(scores: Scores, hands: list, ref: np.ndarray) -> None:
    """Score the tracker's hand that matches ``ref`` (landmarks and their confidences)."""
    match = _best_match([h.landmarks for h in hands], ref)
    hand = next((h for h in hands if h.landmarks is match), None)
    scores.add(match, ref, None if hand is None else hand.confidence)


class OurCropModel:
    """Our landmark model alone on the crop built from the reference landmarks."""

    def __init__(self, tracker):
        self.t = tracker

    def __call__(self, bgr: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(landmarks, per-landmark confidence)."""
        rect = reference_rect(ref, self.t.crop_scale)
        out = self.t._run_landmarks(bgr, [rect])[0]
        return out["landmarks"], out["confidence"]


class TeacherCropModel:
    def __init__(self, teacher):
        self.t = teacher

    def __call__(self, bgr: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """MediaPipe's own ROI rule on a fully labelled reference; with keypoints left out
        (the rule needs particular ones), the crop ours gets."""
        rect = self.t.roi_from_landmarks(ref) if labelled(ref).all() else reference_rect(ref, 1.5)
        return self.t.landmarks_in(bgr, rect).landmarks


def evaluate_images(samples: list[Sample], tracker, teacher=None, perturb: str | None = None,
                    per_photo: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Crop-level (same reference crop) and end-to-end scores for handsdk and the teacher;
    with ``perturb`` (a name in :data:`PERTURBATIONS`) on the photos made harder. Given a list
    as ``per_photo``, one record per scored photo is appended to it (:func:`photo_records`), so
    two runs can be compared photo by photo."""
    if perturb is not None:
        _perturbation(perturb)  # a wrong name fails before any photo is read
    scores = {k: Scores(k) for k in ("handsdk_crop", "handsdk_e2e")}
    if teacher is not None:
        scores.update({k: Scores(k) for k in ("mediapipe_crop", "mediapipe_e2e")})
    ours_crop = OurCropModel(tracker)
    unreadable = []
    datasets: list[str] = []  # of each scored sample, for the per-dataset breakdown
    hand_free = {k: [] for k in scores if k.endswith("_e2e")}
    free_sets: list[str] = []  # the dataset of each hand-free strip
    # photos whose reference lists other hands too: whether every hand was found
    both = {k: [] for k in scores if k.endswith("_e2e")}
    both_sets: list[str] = []
    # photos whose reference lists every hand the teacher sees: whether a hand was reported on none
    extra = {k: [] for k in scores if k.endswith("_e2e")}
    extra_sets: list[str] = []
    # image, hand-free strip index, two-hand index and listed-hands index of each scored sample
    scored: list[tuple[Path, int | None, int | None, int | None]] = []
    too_few = 0
    for i, s in enumerate(samples):
        if labelled(s.landmarks).sum() < MIN_LABELLED:
            too_few += 1
            continue
        img = cv2.imread(str(s.image_path))
        if img is None:
            unreadable.append(s.image_path)
            continue
        ref = s.landmarks
        if perturb is not None:
            done = perturb_sample(perturb, img, ref, i)
            if done is None:
                continue
            img, ref = done
        datasets.append(str(s.meta.get("dataset") or "(none)"))
        crop_lm, crop_conf = ours_crop(img, ref)
        scores["handsdk_crop"].add(crop_lm, ref, crop_conf)
        hands = tracker.detect(img)
        _add_hands(scores["handsdk_e2e"], hands, ref)
        others = [] if perturb is not None else _other_hands(s.meta)  # a perturbation moves only ref
        listed = perturb is None and "others" in s.meta
        if others:
            both["handsdk_e2e"].append(_all_found([h.landmarks for h in hands], [ref, *others]))
        if listed:
            extra["handsdk_e2e"].append(_any_unmatched([h.landmarks for h in hands], [ref, *others]))
        if teacher is not None:
            scores["mediapipe_crop"].add(TeacherCropModel(teacher)(img, ref), ref)
            theirs = [h.landmarks for h in teacher.track(img)]
            scores["mediapipe_e2e"].add(_best_match(theirs, ref), ref)
            if others:
                both["mediapipe_e2e"].append(_all_found(theirs, [ref, *others]))
            if listed:
                extra["mediapipe_e2e"].append(_any_unmatched(theirs, [ref, *others]))
        if others:
            both_sets.append(datasets[-1])
        if listed:
            extra_sets.append(datasets[-1])
        region = hand_free_region((img.shape[1], img.shape[0]), ref[labelled(ref)])
        if "hand_free" in s.meta and not s.meta["hand_free"]:
            region = None  # the labels say a hand may be there (e.g. the teacher found one on the strip)
        scored.append((s.image_path, None if region is None else len(free_sets),
                       len(both_sets) - 1 if others else None, len(extra_sets) - 1 if listed else None))
        if region is not None:
            x0, y0, x1, y1 = region
            strip = np.ascontiguousarray(img[y0:y1, x0:x1])
            free_sets.append(datasets[-1])
            hand_free["handsdk_e2e"].append(bool(tracker.detect(strip)))
            if teacher is not None:
                hand_free["mediapipe_e2e"].append(bool(teacher.track(strip)))
    if unreadable:
        if len(unreadable) == len(samples):
            raise ConfigError(f"none of the {len(samples)} reference images could be read "
                              f"(first: {str(unreadable[0])!r})")
        print(f"warning: {len(unreadable)} of {len(samples)} images could not be read and are not "
              f"scored (first: {unreadable[0]})", file=sys.stderr)
    if too_few:
        print(f"warning: {too_few} of {len(samples)} reference hands have fewer than {MIN_LABELLED} "
              "labelled keypoints and are not scored", file=sys.stderr)
    out = {k: {**v.summary(), "unreadable": len(unreadable), "too_few_keypoints": too_few}
           for k, v in scores.items()}
    names = sorted(set(datasets))
    if len(names) > 1:  # a mixed reference file: the same scores per its 'dataset' field too
        for k, v in scores.items():
            out[k]["by_dataset"] = {name: v.subset([i for i, d in enumerate(datasets) if d == name]).summary()
                                    for name in names}
    for k in hand_free:
        _add_share(out[k], hand_free[k], free_sets, "hand_free_images", "false_pos")
        _add_share(out[k], both[k], both_sets, "two_hand_images", "both_found")
        _add_share(out[k], extra[k], extra_sets, "listed_images", "extra_hands")
    if per_photo is not None:
        per_photo.extend(photo_records(scores, scored, datasets, hand_free, both, extra))
    return out


def _add_share(result: dict[str, Any], hits: list[bool], sets: list[str], count: str, share: str) -> None:
    """``result[count]`` / ``result[share]``: how many photos ``hits`` scores and the share that
    hit (None: none), for the whole and for each dataset of ``result["by_dataset"]``."""
    parts = [(result, hits)]
    for name, sub in result.get("by_dataset", {}).items():
        parts.append((sub, [h for h, d in zip(hits, sets, strict=True) if d == name]))
    for target, part in parts:
        target[count] = len(part)
        target[share] = float(np.mean(part)) if part else None


def photo_records(scores: dict[str, Scores], scored: list[tuple[Path, int | None, int | None, int | None]],
                  datasets: list[str], hand_free: dict[str, list[bool]],
                  both: dict[str, list[bool]], extra: dict[str, list[bool]]) -> list[dict[str, Any]]:
    """Per scored photo: for each model its share of joints within 0.1 hand size (``pck10``),
    mean error / hand size (``rel``) and mean finger-flexion difference (``flex_err``, degrees;
    also None where the reference lacks depth), None where the hand was not found; for each end-to-end
    model whether it found a hand on the photo's hand-free strip (``false_pos``; None: no strip)
    and whether it found every hand of a photo whose reference lists others (``both_found``;
    None: no other hand listed), and whether it reported a hand on none of the listed ones
    (``extra_hands``; None: the reference does not list the other hands)."""
    records = []
    for i, ((image, strip, pair, listed), dataset) in enumerate(zip(scored, datasets, strict=True)):
        rec: dict[str, Any] = {"image": str(image), "dataset": dataset}
        for name, sc in scores.items():
            err = sc.errors[i]
            rel = None if err is None else err / sc.scales[i]
            ok = None if rel is None else rel[np.isfinite(rel)]
            rec[name] = {"pck10": None if ok is None else float((ok < 0.1).mean()),
                         "rel": None if ok is None else float(ok.mean()), "flex_err": sc.flex_error(i)}
            if name in hand_free:
                rec[name]["false_pos"] = None if strip is None else hand_free[name][strip]
                rec[name]["both_found"] = None if pair is None else both[name][pair]
                rec[name]["extra_hands"] = None if listed is None else extra[name][listed]
        records.append(rec)
    return records


def iter_video(path: Path) -> Iterator[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ConfigError(f"video {str(path)!r} cannot be opened")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


VIDEO_REFERENCE = ("a JSON list with one entry per frame: the hand's 21 [x, y] or [x, y, z] points in "
                   "pixels (or a list of hands, the first is used), [] where the frame has no hand")


def _video_reference(reference: Path) -> list[np.ndarray]:
    try:
        refs = json.loads(reference.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"reference {str(reference)!r} cannot be read: {exc}; expected {VIDEO_REFERENCE}") from None
    if not isinstance(refs, list):
        raise ConfigError(f"reference {str(reference)!r} is a {type(refs).__name__}; expected {VIDEO_REFERENCE}")
    out = []
    for i, r in enumerate(refs):
        try:
            ref = np.asarray(_null_to_nan(r), np.float32)
            if ref.size:
                ref = ref.reshape(-1, 21, ref.shape[-1])[0] if ref.ndim == 3 else ref.reshape(21, -1)
                if ref.shape[1] not in (2, 3):
                    raise ValueError(f"{ref.shape[1]} values per point")
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"reference {str(reference)!r}, frame {i}: {exc}; expected {VIDEO_REFERENCE}") from None
        out.append(ref)
    return out


def video_fps(path: Path, default: float = 25.0) -> float:
    """The frame rate a video file declares (``default`` where it declares none)."""
    cap = cv2.VideoCapture(str(path))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    return float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else default


def evaluate_video(video: Path, reference: Path, tracker, teacher=None) -> dict[str, dict[str, Any]]:
    """Per-frame distance to reference landmarks (e.g. MediaPipe's per-frame output), the
    frames timed at the video's own frame rate."""
    refs = _video_reference(reference)
    dt_ms = 1000.0 / video_fps(video)
    scores = {"handsdk": Scores("handsdk")}
    if teacher is not None:
        scores["mediapipe"] = Scores("mediapipe")
    tracker.reset()
    prev = None
    frames = 0
    for i, frame in enumerate(iter_video(video)):
        frames = i + 1
        if i >= len(refs):
            continue  # counted for the warning below
        ref = refs[i]
        # every frame is tracked (tracking carries over frames without a reference); those are not scored
        res = tracker.process(frame, timestamp_ms=i * dt_ms)
        if teacher is not None:
            prev = teacher.track(frame, max_hands=1, previous=prev)
        if ref.size == 0:
            continue
        _add_hands(scores["handsdk"], res.hands, ref)
        if teacher is not None:
            scores["mediapipe"].add(_best_match([h.landmarks for h in prev], ref), ref)
    if frames != len(refs):
        log.warning("%s has %d frames but %s has %d per-frame references: scored the first %d",
                    video, frames, reference, len(refs), min(frames, len(refs)))
    return {k: v.summary() for k, v in scores.items()}


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """A markdown table: a row per model, then one per dataset where the results hold a breakdown."""
    cols = ["n", "detection_rate", "pck10", "pck20", "auc", "epe_px", "epe_rel", "gross", "flex_err", "finger_state",
            "conf_auroc", "false_pos", "both_found", "extra_hands"]

    def row(name: str, r: dict[str, Any]) -> str:
        vals = ["—" if r.get(c) is None else (str(r[c]) if isinstance(r[c], int) else f"{r[c]:.4f}") for c in cols]
        return f"| {name} | " + " | ".join(vals) + " |"

    lines = ["| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in results.items():
        lines.append(row(name, r))
        lines += [row(f"{name} · {part}", sub) for part, sub in r.get("by_dataset", {}).items()]
    return "\n".join(lines)
