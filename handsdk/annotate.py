"""Annotators in the style of roboflow/supervision: small, composable, stateless.

Each has one ``annotate(frame, result) -> frame`` method that draws on ``frame`` in place and
returns it; compose them by calling one after another.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .types import HAND_CONNECTIONS, FrameResult

LEFT_COLOUR, RIGHT_COLOUR = (255, 160, 40), (40, 120, 255)  # BGR


def _colour(label: str) -> tuple[int, int, int]:
    return RIGHT_COLOUR if label == "right" else LEFT_COLOUR


#: Drawn points are clipped to this many pixels either side of the origin: OpenCV's drawing takes
#: 32-bit ints and shifts them for subpixel accuracy, so a point far off screen (a hand from a
#: replayed or a third-party result) would raise or wrap round instead of being drawn off screen.
DRAW_LIMIT = 1 << 20


def _pixels(points: np.ndarray) -> np.ndarray:
    """Points (..., 2) as int32 pixels OpenCV can draw."""
    return np.clip(np.round(np.asarray(points, np.float64)), -DRAW_LIMIT, DRAW_LIMIT).astype(np.int32)


def _thickness(frame: np.ndarray) -> int:
    return max(1, int(round(max(frame.shape[:2]) / 400)))


@dataclass
class SkeletonAnnotator:
    """The bones of each hand, coloured by handedness."""

    thickness: int | None = None

    def annotate(self, frame: np.ndarray, result: FrameResult) -> np.ndarray:
        t = self.thickness or _thickness(frame)
        for hand in result.hands:
            pts = _pixels(hand.landmarks[:, :2])
            for a, b in HAND_CONNECTIONS:
                cv2.line(frame, tuple(pts[a]), tuple(pts[b]), (255, 255, 255), t + 1, cv2.LINE_AA)
                cv2.line(frame, tuple(pts[a]), tuple(pts[b]), _colour(hand.handedness.label), t, cv2.LINE_AA)
        return frame


@dataclass
class LandmarkAnnotator:
    """Dotted landmarks, their size showing per-landmark confidence."""

    radius: int | None = None

    def annotate(self, frame: np.ndarray, result: FrameResult) -> np.ndarray:
        r0 = self.radius or _thickness(frame) + 2
        for hand in result.hands:
            for (x, y), c in zip(_pixels(hand.landmarks[:, :2]).tolist(), hand.confidence, strict=True):
                r = max(1, int(round(r0 * (0.5 + 0.5 * float(c)))))
                cv2.circle(frame, (x, y), r, (0, 0, 0), -1, cv2.LINE_AA)
                cv2.circle(frame, (x, y), max(1, r - 1), (60, 255, 60), -1, cv2.LINE_AA)
        return frame


@dataclass
class BoxAnnotator:
    """The rotated crop each hand was tracked in."""

    def annotate(self, frame: np.ndarray, result: FrameResult) -> np.ndarray:
        for hand in result.hands:
            pts = _pixels(hand.box.corners())
            cv2.polylines(frame, [pts], True, (200, 200, 200), 1, cv2.LINE_AA)
        return frame


_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _stroke(scale: float) -> int:
    return max(1, int(round(scale * 2)))


def _text(frame: np.ndarray, text: str, org: tuple[int, int], colour, scale: float) -> None:
    t = _stroke(scale)
    cv2.putText(frame, text, org, _FONT, scale, (0, 0, 0), t + 2, cv2.LINE_AA)
    cv2.putText(frame, text, org, _FONT, scale, colour, t, cv2.LINE_AA)


@dataclass
class LabelAnnotator:
    """Handedness, track id, score and any classifier labels above each hand.

    The block of lines is kept whole inside any frame large enough to hold it: a hand at an edge
    (or off it) gets its labels at that edge, every line readable, instead of lines cut off or
    drawn over each other.
    """

    scale: float | None = None

    def annotate(self, frame: np.ndarray, result: FrameResult) -> np.ndarray:
        s = self.scale or max(0.4, max(frame.shape[:2]) / 1200)
        height, width = frame.shape[:2]
        step, t = max(1, int(28 * s)), _stroke(s)
        for hand in result.hands:
            lines = [f"#{hand.track_id} {hand.handedness.label} {hand.score:.2f}"]
            lines += [f"{k}: {v.name} {v.score:.2f}" for k, v in hand.labels.items()]
            sizes = [cv2.getTextSize(line, _FONT, s, t + 2) for line in lines]
            ascent = max(size[1] for size, _ in sizes)
            descent = max(base for _, base in sizes) + t
            block_w = max(size[0] for size, _ in sizes) + t + 2
            block_h = ascent + step * (len(lines) - 1) + descent
            x, y = _pixels(hand.landmarks[:, :2].min(0)).tolist()
            top = y - 8 - step * (len(lines) - 1) - ascent  # last line's baseline 8 px above the hand
            top = min(max(top, 0), max(0, height - block_h))
            x = min(max(x, 0), max(0, width - block_w))
            for i, line in enumerate(lines):
                _text(frame, line, (x, top + ascent + i * step), _colour(hand.handedness.label), s)
        return frame


@dataclass
class FpsAnnotator:
    """Processing frames per second (from the result's pipeline time) in the top-left corner."""

    def annotate(self, frame: np.ndarray, result: FrameResult) -> np.ndarray:
        ms = result.timings.get("pipeline") or result.timings.get("total")
        if ms:
            s = max(0.5, max(frame.shape[:2]) / 1000)
            _text(frame, f"{1000.0 / ms:.0f} FPS", (10, int(30 * s)), (255, 255, 255), s)
        return frame


DEFAULT_ANNOTATORS = (SkeletonAnnotator(), LandmarkAnnotator(), LabelAnnotator(), FpsAnnotator())


def annotate(frame: np.ndarray, result: FrameResult, annotators=DEFAULT_ANNOTATORS) -> np.ndarray:
    """Draw ``result`` on a copy of ``frame`` with each annotator in turn."""
    out = frame.copy()
    for a in annotators:
        out = a.annotate(out, result)
    return out


def open_window(name: str) -> None:
    """Open an OpenCV window, or say why not: the default install's OpenCV is headless (no GUI),
    which would otherwise fail with a raw ``cv2.error`` on the first ``imshow``."""
    from .errors import ConfigError

    try:
        cv2.namedWindow(name)
    except cv2.error as exc:
        raise ConfigError(
            "showing a window needs an OpenCV build with GUI support; handsdk installs the headless "
            "one. Swap it: pip uninstall -y opencv-python-headless && pip install opencv-python "
            "(or write a video instead: --save-video / --out)") from exc
