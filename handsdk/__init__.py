"""handsdk: real-time hand tracking and gesture / sign recognition on an ordinary CPU.

>>> from handsdk import Tracker
>>> tracker = Tracker()                     # bundled models, default plugins, no network
>>> hands = tracker.detect(image_bgr)       # a still image → list[Hand]
>>> result = tracker.process(frame, timestamp_ms=t)   # a video frame → FrameResult
"""

from .config import Config, load_config
from .errors import (
                     ConfigError,
                     FrameError,
                     HandSDKError,
                     MissingDependencyError,
                     ModelError,
                     OutputError,
                     PluginError,
                     PluginNotFoundError,
                     SourceError,
)
from .extraction import extract
from .hookspecs import hookimpl
from .tracker import Tracker
from .types import (
                     HAND_CONNECTIONS,
                     LANDMARK_NAMES,
                     FrameResult,
                     Hand,
                     Handedness,
                     Label,
                     RotatedRect,
)

__version__ = "0.1.0"

__all__ = [
    "HAND_CONNECTIONS", "LANDMARK_NAMES", "Config", "ConfigError", "FrameError", "FrameResult",
    "Hand", "HandSDKError", "Handedness", "Label", "MissingDependencyError", "ModelError",
    "OutputError", "PluginError", "PluginNotFoundError", "RotatedRect", "SourceError", "Tracker", "extract", "hookimpl",
    "load_config",
]
