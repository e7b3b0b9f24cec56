"""What a capture source implements, and how ``Tracker.run`` picks one for a spec.

A source plugin registers a class with ``accepts(spec) -> bool`` (classmethod) and an
iterator of frames; a frame is a BGR array or a ``(frame, timestamp_ms)`` pair. A source that
ends or fails ends the run cleanly; failures mid-stream are logged and raised as
:class:`~handsdk.errors.SourceError` only when nothing was read at all.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import SourceError
from .plugins import components, env_note, get_component

log = logging.getLogger(__name__)


@runtime_checkable
class Source(Protocol):
    fps: float | None  # frames per second when known (timestamps), else None

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
        accepts = getattr(comp.factory, "accepts", None)
        if accepts is not None and accepts(spec):
            return build_component(comp.factory, {"spec": spec, **options}, f"{label} {comp.name!r}")
    raise SourceError(f"no source can open {_describe(spec)}; give a camera index (0), a video file, an image "
                      f"file, a folder of images, 'synthetic', or an iterable of frames "
                      f"(registered sources: {', '.join(sorted(found)) or '(none)'}){env_note()}")


def stall_guard(frames: Iterable[Any], timeout_s: float) -> Iterator[Any]:
    """Yield from ``frames`` (read on a worker thread), ending the stream with a warning when
    no frame arrives for ``timeout_s`` seconds — a camera that hangs instead of failing.

    Exceptions of the source are re-raised in the caller's thread.
    """
    q: queue.Queue = queue.Queue(maxsize=2)
    done = object()
    stop = threading.Event()

    def read() -> None:
        try:
            for item in frames:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # handed to the consumer thread
            q.put(exc)

    threading.Thread(target=read, name="handsdk-source", daemon=True).start()
    try:
        while True:
            try:
                item = q.get(timeout=timeout_s)
            except queue.Empty:
                log.warning("no frame from the source for %.1f s: ending the stream", timeout_s)
                return
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
