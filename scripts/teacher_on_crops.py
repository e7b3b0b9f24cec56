"""How MediaPipe's landmark model (the teacher) reads the landmark trainer's own crops.

    python scripts/teacher_on_crops.py --pack PACK [--batches 10] [--seed 1]

Issue #20 suggests an online teacher: MediaPipe labelling every augmented crop as it is drawn,
instead of the geometric targets (the photo's labels carried through the crop's warp, and a hand
/ no-hand rule on how many of its points lie inside). This measures what that would change on the
trainer's default crop mix (edge cuts, pasted and real backgrounds, hand-free strips, crops beside
the hand), before spending a training run on it:

* landmarks: PCK@0.1 of the teacher's reading against the geometric target, on clean crops and on
  augmented ones, with the agreement on handedness and the correlation of z;
* presence: how often the teacher says "hand" (≥ 0.5) where the rule says hand, says no hand,
  or leaves the crop untaught;
* its time per crop on one thread.

Figures in docs/experiments.md ("An online teacher").
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from handsdk.data import teacher_root
from handsdk.script import ArgumentParser, run_script
from handsdk.train.augment import Canvas, background_bank, real_background_bank
from handsdk.train.landmark import make_batch
from handsdk.train.loop import build_pool
from handsdk.train.teacher import MediaPipeTeacher


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pack", type=Path, required=True, help="a training pack (python -m handsdk.train.pack)")
    ap.add_argument("--teacher", type=Path, default=teacher_root(), help="folder of MediaPipe's .tflite models")
    ap.add_argument("--batches", type=int, default=10, help="batches of 48 crops, as the CPU trainer draws them")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.teacher is None:
        raise SystemExit("no teacher: pass --teacher DIR (MediaPipe's hand_landmark_full.tflite)")
    torch.set_num_threads(1)
    dev = torch.device("cpu")
    pool = build_pool(args.pack, 0, args.seed)
    canvas = Canvas(pool.images, dev)
    backgrounds = torch.cat([background_bank(224, seed=args.seed, device=dev),
                             real_background_bank(pool.images, pool.hand_free, 224, 400, args.seed, dev)])
    lm, right = torch.from_numpy(pool.landmarks), torch.from_numpy(pool.right)
    teacher = MediaPipeTeacher(args.teacher, "full", threads=1)
    gen, rng = torch.Generator().manual_seed(args.seed), np.random.default_rng(args.seed)
    train = np.where(~pool.valid & ~pool.synthetic)[0]
    for augmented in (False, True):
        rows: dict[str, list[np.ndarray]] = {k: [] for k in ("rel", "ok", "z", "tz", "p", "rule", "w")}
        seconds = 0.0
        for _ in range(args.batches):
            idx = torch.from_numpy(rng.choice(train, 48))
            options = dict(backgrounds=backgrounds, background_share=0.3, hand_free=torch.from_numpy(pool.hand_free),
                           hand_free_share=0.1, edge_cut_share=0.15, others=torch.from_numpy(pool.others))
            x, t = make_batch(canvas, lm, right, idx, 224, augmented, gen=gen, **(options if augmented else {}))
            start = time.perf_counter()
            read, presence, read_right = teacher.read_crops(x.numpy())
            seconds += time.perf_counter() - start
            xy = t["xy"].numpy()
            box = (xy.max(1) - xy.min(1)).max(-1)
            rows["rel"].append(np.linalg.norm(read[:, :, :2] - xy, axis=-1) / box[:, None])
            rows["ok"].append((read_right > 0.5) == (t["right"].numpy() > 0.5))
            rows["z"].append(read[:, :, 2])
            rows["tz"].append(t["z"].numpy())
            rows["p"].append(presence)
            rows["rule"].append(t["presence"].numpy())
            rows["w"].append(t["presence_w"].numpy())
        r = {k: np.concatenate(v) for k, v in rows.items()}
        hand = (r["rule"] == 1) & (r["w"] == 1)
        read_as_hand = hand & (r["p"] >= 0.5)
        n = len(r["p"])
        print(f"{'augmented' if augmented else 'clean'} crops: {n}, {1000 * seconds / n:.1f} ms a crop on one thread")
        print(f"  landmarks, where both say hand ({int(read_as_hand.sum())}): PCK@0.1 "
              f"{np.mean(r['rel'][read_as_hand] < 0.1):.3f}, @0.2 {np.mean(r['rel'][read_as_hand] < 0.2):.3f}; "
              f"handedness agrees {np.mean(r['ok'][read_as_hand]):.3f}; z correlation "
              f"{np.corrcoef(r['z'][read_as_hand].ravel(), r['tz'][read_as_hand].ravel())[0, 1]:.3f}")
        for name, sel in (("rule: hand", hand), ("rule: no hand", (r["rule"] == 0) & (r["w"] == 1)),
                          ("rule: untaught", r["w"] == 0)):
            if sel.any():
                print(f"  presence, {name} ({int(sel.sum())} crops): teacher says hand in {np.mean(r['p'][sel] >= 0.5):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
