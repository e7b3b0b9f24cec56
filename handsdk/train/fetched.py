"""The public photo sets that issue #20 allows for training, beside ``../shared/data``.

Each is a folder of a public Git repository. :func:`materialize` takes a clone (or a bare Git
directory) and writes the allowed images, deduplicated and filtered as the source's terms and
quirks require, into the YOLO layout that :func:`handsdk.data.iter_photos` already reads:
``<root>/<name>/{train,valid}/{images,labels}`` and ``data.yaml``, a hand box per image where the
source has one. Images are named ``<group>_jpg<n>.jpg`` so a source photo, session or sequence (the
*group*) never sits on both sides of a split. Nothing here is committed: ``<root>`` lives outside
the work tree (``$HANDSDK_FETCHED`` or ``~/.cache/handsdk/fetched``).

    python -m handsdk.train.fetched --name closeup_hands --repo /path/to/clone
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from handsdk.script import ArgumentParser

from ..data import fetched_root, hash_split, stable_percent
from ..errors import ConfigError

Box = tuple[float, float, float, float]  # cx, cy, w, h, normalised


@dataclass(frozen=True)
class FetchedSource:
    """One allowed source: where it is, its terms, and how to read it."""

    name: str
    repo: str
    folder: str
    license: str
    attribution: str
    what: str
    #: (path in the repo, file bytes of the repo) -> (group, hand box or None), or None to skip
    read: Callable[[str, Callable[[str], bytes | None]], tuple[str, Box | None] | None]
    #: keep one image in ``sample`` of each group's near-duplicates (video frames)
    sample: int = 1


def _yolo_txt_box(text: str) -> Box | None:
    """The first box of a YOLO label: ``c cx cy w h`` or an oriented ``c x1 y1 … x4 y4``."""
    rows = [r.split() for r in text.splitlines() if r.strip()]
    if not rows:
        return None
    v = [float(x) for x in rows[0][1:]]
    if len(v) == 4:
        return v[0], v[1], v[2], v[3]
    if len(v) == 8:
        xs, ys = v[0::2], v[1::2]
        return ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, max(xs) - min(xs), max(ys) - min(ys))
    return None


def _label_for(path: str, get: Callable[[str], bytes | None]) -> Box | None:
    label = re.sub(r"/images/([^/]+)\.\w+$", r"/labels/\1.txt", path)
    text = get(label) if label != path else None
    return _yolo_txt_box(text.decode()) if text else None


def _roboflow_group(path: str) -> str:
    return Path(path).name.split("_jpg")[0].split(".rf.")[0].rstrip("_")


def _read_closeup(path: str, get: Callable[[str], bytes | None]) -> tuple[str, Box | None] | None:
    if path.split("/")[-2] != "images":  # the export's own training runs hold plots, not photos
        return None
    return _roboflow_group(path), _label_for(path, get)


def _read_counting(path: str, get: Callable[[str], bytes | None]) -> tuple[str, Box | None] | None:
    name = Path(path).name
    if "/" in path[len("images/"):] or name.startswith("Hand_"):  # train/test copy the top
        return None  # folder; Hand_*.jpg come from a set licensed for academic use only
    xml = get(path.rsplit(".", 1)[0] + ".xml")
    box = None
    if xml:
        root = ET.fromstring(xml)
        w, h = float(root.findtext("size/width") or 0), float(root.findtext("size/height") or 0)
        b = root.find("object/bndbox")
        if b is not None and w > 0 and h > 0:
            x0, y0, x1, y1 = (float(b.findtext(k) or 0) for k in ("xmin", "ymin", "xmax", "ymax"))
            box = ((x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h)
    session = name.split("pic")[0].rstrip("_") or "0"  # the capture session: one person, one room
    return f"s{session}", box


def _read_lab(path: str, get: Callable[[str], bytes | None]) -> tuple[str, Box | None] | None:
    return Path(path).parent.name, None  # a gesture's folder holds its two recorded sequences


def _read_signer(path: str, get: Callable[[str], bytes | None]) -> tuple[str, Box | None] | None:
    return _roboflow_group(path), _label_for(path, get)


SOURCES: dict[str, FetchedSource] = {s.name: s for s in (
    FetchedSource(
        "closeup_hands", "ragadag621/hand-tracking-project-using-YOLOv5",
        "HandDetect/hands.v2i.yolov8-obb", "CC BY 4.0",
        "\"hands\" by a Roboflow user (universe.roboflow.com/golfballtracking-project-sypem/hands-dguzk), "
        "CC BY 4.0, via github.com/ragadag621/hand-tracking-project-using-YOLOv5",
        "close-up palms and backs of hands filling the frame, several people, office / home / outdoors",
        _read_closeup),
    FetchedSource(
        "counting_hands", "SubhiH/HandsDataset", "images", "Apache-2.0",
        "HandsDataset by Subhi H. (github.com/SubhiH/HandsDataset), Apache-2.0",
        "800x600 webcam photos of one and two hands counting 0-5 indoors (Hand_*.jpg left out)",
        _read_counting),
    FetchedSource(
        "lab_gestures", "emrecandir9/custom-gesture-dataset", "dataset/photos/hand", "MIT",
        "Custom Hand & Body Gesture Dataset by Emre Candir (github.com/emrecandir9/custom-gesture-dataset), MIT",
        "video frames of two people's drone-control hand gestures in a lab (one frame in three kept)",
        _read_lab, sample=3),
    FetchedSource(
        "signer_home", "msebastien/YOLO_ObjectDetection", "datasets/roboflow_handgestures", "CC BY 4.0",
        "hand gestures by Pablo Ochoa, Antonio Luna, Eliezer Álvarez (Roboflow 100, "
        "universe.roboflow.com/roboflow-100/hand-gestures-jps7z), CC BY 4.0, via "
        "github.com/msebastien/YOLO_ObjectDetection",
        "a signer at home, 720x404 (2304x1440 screenshots of another video left out)",
        _read_signer),
)}

#: Left out of training altogether: the leave-one-source-out check (people and room never seen).
HELD_OUT = ("lab_gestures",)
#: Image sizes a source's terms or quirks exclude (width, height).
EXCLUDED_SIZES = {"signer_home": {(2304, 1440)}}


def _repo_files(repo: Path, folder: str) -> dict[str, bytes]:
    """Every file under ``folder`` of the repository's HEAD, from a clone or a bare Git folder."""
    git_dir = repo / ".git" if (repo / ".git").exists() else repo
    tar = subprocess.run(["git", f"--git-dir={git_dir}", "archive", "HEAD", folder],
                         capture_output=True, check=False)
    if tar.returncode != 0:
        raise ConfigError(f"{repo}: cannot read {folder!r} from its HEAD: {tar.stderr.decode().strip()}")
    files = {}
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t:
        for m in t.getmembers():
            if m.isfile():
                f = t.extractfile(m)
                if f is not None:
                    files[m.name] = f.read()
    return files


def _is_gray(image: np.ndarray) -> bool:
    return bool(np.abs(image[..., 0].astype(np.int16) - image[..., 2]).mean() < 2)


def select(source: FetchedSource, files: dict[str, bytes]) -> Iterator[tuple[str, np.ndarray, Box | None]]:
    """(group, BGR image, box) of each image kept: one copy per source photo (the clean one
    where an export holds grayscale / mosaic copies), ``sample`` thinning, excluded sizes out."""
    by_photo: dict[str, list[tuple[str, str, Box | None]]] = {}
    for path in sorted(files):
        if Path(path).suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        read = source.read(path, files.get)
        if read is None:
            continue
        group, box = read
        key = Path(path).name.split(".rf.")[0]  # a Roboflow export's copies of one photo
        by_photo.setdefault(key, []).append((path, group, box))
    for key, copies in sorted(by_photo.items()):
        if source.sample > 1 and stable_percent(key) % source.sample:
            continue
        # valid/test copies of a Roboflow export are clean; train copies may be augmented
        copies.sort(key=lambda c: ("/train/" in c[0], c[0]))
        for path, group, box in copies:
            image = cv2.imdecode(np.frombuffer(files[path], np.uint8), cv2.IMREAD_COLOR)
            if image is None or _is_gray(image):
                continue
            if (image.shape[1], image.shape[0]) in EXCLUDED_SIZES.get(source.name, set()):
                break
            yield group, image, box
            break


def materialize(name: str, repo: Path, root: Path | None = None, valid_percent: int = 15) -> dict[str, int]:
    """Write source ``name`` from its clone ``repo`` under ``root`` in the YOLO layout; returns
    counts. Splits by group (hash), never by image."""
    if name not in SOURCES:
        raise ConfigError(f"unknown source {name!r}; valid: {', '.join(SOURCES)}")
    source = SOURCES[name]
    root = Path(root or fetched_root(create=True))
    out = root / name
    files = _repo_files(Path(repo), source.folder)
    if not files:
        raise ConfigError(f"{repo}: no files under {source.folder!r} (is it {source.repo}?)")
    counts = {"train": 0, "valid": 0}
    seen: dict[str, int] = {}
    for split in counts:
        (out / split / "images").mkdir(parents=True, exist_ok=True)
        (out / split / "labels").mkdir(parents=True, exist_ok=True)
    for group, image, box in select(source, files):
        split = hash_split(f"{name}/{group}", valid_percent)
        n = seen[group] = seen.get(group, 0) + 1
        stem = f"{re.sub(r'[^A-Za-z0-9.-]', '-', group)}_jpg{n:05d}"
        cv2.imwrite(str(out / split / "images" / f"{stem}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        label = "" if box is None else "0 " + " ".join(f"{v:.6f}" for v in box) + "\n"
        (out / split / "labels" / f"{stem}.txt").write_text(label)
        counts[split] += 1
    (out / "data.yaml").write_text("names: ['hand']\n")
    (out / "SOURCE.txt").write_text(f"{source.repo}/{source.folder}\nlicense: {source.license}\n"
                                    f"attribution: {source.attribution}\n")
    return {**counts, "groups": len(seen)}


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="python -m handsdk.train.fetched", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True, choices=sorted(SOURCES))
    ap.add_argument("--repo", type=Path, required=True, help="a clone (or bare Git folder) of the source")
    ap.add_argument("--root", type=Path, help="default: $HANDSDK_FETCHED or ~/.cache/handsdk/fetched")
    args = ap.parse_args(argv)
    counts = materialize(args.name, args.repo, args.root)
    print(f"{args.name}: {counts['train']} train + {counts['valid']} valid images in "
          f"{counts['groups']} groups")
    return 0


if __name__ == "__main__":
    from handsdk.script import run_script

    raise SystemExit(run_script(main))
