"""What a consumer implements, and how the tracker calls them without ever failing because
of one.

Classifier consumers (``kind = "classifier"``) run first, in config order, and may write
``hand.labels``; sink consumers (overlay, writers, apps) run after them and see those labels.
A consumer that raises is logged with its name and counted; the others still get the result —
except an :class:`~handsdk.errors.OutputError` (a writer could not write its file), which stops
the run: an output must never lose frames silently.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import OutputError, worth_logging
from .lifecycle import CloseGuard
from .outputs import outputs_of
from .types import FrameResult, Hand

log = logging.getLogger(__name__)

#: How long closing live mode waits for its sinks to finish the frames still queued (seconds):
#: after that the rest are dropped, and a sink still inside a call finishes it alone, unclosed
#: until it returns and called no more.
LIVE_CLOSE_S = 2.0
#: How long closing a consumer waits for a call in progress on another thread (seconds) before
#: leaving its close to that call's end.
SLOT_CLOSE_S = 1.0


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
    :class:`OutputError` is passed on, never isolated). Its close never runs during a call on
    another thread (live mode's sink thread), and a closed consumer is never called again."""

    def __init__(self, name: str, consumer: Any):
        self.name, self.consumer = name, consumer
        self.kind = getattr(consumer, "kind", "sink")
        self.calls = self.errors = 0
        self._guard = CloseGuard(f"consumer {name!r}")

    def __call__(self, result: FrameResult, frame: np.ndarray | None) -> None:
        with self._guard.call() as open_:
            if not open_:  # closed: a writer's file is finished, nothing more goes in
                return
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
        with self._guard.call() as open_:
            if not open_:
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
        """Close the consumer once no call is in progress (waiting up to ``SLOT_CLOSE_S``, then
        leaving it to that call's end); an :class:`OutputError` (its file could not be finished)
        is raised, anything else logged."""
        self._guard.close(self._close, SLOT_CLOSE_S)

    def _close(self) -> None:
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
    worker, or a sink's ``SystemExit`` / ``KeyboardInterrupt``, stops the sinks and is raised in
    the tracker's thread by the next :meth:`put` or by :meth:`close`. :meth:`close` ends in
    bounded time (``close_timeout``), whatever a sink does.
    """

    def __init__(self, slots: list[ConsumerSlot], maxsize: int = 8, close_timeout: float = LIVE_CLOSE_S):
        self.slots = slots
        self.maxsize, self.close_timeout = maxsize, close_timeout
        self.dropped = 0
        self.error: BaseException | None = None
        self._cv = threading.Condition()
        self._items: collections.deque[tuple[FrameResult, np.ndarray | None]] = collections.deque()
        self._stopping = False  # close() was called: finish what is queued, take nothing more
        self._abandoned = False  # close() gave up waiting: deliver nothing more
        self._busy: str | None = None  # the sink being called, for close()'s warning
        self._thread = threading.Thread(target=self._work, name="handsdk-sinks", daemon=True)
        self._thread.start()

    def put(self, result: FrameResult, frame: np.ndarray | None) -> None:
        """Queue a frame for the sinks. The frame is copied (a camera may reuse its buffer for the
        next frame before the sinks draw this one) and so is the timings dict (the tracker adds to
        it after handing the result over)."""
        self._raise_error()
        item = (replace(result, timings=dict(result.timings)), None if frame is None else frame.copy())
        with self._cv:
            if self._stopping:
                self.dropped += 1
                return
            self._items.append(item)
            while len(self._items) > self.maxsize:
                self._items.popleft()
                self.dropped += 1
            self._cv.notify_all()

    def _work(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._items or self._stopping)
                if not self._items or self._abandoned:
                    return
                item = self._items.popleft()
            try:
                for slot in self.slots:
                    if self._abandoned:
                        return
                    self._busy = slot.name
                    slot(*item)
            except BaseException as exc:  # OutputError, SystemExit, KeyboardInterrupt: the run stops
                with self._cv:
                    self.error = exc
                    self._stopping = True
                    self.dropped += len(self._items)
                    self._items.clear()
                return
            finally:
                self._busy = None

    def _raise_error(self) -> None:
        with self._cv:
            error, self.error = self.error, None
        if error is not None:
            raise error

    def close(self) -> None:
        """Let the sinks finish the queued frames for up to ``close_timeout`` seconds, then drop
        the rest; a sink still inside a call after that is left to finish it alone (and gets
        nothing more). Safe to call twice and from any thread."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._thread.join(self.close_timeout)
        if self._thread.is_alive():
            with self._cv:
                if not self._abandoned:
                    self._abandoned = True
                    self.dropped += len(self._items)
                    self._items.clear()
                    log.warning("live mode: sink %r is still busy after %.1f s; the run ends without it "
                                "(it gets no more frames, and is closed when its call returns)",
                                self._busy, self.close_timeout)
        self._raise_error()
