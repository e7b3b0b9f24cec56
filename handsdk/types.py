"""The data that flows through the pipeline: what a stage takes and what it emits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: MediaPipe's landmark order, used everywhere in handsdk.
LANDMARK_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)  # fmt: skip

#: Bones of the hand skeleton as (parent, child) landmark indices.
HAND_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4),
    (0, 5), (5, 6), (6, 7), (7, 8),
    (5, 9), (9, 10), (10, 11), (11, 12),
    (9, 13), (13, 14), (14, 15), (15, 16),
    (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)  # fmt: skip


@dataclass(frozen=True)
class RotatedRect:
    """A rotated square-ish region of the input image: the crop the landmark model sees.

    ``center`` and ``size`` are in input-image pixels; ``angle`` is in radians: the rotation that
    takes the crop's axes to the image's (clockwise on screen, since y points down), chosen so the
    hand points up in the crop.
    """

    center: tuple[float, float]
    size: tuple[float, float]
    angle: float

    def corners(self) -> np.ndarray:
        """The four corners (4, 2) in image pixels, clockwise from top-left of the crop."""
        cx, cy = self.center
        w, h = self.size
        c, s = np.cos(self.angle), np.sin(self.angle)
        local = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
        rot = np.array([[c, -s], [s, c]])  # same convention as handsdk.geometry
        return (local @ rot.T + [cx, cy]).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"center": list(self.center), "size": list(self.size), "angle": self.angle}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RotatedRect:
        return cls(tuple(map(float, d["center"])), tuple(map(float, d["size"])), float(d["angle"]))


@dataclass
class Label:
    """A classifier's answer for one hand, e.g. ``hand.labels["gesture"]``."""

    name: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": round(float(self.score), 4)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Label:
        return cls(d["name"], float(d["score"]))


def hand_size(landmarks: np.ndarray) -> float:
    """The size of a hand in pixels: the larger side of its landmarks' (x, y) bounding box (of
    the finite ones), at least 1 (so it can divide). The unit of every relative error and
    threshold in handsdk."""
    xy = np.asarray(landmarks)[:, :2]
    xy = xy[np.isfinite(xy).all(1)]  # reference keypoints left unlabelled are NaN
    return max(float(np.ptp(xy, axis=0).max()), 1.0) if len(xy) else 1.0


@dataclass
class Handedness:
    """Which hand this is, as seen in the (possibly mirrored) input image."""

    label: str  # "left" or "right"
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": round(float(self.score), 4)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Handedness:
        return cls(d["label"], float(d["score"]))


@dataclass
class Hand:
    """One hand in one image.

    - ``landmarks``: float32 (21, 3) in MediaPipe's order (0 wrist, 4 thumb tip, 8 index tip …):
      x, y in input-image pixels, z the depth relative to the wrist (wrist = 0) in the same pixel
      scale, smaller is closer to the camera. Smoothed by the filter in ``process()``, raw in
      ``detect()``.
    - ``confidence``: float32 (21,), how sure the model is of each landmark (0–1; a ranking, not a
      calibrated probability).
    - ``score``: hand presence (0–1); hands below the tracker's ``min_presence_confidence``
      (by default the landmark model's own threshold) are not reported.
    - ``handedness``: left / right as seen in the input image, with its score.
    - ``box``: the rotated square crop the landmarks were read from (centre, size, angle).
    - ``track_id``: in ``process()``, the hand's track (from 1; kept while the hand is tracked and
      for a few frames after it is lost); in ``detect()``, its index in the returned list (0, 1 …);
      -1 for a hand built by hand.
    - ``labels``: what classifier consumers said about it, e.g. ``labels["sign"]``.
    """

    landmarks: np.ndarray
    confidence: np.ndarray
    score: float
    handedness: Handedness
    box: RotatedRect
    track_id: int = -1
    labels: dict[str, Label] = field(default_factory=dict)

    @property
    def size(self) -> float:
        """Hand size in pixels: the larger side of the landmarks' bounding box (:func:`hand_size`)."""
        return hand_size(self.landmarks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "score": round(float(self.score), 4),
            "handedness": self.handedness.to_dict(),
            "landmarks": np.round(self.landmarks.astype(float), 2).tolist(),
            "confidence": np.round(self.confidence.astype(float), 3).tolist(),
            "box": self.box.to_dict(),
            "labels": {k: v.to_dict() for k, v in self.labels.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Hand:
        """The inverse of :meth:`to_dict` (values as rounded there)."""
        return cls(landmarks=np.asarray(d["landmarks"], np.float32).reshape(21, 3),
                   confidence=np.asarray(d["confidence"], np.float32).reshape(21),
                   score=float(d["score"]), handedness=Handedness.from_dict(d["handedness"]),
                   box=RotatedRect.from_dict(d["box"]), track_id=int(d["track_id"]),
                   labels={k: Label.from_dict(v) for k, v in d.get("labels", {}).items()})


@dataclass
class FrameResult:
    """Everything the tracker found in one frame, plus where the time went (milliseconds).

    ``timings``: ``preprocess``, ``detect`` (the detector's own time), ``landmarks``, ``smooth``,
    ``pipeline`` (the frame's processing, what FPS is measured on), ``emit`` and ``total``. With
    ``overlap_detector`` the detector runs beside the tracked hands' landmarks, so ``detect`` and
    ``landmarks`` can add up to more than ``pipeline``."""

    frame_index: int
    timestamp_ms: float
    hands: list[Hand]
    image_size: tuple[int, int]  # (width, height)
    timings: dict[str, float] = field(default_factory=dict)
    detector_ran: bool = False
    path: str | None = None  # the file the frame came from (a photo of a folder), when known

    def to_dict(self) -> dict[str, Any]:
        out = {
            "frame": self.frame_index,
            "timestamp_ms": round(float(self.timestamp_ms), 3),
            "image_size": list(self.image_size),
            "detector_ran": self.detector_ran,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "hands": [h.to_dict() for h in self.hands],
        }
        if self.path is not None:
            out["path"] = self.path
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrameResult:
        """The inverse of :meth:`to_dict`: read back a line of the ``jsonl`` writer with
        ``FrameResult.from_dict(json.loads(line))``."""
        return cls(frame_index=int(d["frame"]), timestamp_ms=float(d["timestamp_ms"]),
                   hands=[Hand.from_dict(h) for h in d["hands"]], image_size=tuple(d["image_size"]),
                   timings=dict(d.get("timings", {})), detector_ran=bool(d.get("detector_ran", False)),
                   path=d.get("path"))
