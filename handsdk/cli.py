"""``handsdk`` command line: demo, track, plugins, eval, bench, train."""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ConfigError
from .script import ArgumentParser, Interrupted, deferred_signals, positive_int, run_script


def _progress(i: int, total: int | None, t0: float, hands: int) -> None:
    fps = (i + 1) / max(time.perf_counter() - t0, 1e-9)
    if total:
        f = min(1.0, (i + 1) / total)
        bar = "#" * int(30 * f) + "-" * (30 - int(30 * f))
        sys.stderr.write(f"\r[{bar}] {i + 1}/{total} frames  {fps:5.1f} FPS  hands {hands}")
    else:
        sys.stderr.write(f"\r{i + 1} frames  {fps:5.1f} FPS  hands {hands}")
    sys.stderr.flush()


def _track(source: Any, config: dict | str | None, save_video: str | None, jsonl: str | None,
           show: bool, max_frames: int | None = None) -> dict[str, Any]:
    """Track ``source`` with the CLI's outputs. An interrupt (SIGINT, SIGTERM) ends the run:
    the tracker closes (writers keep every frame so far) and :class:`Interrupted` says so."""
    from .config import PluginSection, load_config
    from .sources import open_source
    from .tracker import Tracker

    cfg = load_config(config)
    opened = hasattr(source, "__iter__") and not isinstance(source, (str, bytes))
    src = source if opened else open_source(source)
    try:
        src_fps = float(getattr(src, "fps", None) or 0.0)
        if save_video is not None:  # a source that reports no usable rate gets the tracker's
            fps = src_fps if math.isfinite(src_fps) and src_fps > 0 else cfg.tracker.fps
            cfg.consumers.append(PluginSection("video", {"path": save_video, "fps": fps}, "--save-video"))
        if jsonl is not None:
            cfg.consumers.append(PluginSection("jsonl", {"path": jsonl}, "--jsonl"))
        if show:
            cfg.consumers.append(PluginSection("overlay", {"show": True}, "--show"))
        total = len(src) if hasattr(src, "__len__") else None
        if max_frames:
            total = min(total or max_frames, max_frames)
        frames = hands_found = frames_with_hand = detector_frames = 0
        pipeline_ms = 0.0
        ids: set[int] = set()
        stopped: KeyboardInterrupt | None = None
        with Tracker(cfg) as tracker:
            outputs = [o for slot in tracker.consumers for o in slot.outputs]
            t0 = time.perf_counter()
            stall = 5.0 if isinstance(source, int) else None  # a camera that hangs ends the run
            try:
                for i, result in enumerate(tracker.run(src, max_frames=max_frames, stall_timeout=stall)):
                    frames += 1
                    pipeline_ms += result.timings.get("pipeline", 0.0)
                    hands_found += len(result.hands)
                    frames_with_hand += bool(result.hands)
                    detector_frames += result.detector_ran
                    ids.update(h.track_id for h in result.hands)
                    if i % 5 == 0 or (total and i + 1 == total):
                        _progress(i, total, t0, len(result.hands))
            except KeyboardInterrupt as exc:  # the outputs are finished when the tracker closes
                stopped = exc
            finally:
                if frames:
                    sys.stderr.write("\n")  # ends the progress line, before any message
            elapsed = time.perf_counter() - t0
            stats = dict(tracker.stats)
            with deferred_signals():  # a signal now would cut a file's rename short
                tracker.close()
    finally:
        close = getattr(src, "close", None)
        if close:
            close()
    if stopped is not None:
        files = [o.name for o in outputs if not o.is_stdout]
        kept = (f"; {' and '.join(files)} {'hold' if len(files) > 1 else 'holds'} them" if files
                else "; standard output has them" if outputs else "")
        raise Interrupted(getattr(stopped, "signum", signal.SIGINT), f"stopped after {frames} frames{kept}")
    return {"frames": frames, "frames_with_hand": frames_with_hand, "hands": hands_found,
            "tracks": len(ids), "fps": frames / elapsed if elapsed else 0.0,
            "tracking_fps": 1000.0 * frames / pipeline_ms if pipeline_ms else 0.0,
            "detector_calls": stats["detector_calls"], "detector_frames": detector_frames,
            "stdout_is_data": any(o.carries_stdout() for o in outputs)}


def cmd_demo(args: argparse.Namespace) -> int:
    """Track the bundled synthetic clip: writes handsdk_demo.mp4 and handsdk_demo.jsonl."""
    out = Path(args.out)
    if args.out in ("", "-") or args.out.endswith(("/", os.sep)) or out.name in ("", ".", ".."):
        raise ConfigError(f"--out must be a file stem like 'results/demo' (writes STEM.mp4 and STEM.jsonl), "
                          f"got {args.out!r}")
    video, jsonl = out.with_suffix(".mp4"), out.with_suffix(".jsonl")
    print(f"tracking the bundled synthetic clip ({args.frames} frames, rendered on the fly)")
    from .sources import open_source

    src = open_source("synthetic", n_frames=args.frames)
    s = _track(src, args.config, str(video), str(jsonl), show=False)
    print(f"frames: {s['frames']}  with a hand: {s['frames_with_hand']}  hands found: {s['hands']}  "
          f"tracks: {s['tracks']}  detector calls: {s['detector_calls']}")
    print(f"FPS: tracking {s['tracking_fps']:.1f}, whole loop {s['fps']:.1f} (rendering the clip and "
          "writing the video included)")
    print(f"wrote {video} and {jsonl}")
    return 0


def cmd_track(args: argparse.Namespace) -> int:
    from .sources import source_spec

    source: Any = source_spec(args.source)
    s = _track(source, args.config, args.save_video, args.jsonl, args.show, args.max_frames)
    print(f"{s['frames']} frames, a hand in {s['frames_with_hand']}, {s['tracks']} track(s), "
          f"tracking {s['tracking_fps']:.1f} FPS (whole loop {s['fps']:.1f}), detector ran on "
          f"{s['detector_frames']} frames ({s['detector_calls']} calls: tiles count one each)", file=sys.stderr if s["stdout_is_data"] else sys.stdout)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import KINDS, components, load_failures, plugin_distribution, pm, unknown_hooks

    rows = [(c.kind, c.name, c.distribution, c.version, c.plugin)
            for kind in KINDS for c in components(kind).values()]
    listed = {r[4] for r in rows}
    for name, plugin in pm.list_name_plugin():  # plugins that only listen to events or add commands
        if name not in listed and plugin is not None:
            hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
            rows.append(("hooks", ",".join(hooks) or "(none)", *plugin_distribution(name), name))
    widths = [max(len(str(r[i])) for r in rows + [("kind", "name", "distribution", "version", "plugin")])
              for i in range(5)]
    for r in [("kind", "name", "distribution", "version", "plugin")] + rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)))
    for f in load_failures:
        print(f"FAILED TO LOAD  {f.name} ({f.value}, {f.distribution}): {f.error}")
    for plugin, hook in unknown_hooks():
        print(f"UNKNOWN HOOK  {plugin}: {hook} is not a handsdk hook, so it is never called")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from . import evaluate as ev
    from .data import teacher_root
    from .outputs import OutputFile, refuse_clashes
    from .tracker import Tracker

    if args.video and not args.reference:
        raise ConfigError("--video needs --reference (per-frame landmarks JSON)")
    if not args.video and not args.images:
        raise ConfigError("give --images REFERENCE or --video VIDEO --reference JSON")
    if args.per_photo and not args.images:
        raise ConfigError("--per-photo needs --images (it lists the photos scored)")
    # checked now, written at the end: a bad --out must not cost the evaluation
    out = None if args.out is None else OutputFile(args.out, "--out")
    per_photo = None if args.per_photo is None else OutputFile(args.per_photo, "--per-photo")
    records: list[dict] = []
    outputs = [o for o in (out, per_photo) if o is not None]
    if outputs:
        refuse_clashes(outputs, [(f"the {flag} file", Path(value)) for flag, value in
                                 (("--images", args.images), ("--video", args.video),
                                  ("--reference", args.reference)) if value])
    teacher = None
    if not args.no_mediapipe and teacher_root() is not None:
        from .train.teacher import MediaPipeTeacher

        teacher = MediaPipeTeacher(teacher_root(), args.mediapipe_variant)
    with Tracker(args.config) as tracker:
        if args.video:
            results = ev.evaluate_video(Path(args.video), Path(args.reference), tracker, teacher)
        else:
            samples = loaded = ev.load_references(Path(args.images))
            if args.split:
                samples = [s for s in samples if s.meta.get("split") in (None, args.split)]
            if args.datasets:
                samples = [s for s in samples if s.meta.get("dataset") in args.datasets]
            if args.limit:
                samples = samples[: args.limit]
            if not samples:
                splits = sorted({str(s.meta.get("split")) for s in loaded})
                sets = sorted({str(s.meta.get("dataset")) for s in loaded})
                raise ConfigError(f"nothing to score: none of the {len(loaded)} references in {args.images} is "
                                  f"left after --split / --datasets (splits there: {', '.join(splits)}; "
                                  f"datasets: {', '.join(sets)})")
            results = ev.evaluate_images(samples, tracker, teacher, perturb=args.perturb,
                                         per_photo=records if per_photo is not None else None)
    table_to = sys.stderr if any(o.carries_stdout() for o in outputs) else sys.stdout
    print(ev.format_table(results), file=table_to)
    if out is not None:
        out.write((json.dumps(results, indent=2) + "\n").encode())
        out.commit()
    if per_photo is not None:
        per_photo.write("".join(json.dumps(r) + "\n" for r in records).encode())
        per_photo.commit()
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    return bench_main(args.rest)


def cmd_extract(args: argparse.Namespace) -> int:
    """Landmarks from many videos into Parquet (handsdk.extract); exit status 3 when the batch
    finished but some videos failed (listed in DIR/_errors.jsonl)."""
    from .extraction import extract

    summary = extract(args.inputs, args.out, config=args.config, layout=args.layout, engine=args.engine,
                      workers=args.workers, resume=args.resume, ray_address=args.ray_address,
                      progress=not args.no_progress, verbose=args.verbose)
    print(summary.text())
    return 3 if summary.failed else 0


def cmd_train(args: argparse.Namespace) -> int:
    from .train import detector, landmark

    return {"landmark": landmark.main, "detector": detector.main}[args.model](args.rest)


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="handsdk", description="Hand tracking and gesture recognition.")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--version", action="version", version=f"handsdk {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="track the bundled synthetic clip (no webcam, no data needed)")
    p.add_argument("--out", default="handsdk_demo", help="output stem: writes STEM.mp4 and STEM.jsonl")
    p.add_argument("--frames", type=positive_int, default=150)
    p.add_argument("--config")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("track", help="track a video, camera index, image or folder")
    p.add_argument("source")
    p.add_argument("--config")
    p.add_argument("--show", action="store_true", help="show the overlay in a window")
    p.add_argument("--save-video")
    p.add_argument("--jsonl")
    p.add_argument("--max-frames", type=positive_int)
    p.set_defaults(func=cmd_track)

    p = sub.add_parser("plugins", help="list every plugin with its kind, name, distribution, version")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("eval", help="landmark accuracy vs reference keypoints, and vs MediaPipe")
    p.add_argument("--images", help="reference: .jsonl of {path, landmarks}, COCO keypoints JSON, or a folder")
    p.add_argument("--video")
    p.add_argument("--reference", help="per-frame reference landmarks for --video (JSON list)")
    p.add_argument("--split", help="only records of this split (e.g. valid)")
    p.add_argument("--datasets", nargs="*", help="only records of these datasets")
    p.add_argument("--limit", type=positive_int, help="score only the first N references")
    p.add_argument("--perturb", choices=("small", "tight", "rot90", "dark", "blur"),
                   help="score the photos made harder (hand small in a large frame, cropped tight, "
                        "turned 90°, low light, motion blur), the reference moved along")
    p.add_argument("--config")
    p.add_argument("--no-mediapipe", action="store_true", help="skip MediaPipe's TFLite models")
    p.add_argument("--mediapipe-variant", default="full", choices=("full", "lite"))
    p.add_argument("--out", help="write the results as JSON")
    p.add_argument("--per-photo", help="write one JSON line per scored photo (its errors and whether a hand was "
                                       "found on its hand-free strip), for comparing two runs photo by photo "
                                       "(scripts/compare_evals.py)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="speed/memory/agreement vs MediaPipe (handsdk bench --help)",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("extract", help="landmarks from many videos into Parquet (local processes or Ray)",
                       description="Track every video from its first frame to its last and write one Parquet "
                                   "file per video under --out (schema: docs/extract.md). Exit status 3: "
                                   "some videos failed (listed in OUT/_errors.jsonl).")
    p.add_argument("inputs", nargs="+", help="video files, folders (recursive), glob patterns, or .txt files "
                                             "listing paths")
    p.add_argument("--out", required=True, help="output folder (a Parquet dataset)")
    p.add_argument("--config", help="tracker config (TOML); classifier consumers add label columns")
    p.add_argument("--layout", choices=("long", "wide"), default="long",
                   help="long: a row per hand per frame, pixels; wide: a row per frame, x_left_hand_0 … "
                        "z_right_hand_20 normalised as MediaPipe's")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: worker processes; ray: Ray Data actors (pip install \"handsdk[ray]\")")
    p.add_argument("--workers", type=positive_int, help="processes or Ray actors (default: the cores, or the "
                                                        "Ray cluster's CPUs)")
    p.add_argument("--ray-address", help="join this Ray cluster (e.g. auto, on one of its nodes); without it a "
                                         "local Ray starts")
    p.add_argument("--resume", action="store_true", help="continue an earlier run into --out: skip the "
                                                         "videos it finished")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("train", help="train a model (needs handsdk[train]); --help after the model")
    p.add_argument("model", choices=("landmark", "detector"))
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_train)

    from .plugins import call_hook_safely

    call_hook_safely("handsdk_register_commands", subparsers=sub)  # plugins' own subcommands
    # commands that hand their options to another parser (bench, train, plugin commands) keep
    # everything they did not recognise themselves
    args, unknown = ap.parse_known_args(argv)
    if unknown:
        if not hasattr(args, "rest"):
            ap.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.rest = unknown + args.rest
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # OpenCV's and FFmpeg's own lines; handsdk says what failed in one line
        import cv2

        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return run_script(lambda: args.func(args))
