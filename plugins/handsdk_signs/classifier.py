"""The ``sign_classifier`` consumer: one static sign per hand, with light per-track smoothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from handsdk.config import number_option
from handsdk.consumers import LabelSwitch
from handsdk.errors import ConfigError
from handsdk.types import FrameResult, Hand, Label

from .features import sign_features
from .model import SignModel
from .motion import MotionLetters

_WHERE = "sign_classifier"
#: Vocabularies shipped in ``models/signs/``.
BUILTIN = ("asl_letters", "digits")


def vocabulary_dir() -> Path:
    """Where the shipped vocabularies live: ``<models>/signs`` (``$HANDSDK_MODELS`` honoured)."""
    from handsdk.models import bundled_models_dir

    return bundled_models_dir() / "signs"


def resolve_vocabulary(vocabulary: str | Path) -> Path:
    """A vocabulary name (``asl_letters``, ``digits``, or any ``<models>/signs/<name>.json``) or
    the path of a vocabulary file (relative paths are relative to the working directory)."""
    if not isinstance(vocabulary, (str, Path)) or not str(vocabulary).strip():
        raise ConfigError(f"{_WHERE}: option 'vocabulary' must be one of {', '.join(BUILTIN)} or "
                          f"the path of a vocabulary .json file, got {vocabulary!r}")
    text = str(vocabulary)
    looks_like_path = isinstance(vocabulary, Path) or text.endswith(".json") or "/" in text or "\\" in text
    if looks_like_path:
        return Path(text).expanduser()
    path = vocabulary_dir() / f"{text}.json"
    if not path.is_file():
        shipped = sorted(p.stem for p in vocabulary_dir().glob("*.json")) or list(BUILTIN)
        raise ConfigError(f"{_WHERE}: unknown vocabulary {text!r}; available: {', '.join(shipped)} "
                          f"(or the path of a .json file from python -m handsdk_signs.train)")
    return path


def load_vocabulary(vocabulary: str | Path | SignModel) -> SignModel:
    if isinstance(vocabulary, SignModel):
        return vocabulary
    path = resolve_vocabulary(vocabulary)
    try:
        return SignModel.load(path)
    except ConfigError as exc:
        raise ConfigError(f"{_WHERE}: option 'vocabulary': {exc}") from None


@dataclass
class _Track:
    probs: np.ndarray  # running average of the class probabilities
    label: LabelSwitch  # of class indices


class SignClassifier:
    """Labels every hand with ``hand.labels[key] = Label(sign, score)``.

    Names are the vocabulary's labels ("A".."Z" for ``asl_letters``, "0".."9" for ``digits``);
    the score is the model's probability of that sign (smoothed in video).

    Handedness: the features mirror a left hand to a right one, and the classifier scores
    both mirror images of the hand and averages them, so its answer does not depend on the
    tracker's handedness at all (on the held-out ASL photos, presumably all of the same hand,
    it disagrees with the majority on about 1 in 5: many show the back of the hand).

    Options (config keys of ``[[consumers]] name = "sign_classifier"``):

    ``vocabulary`` ("asl_letters")
        ``"asl_letters"``, ``"digits"``, another name in ``models/signs/``, or the path of a
        vocabulary file made by ``python -m handsdk_signs.train --folder ...``.
    ``smoothing`` (0.5)
        video: weight of the newest frame in each track's running average of the class
        probabilities (1 = none).
    ``min_frames`` (2)
        video: a new sign replaces the current one of a track after leading this many
        consecutive frames, or at once when it leads by ``switch_margin`` (0.25).
    ``key`` ("sign")
        the ``hand.labels`` key written.
    ``motion`` (true)
        video: recognise J and Z from the fingertip's trajectory (:mod:`handsdk_signs.motion`)
        when the vocabulary has them; the letter is reported for ``hold_ms`` after its stroke.

    Still images (:meth:`classify`, used by ``Tracker.detect``) are labelled from the single
    frame. Hands without a track id (-1) are labelled frame by frame.
    """

    kind = "classifier"

    def __init__(self, vocabulary: str | Path | SignModel = "asl_letters", smoothing: float = 0.5,
                 min_frames: int = 2, switch_margin: float = 0.25, key: str = "sign",
                 motion: bool = True):
        self.model = load_vocabulary(vocabulary)
        self.smoothing = number_option(_WHERE, "smoothing", smoothing, 0.0, 1.0, lo_open=True)
        if isinstance(min_frames, bool) or not isinstance(min_frames, int) or min_frames < 1:
            raise ConfigError(f"{_WHERE}: option 'min_frames' must be an integer >= 1, got {min_frames!r}")
        self.min_frames = min_frames
        self.switch_margin = number_option(_WHERE, "switch_margin", switch_margin, 0.0, 1.0)
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{_WHERE}: option 'key' must be a non-empty string, got {key!r}")
        self.key = key
        if not isinstance(motion, bool):
            raise ConfigError(f"{_WHERE}: option 'motion' must be true or false, got {motion!r}")
        moving = "".join(c for c in "JZ" if c in self.model.labels)
        self.motion = MotionLetters(moving) if motion and moving else None
        self._tracks: dict[int, _Track] = {}

    @property
    def labels(self) -> list[str]:
        return list(self.model.labels)

    # -- single frame ------------------------------------------------------------------------
    def probabilities(self, landmarks: Any, handedness: str | None = None) -> np.ndarray:
        """Class probabilities (in :attr:`labels` order) of one hand, from this frame alone.

        ``landmarks`` is a (21, 3) array or a :class:`~handsdk.types.Hand`. The result is the
        mean over the hand and its mirror image, so ``handedness`` does not change it."""
        if isinstance(landmarks, Hand):
            handedness = handedness or landmarks.handedness.label
            landmarks = landmarks.landmarks
        h = "left" if str(handedness).lower() == "left" else "right"
        o = self.model.orientation
        x = np.stack([sign_features(landmarks, h, o), sign_features(landmarks, OTHER_HAND[h], o)])
        return self.model.predict_proba(x).mean(axis=0)

    def predict(self, landmarks: Any, handedness: str | None = None) -> Label:
        """The sign of one hand's landmarks (or :class:`Hand`), from this frame alone."""
        p = self.probabilities(landmarks, handedness)
        k = int(np.argmax(p))
        return Label(self.model.labels[k], float(p[k]))

    def classify(self, hands: list[Hand], image: np.ndarray | None = None) -> None:
        """Label the hands of a still image in place (no temporal state)."""
        for hand in hands:
            hand.labels[self.key] = self.predict(hand)

    # -- video -------------------------------------------------------------------------------
    def __call__(self, result: FrameResult, frame: np.ndarray | None = None) -> None:
        seen = set()
        for hand in result.hands:
            p = self.probabilities(hand)
            if hand.track_id < 0:
                k = int(np.argmax(p))
                hand.labels[self.key] = Label(self.model.labels[k], float(p[k]))
                continue
            seen.add(hand.track_id)
            label = self._update(hand.track_id, p)
            if self.motion is not None:
                label = self.motion.update(hand.track_id, hand.landmarks, result.timestamp_ms) or label
            hand.labels[self.key] = label
        for tid in [t for t in self._tracks if t not in seen]:  # the track ended
            del self._tracks[tid]
            if self.motion is not None:
                self.motion.forget(tid)

    def _update(self, track_id: int, p: np.ndarray) -> Label:
        st = self._tracks.get(track_id)
        if st is None:
            label = LabelSwitch(int(np.argmax(p)), self.min_frames, self.switch_margin)
            st = self._tracks[track_id] = _Track(p.copy(), label)
        else:
            st.probs = (1 - self.smoothing) * st.probs + self.smoothing * p
            cand = int(np.argmax(st.probs))
            st.label.update(cand, float(st.probs[cand] - st.probs[st.label.current]))
        k = st.label.current
        return Label(self.model.labels[k], float(st.probs[k]))

    def reset(self) -> None:
        """Forget every track's state (a new video)."""
        self._tracks.clear()
        if self.motion is not None:
            self.motion.reset()

    def close(self) -> None:
        self.reset()


OTHER_HAND = {"left": "right", "right": "left"}
