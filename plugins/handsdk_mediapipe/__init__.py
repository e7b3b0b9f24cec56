"""``[backend] name = "mediapipe"``: real MediaPipe Hands behind the same Tracker, as a baseline.

MediaPipe is never a dependency of handsdk. ``mediapipe==0.10.21`` (the last release that
ships the hand models in its wheel, used offline) pins numpy<2 and protobuf<5, so it runs in
a worker process, normally with the python of a separate virtualenv:

    python -m venv ~/.venvs/mediapipe && ~/.venvs/mediapipe/bin/pip install mediapipe==0.10.21
    export HANDSDK_MEDIAPIPE_PYTHON=~/.venvs/mediapipe/bin/python

Options: ``python`` (that interpreter; default ``$HANDSDK_MEDIAPIPE_PYTHON``, else this one),
``model_complexity`` (0 = lite, 1 = full), ``max_hands``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from handsdk.config import integer_option
from handsdk.errors import ConfigError, MissingDependencyError
from handsdk.hookspecs import Register, hookimpl

WORKER = Path(__file__).with_name("worker.py")


def mediapipe_python(python: str | None = None) -> str:
    return python or os.environ.get("HANDSDK_MEDIAPIPE_PYTHON") or sys.executable


class MediaPipeBackend:
    """A whole detect+landmark pipeline (``runs_whole_pipeline``), not a model runner."""

    name = "mediapipe"
    runs_whole_pipeline = True

    @staticmethod
    def bench_command(frames: Path, model_complexity: int, max_hands: int, python: str | None = None) -> list[str]:
        """The command ``handsdk bench`` runs to time MediaPipe alone on its pre-decoded frames,
        in its own process and virtualenv (the core reaches it through the plugin registry)."""
        return [mediapipe_python(python), str(WORKER), "--bench", str(frames), "--complexity",
                str(model_complexity), "--max-hands", str(max_hands)]

    def __init__(self, device: str = "cpu", threads: int = 0, python: str | None = None,
                 model_complexity: int = 1, max_hands: int = 2):
        if model_complexity not in (0, 1) or isinstance(model_complexity, bool):
            raise ConfigError(f"mediapipe: model_complexity must be 0 or 1, got {model_complexity!r}")
        integer_option("mediapipe", "max_hands", max_hands, 1, 16)
        integer_option("mediapipe", "threads", threads, 0, 256)
        self.python = mediapipe_python(python)
        self.device = f"cpu (MediaPipe, complexity {model_complexity}, worker {self.python})"
        cmd = [self.python, str(WORKER), "--complexity", str(model_complexity), "--max-hands", str(max_hands)]
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL)
            ready = self.proc.stdout.readline()
            json.loads(ready)
        except (OSError, ValueError) as exc:
            raise MissingDependencyError(
                f"the mediapipe worker could not start with {self.python!r}: it needs mediapipe==0.10.21 "
                "in that environment (pip install mediapipe==0.10.21, or point HANDSDK_MEDIAPIPE_PYTHON "
                "or [backend] python at a virtualenv that has it)") from exc
        self._lock = threading.Lock()

    def load(self, spec: Any, variant: str = "fp32") -> None:  # the tracker asks; nothing to load
        return None

    def find_hands(self, rgb: np.ndarray, still: bool) -> list[dict[str, Any]]:
        """Hands in one RGB frame: landmarks in pixels, right-hand probability, score."""
        h, w = rgb.shape[:2]
        with self._lock:
            self.proc.stdin.write((json.dumps({"h": h, "w": w, "still": still}) + "\n").encode())
            self.proc.stdin.write(np.ascontiguousarray(rgb).tobytes())
            self.proc.stdin.flush()
            reply = json.loads(self.proc.stdout.readline())
        return [{"landmarks": np.asarray(x["landmarks"], np.float32), "confidence": np.ones(21, np.float32),
                 "presence": float(x["score"]), "right": float(x["right"])} for x in reply["hands"]]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)


@hookimpl
def handsdk_register_backends(register: Register) -> None:
    register("mediapipe", MediaPipeBackend)
