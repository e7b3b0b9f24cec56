"""How well J and Z are read from motion: ``python -m handsdk_signs.evaluate_motion``.

There is no real footage of J and Z with labels here, so recall is measured on clips the project
renders (:func:`handsdk.synthetic_signs.fingerspelling_clip`: random words of static letters
with one J or Z, random hand, background, skin and sway), tracked by handsdk's own tracker from
the pixels — the landmarks the detector sees are the tracker's, not the renderer's. A stroke
counts as found when :class:`~handsdk_signs.motion.MotionLetters` reports its letter between the
start of that letter and 0.6 s after it; anything else it reports is a false alarm. False alarms
are also counted on the real ASL fingerspelling clip (``asl_video/asl_hand.25fps.mp4``, which
spells no J or Z), when ``../shared/data`` is there.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from handsdk import Tracker
from handsdk.script import ArgumentParser
from handsdk.synthetic_signs import LETTERS, fingerspelling_clip

from .motion import MotionLetters

STATIC = "".join(c for c in LETTERS if c not in "JZ")
SECONDS_PER_LETTER = 1.2
GRACE_S = 0.6


def motion_events(frames, tracker: Tracker) -> list[tuple[float, str]]:
    """(time s, letter) each time MotionLetters starts reporting a stroke, on tracked hands."""
    motion = MotionLetters()
    events, current = [], None
    tracker.reset()
    for image, t_ms in frames:
        res = tracker.process(image, timestamp_ms=t_ms)
        label = motion.update(res.hands[0].track_id, res.hands[0].landmarks, t_ms) if res.hands else None
        name = label.name if label else None
        if name and name != current:
            events.append((t_ms / 1000.0, name))
        current = name
    return events


def synthetic_trials(n: int, seed: int = 0, fps: float = 30.0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    tracker = Tracker({"tracker": {"max_hands": 1}})
    found = {"J": [0, 0], "Z": [0, 0]}  # letter -> [found, drawn]
    false_alarms, seconds = 0, 0.0
    for i in range(n):
        letter = "JZ"[i % 2]
        word = list(rng.choice(list(STATIC), 3))
        k = int(rng.integers(1, 4))  # never first: the hand is already tracked when it starts
        word.insert(k, letter)
        hand = ("right", "left")[int(rng.integers(2))]
        clip = fingerspelling_clip("".join(word), fps=fps, seconds_per_letter=SECONDS_PER_LETTER,
                                  seed=int(rng.integers(1 << 30)), handedness=hand)
        events = motion_events(((f.image, f.timestamp_ms) for f in clip), tracker)
        start = k * SECONDS_PER_LETTER
        hit = [e for e in events if e[1] == letter and start <= e[0] <= start + SECONDS_PER_LETTER + GRACE_S]
        found[letter][1] += 1
        found[letter][0] += bool(hit)
        false_alarms += len(events) - (1 if hit else 0)
        seconds += len(word) * SECONDS_PER_LETTER
    return {"clips": n, "recall": {k: v[0] / v[1] for k, v in found.items() if v[1]},
            "found": {k: f"{v[0]}/{v[1]}" for k, v in found.items()},
            "false_alarms": false_alarms, "false_alarms_per_minute": 60 * false_alarms / seconds}


def real_clip_false_alarms() -> dict[str, Any] | None:
    from handsdk.data import data_root
    from handsdk.evaluate import iter_video

    root = data_root()
    video = root / "asl_video" / "asl_hand.25fps.mp4" if root else None
    if video is None or not video.is_file():
        return None
    frames = [(f, i * 40.0) for i, f in enumerate(iter_video(video))]  # 25 fps
    events = motion_events(frames, Tracker({"tracker": {"max_hands": 1}}))
    return {"video": video.name, "seconds": len(frames) / 25.0, "false_alarms": len(events), "events": events}


def main(argv: Sequence[str] | None = None) -> int:
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=40, help="synthetic clips (half with J, half with Z)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    out = {"synthetic": synthetic_trials(args.clips, args.seed), "real": real_clip_false_alarms()}
    s = out["synthetic"]
    print(f"synthetic clips: J found {s['found']['J']}, Z found {s['found']['Z']}; "
          f"{s['false_alarms']} false alarms ({s['false_alarms_per_minute']:.2f} per minute)")
    if out["real"] is None:
        print("real ASL clip: ../shared/data not found (set HANDSDK_DATA); not scored", file=sys.stderr)
    else:
        print(f"real ASL clip (no J or Z in it): {out['real']['false_alarms']} false alarms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    from handsdk.script import run_script

    raise SystemExit(run_script(main))
