"""What handsdk promises about its outputs (docs/guarantees.md), on real files, real signals and
real ``python -m handsdk`` processes: an output never overwrites an input or another output,
nothing is written before the tracker is built, a write failure stops the run with one error
line and a non-zero exit, lines are always complete, and SIGINT / SIGTERM keep the frames so far."""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from handsdk import OutputError, Tracker
from handsdk.outputs import OutputFile

REPO = Path(__file__).resolve().parents[1]
ROOT = os.geteuid() == 0


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("HANDSDK_LOAD_PLUGINS", "HANDSDK_BLOCK_PLUGINS")}


def handsdk(*args: str, cwd: Path, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "handsdk", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=timeout, **kw)


def one_error_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """The run failed with exit status 2 and said why in exactly one ``error:`` line."""
    lines = [ln for ln in proc.stderr.replace("\r", "\n").splitlines() if ln.strip() and not ln.startswith("[")]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


def video_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def jsonl_records(path: Path) -> list[dict]:
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "the last line is cut short"
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A short real video (6 frames of the synthetic clip) to use as an input."""
    from handsdk.synthetic import synthetic_clip

    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (320, 240))
    for f in synthetic_clip(6, (320, 240), seed=4):
        w.write(f.image)
    w.release()
    return path


# -- an output is never an input, and never another output ----------------------------------------
@pytest.mark.parametrize("how", ["same", "dotted", "symlink", "hardlink", "jsonl-on-input", "config"])
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(how, clip, tmp_path):
    src = tmp_path / "in.mp4"
    shutil.copy(clip, src)
    before = digest(src)
    args = ["track", "in.mp4", "--save-video", "in.mp4"]
    if how == "dotted":
        args = ["track", "in.mp4", "--save-video", f"../{tmp_path.name}/./in.mp4"]
    elif how == "symlink":
        (tmp_path / "link.mp4").symlink_to(src)
        args = ["track", "link.mp4", "--save-video", "in.mp4"]
    elif how == "hardlink":
        os.link(src, tmp_path / "hard.mp4")
        args = ["track", "in.mp4", "--save-video", "hard.mp4"]
    elif how == "jsonl-on-input":
        args = ["track", "in.mp4", "--jsonl", "in.mp4"]
    elif how == "config":
        (tmp_path / "c.toml").write_text("[tracker]\nmax_hands = 1\n")
        before = digest(tmp_path / "c.toml")
        args = ["track", "in.mp4", "--config", "c.toml", "--jsonl", "c.toml"]
    proc = handsdk(*args, cwd=tmp_path)
    one_error_line(proc, "would destroy it")
    assert digest(tmp_path / ("c.toml" if how == "config" else "in.mp4")) == before
    assert leftovers(tmp_path) == []


def test_an_image_of_a_folder_source_is_not_an_output(clip, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    ok, frame = cv2.VideoCapture(str(clip)).read()
    cv2.imwrite(str(folder / "000.png"), frame)
    before = digest(folder / "000.png")
    one_error_line(handsdk("track", "frames", "--jsonl", "frames/000.png", cwd=tmp_path), "the source")
    assert digest(folder / "000.png") == before


def test_an_output_on_a_model_file_is_refused(fake_backend, tmp_path):
    manifest = fake_backend.manifest
    before = digest(manifest)
    with pytest.raises(OutputError, match="model manifest"):
        Tracker(fake_backend.config(consumers=[{"name": "jsonl", "path": str(manifest)}]))
    assert digest(manifest) == before


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "flag-and-config", "stdout-twice"])
def test_two_outputs_on_one_path_are_refused(how, tmp_path):
    (tmp_path / "old.mp4").write_bytes(b"keep me")
    args = ["--save-video", "old.mp4", "--jsonl", "old.mp4"]
    if how == "symlink":
        (tmp_path / "alias.mp4").symlink_to(tmp_path / "old.mp4")
        args = ["--save-video", "old.mp4", "--jsonl", "alias.mp4"]
    elif how == "hardlink":
        os.link(tmp_path / "old.mp4", tmp_path / "hard.mp4")
        args = ["--save-video", "old.mp4", "--jsonl", "hard.mp4"]
    elif how == "flag-and-config":
        (tmp_path / "c.toml").write_text('[[consumers]]\nname = "video"\npath = "old.mp4"\n')
        args = ["--config", "c.toml", "--save-video", "old.mp4"]
    elif how == "stdout-twice":
        (tmp_path / "c.toml").write_text('[[consumers]]\nname = "jsonl"\npath = "-"\n')
        args = ["--config", "c.toml", "--jsonl", "/dev/stdout"]
    proc = handsdk("track", "synthetic", "--max-frames", "3", *args, cwd=tmp_path)
    one_error_line(proc, "both write")
    assert (tmp_path / "old.mp4").read_bytes() == b"keep me"
    assert proc.stdout == ""


# -- nothing is written before the tracker is built; a bad path fails before any frame --------------
@pytest.mark.parametrize("config", ['[[consumers]]\nname = "no_such_consumer"\n',
                                    '[tracker]\nmax_hands = 0\n',
                                    '[[consumers]]\nname = "video"\npath = "missing/x.mp4"\n'])
def test_a_failed_start_leaves_existing_outputs_untouched(config, tmp_path):
    (tmp_path / "c.toml").write_text(config)
    for name in ("out.jsonl", "out.mp4"):
        (tmp_path / name).write_text("precious")
    proc = handsdk("track", "synthetic", "--config", "c.toml", "--jsonl", "out.jsonl", "--save-video", "out.mp4",
                   cwd=tmp_path)
    one_error_line(proc)
    assert (tmp_path / "out.jsonl").read_text() == (tmp_path / "out.mp4").read_text() == "precious"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("where, needle", [
    ("adir", "is a folder"),
    ("adir/", "names a folder"),
    ("missing/out.mp4", "does not exist"),
    ("afile/out.mp4", "is a file, not a folder"),
    ("/proc/out.mp4", "cannot create a file in '/proc'"),
    ("/dev/null", "needs a regular file"),
    ("-", "standard output"),
    ("", "must be a file path"),
    ("out.notavideo", "cannot write"),
])
def test_an_unwritable_video_path_fails_before_tracking(where, needle, tmp_path):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("a file")
    proc = handsdk("track", "synthetic", "--save-video", where, "--jsonl", "out.jsonl", cwd=tmp_path)
    one_error_line(proc, needle)
    assert "frames" not in proc.stderr.split("error:")[0]  # no progress: nothing was tracked
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"]  # nothing written


@pytest.mark.skipif(ROOT, reason="root writes into a read-only folder anyway (covered by /proc above)")
def test_a_read_only_folder_fails_before_tracking(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        one_error_line(handsdk("track", "synthetic", "--jsonl", "ro/out.jsonl", cwd=tmp_path), "not writable")
    finally:
        folder.chmod(0o755)


# -- write failures stop the run ---------------------------------------------------------------
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_full_device_stops_the_run(tmp_path):
    proc = handsdk("track", "synthetic", "--jsonl", "/dev/full", cwd=tmp_path)
    one_error_line(proc, "'/dev/full'", "No space left on device")
    assert "150/150" not in proc.stderr  # stopped at the first frame, not after the clip


def _limit_file_size(limit: int):
    def apply() -> None:  # in the child: writes past `limit` bytes fail (EFBIG), even as root
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_file_size_limit_stops_the_run_and_keeps_complete_lines(tmp_path):
    proc = handsdk("track", "synthetic", "--jsonl", "out.jsonl", cwd=tmp_path,
                   preexec_fn=_limit_file_size(20_000))
    one_error_line(proc, "File too large", "out.jsonl")
    records = jsonl_records(tmp_path / "out.jsonl")
    assert 5 <= len(records) < 150 and [r["frame"] for r in records] == list(range(len(records)))
    assert leftovers(tmp_path) == []


def test_a_video_that_cannot_be_finished_is_an_error_and_the_old_file_stays(tmp_path):
    (tmp_path / "out.mp4").write_bytes(b"the previous video")
    proc = handsdk("track", "synthetic", "--max-frames", "40", "--save-video", "out.mp4", cwd=tmp_path,
                   preexec_fn=_limit_file_size(60_000))
    one_error_line(proc, "'out.mp4' could not be written")
    assert (tmp_path / "out.mp4").read_bytes() == b"the previous video"
    assert leftovers(tmp_path) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 128 KiB file system (tmpfs), or a skip where mounting is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(disk)], capture_output=True)
    if mount.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root in a privileged container)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_stops_the_run_with_complete_lines_and_no_broken_video(tiny_disk):
    proc = handsdk("track", "synthetic", "--jsonl", "out.jsonl", "--save-video", "out.mp4", cwd=tiny_disk)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "No space left on device" in last, proc.stderr
    records = jsonl_records(tiny_disk / "out.jsonl")
    assert 1 <= len(records) < 150
    assert not (tiny_disk / "out.mp4").exists() or video_frames(tiny_disk / "out.mp4") > 0
    assert leftovers(tiny_disk) == []


def test_a_write_failure_stops_the_run_while_other_consumer_errors_are_isolated(fake_backend, register_plugin,
                                                                             tmp_path):
    from handsdk import hookimpl

    class Broken:
        kind = "sink"

        def __call__(self, result, frame):
            raise ValueError("a bug in a plugin")

    class Plugin:
        @hookimpl
        def handsdk_register_consumers(self, register):
            register("test_broken", Broken)

    register_plugin(Plugin(), "test-broken-consumer")
    frames = [fake_backend.frame()] * 5
    with Tracker(fake_backend.config(consumers=[{"name": "test_broken"},
                                                {"name": "jsonl", "path": str(tmp_path / "a.jsonl")}])) as t:
        assert len(list(t.run(frames))) == 5  # the broken plugin is logged, tracking goes on
    assert len(jsonl_records(tmp_path / "a.jsonl")) == 5
    for live in (False, True):
        t = Tracker(fake_backend.config(consumers=[{"name": "jsonl", "path": "/dev/full"}]))
        with pytest.raises(OutputError, match="No space left"):
            for _ in t.run(frames * 20, live=live):
                time.sleep(0.001)
        t.close()


# -- stdout ------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["-", "/dev/stdout"])
def test_stdout_carries_only_data(target, tmp_path):
    proc = handsdk("track", "synthetic", "--max-frames", "4", "--jsonl", target, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["frame"] for r in records] == [0, 1, 2, 3]
    assert "4 frames, a hand in" in proc.stderr  # the summary moved to stderr


def test_the_summary_counts_frames_the_detector_ran_on_apart_from_its_calls(tmp_path):
    """A frame can hold several detector calls (a small-hand tile while no hand is tracked, crowd
    tiles), so `track` reports the frames as the JSONL's ``detector_ran`` does, and the calls apart."""
    proc = handsdk("track", "synthetic", "--max-frames", "4", "--jsonl", "-", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    ran = sum(json.loads(line)["detector_ran"] for line in proc.stdout.splitlines())
    m = re.search(r"detector ran on (\d+) frames \((\d+) calls", proc.stderr)
    assert m, proc.stderr
    assert int(m.group(1)) == ran and int(m.group(2)) >= ran >= 1


def test_a_reader_closing_the_pipe_ends_the_run_quietly(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "handsdk", "track", "synthetic", "--jsonl", "-"], cwd=tmp_path,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert json.loads(proc.stdout.readline())["frame"] == 0
    proc.stdout.close()  # like `| head -1`
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 141
    assert "Traceback" not in err and "error" not in err.lower() and "Exception" not in err


# -- SIGINT / SIGTERM ----------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_keeps_every_frame_so_far(sig, tmp_path):
    (tmp_path / "out.mp4").write_bytes(b"an older video")
    proc = subprocess.Popen([sys.executable, "-m", "handsdk", "track", "synthetic", "--jsonl", "out.jsonl",
                             "--save-video", "out.mp4"], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait for the first lines in the (temporary) jsonl
        partial = [p for p in tmp_path.glob(".out.partial-*.jsonl") if p.stat().st_size > 2000]
        if partial:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith(f"interrupted by {sig.name}: stopped after ") and "out.jsonl" in last
    records = jsonl_records(tmp_path / "out.jsonl")
    assert 2 <= len(records) < 150
    assert f"stopped after {len(records)} frames" in last
    assert abs(video_frames(tmp_path / "out.mp4") - len(records)) <= 1  # playable to the last frame
    assert leftovers(tmp_path) == []


# -- the writers themselves ----------------------------------------------------------------------
@pytest.mark.parametrize("fps, stored", [(2000.0, 2000.0), (90000.0, 65535.0), (0.5, 0.5), (1234.5678, 1234.568)])
def test_the_video_writer_takes_any_positive_fps(fps, stored, tmp_path, caplog):
    from handsdk_writers import VideoWriter

    from handsdk.types import FrameResult

    w = VideoWriter(str(tmp_path / "v.mp4"), fps=fps)
    for i in range(3):
        w(FrameResult(i, i * 1000 / fps, [], (64, 48), {}), np.full((48, 64, 3), 60 * i, np.uint8))
    w.close()
    cap = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 3
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(stored, rel=1e-3)
    assert ("cannot store" in caplog.text) == (abs(stored - fps) > 1e-3 * fps)


def test_the_video_writer_draws_every_frame_even_a_hand_far_off_it(tmp_path):
    """OpenCV draws only 32-bit pixels: a hand at 1e12 px (a replayed or third-party result) once
    raised inside the annotator, and the video lost that frame while the jsonl kept it."""
    from handsdk_writers import VideoWriter

    from handsdk.annotate import BoxAnnotator, LandmarkAnnotator, SkeletonAnnotator, annotate
    from handsdk.types import FrameResult, Hand, Handedness, RotatedRect

    def hand(at: float) -> Hand:
        lm = np.zeros((21, 3), np.float32)
        lm[:, 0] = at + np.arange(21) * 2.0
        lm[:, 1] = at + 10.0
        return Hand(lm, np.ones(21, np.float32), 0.9, Handedness("right", 0.9), RotatedRect((at, at), (40, 40), 0.0), 1)

    shapes = (SkeletonAnnotator(), LandmarkAnnotator(), BoxAnnotator())
    near = annotate(np.zeros((48, 64, 3), np.uint8), FrameResult(0, 0.0, [hand(10.0)], (64, 48), {}), shapes)
    far = annotate(np.zeros((48, 64, 3), np.uint8), FrameResult(0, 0.0, [hand(1e12), hand(-1e12)], (64, 48), {}),
                   shapes)
    assert near.any() and not far.any()  # on screen it is drawn; far off, nothing is (and nothing raises)
    w = VideoWriter(str(tmp_path / "v.mp4"), fps=25.0)
    for i, at in enumerate([10.0, 1e12, -1e12, 3e9, 10.0]):
        w(FrameResult(i, i * 40.0, [hand(at)], (64, 48), {}), np.zeros((48, 64, 3), np.uint8))
    w.close()
    assert w.frames == 5 and video_frames(tmp_path / "v.mp4") == 5


@pytest.mark.parametrize("at", [(0.0, 0.0), (319.0, 239.0), (319.0, 5.0), (-500.0, 900.0), (1e12, -1e12)])
def test_labels_of_a_hand_at_an_edge_are_drawn_whole_inside_the_frame(at):
    """Labels were clamped only at the top and left: a hand at the right or bottom edge lost most
    of its text off the frame, and at the top every line was drawn on the same row, over the others."""
    from handsdk.annotate import LabelAnnotator
    from handsdk.types import FrameResult, Hand, Handedness, Label, RotatedRect

    def drawn(x: float, y: float) -> np.ndarray:
        lm = np.zeros((21, 3), np.float32)
        lm[:, 0], lm[:, 1] = x, y
        hand = Hand(lm, np.ones(21, np.float32), 0.9, Handedness("left", 0.9), RotatedRect((x, y), (40, 40), 0.0),
                    3, {"sign": Label("hello", 0.8), "gesture": Label("open_palm", 0.7)})
        frame = np.zeros((240, 320, 3), np.uint8)
        return LabelAnnotator().annotate(frame, FrameResult(0, 0.0, [hand], (320, 240), {})).any(axis=2)

    def extent(mask: np.ndarray) -> tuple[int, int]:
        rows, cols = np.nonzero(mask)
        return int(rows.max() - rows.min()), int(cols.max() - cols.min())

    centre, edge = drawn(160.0, 150.0), drawn(*at)
    assert centre.sum() > 500 and extent(centre)[0] > 30  # three lines of text, one above another
    assert edge.sum() == centre.sum() and extent(edge) == extent(centre)  # the same block, moved, not cut


def test_replacing_an_existing_file_is_said_and_keeps_its_permissions(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    out.chmod(0o640)
    proc = handsdk("track", "synthetic", "--max-frames", "2", "--jsonl", "out.jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "replaced the existing file out.jsonl" in proc.stderr
    assert len(jsonl_records(out)) == 2 and (out.stat().st_mode & 0o777) == 0o640


@pytest.mark.parametrize("written", [None, 4, 11])  # all of the record, or part of it
def test_an_interrupt_between_a_write_and_its_count_writes_the_record_once(written, tmp_path, monkeypatch):
    """A signal's handler runs when the write that it interrupted has returned, before the count
    of what it wrote is stored: the record is finished from what the file really holds, never
    written twice (seen once as 5 jsonl lines after 'stopped after 3 frames')."""
    import handsdk.outputs as outputs

    out = OutputFile(tmp_path / "a.jsonl", "test")
    out.write(b'{"frame": 0}\n')
    real, calls = os.write, []

    def write_then_interrupt(fd, data):
        n = real(fd, data if written is None else bytes(data)[:written])
        calls.append(n)
        if len(calls) == 1:
            raise KeyboardInterrupt  # what the handler raises after the syscall returned
        return n

    monkeypatch.setattr(outputs.os, "write", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        out.write(b'{"frame": 1}\n')
    monkeypatch.setattr(outputs.os, "write", real)
    out.commit()
    assert (tmp_path / "a.jsonl").read_text() == '{"frame": 0}\n{"frame": 1}\n'


def test_an_output_file_writes_whole_records_and_is_created_only_when_opened(tmp_path):
    out = OutputFile(tmp_path / "a.jsonl", "test")
    assert list(tmp_path.iterdir()) == []  # checked, not created
    out.write(b'{"a": 1}\n')
    assert not (tmp_path / "a.jsonl").exists() and len(leftovers(tmp_path)) == 1
    out.commit()
    assert (tmp_path / "a.jsonl").read_text() == '{"a": 1}\n' and leftovers(tmp_path) == []
    unused = OutputFile(tmp_path / "a.jsonl", "test")
    unused.open()
    unused.discard()  # a run that wrote nothing leaves the old file
    assert (tmp_path / "a.jsonl").read_text() == '{"a": 1}\n' and leftovers(tmp_path) == []
