"""Fingerspelling demo: the ``sign_classifier`` consumer on a webcam, a video or a synthetic clip.

    handsdk sign-demo                                 # synthetic clip spelling "WILDLY"
    handsdk sign-demo 0 --show                        # webcam 0, live window
    handsdk sign-demo my_clip.mp4 --out spelled.mp4
    handsdk sign-demo --word VIVID --snapshot sign_demo.png

(``python examples/sign_demo.py …`` is the same program.)

Every frame goes through ``Tracker.process`` with ``sign_classifier`` configured; the overlay
shows each hand's current sign with its confidence, a bar filling while the sign is held, and
the text spelled so far: a letter is committed when it is held steadily for ``--hold`` frames
(:class:`handsdk_signs.Speller`). The annotated video goes to ``--out`` (mp4).

The default source needs no data and no camera: handsdk.synthetic_signs renders a hand that
spells ``--word`` with the ASL letters it can pose (A B C D E I J L O V W Y Z; J and Z are drawn
with their motion, which the classifier reads from the fingertip's trajectory). Those poses are
rough approximations and the model was trained on a few hundred real photos, so on the rendered
hand only D I J L V W Y Z read reliably, with lower confidence than on real hands: hence the low
default ``--min-score`` (a letter still has to be held for ``--hold`` frames).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np
from handsdk_writers import VideoWriter

from handsdk import Tracker
from handsdk.annotate import LandmarkAnnotator, SkeletonAnnotator, open_window
from handsdk.errors import ConfigError, HandSDKError, SourceError
from handsdk.outputs import input_paths, refuse_clashes
from handsdk.script import ArgumentParser, positive_int
from handsdk.sources import open_source, source_spec

from .speller import Speller

WINDOW = "handsdk signs"


def synthetic_frames(word: str, fps: float = 30.0, seed: int = 0):
    """(frame, timestamp_ms) of the rendered hand spelling ``word`` (1.2 s a letter)."""
    from handsdk.synthetic_signs import LETTERS, fingerspelling_clip

    bad = sorted({c for c in word.upper() if c not in LETTERS})
    if not word or bad:
        raise ConfigError(f"--word: the synthetic hand can spell only {', '.join(LETTERS)}"
                          + (f" (not {', '.join(bad)})" if bad else ""))
    for f in fingerspelling_clip(word, fps=fps, seed=seed):
        yield f.image, f.timestamp_ms


def _text(img, text, org, scale, colour=(255, 255, 255), thick=None):
    t = thick or max(1, int(round(scale * 2)))
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), t + 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, t, cv2.LINE_AA)


def draw(frame: np.ndarray, result, speller: Speller, key: str = "sign", current=None) -> np.ndarray:
    out = frame.copy()
    for a in (SkeletonAnnotator(), LandmarkAnnotator()):
        out = a.annotate(out, result)
    h, w = out.shape[:2]
    s = max(0.5, h / 720)
    for hand in result.hands:
        lab = hand.labels.get(key)
        if lab is None:
            continue
        x = int(np.clip(hand.landmarks[:, 0].min(), 5, w - 150 * s))
        y = int(np.clip(hand.landmarks[:, 1].min() - 12 * s, 60 * s, h))
        colour = (80, 255, 80) if lab.score >= speller.min_score else (0, 200, 255)
        _text(out, f"{lab.name} {lab.score:.0%}", (x, y), 1.3 * s, colour)
    # top bar: the current sign and how long it has been held
    bar = out[: int(56 * s)]
    bar[:] = (0.35 * bar).astype(np.uint8)
    cur = f"{current.name} {current.score:.0%}" if current is not None else "-"
    _text(out, f"sign: {cur}", (int(12 * s), int(40 * s)), 1.0 * s)
    x0, x1, y0, y1 = int(250 * s), int(w - 20 * s), int(18 * s), int(38 * s)
    cv2.rectangle(out, (x0, y0), (x1, y1), (200, 200, 200), 1, cv2.LINE_AA)
    cv2.rectangle(out, (x0, y0), (x0 + int((x1 - x0) * speller.progress), y1), (80, 255, 80), -1)
    # bottom: the text so far
    band = out[h - int(70 * s):]
    band[:] = (0.35 * band).astype(np.uint8)
    _text(out, "spelled: " + speller.text + "_", (int(12 * s), h - int(22 * s)), 1.4 * s, (255, 255, 255))
    return out


def main(argv=None) -> int:
    ap = ArgumentParser(prog="handsdk sign-demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("source", nargs="?", default="synthetic",
                    help="'synthetic' (default), a webcam index, or a video file")
    ap.add_argument("--vocabulary", default="asl_letters", help="asl_letters, digits, or a .json path")
    ap.add_argument("--word", default="WILDLY", help="synthetic source: the word to spell")
    ap.add_argument("--seed", type=int, default=0, help="synthetic source: background, skin, sway")
    ap.add_argument("--hold", type=positive_int, default=10, help="frames a sign is held to be committed")
    ap.add_argument("--min-score", type=float, default=0.2, help="weaker signs are not committed")
    ap.add_argument("--out", default="sign_demo.mp4", help="annotated mp4 ('' for none)")
    ap.add_argument("--snapshot", help="also save one output frame as an image, at most 720 px "
                                       "(the last frame with a hand; see --snapshot-frame)")
    ap.add_argument("--snapshot-frame", type=int, help="save this frame index instead")
    ap.add_argument("--max-frames", type=positive_int)
    ap.add_argument("--show", action="store_true", help="show a window (q quits)")
    a = ap.parse_args(argv)

    src = a.source
    fps = 30.0
    if src == "synthetic":
        frames = synthetic_frames(a.word, fps, a.seed)
        print(f"synthetic clip spelling {a.word.upper()!r}")
    else:
        spec = source_spec(src)
        if isinstance(spec, str) and not Path(spec).exists():
            raise SourceError(f"no such file: {spec!r}")
        frames = open_source(spec)
        fps = float(getattr(frames, "fps", None) or fps)
    # the handsdk video writer: refuses an --out that is the source, keeps what was written on an
    # interrupt, and says when a write fails (docs/guarantees.md)
    writer = VideoWriter(a.out, fps=fps, annotate=False) if a.out else None
    if writer is not None:
        refuse_clashes(writer.outputs, [("the source", p) for p in input_paths(src)])

    if a.show:
        try:
            open_window(WINDOW)
        except HandSDKError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    tracker = Tracker({"consumers": [{"name": "sign_classifier", "vocabulary": a.vocabulary}]})
    speller = Speller(hold_frames=a.hold, min_score=a.min_score)
    best = (-1, -1, None)  # (text length, frame index, image) for the snapshot
    t0, n = time.time(), 0
    try:
        if writer is not None:
            writer.open()  # a path that cannot be written fails here, before the first frame
        for i, item in enumerate(frames):
            if a.max_frames is not None and i >= a.max_frames:
                break
            frame, ts = item if isinstance(item, tuple) else (item, i * 1000.0 / fps)
            result = tracker.process(frame, ts)
            hands = sorted(result.hands, key=lambda h: -h.size)
            lab = hands[0].labels.get("sign") if hands else None
            committed = speller.update(lab.name if lab else None, lab.score if lab else 0.0)
            if committed:
                print(f"frame {result.frame_index}: + {committed} -> {speller.text}")
            img = draw(frame, result, speller, current=lab)
            if writer is not None:
                writer(result, img)
            if a.snapshot:
                if a.snapshot_frame is not None:
                    if result.frame_index == a.snapshot_frame:
                        best = (0, result.frame_index, img)
                elif hands and lab is not None and len(speller.text) >= best[0]:
                    best = (len(speller.text), result.frame_index, img)
            if a.show:
                cv2.imshow(WINDOW, img)
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
            n += 1
    finally:
        tracker.close()
        if writer is not None:
            writer.close()
        close = getattr(frames, "close", None)
        if close is not None:
            close()
        if a.show:
            cv2.destroyAllWindows()
    dt = time.time() - t0
    print(f"{n} frames in {dt:.1f} s ({n / max(dt, 1e-9):.1f} FPS); spelled: {speller.text!r}")
    if a.out:
        print(f"wrote {a.out}")
    if a.snapshot and best[2] is not None:
        Path(a.snapshot).parent.mkdir(parents=True, exist_ok=True)
        snap = best[2]
        k = 720 / max(snap.shape[:2])
        if k < 1:  # keep the picture small (it goes into the README)
            snap = cv2.resize(snap, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        cv2.imwrite(a.snapshot, snap)
        print(f"wrote {a.snapshot} (frame {best[1]})")
    return 0


if __name__ == "__main__":
    from handsdk.script import run_script

    raise SystemExit(run_script(main))
