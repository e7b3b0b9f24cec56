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

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from handsdk.config import integer_option, number_option
from handsdk.errors import ConfigError, HandSDKError, MissingDependencyError
from handsdk.hookspecs import Register, hookimpl

WORKER = Path(__file__).with_name("worker.py")


class MediaPipeWorkerError(HandSDKError):
    """The MediaPipe worker process did not become ready, died, hung, or answered garbage."""


def mediapipe_python(python: str | None = None) -> str:
    return python or os.environ.get("HANDSDK_MEDIAPIPE_PYTHON") or sys.executable


class _Worker:
    """The worker process and its pipes. Every write and every reply has a deadline (select on
    the raw pipes: no helper threads), so a worker that hangs, dies or talks nonsense is a
    :class:`MediaPipeWorkerError` naming it, never a hang, a ``BrokenPipeError`` or a
    ``JSONDecodeError``. It runs in a process group of its own, killed whole on close."""

    def __init__(self, cmd: list[str], name: str):
        self.name = name
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close()); its stderr: the tail goes into error messages
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     start_new_session=True)
        self.name = f"{name}, pid {self.proc.pid}"
        self._in, self._out = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(self._in, False)
        self._buf = b""
        self.broken: MediaPipeWorkerError | None = None
        self.died = False  # it ended by itself (at start-up: mediapipe missing, most likely)

    def _fail(self, message: str) -> MediaPipeWorkerError:
        """The error for ``message``, after killing the worker (its state is unknown now)."""
        self.kill()
        tail = self.stderr_tail()
        self.broken = MediaPipeWorkerError(f"{self.name}: {message}" + (f"; its last words: {tail}" if tail else ""))
        return self.broken

    def stderr_tail(self, lines: int = 3) -> str:
        try:
            self._log.seek(0, os.SEEK_END)
            size = self._log.tell()
            self._log.seek(max(0, size - 4096))
            text = self._log.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""
        return " | ".join(ln.strip() for ln in text.splitlines()[-lines:] if ln.strip())

    def _exit_note(self) -> str:
        try:
            code = self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return "closed its output"
        return f"exited with status {code}" if code >= 0 else f"was killed by signal {-code}"

    def send(self, data: bytes, timeout: float) -> None:
        if self.broken is not None:
            raise self.broken
        view, deadline = memoryview(data), time.monotonic() + timeout
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self._in], [], left)[1]:
                raise self._fail(f"took no request for {timeout:g} s (hung)")
            try:
                view = view[os.write(self._in, view):]
            except BlockingIOError:
                continue
            except OSError:  # BrokenPipeError: it is gone
                self.died = True
                raise self._fail(f"{self._exit_note()} while taking a request") from None

    def reply(self, timeout: float, what: str) -> dict[str, Any]:
        """The next line it writes, parsed as a JSON object."""
        if self.broken is not None:
            raise self.broken
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._out], [], [], left)[0]:
                raise self._fail(f"sent no {what} within {timeout:g} s (hung)")
            chunk = os.read(self._out, 1 << 16)
            if not chunk:
                self.died = True
                raise self._fail(f"{self._exit_note()} before its {what}")
            self._buf += chunk
            if len(self._buf) > 1 << 24:
                raise self._fail(f"sent over 16 MB without a line end instead of its {what}")
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            msg = json.loads(line)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            raise self._fail(f"sent {line[:100]!r} instead of its {what} (one JSON object per line)")
        return msg

    def kill(self) -> None:
        """End the worker and anything it started (its process group)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError, AttributeError):
                self.proc.kill()
        self.proc.wait()

    def close(self, timeout: float = 5.0) -> None:
        """Close its input (it exits at end of input), wait up to ``timeout``, then kill it."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=timeout)
        self.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError, AttributeError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # a child it left behind (a shell's), still in its group
        self._log.close()


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
                 model_complexity: int = 1, max_hands: int = 2, start_timeout: float = 120.0,
                 timeout: float = 30.0):
        if model_complexity not in (0, 1) or isinstance(model_complexity, bool):
            raise ConfigError(f"mediapipe: model_complexity must be 0 or 1, got {model_complexity!r}")
        integer_option("mediapipe", "max_hands", max_hands, 1, 16)
        integer_option("mediapipe", "threads", threads, 0, 256)
        self.start_timeout = number_option("mediapipe", "start_timeout", start_timeout, 0.0, 3600.0, lo_open=True)
        self.timeout = number_option("mediapipe", "timeout", timeout, 0.0, 3600.0, lo_open=True)
        self.python = mediapipe_python(python)
        self.device = f"cpu (MediaPipe, complexity {model_complexity}, worker {self.python})"
        cmd = [self.python, str(WORKER), "--complexity", str(model_complexity), "--max-hands", str(max_hands)]
        fix = ("it needs mediapipe==0.10.21 in that environment (pip install mediapipe==0.10.21, or point "
               "HANDSDK_MEDIAPIPE_PYTHON or [backend] python at a virtualenv that has it)")
        try:
            self._worker = _Worker(cmd, f"the mediapipe worker ({self.python} {WORKER.name})")
        except OSError as exc:
            raise MissingDependencyError(f"the mediapipe worker could not start with {self.python!r} "
                                         f"({exc.strerror or exc}): {fix}") from exc
        try:
            ready = self._worker.reply(self.start_timeout, "ready line")
        except MediaPipeWorkerError as exc:
            self._worker.close(0)
            if self._worker.died:
                raise MissingDependencyError(f"{exc}; {fix}") from None
            raise MediaPipeWorkerError(f"{exc} (start_timeout = {self.start_timeout:g} s); {fix}") from None
        if ready.get("ready") is not True:
            self._worker.close(0)
            raise MediaPipeWorkerError(f"{self._worker.name}: its first line was {ready!r}, not "
                                       '{"ready": true}')
        self._lock = threading.Lock()

    def load(self, spec: Any, variant: str = "fp32") -> None:  # the tracker asks; nothing to load
        return None

    def find_hands(self, rgb: np.ndarray, still: bool) -> list[dict[str, Any]]:
        """Hands in one RGB frame: landmarks in pixels, right-hand probability, score."""
        h, w = rgb.shape[:2]
        header = (json.dumps({"h": h, "w": w, "still": still}) + "\n").encode()
        with self._lock:
            self._worker.send(header + np.ascontiguousarray(rgb).tobytes(), self.timeout)
            reply = self._worker.reply(self.timeout, "reply")
            try:
                return [{"landmarks": np.asarray(x["landmarks"], np.float32).reshape(21, 3),
                         "confidence": np.ones(21, np.float32), "presence": float(x["score"]),
                         "right": float(x["right"])} for x in reply["hands"]]
            except (KeyError, TypeError, ValueError) as exc:
                raise self._worker._fail(f"sent a reply the tracker cannot read ({type(exc).__name__}: "
                                         f"{exc}): {str(reply)[:100]}") from None

    def close(self) -> None:
        self._worker.close()


@hookimpl
def handsdk_register_backends(register: Register) -> None:
    register("mediapipe", MediaPipeBackend)
