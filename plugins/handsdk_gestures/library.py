"""Custom gestures, few-shot: a handful of recorded hands per gesture, matched by nearest
neighbour on :func:`~handsdk.handshape.feature_vector` (normalised, so position, size,
rotation and mirroring do not matter unless a gesture is recorded with ``orientation=True``).

>>> lib = GestureLibrary()
>>> lib.add("Call_Me", [hand.landmarks for hand in recorded_hands])   # 3-10 examples is plenty
>>> lib.add_from_images("OK", ["ok1.jpg", "ok2.jpg"], tracker)        # or from photos
>>> lib.save("my_gestures.json")
>>> GestureLibrary.load("my_gestures.json").match(hand.landmarks)      # ("OK", 0.83) or None

File format (JSON): ``{"format": "handsdk-gestures", "version": 1, "features":
"handsdk_gestures.v1", "threshold": 0.08, "gestures": {name: {"orientation": bool,
"examples": [[28 or 30 floats], ...]}}}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from handsdk.errors import ConfigError, HandSDKError
from handsdk.handshape import FEATURE_SIZE, FEATURE_VERSION, feature_vector

FORMAT = "handsdk-gestures"
VERSION = 1
#: Default match threshold: RMS difference of the feature vectors (0.08 is ~14 degrees of bend
#: per joint, or a fingertip ~0.16 palm sizes off, on average). Measured on real photos
#: (5 examples per ASL letter from other people, landmarks from MediaPipe): ~40-50 % of new
#: people's C/F/I/L/O/W/X/Y matched, and 1-7 % of rock/paper/scissors/one/two/five photos
#: wrongly matched one of those letters; your own recordings match far closer.
DEFAULT_THRESHOLD = 0.08
#: A gesture's distance is the mean distance to its K nearest examples (fewer if it has fewer),
#: so one badly tracked example does not capture poses it does not resemble.
K_NEAREST = 2


@dataclass
class _Entry:
    orientation: bool
    examples: list[np.ndarray] = field(default_factory=list)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """RMS difference of two feature vectors."""
    return float(np.sqrt(np.mean((a - b) ** 2)))


class GestureLibrary:
    """Named custom gestures, each a few normalised example feature vectors.

    ``threshold`` is the largest RMS feature distance that still counts as a match;
    :meth:`match` scores a match ``1 - 0.5 * distance / threshold`` (0.5 at the threshold, 1 for
    an exact copy of an example).
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD):
        self.threshold = _check_threshold(threshold)
        self._gestures: dict[str, _Entry] = {}

    # -- building ----------------------------------------------------------------------------
    def add(self, name: str, landmarks_list: Iterable[Any], orientation: bool = False) -> None:
        """Add examples of gesture ``name``: an iterable of (21, 3) landmark arrays (image
        pixels, as in ``Hand.landmarks``) or :class:`~handsdk.types.Hand` objects.

        ``orientation=True`` also records how the hand is held in the image (for gestures that
        differ only by direction); all examples of one gesture share that setting.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a gesture name must be a non-empty string, got {name!r}")
        vecs = [feature_vector(getattr(lm, "landmarks", lm), orientation) for lm in landmarks_list]
        if not vecs:
            raise ValueError(f"no examples given for gesture {name!r}")
        entry = self._gestures.get(name)
        if entry is None:
            entry = self._gestures[name] = _Entry(bool(orientation))
        elif entry.orientation != bool(orientation):
            raise ValueError(f"gesture {name!r} was recorded with orientation={entry.orientation}")
        entry.examples.extend(vecs)

    def add_from_images(self, name: str, paths: Iterable[str | Path], tracker: Any,
                        orientation: bool = False) -> int:
        """Run ``tracker.detect`` on each photo and add the largest hand found in each.

        Returns how many photos gave a hand; raises :class:`ValueError` if none did.
        """
        import cv2

        hands = []
        for path in paths:
            image = cv2.imread(str(path))
            if image is None:
                raise HandSDKError(f"cannot read image {str(path)!r}")
            found = tracker.detect(image)
            if found:
                hands.append(max(found, key=lambda h: h.size).landmarks)
        if not hands:
            raise ValueError(f"no hand found in any example photo of {name!r}")
        self.add(name, hands, orientation)
        return len(hands)

    def remove(self, name: str) -> None:
        del self._gestures[name]

    @property
    def names(self) -> list[str]:
        return list(self._gestures)

    def __len__(self) -> int:
        return len(self._gestures)

    def __contains__(self, name: object) -> bool:
        return name in self._gestures

    def examples(self, name: str) -> list[np.ndarray]:
        return [v.copy() for v in self._gestures[name].examples]

    # -- matching ----------------------------------------------------------------------------
    def distances(self, landmarks: Any) -> dict[str, float]:
        """Each gesture's distance to ``landmarks``: the mean RMS feature difference to its
        :data:`K_NEAREST` nearest examples."""
        lm = getattr(landmarks, "landmarks", landmarks)
        cache: dict[bool, np.ndarray] = {}
        out = {}
        for name, entry in self._gestures.items():
            if entry.orientation not in cache:
                cache[entry.orientation] = feature_vector(lm, entry.orientation)
            q = cache[entry.orientation]
            ds = sorted(_distance(q, ex) for ex in entry.examples)[:K_NEAREST]
            out[name] = float(np.mean(ds))
        return out

    def scores(self, landmarks: Any) -> dict[str, float]:
        """Each gesture's score in [0, 1]: ``1 - 0.5 * distance / threshold``, clipped (>= 0.5
        exactly when the gesture matches)."""
        return {n: float(min(1.0, max(0.0, 1.0 - 0.5 * d / self.threshold)))
                for n, d in self.distances(landmarks).items()}

    def match(self, landmarks: Any) -> tuple[str, float] | None:
        """The nearest gesture and its score if within the threshold, else None."""
        scores = self.scores(landmarks)
        if not scores:
            return None
        best = max(scores, key=scores.__getitem__)
        return (best, scores[best]) if scores[best] >= 0.5 else None

    # -- files -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "features": FEATURE_VERSION,
            "threshold": self.threshold,
            "gestures": {
                name: {"orientation": e.orientation,
                       "examples": [[round(float(x), 5) for x in v] for v in e.examples]}
                for name, e in self._gestures.items()
            },
        }

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def from_dict(cls, data: Any, where: str = "<dict>") -> GestureLibrary:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(f"{where}: not a handsdk custom-gesture file (format {FORMAT!r})")
        if data.get("version") != VERSION or data.get("features") != FEATURE_VERSION:
            raise ConfigError(f"{where}: version {data.get('version')!r} / features "
                              f"{data.get('features')!r} not supported; valid: version {VERSION}, "
                              f"features {FEATURE_VERSION!r} (record the gestures again)")
        try:
            lib = cls(data.get("threshold", DEFAULT_THRESHOLD))
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        gestures = data.get("gestures")
        if not isinstance(gestures, dict):
            raise ConfigError(f"{where}: 'gestures' must be an object of name -> examples")
        for name, entry in gestures.items():
            try:
                orient = bool(entry["orientation"])
                vecs = [np.asarray(v, dtype=np.float64) for v in entry["examples"]]
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"{where}: gesture {name!r} is malformed: {exc}") from None
            size = FEATURE_SIZE + (2 if orient else 0)
            if not vecs or any(v.shape != (size,) or not np.all(np.isfinite(v)) for v in vecs):
                raise ConfigError(f"{where}: gesture {name!r} needs examples of {size} finite numbers")
            lib._gestures[str(name)] = _Entry(orient, vecs)
        return lib

    @classmethod
    def load(cls, path: str | Path) -> GestureLibrary:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"custom gesture file {str(path)!r} does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"custom gesture file {str(path)!r} is not valid JSON: {exc}") from None
        return cls.from_dict(data, str(path))


def _check_threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"threshold must be a number > 0, got {value!r}")
    return float(value)

