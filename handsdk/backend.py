"""What an inference backend implements (a third-party OpenVINO or TensorRT backend too).

A backend plugin registers a factory through ``handsdk_register_backends``; the tracker calls
``factory(**options)`` with the ``[backend]`` section's keys (the first-party backends take
``device`` and ``threads``), then ``load(spec, variant)`` once per model.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from .models import ModelSpec


@runtime_checkable
class Runner(Protocol):
    """A loaded model. ``__call__`` takes a batch NHWC float32 RGB in [0, 1] and returns the
    outputs in the manifest's ``outputs`` order, as numpy arrays."""

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]: ...


@runtime_checkable
class Backend(Protocol):
    name: str
    device: str  # what it runs on, e.g. "cpu", "CUDAExecutionProvider"

    def load(self, spec: ModelSpec, variant: str = "fp32") -> Runner:
        """Load ``spec`` (``variant`` "fp32" or "int8" where the backend supports it)."""
        ...


def thread_option(where: str, threads: Any, leave_free: int = 0) -> int:
    """A backend's ``threads`` option: an integer ≥ 1, or 0 for :func:`default_threads`."""
    from .config import integer_option

    return integer_option(where, "threads", threads, 0, 256) or default_threads(leave_free)


def default_threads(leave_free: int = 0) -> int:
    """Intra-op threads for a backend: the cores (less ``leave_free`` for the calling thread's own
    work), at least 1, at most 4 — these models are too small to use more."""
    import os

    return max(1, min(4, (os.cpu_count() or 1) - leave_free))
