"""Output files that never destroy or silently lose data (docs/guarantees.md).

An :class:`OutputFile` is checked when its writer is built (the path names no folder, its folder
exists and is writable) but nothing is created until :meth:`OutputFile.open`, which the tracker
calls once it is fully built and the run's inputs are known. A regular file is written to a
hidden temporary file beside it and renamed over it by :meth:`OutputFile.commit`, so a failed
start-up leaves an existing file as it was and an interrupted run leaves the frames processed so
far. ``-`` is standard output; a character device or a FIFO (``/dev/null``, a named pipe) is
written directly. Every write failure is an :class:`~handsdk.errors.OutputError`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import stat
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .errors import OutputError

log = logging.getLogger(__name__)

#: The path that means standard output.
STDOUT = "-"


def _reason(exc: OSError) -> str:
    code = errno.errorcode.get(exc.errno or 0, "")
    return f"{exc.strerror or exc}" + (f" ({code})" if code else "")


class OutputFile:
    """One file a writer produces. ``where`` names the writer in errors (``jsonl``, ``video``);
    ``stream`` says whether standard output and devices / FIFOs are accepted (an mp4 is not: its
    muxer seeks back to finish the file)."""

    def __init__(self, path: str | os.PathLike[str], where: str, *, stream: bool = True):
        self.name, self.where = os.fspath(path), where
        self.is_stdout = self.name == STDOUT
        self._fd: int | None = None
        self._temp: Path | None = None
        self._good = 0  # bytes ending with a complete record
        self._mode: int | None = None  # an existing file's permissions, kept
        self.target: Path | None = None  # the regular file renamed over at commit
        if self.is_stdout:
            if not stream:
                raise OutputError(f"{where}: cannot write to standard output ('-'): give a file path")
            return
        if not self.name:
            raise OutputError(f"{where}: the output path is empty")
        if self.name.endswith((os.sep, "/")):
            raise OutputError(f"{where}: {self.name!r} names a folder; give a file path")
        try:
            st = os.stat(self.name)  # follows links: what a write would reach
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise self._refusal(exc) from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{where}: {self.name!r} is a folder; give a file path inside it")
        if st is not None and not stat.S_ISREG(st.st_mode):
            if not (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
                raise OutputError(f"{where}: {self.name!r} is not a regular file, a character device or a "
                                  "pipe; give a file path")
            if not stream:
                raise OutputError(f"{where}: {self.name!r} is a device or pipe; this output needs a regular "
                                  "file (it is finished by seeking back)")
            return  # written directly, as it is
        self.target = Path(os.path.realpath(self.name))
        if st is not None:
            self._mode = stat.S_IMODE(st.st_mode)
        folder = self.target.parent
        if not folder.is_dir():
            raise OutputError(f"{where}: the folder of {self.name!r} ({str(folder)!r}) does not exist or is "
                              "not a folder; create it first")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"{where}: the folder {str(folder)!r} is not writable, so {self.name!r} cannot "
                              "be written there")

    def _refusal(self, exc: OSError) -> OutputError:
        if exc.errno == errno.ENOTDIR:
            return OutputError(f"{self.where}: {self.name!r}: a part of the path before the file name is a "
                               "file, not a folder")
        return OutputError(f"{self.where}: cannot write {self.name!r}: {_reason(exc)}")

    def __repr__(self) -> str:
        return f"OutputFile({self.name!r}, {self.where!r})"

    # -- what it is ----------------------------------------------------------------------------
    @property
    def direct(self) -> bool:
        """Written directly (standard output, a device, a pipe), not via a temporary file."""
        return self.target is None

    @property
    def opened(self) -> bool:
        return self._fd is not None or self._temp is not None

    @property
    def temp(self) -> Path:
        """The temporary file being written (for writers that hand a path to a library)."""
        if self._temp is None:
            raise OutputError(f"{self.where}: {self.name!r} is not open, or is not a regular file")
        return self._temp

    def is_same(self, path: str | os.PathLike[str] | OutputFile) -> bool:
        """Whether writing here would write ``path`` (same name after links, or same file)."""
        if isinstance(path, OutputFile):
            if self.is_stdout or path.is_stdout:
                return self.carries_stdout() and path.carries_stdout()
            path = path.name
        if self.is_stdout:
            return False
        return same_file(self.name, path)

    def carries_stdout(self) -> bool:
        """Whether this output is the process's standard output (``-``, ``/dev/stdout``, or the
        file stdout is redirected to)."""
        if self.is_stdout:
            return True
        try:
            out = os.fstat(sys.__stdout__.fileno()) if sys.__stdout__ is not None else None
            st = os.stat(self.name)
        except (OSError, ValueError):
            return False
        return out is not None and (out.st_dev, out.st_ino) == (st.st_dev, st.st_ino)

    # -- writing ----------------------------------------------------------------------------------
    def open(self, keep_fd: bool = True) -> None:
        """Create the temporary file (or open the device / take stdout). Idempotent. With
        ``keep_fd=False`` only the temporary file is made: a library writes it by :attr:`temp`."""
        if self.opened:
            return
        if self.is_stdout:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
            self._fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else 1
            return
        if self.target is None:
            try:
                self._fd = os.open(self.name, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
            except OSError as exc:
                raise self._refusal(exc) from exc
            return
        target = self.target
        for _ in range(100):
            temp = target.parent / f".{target.stem}.partial-{secrets.token_hex(4)}{target.suffix}"
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise OutputError(f"{self.where}: cannot create a file in {str(target.parent)!r} for "
                                  f"{self.name!r}: {_reason(exc)}") from exc
        else:  # pragma: no cover - 100 random names taken
            raise OutputError(f"{self.where}: cannot find a free temporary name beside {self.name!r}")
        if self._mode is not None:
            with contextlib.suppress(OSError):
                os.fchmod(fd, self._mode)
        self._temp = temp
        if keep_fd:
            self._fd = fd
        else:
            os.close(fd)

    def write(self, data: bytes) -> None:
        """Write one whole record (a line): all of it, or — on a regular file — none of it.

        A failure raises :class:`OutputError`; a regular file is cut back to its last complete
        record first. An interrupt (SIGINT, SIGTERM) arriving mid-record lets the record finish.
        """
        self.open()
        assert self._fd is not None
        view, done = memoryview(data), 0
        try:
            while done < len(view):
                done += os.write(self._fd, view[done:])
        except OSError as exc:
            self._cut_back()
            if isinstance(exc, BrokenPipeError):
                raise OutputError(f"{self.where}: the reader of {self._shown()} closed it") from exc
            raise OutputError(f"{self.where}: writing {self._shown()} failed: {_reason(exc)}; "
                              f"{self._kept()}") from exc
        except BaseException:  # an interrupt: finish the record, then stop
            if self._temp is not None:  # a signal can land after a write and before `done` counts it:
                with contextlib.suppress(OSError):  # the file's position says what is really there
                    done = os.lseek(self._fd, 0, os.SEEK_CUR) - self._good
            with contextlib.suppress(OSError):
                while done < len(view):
                    done += os.write(self._fd, view[done:])
            if done < len(view):
                self._cut_back()
            else:
                self._good += len(view)
            raise
        self._good += len(view)

    def _shown(self) -> str:
        return "standard output" if self.is_stdout else repr(self.name)

    def _kept(self) -> str:
        if self.target is None:
            return "what was written before stays"
        return f"the complete records so far are kept in {self.name!r}"

    def _cut_back(self) -> None:
        if self._fd is not None and self._temp is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._good)

    def commit(self) -> bool:
        """Finish the output: a temporary file is synced and renamed over the target (an existing
        file is replaced, and that is logged). False when nothing was opened."""
        if not self.opened:
            return False
        fd, self._fd = self._fd, None
        if self._temp is None:  # stdout / device / pipe
            if fd is not None and not self.is_stdout:
                with contextlib.suppress(OSError):
                    os.close(fd)
            return True
        temp, self._temp = self._temp, None
        assert self.target is not None
        try:
            if fd is None:
                fd = os.open(temp, os.O_RDONLY | os.O_CLOEXEC)
            os.fsync(fd)
        except OSError as exc:
            raise OutputError(f"{self.where}: writing {self.name!r} failed: {_reason(exc)}; what was "
                              f"written is in {str(temp)!r}") from exc
        finally:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        replaced = self.target.exists()
        try:
            os.replace(temp, self.target)
        except OSError as exc:
            raise OutputError(f"{self.where}: cannot put the output in place as {self.name!r}: "
                              f"{_reason(exc)}; it is in {str(temp)!r}") from exc
        if replaced:
            log.warning("%s: replaced the existing file %s", self.where, self.name)
        return True

    def discard(self) -> None:
        """Drop what was written; an existing target stays as it was."""
        fd, self._fd = self._fd, None
        if fd is not None and not self.is_stdout:
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._temp is not None:
            with contextlib.suppress(OSError):
                self._temp.unlink()
            self._temp = None


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file: equal after resolving links and ``..``, or the same
    inode (a hard link, another mount of the folder)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def outputs_of(consumer: Any) -> list[OutputFile]:
    """The files a consumer writes: its ``outputs`` attribute (see docs/plugins.md)."""
    found = getattr(consumer, "outputs", None) or []
    return [o for o in found if isinstance(o, OutputFile)]


def input_paths(source: Any) -> list[Path]:
    """The files a source spec or opened source reads: a path given as text, or an opened
    source's ``path`` / ``folder`` / ``files``."""
    if isinstance(source, (str, os.PathLike)) and os.fspath(source) not in ("", STDOUT):
        return [Path(source)]
    found = []
    for attr in ("path", "folder"):
        value = getattr(source, attr, None)
        if isinstance(value, (str, os.PathLike)):
            found.append(Path(value))
    files = getattr(source, "files", None)
    if isinstance(files, (list, tuple)):
        found += [Path(f) for f in files if isinstance(f, (str, os.PathLike))]
    return found


def refuse_clashes(outputs: Sequence[OutputFile], inputs: Iterable[tuple[str, Path]] = ()) -> None:
    """An :class:`OutputError` when an output would write an input (``(what, path)`` pairs; a
    folder input covers the images in it) or two outputs share one path."""
    from .data import IMAGE_SUFFIXES

    for i, out in enumerate(outputs):
        for other in outputs[:i]:
            if out.is_same(other):
                raise OutputError(f"{other.where} and {out.where} both write {out._shown()}; give each "
                                  "output its own path")
    for what, path in inputs:
        for out in outputs:
            if out.is_stdout:
                continue
            hit = out.is_same(path)
            if not hit and os.path.isdir(path) and os.path.exists(out.name):
                parent = os.path.dirname(os.path.realpath(out.name))
                hit = (same_file(parent, path) and os.path.splitext(out.name)[1].lower() in IMAGE_SUFFIXES)
            if hit:
                raise OutputError(f"{out.where}: {out.name!r} is {what} ({str(path)!r}); writing it would "
                                  "destroy it: give the output another path")


def tracker_inputs(origin: str, specs: Iterable[Any]) -> list[tuple[str, Path]]:
    """What a tracker reads, which no output may write: its config file (``origin`` when it is
    a file) and each model's manifest and files (:class:`~handsdk.models.ModelSpec` s)."""
    found = [("the config file", Path(origin))] if os.path.isfile(origin) else []
    for spec in specs:
        if spec.override is not None:
            found.append((f"the {spec.name} model", Path(spec.override)))
            continue
        found.append(("the model manifest", spec.root / "manifest.json"))
        for info in spec.entry.get("files", {}).values():
            found.append((f"a {spec.name} model file", spec.root / info["path"]))
    return found
