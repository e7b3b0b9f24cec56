"""Finding the shared real-photo datasets (``../shared/data`` or ``$HANDSDK_DATA``).

Each image becomes a :class:`Photo` with the dataset's class label and a *group*: the source
photo it was made from, so that validation splits never share a photo with training.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Image files handsdk reads (OpenCV decodes them all), everywhere: sources, datasets, eval folders.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
#: Datasets whose licence lets shipped weights be trained on them (rock_paper_scissors is
#: CC BY-SA: evaluation only).
TRAINABLE = ("sign_digits", "asl_letters", "gesture_counts")
EVAL_ONLY = ("rock_paper_scissors",)
#: Public sets fetched from the repositories issue #20 allows (:mod:`handsdk.train.fetched`), kept
#: outside the project under :func:`fetched_root`.
FETCHED = ("closeup_hands", "counting_hands", "signer_home", "lab_gestures")


def data_root() -> Path | None:
    """``$HANDSDK_DATA`` if set, else ``../shared/data`` beside the project, else None. A
    ``$HANDSDK_DATA`` that is not a folder gives None (with a warning), not some other data."""
    env = os.environ.get("HANDSDK_DATA")
    if env:
        if Path(env).is_dir():
            return Path(env)
        logging.getLogger(__name__).warning("HANDSDK_DATA=%r is not a folder: no data", env)
        return None
    return _beside_project("data")


def _beside_project(name: str) -> Path | None:
    """``../shared/<name>`` beside the project checkout, else beside the working directory."""
    candidates = [Path(__file__).resolve().parents[2] / "shared" / name, Path.cwd().parent / "shared" / name]
    return next((c for c in candidates if c.is_dir()), None)


def fetched_root(create: bool = False) -> Path | None:
    """Where the fetched sets live: ``$HANDSDK_FETCHED`` or ``~/.cache/handsdk/fetched`` (None
    when it does not exist, unless ``create``)."""
    root = Path(os.environ.get("HANDSDK_FETCHED") or Path.home() / ".cache/handsdk/fetched")
    if create:
        root.mkdir(parents=True, exist_ok=True)
    return root if root.is_dir() else None


def teacher_root() -> Path | None:
    """MediaPipe's TFLite hand models, used to pseudo-label and compare: ``$HANDSDK_TEACHER`` if
    set, else ``teacher/`` beside the data folder, else ``../shared/teacher`` beside the project."""
    env = os.environ.get("HANDSDK_TEACHER")
    if env:
        return Path(env) if Path(env).is_dir() else None
    root = data_root()
    if root is not None and (root.parent / "teacher").is_dir():
        return root.parent / "teacher"
    return _beside_project("teacher")


@dataclass(frozen=True)
class Photo:
    path: Path
    dataset: str
    split: str  # "train" or "valid": validation never shares a group with training
    group: str  # source-photo id
    label: str  # the dataset's class name ("A", "3", "rock", "two" …)


def _group_of(name: str) -> str:
    stem = Path(name).stem
    return stem.split("_jpg")[0].split("_png")[0]


def stable_percent(text: str) -> int:
    """0-99 from ``text``, the same on every machine and run: splits and samples by name."""
    return int(hashlib.md5(text.encode()).hexdigest()[:8], 16) % 100


def hash_split(group: str, valid_percent: int = 15) -> str:
    """"valid" for about ``valid_percent`` % of groups, else "train", fixed by the group's name."""
    return "valid" if stable_percent(group) < valid_percent else "train"


def _yolo_names(folder: Path) -> list[str]:
    names: list[str] = []
    for line in (folder / "data.yaml").read_text().splitlines():
        if line.strip().startswith("names:"):
            inner = line.split(":", 1)[1].strip().strip("[]")
            names = [n.strip().strip("'\"") for n in inner.split(",") if n.strip()]
    return names


def _yolo_photos(root: Path, dataset: str) -> Iterator[Photo]:
    folder = root / dataset
    names = _yolo_names(folder)
    train_groups: set[str] = set()
    for split in ("train", "valid"):
        for img in sorted((folder / split / "images").iterdir()):
            if img.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            group = _group_of(img.name)
            if split == "train":
                train_groups.add(group)
            elif group in train_groups:  # never let a source photo sit on both sides
                continue
            label_file = folder / split / "labels" / (img.stem + ".txt")
            label = ""
            if label_file.exists():
                rows = label_file.read_text().split()
                if rows:
                    label = names[int(rows[0])] if names else rows[0]
            yield Photo(img, dataset, split, f"{dataset}/{group}", label)


def _folder_photos(root: Path, dataset: str) -> Iterator[Photo]:
    folder = root / dataset
    for cls in sorted(p for p in folder.iterdir() if p.is_dir()):
        for img in sorted(cls.iterdir()):
            if img.suffix.lower() in IMAGE_SUFFIXES:
                group = f"{dataset}/{img.stem}"
                yield Photo(img, dataset, hash_split(group), group, cls.name)


def iter_photos(datasets: tuple[str, ...] = TRAINABLE + EVAL_ONLY) -> Iterator[Photo]:
    """Every photo of the named datasets (nothing if the data folder is absent)."""
    for name in datasets:
        root = fetched_root() if name in FETCHED else data_root()
        if root is None or not (root / name).is_dir():
            continue
        if (root / name / "data.yaml").exists():
            yield from _yolo_photos(root, name)
        else:
            yield from _folder_photos(root, name)


def yolo_box(photo: Photo) -> tuple[float, float, float, float] | None:
    """The first YOLO box (cx, cy, w, h, normalised) of a photo, if it has one."""
    label_file = photo.path.parent.parent / "labels" / (photo.path.stem + ".txt")
    if not label_file.exists():
        return None
    rows = label_file.read_text().split()
    if len(rows) < 5:
        return None
    return tuple(float(v) for v in rows[1:5])  # type: ignore[return-value]
