"""What a consumer implements, and how the tracker calls them without ever failing because
of one.

Classifier consumers (``kind = "classifier"``) run first, in config order, and may write
``hand.labels``; sink consumers (overlay, writers, apps) run after them and see those labels.
A consumer that raises is logged with its name and counted; the others still get the result —
except an :class:`~handsdk.errors.OutputError` (a writer could not write its file), which stops
the run: an output must never lose frames silently.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import OutputError, worth_logging
from .outputs import outputs_of
from .types import FrameResult, Hand

log = logging.getLogger(__name__)


@dataclass
class LabelSwitch:
    """A track's label that does not flicker: a new candidate replaces ``current`` only after
    winning ``min_frames`` frames in a row, or at once when it leads by ``switch_margin`` — so a
    one-frame blip never shows and a clean change shows after a frame or two. Classifier
    consumers keep one per track, beside their own running scores."""

    current: Hashable
    min_frames: int
    switch_margin: float
    pending: Hashable | None = None
    count: int = 0

    def update(self, candidate: Hashable, lead: float) -> Hashable:
        """The label after this frame; ``lead`` is the candidate's score minus the current one's."""
        if candidate == self.current:
            self.pending, self.count = None, 0
            return self.current
        self.count = self.count + 1 if candidate == self.pending else 1
        self.pending = candidate
        if self.count >= self.min_frames or lead >= self.switch_margin:
            self.current, self.pending, self.count = candidate, None, 0
        return self.current


@runtime_checkable
class Consumer(Protocol):
    kind: str  # "classifier" or "sink"

    def __call__(self, result: FrameResult, frame: np.ndarray | None) -> None: ...


class StillClassifier(Protocol):
    """A classifier that can also label hands of a still image (``Tracker.detect``)."""

    def classify(self, hands: list[Hand], image: np.ndarray | None) -> None: ...


class ConsumerSlot:
    """One configured consumer: its name, call/error counters, and isolation (an
    :class:`OutputError` is passed on, never isolated)."""

    def __init__(self, name: str, consumer: Any):
        self.name, self.consumer = name, consumer
        self.kind = getattr(consumer, "kind", "sink")
        self.calls = self.errors = 0

    def __call__(self, result: FrameResult, frame: np.ndarray | None) -> None:
        self.calls += 1
        try:
            self.consumer(result, frame)
        except OutputError:
            self.errors += 1
            raise
        except Exception as exc:
            self.errors += 1
            if worth_logging(self.errors):
                log.exception("consumer %r raised on frame %d (%d errors so far): %s; tracking goes on",
                              self.name, result.frame_index, self.errors, exc)

    def classify(self, hands: list[Hand], image: np.ndarray | None) -> None:
        fn = getattr(self.consumer, "classify", None)
        if fn is None:
            return
        try:
            fn(hands, image)
        except Exception as exc:
            self.errors += 1
            log.exception("consumer %r raised while classifying a still image: %s", self.name, exc)

    @property
    def outputs(self) -> list[Any]:
        """The :class:`~handsdk.outputs.OutputFile` s the consumer writes (its ``outputs``)."""
        return outputs_of(self.consumer)

    def open(self) -> None:
        """Create the consumer's output files (its optional ``open``): called before a run's
        first frame, so a path that cannot be written fails before tracking starts."""
        fn = getattr(self.consumer, "open", None)
        if fn is not None:
            fn()

    def close(self) -> None:
        """Close the consumer; an :class:`OutputError` (its file could not be finished) is
        raised, anything else logged."""
        fn = getattr(self.consumer, "close", None)
        if fn is not None:
            try:
                fn()
            except OutputError:
                raise
            except Exception as exc:
                log.exception("consumer %r raised on close: %s", self.name, exc)


class AsyncSinks:
    """Run sink consumers on a worker thread behind a bounded queue (live mode).

    Drop policy: when the queue is full the *oldest* queued frame is dropped, so sinks always
    see the latest results; ``dropped`` counts what was dropped. An :class:`OutputError` on the
    worker is raised in the tracker's thread by the next :meth:`put` or by :meth:`close`.
    """

    def __init__(self, slots: list[ConsumerSlot], maxsize: int = 8):
        self.slots = slots
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.dropped = 0
        self.error: OutputError | None = None
        self._thread = threading.Thread(target=self._work, name="handsdk-sinks", daemon=True)
        self._thread.start()

    def put(self, result: FrameResult, frame: np.ndarray | None) -> None:
        """Queue a frame for the sinks. The frame is copied (a camera may reuse its buffer for the
        next frame before the sinks draw this one) and so is the timings dict (the tracker adds to
        it after handing the result over)."""
        if self.error is not None:
            raise self.error
        item = (replace(result, timings=dict(result.timings)), None if frame is None else frame.copy())
        while True:
            try:
                self.queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    self.queue.task_done()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                if self.error is None:
                    for slot in self.slots:
                        slot(*item)
            except OutputError as exc:  # the run stops: put() / close() raise it
                self.error = exc
            finally:
                self.queue.task_done()

    def close(self) -> None:
        self.queue.put(None)
        self._thread.join(timeout=10)
        error, self.error = self.error, None
        if error is not None:
            raise error
