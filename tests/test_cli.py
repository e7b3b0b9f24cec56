"""Every CLI error is one ``error:`` line and exit status 2: a table of hostile command lines run
as real ``python -m handsdk`` processes, and a check that every parser in the project is
handsdk's (no prefix matching, one-line errors)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
LONG = "a" * 300

#: (arguments, a piece of the error line); none of them may track, write or print a traceback
GARBAGE: list[tuple[list[str], str]] = [
    ([], "required: command"),
    (["bogus"], "invalid choice"),
    (["--bogus"], "required: command"),
    (["--vers"], "required: command"),
    (["track"], "required: source"),
    (["track", "²"], "no source can open"),
    (["track", "٣"], "no source can open"),
    (["track", ""], "the source is empty"),
    (["track", " "], "the source is empty"),
    (["track", "/nonexistent.mp4"], "does not exist"),
    (["track", LONG + ".mp4"], "File name too long"),
    (["track", "\x01"], "no source can open"),
    (["track", "emptydir"], "holds no images"),
    (["track", "afile"], "no source can open"),
    (["track", "synthetic", "extra"], "unrecognized arguments: extra"),
    (["track", "synthetic", "--jsonl", ""], "must be a file path"),
    (["track", "synthetic", "--save-video", ""], "must be a file path"),
    (["track", "synthetic", "--save-vid", "x.mp4"], "unrecognized arguments: --save-vid"),
    (["track", "synthetic", "--json", "x.jsonl"], "unrecognized arguments: --json"),
    (["track", "synthetic", "--max-frame", "3"], "unrecognized arguments: --max-frame"),
    (["track", "synthetic", "--max-frames", "0"], ">= 1"),
    (["track", "synthetic", "--max-frames", "-1"], ">= 1"),
    (["track", "synthetic", "--max-frames", "abc"], ">= 1"),
    (["track", "synthetic", "--max-frames", "1e3"], ">= 1"),
    (["track", "synthetic", "--config", "/nonexistent.toml"], "nonexistent.toml"),
    (["track", "synthetic", "--config", "adir"], "adir"),
    (["track", "synthetic", "--config", "in.mp4"], "in.mp4"),
    (["track", "synthetic", "--jsonl", LONG], "File name too long"),
    (["track", "synthetic", "--jsonl", "adir/"], "names a folder"),
    (["track", "synthetic", "--save-video", "x.txt"], "cannot write"),
    (["track", "in.mp4", "--save-video", "in.mp4"], "would destroy it"),
    (["track", "in.mp4", "--jsonl", "./in.mp4"], "would destroy it"),
    (["track", "synthetic", "--jsonl", "a.x", "--save-video", "a.x"], "both write"),
    (["demo", "--out", ""], "--out must be a file stem"),
    (["demo", "--out", "/"], "--out must be a file stem"),
    (["demo", "--out", "-"], "--out must be a file stem"),
    (["demo", "--out", "adir/"], "--out must be a file stem"),
    (["demo", "--out", "."], "--out must be a file stem"),
    (["demo", "--out", "afile/x"], "is a file, not a folder"),
    (["demo", "--frames", "0"], ">= 1"),
    (["demo", "--frames", "x"], ">= 1"),
    (["demo", "--fr", "5"], "unrecognized arguments: --fr"),
    (["eval"], "give --images"),
    (["eval", "--images", "in.mp4", "--no-mediapipe"], "not a text file"),
    (["eval", "--images", "/nonexistent", "--no-mediapipe"], "does not exist"),
    (["eval", "--images", "emptydir", "--no-mediapipe"], "no images"),
    (["eval", "--video", "in.mp4", "--no-mediapipe"], "needs --reference"),
    (["eval", "--video", "in.mp4", "--reference", "in.mp4", "--no-mediapipe"], "cannot be read"),
    (["eval", "--images", "afile", "--no-mediapipe", "--out", "afile"], "would destroy it"),
    (["eval", "--images", "afile", "--no-mediapipe", "--out", "missing/r.json"], "does not exist"),
    (["eval", "--images", "afile", "--no-mediapipe", "--out", "adir"], "is a folder"),
    (["eval", "--video", "in.mp4", "--reference", "in.mp4", "--per-photo", "p.jsonl"], "needs --images"),
    (["eval", "--images", "afile", "--no-mediapipe", "--per-photo", "afile"], "would destroy it"),
    (["eval", "--images", "afile", "--no-mediapipe", "--out", "r.json", "--per-photo", "r.json"], "both write"),
    (["track", "img.png", "--jsonl", "img.png"], "would destroy it"),
    (["eval", "--perturb", "bogus"], "invalid choice"),
    (["eval", "--limit", "0"], ">= 1"),
    (["eval", "--im", "x"], "unrecognized arguments: --im"),
    (["bench", "--rounds", "0"], ">= 1"),
    (["bench", "--rounds", "-3"], ">= 1"),
    (["bench", "--round", "2"], "unrecognized arguments: --round"),
    (["bench", "--max-frames", "0"], ">= 1"),
    (["bench", "--pipelines", "bogus"], "invalid choice"),
    (["bench", "--worker"], "internal"),
    (["train", "bogus"], "invalid choice"),
    (["train", "landmark", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "detector", "--bogus"], "unrecognized arguments: --bogus"),
    (["plugins", "extra"], "unrecognized arguments: extra"),
    (["-v", "track"], "required: source"),
    (["sign-demo", "--bogus"], "unrecognized arguments: --bogus"),
    (["sign-demo", "--ou", "x"], "unrecognized arguments: --ou"),
    (["sign-demo", "--max-frames", "0"], ">= 1"),
    (["sign-demo", "--word", "123"], "can spell only"),
    (["sign-demo", "/nonexistent.mp4"], "no such file"),
    (["sign-demo", "in.mp4", "--out", "in.mp4"], "would destroy it"),
]


@pytest.fixture(scope="module")
def playground(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    w = cv2.VideoWriter(str(folder / "in.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 64))
    for i in range(3):
        w.write(np.full((64, 64, 3), 50 * i, np.uint8))
    w.release()
    (folder / "adir").mkdir()
    (folder / "emptydir").mkdir()
    (folder / "afile").write_text("a file")
    cv2.imwrite(str(folder / "img.png"), np.zeros((32, 32, 3), np.uint8))
    return folder


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HANDSDK_LOAD_PLUGINS", "HANDSDK_BLOCK_PLUGINS")}
    return subprocess.run([sys.executable, "-m", "handsdk", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_every_garbage_command_line_is_one_error_line_and_exit_2(playground):
    before = sorted(p.name for p in playground.iterdir())
    with ThreadPoolExecutor(max_workers=4) as pool:
        procs = list(pool.map(lambda case: _run(case[0], playground), GARBAGE))
    bad = []
    for (args, needle), proc in zip(GARBAGE, procs, strict=True):
        lines = proc.stderr.splitlines()
        if (proc.returncode != 2 or len(lines) != 1 or not lines[0].startswith("error: ") or needle not in lines[0]
                or "Traceback" in proc.stderr):
            bad.append(f"{args!r}: exit {proc.returncode}, stderr {proc.stderr[-400:]!r}")
    assert not bad, "\n".join(bad)
    assert sorted(p.name for p in playground.iterdir()) == before  # nothing was written


def test_every_parser_is_handsdks():
    """argparse's prefix matching (``--save-vid`` meaning ``--save-video``) and its multi-line
    usage errors are off only in :class:`handsdk.script.ArgumentParser`: every command and
    ``python -m`` tool must build its parser from it (subparsers inherit it)."""
    offenders = []
    for folder in ("handsdk", "plugins", "scripts", "examples"):
        for path in (REPO / folder).rglob("*.py"):
            if path == REPO / "handsdk" / "script.py" or ".egg-info" in str(path):
                continue
            if re.search(r"\bargparse\.ArgumentParser\(|^\s*from argparse import .*\bArgumentParser\b",
                         path.read_text(), re.M):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == [], ("build these parsers with `from handsdk.script import ArgumentParser` instead of "
                             f"argparse.ArgumentParser: {', '.join(offenders)}")


def test_the_parser_refuses_abbreviations_in_one_line(capsys):
    from handsdk.script import ArgumentParser

    ap = ArgumentParser(prog="tool")
    ap.add_argument("--save-video")
    sub = ap.add_subparsers(dest="cmd")
    sub.add_parser("run").add_argument("--frames", type=int)
    with pytest.raises(SystemExit) as info:
        ap.parse_args(["run", "--fr", "3"])
    assert info.value.code == 2
    assert capsys.readouterr().err == "error: tool: unrecognized arguments: --fr 3 (see tool --help)\n"
    with pytest.raises(SystemExit):
        ap.parse_args(["run", "--frames", "x"])  # the subparser's own error: its class too
    assert capsys.readouterr().err == ("error: tool run: argument --frames: invalid int value: 'x' "
                                       "(see tool run --help)\n")
    assert ap.parse_args(["--save-video", "x"]).save_video == "x"
