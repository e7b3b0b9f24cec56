"""The ``overlay`` consumer: draws landmarks, skeleton, handedness, id, labels and FPS.

The annotated frame is kept as ``last_frame`` (for apps and the video writer) and shown in a
window with ``show = true`` (needs an OpenCV build with GUI support).
"""

from __future__ import annotations

import numpy as np

from handsdk.annotate import (
    BoxAnnotator,
    FpsAnnotator,
    LabelAnnotator,
    LandmarkAnnotator,
    SkeletonAnnotator,
    annotate,
    open_window,
)
from handsdk.config import flag_option
from handsdk.hookspecs import Register, hookimpl
from handsdk.types import FrameResult


class OverlayRenderer:
    kind = "sink"

    def __init__(self, show: bool = False, landmarks: bool = True, skeleton: bool = True,
                 labels: bool = True, fps: bool = True, box: bool = False, window: str = "handsdk"):
        layers = {"box": (box, BoxAnnotator), "skeleton": (skeleton, SkeletonAnnotator),
                  "landmarks": (landmarks, LandmarkAnnotator), "labels": (labels, LabelAnnotator),
                  "fps": (fps, FpsAnnotator)}
        self.annotators = [cls() for option, (on, cls) in layers.items() if flag_option("overlay", option, on)]
        flag_option("overlay", "show", show)
        self.show, self.window = show, window
        self.last_frame: np.ndarray | None = None
        if show:
            open_window(window)

    def render(self, frame: np.ndarray, result: FrameResult) -> np.ndarray:
        return annotate(frame, result, self.annotators)

    def __call__(self, result: FrameResult, frame: np.ndarray | None) -> None:
        if frame is None:
            return
        self.last_frame = self.render(frame, result)
        if self.show:
            import cv2

            cv2.imshow(self.window, self.last_frame)
            cv2.waitKey(1)

    def close(self) -> None:
        if self.show:
            import cv2

            cv2.destroyWindow(self.window)


@hookimpl
def handsdk_register_consumers(register: Register) -> None:
    register("overlay", OverlayRenderer)
