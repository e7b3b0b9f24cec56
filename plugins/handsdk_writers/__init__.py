"""Writers: ``jsonl`` (one JSON object per frame) and ``video`` (an annotated .mp4)."""

from __future__ import annotations

import json

import cv2
import numpy as np

from handsdk.annotate import annotate
from handsdk.config import flag_option, number_option, path_option
from handsdk.errors import ConfigError
from handsdk.hookspecs import Register, hookimpl
from handsdk.types import FrameResult


class JsonlWriter:
    """``{"frame", "timestamp_ms", "hands": [...]}`` per line; flushed as it goes."""

    kind = "sink"

    def __init__(self, path: str = "handsdk.jsonl"):
        self.path = path_option("jsonl", "path", path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = self.path.open("w")
        except OSError as exc:
            raise ConfigError(f"jsonl: cannot write {str(self.path)!r}: {exc}") from exc
        self.frames = 0

    def __call__(self, result: FrameResult, frame: np.ndarray | None) -> None:
        self._f.write(json.dumps(result.to_dict()) + "\n")
        self.frames += 1
        if self.frames % 30 == 0:
            self._f.flush()

    def close(self) -> None:
        self._f.close()


class VideoWriter:
    """Annotated frames (or raw with ``annotate = false``) to an mp4 (mp4v codec)."""

    kind = "sink"

    def __init__(self, path: str = "handsdk.mp4", fps: float = 30.0, annotate: bool = True,
                 codec: str = "mp4v"):
        if not isinstance(codec, str) or len(codec) != 4:
            raise ConfigError(f"video: codec must be a four-letter FOURCC like 'mp4v', got {codec!r}")
        self.path = path_option("video", "path", path)
        self.fps = number_option("video", "fps", fps, 0.0, 1000.0, lo_open=True)
        self.annotate, self.codec = flag_option("video", "annotate", annotate), codec
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._failed = False  # the file could not be opened: reported once, then frames are skipped
        self.frames = 0

    def __call__(self, result: FrameResult, frame: np.ndarray | None) -> None:
        if frame is None or self._failed:
            return
        img = annotate(frame, result) if self.annotate else frame
        h, w = img.shape[:2]
        if self._writer is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self._failed = True
                raise ConfigError(f"video: cannot create the folder of {str(self.path)!r}: {exc}") from exc
            writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.codec), self.fps, (w, h))
            if not writer.isOpened():
                self._failed = True
                raise ConfigError(f"video: OpenCV cannot write {str(self.path)!r} with codec {self.codec!r} "
                                  "(is the folder writable, and does the extension suit the codec, "
                                  "e.g. .mp4 with mp4v?); no video will be written")
            self._writer, self._size = writer, (w, h)
        elif (w, h) != self._size:  # resolution changed mid-stream: keep the file's size
            img = cv2.resize(img, self._size)
        self._writer.write(img)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


@hookimpl
def handsdk_register_consumers(register: Register) -> None:
    register("jsonl", JsonlWriter)
    register("video", VideoWriter)
