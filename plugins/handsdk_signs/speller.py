"""Fingerspelling: turn a stream of per-frame sign labels into text."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Speller:
    """Commits a sign to :attr:`text` once it has been held steadily for ``hold_frames``
    consecutive frames with a score of at least ``min_score``.

    The same sign is committed again (a double letter) only after the hand showed something
    else or left the frame for at least ``release_frames`` frames. ``progress`` (0..1) says how
    far the current sign is from being committed, for an on-screen bar.
    """

    hold_frames: int = 10
    min_score: float = 0.6
    release_frames: int = 3
    text: str = ""
    candidate: str | None = None
    count: int = 0
    last_committed: str | None = None
    _away: int = field(default=0, repr=False)

    def update(self, name: str | None, score: float = 1.0) -> str | None:
        """Feed one frame's sign (None: no hand); returns the sign committed on this frame."""
        if name is None or score < self.min_score:
            name = None
        if name != self.last_committed:
            self._away += 1
            if self._away >= self.release_frames:
                self.last_committed = None
        else:
            self._away = 0
        if name is None:
            self.candidate, self.count = None, 0
            return None
        if name == self.candidate:
            self.count += 1
        else:
            self.candidate, self.count = name, 1
        if self.count >= self.hold_frames and name != self.last_committed:
            self.text += name
            self.last_committed = name
            self._away = 0
            return name
        return None

    @property
    def progress(self) -> float:
        if self.candidate is None or self.candidate == self.last_committed:
            return 0.0
        return min(1.0, self.count / self.hold_frames)

    def reset(self) -> None:
        self.text, self.candidate, self.count, self.last_committed, self._away = "", None, 0, None, 0
