"""The :class:`Tracker`: capture → detect → smooth → emit.

Detect is MediaPipe's scheme: a hand detector on the full frame and a landmark model on a
rotation-aligned square crop around each hand. In video mode each hand's next crop is built
from its current landmarks, so the detector runs only while fewer than ``max_hands`` hands are
tracked; a hand whose presence falls below threshold is dropped and its track ends. While it
searches, the detector runs on a second thread beside the tracked hands' crops
(``overlap_detector``), which need nothing from it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .backend import check_backend, load_runner
from .config import DETECTOR_ROTATIONS, Config, build_component, load_config
from .consumers import AsyncSinks, ConsumerSlot
from .detection import Detection, View, detect_hands, small_hand_tiles
from .errors import ConfigError, FrameError, HandSDKError, OutputError, SourceError, worth_logging
from .frames import as_bgr
from .geometry import (
    crop_points_to_image,
    rect_from_landmarks,
    rect_iou,
    warp_crop,
)
from .lifecycle import CloseGuard
from .models import model_spec
from .outputs import input_paths, refuse_clashes, tracker_inputs
from .plugins import call_hook_safely, get_component
from .sources import ReadAhead, Source, open_source, sane_fps
from .types import FrameResult, Hand, Handedness, RotatedRect, hand_size

log = logging.getLogger(__name__)

#: A hand re-detected this many frames after its track was lost, where it was, keeps its id.
LOST_TRACK_FRAMES = 5

#: How long ``close()`` waits for a frame being processed on another thread before leaving the
#: release to that thread (seconds).
CLOSE_WAIT_S = 10.0

#: Timestamps beyond this (ms; float64's 2**53) cannot time frames a millisecond apart:
#: 1.8e18 is epoch nanoseconds passed as milliseconds, and its frames would all look simultaneous.
MAX_TIMESTAMP_MS = 2.0**53
#: A hand found only in a small-hand tile (``tile_search``) must also read a mean landmark
#: confidence of at least this: a tile magnifies clutter as well as hands. ``detect()`` looks at
#: the tiles while fewer than ``max_hands`` hands this confident are found. On every valid photo,
#: 98 % of the tile readings on a labelled hand score 0.4 or more, and 151 of the 204 that pass
#: the presence threshold on hand-free strips score under 0.35 (docs/models.md).
TILE_MIN_LANDMARK_CONFIDENCE = 0.35
#: two readings are one hand when their landmark boxes overlap this much (of the smaller box)
TWIN_BOX_OVERLAP = 0.4
#: A reading whose landmark box is wider or taller than this many times the frame's longer side
#: is no hand the camera sees: it is a crop that grew frame on frame past the picture (a model
#: that reads a hand filling its whole crop enlarges the next crop by ``crop_scale`` each frame).
MAX_HAND_FRAMES = 4.0


@dataclass
class _Track:
    id: int
    rect: RotatedRect  # crop for the next frame, from the raw landmarks
    filter: Any
    raw: np.ndarray | None = None


@dataclass
class _Candidate:
    rect: RotatedRect
    track: _Track | None
    from_tile: bool = False  # proposed by a small-hand tile, not the whole frame


class Tracker:
    """Hand landmarks for still images (:meth:`detect`) and video (:meth:`process`, :meth:`run`).

    ``Tracker()`` uses the bundled models and default plugins; ``Tracker(config)`` or
    :meth:`from_config` takes a TOML path, a dict of the same shape, or a :class:`Config`.
    One Tracker per thread: it keeps per-video state; use one instance per stream.
    """

    def __init__(self, config: str | Path | Mapping[str, Any] | Config | None = None):
        self.config = load_config(config)
        cfg = self.config
        self._guard = CloseGuard("the tracker")  # close() never releases under a running frame
        self._busy = threading.Lock()  # process() is not re-entrant: one video's state
        self._readers: set[ReadAhead] = set()  # runs' reader threads, stopped by close()
        be = get_component("backend", cfg.backend.name, f"{cfg.origin} [backend]")
        self.backend = check_backend(
            build_component(be.factory, cfg.backend.options, f"{cfg.origin} [backend] {be.name!r}"), be.describe())
        # a backend may run a whole detect+landmark pipeline itself (the mediapipe baseline)
        self._pipeline = bool(getattr(self.backend, "runs_whole_pipeline", False))
        self.consumers: list[ConsumerSlot] = []
        try:
            m = cfg.models
            self.landmark_spec = model_spec("landmark", m.manifest, m.landmark)
            self.detector_spec = model_spec("detector", m.manifest, m.detector)
            if not self._pipeline:
                self._landmark = load_runner(self.backend, self.landmark_spec, m.variant, be.describe())
                self._detector = load_runner(self.backend, self.detector_spec, m.variant, be.describe())
            self.crop_scale = self.landmark_spec.crop_scale
            self.min_presence_confidence = self._presence_threshold()
            self._filter_factory = get_component("filter", cfg.filter.name, f"{cfg.origin} [filter]").factory
            self._filter_where = f"{cfg.origin} [filter] {cfg.filter.name!r}"
            build_component(self._filter_factory, cfg.filter.options, self._filter_where)  # validate now
            for i, section in enumerate(cfg.consumers):
                where = section.origin or f"{cfg.origin} [[consumers]] #{i + 1}"
                comp = get_component("consumer", section.name, where)
                obj = build_component(comp.factory, section.options, f"{where} {section.name!r}")
                self.consumers.append(ConsumerSlot(section.name, obj))
            # no output may write an input or share a path (nothing is written before run())
            refuse_clashes(self._outputs(), tracker_inputs(cfg.origin, (self.landmark_spec, self.detector_spec)))
        except Exception:
            for slot in self.consumers:  # release files the earlier consumers opened
                slot.close()
            close = getattr(self.backend, "close", None)  # and the backend (a worker process, sessions)
            if close is not None:
                close()
            raise
        self._async: AsyncSinks | None = None  # live mode's sink thread, during a run(live=True)
        self._pool: ThreadPoolExecutor | None = None  # the detector's thread (overlap_detector)
        self._dropped = 0  # frames live mode dropped in earlier runs
        self._ids = itertools.count(1)
        self.reset()
        self.stats = {"frames": 0, "detector_calls": 0, "filter_errors": 0, "nonfinite_hands": 0,
                      "offframe_hands": 0}
        call_hook_safely("handsdk_on_tracker_start", tracker=self)

    @classmethod
    def from_config(cls, config: str | Path | Mapping[str, Any]) -> Tracker:
        """Build a tracker from a TOML file path or a dict with the same sections."""
        return cls(config)

    # -- state -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every track (a new video)."""
        self._tracks: list[_Track] = []
        self._lost: list[tuple[_Track, int]] = []  # recently lost tracks, with the frame they left
        self._frame_index = 0
        self._last_ts: float | None = None
        self._first_ts: float | None = None  # filters run on time since the stream's first frame
        self._warned_ts = False
        self._size: tuple[int, int] | None = None
        self._next_tile = 0  # process(): the small-hand tile to look at on the next searching frame

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        try:
            self.close()
        except OutputError as later:
            if not isinstance(exc, OutputError):
                raise
            log.error("%s", later)  # a write already failed: that first failure is the one raised

    @property
    def _closed(self) -> bool:
        return self._guard.closed

    def close(self) -> None:
        """Flush and close consumers (writers finish their files) and the backend. Safe to call
        twice and from any thread: a frame being processed on another thread is finished first
        (after ``CLOSE_WAIT_S`` the release is left to that thread, so nothing is released under
        a running frame), and a ``run()`` in progress ends before its next frame. A writer that
        could not finish its file raises its :class:`OutputError` after everything closed."""
        for reader in list(self._readers):  # a run left suspended: its source thread stops
            reader.stop()
        self._guard.close(self._release, CLOSE_WAIT_S)

    def _release(self) -> None:
        """What :meth:`close` releases once no frame is in flight; the first write failure is
        raised after everything else is closed."""
        failed: OutputError | None = None
        if self._async is not None:
            try:
                self._async.close()
            except OutputError as exc:
                failed = exc
        for slot in self.consumers:
            try:
                slot.close()
            except OutputError as exc:
                failed = failed or exc
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()
        call_hook_safely("handsdk_on_tracker_close", tracker=self)
        if failed is not None:
            raise failed

    def _outputs(self) -> list[Any]:
        return [o for slot in self.consumers for o in slot.outputs]

    # -- models ------------------------------------------------------------------------------
    # Models take RGB; frames stay BGR and only the small model inputs are converted.
    def _run_detector(self, bgr: np.ndarray, tiles: list[View] | None = None) -> list[Detection]:
        """Proposals in the whole frame, or in ``tiles`` of it (:func:`small_hand_tiles`)."""
        def run(square: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rgb = cv2.cvtColor(square, cv2.COLOR_BGR2RGB)
            heat, geom = self._detector(rgb[None].astype(np.float32) * (1 / 255.0))[:2]
            self.stats["detector_calls"] += 1
            return heat[0, 0], geom[0]

        t = self.config.tracker
        return detect_hands(run, bgr, self.detector_spec.input_size, self.detector_spec.stride,
                            t.min_detection_confidence, t.max_hands, tiles)

    def _proposals(self, bgr: np.ndarray, tracked: int) -> tuple[list[tuple[Detection, bool]], float]:
        """process(): the detector's proposals in the whole frame, each with whether it came from
        a small-hand tile (with no hand ``tracked``, one tile per frame, in turn), and the
        detector's wall time (ms)."""
        t0 = time.perf_counter()
        proposed = [(d, False) for d in self._run_detector(bgr)]
        tiles = small_hand_tiles(bgr.shape[1], bgr.shape[0]) if self.config.tracker.tile_search and not tracked else []
        if tiles:
            tile = tiles[self._next_tile % len(tiles)]
            self._next_tile += 1
            proposed += [(d, True) for d in self._run_detector(bgr, [tile])]
        return proposed, (time.perf_counter() - t0) * 1000

    def _read_tracked(self, bgr: np.ndarray, tracked: list[_Candidate]) -> list[dict[str, Any]]:
        """process(): one reading per tracked hand, in its crop from the previous frame."""
        held = self._run_landmarks(bgr, [c.rect for c in tracked])
        if self.config.tracker.mirror_tracked and held:
            held = self._with_mirror(bgr, held)
        return held

    def _worker(self) -> ThreadPoolExecutor:
        """The thread that runs the detector beside the tracked hands' landmarks
        (``overlap_detector``); started on first use, shut down by :meth:`close`."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="handsdk-detector")
        return self._pool

    def _run_landmarks(self, bgr: np.ndarray, rects: list[RotatedRect], mirror: bool = False) -> list[dict[str, Any]]:
        """One landmark reading per rect (one batch); with ``mirror`` the crops are read mirrored
        left-right and the answers mapped back (landmarks un-mirrored, handedness swapped)."""
        if not rects:
            return []
        size = self.landmark_spec.input_size
        crops = [cv2.cvtColor(warp_crop(bgr, r, size), cv2.COLOR_BGR2RGB) for r in rects]
        if mirror:
            crops = [c[:, ::-1] for c in crops]
        batch = np.stack(crops).astype(np.float32) * (1 / 255.0)
        lms, conf, presence, right = self._landmark(batch)[:4]
        out = []
        for i, rect in enumerate(rects):
            lm = np.array(lms[i], np.float32)
            r = float(right[i].ravel()[0])
            if mirror:
                lm[:, 0] = 1.0 - lm[:, 0]
                r = 1.0 - r
            out.append({"landmarks": crop_points_to_image(lm, rect), "confidence": conf[i],
                        "presence": float(presence[i].ravel()[0]), "right": r, "rect": rect})
        return out

    def _with_mirror(self, bgr: np.ndarray, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each reading averaged with a reading of its crop mirrored (``mirror_new``,
        ``mirror_tracked``): landmarks weighted by their confidences; presence, confidences and
        handedness averaged. Two views lower the model's own error, and clutter it takes for a
        hand is rarely still a hand mirrored (measured: docs/models.md)."""
        out = []
        for a, b in zip(found, self._run_landmarks(bgr, [f["rect"] for f in found], mirror=True), strict=True):
            wa = np.asarray(a["confidence"], np.float64)[:, None] + 1e-6
            wb = np.asarray(b["confidence"], np.float64)[:, None] + 1e-6
            lm = (a["landmarks"] * wa + b["landmarks"] * wb) / (wa + wb)
            out.append({**a, "landmarks": lm.astype(np.float32),
                        "confidence": (np.asarray(a["confidence"]) + np.asarray(b["confidence"])) / 2,
                        "presence": (a["presence"] + b["presence"]) / 2, "right": (a["right"] + b["right"]) / 2})
        return out

    def _run_landmarks_on_detections(self, bgr: np.ndarray, rects: list[RotatedRect]) -> list[dict[str, Any]]:
        """Landmarks for new detections, one per rect: each crop is tried at the
        ``detector_rotations`` turns (one batch) and the most confident answer (presence × mean
        landmark confidence) kept. The detector's wrist → knuckle direction is unreliable on fists
        and flat hands, and the landmark model reads a hand upside down poorly (measured in
        docs/models.md)."""
        turns = DETECTOR_ROTATIONS[self.config.tracker.detector_rotations]
        if len(turns) == 1 or not rects:
            return self._run_landmarks(bgr, rects)
        tried = self._run_landmarks(bgr, [replace(r, angle=r.angle + t) for r in rects for t in turns])
        return [max(tried[i:i + len(turns)],
                    key=lambda f: (self._is_hand(f), f["presence"] * float(np.mean(f["confidence"]))))
                for i in range(0, len(tried), len(turns))]

    def _usable(self, found: list[dict[str, Any]], size: tuple[int, int]) -> list[dict[str, Any]]:
        """The readings a frame of ``size`` (w, h) can show. A backend that gives NaN or infinity
        for a hand (landmarks, confidences, presence, handedness) loses that hand, counted in
        ``stats["nonfinite_hands"]``: NaN never reaches a :class:`Hand`, a consumer or a jsonl line
        (where it is not JSON). A hand whose landmarks lie wholly outside the frame, or span more
        than ``MAX_HAND_FRAMES`` times its longer side, is dropped too, counted in
        ``stats["offframe_hands"]``: a track never runs away to coordinates no frame has. Both are
        logged (the first three, then every 100th)."""
        keep = []
        for f in found:
            try:
                ok = all(np.isfinite(np.asarray(f[k], np.float64)).all()
                         for k in ("landmarks", "confidence", "presence", "right"))
            except (KeyError, TypeError, ValueError):
                ok = False
            if not ok:
                self.stats["nonfinite_hands"] += 1
                n = self.stats["nonfinite_hands"]
                if worth_logging(n):
                    log.error("backend %r gave non-finite values (NaN or infinity) for a hand on frame %d; "
                              "the hand is dropped (%d so far)", self.config.backend.name, self._frame_index, n)
                continue
            xy = np.asarray(f["landmarks"], np.float64)[:, :2]
            lo, hi = xy.min(0), xy.max(0)
            if (hi >= 0).all() and (lo <= size).all() and (hi - lo).max() <= MAX_HAND_FRAMES * max(size):
                keep.append(f)
                continue
            self.stats["offframe_hands"] += 1
            n = self.stats["offframe_hands"]
            if worth_logging(n):
                log.warning("a hand on frame %d lies outside the %dx%d frame or spans more than %g times it "
                            "(landmark box %.0f..%.0f x %.0f..%.0f); it is dropped (%d so far)", self._frame_index,
                            *size, MAX_HAND_FRAMES, lo[0], hi[0], lo[1], hi[1], n)
        return keep

    def _presence_threshold(self) -> float:
        """``[tracker] min_presence_confidence``, else the landmark model's own threshold: a presence
        head's scale is the model's, measured with the detector it ships with. A whole-pipeline
        backend's ``score`` is its own (MediaPipe's handedness score), already thresholded there."""
        configured = self.config.tracker.min_presence_confidence
        if configured is not None:
            return configured
        return 0.0 if self._pipeline else self.landmark_spec.presence_threshold

    def _is_hand(self, found: dict[str, Any]) -> bool:
        """Whether a landmark reading counts as a hand: presence and mean landmark confidence
        at or above their thresholds (for a hand proposed only by a small-hand tile, a mean
        confidence of at least ``TILE_MIN_LANDMARK_CONFIDENCE`` too)."""
        confidence = float(np.mean(found["confidence"]))
        if found.get("from_tile") and confidence < TILE_MIN_LANDMARK_CONFIDENCE:
            return False
        return (found["presence"] >= self.min_presence_confidence
                and confidence >= self.config.tracker.min_landmark_confidence)

    def _handedness(self, right: float) -> Handedness:
        if self.config.tracker.mirrored:
            right = 1.0 - right
        return Handedness("right", right) if right >= 0.5 else Handedness("left", 1.0 - right)

    def _beside_sure(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """With ``min_confidence_beside_hand`` set: where one hand reads a mean landmark
        confidence at least that, new readings below it are dropped. Beside a real hand, a
        low-confidence reading is mostly a face or clutter (the unseen lab's faces read 0.2-0.33);
        alone, it may be a hard real hand, and stays. A tracked hand is never dropped by it: its
        confidence dips in fast motion."""
        cut = self.config.tracker.min_confidence_beside_hand
        conf = [float(np.mean(f["confidence"])) for f in items]
        if cut <= 0 or not any(c >= cut for c in conf):
            return items
        return [f for f, c in zip(items, conf, strict=True) if c >= cut or f.get("track") is not None]

    @staticmethod
    def _dedupe(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One hand per hand: a hand whose landmarks sit on a more confident one's, or whose
        landmarks' box lies mostly (:data:`TWIN_BOX_OVERLAP`) on that one's, is dropped; if it
        carried a track, the kept hand inherits that track's id. Two hands side by side or
        touching overlap far less (measured: docs/models.md, "Second hands")."""
        kept: list[dict[str, Any]] = []
        for it in sorted(items, key=lambda d: -d["presence"]):
            lm = it["landmarks"][:, :2]
            size = hand_size(lm)
            twin = None
            for k in kept:
                close = float(np.linalg.norm(lm - k["landmarks"][:, :2], axis=1).mean()) < 0.15 * size
                if close or _box_overlap(lm, k["landmarks"][:, :2]) > TWIN_BOX_OVERLAP:
                    twin = k
                    break
            if twin is None:
                kept.append(it)
            elif twin.get("track") is None and it.get("track") is not None:
                twin["track"] = it["track"]
        return kept

    # -- still images ------------------------------------------------------------------------
    def detect(self, image: np.ndarray) -> list[Hand]:
        """Hands in a still image; no temporal state is used or changed.

        The detector proposes crops; the landmark model reads each (at ``detector_rotations``
        turns) and, with ``refine_still``, once more on the crop rebuilt from its own landmarks;
        with ``mirror_new`` the final crop is read again averaged with its mirror image; then
        readings below ``min_presence_confidence`` or ``min_landmark_confidence`` are dropped.
        With ``tile_search`` and fewer than ``max_hands`` hands found with a mean landmark
        confidence of at least ``TILE_MIN_LANDMARK_CONFIDENCE``, the detector looks again at the
        image's 2x2 overlapping tiles, for hands too small to be found in the whole image.
        """
        with self._guard.call() as open_:  # close() on another thread waits for this image
            if not open_:
                raise HandSDKError("this Tracker is closed; create a new one")
            return self._detect(image)

    def _detect(self, image: np.ndarray) -> list[Hand]:
        bgr = as_bgr(image)
        size = (bgr.shape[1], bgr.shape[0])
        t = self.config.tracker
        if self._pipeline:
            found = self._usable(self._external(bgr, still=True), size)
        else:
            found = self._usable(self._read_new(bgr, [d.rect(self.crop_scale) for d in self._run_detector(bgr)]), size)
            hands = self._dedupe([f for f in found if self._is_hand(f)])
            tiles = small_hand_tiles(bgr.shape[1], bgr.shape[0]) if t.tile_search else []
            # clutter the whole frame passed reads a low mean confidence: it does not stop the search
            sure = [h for h in hands if float(np.mean(h["confidence"])) >= TILE_MIN_LANDMARK_CONFIDENCE]
            if tiles and len(sure) < t.max_hands:
                known = [h["rect"] for h in hands]
                rects = [r for r in (d.rect(self.crop_scale) for d in self._run_detector(bgr, tiles))
                         if not any(_same_place(r, k) for k in known)]
                found += [{**f, "from_tile": True} for f in self._usable(self._read_new(bgr, rects), size)]
        found = self._beside_sure(self._dedupe([f for f in found if self._is_hand(f)]))[: t.max_hands]
        hands = [self._make_hand(f, f["landmarks"], i) for i, f in enumerate(found)]
        for slot in self.consumers:
            if slot.kind == "classifier":
                slot.classify(hands, bgr)
        return hands

    def _read_new(self, bgr: np.ndarray, rects: list[RotatedRect]) -> list[dict[str, Any]]:
        """detect(): readings of new proposals, at the detector rotations, refined
        (``refine_still``) and mirrored (``mirror_new``) as configured."""
        t = self.config.tracker
        found = self._run_landmarks_on_detections(bgr, rects)
        if t.refine_still and found:  # before the presence check: a misplaced crop reads low
            again = self._run_landmarks(bgr, [rect_from_landmarks(f["landmarks"], self.crop_scale)
                                              for f in found])
            found = [b if b["presence"] >= a["presence"] - 0.1 else a for a, b in zip(found, again, strict=True)]
        if t.mirror_new and found:
            found = self._with_mirror(bgr, found)
        return found

    def _external(self, bgr: np.ndarray, still: bool) -> list[dict[str, Any]]:
        """Hands from a whole-pipeline backend, shaped like our own model's output."""
        found = self.backend.find_hands(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), still=still)
        for f in found:
            f["rect"] = rect_from_landmarks(f["landmarks"], self.crop_scale)
        return found

    def _match_tracks(self, found: list[dict[str, Any]]) -> None:
        """Give each externally tracked hand the track whose crop holds it (else a new one)."""
        free = list(self._tracks)
        for f in found:
            c = f["landmarks"][:, :2].mean(0)
            best = min(free, key=lambda tr: np.hypot(*(c - np.asarray(tr.rect.center))), default=None)
            if best is not None and np.hypot(*(c - np.asarray(best.rect.center))) < 0.5 * best.rect.size[0]:
                f["track"] = best
                free.remove(best)
            else:
                f["track"] = None

    def _make_hand(self, f: dict[str, Any], landmarks: np.ndarray, track_id: int) -> Hand:
        landmarks = landmarks.astype(np.float32)  # a copy: the caller's array (a track's state) stays as is
        landmarks[:, 2] -= landmarks[0, 2]  # depth relative to the wrist, as documented (the model gives ≈ 0)
        return Hand(landmarks=landmarks, confidence=np.asarray(f["confidence"], np.float32),
                    score=f["presence"], handedness=self._handedness(f["right"]), box=f["rect"],
                    track_id=track_id)

    # -- video -------------------------------------------------------------------------------
    def process(self, frame: np.ndarray, timestamp_ms: float | None = None) -> FrameResult:
        """Track hands in the next video frame; returns a :class:`FrameResult`.

        ``timestamp_ms`` drives the filters; without it frames are assumed ``1000 / fps`` apart.
        A timestamp that repeats or goes backwards is moved just after the previous one; one
        beyond ±2**53 ms (nanoseconds passed as milliseconds) is replaced by a derived one.
        Two threads calling it at once get a :class:`HandSDKError`, not mixed-up tracks; a
        :meth:`close` from another thread waits for the frame in progress.
        """
        return self._process_one(frame, timestamp_ms, "frame")

    def _process_one(self, frame: Any, timestamp_ms: float | None, name: str,
                     path: str | None = None) -> FrameResult:
        if not self._busy.acquire(blocking=False):
            raise HandSDKError("Tracker.process was called from two threads at once; a Tracker holds "
                               "one video's state: use one Tracker per thread (or per stream)")
        try:
            with self._guard.call() as open_:
                if not open_:
                    raise HandSDKError("this Tracker is closed; create a new one")
                return self._process(frame, timestamp_ms, name, path)
        finally:
            self._busy.release()

    def _process(self, frame: np.ndarray, timestamp_ms: float | None, name: str = "frame",
                 path: str | None = None) -> FrameResult:
        t0 = time.perf_counter()
        bgr = as_bgr(frame, name)
        ts = self._timestamp(timestamp_ms)
        size = (bgr.shape[1], bgr.shape[0])
        if self._tracks and size != self._size:
            log.info("frame size changed from %s to %s: tracks restart", self._size, size)
            self._tracks = []
        self._size = size
        cfg = self.config.tracker
        t1 = time.perf_counter()
        timings = {"preprocess": (t1 - t0) * 1000}
        tracked = [_Candidate(tr.rect, tr) for tr in self._tracks]
        periodic = cfg.detector_interval and self._frame_index % cfg.detector_interval == 0
        n = len(self._tracks)  # no hand tracked: look every frame; some: every new_hand_interval frames
        searching = n < cfg.max_hands and (n == 0 or self._frame_index % cfg.new_hand_interval == 0)
        ran_detector = not self._pipeline and bool(searching or periodic)
        held_ms = 0.0  # overlap_detector: the tracked hands' reading, done while the detector ran
        if self._pipeline:
            t2 = time.perf_counter()
            timings["detect"] = (t2 - t1) * 1000
            found = self._external(bgr, still=False)
            self._match_tracks(found)
        else:
            held: list[dict[str, Any]] | None = None
            if ran_detector and tracked and cfg.overlap_detector is not False:
                # the tracked crops need nothing from this frame's detector: read them on this
                # thread while the detector looks for more hands on another (a second core)
                pending = self._worker().submit(self._proposals, bgr, n)
                try:
                    held = self._read_tracked(bgr, tracked)
                except BaseException:
                    wait([pending])  # no model call outlives its frame
                    raise
                held_ms = (time.perf_counter() - t1) * 1000
                proposed, timings["detect"] = pending.result()
            elif ran_detector:
                proposed, timings["detect"] = self._proposals(bgr, n)
            else:
                proposed, timings["detect"] = [], 0.0
            t2 = time.perf_counter()
            new = []
            for det, from_tile in proposed:
                rect = det.rect(self.crop_scale)
                if any(_same_place(rect, c.rect) for c in tracked + new):
                    continue
                new.append(_Candidate(rect, None, from_tile))
            fresh = self._run_landmarks_on_detections(bgr, [c.rect for c in new])
            if cfg.mirror_new and fresh:
                fresh = self._with_mirror(bgr, fresh)
            if held is None:
                held = self._read_tracked(bgr, tracked)
            found = held + fresh
            for f, c in zip(found, tracked + new, strict=True):
                f["track"] = c.track
                f["from_tile"] = c.from_tile
        found = [f for f in self._usable(found, size) if self._is_hand(f)]
        found = self._beside_sure(self._dedupe(found))[: cfg.max_hands]
        t3 = time.perf_counter()
        timings["landmarks"] = (t3 - t2) * 1000 + held_ms
        tracks, hands = [], []
        kept = {id(f["track"]) for f in found if f["track"] is not None}
        self._lost = [(tr, i) for tr, i in self._lost if self._frame_index - i <= LOST_TRACK_FRAMES]
        self._lost += [(tr, self._frame_index) for tr in self._tracks if id(tr) not in kept]
        for f in found:
            tr = f["track"]
            if tr is None:
                tr = self._revive(f["rect"]) or _Track(
                    next(self._ids), f["rect"],
                    build_component(self._filter_factory, self.config.filter.options, self._filter_where))
            tr.raw = f["landmarks"]
            tr.rect = rect_from_landmarks(f["landmarks"], self.crop_scale)
            smooth = self._smoothed(tr, f["landmarks"], ts)
            tracks.append(tr)
            hands.append(self._make_hand(f, np.asarray(smooth, np.float32), tr.id))
        self._tracks = tracks
        t4 = time.perf_counter()
        timings["smooth"] = (t4 - t3) * 1000
        timings["pipeline"] = (t4 - t0) * 1000  # what consumers can show as processing FPS
        result = FrameResult(self._frame_index, ts, hands, (bgr.shape[1], bgr.shape[0]), timings, ran_detector,
                             path)
        self._frame_index += 1
        self.stats["frames"] += 1
        self._emit(result, bgr)
        timings["emit"] = (time.perf_counter() - t4) * 1000
        timings["total"] = (time.perf_counter() - t0) * 1000
        return result

    def _smoothed(self, track: _Track, raw: np.ndarray, ts: float) -> np.ndarray:
        """The track's filter output, checked: a filter plugin that raises or returns another
        shape or non-finite values is logged and counted, and the hand keeps its raw landmarks
        (its filter restarts) — a broken filter must not stop tracking or emit NaN hands."""
        try:
            # seconds since the stream's first frame: its differences stay exact at any magnitude
            out = np.asarray(track.filter(raw.astype(np.float64), (ts - (self._first_ts or 0.0)) / 1000.0),
                             np.float64)
            if out.shape != raw.shape or not np.isfinite(out).all():
                raise ValueError(f"returned {'a non-finite array' if out.shape == raw.shape else f'shape {out.shape}'}"
                                 f" for landmarks of shape {raw.shape}")
            return out
        except Exception as exc:
            self.stats["filter_errors"] += 1
            n = self.stats["filter_errors"]
            if worth_logging(n):
                log.error("filter %r failed on frame %d (%d errors so far): %s; the hand keeps its "
                          "unfiltered landmarks", self.config.filter.name, self._frame_index, n, exc)
            with contextlib.suppress(Exception):
                track.filter.reset()
            return raw.astype(np.float64)

    def _revive(self, rect: RotatedRect) -> _Track | None:
        """A track lost in the last few frames where this new hand is: the same hand, same id
        (a hand flickering at the frame's edge keeps its id); its filter restarts."""
        best = None
        for tr, _ in self._lost:
            d = float(np.hypot(*np.subtract(rect.center, tr.rect.center)))
            if d < max(rect.size[0], tr.rect.size[0]) and (best is None or d < best[0]):
                best = (d, tr)
        if best is None:
            return None
        tr = best[1]
        self._lost = [(t, i) for t, i in self._lost if t is not tr]
        tr.filter.reset()
        return tr

    def _timestamp(self, timestamp_ms: float | None) -> float:
        """This frame's time (ms): the caller's, moved just after the previous one if it is not
        later; or derived from ``tracker.fps`` when none is given or it is beyond
        :data:`MAX_TIMESTAMP_MS`, where float64 cannot tell frames apart (with a warning, once per
        stream). Always finite and strictly increasing."""
        step = 1000.0 / self.config.tracker.fps
        ts: float | None = None
        if timestamp_ms is not None:
            try:
                ts = float(timestamp_ms)
            except (TypeError, ValueError):
                raise ConfigError(f"timestamp_ms must be a number, got {timestamp_ms!r}") from None
            if not np.isfinite(ts):
                raise ConfigError(f"timestamp_ms must be finite, got {timestamp_ms!r}")
            if abs(ts) > MAX_TIMESTAMP_MS:
                if not self._warned_ts:
                    self._warned_ts = True
                    log.warning("timestamp %r ms is beyond ±2**53 ms, where frames cannot be told apart "
                                "to the millisecond (nanoseconds passed as milliseconds?): frame times "
                                "are derived from tracker.fps (%g) instead", timestamp_ms, self.config.tracker.fps)
                ts = None
        if ts is None:
            ts = self._frame_index * step if self._last_ts is None else max(self._frame_index * step,
                                                                            self._last_ts + step)
        elif self._last_ts is not None and ts <= self._last_ts:
            later = max(self._last_ts + 0.001, float(np.nextafter(self._last_ts, np.inf)))
            log.debug("timestamp %.3f ms is not after %.3f ms; using %.3f", ts, self._last_ts, later)
            ts = later
        self._last_ts = ts
        if self._first_ts is None:
            self._first_ts = ts
        return ts

    def _emit(self, result: FrameResult, frame: np.ndarray) -> None:
        sinks = []
        for slot in self.consumers:
            if slot.kind == "classifier":
                slot(result, frame)
            else:
                sinks.append(slot)
        if self._async is not None:
            self._async.put(result, frame)
        else:
            for slot in sinks:
                slot(result, frame)
        call_hook_safely("handsdk_on_result", result=result)

    def run(self, source: Any = None, *, live: bool = False, max_frames: int | None = None,
            stall_timeout: float | None = None, **source_options: Any) -> Iterator[FrameResult]:
        """Track every frame of ``source``: a camera index, a video, an image, a folder,
        ``"synthetic"``, or any iterable of frames, ``(frame, timestamp_ms)`` pairs or objects with
        ``.image`` and ``.timestamp_ms`` (the frames of :func:`handsdk.synthetic.synthetic_clip`).

        ``live=True`` runs sink consumers on a worker thread behind a bounded queue that drops
        the oldest frames when they fall behind (``tracker.dropped_frames`` counts them).
        ``stall_timeout`` (seconds; default 5 for cameras, none otherwise) ends the run when the
        source delivers nothing for that long instead of waiting forever.
        """
        cfg_src = self.config.source
        if source is None and cfg_src is None:
            raise ConfigError("Tracker.run needs a source: pass one or set [source] in the config")
        name = where = None
        if source is None:
            source, name, where = cfg_src.options.get("spec"), cfg_src.name, f"{self.config.origin} [source]"
            source_options = {**{k: v for k, v in cfg_src.options.items() if k != "spec"}, **source_options}
        refuse_clashes(self._outputs(), [("the source", p) for p in input_paths(source)])
        if self._closed:
            raise HandSDKError("this Tracker is closed; create a new one")
        if stall_timeout is None and isinstance(source, int) and not isinstance(source, bool):
            stall_timeout = 5.0
        if stall_timeout is not None and not (isinstance(stall_timeout, (int, float)) and not isinstance(
                stall_timeout, bool) and _finite(stall_timeout) and stall_timeout > 0):
            raise ConfigError(f"stall_timeout must be a number of seconds > 0 (or None: no timeout), "
                              f"got {stall_timeout!r}")
        self.reset()
        src = source if _is_frame_iterable(source) else open_source(source, name, where, **source_options)
        owned = src is not source  # the run closes what it opened, on the thread that reads it
        fps = sane_fps(getattr(src, "fps", None), f"the source {type(src).__name__}") or self.config.tracker.fps
        reader = None
        if stall_timeout:
            reader = ReadAhead(src, stall_timeout, getattr(src, "close", None) if owned else None)
            self._readers.add(reader)
        frames = reader if reader is not None else iter(src)
        i = 0
        skipped: list[str] = []  # photos the tracker could not take
        bad_times = 0
        try:
            if live and self._async is None:
                self._async = AsyncSinks([s for s in self.consumers if s.kind != "classifier"])
            for slot in self.consumers:  # outputs are created now: a bad one fails before any frame
                slot.open()
            while max_frames is None or i < max_frames:
                if self._closed:  # close() from another thread: the run ends here
                    log.info("the tracker was closed: the run ends after %d frames", i)
                    return
                try:
                    item = next(frames)
                except StopIteration:
                    if i == 0 and skipped:
                        raise SourceError(f"no frame of the source could be tracked: {len(skipped)} skipped "
                                          f"({'; '.join(skipped[:3])}{'; …' if len(skipped) > 3 else ''})") from None
                    if i == 0 and not self._closed and (owned or isinstance(src, Source)):  # not a [] list
                        why = (f"nothing within the stall timeout of {stall_timeout:g} s"
                               if reader is not None and reader.stalled else "it ended at once")
                        what = next((getattr(src, a) for a in ("spec", "path", "folder") if hasattr(src, a)), source)
                        raise SourceError(f"the source {_describe_spec(what)} gave no frames ({why})") from None
                    return
                except Exception as exc:  # a camera unplugged, a file cut short: end cleanly
                    if i == 0:
                        if isinstance(exc, SourceError):
                            raise
                        raise SourceError(f"the source failed before its first frame: {exc}") from exc
                    log.error("source failed after %d frames (%s: %s); ending the run", i,
                              type(exc).__name__, exc)
                    return
                frame, ts, path = _unpack(item)
                if ts is not None and not _finite(ts):
                    bad_times += 1
                    if worth_logging(bad_times):
                        log.warning("the source gave frame %d the timestamp %r: derived from its frame rate "
                                    "(%g fps) instead", i, ts, fps)
                    ts = None
                label = f"frame {i} of the source" if path is None else f"photo {path}"
                try:
                    result = self._process_one(frame, i * 1000.0 / fps if ts is None else ts, label, path)
                except FrameError as exc:
                    if path is None:
                        raise
                    skipped.append(str(exc))  # one bad photo does not end the run
                    log.warning("skipping %s", exc)
                    continue
                except HandSDKError:
                    if self._closed:
                        log.info("the tracker was closed: the run ends after %d frames", i)
                        return
                    raise
                yield result
                i += 1
        finally:
            if reader is not None:  # its thread closes the source after its last read
                self._readers.discard(reader)
                reader.close()
            elif owned:  # this thread read it, and no read is in progress: close here
                close = getattr(src, "close", None)
                if close is not None:
                    close()
            if live and self._async is not None:  # the sinks finish what is queued; later calls run them inline
                sinks, self._async = self._async, None
                try:
                    sinks.close()  # raises a writer's OutputError
                finally:
                    self._dropped += sinks.dropped

    @property
    def dropped_frames(self) -> int:
        """Frames live mode did not hand to the sinks because they fell behind (all runs so far)."""
        return self._dropped + (self._async.dropped if self._async is not None else 0)


def _box_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap of two point sets' axis-aligned boxes: the intersection over the smaller box."""
    lo, hi = np.maximum(a.min(0), b.min(0)), np.minimum(a.max(0), b.max(0))
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    smaller = min(float(np.prod(a.max(0) - a.min(0))), float(np.prod(b.max(0) - b.min(0))))
    return inter / smaller if smaller > 0 else 1.0


def _same_place(rect: RotatedRect, other: RotatedRect) -> bool:
    """Whether a proposed crop is (nearly) one already held, so it is not read twice."""
    return (rect_iou(rect, other) > 0.3
            or float(np.hypot(*np.subtract(rect.center, other.center))) < 0.3 * other.size[0])


def _unpack(item: Any) -> tuple[Any, Any, str | None]:
    """A source's item as (frame, timestamp or None, the file it came from or None)."""
    path = getattr(item, "path", None)
    path = str(path) if isinstance(path, (str, Path)) else None
    if isinstance(item, tuple) and len(item) == 2:
        return item[0], item[1], path
    if hasattr(item, "image"):
        return item.image, getattr(item, "timestamp_ms", None), path
    return item, None, path


def _finite(value: Any) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False


def _describe_spec(spec: Any) -> str:
    text = repr(str(spec) if isinstance(spec, Path) else spec)
    return text if len(text) <= 120 else text[:120] + "…"


def _is_frame_iterable(obj: Any) -> bool:
    """Frames to iterate directly (a list, a generator, an opened source), not a spec to open."""
    if isinstance(obj, (str, bytes, Path, int, np.ndarray)):
        return False
    return isinstance(obj, Iterable) and not isinstance(obj, Mapping)
