"""How every handsdk command starts and ends: its argument parser, and one ``error:`` line with
exit status 2 on a refusal.

Shared by the ``handsdk`` CLI and every ``python -m`` tool (training, evaluation, the sign and
gesture plugins' scripts), so it lives below all of them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from .errors import HandSDKError

#: Exit status after a closed pipe (the reader of stdout went away): 128 + SIGPIPE, as a tool
#: killed by SIGPIPE reports.
EXIT_CLOSED_PIPE = 141


class ArgumentParser(argparse.ArgumentParser):
    """The parser of every handsdk command and tool. Options must be spelled out (no prefix
    matching: ``--save-vid`` is not ``--save-video``), and a bad command line is one line,
    ``error: <prog>: <what is wrong>``, and exit status 2. Subparsers are of this class too."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(2, f"error: {self.prog}: {text} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """An argparse ``type``: a whole number >= 1 (frames, rounds, a limit), else a clear error."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP, raised in the main thread so ``finally`` blocks and ``with``
    exits run (writers finish their files). ``note`` says what was kept."""

    def __init__(self, signum: int, note: str = ""):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.note = signum, note


_STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))
_state: dict[str, Any] = {"fired": False, "defer": 0, "pending": None}


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """A stop signal arriving inside this block (outputs being finished and renamed into place)
    is raised as :class:`Interrupted` when the block ends, not in the middle of it."""
    _state["defer"] += 1
    try:
        yield
    finally:
        _state["defer"] -= 1
    pending, _state["pending"] = _state["pending"], None
    if pending is not None and not _state["defer"]:
        raise Interrupted(pending)


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """The stop signals raise :class:`Interrupted` (once: a second one while outputs are being
    finished is ignored); SIGXFSZ is ignored so a file size limit is a write error, not a kill."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state.update(fired=False, defer=0, pending=None)

    def stop(signum: int, frame: Any) -> None:
        if _state["fired"]:
            return
        _state["fired"] = True
        if _state["defer"]:
            _state["pending"] = signum
            return
        raise Interrupted(signum)

    old = {s: signal.signal(s, stop) for s in _STOP_SIGNALS}
    if hasattr(signal, "SIGXFSZ"):
        old[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _quiet_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so the exit's flush cannot complain."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
        os.close(devnull)


def run_script(main: Callable[[], int]) -> int:
    """Run a command's ``main``: a refusal (a :class:`HandSDKError`) or a file system error is
    one line on stderr and exit status 2, not a traceback; SIGINT / SIGTERM / SIGHUP end it
    cleanly (one line, exit status 128 + the signal's number); a reader closing the pipe on
    stdout ends it quietly (exit status 141). Anything else is a bug: one line too, exit status
    1, with the traceback in the log at INFO (``handsdk -v``)."""
    try:
        with _signals_raise():
            return main()
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        note = getattr(exc, "note", "")
        print(f"interrupted by {signal.Signals(signum).name}" + (f": {note}" if note else ""),
              file=sys.stderr)
        return 128 + signum
    except (HandSDKError, OSError) as exc:
        if isinstance(exc, BrokenPipeError) or isinstance(exc.__cause__, BrokenPipeError):
            _quiet_stdout()
            return EXIT_CLOSED_PIPE
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)  # one line, always
        return 2
    except Exception as exc:
        logging.getLogger("handsdk").info("the traceback:", exc_info=True)
        print(f"error: unexpected {type(exc).__name__}: {exc} (a bug in handsdk; run with -v for the "
              "traceback)", file=sys.stderr)
        return 1
