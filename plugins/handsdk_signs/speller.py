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

    Letters drawn with motion (``motion_letters``, J and Z) start from a static handshape (J
    from I; Z from the pointing index, which reads as D, G or X), which may be committed before
    the stroke is recognised. So a motion letter committed within ``merge_frames`` of the
    previous commit, when every frame in between showed that letter or the motion letter,
    replaces it instead of following it.
    """

    hold_frames: int = 10
    min_score: float = 0.6
    release_frames: int = 3
    motion_letters: str = "JZ"
    merge_frames: int = 45
    text: str = ""
    candidate: str | None = None
    count: int = 0
    last_committed: str | None = None
    _away: int = field(default=0, repr=False)
    _since_commit: int = field(default=0, repr=False)
    _intact: bool = field(default=False, repr=False)  # only the last letter or a motion letter since

    def update(self, name: str | None, score: float = 1.0) -> str | None:
        """Feed one frame's sign (None: no hand); returns the sign committed on this frame."""
        if name is None or score < self.min_score:
            name = None
        self._since_commit += 1
        if name is None or (self.text and name != self.text[-1] and name not in self.motion_letters):
            self._intact = False
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
            merge = (name in self.motion_letters and self._intact and self.text
                     and self.text[-1] not in self.motion_letters
                     and self._since_commit <= self.merge_frames)
            self.text = (self.text[:-1] if merge else self.text) + name
            self.last_committed = name
            self._away, self._since_commit, self._intact = 0, 0, True
            return name
        return None

    @property
    def progress(self) -> float:
        if self.candidate is None or self.candidate == self.last_committed:
            return 0.0
        return min(1.0, self.count / self.hold_frames)

    def reset(self) -> None:
        self.text, self.candidate, self.count, self.last_committed, self._away = "", None, 0, None, 0
        self._since_commit, self._intact = 0, False
