"""The MediaPipe baseline backend, run the way a user runs it: a worker process with the python of
a virtualenv that has mediapipe==0.10.21 (``HANDSDK_MEDIAPIPE_PYTHON``; .ci/run makes one)."""

from __future__ import annotations

import importlib.util
import os

import cv2
import numpy as np
import pytest

from handsdk import MissingDependencyError, Tracker
from handsdk.synthetic import synthetic_clip

HAS_MEDIAPIPE = bool(os.environ.get("HANDSDK_MEDIAPIPE_PYTHON")) or importlib.util.find_spec("mediapipe") is not None
needs_mediapipe = pytest.mark.skipif(not HAS_MEDIAPIPE, reason="no mediapipe: set HANDSDK_MEDIAPIPE_PYTHON to "
                                                               "the python of a venv with mediapipe==0.10.21")


@needs_mediapipe
def test_mediapipe_behind_the_same_tracker():
    frames = [f for f in synthetic_clip(8, seed=0)]
    with Tracker({"backend": {"name": "mediapipe"}}) as mp, Tracker() as ours:
        assert "MediaPipe" in mp.backend.device
        ids = set()
        for f in frames:
            r = mp.process(f.image, f.timestamp_ms)
            assert len(r.hands) == 1
            hand = r.hands[0]
            ids.add(hand.track_id)
            assert hand.landmarks.shape == (21, 3)
            mine = ours.process(f.image, f.timestamp_ms).hands[0]
            size = np.ptp(hand.landmarks[:, :2], axis=0).max()
            assert np.linalg.norm(mine.landmarks[:, :2] - hand.landmarks[:, :2], axis=1).mean() < 0.15 * size
        assert len(ids) == 1


@needs_mediapipe
def test_mediapipe_on_a_real_photo(data_root):
    img = cv2.imread(str(data_root / "asl_video" / "hands.jpg"))
    with Tracker({"backend": {"name": "mediapipe"}}) as mp:
        assert len(mp.detect(img)) == 2


def test_missing_mediapipe_names_the_fix(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(MissingDependencyError, match="mediapipe==0.10.21"):
        Tracker({"backend": {"name": "mediapipe", "python": str(fake)}})
