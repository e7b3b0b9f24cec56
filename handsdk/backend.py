"""What an inference backend implements (a third-party OpenVINO or TensorRT backend too).

A backend plugin registers a factory through ``handsdk_register_backends``; the tracker calls
``factory(**options)`` with the ``[backend]`` section's keys (the first-party backends take
``device`` and ``threads``), then ``load(spec, variant)`` once per model. What each returns is
checked there and then (:func:`check_backend`, :func:`load_runner`), so a plugin's mistake is
one error naming it when the tracker is built, not a foreign error on some later frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from .errors import HandSDKError, ModelError, PluginError
from .models import ModelSpec


@runtime_checkable
class Runner(Protocol):
    """A loaded model. ``__call__`` takes a batch NHWC float32 RGB in [0, 1] and returns the
    outputs in the manifest's ``outputs`` order, as numpy arrays. The tracker may call the
    detector's runner on a second thread while the landmark runner works
    (``overlap_detector``); one runner is never called from two threads at once."""

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


# -- checking what a backend gives, once, when the tracker is built ------------------------------
#: What the tracker reads from each model's outputs, in the manifest's order: "N" is the batch
#: size, None any size.
EXPECTED_OUTPUTS: dict[str, list[tuple[int | str | None, ...]]] = {
    "landmark": [("N", 21, 3), ("N", 21), ("N", 1), ("N", 1)],  # landmarks, confidence, presence, handedness
    "detector": [("N", 1, None, None), ("N", 7, None, None)],  # centre heatmap, crop geometry
}
#: The outputs (by position) that are probabilities, so must lie in [0, 1].
PROBABILITIES = {"landmark": (1, 2, 3), "detector": (0,)}
#: The models the tracker runs on batches of crops (the detector sees one frame at a time).
BATCHED = ("landmark",)
#: The rendered frame the self-check reads (``handsdk.synthetic``: exact landmarks, no data
#: file shipped): frame SELF_CHECK_FRAME of the synthetic clip of seed SELF_CHECK_SEED.
SELF_CHECK_SEED, SELF_CHECK_FRAME = 3, 0


def known_hand() -> tuple[np.ndarray, np.ndarray]:
    """A frame with one hand whose landmarks are exact (BGR image, (21, 3) points): a render of
    ours, so nothing but code is shipped for it."""
    from .synthetic import synthetic_clip

    for i, frame in enumerate(synthetic_clip(SELF_CHECK_FRAME + 1, seed=SELF_CHECK_SEED)):
        if i == SELF_CHECK_FRAME:
            return frame.image, np.asarray(frame.landmarks[0], np.float32)
    raise AssertionError("the synthetic clip is shorter than its own self-check frame")


def check_backend(obj: Any, who: str) -> Any:
    """``obj``, what a backend factory returned, if it is a backend: an object with ``name`` and
    ``device`` strings and a ``load`` method (``find_hands`` for a whole-pipeline backend).
    Else a :class:`PluginError` naming the plugin (``who``), not an AttributeError later."""
    if obj is None:
        raise PluginError(f"{who}: its factory returned None, not a backend (an object with "
                          "name, device and load(spec, variant))")
    method = "find_hands" if getattr(obj, "runs_whole_pipeline", False) is True else "load"
    if not callable(getattr(obj, method, None)):
        raise PluginError(f"{who}: its factory returned a {type(obj).__name__} without a {method}() "
                          "method; a backend has name, device and load(spec, variant)")
    for attr in ("name", "device"):
        if not isinstance(getattr(obj, attr, None), str):
            raise PluginError(f"{who}: the backend's {attr!r} must be a string (what it is / what it "
                              f"runs on), got {getattr(obj, attr, None)!r}")
    return obj


def load_runner(backend: Any, spec: ModelSpec, variant: str, who: str) -> CheckedRunner:
    """``backend.load(spec, variant)``, checked now on a blank batch of 1 (and of 2 for a model
    the tracker batches) and, for a model file the manifest does not list, on a known hand: every
    way the result can be wrong is a :class:`ModelError` or :class:`PluginError` here, naming the
    model and the plugin."""
    try:
        runner = backend.load(spec, variant)
    except HandSDKError:
        raise
    except (Exception, SystemExit) as exc:  # each runtime raises its own kinds; a plugin may exit
        raise ModelError(f"{who} could not load the {spec.name} model ({spec.where}): "
                         f"{type(exc).__name__}: {exc}") from exc
    if not callable(runner):
        raise PluginError(f"{who}: load() returned {type(runner).__name__} for the {spec.name} model, "
                          "not a runner (a callable taking an NHWC batch, returning a list of arrays)")
    checked = CheckedRunner(runner, spec, who)
    size = spec.input_size
    blank = np.zeros((1, size, size, 3), np.float32)
    checked.check_values(checked(blank), "a blank input")
    if spec.name in BATCHED:
        checked.check_values(checked(np.concatenate([blank, blank + 0.5])), "a batch of two blank inputs")
    if spec.unverified_override():
        self_check(checked, spec)
    return checked


class CheckedRunner:
    """A backend's runner whose every answer is checked (a few shape comparisons, no copies):
    the outputs the tracker reads, numbers, shaped for the batch given. A runner that raises,
    returns None, fewer outputs, or answers a batch of 3 with one row is a :class:`ModelError`
    naming the model and the plugin, never an IndexError deep in the tracker."""

    def __init__(self, runner: Callable[[np.ndarray], Any], spec: ModelSpec, who: str):
        self.runner, self.spec, self.who = runner, spec, who
        self.where = f"the {spec.name} model ({spec.where})"
        self.expected = EXPECTED_OUTPUTS.get(spec.name, [])

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        n = len(batch)
        try:
            outs = self.runner(batch)
        except HandSDKError:
            raise
        except (Exception, SystemExit) as exc:
            shape = "x".join(map(str, batch.shape))
            hint = " (the tracker reads all of a frame's hands in one batch)" if n > 1 else ""
            raise ModelError(f"{self.where} does not run on a {shape} NHWC float32 input{hint}, as the "
                             f"manifest says it should ({self.who}): {type(exc).__name__}: {exc}") from exc
        return self._shaped(outs, n)

    def _shaped(self, outs: Any, n: int) -> list[np.ndarray]:
        names = ", ".join(self.spec.outputs)
        if not isinstance(outs, (list, tuple)):
            raise ModelError(f"{self.where} returned {type(outs).__name__}, not a list of arrays in the "
                             f"manifest's order ({names}) ({self.who})")
        if len(outs) < len(self.expected):
            raise ModelError(f"{self.where} returned {len(outs)} outputs; the tracker reads "
                             f"{len(self.expected)} ({names}) ({self.who})")
        arrays = []
        for i, out in enumerate(outs[: len(self.expected)]):
            try:
                a = np.asarray(out)
            except Exception as exc:
                raise ModelError(f"{self.where}: output {i} is not an array ({self.who}): {exc}") from exc
            if a.dtype.kind not in "fiub":
                raise ModelError(f"{self.where}: output {i} holds {a.dtype} values, not real numbers "
                                 f"({self.who})")
            arrays.append(a)
        got = [tuple(a.shape) for a in arrays]
        if not all(_fits(g, e, n) for g, e in zip(got, self.expected, strict=True)):
            want = ", ".join(str(tuple(n if a == "N" else "any" if a is None else a for a in e))
                             for e in self.expected)
            raise ModelError(f"{self.where} gives outputs of shapes {got} for a batch of {n}; the "
                             f"tracker reads {want} ({names}) ({self.who})")
        return arrays + list(outs[len(self.expected):])

    def check_values(self, outs: list[np.ndarray], what: str) -> None:
        """On the load-time inputs: finite outputs, probabilities in [0, 1], and a heatmap of
        ``input_size / stride`` cells a side (what the tracker's decoding assumes)."""
        for i, a in enumerate(outs[: len(self.expected)]):
            if not np.isfinite(a).all():
                raise ModelError(f"{self.where} gives non-finite values (NaN or infinity) in output {i} "
                                 f"({self.spec.outputs[i]}) on {what} ({self.who})")
            if i in PROBABILITIES.get(self.spec.name, ()) and (a.min() < -1e-3 or a.max() > 1 + 1e-3):
                raise ModelError(f"{self.where}: output {i} ({self.spec.outputs[i]}) must be a probability "
                                 f"in [0, 1]; it gives {float(a.min()):.3g}..{float(a.max()):.3g} on "
                                 f"{what} (a logit without its sigmoid?) ({self.who})")
        if self.spec.name == "detector":
            cells, stride = outs[0].shape[2:], self.spec.stride
            if cells[0] != cells[1] or cells[0] * stride != self.spec.input_size:
                raise ModelError(f"{self.where} gives a {cells[0]}x{cells[1]} heatmap; with stride {stride} "
                                 f"an input of {self.spec.input_size} needs "
                                 f"{self.spec.input_size // stride}x{self.spec.input_size // stride} ({self.who})")


def _fits(got: tuple[int, ...], expected: tuple[int | str | None, ...], n: int) -> bool:
    if expected == ("N", 1):  # one number per item: (N,) or (N, 1) both read the same
        return len(got) >= 1 and got[0] == n and int(np.prod(got[1:])) == 1
    return len(got) == len(expected) and all(
        e is None or g == (n if e == "N" else e) for g, e in zip(got, expected, strict=True))


def self_check(runner: CheckedRunner, spec: ModelSpec) -> None:
    """A model file the manifest does not list must find a known hand (:func:`known_hand`, a
    rendered frame with exact landmarks) and nothing on a blank one: a file with the
    right shapes and untrained weights (presence ≈ 0.5 everywhere: "hands" on every frame) is a
    :class:`ModelError`, not a tracker that reports noise."""
    from .detection import decode, letterbox
    from .geometry import image_points_to_crop, rect_from_landmarks, warp_crop

    photo, ref = known_hand()
    size = spec.input_size
    hand = rect_from_landmarks(ref, 1.0)
    if spec.name == "landmark":
        rect = rect_from_landmarks(ref, spec.crop_scale)
        crop = cv2.cvtColor(warp_crop(photo, rect, size), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
        lms, _, presence, _ = runner(np.stack([crop, np.full_like(crop, 0.5)]))[:4]
        err = float(np.linalg.norm(lms[0][:, :2] - image_points_to_crop(ref, rect)[:, :2], axis=1).mean())
        found, blank = float(presence[0].ravel()[0]), float(presence[1].ravel()[0])
        ok = found >= 0.5 and blank < 0.5 and err <= 0.1
        detail = (f"presence {found:.2f} on the hand (needs >= 0.5) and {blank:.2f} on a grey crop "
                  f"(needs < 0.5); landmarks {err:.2f} crop sides from the hand's (needs <= 0.1)")
    elif spec.name == "detector":  # the hand lies off the frame's centre: a random peak misses it
        square, scale, offset = letterbox(photo, size)
        square = cv2.cvtColor(square, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
        heat, geom = runner(square[None])[:2]
        blank = float(runner(np.full_like(square[None], 0.5))[0].max())
        dets = decode(heat[0, 0], geom[0], size, scale, offset, 0.3, 1, spec.stride)
        centre = np.asarray(hand.center)
        miss = (float(np.hypot(*np.subtract(dets[0].center, centre))) / hand.size[0]
                if dets else float("inf"))
        ratio = dets[0].side / hand.size[0] if dets else 0.0
        ok = miss <= 0.5 and 0.5 <= ratio <= 2 and blank < 0.3
        detail = (f"best peak {dets[0].score:.2f}, {miss:.2f} hand sides from the hand (needs <= 0.5), "
                  f"{ratio:.2f} times its size (needs 0.5-2)" if dets else "no peak >= 0.3") + \
            f"; {blank:.2f} at best on a grey frame (needs < 0.3)"
    else:
        return
    if not ok:
        raise ModelError(f"the {spec.name} model {spec.where!r} fails the self-check on a known hand "
                         f"({detail}): it does not work as handsdk's {spec.name} model (untrained "
                         "weights, or another task's). Use a model exported by handsdk.train.export; "
                         "a model listed with its sha256 in a manifest of your own ([models] manifest) "
                         "is not self-checked")
