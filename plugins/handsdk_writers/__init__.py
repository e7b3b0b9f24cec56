"""Writers: ``jsonl`` (one JSON object per frame) and ``video`` (an annotated .mp4).

Both follow docs/guarantees.md through :class:`handsdk.outputs.OutputFile`: nothing is created
until the run starts, a regular file is written beside its target and renamed over it when the
tracker closes (so an interrupted run keeps the frames so far), and a failed write raises
:class:`~handsdk.errors.OutputError`, which stops the run.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import cv2
import numpy as np

from handsdk.annotate import annotate
from handsdk.config import flag_option, path_option
from handsdk.errors import ConfigError, OutputError
from handsdk.hookspecs import Register, hookimpl
from handsdk.outputs import OutputFile
from handsdk.types import FrameResult

log = logging.getLogger(__name__)


class JsonlWriter:
    """``{"frame", "timestamp_ms", "hands": [...]}`` per line, each line written whole as it
    comes (``-`` for standard output)."""

    kind = "sink"

    def __init__(self, path: str = "handsdk.jsonl"):
        path_option("jsonl", "path", path)
        self.output = OutputFile(path, "jsonl")
        self.outputs = [self.output]
        self.path = Path(path)
        self.frames = 0

    def open(self) -> None:
        self.output.open()

    def __call__(self, result: FrameResult, frame: np.ndarray | None) -> None:
        self.output.write((json.dumps(result.to_dict()) + "\n").encode())
        self.frames += 1

    def close(self) -> None:
        if self.frames:
            self.output.commit()
        else:  # no frame: no file, and an existing one stays as it was
            self.output.discard()


#: Largest frame rate the mp4v codec stores (its time base denominator is 16 bits).
_FPS_CLAMP = (0.01, 65535.0)


class VideoWriter:
    """Annotated frames (or raw with ``annotate = false``) to an mp4 (mp4v codec). ``fps`` may
    be any positive number: one the codec cannot store is replaced by the nearest it can, with a
    warning. The file is checked when it is finished: one that does not read back whole (a
    full disk, a file size limit) is an :class:`OutputError` and an existing file is kept."""

    kind = "sink"

    def __init__(self, path: str = "handsdk.mp4", fps: float = 30.0, annotate: bool = True,
                 codec: str = "mp4v"):
        if not isinstance(codec, str) or len(codec) != 4:
            raise ConfigError(f"video: codec must be a four-letter FOURCC like 'mp4v', got {codec!r}")
        path_option("video", "path", path)
        self.output = OutputFile(path, "video", stream=False)
        self.outputs = [self.output]
        self.path = Path(path)
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not (math.isfinite(fps) and fps > 0):
            raise ConfigError(f"video: option 'fps' must be a positive number (frames per second), got {fps!r}")
        self.fps = float(fps)
        self.annotate, self.codec = flag_option("video", "annotate", annotate), codec
        self._fourcc = cv2.VideoWriter_fourcc(*codec)
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._stored_fps: float | None = None
        self._failed = False  # a write failure was raised: close keeps what reads back, quietly
        self.frames = 0

    def open(self) -> None:
        """Make the temporary file and find a frame rate the codec takes (a wrong codec or
        extension fails here, before the first frame)."""
        if self._stored_fps is not None:
            return
        self.output.open(keep_fd=False)
        lo, hi = _FPS_CLAMP
        wanted = [self.fps, round(self.fps, 3), round(self.fps, 2), round(self.fps, 1), float(round(self.fps)),
                  round(min(max(self.fps, lo), hi), 2)]
        for fps in dict.fromkeys(f for f in wanted if f > 0):
            probe = cv2.VideoWriter(str(self.output.temp), self._fourcc, fps, (64, 64))
            ok = probe.isOpened()
            probe.release()
            if ok:
                if abs(fps - self.fps) > 1e-3 * self.fps:
                    log.warning("video: the %s codec cannot store %g frames per second; %s plays at %g",
                                self.codec, self.fps, self.output.name, fps)
                self._stored_fps = fps
                return
        self._failed = True
        raise OutputError(f"video: OpenCV cannot write {self.output.name!r} with codec {self.codec!r} (does "
                          "the extension suit the codec, e.g. .mp4 with mp4v?)")

    def __call__(self, result: FrameResult, frame: np.ndarray | None) -> None:
        if frame is None:
            return
        self.open()
        img = annotate(frame, result) if self.annotate else frame
        h, w = img.shape[:2]
        if self._writer is None:
            writer = cv2.VideoWriter(str(self.output.temp), self._fourcc, self._stored_fps, (w, h))
            if not writer.isOpened():
                self._failed = True
                raise OutputError(f"video: OpenCV cannot write {w}x{h} frames to {self.output.name!r} with "
                                  f"codec {self.codec!r}")
            self._writer, self._size = writer, (w, h)
        elif (w, h) != self._size:  # resolution changed mid-stream: keep the file's size
            img = cv2.resize(img, self._size)
        self._writer.write(img)
        self.frames += 1
        if self.frames % 30 == 0:
            self._check_space()

    def _check_space(self) -> None:
        """OpenCV does not report failed writes: a full disk stops the run here, not at the end."""
        try:
            fs = os.statvfs(self.output.temp.parent)
        except OSError:
            return
        if fs.f_blocks and not fs.f_bavail:
            self._failed = True
            raise OutputError(f"video: the disk holding {self.output.name!r} is full after {self.frames} "
                              "frames")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()  # writes the mp4's index: without it nothing plays
            self._writer = None
        if not self.output.opened:
            return
        if not self.frames:
            self.output.discard()
            return
        cap = cv2.VideoCapture(str(self.output.temp))
        readable = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() and cap.read()[0] else 0
        cap.release()
        if readable >= self.frames:
            self.output.commit()
            return
        self.output.discard()
        if not self._failed:
            raise OutputError(f"video: {self.output.name!r} could not be written (it read back with {readable} "
                              f"of its {self.frames} frames: a full disk or a file size limit?); an "
                              "existing file of that name was left as it was")


@hookimpl
def handsdk_register_consumers(register: Register) -> None:
    register("jsonl", JsonlWriter)
    register("video", VideoWriter)
