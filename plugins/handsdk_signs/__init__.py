"""Static sign-language handshapes from the 21 landmarks: the ``sign_classifier`` consumer.

It labels every hand with ``hand.labels["sign"] = Label(name, score)``: an ASL fingerspelling
letter ("A".."Z", vocabulary ``asl_letters``), a digit ("0".."9", vocabulary ``digits``, Turkish
Sign Language digits) or a sign of your own vocabulary. In video the probabilities of each
track are smoothed lightly (``smoothing``, ``min_frames``); still images (``Tracker.detect``)
are labelled from the one frame. Options: :class:`SignClassifier`.

Config::

    [[consumers]]
    name = "sign_classifier"
    vocabulary = "asl_letters"      # or "digits", or "path/to/myvocab.json"

In code::

    from handsdk import Tracker
    tracker = Tracker({"consumers": [{"name": "sign_classifier", "vocabulary": "digits"}]})
    for hand in tracker.detect(image):
        print(hand.labels["sign"].name, hand.labels["sign"].score)

    from handsdk_signs import SignClassifier
    SignClassifier("asl_letters").predict(landmarks)          # Label("A", 0.97), one hand

How it works: the landmarks are mirrored to a right hand, moved to the wrist, scaled by the
palm and turned so the palm points up (:mod:`handsdk_signs.features`); a small MLP in plain
numpy (:mod:`handsdk_signs.model`) maps them to the signs. The model scores the hand and its
mirror image and averages, so the answer never depends on the tracker's handedness.
Vocabularies are JSON files in ``models/signs/`` (weights, label names, feature version, and
the held-out metrics they were shipped with).

Your own vocabulary, from photos ``PATH/<label>/*.jpg``::

    python -m handsdk_signs.train --folder PATH --name myvocab   # -> models/signs/myvocab.json

Accuracy (held-out photos, end to end: a photo where no hand is found counts as wrong):
``python -m handsdk_signs.evaluate --vocabulary asl_letters`` (see :mod:`handsdk_signs.evaluate`).

**J and Z** are signed with motion (J: the pinky draws a J; Z: the index draws a Z). In video
(``Tracker.process``) :mod:`handsdk_signs.motion` reads the stroke itself from each track's
fingertip trajectory — the I handshape dropping then hooking sideways is J, the pointing index
drawing across / down-and-back / across is Z, drawn either way across — and reports the letter
for a moment after the stroke (option ``motion``, on by default). Measured by
``python -m handsdk_signs.evaluate_motion`` on 40 rendered fingerspelling clips tracked from the
pixels: J found 20/20, Z 20/20, no false alarm in 192 s of rendered signing, none on the real ASL
clip (13 s, no J or Z in it). There is no labelled real footage of J or Z here, so real-world
recall is not measured. Still images have no
trajectory: there the model reads J and Z from the static pose the ``asl_letters`` photos show (J:
the I handshape turned so the pinky points down or sideways; Z: the pointing index held sideways
or diagonally), so a held pose of that kind reads as J or Z too. Held-out photos: J 7/8, Z 4/4,
and I, H, V are sometimes taken for J.

Fingerspelling text from a video: :class:`Speller` (a sign is committed when held steadily for
N frames); ``handsdk sign-demo`` (:mod:`handsdk_signs.demo`, also ``examples/sign_demo.py``)
draws it.
"""

from __future__ import annotations

from typing import Any

from handsdk.hookspecs import Register, hookimpl

from .classifier import BUILTIN, SignClassifier, load_vocabulary, resolve_vocabulary, vocabulary_dir
from .features import (
    FEATURE_VERSION,
    canonical_landmarks,
    orientation_features,
    shape_features,
    sign_features,
)
from .model import SignModel
from .speller import Speller

__all__ = [
    "BUILTIN", "FEATURE_VERSION", "SignClassifier", "SignModel", "Speller", "canonical_landmarks",
    "load_vocabulary", "orientation_features", "resolve_vocabulary", "shape_features",
    "sign_features", "vocabulary_dir",
]


@hookimpl
def handsdk_register_consumers(register: Register) -> None:
    register("sign_classifier", SignClassifier)


@hookimpl
def handsdk_register_commands(subparsers: Any) -> None:
    import argparse

    p = subparsers.add_parser("sign-demo", help="fingerspelling demo: webcam, video or synthetic clip",
                              add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)

    def run(args):
        from .demo import main

        return main(args.rest)

    p.set_defaults(func=run)
