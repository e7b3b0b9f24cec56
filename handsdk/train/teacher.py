"""MediaPipe Hands' TFLite models run offline with ``ai-edge-litert``: the teacher that
pseudo-labels real photos for training, and the reference handsdk is compared with in ``eval``.

Never used inside the tracker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..geometry import crop_points_to_image, hand_angle, rect_from_points, warp_crop
from ..plugins import import_optional
from ..types import RotatedRect

# MediaPipe's palm keypoints: 0 wrist centre, 2 middle finger MCP.
PALM_WRIST, PALM_MIDDLE = 0, 2
# The landmark subset MediaPipe's landmarks→ROI calculator uses.
ROI_SUBSET = [0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18]


def _interpreter(path: Path, threads: int):
    litert = import_optional("ai_edge_litert.interpreter", "tflite")
    it = litert.Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    return it


def _palm_anchors(size: int = 192) -> np.ndarray:
    """SSD anchors of MediaPipe's palm detector: strides 8, 16, 16, 16, two anchors a cell."""
    anchors = []
    for stride, n in ((8, 2), (16, 6)):
        fm = size // stride
        ys, xs = np.mgrid[0:fm, 0:fm]
        centers = np.stack([(xs + 0.5) / fm, (ys + 0.5) / fm], -1).reshape(-1, 2)
        anchors.append(np.repeat(centers, n, axis=0))
    return np.concatenate(anchors).astype(np.float32)


@dataclass
class TeacherHand:
    landmarks: np.ndarray  # (21, 3) image pixels, z relative to the wrist in pixels
    presence: float
    right: float  # probability the hand is a right hand in the (unmirrored) image
    rect: RotatedRect


class MediaPipeTeacher:
    """MediaPipe's palm detector + landmark model (``full`` or ``lite``) on BGR images."""

    def __init__(self, teacher_dir: str | Path, variant: str = "full", threads: int = 1):
        d = Path(teacher_dir)
        self.palm = _interpreter(d / f"palm_detection_{variant}.tflite", threads)
        self.landmark = _interpreter(d / f"hand_landmark_{variant}.tflite", threads)
        self.anchors = _palm_anchors()
        self._palm_out = {o["shape"][-1]: o["index"] for o in self.palm.get_output_details()}
        outs = sorted(self.landmark.get_output_details(), key=lambda o: o["name"])
        self._lm_out = [o["index"] for o in outs]  # Identity, _1 presence, _2 handedness, _3 world

    def detect_palms(self, image_bgr: np.ndarray, min_score: float = 0.5) -> list[RotatedRect]:
        """Palm detection → hand ROIs (MediaPipe's rect transformation: ×2.6, shift −0.5)."""
        h, w = image_bgr.shape[:2]
        side = max(h, w)
        pad_x, pad_y = (side - w) / 2, (side - h) / 2
        square = cv2.copyMakeBorder(image_bgr, int(pad_y), side - h - int(pad_y), int(pad_x),
                                    side - w - int(pad_x), cv2.BORDER_CONSTANT)
        inp = cv2.cvtColor(cv2.resize(square, (192, 192)), cv2.COLOR_BGR2RGB)
        self.palm.set_tensor(self.palm.get_input_details()[0]["index"],
                             (inp.astype(np.float32) / 255.0)[None])
        self.palm.invoke()
        raw = self.palm.get_tensor(self._palm_out[18])[0]
        scores = 1 / (1 + np.exp(-np.clip(self.palm.get_tensor(self._palm_out[1])[0, :, 0], -100, 100)))
        keep = np.where(scores >= min_score)[0]
        if len(keep) == 0:
            return []
        dec = raw[keep] / 192.0
        a = self.anchors[keep]
        cx, cy = dec[:, 0] + a[:, 0], dec[:, 1] + a[:, 1]
        bw, bh = dec[:, 2], dec[:, 3]
        kps = dec[:, 4:].reshape(-1, 7, 2) + a[:, None, :]
        order = np.argsort(-scores[keep])
        rects: list[RotatedRect] = []
        used = np.zeros(len(keep), bool)
        for i in order:  # plain NMS on axis-aligned palm boxes
            if used[i]:
                continue
            x0, y0, x1, y1 = cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2
            ix = np.clip(np.minimum(x1[i], x1) - np.maximum(x0[i], x0), 0, None)
            iy = np.clip(np.minimum(y1[i], y1) - np.maximum(y0[i], y0), 0, None)
            iou = ix * iy / (bw[i] * bh[i] + bw * bh - ix * iy + 1e-9)
            used |= iou > 0.3
            to_px = lambda p: np.array([p[0] * side - pad_x, p[1] * side - pad_y])  # noqa: E731
            wrist, middle = to_px(kps[i, PALM_WRIST]), to_px(kps[i, PALM_MIDDLE])
            angle = hand_angle(wrist, middle)
            center = to_px((cx[i], cy[i]))
            size = max(bw[i], bh[i]) * side
            # shift 0.5 of the box size towards the fingers, then enlarge 2.6x (MediaPipe's ROI)
            up = np.array([np.sin(angle), -np.cos(angle)])
            center = center + up * 0.5 * size
            rects.append(RotatedRect((float(center[0]), float(center[1])),
                                     (float(size * 2.6), float(size * 2.6)), angle))
        return rects

    def _read(self, crop_rgb: np.ndarray) -> tuple[np.ndarray, float, float]:
        """One 224² RGB crop in [0, 1] → crop-normalised landmarks (21, 3), presence, P(right)."""
        self.landmark.set_tensor(self.landmark.get_input_details()[0]["index"],
                                 np.ascontiguousarray(crop_rgb, np.float32)[None])
        self.landmark.invoke()
        lm, presence, handed = (self.landmark.get_tensor(i) for i in self._lm_out[:3])
        # MediaPipe's handedness assumes a mirrored (selfie) image: swap it for a plain one.
        return lm.reshape(21, 3) / 224.0, float(presence.ravel()[0]), 1.0 - float(handed.ravel()[0])

    def landmarks_in(self, image_bgr: np.ndarray, rect: RotatedRect) -> TeacherHand:
        """Run the landmark model on ``rect``."""
        crop = cv2.cvtColor(warp_crop(image_bgr, rect, 224), cv2.COLOR_BGR2RGB)
        pts, presence, right = self._read(crop.astype(np.float32) / 255.0)
        image_pts = crop_points_to_image(pts, rect)
        image_pts[:, 2] -= image_pts[0, 2]
        return TeacherHand(image_pts, presence, right, rect)

    def read_crops(self, crops_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The landmark model alone on ready crops (B, S, S, 3), RGB floats in [0, 1].

        Returns landmarks (B, 21, 3) crop-normalised (z relative to the wrist, scaled by the
        crop's side), presence (B,) and P(right hand) (B,) for plain, unmirrored crops.
        ``scripts/teacher_on_crops.py`` measures with it what an online teacher would teach.
        """
        reads = [self._read(c if c.shape[0] == 224 else cv2.resize(c, (224, 224), interpolation=cv2.INTER_AREA))
                 for c in crops_rgb]
        out = np.stack([r[0] for r in reads]).astype(np.float32).reshape(-1, 21, 3)
        out[:, :, 2] -= out[:, :1, 2]
        return (out, np.array([r[1] for r in reads], np.float32), np.array([r[2] for r in reads], np.float32))

    @staticmethod
    def roi_from_landmarks(landmarks: np.ndarray) -> RotatedRect:
        """MediaPipe's landmarks → next-frame ROI (subset bounding box ×2, shifted −0.1)."""
        angle = hand_angle(landmarks[0], landmarks[9])
        return rect_from_points(landmarks[ROI_SUBSET], angle, scale=2.0, shift=(0.0, -0.05))

    def track(self, image_bgr: np.ndarray, max_hands: int = 2, min_presence: float = 0.5,
              previous: list[TeacherHand] | None = None) -> list[TeacherHand]:
        """MediaPipe Hands end to end: detector when needed, landmarks, ROI from landmarks."""
        hands: list[TeacherHand] = []
        for prev in previous or []:
            hand = self.landmarks_in(image_bgr, self.roi_from_landmarks(prev.landmarks))
            if hand.presence >= min_presence:
                hands.append(hand)
        if len(hands) < max_hands:
            for rect in self.detect_palms(image_bgr):
                if len(hands) >= max_hands:
                    break
                if any(np.hypot(*(np.subtract(rect.center, h.rect.center))) < 0.3 * rect.size[0]
                       for h in hands):
                    continue
                hand = self.landmarks_in(image_bgr, rect)
                if hand.presence >= min_presence:
                    hands.append(hand)
        return hands
