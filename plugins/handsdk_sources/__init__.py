"""Capture sources: webcam, video file, image file, folder of images, synthetic clip."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from handsdk.config import flag_option, integer_option, number_option
from handsdk.data import IMAGE_SUFFIXES
from handsdk.errors import SourceError
from handsdk.hookspecs import Register, hookimpl

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}


def _path(spec: Any) -> Path | None:
    return Path(spec) if isinstance(spec, (str, Path)) else None


class CameraSource:
    """A webcam by index. A camera that stops delivering frames (unplugged) ends the stream
    after ``max_failures`` consecutive failed reads, with a warning."""

    def __init__(self, spec: int, width: int | None = None, height: int | None = None,
                 max_failures: int = 30):
        for option, value in (("width", width), ("height", height)):
            if value is not None:
                integer_option("camera", option, value, 0, 16384)
        self.max_failures = integer_option("camera", "max_failures", max_failures, 1, 100_000)
        self.cap = cv2.VideoCapture(int(spec))
        if not self.cap.isOpened():
            raise SourceError(f"camera {spec} could not be opened (no such device, or it is busy)")
        if width:
            self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or None
        self.spec = spec

    @classmethod
    def accepts(cls, spec: Any) -> bool:
        return isinstance(spec, int) and not isinstance(spec, bool)

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        import time

        t0, failures = time.monotonic(), 0
        while True:
            ok, frame = self.cap.read()
            if not ok or frame is None:
                failures += 1
                if failures >= self.max_failures:
                    log.warning("camera %s stopped delivering frames; ending the stream", self.spec)
                    return
                time.sleep(0.01)
                continue
            failures = 0
            yield frame, (time.monotonic() - t0) * 1000.0

    def close(self) -> None:
        self.cap.release()


class VideoSource:
    """A video file; timestamps from the file's frame rate."""

    def __init__(self, spec: str | Path):
        path = Path(spec)
        if not path.is_file():
            raise SourceError(f"video file {str(path)!r} does not exist")
        self.cap = cv2.VideoCapture(str(path))
        ok = self.cap.isOpened()
        first = self.cap.read() if ok else (False, None)
        if not first[0]:
            self.cap.release()
            raise SourceError(f"video file {str(path)!r} cannot be read (corrupt, or a codec OpenCV lacks); "
                              f"accepted: {', '.join(sorted(VIDEO_SUFFIXES))} that OpenCV can decode")
        self._first = first[1]
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 30.0
        self.frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        self.path = path

    @classmethod
    def accepts(cls, spec: Any) -> bool:
        p = _path(spec)
        return p is not None and p.suffix.lower() in VIDEO_SUFFIXES

    def __len__(self) -> int:
        return self.frame_count or 0

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        i = 0
        frame = self._first
        while frame is not None:
            yield frame, i * 1000.0 / self.fps
            i += 1
            ok, frame = self.cap.read()
            if not ok:
                if self.frame_count and i < self.frame_count - 1:
                    log.warning("%s: decoding failed at frame %d of %d; ending the stream",
                                self.path, i, self.frame_count)
                return

    def close(self) -> None:
        self.cap.release()


class ImageSource:
    """One image file, as a one-frame stream."""

    fps = None

    def __init__(self, spec: str | Path):
        path = Path(spec)
        image = cv2.imread(str(path)) if path.is_file() else None
        if image is None:
            raise SourceError(f"image {str(path)!r} cannot be read (missing or not an image); "
                              f"accepted: {', '.join(sorted(IMAGE_SUFFIXES))}")
        self.image, self.path = image, path  # path: outputs must not write it (handsdk.outputs)

    @classmethod
    def accepts(cls, spec: Any) -> bool:
        p = _path(spec)
        return p is not None and p.suffix.lower() in IMAGE_SUFFIXES

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[np.ndarray]:
        yield self.image

    def close(self) -> None:
        pass


class FolderSource:
    """Every image in a folder, in name order; unreadable files are skipped with a warning."""

    fps = None

    def __init__(self, spec: str | Path):
        self.folder = Path(spec)
        if not self.folder.is_dir():
            raise SourceError(f"folder {str(self.folder)!r} does not exist or is not a folder")
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"folder {str(self.folder)!r} holds no images "
                              f"({', '.join(sorted(IMAGE_SUFFIXES))})")

    @classmethod
    def accepts(cls, spec: Any) -> bool:
        p = _path(spec)
        return p is not None and p.is_dir()

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[np.ndarray]:
        for f in self.files:
            image = cv2.imread(str(f))
            if image is None:
                log.warning("skipping unreadable image %s", f)
                continue
            yield image

    def close(self) -> None:
        pass


class SyntheticSource:
    """The project's rendered hand clip (``"synthetic"``): needs no data and no camera."""

    def __init__(self, spec: str = "synthetic", n_frames: int = 150, width: int = 640,
                 height: int = 480, n_hands: int = 1, seed: int = 0, fps: float = 30.0,
                 leave_and_return: bool = False):
        from handsdk.synthetic import synthetic_clip

        self.n_frames = integer_option("synthetic", "n_frames", n_frames, 1, 10_000_000)
        for option, value in (("width", width), ("height", height)):
            integer_option("synthetic", option, value, 64, 8192)
        integer_option("synthetic", "n_hands", n_hands, 0, 2)
        integer_option("synthetic", "seed", seed, 0, 2**32 - 1)
        self.fps = number_option("synthetic", "fps", fps, 0.0, 1000.0, lo_open=True)
        flag_option("synthetic", "leave_and_return", leave_and_return)
        self._clip = lambda: synthetic_clip(n_frames, (width, height), n_hands=n_hands, fps=fps,
                                            seed=seed, leave_and_return=leave_and_return)

    @classmethod
    def accepts(cls, spec: Any) -> bool:
        return isinstance(spec, str) and spec == "synthetic"

    def __len__(self) -> int:
        return self.n_frames

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        for f in self._clip():
            yield f.image, f.timestamp_ms

    def close(self) -> None:
        pass


@hookimpl
def handsdk_register_sources(register: Register) -> None:
    register("camera", CameraSource)
    register("video", VideoSource)
    register("image", ImageSource)
    register("folder", FolderSource)
    register("synthetic", SyntheticSource)
