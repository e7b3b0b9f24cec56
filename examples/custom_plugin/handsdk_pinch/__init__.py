"""A pinch detector for handsdk, packaged as a third-party plugin would be.

``pip install -e examples/custom_plugin`` registers the ``pinch`` consumer through the
``handsdk`` entry-point group; a config then uses it with::

    [[consumers]]
    name = "pinch"
    threshold = 0.25   # pinch starts when the ratio drops below this
    release = 0.35     # and ends when it rises above this (hysteresis)

The measure is the thumb tip (4) to index tip (8) distance divided by the hand size, the wrist
(0) to middle-finger MCP (9) distance, both in the image plane (x, y): it does not change with
the hand's distance to the camera or its rotation in the image.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from handsdk import hookimpl
from handsdk.types import FrameResult, Hand, Label

__all__ = ["PinchDetector", "pinch_ratio"]
__version__ = "0.1.0"

log = logging.getLogger(__name__)

WRIST, THUMB_TIP, INDEX_TIP, MIDDLE_MCP = 0, 4, 8, 9
_MIN_HAND_SIZE = 1e-6  # pixels: below this the hand is degenerate and left unlabelled


@hookimpl
def handsdk_register_consumers(register) -> None:
    register("pinch", PinchDetector)


def pinch_ratio(landmarks: np.ndarray) -> float:
    """Thumb-tip to index-tip distance over wrist to middle-MCP distance (x, y only).

    NaN when the landmarks are not finite or the hand has no size.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[0] < 21 or lm.shape[1] < 2:
        raise ValueError(f"landmarks must be (21, 2) or (21, 3), got shape {lm.shape}")
    xy = lm[:, :2]
    size = float(np.linalg.norm(xy[MIDDLE_MCP] - xy[WRIST]))
    gap = float(np.linalg.norm(xy[INDEX_TIP] - xy[THUMB_TIP]))
    if not (math.isfinite(size) and math.isfinite(gap)) or size < _MIN_HAND_SIZE:
        return math.nan
    return gap / size


class PinchDetector:
    """Classifier consumer: ``hand.labels["pinch"]`` is ``"pinch"`` or ``"open"``.

    Per ``hand.track_id`` a pinch *starts* when the ratio falls below ``threshold`` and *ends*
    when it rises above ``release`` (``release >= threshold``); in between the state holds, so
    landmark jitter around one threshold does not flicker. Transitions are appended to
    :attr:`events` as ``("pinch_start" | "pinch_end", track_id, frame_index, timestamp_ms)`` and
    logged. A track that disappears while pinching gets its ``pinch_end`` on the first frame
    without it.

    The label's score is how clearly the ratio sits on the label's side of the band between the
    two thresholds (a logistic around their midpoint): near 1 for a firm pinch or a wide-open
    hand, below 0.5 while a held state is inside the hysteresis band.
    """

    kind = "classifier"

    def __init__(self, threshold: float = 0.25, release: float = 0.35) -> None:
        for name, value in (("threshold", threshold), ("release", release)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"pinch: {name} must be a finite number, got {value!r}")
            if value <= 0:
                raise ValueError(f"pinch: {name} must be > 0, got {value!r}")
        if release < threshold:
            raise ValueError(f"pinch: release ({release}) must be >= threshold ({threshold})")
        self.threshold = float(threshold)
        self.release = float(release)
        self.events: list[tuple[str, int, int, float]] = []
        self._pinching: dict[int, bool] = {}

    # -- scoring ---------------------------------------------------------------------------
    def _pinch_strength(self, ratio: float) -> float:
        """0..1, 0.5 at the middle of the [threshold, release] band, ~0.98 at threshold."""
        mid = 0.5 * (self.threshold + self.release)
        width = max(self.release - self.threshold, 0.02 * mid) / 8.0
        z = (mid - ratio) / width
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def _label(self, pinching: bool, ratio: float) -> Label:
        p = self._pinch_strength(ratio)
        return Label("pinch", p) if pinching else Label("open", 1.0 - p)

    # -- consumer --------------------------------------------------------------------------
    def _event(self, kind: str, track_id: int, result: FrameResult) -> None:
        event = (kind, int(track_id), int(result.frame_index), float(result.timestamp_ms))
        self.events.append(event)
        log.info("%s: track %d at frame %d (%.1f ms)", *event)

    def __call__(self, result: FrameResult, frame: np.ndarray | None) -> None:
        seen: set[int] = set()
        for hand in result.hands:
            ratio = pinch_ratio(hand.landmarks)
            if hand.track_id < 0:  # no track (a hand-made result): label it, keep no state
                if not math.isnan(ratio):
                    hand.labels["pinch"] = self._label(ratio < self.threshold, ratio)
                continue
            seen.add(hand.track_id)
            was = self._pinching.get(hand.track_id, False)
            if math.isnan(ratio):  # degenerate landmarks: no label, state unchanged
                self._pinching[hand.track_id] = was
                continue
            now = ratio <= self.release if was else ratio < self.threshold
            if now != was:
                self._event("pinch_start" if now else "pinch_end", hand.track_id, result)
            self._pinching[hand.track_id] = now
            hand.labels["pinch"] = self._label(now, ratio)
        for track_id in [t for t in self._pinching if t not in seen]:  # tracks that ended
            if self._pinching.pop(track_id):
                self._event("pinch_end", track_id, result)

    def classify(self, hands: list[Hand], image: np.ndarray | None) -> None:
        """Still images (``Tracker.detect``): no history, so a pinch is ``ratio < threshold``."""
        for hand in hands:
            ratio = pinch_ratio(hand.landmarks)
            if not math.isnan(ratio):
                hand.labels["pinch"] = self._label(ratio < self.threshold, ratio)

    def reset(self) -> None:
        """Forget every track's state (the recorded events stay)."""
        self._pinching.clear()

    def close(self) -> None:
        if self.events:
            starts = sum(e[0] == "pinch_start" for e in self.events)
            log.info("pinch: %d pinch(es) over %d event(s)", starts, len(self.events))
