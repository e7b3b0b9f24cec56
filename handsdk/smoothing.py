"""What the tracker expects from a landmark filter, and the ``none`` filter.

Filters themselves (One Euro, Kalman) live in the ``handsdk_filters`` plugin and are registered
through :func:`handsdk.hookspecs.handsdk_register_filters`; this module imports no plugin.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Filter(Protocol):
    """A stateful filter over a stream of arrays; the tracker makes one per tracked hand.

    ``value`` is a float array of any shape (e.g. ``(21, 3)`` landmarks in pixels) and
    ``timestamp_s`` the capture time in seconds (monotonic; the filter uses the real time between
    calls, so dropped frames and variable frame rates are handled). The call returns the filtered
    array, same shape. It must never return NaN/inf for finite input, even when a timestamp
    repeats or goes backwards. ``reset()`` forgets all state (the hand was lost): the next call
    then returns its input unchanged.
    """

    def __call__(self, value: np.ndarray, timestamp_s: float) -> np.ndarray: ...

    def reset(self) -> None: ...


class IdentityFilter:
    """The ``none`` filter: returns a copy of its input; for raw output or measuring the others."""

    def __call__(self, value: np.ndarray, timestamp_s: float) -> np.ndarray:
        return np.array(value, dtype=float)

    def reset(self) -> None:
        pass
