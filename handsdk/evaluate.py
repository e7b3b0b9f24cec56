"""``handsdk eval``: landmark accuracy on images with reference keypoints or on a video with
per-frame reference landmarks, for handsdk and (when ``../shared/teacher`` is there) for
MediaPipe's own TFLite models in the same run.

Metrics: detection rate, PCK@0.1 and PCK@0.2 (error / max side of the reference keypoints'
box), EPE in pixels, AUC of the PCK curve over [0, 0.2], all per joint too.

Reference formats: a JSONL with ``path`` and ``landmarks`` per line (what
``handsdk.train.pseudolabel`` writes), a COCO keypoints JSON (21 keypoints per annotation),
or a folder of images each with a ``<stem>.json`` holding ``{"landmarks": [[x, y], …]}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import ConfigError
from .geometry import rect_from_landmarks

THRESHOLDS = np.linspace(0, 0.2, 41)


@dataclass
class Sample:
    image_path: Path
    landmarks: np.ndarray  # (21, 2+) reference, image pixels
    meta: dict[str, Any] = field(default_factory=dict)


def load_references(ref: Path, base: Path | None = None) -> list[Sample]:
    """Samples from a JSONL, a COCO keypoints JSON, or a folder of images with sidecar JSONs."""
    if ref.is_dir():
        out = []
        for img in sorted(ref.iterdir()):
            side = img.with_suffix(".json")
            if img.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp"} and side.exists():
                out.append(Sample(img, np.asarray(json.loads(side.read_text())["landmarks"], np.float32)))
        return out
    if not ref.is_file():
        raise ConfigError(f"reference {str(ref)!r} does not exist")
    text = ref.read_text()
    if ref.suffix == ".jsonl":
        out = []
        for line in text.splitlines():
            if line.strip():
                rec = json.loads(line)
                out.append(Sample(Path(rec["path"]), np.asarray(rec["landmarks"], np.float32), rec))
        return out
    data = json.loads(text)
    if isinstance(data, dict) and "annotations" in data and "images" in data:  # COCO keypoints
        files = {im["id"]: im["file_name"] for im in data["images"]}
        root = base or ref.parent
        out = []
        for ann in data["annotations"]:
            kp = np.asarray(ann["keypoints"], np.float32).reshape(-1, 3)
            if len(kp) != 21:
                raise ConfigError(f"{ref}: annotation {ann.get('id')} has {len(kp)} keypoints, expected 21")
            out.append(Sample(root / files[ann["image_id"]], kp[:, :2], {"visible": kp[:, 2]}))
        return out
    raise ConfigError(f"{ref}: expected a .jsonl of {{path, landmarks}}, a COCO keypoints JSON, or a folder")


def hand_scale(ref: np.ndarray) -> float:
    xy = ref[:, :2]
    return float(max(np.ptp(xy, axis=0).max(), 1.0))


@dataclass
class Scores:
    """Per-sample errors; ``None`` where the hand was not found."""

    name: str
    errors: list[np.ndarray | None] = field(default_factory=list)  # (21,) px
    scales: list[float] = field(default_factory=list)

    def add(self, pred: np.ndarray | None, ref: np.ndarray) -> None:
        self.scales.append(hand_scale(ref))
        self.errors.append(None if pred is None else np.linalg.norm(pred[:, :2] - ref[:, :2], axis=1))

    def summary(self) -> dict[str, Any]:
        found = [i for i, e in enumerate(self.errors) if e is not None]
        n = len(self.errors)
        out: dict[str, Any] = {"n": n, "detection_rate": len(found) / n if n else 0.0}
        if not found:
            return out
        e = np.stack([self.errors[i] for i in found])
        r = e / np.asarray([self.scales[i] for i in found])[:, None]
        pck = np.array([(r < t).mean() for t in THRESHOLDS])
        out.update({"pck10": float((r < 0.1).mean()), "pck20": float((r < 0.2).mean()),
                    "epe_px": float(e.mean()), "epe_rel": float(r.mean()),
                    "auc": float(np.trapezoid(pck, THRESHOLDS) / THRESHOLDS[-1]),
                    "pck10_joint": [round(float(v), 4) for v in (r < 0.1).mean(0)]})
        return out


def _best_match(cands: list[np.ndarray], ref: np.ndarray) -> np.ndarray | None:
    """The candidate hand closest to the reference, if it is plausibly the same hand."""
    if not cands:
        return None
    d = [float(np.linalg.norm(c[:, :2] - ref[:, :2], axis=1).mean()) for c in cands]
    i = int(np.argmin(d))
    return cands[i] if d[i] < 0.5 * hand_scale(ref) else None


class OurCropModel:
    """Our landmark model alone on the crop built from the reference landmarks."""

    def __init__(self, tracker):
        self.t = tracker

    def __call__(self, bgr: np.ndarray, ref: np.ndarray) -> np.ndarray:
        rect = rect_from_landmarks(ref, self.t.crop_scale)
        return self.t._run_landmarks(bgr, [rect])[0]["landmarks"]


class TeacherCropModel:
    def __init__(self, teacher):
        self.t = teacher

    def __call__(self, bgr: np.ndarray, ref: np.ndarray) -> np.ndarray:
        return self.t.landmarks_in(bgr, self.t.roi_from_landmarks(ref)).landmarks


def evaluate_images(samples: list[Sample], tracker, teacher=None) -> dict[str, dict[str, Any]]:
    """Crop-level (same reference crop) and end-to-end scores for handsdk and the teacher."""
    scores = {k: Scores(k) for k in ("handsdk_crop", "handsdk_e2e")}
    if teacher is not None:
        scores.update({k: Scores(k) for k in ("mediapipe_crop", "mediapipe_e2e")})
    ours_crop = OurCropModel(tracker)
    for s in samples:
        img = cv2.imread(str(s.image_path))
        if img is None:
            continue
        ref = s.landmarks
        scores["handsdk_crop"].add(ours_crop(img, ref), ref)
        scores["handsdk_e2e"].add(_best_match([h.landmarks for h in tracker.detect(img)], ref), ref)
        if teacher is not None:
            scores["mediapipe_crop"].add(TeacherCropModel(teacher)(img, ref), ref)
            scores["mediapipe_e2e"].add(_best_match([h.landmarks for h in teacher.track(img)], ref), ref)
    return {k: v.summary() for k, v in scores.items()}


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


def evaluate_video(video: Path, reference: Path, tracker, teacher=None) -> dict[str, dict[str, Any]]:
    """Per-frame distance to reference landmarks (e.g. MediaPipe's per-frame output)."""
    refs = json.loads(reference.read_text())
    scores = {"handsdk": Scores("handsdk")}
    if teacher is not None:
        scores["mediapipe"] = Scores("mediapipe")
    tracker.reset()
    prev = None
    for i, frame in enumerate(iter_video(video)):
        if i >= len(refs):
            break
        ref = np.asarray(refs[i], np.float32)
        if ref.size == 0:
            continue
        ref = ref.reshape(-1, 21, ref.shape[-1])[0] if ref.ndim == 3 else ref
        res = tracker.process(frame, timestamp_ms=i * 40.0)
        scores["handsdk"].add(_best_match([h.landmarks for h in res.hands], ref), ref)
        if teacher is not None:
            prev = teacher.track(frame, max_hands=1, previous=prev)
            scores["mediapipe"].add(_best_match([h.landmarks for h in prev], ref), ref)
    return {k: v.summary() for k, v in scores.items()}


def format_table(results: dict[str, dict[str, Any]]) -> str:
    cols = ["n", "detection_rate", "pck10", "pck20", "auc", "epe_px", "epe_rel"]
    lines = ["| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in results.items():
        vals = []
        for c in cols:
            v = r.get(c)
            vals.append("—" if v is None else (str(v) if isinstance(v, int) else f"{v:.4f}"))
        lines.append(f"| {name} | " + " | ".join(vals) + " |")
    return "\n".join(lines)
