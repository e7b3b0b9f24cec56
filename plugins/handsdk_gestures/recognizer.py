"""The ``gesture_recognizer`` consumer: canned + custom gestures, with per-track hysteresis."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from handsdk.config import number_option
from handsdk.consumers import LabelSwitch
from handsdk.errors import ConfigError
from handsdk.types import FrameResult, Hand, Label

from .library import GestureLibrary
from .rules import CANNED_RULES, Rule, hand_features

NONE = "None"
_WHERE = "gesture_recognizer"


def _bad(option: str, valid: str, value: Any) -> ConfigError:
    return ConfigError(f"{_WHERE}: option {option!r} must be {valid}, got {value!r}")


@dataclass
class _TrackState:
    ema: dict[str, float]  # running average of the rule scores
    label: LabelSwitch


class GestureRecognizer:
    """Labels every hand with ``hand.labels[key] = Label(name, score)``.

    Names: MediaPipe's canned set (``None``, ``Closed_Fist``, ``Open_Palm``, ``Pointing_Up``,
    ``Thumb_Down``, ``Thumb_Up``, ``Victory``, ``ILoveYou``) plus the gestures of a custom
    library. Scores are in [0, 1]; for ``None`` the score is 1 minus the best gesture's score.

    Options (config keys of ``[[consumers]] name = "gesture_recognizer"``):

    ``min_score`` (0.5)
        a canned gesture needs at least this rule score, else the hand is ``None``.
    ``min_frames`` (3)
        video: a new label replaces the current one of a track only after winning this many
        consecutive frames ...
    ``switch_margin`` (0.3)
        ... or at once when its smoothed score beats the current label's by this much (a clean
        change of gesture then shows after 2 frames; a one-frame blip never shows).
    ``smoothing`` (0.5)
        video: weight of the newest frame in each track's running average of the scores
        (1 = no averaging).
    ``custom`` (none)
        path of a custom-gesture JSON (:class:`~handsdk_gestures.GestureLibrary`) or a library
        object; a custom gesture within its threshold wins over the canned rules.
    ``custom_threshold`` (the file's, default 0.08)
        overrides the library's match threshold (RMS feature distance).
    ``gestures`` (all)
        which canned gestures to consider (a list of names; ``[]`` for custom gestures only).
    ``key`` ("gesture")
        the ``hand.labels`` key written.

    Still images (:meth:`classify`, used by ``Tracker.detect``) get the same labels from the
    single frame, without any temporal state. Hands without a track id (-1) are labelled
    frame by frame too.
    """

    kind = "classifier"
    #: name -> rule; subclasses (plugins) may extend or replace it, see the package docstring.
    rules: Mapping[str, Rule] = CANNED_RULES

    def __init__(self, min_score: float = 0.5, min_frames: int = 3, switch_margin: float = 0.3,
                 smoothing: float = 0.5, custom: str | Path | GestureLibrary | None = None,
                 custom_threshold: float | None = None, gestures: Iterable[str] | None = None,
                 key: str = "gesture"):
        self.min_score = number_option(_WHERE, "min_score", min_score, 0.0, 1.0)
        if isinstance(min_frames, bool) or not isinstance(min_frames, int) or min_frames < 1:
            raise _bad("min_frames", "an integer >= 1", min_frames)
        self.min_frames = min_frames
        self.switch_margin = number_option(_WHERE, "switch_margin", switch_margin, 0.0, 1.0)
        self.smoothing = number_option(_WHERE, "smoothing", smoothing, 0.0, 1.0, lo_open=True)
        if not isinstance(key, str) or not key:
            raise _bad("key", "a non-empty string", key)
        self.key = key
        valid = [n for n in self.rules if n != NONE]
        if gestures is None:
            self.gestures = tuple(valid)
        else:
            if isinstance(gestures, (str, bytes)) or not isinstance(gestures, Iterable):
                raise _bad("gestures", f"a list of gesture names from: {', '.join(valid)}", gestures)
            names = list(gestures)
            unknown = [n for n in names if n not in valid]
            if unknown:
                raise ConfigError(f"{_WHERE}: option 'gestures' has unknown gesture(s) "
                                  f"{', '.join(map(repr, unknown))}; valid values: {', '.join(valid)}")
            self.gestures = tuple(dict.fromkeys(names))
        self.library = self._load_library(custom, custom_threshold)
        self._tracks: dict[int, _TrackState] = {}

    @staticmethod
    def _load_library(custom: Any, threshold: Any) -> GestureLibrary | None:
        if custom is None:
            lib = None
        elif isinstance(custom, GestureLibrary):
            lib = custom
        elif isinstance(custom, (str, Path)):
            try:
                lib = GestureLibrary.load(custom)
            except ConfigError as exc:
                raise ConfigError(f"{_WHERE}: option 'custom': {exc}") from None
        else:
            raise _bad("custom", "the path of a custom-gesture JSON file (GestureLibrary.save)", custom)
        if threshold is not None:
            ok = (isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
                  and math.isfinite(threshold) and threshold > 0)
            if not ok:
                raise _bad("custom_threshold", "a number > 0", threshold)
            if lib is None:
                raise ConfigError(f"{_WHERE}: option 'custom_threshold' needs option 'custom'")
            if lib is custom:  # do not change the caller's object behind its back
                lib = GestureLibrary.from_dict(lib.to_dict())
            lib.threshold = float(threshold)
        return lib

    # -- single frame ------------------------------------------------------------------------
    def scores(self, landmarks: Any) -> dict[str, float]:
        """Every gesture's score for one hand's landmarks (no temporal state).

        When a custom gesture matches (score >= 0.5), the canned scores are capped at
        1 - its score, so the custom gesture wins.
        """
        lm = getattr(landmarks, "landmarks", landmarks)
        out: dict[str, float] = {}
        if self.gestures:
            feats = hand_features(lm)
            out = {name: float(self.rules[name](feats)) for name in self.gestures}
        if self.library is not None and len(self.library):
            custom = self.library.scores(lm)
            best = max(custom.values())
            if best >= 0.5:
                out = {n: min(s, 1.0 - best) for n, s in out.items()}
            for n, s in custom.items():
                out[n] = max(out.get(n, 0.0), s)
        return out

    def decide(self, scores: Mapping[str, float]) -> Label:
        """The label for a score table: a matched custom gesture first, then the best canned
        gesture at or above ``min_score``, else ``None`` (score 1 - best score)."""
        custom = self.library.names if self.library is not None else []
        matched = [n for n in custom if scores.get(n, 0.0) >= 0.5]
        if matched:
            name = max(matched, key=lambda n: scores[n])
            return Label(name, float(scores[name]))
        canned = [n for n in scores if n not in custom and scores[n] >= self.min_score]
        if canned:
            name = max(canned, key=lambda n: scores[n])
            return Label(name, float(scores[name]))
        return Label(NONE, self._none_score(scores))

    @staticmethod
    def _none_score(scores: Mapping[str, float]) -> float:
        return float(min(1.0, max(0.0, 1.0 - max(scores.values(), default=0.0))))

    def recognize(self, landmarks: Any) -> Label:
        """The label of one hand's (21, 3) landmarks, from this frame alone."""
        return self.decide(self.scores(landmarks))

    def classify(self, hands: list[Hand], image: np.ndarray | None = None) -> None:
        """Label the hands of a still image in place (no temporal state)."""
        for hand in hands:
            hand.labels[self.key] = self.recognize(hand.landmarks)

    # -- video -------------------------------------------------------------------------------
    def __call__(self, result: FrameResult, frame: np.ndarray | None = None) -> None:
        seen = set()
        for hand in result.hands:
            raw = self.scores(hand.landmarks)
            if hand.track_id < 0:
                hand.labels[self.key] = self.decide(raw)
                continue
            seen.add(hand.track_id)
            hand.labels[self.key] = self._update(hand.track_id, raw)
        for tid in [t for t in self._tracks if t not in seen]:  # the track ended
            del self._tracks[tid]

    def _value(self, name: str, ema: Mapping[str, float]) -> float:
        return self._none_score(ema) if name == NONE else float(ema.get(name, 0.0))

    def _update(self, track_id: int, raw: dict[str, float]) -> Label:
        st = self._tracks.get(track_id)
        if st is None:
            label = LabelSwitch(self.decide(raw).name, self.min_frames, self.switch_margin)
            st = self._tracks[track_id] = _TrackState(dict(raw), label)
        else:
            a = self.smoothing
            st.ema = {n: (1 - a) * st.ema.get(n, 0.0) + a * raw.get(n, 0.0) for n in raw.keys() | st.ema.keys()}
            cand = self.decide(st.ema).name
            st.label.update(cand, self._value(cand, st.ema) - self._value(st.label.current, st.ema))
        return Label(st.label.current, self._value(st.label.current, st.ema))

    def reset(self) -> None:
        """Forget every track's state (a new video)."""
        self._tracks.clear()

    def close(self) -> None:
        self.reset()
