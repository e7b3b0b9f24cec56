"""The tracker's lifecycle under hostile use: close() from another thread, abandoned run()
generators, stalled and closed sources, live-mode sinks that hang or raise, FIFOs and bad photos
in folders, absurd frame rates and timestamps, plugins whose accepts() raises, and a MediaPipe
worker that never starts, dies or talks nonsense (docs/guarantees.md, "Lifecycle").

Races run many times, and those that crashed the process (a capture or a video writer released
under a read or a write) run in a subprocess, so a segfault fails the test instead of the session.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import textwrap
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from handsdk import ConfigError, FrameError, HandSDKError, SourceError, Tracker, hookimpl
from handsdk.consumers import LIVE_CLOSE_S, SLOT_CLOSE_S

REPO = Path(__file__).resolve().parents[1]


def _extra_threads(before: set[threading.Thread], wait: float = 5.0) -> list[str]:
    """Threads started since ``before`` still alive after up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        extra = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.02)


def _frames(n: int, size: int = 64) -> list[np.ndarray]:
    return [np.full((size, size, 3), i % 250, np.uint8) for i in range(n)]


def _in_thread(fn: Any, timeout: float) -> tuple[bool, dict[str, Any]]:
    """Run ``fn`` on a daemon thread; (finished within ``timeout``, {"value"/"error": ...})."""
    out: dict[str, Any] = {}

    def work() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            out["error"] = exc

    th = threading.Thread(target=work, daemon=True)
    th.start()
    th.join(timeout)
    return not th.is_alive(), out


def _write_video(path: Path, n: int, size: tuple[int, int] = (160, 120), fps: float = 25.0) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(n):
        w.write(np.full((size[1], size[0], 3), (i * 5) % 255, np.uint8))
    w.release()
    return path


# -- consumers and filters the tests register ---------------------------------------------------
class Record:
    """A sink that records each call's start and end, and its close, on a shared clock;
    ``delay`` seconds per call, ``hold`` an Event a call waits on, ``raise_at`` the call (from
    0) on which it raises ``error``."""

    kind = "sink"
    instances: list[Record] = []

    def __init__(self, delay: float = 0.0, hold: bool = False, raise_at: int = -1, error: str = ""):
        self.delay, self.raise_at, self.error = delay, raise_at, error
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.calls: list[tuple[float, float]] = []
        self.closed_at: float | None = None
        self.after_close = 0
        Record.instances.append(self)

    def __call__(self, result: Any, frame: Any) -> None:
        start = time.monotonic()
        if self.closed_at is not None:
            self.after_close += 1
        self.started = getattr(self, "started", 0) + 1
        if self.started - 1 == self.raise_at:
            raise {"SystemExit": SystemExit, "KeyboardInterrupt": KeyboardInterrupt}[self.error]()
        self.release.wait(30)
        time.sleep(self.delay)
        self.calls.append((start, time.monotonic()))

    def close(self) -> None:
        self.closed_at = time.monotonic()


class Clock:
    """A filter that passes landmarks through and records the time it is given."""

    times: list[float] = []

    def __call__(self, value: np.ndarray, timestamp_s: float) -> np.ndarray:
        Clock.times.append(timestamp_s)
        return value

    def reset(self) -> None:
        pass


@pytest.fixture
def lifecycle_plugins(register_plugin: Any) -> None:
    class Plugin:
        @hookimpl
        def handsdk_register_consumers(self, register):
            register("record", Record)

        @hookimpl
        def handsdk_register_filters(self, register):
            register("clock", Clock)

    Record.instances.clear()
    Clock.times.clear()
    register_plugin(Plugin(), "test-lifecycle")


# -- run() generators and their source threads --------------------------------------------------
def test_an_abandoned_run_leaves_no_source_thread(fake_backend):
    """A 3-frame source with a stall timeout, one result taken, the generator dropped: its reader
    thread ends (it used to block on a full queue forever, one leaked thread per run)."""
    frames = _frames(3)
    with Tracker(fake_backend.config()) as t:
        before = set(threading.enumerate())
        for _ in range(20):
            gen = t.run(iter(frames), stall_timeout=5.0)
            assert next(gen).frame_index == 0
            del gen
        assert _extra_threads(before) == []
        kept = []  # generators still referenced: the source ended, so its thread does too
        for _ in range(10):
            gen = t.run(iter(frames), stall_timeout=5.0)
            next(gen)
            kept.append(gen)
        assert _extra_threads(before) == []
        long = [t.run(iter(_frames(50)), stall_timeout=5.0) for _ in range(5)]
        for gen in long:  # suspended with frames still to read: Tracker.close() stops their threads
            next(gen)
    assert _extra_threads(before) == []
    for gen in long:
        assert list(gen) == []  # and a closed tracker's run ends, it does not raise


def test_a_run_reads_and_closes_a_video_on_one_thread(tmp_path, run_python):
    """run(video, stall_timeout, max_frames) released the capture while the reader thread was
    still inside cap.read(): a segfault or a deadlock in 5 of 5 runs. And a source closed from
    another thread mid-read (the CLI closes what it opened) must not crash either."""
    video = _write_video(tmp_path / "clip.mp4", 40)
    code = textwrap.dedent(f"""
        import json, random, threading, time
        from handsdk import Tracker
        from handsdk.sources import open_source
        video = {str(video)!r}
        out = {{"counts": [], "threads": [], "early": []}}
        before = set(threading.enumerate())
        with Tracker({{"tracker": {{"max_hands": 1}}}}) as t:
            for k in range(12):
                out["counts"].append(len(list(t.run(video, stall_timeout=3.0, max_frames=2 + k % 5))))
                time.sleep(0.001 * k)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and set(threading.enumerate()) - before:
            time.sleep(0.02)
        out["threads"] = [th.name for th in set(threading.enumerate()) - before]
        for k in range(20):  # another thread's close() while one reads
            src = open_source(video)
            got = []
            reader = threading.Thread(target=lambda: got.extend(1 for _ in src))
            reader.start()
            time.sleep(random.uniform(0, 0.01))
            src.close()
            reader.join(10)
            out["early"].append((reader.is_alive(), len(got)))
        print(json.dumps(out))
    """)
    out = run_python(code, json=True, timeout=240)
    assert out["counts"] == [2 + k % 5 for k in range(12)]
    assert out["threads"] == []
    assert all(not alive and n <= 40 for alive, n in out["early"]), out["early"]


def test_close_from_another_thread_while_run_writes(tmp_path, run_python):
    """Tracker.close() from another thread while run() writes a video and a jsonl: it used to
    release the video writer under a write (2 of 10 runs segfaulted). Now the run ends cleanly
    at its next frame and both files hold the same frames, whole. (CI once found the video a frame
    short: the fake hand's track had grown to coordinates the annotator could not draw.)"""
    code = textwrap.dedent(f"""
        import json, random, sys, threading, time
        import cv2
        import numpy as np
        sys.path.insert(0, "tests")
        from conftest import FakeBackend
        from handsdk import Tracker, hookimpl
        from handsdk.plugins import load_plugins, pm
        load_plugins()
        class P:
            @hookimpl
            def handsdk_register_backends(self, register):
                register("fake", lambda device="cpu", threads=0: FakeBackend({{}}))
        pm.register(P(), name="fake")
        manifest = {str(tmp_path / "manifest.json")!r}
        outs = {{"detector": ["heatmap", "geometry"], "landmark": ["landmarks", "confidence", "presence", "handedness"]}}
        json.dump({{"models": {{"detector": {{"input_size": 64, "outputs": outs["detector"], "files": {{}}}},
                   "landmark": {{"input_size": 32, "outputs": outs["landmark"], "files": {{}}, "crop_scale": 1.5}}}}}},
                  open(manifest, "w"))
        frames = [np.full((240, 320, 3), i % 250, np.uint8) for i in range(400)]
        report = []
        for k in range(15):
            video, lines = {str(tmp_path)!r} + f"/out{{k}}.mp4", {str(tmp_path)!r} + f"/out{{k}}.jsonl"
            t = Tracker({{"backend": {{"name": "fake"}}, "filter": {{"name": "none"}},
                         "models": {{"manifest": manifest}}, "tracker": {{"max_hands": 1}},
                         "consumers": [{{"name": "video", "path": video, "fps": 25.0}},
                                       {{"name": "jsonl", "path": lines}}]}})
            errors, got, running = [], [], threading.Event()
            def consume():
                try:
                    for r in t.run(frames):
                        got.append(r.frame_index)
                        running.set()
                except BaseException as exc:
                    errors.append(repr(exc))
                finally:
                    running.set()
            th = threading.Thread(target=consume)
            th.start()
            running.wait(30)  # a close() before run() begins is refused by run(), rightly
            time.sleep(random.uniform(0.0, 0.14))
            t.close()
            th.join(20)
            import os
            n_lines = len(open(lines).read().splitlines()) if os.path.exists(lines) else 0
            cap = cv2.VideoCapture(video)
            n_video = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if os.path.exists(video) else 0
            report.append({{"alive": th.is_alive(), "errors": errors, "results": len(got),
                           "lines": n_lines, "video": n_video}})
        print(json.dumps(report))
    """)
    report = run_python(code, json=True, timeout=240)
    for r in report:
        assert not r["alive"] and r["errors"] == [], r
        assert r["lines"] == r["video"] and r["results"] - 1 <= r["lines"] <= r["results"], r
    assert any(0 < r["lines"] < 400 for r in report), report  # the close did land mid-run


def test_a_stalled_source_is_not_released_under_its_read(fake_backend, register_plugin, caplog):
    """The stall guard ends the stream but leaves the hung read alone: the source the tracker
    opened is closed by its reader thread when the read returns, never concurrently."""
    gate, events = threading.Event(), []

    class Hanging:
        fps = 30.0

        def __init__(self, spec):
            pass

        @classmethod
        def accepts(cls, spec):
            return spec == "hanging-camera"

        def __iter__(self):
            yield from _frames(2)
            events.append("read")
            gate.wait(20)
            events.append("read returned")
            yield _frames(1)[0]

        def close(self):
            events.append("close")

    class Plugin:
        @hookimpl
        def handsdk_register_sources(self, register):
            register("hanging", Hanging)

    register_plugin(Plugin(), "test-hanging")
    with Tracker(fake_backend.config()) as t, caplog.at_level(logging.WARNING):
        t0 = time.monotonic()
        assert len(list(t.run("hanging-camera", stall_timeout=0.3))) == 2
        assert time.monotonic() - t0 < 5
    assert "no frame from the source for 0.3 s" in caplog.text
    assert events == ["read"]  # not closed while its read hangs
    gate.set()
    deadline = time.monotonic() + 5
    while len(events) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert events == ["read", "read returned", "close"]  # closed by its reader, after the read


def test_a_source_that_gives_no_frame_is_a_source_error(fake_backend):
    """A camera that never delivers (or a source that ends at once) is an error, exit status 2
    on the command line, not a run of 0 frames; an empty list of frames is just empty."""
    gate = threading.Event()

    class Silent:
        fps, spec = 30.0, 7

        def __init__(self, hang: bool):
            self.hang = hang

        def __iter__(self):
            if self.hang:
                gate.wait(20)
            return iter(())

        def close(self):
            pass

    with Tracker(fake_backend.config()) as t:
        with pytest.raises(SourceError, match=r"the source 7 gave no frames \(it ended at once\)"):
            list(t.run(Silent(False)))
        with pytest.raises(SourceError, match=r"gave no frames \(nothing within the stall timeout of 0.3 s\)"):
            list(t.run(Silent(True), stall_timeout=0.3))
        gate.set()
        assert list(t.run([])) == []


def test_close_from_a_sink_on_the_run_thread_does_not_deadlock(fake_backend, lifecycle_plugins, register_plugin):
    """A sink that closes its own tracker (a 'q' key) is inside the frame close() would wait
    for: the release is left to that frame's end, at once."""
    holder: dict[str, Tracker] = {}

    class Quit:
        kind = "sink"

        def __call__(self, result, frame):
            if result.frame_index == 2:
                holder["t"].close()

    class Plugin:
        @hookimpl
        def handsdk_register_consumers(self, register):
            register("quit", Quit)

    register_plugin(Plugin(), "test-quit")
    t = Tracker(fake_backend.config(consumers=[{"name": "quit"}, {"name": "record"}]))
    holder["t"] = t
    t0 = time.monotonic()
    results = list(t.run(_frames(20)))
    assert time.monotonic() - t0 < 5
    assert len(results) == 3
    rec = Record.instances[-1]
    assert rec.closed_at is not None and rec.after_close == 0


# -- live mode -----------------------------------------------------------------------------------
@pytest.mark.parametrize("error", ["SystemExit", "KeyboardInterrupt"])
def test_a_live_sink_raising_systemexit_ends_the_run_in_bounded_time(fake_backend, lifecycle_plugins, error):
    """It used to kill the sink thread and hang the run's end on a full queue forever."""
    before = set(threading.enumerate())
    t = Tracker(fake_backend.config(consumers=[{"name": "record", "raise_at": 2, "error": error,
                                                "delay": 0.01}]))
    done, out = _in_thread(lambda: list(t.run(_frames(60), live=True)), timeout=LIVE_CLOSE_S + 10)
    assert done, "the live run did not end"
    assert type(out.get("error")).__name__ == error  # raised in the caller's thread, as inline
    t.close()
    assert _extra_threads(before) == []


def test_close_from_another_thread_during_a_live_run(tmp_path, fake_backend, lifecycle_plugins):
    """Tracker.close() (twice, from two threads) while a live run feeds its sink thread: the run
    ends, the sinks get nothing after their close, the jsonl holds whole lines, no thread stays."""
    import random

    before = set(threading.enumerate())
    for k in range(15):
        lines = tmp_path / f"live{k}.jsonl"
        t = Tracker(fake_backend.config(consumers=[{"name": "record", "delay": 0.002},
                                                   {"name": "jsonl", "path": str(lines)}]))
        rec = Record.instances[-1]
        errors: list[BaseException] = []
        running = threading.Event()

        def run(t: Tracker = t, errors: list[BaseException] = errors,
                running: threading.Event = running) -> None:
            try:
                for _ in t.run(_frames(300), live=True):
                    running.set()
            except BaseException as exc:  # noqa: BLE001 - the test inspects it
                errors.append(exc)
            finally:
                running.set()

        runner = threading.Thread(target=run)
        runner.start()
        # A close() that lands before run() begins is refused by run(), rightly: on a loaded
        # machine 5 ms was not always enough for the thread to get there, so close once it runs.
        assert running.wait(30)
        time.sleep(random.uniform(0.0, 0.045))
        closers = [threading.Thread(target=t.close) for _ in range(2)]
        for c in closers:
            c.start()
        for th in (runner, *closers):
            th.join(LIVE_CLOSE_S + SLOT_CLOSE_S + 10)
            assert not th.is_alive()
        assert errors == [] and rec.closed_at is not None and rec.after_close == 0
        if lines.exists():
            assert all(json.loads(x)["frame"] >= 0 for x in lines.read_text().splitlines())
    assert _extra_threads(before) == []


def test_a_slow_live_sink_is_never_called_after_or_during_its_close(fake_backend, lifecycle_plugins):
    t = Tracker(fake_backend.config(consumers=[{"name": "record", "delay": 0.3}]))
    t0 = time.monotonic()
    results = list(t.run(_frames(30), live=True))
    t.close()
    assert time.monotonic() - t0 < LIVE_CLOSE_S + SLOT_CLOSE_S + 3
    rec = Record.instances[-1]
    assert len(results) == 30 and rec.calls and rec.closed_at is not None
    assert rec.after_close == 0
    assert all(end <= rec.closed_at for _, end in rec.calls)  # closed after its last call returned
    assert len(rec.calls) + t.dropped_frames == 30


def test_a_hung_live_sink_does_not_hold_the_run(fake_backend, lifecycle_plugins):
    before = set(threading.enumerate())
    t = Tracker(fake_backend.config(consumers=[{"name": "record", "hold": True}]))
    rec = Record.instances[-1]
    t0 = time.monotonic()
    done, out = _in_thread(lambda: len(list(t.run(_frames(10), live=True))), timeout=LIVE_CLOSE_S + 10)
    assert done and out == {"value": 10}
    t.close()
    assert time.monotonic() - t0 < LIVE_CLOSE_S + SLOT_CLOSE_S + 5
    assert rec.closed_at is None  # still inside its first call: not closed under it
    rec.release.set()  # the call returns; the sink is closed then, on its thread, and called no more
    assert _extra_threads(before) == []
    assert rec.closed_at is not None and len(rec.calls) == 1 and rec.after_close == 0


# -- folders, photos and frames ------------------------------------------------------------------
def _photo(path: Path, w: int, h: int) -> Path:
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : max(1, w // 2)] = 200
    assert cv2.imwrite(str(path), img)
    return path


def test_a_fifo_in_a_folder_is_skipped_not_waited_on(tmp_path, fake_backend, caplog):
    folder = tmp_path / "photos"
    folder.mkdir()
    _photo(folder / "a.png", 64, 64)
    os.mkfifo(folder / "b.png")
    (folder / "c.jpg").mkdir()  # a folder with an image's name
    _photo(folder / "d.png", 64, 48)
    (folder / "e.jpg").symlink_to("/dev/zero")  # endless bytes, were it read
    os.mkfifo(tmp_path / "alone.png")
    os.mkfifo(tmp_path / "pipe.mp4")
    with Tracker(fake_backend.config()) as t, caplog.at_level(logging.WARNING):
        done, out = _in_thread(lambda: [r.path for r in t.run(folder)], timeout=30)
        if not done:  # unblock the reader of the old code, then fail
            os.close(os.open(folder / "b.png", os.O_WRONLY | os.O_NONBLOCK))
        assert done, "a FIFO in the folder blocked the run"
        assert out["value"] == [str(folder / "a.png"), str(folder / "d.png")]
        for alone in ("alone.png", "pipe.mp4"):
            done, out = _in_thread(lambda alone=alone: list(t.run(tmp_path / alone)), timeout=30)
            assert done and isinstance(out["error"], SourceError) and "a FIFO" in str(out["error"])
    assert re.search(r"skipping .*b\.png: not a regular file \(a FIFO\)", caplog.text)
    assert re.search(r"skipping .*c\.jpg: not a regular file \(a folder\)", caplog.text)
    assert re.search(r"skipping .*e\.jpg: not a regular file \(a character device\)", caplog.text)


def test_bad_photos_are_skipped_and_named_and_the_run_goes_on(tmp_path, fake_backend, caplog):
    """An 8x8 thumbnail and a 20000x300 panorama are tracked (letterboxed); a 1x1 image and a
    corrupt file are skipped with a warning naming each; the other photos are all tracked,
    each result and jsonl line naming its photo."""
    folder = tmp_path / "photos"
    folder.mkdir()
    _photo(folder / "a.png", 64, 64)
    _photo(folder / "b_tiny.png", 8, 8)
    _photo(folder / "c_panorama.png", 20000, 300)
    _photo(folder / "d_dot.png", 1, 1)
    (folder / "e_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    ok, png = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))  # a header claiming 100000x100000
    bomb = bytearray(png.tobytes())
    bomb[16:24] = struct.pack(">II", 100_000, 100_000)
    bomb[29:33] = struct.pack(">I", zlib.crc32(bytes(bomb[12:29])))
    (folder / "e_huge.png").write_bytes(bomb)
    _photo(folder / "f.png", 48, 64)
    lines = tmp_path / "out.jsonl"
    with (Tracker(fake_backend.config(consumers=[{"name": "jsonl", "path": str(lines)}])) as t,
          caplog.at_level(logging.WARNING)):
        results = list(t.run(folder))
    names = [Path(r.path).name for r in results]
    assert names == ["a.png", "b_tiny.png", "c_panorama.png", "f.png"]
    assert [r.image_size for r in results[1:3]] == [(8, 8), (20000, 300)]
    assert re.search(r"skipping photo .*d_dot\.png is 1x1 pixels", caplog.text)
    assert re.search(r"skipping .*e_corrupt\.jpg: not an image", caplog.text)
    assert re.search(r"skipping .*e_huge\.png: OpenCV cannot read it", caplog.text)
    assert [Path(json.loads(x)["path"]).name for x in lines.read_text().splitlines()] == names


def test_a_folder_of_unreadable_photos_is_a_source_error(tmp_path, fake_backend, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"garbage")
    (folder / "b.png").write_bytes(b"")
    with Tracker(fake_backend.config()) as t:
        with pytest.raises(SourceError, match=r"none of the 2 images in folder .*photos.* can be read"):
            list(t.run(folder))
        dots = tmp_path / "dots"
        dots.mkdir()
        for name in ("a.png", "b.png"):
            _photo(dots / name, 1, 1)
        with pytest.raises(SourceError, match=r"no frame of the source could be tracked: 2 skipped"):
            list(t.run(dots))
    from handsdk.cli import main

    assert main(["track", str(folder), "--config", str(_fake_config(tmp_path, fake_backend))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "can be read" in err[0], err


def _fake_config(tmp_path: Path, fake_backend: Any) -> Path:
    cfg = fake_backend.config()
    path = tmp_path / "fake.toml"
    path.write_text(f'[backend]\nname = "fake"\n[filter]\nname = "none"\n'
                    f'[models]\nmanifest = "{cfg["models"]["manifest"]}"\n')
    return path


def test_a_frame_the_tracker_cannot_take_is_an_error_naming_its_index(fake_backend):
    with Tracker(fake_backend.config()) as t:
        with pytest.raises(FrameError, match=r"frame 2 of the source is 1x1 pixels"):
            list(t.run(_frames(2) + [np.zeros((1, 1, 3), np.uint8)]))
        assert len(t.process(np.zeros((8, 8, 3), np.uint8)).hands) <= 1
        assert t.process(np.zeros((300, 20000, 3), np.uint8)).image_size == (20000, 300)


# -- frame rates and timestamps ------------------------------------------------------------------
@pytest.mark.parametrize("fps", [4.9e-324, 1e308, float("nan"), float("inf"), -30.0, 1e-9, "thirty"])
def test_an_absurd_source_fps_gives_sane_timestamps(tmp_path, fake_backend, lifecycle_plugins, fps, caplog):
    class Weird:
        def __init__(self):
            self.fps = fps

        def __iter__(self):
            yield from _frames(5)

        def close(self):
            pass

    lines = tmp_path / "out.jsonl"
    cfg = fake_backend.config(filter={"name": "clock"}, consumers=[{"name": "jsonl", "path": str(lines)}])
    with Tracker(cfg) as t, caplog.at_level(logging.WARNING):
        stamps = [r.timestamp_ms for r in t.run(Weird())]
    assert stamps == pytest.approx([i * 1000 / 30 for i in range(5)])  # the config's 30 fps
    assert "frame rate is taken as unknown" in caplog.text
    for line in lines.read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in a jsonl line"))
    assert np.diff(Clock.times) == pytest.approx([1 / 30] * 4)  # the filter sees real time steps


def test_non_finite_source_timestamps_are_derived(fake_backend):
    items = [(f, ts) for f, ts in zip(_frames(4), [0.0, float("inf"), float("nan"), 100.0], strict=True)]
    with Tracker(fake_backend.config()) as t:
        stamps = [r.timestamp_ms for r in t.run(items)]
    assert all(np.isfinite(stamps)) and all(b > a for a, b in zip(stamps, stamps[1:], strict=False))
    with Tracker(fake_backend.config()) as t:
        with pytest.raises(ConfigError, match="option 'fps' must be a number"):
            next(t.run("synthetic", fps=4.9e-324))
        for bad in (0, -1.0, float("nan"), float("inf"), "5"):
            with pytest.raises(ConfigError, match="stall_timeout must be a number of seconds > 0"):
                next(t.run(_frames(2), stall_timeout=bad))


def test_a_video_whose_header_says_an_absurd_fps(tmp_path, fake_backend, caplog):
    """A real file whose header claims 60000 fps (above MAX_FPS): its frames are timed at the
    config's 30 fps instead, with a warning naming the file."""
    video = tmp_path / "fast.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 60_000, (64, 48))
    for i in range(4):
        w.write(np.full((48, 64, 3), i * 40, np.uint8))
    w.release()
    if cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS) != 60_000:
        pytest.skip("this OpenCV does not store such a frame rate")
    with Tracker(fake_backend.config()) as t, caplog.at_level(logging.WARNING):
        stamps = [r.timestamp_ms for r in t.run(video)]
    assert stamps == pytest.approx([0, 1000 / 30, 2000 / 30, 3000 / 30])
    assert "fast.mp4" in caplog.text and "taken as unknown" in caplog.text


@pytest.mark.parametrize("kind", [float, int])
def test_epoch_nanoseconds_passed_as_milliseconds(fake_backend, lifecycle_plugins, caplog, kind):
    """1.8e18 "ms": float64 cannot tell frames 33 ms apart there, so they repeated and reached
    the filter with dt = 0. Such times are replaced by frame times, with one warning."""
    start = 1_800_000_000_000_000_000
    with Tracker(fake_backend.config(filter={"name": "clock"})) as t, caplog.at_level(logging.WARNING):
        stamps = [t.process(f, kind(start + 33 * i)).timestamp_ms for i, f in enumerate(_frames(6))]
    assert all(np.isfinite(stamps)) and all(b > a for a, b in zip(stamps, stamps[1:], strict=False))
    dts = np.diff(Clock.times)
    assert (dts > 0).all() and dts == pytest.approx([1 / 30] * 5)
    assert caplog.text.count("nanoseconds passed as milliseconds") == 1


def test_large_but_precise_timestamps_keep_exact_steps(fake_backend, lifecycle_plugins):
    """Epoch microseconds (1.7e15) still time frames to the millisecond: the filter gets their
    exact differences (it runs on time since the first frame)."""
    start = 1.7e15
    with Tracker(fake_backend.config(filter={"name": "clock"})) as t:
        stamps = [t.process(f, start + 33.0 * i).timestamp_ms for i, f in enumerate(_frames(4))]
        again = t.process(_frames(1)[0], stamps[-1]).timestamp_ms  # a repeat moves just after
    assert stamps == [start + 33.0 * i for i in range(4)] and again > stamps[-1]
    assert np.diff(Clock.times)[:3] == pytest.approx([0.033] * 3, abs=1e-6)


# -- sources: accepts() and plugins ----------------------------------------------------------------
HOSTILE_SPECS = [Path("clip.mp4"), Path("/"), 1.5, float("nan"), None, b"clip.mp4", "a\0b.png", "x" * 5000,
                 "/" + "d/" * 3000 + "a.png", object(), np.zeros((2, 2)), {"spec": 0}, [0], True, -1, 2**70,
                 "", "synthetic", 0]


def test_every_builtin_source_answers_accepts_with_a_bool():
    from handsdk.plugins import components

    for comp in components("source").values():
        if not comp.factory.__module__.startswith("handsdk_sources"):
            continue
        for spec in HOSTILE_SPECS:
            assert isinstance(comp.factory.accepts(spec), bool), (comp.name, spec)


def test_a_plugin_whose_accepts_raises_is_skipped_with_one_warning(register_plugin, tmp_path, caplog):
    from handsdk.sources import open_source

    class Rtsp:
        fps = None

        def __init__(self, spec):
            self.spec = spec

        @classmethod
        def accepts(cls, spec):
            return spec.startswith("rtsp://")  # AttributeError on a Path or a float

        def __iter__(self):
            return iter(())

        def close(self):
            pass

    class Plugin:
        @hookimpl
        def handsdk_register_sources(self, register):
            register("rtsp", Rtsp)

    register_plugin(Plugin(), "test-rtsp")
    image = _photo(tmp_path / "a.png", 32, 32)
    with caplog.at_level(logging.WARNING, logger="handsdk.sources"):
        with pytest.raises(SourceError, match="no source can open 1.5"):
            open_source(1.5)
        src = open_source(Path(image))
    assert type(src).__name__ == "ImageSource"
    assert isinstance(open_source("rtsp://camera"), Rtsp)
    warnings = [r for r in caplog.records if "'rtsp'" in r.getMessage()]
    assert len(warnings) == 1 and "AttributeError" in warnings[0].getMessage()


# -- the MediaPipe worker --------------------------------------------------------------------------
def _fake_python(tmp_path: Path, name: str, body: str) -> Path:
    """An executable that stands in for MediaPipe's python: a real process speaking (or not)
    the worker's protocol."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def _group_gone(message: str, wait: float = 5.0) -> bool:
    """Whether no live process (zombies aside) is left in the worker's process group, within
    ``wait`` seconds (a SIGKILLed process takes a moment to go)."""
    pgid = int(re.search(r"pid (\d+)", message).group(1))
    deadline = time.monotonic() + wait
    while True:
        left = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                left.append(stat)
        if not left or time.monotonic() > deadline:
            return not left
        time.sleep(0.05)


@pytest.mark.parametrize(("body", "during", "match"), [
    ("sleep 60", "start", r"sent no ready line within 1 s"),
    ("echo '{\"ready\": true}'; exit 3", "frame", r"exited with status 3"),
    ("echo '{\"ready\": true}'; read x; echo 'Traceback {'; sleep 60", "frame", r"sent b'Traceback \{' instead"),
    ("echo '{\"ready\": true}'; sleep 60", "frame", r"sent no reply within 1 s"),
    ("echo 'MediaPipe says hello'; sleep 60", "start", r"sent b'MediaPipe says hello' instead of its ready line"),
])
def test_a_broken_mediapipe_worker_is_a_clear_error_in_bounded_time(tmp_path, body, during, match):
    python = _fake_python(tmp_path, "python", body)
    before = set(threading.enumerate())
    cfg = {"backend": {"name": "mediapipe", "python": str(python), "start_timeout": 1.0, "timeout": 1.0}}
    t0 = time.monotonic()
    if during == "start":
        with pytest.raises(HandSDKError, match=match) as err:
            Tracker(cfg)
    else:
        t = Tracker(cfg)
        with pytest.raises(HandSDKError, match=match) as err:
            t.process(np.zeros((48, 64, 3), np.uint8))
        with pytest.raises(HandSDKError, match=match):  # and again, at once, for the next frame
            t.process(np.zeros((48, 64, 3), np.uint8))
        t.close()
    assert time.monotonic() - t0 < 10
    assert "mediapipe worker" in str(err.value) and str(python) in str(err.value)
    assert _group_gone(str(err.value)), "the worker (or a child of it) is still running"
    assert _extra_threads(before) == []
