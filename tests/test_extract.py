"""``handsdk extract``: many videos into Parquet, on real clips cut from the ASL video, with the
local engine (worker processes) and a real local Ray (``num_cpus=2``); resume after a real SIGINT,
corrupt videos in the batch, both layouts, the schema read back with pyarrow."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pa = pytest.importorskip("pyarrow", reason="handsdk extract needs pyarrow (pip install 'handsdk[extract]')")
import pyarrow.dataset as pads  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from handsdk import ConfigError, MissingDependencyError, Tracker  # noqa: E402
from handsdk.extraction import (  # noqa: E402
    ERRORS_FILE,
    MANIFEST_FILE,
    _assign_sides,
    collect_videos,
    extract,
    read_metadata,
    schema,
)
from handsdk.types import Hand, Handedness, RotatedRect  # noqa: E402

#: the real clips the tests cut from the ASL video: (first frame, frames)
CLIPS = {"one/clip.mp4": (0, 12), "two/clip.mp4": (12, 18), "three.mp4": (150, 14)}
SIGN = {"consumers": [{"name": "sign_classifier"}]}


def cut(video: Path, out: Path, start: int, n: int) -> Path:
    """Frames [start, start + n) of ``video`` as a new mp4 (a real, short clip)."""
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = [cap.read()[1] for _ in range(n)]
    cap.release()
    out.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 25, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return out


def truncated_avi(video: Path, out: Path) -> Path:
    """An MJPG AVI of 30 frames cut to half its bytes: it opens, then decoding stops part-way."""
    cap = cv2.VideoCapture(str(video))
    frames = [cap.read()[1] for _ in range(30)]
    h, w = frames[0].shape[:2]
    full = out.with_suffix(".full.avi")
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 25, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    data = full.read_bytes()
    full.unlink()
    out.write_bytes(data[: len(data) // 2])
    return out


def table(folder: Path) -> pa.Table:
    """Every row under ``folder``, sorted by video, frame and track (the engines' order differs)."""
    t = pads.dataset(str(folder), format="parquet").to_table()
    keys = [("video", "ascending"), ("frame", "ascending")]
    if "track_id" in t.column_names:
        keys.append(("track_id", "ascending"))
    return t.sort_by(keys)


def parquet_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.parquet"))}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture(scope="module")
def asl(asl_clip: Path, bundled_models: Path) -> Path:
    return asl_clip


@pytest.fixture(scope="module")
def clips(asl: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three short real clips, two of them named clip.mp4 in different folders."""
    root = tmp_path_factory.mktemp("clips")
    for name, (start, n) in CLIPS.items():
        cut(asl, root / name, start, n)
    return root


@pytest.fixture(scope="module")
def local_long(clips: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """The clips extracted once with the local engine, 2 workers, long layout."""
    out = tmp_path_factory.mktemp("local_long") / "out"
    return out, extract([clips], out, workers=2, progress=False)


@pytest.fixture(scope="module")
def ray_session():
    """One real local Ray for the module (num_cpus=2), shut down after it, its processes checked
    gone."""
    ray = pytest.importorskip("ray", reason="the ray engine needs handsdk[ray]")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    node = getattr(getattr(ray._private, "worker", None), "_global_node", None)
    procs = [info.process for infos in getattr(node, "all_processes", {}).values() for info in infos]
    try:
        yield ray
    finally:
        ray.shutdown()
        deadline = time.monotonic() + 20
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert all(p.poll() is not None for p in procs), "Ray left processes running after shutdown"


# -- inputs ----------------------------------------------------------------------------------------
def test_inputs_are_files_folders_globs_and_lists(tmp_path):
    for name in ("a/x.mp4", "a/b/x.mp4", "a/b/y.MOV", "c/z.avi", "a/notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    listing = tmp_path / "lists" / "videos.txt"
    listing.parent.mkdir()
    listing.write_text("# the corpus\n../c/z.avi\n\n../a/x.mp4\n")
    tasks = collect_videos([tmp_path / "a", str(tmp_path / "c" / "*.avi"), listing])
    assert [Path(t.video).relative_to(tmp_path).as_posix() for t in tasks] == ["a/b/x.mp4", "a/b/y.MOV",
                                                                             "a/x.mp4", "c/z.avi"]
    assert len({t.name for t in tasks}) == 4  # two x.mp4, two names
    assert all(t.name.startswith(Path(t.video).stem + "-") for t in tasks)
    with pytest.raises(ConfigError, match="does not exist"):
        collect_videos([tmp_path / "missing.mp4"])
    with pytest.raises(ConfigError, match="matches no video"):
        collect_videos([str(tmp_path / "*.mkv")])
    with pytest.raises(ConfigError, match="no videos found"):
        collect_videos([tmp_path / "lists"])


def test_wide_sides_follow_handedness_and_a_clash_goes_to_the_free_side():
    def hand(label: str, sure: float, score: float = 0.9) -> Hand:
        return Hand(np.zeros((21, 3), np.float32), np.ones(21, np.float32), score, Handedness(label, sure),
                    RotatedRect((0, 0), (1, 1), 0.0))

    left, right = hand("left", 0.9), hand("right", 0.8)
    assert _assign_sides([right, left]) == [left, right]
    sure, unsure = hand("right", 0.95), hand("right", 0.6)
    assert _assign_sides([unsure, sure]) == [unsure, sure]
    faint = hand("left", 0.99, score=0.2)
    assert _assign_sides([left, right, faint]) == [left, right]  # the two most present


# -- the long layout, the local engine ---------------------------------------------------------------
def test_long_layout_holds_every_hand_the_tracker_finds(asl, clips, local_long):
    out, summary = local_long
    assert (summary.ok, summary.failed, summary.videos) == (3, 0, 3)
    assert summary.frames == sum(n for _, n in CLIPS.values())
    assert len(list(out.glob("*.parquet"))) == 3 and leftovers(out) == []
    t = table(out)
    assert t.num_rows == summary.hands == summary.rows > 0
    # the same clip tracked by a Tracker of the same config, frame by frame
    clip = clips / "one" / "clip.mp4"
    rows = t.filter(pa.compute.equal(t["video"], str(clip))).to_pylist()
    with Tracker({"backend": {"threads": 1}}) as tracker:
        expected = [(r.frame_index, h) for r in tracker.run(str(clip)) for h in r.hands]
    assert len(rows) == len(expected) > 0
    for row, (frame, hand) in zip(rows, expected, strict=True):
        assert row["frame"] == frame and row["timestamp_ms"] == pytest.approx(frame * 40.0)
        assert (row["width"], row["height"]) == (620, 1080)
        got = np.array([[row[f"{a}_{i}"] for a in "xyz"] for i in range(21)], np.float32)
        np.testing.assert_array_equal(got, hand.landmarks)
        assert [row[f"conf_{i}"] for i in range(21)] == pytest.approx(hand.confidence.tolist(), abs=1e-6)
        assert row["handedness"] == hand.handedness.label
        assert row["presence"] == pytest.approx(hand.score, abs=1e-6)
    # track ids start at 1 in every video, whatever the worker tracked before
    for video in {r["video"] for r in t.select(["video"]).to_pylist()}:
        ids = t.filter(pa.compute.equal(t["video"], video))["track_id"].to_pylist()
        assert min(ids) == 1
    manifest = [json.loads(line) for line in (out / MANIFEST_FILE).read_text().splitlines()]
    assert sorted(m["file"] for m in manifest) == sorted(p.name for p in out.glob("*.parquet"))
    assert (out / ERRORS_FILE).read_text() == ""


def test_the_schema_round_trips_through_pyarrow(clips, local_long):
    out, _ = local_long
    f = next(out.glob("*.parquet"))
    s = pq.read_schema(f)
    expected = schema("long")
    assert [(x.name, x.type) for x in s] == [(x.name, x.type) for x in expected]
    assert s.field("x_0").metadata[b"unit"] == b"px" and s.field("conf_3").metadata[b"unit"] == b"0-1"
    assert s.field("z_5").metadata[b"unit"].startswith(b"px")
    meta = read_metadata(f)
    assert meta["schema"]["layout"] == "long" and meta["schema"]["schema_version"] == 1
    assert "pixels" in meta["schema"]["coordinates"]
    assert meta["schema"]["config"]["backend"]["options"] == {"threads": 1}
    assert (meta["video"]["fps"], meta["video"]["width"], meta["video"]["height"]) == (25.0, 620, 1080)
    for m in map(json.loads, (out / MANIFEST_FILE).read_text().splitlines()):
        video = read_metadata(out / m["file"])["video"]
        assert (video["video"], video["frames"], video["hands"]) == (m["video"], m["frames"], m["hands"])
        assert video["frames"] == CLIPS[Path(m["video"]).relative_to(clips).as_posix()][1]
    # the dataset as a whole keeps the schema's metadata for any reader
    assert json.loads(pads.dataset(str(out)).schema.metadata[b"handsdk"])["layout"] == "long"


# -- the wide layout ---------------------------------------------------------------------------------
def test_wide_layout_is_the_corpus_naming_normalised_with_labels(clips, local_long, tmp_path):
    long_out, _ = local_long
    videos = [clips / "one" / "clip.mp4", clips / "three.mp4"]
    summary = extract(videos, tmp_path / "wide", layout="wide", workers=1, config=SIGN, progress=False)
    assert summary.ok == 2
    wide = table(tmp_path / "wide")
    corpus = [f"{a}_{side}_hand_{i}" for a in "xyz" for side in ("left", "right") for i in range(21)]
    assert wide.column_names[5:5 + len(corpus)] == corpus
    assert wide.num_rows == summary.frames == 12 + 14  # one row per frame, hand or not
    assert {"sign_left_hand", "sign_score_right_hand"} <= set(wide.column_names)
    long = table(long_out).to_pylist()
    by_frame = {(r["video"], r["frame"]): r for r in long}
    found = 0
    for row in wide.to_pylist():
        hand = by_frame.get((row["video"], row["frame"]))  # one hand in view in these clips
        for side in ("left", "right"):
            xs = [row[f"x_{side}_hand_{i}"] for i in range(21)]
            if hand is None or hand["handedness"] != side:
                assert all(math.isnan(x) for x in xs)
                assert row[f"track_id_{side}_hand"] is None and row[f"sign_{side}_hand"] is None
                continue
            found += 1
            for i in range(21):
                assert row[f"x_{side}_hand_{i}"] == pytest.approx(hand[f"x_{i}"] / 620, abs=1e-6)
                assert row[f"y_{side}_hand_{i}"] == pytest.approx(hand[f"y_{i}"] / 1080, abs=1e-6)
                assert row[f"z_{side}_hand_{i}"] == pytest.approx(hand[f"z_{i}"] / 620, abs=1e-6)
            assert min(xs) >= 0.0 and max(xs) <= 1.0
            assert row[f"sign_{side}_hand"] is not None and 0 < row[f"sign_score_{side}_hand"] <= 1
    assert found == sum(r["video"] in map(str, videos) for r in long) > 0
    assert read_metadata(next((tmp_path / "wide").glob("*.parquet")))["schema"]["labels"] == ["sign"]


# -- failures, resume, interrupts --------------------------------------------------------------------
def test_a_corrupt_and_a_truncated_video_are_recorded_and_the_batch_goes_on(asl, clips, tmp_path):
    bad = tmp_path / "in" / "garbage.mp4"
    bad.parent.mkdir()
    bad.write_bytes(os.urandom(50_000))
    cut_short = truncated_avi(asl, tmp_path / "in" / "cut.avi")
    summary = extract([bad, clips / "three.mp4", cut_short], tmp_path / "out", workers=2, progress=False)
    assert (summary.ok, summary.failed) == (1, 2)
    errors = {Path(e["video"]).name: e for e in map(json.loads, (tmp_path / "out" / ERRORS_FILE).read_text().splitlines())}
    assert set(errors) == {"garbage.mp4", "cut.avi"}
    assert "cannot be read" in errors["garbage.mp4"]["error"]
    assert "decoding stopped after" in errors["cut.avi"]["error"] and 0 < errors["cut.avi"]["frames"] < 30
    assert [e["video"] for e in summary.errors] == [str(bad), str(cut_short)]
    assert len(list((tmp_path / "out").glob("*.parquet"))) == 1 and leftovers(tmp_path / "out") == []
    # a resume retries the failed ones only; the good one stays done
    again = extract([bad, clips / "three.mp4", cut_short], tmp_path / "out", resume=True, workers=1, progress=False)
    assert (again.ok, again.failed, again.skipped) == (0, 2, 1)


def test_an_interrupted_run_leaves_complete_files_and_resumes(clips, tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    for i in range(6):  # copies of one real clip, by name
        shutil.copy(clips / "two" / "clip.mp4", src / f"v{i}.mp4")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "handsdk", "extract", str(src), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ((out / MANIFEST_FILE).is_file() and (out / MANIFEST_FILE).read_text()):  # one video done
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no video finished in 120 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "Traceback" not in err and "--resume" in err.strip().splitlines()[-1]
    done = [json.loads(line)["file"] for line in (out / MANIFEST_FILE).read_text().splitlines()]
    assert 1 <= len(done) < 6
    assert leftovers(out) == [] and sorted(done) == sorted(p.name for p in out.glob("*.parquet"))
    for name in done:  # complete files: readable whole
        assert pq.read_table(out / name).num_rows == 18
    before = parquet_files(out)
    # without --resume the folder is refused; with it the rest is extracted
    refused = subprocess.run(cmd, capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    resumed = subprocess.run([*cmd, "--resume", "--workers", "2"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"({6 - len(done)} now, {len(done)} done before)" in resumed.stdout
    after = parquet_files(out)
    assert len(after) == 6 and all(after[k] == v for k, v in before.items())
    t = table(out)
    assert t.num_rows == 6 * 18
    first = t.filter(pa.compute.equal(t["video"], str(src / "v0.mp4"))).drop_columns(["video"])
    for i in range(1, 6):  # every copy's rows alike, whichever run wrote them
        assert t.filter(pa.compute.equal(t["video"], str(src / f"v{i}.mp4"))).drop_columns(["video"]).equals(first)


def test_a_worker_that_dies_fails_its_video_only(clips, tmp_path):
    """A worker killed mid-video (as a decoder crash would end it): that video is an error, a new
    worker takes the rest, the temp file it left is removed."""
    src = tmp_path / "videos"
    src.mkdir()
    for i in range(4):
        shutil.copy(clips / "two" / "clip.mp4", src / f"v{i}.mp4")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "handsdk", "extract", str(src), "--out", str(out),
                             "--workers", "1", "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while not (temps := list(out.glob(".*.parquet.*.tmp")) if out.is_dir() else []):  # a video in hand
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no worker started a video in 120 s"
        time.sleep(0.01)
    os.kill(int(temps[0].name.split(".")[-2]), signal.SIGKILL)  # .<name>.parquet.<pid>.tmp
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 3, stderr
    errors = [json.loads(line) for line in (out / ERRORS_FILE).read_text().splitlines()]
    assert len(errors) == 1 and "worker process died" in errors[0]["error"]  # the video it had in hand
    assert len(list(out.glob("*.parquet"))) == 3 and leftovers(out) == []
    assert "3 of 4 videos" in stdout and "1 failed" in stdout


def test_a_resume_with_another_layout_or_config_is_refused(local_long, clips):
    out, _ = local_long
    with pytest.raises(ConfigError, match="layout"):
        extract([clips], out, layout="wide", resume=True, progress=False)
    with pytest.raises(ConfigError, match="config"):
        extract([clips], out, config={"tracker": {"max_hands": 1}}, resume=True, progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        extract([clips], out, progress=False)
    # an option that changes the speed, never the rows, may differ: every video is already done
    again = extract([clips], out, config={"tracker": {"overlap_detector": False}}, resume=True, progress=False)
    assert again.skipped == again.videos > 0 and again.ok == 0


def test_overlap_detector_is_off_where_the_workers_fill_the_cores(monkeypatch):
    """A second thread per worker only takes a core from another worker (docs/benchmarks.md):
    unset, overlap_detector is off where the workers fill the cores, on where cores are left over;
    a config that sets it keeps its choice."""
    from handsdk import extraction

    monkeypatch.setattr(extraction.os, "cpu_count", lambda: 4)
    overlap = lambda config, workers=None: extraction._prepare_config(config, workers).tracker.overlap_detector  # noqa: E731
    assert overlap(None) is False and overlap(None, 4) is False and overlap(None, 8) is False
    assert overlap(None, 2) is True
    assert overlap({"tracker": {"overlap_detector": True}}) is True
    assert overlap({"tracker": {"overlap_detector": False}}, 1) is False


def test_writer_consumers_are_refused(clips, tmp_path):
    with pytest.raises(ConfigError, match="writer consumers"):
        extract([clips], tmp_path / "out", config={"consumers": [{"name": "jsonl", "path": str(tmp_path / "x.jsonl")}]})
    assert not (tmp_path / "x.jsonl").exists()


def test_a_worker_holds_one_frame_at_a_time_not_the_video(asl, clips, tmp_path):
    """The whole ASL video (325 frames of 620x1080, 650 MB decoded) costs a worker about what a
    12-frame clip does: frames stream through, only the rows (small) accumulate."""
    short = extract([clips / "one" / "clip.mp4"], tmp_path / "short", workers=1, progress=False)
    full = extract([asl], tmp_path / "full", workers=1, progress=False)
    assert full.frames == 325
    grew = max(full.peak_rss_mb.values()) - max(short.peak_rss_mb.values())
    assert grew < 100, f"a worker grew {grew:.0f} MB over 313 more frames"


# -- the ray engine ----------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray Data's own, on copying its context
def test_the_ray_engine_writes_the_same_files_as_the_local_one(ray_session, clips, local_long, tmp_path):
    out, local = local_long
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 4096)
    summary = extract([clips, bad], tmp_path / "ray", engine="ray", workers=2, progress=False)
    assert (summary.ok, summary.failed, summary.engine) == (3, 1, "ray")
    assert ray_session.is_initialized()  # the session it joined is left running for its owner
    assert parquet_files(tmp_path / "ray") == parquet_files(out)  # byte for byte
    assert table(tmp_path / "ray").equals(table(out))
    assert "cannot be read" in summary.errors[0]["error"] and leftovers(tmp_path / "ray") == []
    assert len(summary.peak_rss_mb) >= 1  # the actors' own processes


def test_the_ray_engine_without_ray_names_the_extra(clips, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependencyError, match=r"handsdk\[ray\]"):
        extract([clips], tmp_path / "out", engine="ray")
    assert not (tmp_path / "out").exists()
