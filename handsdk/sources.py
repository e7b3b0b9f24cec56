"""What a capture source implements, and how ``Tracker.run`` picks one for a spec and reads it.

A source plugin registers a class with ``accepts(spec) -> bool`` (classmethod) and an
iterator of frames; a frame is a BGR array, a ``(frame, timestamp_ms)`` pair, or an object
with ``.image`` and ``.timestamp_ms``; a :class:`SourceFrame` pair also names its file. A
source that ends or fails ends the run cleanly; failures mid-stream are logged and raised as
:class:`~handsdk.errors.SourceError` only when nothing was read at all.

Threads: a source's ``read`` and its ``close`` never run at the same time. Without a stall
timeout the run's own thread reads and closes; with one, :class:`ReadAhead` reads on a thread
of its own that also closes the sources the tracker opened, after its last read has returned.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import SourceError
from .plugins import components, env_note, get_component

log = logging.getLogger(__name__)

#: Frame rates a source may report; others are treated as unknown (see :func:`sane_fps`).
MIN_FPS, MAX_FPS = 0.01, 10_000.0


class SourceFrame(tuple):
    """A ``(frame, timestamp_ms)`` pair (``timestamp_ms`` may be None: derived from the frame
    rate) that also names the file the frame came from (a photo of a folder): the result
    carries it (``FrameResult.path``) and errors about the frame name it. Code that unpacks
    pairs reads it as one."""

    path: str | None

    def __new__(cls, image: np.ndarray, timestamp_ms: float | None = None,
                path: str | None = None) -> SourceFrame:
        self = super().__new__(cls, (image, timestamp_ms))
        self.path = path
        return self

    @property
    def image(self) -> np.ndarray:
        return self[0]

    @property
    def timestamp_ms(self) -> float | None:
        return self[1]


def sane_fps(fps: Any, where: str) -> float | None:
    """``fps`` if it is a usable frame rate (a finite number in [MIN_FPS, MAX_FPS]), else
    ``None`` with a warning naming ``where``: a file header's 0, 1e308 or 5e-324 would give
    infinite timestamps, or frames microseconds apart that freeze every filter."""
    if fps is None or fps == 0:
        return None
    try:
        value = float(fps)
    except (TypeError, ValueError):
        value = math.nan
    if math.isfinite(value) and MIN_FPS <= value <= MAX_FPS:
        return value
    log.warning("%s reports %r frames per second, outside [%g, %g]: its frame rate is taken as unknown",
                where, fps, MIN_FPS, MAX_FPS)
    return None


@runtime_checkable
class Source(Protocol):
    fps: float | None  # frames per second when known (timestamps), else None; see sane_fps

    def __iter__(self) -> Iterator[np.ndarray | tuple[np.ndarray, float]]: ...

    def close(self) -> None: ...


def source_spec(text: str) -> int | str:
    """A source named on the command line: a camera index if it is all digits and no file or
    folder of that name exists (a folder called ``2024`` is still a folder), else the text.
    An empty name is refused (as a path it would be the current folder)."""
    from pathlib import Path

    if not text.strip():
        raise SourceError(f"the source is empty ({text!r}); give a camera index (0), a video file, an image "
                          "file, a folder of images, or 'synthetic'")
    return int(text) if text.isascii() and text.isdigit() and not Path(text).exists() else text


def _describe(spec: Any) -> str:
    if isinstance(spec, np.ndarray):
        return (f"a numpy array of shape {spec.shape} ({spec.dtype}): for one frame call process() or "
                "detect(); for several, pass a list of frames")
    text = repr(spec)
    return text if len(text) <= 200 else text[:200] + "…"


def _accepts(comp: Any, spec: Any) -> bool:
    """Whether the source ``comp`` says it can open ``spec``; one whose ``accepts`` raises (a
    plugin calling ``spec.startswith`` on a Path) is skipped with a warning naming it."""
    accepts = getattr(comp.factory, "accepts", None)
    if accepts is None:
        return False
    try:
        return bool(accepts(spec))
    except Exception as exc:
        where = f" (from {comp.plugin})" if getattr(comp, "plugin", None) else ""
        log.warning("source %r%s: accepts(%s) raised %s: %s; skipping it", comp.name, where,
                    _describe(spec)[:80], type(exc).__name__, exc)
        return False


def open_source(spec: Any, name: str | None = None, where: str | None = None, **options: Any) -> Source:
    """Open ``spec`` with the named source, or with the first registered source accepting it.
    ``where`` (e.g. a config file's ``[source]``) prefixes the errors."""
    from .config import build_component

    label = where or "source"  # "<file> [source] 'video'" from a config, else "source 'video'"
    if name is not None:
        return build_component(get_component("source", name, where).factory, {"spec": spec, **options},
                               f"{label} {name!r}")
    found = components("source")
    for comp in found.values():
        if _accepts(comp, spec):
            return build_component(comp.factory, {"spec": spec, **options}, f"{label} {comp.name!r}")
    raise SourceError(f"no source can open {_describe(spec)}; give a camera index (0), a video file, an image "
                      f"file, a folder of images, 'synthetic', or an iterable of frames "
                      f"(registered sources: {', '.join(sorted(found)) or '(none)'}){env_note()}")




class ReadAhead:
    """Frames of a source read on a thread of their own (``handsdk-source``), so a source that
    hangs instead of failing ends the stream after ``stall_timeout`` seconds with a warning.

    That thread is the source's one owner: it alone iterates it and, when it stops, runs
    ``release`` (closing a source the tracker opened) after its last read has returned — never
    while a read is in progress. :meth:`close` asks it to stop and waits, bounded; a read that
    never returns is left behind (a daemon thread) with a warning, not released under its feet.
    The thread ends as soon as the source does (it holds at most ``ahead`` frames), or when
    :meth:`close` is called, which ``Tracker.run`` does when its generator is closed or dropped.
    Exceptions of the source are raised in the caller's thread.
    """

    def __init__(self, frames: Iterable[Any], stall_timeout: float,
                 release: Callable[[], None] | None = None, ahead: int = 2):
        self.stall_timeout = stall_timeout
        self._ahead = ahead
        self._cv = threading.Condition()
        self._items: collections.deque[Any] = collections.deque()
        self._finished = False  # the reader has ended: no more items will come
        self._error: BaseException | None = None
        self._stop = False
        self.stalled = False
        self._thread = threading.Thread(target=self._read, args=(frames, release), name="handsdk-source",
                                        daemon=True)
        self._thread.start()

    def _read(self, frames: Iterable[Any], release: Callable[[], None] | None) -> None:
        it = None
        try:
            it = iter(frames)
            for item in it:
                with self._cv:
                    self._cv.wait_for(lambda: self._stop or len(self._items) < self._ahead)
                    if self._stop:
                        break
                    self._items.append(item)
                    self._cv.notify_all()
        except BaseException as exc:  # handed to the consumer's thread
            with self._cv:
                self._error = exc
        finally:
            with self._cv:
                self._finished = True
                self._cv.notify_all()
            close_it = getattr(it, "close", None)
            if close_it is not None and it is not frames:  # a source's own generator, here on its thread
                _quietly(close_it, "closing the source's iterator")
            if release is not None:
                _quietly(release, "closing the source")

    def __iter__(self) -> ReadAhead:
        return self

    def __next__(self) -> Any:
        with self._cv:
            if self._stop:
                raise StopIteration
            if not self._cv.wait_for(lambda: self._items or self._finished or self._stop,
                                     timeout=self.stall_timeout):
                self.stalled = True
                log.warning("no frame from the source for %.1f s: ending the stream", self.stall_timeout)
                raise StopIteration
            if self._items and not self._stop:
                item = self._items.popleft()
                self._cv.notify_all()
                return item
            error, self._error = self._error, None
        if error is not None:
            raise error
        raise StopIteration

    def stop(self) -> None:
        """Ask the reader to stop after its current read (it then releases the source); the
        stream ends for the consumer at once."""
        with self._cv:
            self._stop = True
            self._items.clear()
            self._cv.notify_all()

    def close(self, wait: float | None = None) -> None:
        """Stop reading; wait up to ``wait`` seconds (default: the stall timeout, none after a
        stall) for the reader to finish its read and release the source."""
        self.stop()
        if wait is None:
            wait = 0.05 if self.stalled else max(1.0, self.stall_timeout)
        self._thread.join(wait)
        if self._thread.is_alive():
            log.warning("the source is still inside a read after %.1f s: leaving it to its thread, "
                        "which closes it if that read ever returns", wait)

    @property
    def alive(self) -> bool:
        """Whether the reader thread is still running (inside a read, or waiting for room)."""
        return self._thread.is_alive()


def _quietly(fn: Callable[[], None], what: str) -> None:
    try:
        fn()
    except Exception as exc:  # nobody left to raise it to: the stream has ended
        log.error("%s failed: %s", what, exc)
