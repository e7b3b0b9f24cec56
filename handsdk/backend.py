"""What an inference backend implements (a third-party OpenVINO or TensorRT backend too).

A backend plugin registers a factory through ``handsdk_register_backends``; the tracker calls
``factory(**options)`` with the ``[backend]`` section's keys (the first-party backends take
``device`` and ``threads``), then ``load(spec, variant)`` once per model.
"""

from __future__ import annotations

import logging
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


_told_fp32_only: set[str] = set()


def note_fp32_only(backend: str, variant: str) -> None:
    """For backends that have fp32 models only: say (once per backend) that ``[models] variant``
    is not applied, instead of silently running fp32 under an "int8" config."""
    if variant != "fp32" and backend not in _told_fp32_only:
        _told_fp32_only.add(backend)
        logging.getLogger("handsdk.backend").warning(
            "the %s backend has fp32 models only: [models] variant = %r is not applied (INT8 runs on "
            "onnxruntime)", backend, variant)


def thread_option(where: str, threads: Any, leave_free: int = 0) -> int:
    """A backend's ``threads`` option: an integer ≥ 1, or 0 for :func:`default_threads`."""
    from .config import integer_option

    return integer_option(where, "threads", threads, 0, 256) or default_threads(leave_free)


def default_threads(leave_free: int = 0) -> int:
    """Intra-op threads for a backend: the cores (less ``leave_free`` for the calling thread's own
    work), at least 1, at most 4 — these models are too small to use more."""
    import os

    return max(1, min(4, (os.cpu_count() or 1) - leave_free))
