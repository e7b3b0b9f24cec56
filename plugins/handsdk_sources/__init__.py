"""Capture sources: webcam, video file, image file, folder of images, synthetic clip.

Each ``accepts`` takes any spec and answers True or False. A capture's ``close`` may come from
another thread while a read is in progress (``Tracker.close``, a stall, Ctrl+C): it never
releases under the read (:class:`_Capture`). A photo that cannot be read is skipped with a
warning naming it; a source none of whose photos can be read is a :class:`SourceError`.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from handsdk.config import flag_option, integer_option, number_option
from handsdk.data import IMAGE_SUFFIXES
from handsdk.errors import SourceError
from handsdk.hookspecs import Register, hookimpl
from handsdk.lifecycle import CloseGuard
from handsdk.sources import MAX_FPS, MIN_FPS, SourceFrame, sane_fps

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
#: How long a close from another thread waits for a read in progress (seconds) before leaving
#: the release to that read's end.
CLOSE_WAIT_S = 2.0
MAX_CAMERA = 9999  # camera indices OpenCV takes (-1: any camera)


def _path(spec: Any) -> Path | None:
    """``spec`` as a path if it is one (str, bytes or os.PathLike without NUL bytes), else None."""
    try:
        if isinstance(spec, (str, os.PathLike, bytes)):
            text = os.fsdecode(spec)
            return Path(text) if text and "\0" not in text else None
    except (TypeError, ValueError):
        pass
    return None


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):  # a name too long, a loop of links
        return False


def _not_regular(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file (a FIFO would block the read forever), or None."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "it does not exist"
    except OSError as exc:  # a name too long, no permission, a loop of links
        return exc.strerror or str(exc)
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return "not a regular file (" + next((k for test, k in kinds if test(mode)), "special") + ")"


def _read_image(path: Path) -> tuple[np.ndarray | None, str]:
    """The image at ``path`` as BGR, or None and why not (never blocks on a FIFO or device)."""
    why = _not_regular(path)
    if why is not None:
        return None, why
    try:
        image = cv2.imread(str(path))
    except cv2.error as exc:  # too many pixels, a broken header
        return None, f"OpenCV cannot read it: {str(exc).strip().splitlines()[-1]}"
    if image is None:
        return None, "not an image OpenCV can read (corrupt, truncated or another format)"
    return image, ""


class _Capture:
    """A ``cv2.VideoCapture`` whose release never runs during a read: a close from another
    thread waits for the read in progress, or leaves the release to it (OpenCV crashes or
    deadlocks when a capture is released under a read)."""

    def __init__(self, cap: cv2.VideoCapture, name: str):
        self.cap = cap
        self._guard = CloseGuard(name)

    @property
    def closed(self) -> bool:
        return self._guard.closed

    def read(self) -> tuple[bool, np.ndarray | None]:
        with self._guard.call() as open_:
            if not open_:
                return False, None
            return self.cap.read()

    def release(self) -> None:
        self._guard.close(self.cap.release, CLOSE_WAIT_S)


class CameraSource:
    """A webcam by index. A camera that stops delivering frames (unplugged) ends the stream
    after ``max_failures`` consecutive failed reads, with a warning."""

    def __init__(self, spec: int, width: int | None = None, height: int | None = None,
                 max_failures: int = 30):
        for option, value in (("width", width), ("height", height)):
            if value is not None:
                integer_option("camera", option, value, 0, 16384)
        self.max_failures = integer_option("camera", "max_failures", max_failures, 1, 100_000)
        integer_option("camera", "spec", spec, -1, MAX_CAMERA)
        cap = cv2.VideoCapture(int(spec))
        if not cap.isOpened():
            raise SourceError(f"camera {spec} could not be opened (no such device, or it is busy)")
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.fps = sane_fps(cap.get(cv2.CAP_PROP_FPS), f"camera {spec}")
        self.cap = _Capture(cap, f"camera {spec}")
        self.spec = spec

    @classmethod
    def accepts(cls, spec: Any) -> bool:
        return isinstance(spec, int) and not isinstance(spec, bool) and -1 <= spec <= MAX_CAMERA

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        import time

        t0, failures = time.monotonic(), 0
        while True:
            ok, frame = self.cap.read()
            if self.cap.closed:
                return
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
        path = _path(spec)
        if path is None:
            raise SourceError(f"a video file is a path, got {spec!r}")
        why = _not_regular(path)
        if why is not None:
            raise SourceError(f"video file {str(path)!r} cannot be read: {why}")
        cap = cv2.VideoCapture(str(path))
        ok = cap.isOpened()
        first = cap.read() if ok else (False, None)
        if not first[0]:
            cap.release()
            raise SourceError(f"video file {str(path)!r} cannot be read (corrupt, or a codec OpenCV lacks); "
                              f"accepted: {', '.join(sorted(VIDEO_SUFFIXES))} that OpenCV can decode")
        self._first = first[1]
        self.fps = sane_fps(cap.get(cv2.CAP_PROP_FPS), f"video file {str(path)!r}") or 30.0
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if np.isfinite(count) and 0 < count < 2**53 else None
        self.cap = _Capture(cap, f"video file {str(path)!r}")
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
                if self.frame_count and i < self.frame_count - 1 and not self.cap.closed:
                    log.warning("%s: decoding failed at frame %d of %d; ending the stream",
                                self.path, i, self.frame_count)
                return

    def close(self) -> None:
        self.cap.release()


class ImageSource:
    """One image file, as a one-frame stream."""

    fps = None

    def __init__(self, spec: str | Path):
        path = _path(spec)
        if path is None:
            raise SourceError(f"an image file is a path, got {spec!r}")
        image, why = _read_image(path)
        if image is None:
            raise SourceError(f"image {str(path)!r} cannot be read ({why}); "
                              f"accepted: {', '.join(sorted(IMAGE_SUFFIXES))}")
        self.image, self.path = image, path  # path: outputs must not write it (handsdk.outputs)

    @classmethod
    def accepts(cls, spec: Any) -> bool:
        p = _path(spec)
        return p is not None and p.suffix.lower() in IMAGE_SUFFIXES

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[SourceFrame]:
        yield SourceFrame(self.image, None, str(self.path))

    def close(self) -> None:
        pass


class FolderSource:
    """Every image in a folder, in name order, each frame naming its file. A file that cannot
    be read (corrupt, not an image, a FIFO or other non-regular file, which would block the
    read) is skipped with a warning naming it; a folder none of whose images can be read is a
    :class:`SourceError`."""

    fps = None

    def __init__(self, spec: str | Path):
        folder = _path(spec)
        if folder is None or not _is_dir(folder):
            raise SourceError(f"folder {str(spec)!r} does not exist or is not a folder")
        self.folder = folder
        try:
            names = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        except OSError as exc:
            raise SourceError(f"folder {str(folder)!r} cannot be listed: {exc.strerror or exc}") from None
        self.files = []
        for p in names:
            why = _not_regular(p)
            if why is None:
                self.files.append(p)
            else:
                log.warning("skipping %s: %s", p, why)
        if not self.files:
            raise SourceError(f"folder {str(folder)!r} holds no images "
                              f"({', '.join(sorted(IMAGE_SUFFIXES))})"
                              + (f"; {len(names)} skipped, not regular files" if names else ""))

    @classmethod
    def accepts(cls, spec: Any) -> bool:
        p = _path(spec)
        return p is not None and _is_dir(p)

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[SourceFrame]:
        read = 0
        first_failure = ""
        for f in self.files:
            image, why = _read_image(f)
            if image is None:
                log.warning("skipping %s: %s", f, why)
                first_failure = first_failure or f"{f.name}: {why}"
                continue
            read += 1
            yield SourceFrame(image, None, str(f))
        if not read:
            raise SourceError(f"none of the {len(self.files)} images in folder {str(self.folder)!r} can be "
                              f"read ({first_failure}{'; …' if len(self.files) > 1 else ''})")

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
        self.fps = number_option("synthetic", "fps", fps, MIN_FPS, MAX_FPS)
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
