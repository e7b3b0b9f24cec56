"""Canned-gesture accuracy on real photos: ``python -m handsdk_gestures.evaluate [--labels FILE]``.

The labels file has one JSON object per photo with ``landmarks`` (21 x 3, image pixels),
``dataset``, ``label`` and ``group`` (``python -m handsdk.train.pseudolabel`` writes it from the
MediaPipe teacher; the same format from our own tracker measures the whole pipeline). Without
``--labels`` it looks for ``$HANDSDK_LABELS``, ``../cache/labels.jsonl`` beside the project, then
``~/.cache/handsdk/labels.jsonl``.

Mapping of dataset classes to canned gestures:

=====================  =========  =============================================================
dataset                class      scored as
=====================  =========  =============================================================
rock_paper_scissors    rock       Closed_Fist
rock_paper_scissors    paper      Open_Palm
rock_paper_scissors    scissors   Victory
gesture_counts         one        Pointing_Up, only where the index points up: its MCP->tip
                                  within 45 deg of image up in the reference landmarks (the
                                  teacher's, when a labels file is found; else the landmarks
                                  evaluated); the others ("one" pointing sideways / down) are
                                  not scored
gesture_counts         two        Victory
gesture_counts         five       Open_Palm
gesture_counts         three      not scored: no canned gesture (shown as thumb + index +
                                  middle, which the rules call Victory since they ignore the thumb)
gesture_counts         four       not scored: no canned gesture (four fingers, thumb folded:
                                  the rules call it Open_Palm, which does not check the thumb)
=====================  =========  =============================================================

Other datasets (asl_letters, sign_digits) are not scored. gesture_counts' labels are noisy (its
"five" is a catch-all); ``label_audit.json`` lists the photos that do not show their class, found
by eye, and they are left out unless ``--no-audit``; the few of them that clearly show a
thumbs-up or a fist are scored as Thumb_Up / Closed_Fist instead (the only real thumbs-up photos
here), in their own rows. Unscored photos are still listed with what
the recognizer said, to see how it behaves on them.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handsdk.handshape import image_direction
from handsdk.script import ArgumentParser

from .recognizer import GestureRecognizer
from .rules import CANNED_GESTURES

#: (dataset, class) -> canned gesture.
MAPPING: dict[tuple[str, str], str] = {
    ("rock_paper_scissors", "rock"): "Closed_Fist",
    ("rock_paper_scissors", "paper"): "Open_Palm",
    ("rock_paper_scissors", "scissors"): "Victory",
    ("gesture_counts", "one"): "Pointing_Up",
    ("gesture_counts", "two"): "Victory",
    ("gesture_counts", "five"): "Open_Palm",
}
#: gesture_counts "one" counts as Pointing_Up only with the index this close to image up.
INDEX_UP_DEGREES = 45.0
AUDIT_FILE = Path(__file__).with_name("label_audit.json")
TARGET = 0.95


def default_labels_path() -> Path | None:
    """``$HANDSDK_LABELS``, ``../cache/labels.jsonl`` beside the project, or the pseudolabel
    default ``~/.cache/handsdk/labels.jsonl``: the first that exists, else None."""
    env = os.environ.get("HANDSDK_LABELS")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[3] / "cache" / "labels.jsonl",
                   Path.home() / ".cache" / "handsdk" / "labels.jsonl"]
    return next((c for c in candidates if c.is_file()), None)


def tracker_rows(tracker: Any = None, limit_per_dataset: int | None = None) -> list[dict[str, Any]]:
    """Rows from handsdk's own tracker (``Tracker.detect``) on the shared photos of the mapped
    datasets: end to end. A photo where no hand is found has ``landmarks`` None (scored wrong)."""
    import cv2

    from handsdk import Tracker
    from handsdk.data import iter_photos

    tracker = tracker or Tracker({"tracker": {"max_hands": 1}})
    labels = default_labels_path()
    reference = {r["path"]: r["landmarks"] for r in load_rows(labels)} if labels else {}
    rows = []
    for dataset in sorted({d for d, _ in MAPPING}):
        photos = list(iter_photos((dataset,)))
        if limit_per_dataset:
            photos = photos[:: max(1, len(photos) // limit_per_dataset)][:limit_per_dataset]
        for p in photos:
            image = cv2.imread(str(p.path))
            hands = tracker.detect(image) if image is not None else []
            lm = max(hands, key=lambda h: h.size).landmarks.tolist() if hands else None
            rows.append({"path": str(p.path), "dataset": p.dataset, "label": p.label,
                         "group": p.group, "landmarks": lm,
                         "reference_landmarks": reference.get(str(p.path))})
    return rows


def load_rows(path: str | Path) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@dataclass(frozen=True)
class Audit:
    """``label_audit.json``: photo groups whose label does not describe the photo, and those
    of them relabelled by eye with the canned gesture they clearly show."""

    not_shown: frozenset[str] = frozenset()
    relabel: dict[str, str] = field(default_factory=dict)  # group -> gesture

    @classmethod
    def load(cls, path: Path = AUDIT_FILE) -> Audit:
        if not path.is_file():  # e.g. a wheel built without package data
            print(f"warning: {path} not found: scoring without the label audit", file=sys.stderr)
            return cls()
        data = json.loads(path.read_text())
        relabel = {g: gesture for gesture, groups in data.get("relabel", {}).items() for g in groups}
        return cls(frozenset(g for groups in data["not_shown"].values() for g in groups), relabel)


def _group(row: Mapping[str, Any]) -> str:
    if row.get("group"):
        return str(row["group"])
    stem = Path(str(row.get("path", ""))).stem
    return f"{row.get('dataset')}/{stem.split('_jpg')[0].split('_png')[0]}"


def expected_gesture(row: Mapping[str, Any], audit: Audit | None = None) -> tuple[str, str | None]:
    """(class, canned gesture) a photo is scored as; gesture None (and the class says why)
    when it is not scored."""
    key = (row.get("dataset"), row.get("label"))
    cls = f"{key[0]}/{key[1]}"
    if key not in MAPPING:
        return cls, None
    if audit is not None:
        group = _group(row)
        if group in audit.relabel:
            return f"{cls} -> {audit.relabel[group]} by eye", audit.relabel[group]
        if group in audit.not_shown:
            return f"{cls} (audit: label not shown)", None
    if key == ("gesture_counts", "one"):
        ref = row.get("reference_landmarks") or row.get("landmarks")
        if ref is None:
            return f"{cls} (no hand found: direction unknown)", None
        if image_direction(ref, 5, 8) > INDEX_UP_DEGREES:
            return f"{cls} (index not up)", None
    return cls, MAPPING[key]


@dataclass
class Report:
    """Per-class counts (class = "dataset/label"), confusion and what unscored photos got."""

    per_class: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    expected: dict[str, str] = field(default_factory=dict)
    confusion: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    unscored: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def accuracy(self, cls: str) -> float:
        c = self.per_class[cls]
        return c[self.expected[cls]] / max(1, sum(c.values()))

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.per_class.values())

    @property
    def correct(self) -> int:
        return sum(c[self.expected[k]] for k, c in self.per_class.items())

    @property
    def overall(self) -> float:
        return self.correct / max(1, self.total)

    def gesture_accuracy(self) -> dict[str, float]:
        """Accuracy per expected canned gesture (all datasets pooled)."""
        return {g: row[g] / max(1, sum(row.values())) for g, row in self.confusion.items()}


def evaluate(rows: Iterable[Mapping[str, Any]], recognizer: GestureRecognizer | None = None,
             audit: bool = True) -> Report:
    rec = recognizer or GestureRecognizer()
    checked = Audit.load() if audit else None
    datasets = {d for d, _ in MAPPING}
    rep = Report()
    for row in rows:
        if row.get("dataset") not in datasets:
            continue
        cls, want = expected_gesture(row, checked)
        got = "no hand" if row.get("landmarks") is None else rec.recognize(row["landmarks"]).name
        if want is None:
            rep.unscored[cls][got] += 1
            continue
        rep.expected[cls] = want
        rep.per_class[cls][got] += 1
        rep.confusion[want][got] += 1
    return rep


def format_report(rep: Report) -> str:
    lines = ["Canned gestures on real photos (mapped classes)", ""]
    lines.append(f"{'class':44s} {'scored as':12s} {'n':>5s} {'correct':>7s} {'accuracy':>8s}")
    for cls in sorted(rep.per_class):
        c = rep.per_class[cls]
        n = sum(c.values())
        lines.append(f"{cls:44s} {rep.expected[cls]:12s} {n:5d} {c[rep.expected[cls]]:7d} "
                     f"{rep.accuracy(cls):8.1%}")
    lines.append(f"{'overall':44s} {'':12s} {rep.total:5d} {rep.correct:7d} "
                 f"{rep.overall:8.1%}   target {TARGET:.0%}: {'met' if rep.overall >= TARGET else 'NOT met'}")
    lines += ["", "Per canned gesture (datasets pooled):"]
    for g, acc in sorted(rep.gesture_accuracy().items()):
        lines.append(f"  {g:12s} {sum(rep.confusion[g].values()):5d}  {acc:6.1%}")
    cols = [g for g in CANNED_GESTURES]
    cols += sorted({p for row in rep.confusion.values() for p in row} - set(cols))
    short = {g: g.replace("_", "")[:8] for g in cols}
    lines += ["", "Confusion (rows: expected, columns: predicted):",
              f"{'':12s}" + "".join(f"{short[g]:>9s}" for g in cols)]
    for want in [g for g in CANNED_GESTURES if g in rep.confusion]:
        row = rep.confusion[want]
        lines.append(f"{want:12s}" + "".join(f"{row[g]:9d}" for g in cols))
    if rep.unscored:
        lines += ["", "Not scored (what the recognizer said):"]
        for why in sorted(rep.unscored):
            c = rep.unscored[why]
            said = ", ".join(f"{k} {v}" for k, v in c.most_common())
            lines.append(f"  {why:50s} {sum(c.values()):4d}: {said}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="python -m handsdk_gestures.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("--labels", type=Path, default=None, help="labels JSONL (default: see module doc)")
    ap.add_argument("--no-audit", action="store_true",
                    help="score every photo of a mapped class, even those label_audit.json lists")
    ap.add_argument("--min-score", type=float, default=0.5, help="the recognizer's min_score")
    ap.add_argument("--tracker", action="store_true",
                    help="landmarks from handsdk's own tracker on ../shared/data (end to end)")
    args = ap.parse_args(argv)
    if args.tracker:
        rep = evaluate(tracker_rows(), GestureRecognizer(min_score=args.min_score), audit=not args.no_audit)
        print("landmarks: handsdk Tracker.detect on the photos (end to end; no hand found = wrong)")
        print(format_report(rep))
        return 0
    path = args.labels or default_labels_path()
    if path is None or not Path(path).is_file():
        print(f"no labels file ({path or 'none found'}); pass --labels FILE", file=sys.stderr)
        return 2
    rep = evaluate(load_rows(path), GestureRecognizer(min_score=args.min_score), audit=not args.no_audit)
    if rep.total == 0:
        print(f"error: nothing scored in {path}: it needs JSON lines with 'dataset', 'label' and "
              "'landmarks' from the mapped classes (python -m handsdk.train.pseudolabel writes them)",
              file=sys.stderr)
        return 2
    print(f"labels: {path}{'' if not args.no_audit else ' (no audit)'}")
    print(format_report(rep))
    return 0


if __name__ == "__main__":
    from handsdk.script import run_script

    raise SystemExit(run_script(main))
