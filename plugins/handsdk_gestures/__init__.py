"""Hand gestures from the 21 landmarks: the ``gesture_recognizer`` consumer.

It labels every hand with ``hand.labels["gesture"] = Label(name, score)``: one of MediaPipe's
canned gestures (``None``, ``Closed_Fist``, ``Open_Palm``, ``Pointing_Up``, ``Thumb_Down``,
``Thumb_Up``, ``Victory``, ``ILoveYou``, see :mod:`handsdk_gestures.rules`) or a custom one
recorded few-shot (:class:`GestureLibrary`). In video, labels of a tracked hand change only when
the new one wins ``min_frames`` frames in a row or by ``switch_margin`` (no flicker); still
images (``Tracker.detect``) are labelled from the one frame. Options: :class:`GestureRecognizer`.

Config::

    [[consumers]]
    name = "gesture_recognizer"
    min_frames = 3                # hysteresis, see GestureRecognizer
    custom = "my_gestures.json"   # optional: few-shot gestures, they win over the canned ones
                                  # (a relative path is relative to the working directory)

In code::

    from handsdk_gestures import GestureLibrary, GestureRecognizer
    lib = GestureLibrary()
    lib.add("Call_Me", [hand.landmarks for hand in recorded])      # a handful of examples
    lib.add_from_images("OK", ["ok1.jpg", "ok2.jpg"], tracker)     # or example photos
    lib.save("my_gestures.json")
    GestureRecognizer(custom="my_gestures.json").recognize(hand.landmarks)  # Label(...)

Adding a gesture with a plugin instead (a rule, no examples): subclass the recognizer with an
extra rule over :class:`HandFeatures` (fuzzy finger states in [0, 1]) and register it under a
new consumer name from your own package::

    # my_gestures/__init__.py
    from handsdk.hookspecs import hookimpl
    from handsdk_gestures import CANNED_RULES, GestureRecognizer, HandFeatures

    def call_me(f: HandFeatures) -> float:          # thumb and pinky out, the rest curled
        return min(f.thumb_out, f.extended[4], f.curled[1:4].min())

    class MyGestures(GestureRecognizer):
        rules = {**CANNED_RULES, "Call_Me": call_me}

    @hookimpl
    def handsdk_register_consumers(register):
        register("my_gestures", MyGestures)

with ``[project.entry-points.handsdk] my_gestures = "my_gestures"`` in its pyproject.toml, and
``name = "my_gestures"`` in the ``[[consumers]]`` section (it takes the same options). A plugin
can ship recorded gestures the same way:
``register("my_gestures", functools.partial(GestureRecognizer, custom=PATH_OF_JSON))``.

Accuracy on real photos: ``python -m handsdk_gestures.evaluate`` (see that module).
"""

from __future__ import annotations

from handsdk.handshape import feature_vector, hand_shape, image_direction
from handsdk.hookspecs import Register, hookimpl

from .library import GestureLibrary
from .recognizer import GestureRecognizer
from .rules import CANNED_GESTURES, CANNED_RULES, HandFeatures, hand_features

__all__ = [
    "CANNED_GESTURES", "CANNED_RULES", "GestureLibrary", "GestureRecognizer", "HandFeatures",
    "feature_vector", "hand_features", "hand_shape", "image_direction",
]


@hookimpl
def handsdk_register_consumers(register: Register) -> None:
    register("gesture_recognizer", GestureRecognizer)
