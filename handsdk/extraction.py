"""Hand landmarks from many videos into Parquet: ``handsdk extract`` and :func:`handsdk.extract`.

Each video is tracked from its first frame to its last by one :class:`~handsdk.Tracker` (tracking
is stateful per video) and written as one Parquet file, ``DIR/<stem>-<hash>.parquet``, so ``DIR``
is a dataset that ``pyarrow.dataset`` / pandas / Polars / Spark read whole. Two layouts:

- ``long``: one row per hand per frame, landmarks in pixels (every field handsdk gives);
- ``wide``: one row per frame in the public fingerspelling corpora's naming (``x_left_hand_0`` …
  ``z_right_hand_20``), normalised to [0, 1] as MediaPipe emits them, NaN where a hand is absent.

Two engines run the same per-video function, so they write the same rows:

- ``local``: worker processes (``spawn``), one Tracker each, whole videos as tasks; a worker
  that dies (a decoder crash) fails only its video and is replaced.
- ``ray``: Ray Data (``pip install "handsdk[ray]"``): the videos are a dataset, tracking runs in
  an actor pool (``map_batches``) whose actors each hold one Tracker and write their videos'
  files; ``ray_address`` joins a cluster (``DIR`` must then be a folder every node can write,
  e.g. NFS), otherwise a local Ray starts in-process.

A video's file is written to a hidden temp file and renamed into place when complete, then the
video is marked done in ``DIR/_manifest.jsonl``; ``resume=True`` skips the videos marked done.
A video that cannot be read, or fails part-way, is listed in ``DIR/_errors.jsonl`` and never
stops the batch. An interrupt (Ctrl-C, SIGTERM) stops the workers and removes their temp files,
so ``DIR`` holds complete files only. ``DIR/_extract.json`` records the layout, label columns and
config, so a resume cannot mix schemas. The schema is in docs/extract.md and in each file's
metadata (:func:`schema`).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import math
import multiprocessing as mp
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config, load_config, tracker_result_options
from .errors import ConfigError, HandSDKError, MissingDependencyError, SourceError

log = logging.getLogger(__name__)

LAYOUTS = ("long", "wide")
ENGINES = ("local", "ray")
SCHEMA_VERSION = 1
FORMAT = "handsdk-extract"
SETTINGS_FILE = "_extract.json"
MANIFEST_FILE = "_manifest.jsonl"
ERRORS_FILE = "_errors.jsonl"
LIST_SUFFIXES = {".txt", ".lst", ".list"}
#: rows buffered before they are written as a row group (bounds a worker's memory on long videos)
ROWS_PER_GROUP = 50_000
N_LANDMARKS = 21
HANDS = ("left", "right")


def _pa() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401  (the submodule, used as pa.parquet)
    except ImportError as exc:
        raise MissingDependencyError('handsdk extract writes Parquet with pyarrow: pip install '
                                     '"handsdk[extract]" (or "handsdk[ray]")') from exc
    return pyarrow


# -- inputs ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoTask:
    """One video to extract: ``video`` is the path as given (the ``video`` column), ``source``
    the resolved path that is opened, ``name`` the output file's stem (unique per resolved path)."""

    video: str
    source: str
    name: str


def output_name(source: str | Path) -> str:
    """``<stem>-<hash>``: the stem keeps the file recognisable, the hash of the resolved path keeps
    two videos of one name (``a/clip.mp4``, ``b/clip.mp4``) apart."""
    resolved = str(Path(source).resolve())
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(resolved).stem).strip("._")[:60] or "video"
    return f"{stem}-{hashlib.sha1(resolved.encode()).hexdigest()[:10]}"


def _is_video(path: Path) -> bool:
    """Whether the registered ``video`` source takes this file (its suffix)."""
    from .plugins import get_component

    accepts = getattr(get_component("source", "video").factory, "accepts", None)
    return bool(accepts(path)) if accepts is not None else True


def _expand(item: str, base: Path | None, where: str) -> list[str]:
    """Video paths for one input: a file, a folder (recursive), a glob, or a list file."""
    path = Path(item) if base is None or Path(item).is_absolute() else base / item
    text = os.path.normpath(str(path))
    if path.is_dir():
        return sorted(os.path.normpath(str(p)) for p in path.rglob("*") if p.is_file() and _is_video(p))
    if path.is_file():
        if path.suffix.lower() in LIST_SUFFIXES and base is None:
            return _read_list(path)
        return [text]  # named explicitly: tried even with an unusual suffix (failures are recorded)
    if any(c in item for c in "*?["):
        found = sorted(glob.glob(str(path), recursive=True))
        videos = [os.path.normpath(p) for p in found if Path(p).is_file() and _is_video(Path(p))]
        for p in found:
            if Path(p).is_dir():
                videos += _expand(p, None, where)
        if not videos:
            raise ConfigError(f"{where}: the pattern {item!r} matches no video")
        return videos
    raise ConfigError(f"{where}: {text!r} does not exist (give video files, folders, glob patterns "
                      f"or a {'/'.join(sorted(LIST_SUFFIXES))} file listing paths)")


def _read_list(path: Path) -> list[str]:
    """The paths a list file names, one a line (blank lines and ``#`` comments skipped; relative
    paths are relative to the list file's folder)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"list file {str(path)!r} cannot be read: {exc}") from exc
    out: list[str] = []
    for i, line in enumerate(lines, 1):
        line = line.strip()
        if line and not line.startswith("#"):
            out += _expand(line, path.parent, f"{path}:{i}")
    return out


def collect_videos(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[VideoTask]:
    """The videos named by ``inputs`` (files, folders searched recursively, glob patterns, text
    files listing paths), in order, each once (by resolved path)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    items = [os.fspath(i) for i in inputs]
    if not items:
        raise ConfigError("extract needs at least one input (video files, folders, glob patterns or a list file)")
    tasks: list[VideoTask] = []
    seen: set[str] = set()
    for item in items:
        if not str(item).strip():
            raise ConfigError(f"an input is empty ({item!r})")
        for video in _expand(str(item), None, "input"):
            source = str(Path(video).resolve())
            if source not in seen:
                seen.add(source)
                tasks.append(VideoTask(video, source, output_name(source)))
    if not tasks:
        raise ConfigError(f"no videos found in {', '.join(items)}")
    return tasks


# -- schema ------------------------------------------------------------------------------------
COORDINATES = ("long: x, y in pixels of the frame (origin top-left, y down), z the depth relative to "
               "the wrist (wrist = 0, smaller = closer to the camera) in the same pixel scale as x. "
               "wide: x / width, y / height, z / width (MediaPipe's normalised landmarks), NaN where "
               "the hand is absent. Landmark i is MediaPipe's: 0 wrist, 4 thumb tip, 8 index tip, "
               "12 middle tip, 16 ring tip, 20 pinky tip.")


def _field(name: str, type_: Any, unit: str, description: str) -> Any:
    pa = _pa()
    return pa.field(name, type_, metadata={"unit": unit, "description": description})


def _common_fields() -> list[Any]:
    pa = _pa()
    return [
        _field("video", pa.string(), "", "the video's path as given to extract"),
        _field("frame", pa.int32(), "frame", "frame index in the video, from 0"),
        _field("timestamp_ms", pa.float64(), "ms", "frame time: frame / the video's fps"),
        _field("width", pa.int32(), "px", "frame width"),
        _field("height", pa.int32(), "px", "frame height"),
    ]


def schema(layout: str = "long", labels: Sequence[str] = (), config: Config | None = None) -> Any:
    """The Arrow schema of ``layout``'s files, with units and descriptions in each field's
    metadata and the layout, coordinate conventions and config in the schema's (``handsdk``)."""
    pa = _pa()
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    f32, fields = pa.float32(), _common_fields()
    if layout == "long":
        fields += [_field("track_id", pa.int32(), "", "the hand's track in this video, from 1 in order of appearance"),
                   _field("handedness", pa.string(), "", "'left' or 'right' (hand.handedness)"),
                   _field("handedness_score", f32, "0-1", "confidence of handedness"),
                   _field("presence", f32, "0-1", "hand presence score (hand.score)")]
        for axis, unit in (("x", "px"), ("y", "px"), ("z", "px, relative to the wrist")):
            fields += [_field(f"{axis}_{i}", f32, unit, f"landmark {i} {axis}") for i in range(N_LANDMARKS)]
        fields += [_field(f"conf_{i}", f32, "0-1", f"landmark {i} confidence") for i in range(N_LANDMARKS)]
        for key in labels:
            fields += [_field(key, pa.string(), "", f"hand.labels[{key!r}].name (null: no label)"),
                       _field(f"{key}_score", f32, "0-1", f"hand.labels[{key!r}].score")]
    else:
        for axis in ("x", "y", "z"):
            unit = "fraction of height" if axis == "y" else "fraction of width"
            fields += [_field(f"{axis}_{side}_hand_{i}", f32, unit, f"{side} hand landmark {i} {axis} (NaN: absent)")
                       for side in HANDS for i in range(N_LANDMARKS)]
        for side in HANDS:
            fields += [_field(f"presence_{side}_hand", f32, "0-1", f"{side} hand presence (NaN: absent)"),
                       _field(f"track_id_{side}_hand", pa.int32(), "", f"{side} hand's track (null: absent)")]
        for key in labels:
            for side in HANDS:
                fields += [_field(f"{key}_{side}_hand", pa.string(), "", f"{side} hand's labels[{key!r}].name"),
                           _field(f"{key}_score_{side}_hand", f32, "0-1", f"{side} hand's labels[{key!r}].score")]
    names = [f.name for f in fields]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ConfigError(f"the label keys {list(labels)} give columns that clash with others: {clash}")
    meta = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "layout": layout, "labels": list(labels),
            "coordinates": COORDINATES, "handsdk_version": _version(),
            "config": _config_dict(config) if config is not None else None}
    return pa.schema(fields, metadata={"handsdk": json.dumps(meta, default=str)})


def _version() -> str:
    from . import __version__

    return __version__


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What an extracted file says about itself: ``schema`` (layout, conventions, config) and
    ``video`` (source, frames, fps, size, hands), from its Parquet footer (``handsdk`` is also in
    the Arrow schema's metadata, which every reader of the table keeps)."""
    meta = _pa().parquet.read_metadata(path).metadata or {}
    return {k: json.loads(meta[b]) for k, b in (("schema", b"handsdk"), ("video", b"handsdk.video")) if b in meta}


def _config_dict(cfg: Config) -> dict[str, Any]:
    d = asdict(cfg)
    d.pop("origin", None)
    d.pop("source", None)  # extract opens the inputs itself
    return d


def _fingerprint(cfg: Config) -> str:
    """What a resume must match: the config less the options that change speed only."""
    d = {**_config_dict(cfg), "tracker": tracker_result_options(cfg.tracker)}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


# -- rows --------------------------------------------------------------------------------------
class _Rows:
    """A video's rows so far, column-wise, until they are written as a row group."""

    def __init__(self, video: str, layout: str, labels: Sequence[str]):
        self.video, self.layout, self.labels = video, layout, list(labels)
        self.clear()

    def clear(self) -> None:
        self.cols: dict[str, list[Any]] = {}
        self.points: list[np.ndarray] = []  # long: (21, 3) per hand; wide: (2, 21, 3) per frame
        self.conf: list[np.ndarray] = []
        self.n = 0

    def _put(self, **values: Any) -> None:
        for k, v in values.items():
            self.cols.setdefault(k, []).append(v)

    def add(self, result: Any, ids: dict[int, int]) -> int:
        """Add one frame's hands; ``ids`` renumbers the tracker's ids per video (1, 2 … in order of
        appearance, whatever the worker tracked before). Returns the hands added."""
        w, h = result.image_size
        base = {"frame": result.frame_index, "timestamp_ms": float(result.timestamp_ms), "width": w, "height": h}
        hands = result.hands
        for hand in hands:
            ids.setdefault(hand.track_id, len(ids) + 1)
        if self.layout == "long":
            for hand in hands:
                self._put(**base, track_id=ids[hand.track_id], handedness=hand.handedness.label,
                          handedness_score=hand.handedness.score, presence=hand.score)
                for key in self.labels:
                    lab = hand.labels.get(key)
                    self._put(**{key: None if lab is None else str(lab.name),
                                 f"{key}_score": math.nan if lab is None else float(lab.score)})
                self.points.append(np.asarray(hand.landmarks, np.float32))
                self.conf.append(np.asarray(hand.confidence, np.float32))
                self.n += 1
            return len(hands)
        slots = _assign_sides(hands)
        pts = np.full((2, N_LANDMARKS, 3), np.nan, np.float32)
        row: dict[str, Any] = dict(base)
        for s, side in enumerate(HANDS):
            hand = slots[s]
            if hand is not None:
                pts[s] = np.asarray(hand.landmarks, np.float32) / np.array([w, h, w], np.float32)
            row[f"presence_{side}_hand"] = math.nan if hand is None else hand.score
            row[f"track_id_{side}_hand"] = None if hand is None else ids[hand.track_id]
            for key in self.labels:
                lab = None if hand is None else hand.labels.get(key)
                row[f"{key}_{side}_hand"] = None if lab is None else str(lab.name)
                row[f"{key}_score_{side}_hand"] = math.nan if lab is None else float(lab.score)
        self._put(**row)
        self.points.append(pts)
        self.n += 1
        return len(hands)

    def table(self, schema_: Any) -> Any:
        pa = _pa()
        data: dict[str, Any] = {"video": [self.video] * self.n, **self.cols}
        if self.n:
            pts = np.stack(self.points)
            if self.layout == "long":
                conf = np.stack(self.conf)
                for a, axis in enumerate("xyz"):
                    data.update({f"{axis}_{i}": pts[:, i, a] for i in range(N_LANDMARKS)})
                data.update({f"conf_{i}": conf[:, i] for i in range(N_LANDMARKS)})
            else:
                for a, axis in enumerate("xyz"):
                    for s, side in enumerate(HANDS):
                        data.update({f"{axis}_{side}_hand_{i}": pts[:, s, i, a] for i in range(N_LANDMARKS)})
        arrays = [pa.array(data.get(f.name, []), type=f.type) for f in schema_]
        self.clear()
        return pa.Table.from_arrays(arrays, schema=schema_)


def _assign_sides(hands: Sequence[Any]) -> list[Any]:
    """[left, right] for the wide layout: each hand takes the side its handedness says; when two
    claim one side, the one surer of its side keeps it and the other takes the other side (two
    hands in view are a left and a right; a tie is a handedness error). More hands than two: the
    most present two."""
    chosen = sorted(hands, key=lambda h: -h.score)[:2]
    slots: list[Any] = [None, None]
    for hand in sorted(chosen, key=lambda h: -h.handedness.score):
        s = HANDS.index(hand.handedness.label) if hand.handedness.label in HANDS else 0
        slots[s if slots[s] is None else 1 - s] = hand
    return slots


# -- one video ---------------------------------------------------------------------------------
def _peak_rss_mb() -> float:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return math.nan
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def label_keys(tracker: Any) -> list[str]:
    """The ``hand.labels`` keys the tracker's classifier consumers write (their ``key``, else their
    name): the label columns."""
    keys = []
    for slot in tracker.consumers:
        if slot.kind == "classifier":
            key = getattr(slot.consumer, "key", None) or slot.name
            if key not in keys:
                keys.append(str(key))
    return keys


class VideoExtractor:
    """One Tracker and what it takes to turn a video into a Parquet file: what each local worker
    process and each Ray actor holds."""

    def __init__(self, config: Config, out: str, layout: str):
        from .tracker import Tracker

        self.tracker = Tracker(config)
        if any(slot.outputs for slot in self.tracker.consumers):
            self.tracker.close()
            raise ConfigError("extract writes Parquet itself: remove the writer consumers from the config "
                              "([[consumers]] that write files, e.g. 'jsonl', 'video'), which every "
                              "worker would write over")
        self.out, self.layout = Path(out), layout
        self.labels = label_keys(self.tracker)
        self.schema = schema(layout, self.labels, config)

    def __call__(self, task: VideoTask, on_frames: Callable[[int, int | None], None] | None = None) -> dict[str, Any]:
        """Extract one video into ``out/<name>.parquet`` (written to a temp file, renamed when
        complete). Never raises for a bad video: the summary's ``status`` says ``failed`` and
        ``error`` why, and no file is left."""
        from .sources import open_source

        pq = _pa().parquet
        t0 = time.perf_counter()
        final = self.out / f"{task.name}.parquet"
        tmp = self.out / f".{task.name}.parquet.{os.getpid()}.tmp"
        summary: dict[str, Any] = {**asdict(task), "file": final.name, "status": "failed", "error": "",
                                   "frames": 0, "hands": 0, "rows": 0}
        src = writer = None
        try:
            src = open_source(task.source, "video")
            fps = float(getattr(src, "fps", None) or 0.0)
            total = getattr(src, "frame_count", None)
            rows, ids = _Rows(task.video, self.layout, self.labels), {}
            writer = pq.ParquetWriter(str(tmp), self.schema, compression="zstd")
            self._new_video()
            size, last_report = None, time.monotonic()
            for item in src:
                frame, ts = item if isinstance(item, tuple) else (item, None)
                result = self.tracker.process(frame, ts)
                size = result.image_size
                summary["hands"] += rows.add(result, ids)
                summary["frames"] += 1
                if rows.n >= ROWS_PER_GROUP:
                    writer.write_table(rows.table(self.schema))
                if on_frames is not None and time.monotonic() - last_report > 1.0:
                    on_frames(summary["frames"], total)
                    last_report = time.monotonic()
            if total and summary["frames"] < total - 1:  # the source logs and ends quietly; here it is a failure
                raise SourceError(f"decoding stopped after {summary['frames']} of {total} frames (the file is "
                                  "truncated or corrupt)")
            summary["rows"] = summary["hands"] if self.layout == "long" else summary["frames"]
            writer.write_table(rows.table(self.schema))
            w, h = size or (0, 0)
            writer.add_key_value_metadata({"handsdk.video": json.dumps(
                {"video": task.video, "source": task.source, "frames": summary["frames"], "fps": fps,
                 "width": w, "height": h, "hands": summary["hands"], "tracks": len(ids)})})
            writer.close()
            writer = None
            os.replace(tmp, final)
            summary["status"] = "ok"
        except Exception as exc:  # a bad video is a failed row, never the end of the batch
            summary["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        finally:
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()
            if src is not None:
                with contextlib.suppress(Exception):
                    src.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        summary.update(seconds=time.perf_counter() - t0, pid=os.getpid(), peak_rss_mb=_peak_rss_mb())
        return summary

    def _new_video(self) -> None:
        """Every video starts from the same state, whichever videos this worker did before: the
        tracker's tracks and the consumers' (their optional ``reset``, e.g. a classifier's
        per-track history); track ids are renumbered per video by :class:`_Rows`."""
        self.tracker.reset()
        for slot in self.tracker.consumers:
            reset = getattr(slot.consumer, "reset", None)
            if callable(reset):
                reset()

    def close(self) -> None:
        self.tracker.close()


def _quiet_worker(verbose: bool) -> None:
    """A worker's logging: the decoder's own lines and the source's truncation warning are not
    shown (a failure is in the errors file); one OpenCV thread per worker (workers fill the cores)."""
    import cv2

    cv2.setNumThreads(1)
    if not verbose:
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        with contextlib.suppress(AttributeError):
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        logging.getLogger("handsdk_sources").setLevel(logging.ERROR)


@dataclass(frozen=True)
class _Job:
    """What every worker needs (picklable): the config, the output folder and the layout."""

    config: Config
    out: str
    layout: str
    verbose: bool = False


# -- local engine ------------------------------------------------------------------------------
def _local_worker(conn: Connection, job: _Job) -> None:
    """A worker process: build the extractor, then extract the videos the driver sends until it
    sends ``None``. SIGINT is the driver's to handle (it stops the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _quiet_worker(job.verbose)
    try:
        extractor = VideoExtractor(job.config, job.out, job.layout)
    except BaseException as exc:
        conn.send(("fatal", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    try:
        while True:
            try:
                task = conn.recv()
            except EOFError:
                return
            if task is None:
                return
            summary = extractor(task, lambda n, total: conn.send(("frames", (n, total))))
            conn.send(("done", summary))
    finally:
        extractor.close()


def _run_local(tasks: Sequence[VideoTask], job: _Job, workers: int,
               report: Callable[[str, Any], None]) -> None:
    """Extract ``tasks`` on ``workers`` spawned processes, calling ``report("done", summary)``
    per video and ``report("frames", (task, frames, total))`` for progress."""
    ctx = mp.get_context("spawn")
    procs: dict[Connection, list[Any]] = {}  # driver end -> [process, task or None]
    queue = deque(tasks)

    def start() -> None:
        here, there = ctx.Pipe()
        proc = ctx.Process(target=_local_worker, args=(there, job), name="handsdk-extract", daemon=True)
        proc.start()
        there.close()
        procs[here] = [proc, None]

    def retire(conn: Connection) -> None:
        proc, task = procs.pop(conn)
        conn.close()
        proc.join(timeout=5)
        if task is not None:  # the process died with a video in hand: that video failed, the batch goes on
            report("done", {**asdict(task), "file": "", "status": "failed", "frames": 0, "hands": 0, "rows": 0,
                            "error": f"the worker process died on this video (exit code {proc.exitcode})",
                            "seconds": 0.0, "pid": proc.pid, "peak_rss_mb": math.nan})
            if queue:
                start()

    for _ in range(min(workers, len(queue))):
        start()
    try:
        while procs:
            sentinels = {p.sentinel: conn for conn, (p, _) in procs.items()}
            for ready in wait([*procs, *sentinels], timeout=1.0):
                conn = sentinels.get(ready, ready)
                if conn not in procs:
                    continue
                if ready is not conn and not conn.poll():  # the process ended, nothing left to read
                    retire(conn)
                    continue
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):
                    retire(conn)
                    continue
                if kind == "fatal":
                    raise HandSDKError(f"an extract worker could not start: {payload}")
                if kind == "frames":
                    report("frames", (procs[conn][1], *payload))
                    continue
                if kind == "done":
                    procs[conn][1] = None
                    report("done", payload)
                if queue:
                    procs[conn][1] = queue.popleft()
                    conn.send(procs[conn][1])
                else:
                    conn.send(None)
                    procs[conn][1] = None
                    retire(conn)
    finally:
        for proc, _ in procs.values():
            proc.terminate()
        for conn, (proc, _) in list(procs.items()):
            proc.join(timeout=10)
            conn.close()


# -- ray engine --------------------------------------------------------------------------------
def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError('the ray engine needs Ray Data: pip install "handsdk[ray]"') from exc
    return ray


class _RayExtractor:
    """A Ray Data actor (``map_batches`` with an actor pool): one Tracker, one video per batch;
    it writes the video's file and returns its summary (one row, JSON)."""

    def __init__(self, job: _Job):
        _quiet_worker(job.verbose)
        self.extractor = VideoExtractor(job.config, job.out, job.layout)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = []
        for video, source, name in zip(batch["video"], batch["source"], batch["name"], strict=True):
            summary = self.extractor(VideoTask(str(video), str(source), str(name)))
            out.append(json.dumps(summary))
        return {"summary": np.array(out, dtype=object)}


def _run_ray(tasks: Sequence[VideoTask], job: _Job, workers: int | None, address: str | None,
             report: Callable[[str, Any], None]) -> None:
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        ray.init(address=address, num_cpus=None if address else (workers or os.cpu_count() or 1),
                 include_dashboard=False, log_to_driver=job.verbose,
                 logging_level=logging.INFO if job.verbose else logging.ERROR)
        started = True
    elif address:
        log.warning("Ray is already initialised in this process: ray_address %r is not used", address)
    try:
        from ray.data import ActorPoolStrategy, DataContext

        ctx = DataContext.get_current()
        ctx.enable_progress_bars = False  # ours counts videos, frames, FPS and the ETA
        if not job.verbose:  # Ray Data's own lines (execution plans, "progress bars disabled")
            logging.getLogger("ray.data").setLevel(logging.ERROR)
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        size = min(workers or cpus, cpus, len(tasks))
        if workers and workers > cpus:
            log.warning("the Ray cluster has %d CPUs: %d actors, not %d", cpus, size, workers)
        ds = ray.data.from_items([asdict(t) for t in tasks], override_num_blocks=len(tasks))
        done = ds.map_batches(_RayExtractor, fn_constructor_kwargs={"job": job}, batch_size=1,
                              batch_format="numpy", num_cpus=1,
                              compute=ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=1))
        # each video's summary as soon as its block is out (no prefetch: a video done is marked done)
        for batch in done.iter_batches(batch_size=None, prefetch_batches=0, batch_format="numpy"):
            for summary in batch["summary"]:
                report("done", json.loads(summary))
    finally:
        if started:
            ray.shutdown()


# -- the driver --------------------------------------------------------------------------------
@dataclass
class ExtractSummary:
    """What a run did. ``peak_rss_mb``: each worker's peak resident memory (by process id)."""

    out: Path
    engine: str
    workers: int
    videos: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    frames: int = 0
    hands: int = 0
    rows: int = 0
    seconds: float = 0.0
    worker_seconds: float = 0.0  # the workers' time on the videos, summed (start-up and idle left out)
    first_result_s: float | None = None
    peak_rss_mb: dict[int, float] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def fps(self) -> float:
        """Frames per second of the whole run, start-up included."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def worker_fps(self) -> float:
        """Frames per second of one worker while it works on videos: what each added core adds."""
        return self.frames / self.worker_seconds if self.worker_seconds > 0 else 0.0

    def text(self) -> str:
        rss = [v for v in self.peak_rss_mb.values() if math.isfinite(v)]
        parts = [f"{self.ok + self.skipped} of {self.videos} videos in {self.out}"
                 + (f" ({self.ok} now, {self.skipped} done before)" if self.skipped else "")
                 + (f"; {self.failed} failed (listed in {self.out / ERRORS_FILE})" if self.failed else ""),
                 f"{self.frames} frames, {self.hands} hands, {self.fps:.1f} frames/s over {self.seconds:.1f} s "
                 f"({self.engine}, {self.workers} worker{'s' if self.workers != 1 else ''}, "
                 f"{self.worker_fps:.1f} frames/s each)"
                 + (f"; first video done after {self.first_result_s:.1f} s" if self.first_result_s else "")
                 + (f"; peak RSS per worker {max(rss):.0f} MB" if rss else "")]
        return "\n".join(parts)


class _Progress:
    """The progress line on stderr: videos done, frames, frames per second, ETA."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled = total, enabled
        self.t0 = time.perf_counter()
        self.done = self.failed = self.frames = 0
        self.partial: dict[str, tuple[int, int | None]] = {}  # video in flight -> (frames, total)
        self.last = 0.0

    def frames_in(self, name: str, n: int, total: int | None) -> None:
        self.partial[name] = (n, total)
        self.show()

    def finished(self, summary: dict[str, Any]) -> None:
        self.partial.pop(summary["name"], None)
        self.done += 1
        self.failed += summary["status"] != "ok"
        self.frames += summary["frames"]
        self.show(force=self.done == self.total)

    def show(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (not force and now - self.last < 0.25):
            return
        self.last = now
        elapsed = max(now - self.t0, 1e-9)
        frames = self.frames + sum(n for n, _ in self.partial.values())
        units = self.done + sum(min(1.0, n / t) for n, t in self.partial.values() if t)
        eta = elapsed / units * (self.total - units) if units > 0 else None
        bar = "#" * int(24 * units / self.total) + "-" * (24 - int(24 * units / self.total))
        text = (f"\r[{bar}] {self.done}/{self.total} videos  {frames} frames  {frames / elapsed:5.1f} FPS  "
                f"ETA {_clock(eta) if eta is not None else '?'}" + (f"  {self.failed} failed" if self.failed else ""))
        sys.stderr.write(text + " " * 4)
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled and (self.done or self.partial):
            sys.stderr.write("\n")
            sys.stderr.flush()


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """A JSON-lines file's records; a line cut short by a crash is skipped."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            if isinstance(rec, dict):
                out.append(rec)
    return out


def _remove_temps(out: Path) -> None:
    """Temp files of workers that were stopped (this run's, or a killed run's)."""
    for tmp in out.glob(".*.parquet.*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()


def _prepare_config(config: Any, workers: int | None = None) -> Config:
    """The config, with one backend thread per worker unless it says otherwise: the workers fill
    the cores, and the same thread count in every engine keeps their rows identical. Where the
    ``workers`` (None: one per core) fill the cores, ``overlap_detector`` is off unless it says
    otherwise: a second thread per worker then only takes a core from another worker (2 local
    workers on 2 cores: 137 against 118 frames/s, docs/benchmarks.md)."""
    import copy
    import inspect

    from .plugins import get_component

    cfg = copy.deepcopy(load_config(config))
    cfg.source = None
    factory = get_component("backend", cfg.backend.name, f"{cfg.origin} [backend]").factory
    with contextlib.suppress(TypeError, ValueError):
        if "threads" in inspect.signature(factory).parameters and "threads" not in cfg.backend.options:
            cfg.backend.options = {**cfg.backend.options, "threads": 1}
    if cfg.tracker.overlap_detector is None:
        cfg.tracker.overlap_detector = workers is not None and workers < (os.cpu_count() or 1)
    return cfg


def _settings(out: Path, layout: str, labels: list[str], cfg: Config, resume: bool) -> None:
    """Record the run's layout, label columns and config in ``out/_extract.json``; refuse an
    earlier extraction's folder without ``resume``, and a resume whose schema or config differs."""
    path = out / SETTINGS_FILE
    mine = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "layout": layout, "labels": labels,
            "config_fingerprint": _fingerprint(cfg), "config": _config_dict(cfg)}
    if path.is_file():
        if not resume:
            raise ConfigError(f"{out} holds an earlier extraction ({SETTINGS_FILE}): pass --resume (resume=True) "
                              "to continue it, or choose another folder")
        try:
            theirs = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"{path} is not valid JSON ({exc}); remove it to start over") from exc
        for key in ("layout", "labels", "config_fingerprint"):
            if theirs.get(key) != mine[key]:
                raise ConfigError(f"{out} was extracted with {key} {theirs.get(key)!r}, this run has {mine[key]!r}: "
                                  "resuming would mix two schemas or configs in one dataset; use the same "
                                  "--layout and --config, or another folder")
        return
    _write_atomic(path, json.dumps(mine, indent=2, default=str) + "\n")


def extract(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], out: str | os.PathLike[str], *,
            config: str | Path | dict[str, Any] | Config | None = None, layout: str = "long",
            engine: str = "local", workers: int | None = None, resume: bool = False,
            ray_address: str | None = None, progress: bool | None = None,
            verbose: bool = False) -> ExtractSummary:
    """Extract hand landmarks from every video in ``inputs`` into Parquet files under ``out``.

    ``inputs``: video files, folders (searched recursively), glob patterns, or text files listing
    paths. ``config``: the tracker's config (TOML path, dict or Config; classifier consumers give
    label columns). ``layout``: ``"long"`` or ``"wide"``. ``engine``: ``"local"`` (``workers``
    processes, default: the cores) or ``"ray"`` (``workers`` actors, default: the cluster's CPUs;
    ``ray_address`` joins a cluster). ``resume``: skip the videos an earlier run into ``out``
    finished. ``progress``: a progress line on stderr (default: when stderr is a terminal).

    Returns an :class:`ExtractSummary`; failed videos are in it and in ``out/_errors.jsonl``.
    An interrupt stops the workers, leaves complete files only and is raised again.
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be a whole number >= 1, got {workers!r}")
    if ray_address is not None and engine != "ray":
        raise ConfigError("ray_address is for engine='ray'")
    _pa()
    if engine == "ray":
        _import_ray()
    t0 = time.perf_counter()
    tasks = collect_videos(inputs)
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {str(out_dir)!r} is a file; give a folder")
    cfg = _prepare_config(config, workers)
    probe = VideoExtractor(cfg, str(out_dir), layout)  # a bad config fails here, before any worker starts
    labels = probe.labels
    probe.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    _settings(out_dir, layout, labels, cfg, resume)
    _remove_temps(out_dir)
    manifest_path, errors_path = out_dir / MANIFEST_FILE, out_dir / ERRORS_FILE
    done = {r.get("name") for r in _read_jsonl(manifest_path) if (out_dir / f"{r.get('name')}.parquet").is_file()}
    todo = [t for t in tasks if t.name not in done]
    errors = {r["name"]: r for r in _read_jsonl(errors_path) if r.get("name") and r["name"] not in done}
    n_workers = workers or (os.cpu_count() or 1)
    summary = ExtractSummary(out_dir, engine, n_workers, videos=len(tasks), skipped=len(tasks) - len(todo))
    bar = _Progress(len(todo), sys.stderr.isatty() if progress is None else progress)
    job = _Job(cfg, str(out_dir.resolve()), layout, verbose)

    def write_errors() -> None:
        _write_atomic(errors_path, "".join(json.dumps(e) + "\n" for e in errors.values()))

    answered: set[str] = set()

    def report(kind: str, payload: Any) -> None:
        if kind == "frames":
            task, n, total = payload
            if task is not None:
                bar.frames_in(task.name, n, total)
            return
        s = payload
        answered.add(s["name"])
        if summary.first_result_s is None:
            summary.first_result_s = time.perf_counter() - t0
        if math.isfinite(s.get("peak_rss_mb", math.nan)):
            summary.peak_rss_mb[s["pid"]] = max(summary.peak_rss_mb.get(s["pid"], 0.0), s["peak_rss_mb"])
        summary.frames += s["frames"]
        summary.worker_seconds += s["seconds"]
        if s["status"] == "ok":
            summary.ok += 1
            summary.hands += s["hands"]
            summary.rows += s["rows"]
            with manifest_path.open("a", encoding="utf-8") as f:  # the mark: the file is complete
                f.write(json.dumps({k: s[k] for k in ("video", "source", "name", "file", "frames", "hands",
                                                      "rows")}) + "\n")
                f.flush()
                os.fsync(f.fileno())
            if errors.pop(s["name"], None) is not None:
                write_errors()
        else:
            summary.failed += 1
            errors[s["name"]] = {k: s[k] for k in ("video", "source", "name", "error", "frames")}
            write_errors()
        bar.finished(s)

    write_errors()
    try:
        if todo and engine == "local":
            _run_local(todo, job, min(n_workers, len(todo)), report)
        elif todo:
            _run_ray(todo, job, workers, ray_address, report)
    except KeyboardInterrupt as exc:
        bar.end()
        _remove_temps(out_dir)
        from .script import Interrupted

        signum = getattr(exc, "signum", signal.SIGINT)
        raise Interrupted(signum, f"{summary.ok} of {len(todo)} videos finished; {out_dir} holds complete "
                                  "files only: run again with --resume to continue") from None
    bar.end()
    _remove_temps(out_dir)  # a Ray actor that was stopped leaves its temp file behind
    for t in todo:  # a video no worker answered for (a Ray task that was dropped) failed too
        if t.name not in answered:
            summary.failed += 1
            errors[t.name] = {**asdict(t), "error": "no result came back for this video", "frames": 0}
    write_errors()
    summary.errors = [errors[t.name] for t in tasks if t.name in errors]
    summary.seconds = time.perf_counter() - t0
    return summary

