"""Closing something that another thread may be using at that moment.

A video capture, a video writer or a model session crashes (or corrupts its file) when it is
released while a call into it is running on another thread. :class:`CloseGuard` brackets those
calls; its :meth:`~CloseGuard.close` refuses new calls at once, waits (bounded) for the calls in
flight, and releases. If they do not finish in time, the release is handed to the last call out,
which runs it when it returns: so a release never overlaps a call, and ``close()`` never hangs
on a call that hangs.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class CloseGuard:
    """Calls in flight, and a close that never runs concurrently with one of them."""

    def __init__(self, name: str):
        self.name = name  # for the log: "video file 'a.mp4'", "consumer 'video'"
        self._cv = threading.Condition()
        self._threads: collections.Counter[int] = collections.Counter()  # callers in flight
        self._closed = False
        self._handed_off: Callable[[], None] | None = None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called (the release may still be pending)."""
        return self._closed

    def enter(self) -> bool:
        """Start a call: ``False`` (and no call) once closing has begun."""
        with self._cv:
            if self._closed:
                return False
            self._threads[threading.get_ident()] += 1
            return True

    def exit(self) -> None:
        """End a call; the last one out runs a release that :meth:`close` handed over."""
        me = threading.get_ident()
        with self._cv:
            self._threads[me] -= 1
            if self._threads[me] <= 0:
                del self._threads[me]
            release = None
            if not self._threads and self._handed_off is not None:
                release, self._handed_off = self._handed_off, None
            self._cv.notify_all()
        if release is not None:
            try:
                release()
            except Exception as exc:  # whoever called close() has returned: the log is all that is left
                log.error("%s: releasing after its last call failed: %s", self.name, exc)

    @contextmanager
    def call(self) -> Iterator[bool]:
        """``with guard.call() as ok:`` brackets one call; ``ok`` is False once closed."""
        ok = self.enter()
        try:
            yield ok
        finally:
            if ok:
                self.exit()

    def close(self, release: Callable[[], None], timeout: float) -> bool:
        """Refuse new calls, wait up to ``timeout`` seconds for those in flight, then run
        ``release`` here; ``True`` if it ran (or an earlier close already did). Called from
        inside a call (a sink closing its own tracker), or when the calls outlast ``timeout``,
        the release is handed to the last call out and ``False`` returned."""
        with self._cv:
            if self._closed:
                return True
            self._closed = True
            me = threading.get_ident()
            inside = self._threads[me] > 0
            if inside or not self._cv.wait_for(lambda: not self._threads, timeout=timeout):
                self._handed_off = release
                if not inside:
                    log.warning("%s is still busy on another thread after %.1f s: it will be released "
                                "when that call returns", self.name, timeout)
                return False
        release()
        return True
