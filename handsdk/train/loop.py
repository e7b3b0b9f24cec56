"""What both trainers share: the data pool, a cosine schedule over a time or crop budget, EMA
weights, checkpoints with ``--resume``, a metrics log, a text progress bar and the curves plot."""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..nets import DEFAULT_WIDTH
from .pack import MAX_FACES, MAX_OTHERS, load_pack


@dataclass
class Pool:
    images: list[np.ndarray]
    landmarks: np.ndarray  # (N, 21, 3) image pixels
    right: np.ndarray  # (N,) probability of a right hand
    valid: np.ndarray  # (N,) bool: held out by source photo
    synthetic: np.ndarray  # (N,) bool
    dataset: np.ndarray  # (N,) str
    hand_free: np.ndarray  # (N, 4) int: a teacher-verified hand-free strip x0, y0, x1, y1; -1: none
    others: np.ndarray  # (N, MAX_OTHERS, 21, 2) image pixels of the hands the label does not cover; NaN: none
    faces: np.ndarray  # (N, MAX_FACES, 4) image pixels x0, y0, x1, y1 of faces off the hands; NaN: none


def build_pool(pack: Path | None, n_synthetic: int, seed: int = 0) -> Pool:
    """Real photos from the pack plus ``n_synthetic`` renders (5 % of those held out)."""
    images, lms, right, valid, synth, ds, free, others, faces = [], [], [], [], [], [], [], [], []
    no_others = np.full((MAX_OTHERS, 21, 2), np.nan, np.float32)
    no_faces = np.full((MAX_FACES, 4), np.nan, np.float32)
    if pack is not None:
        p = load_pack(pack)
        images += p["images"]
        lms += list(p["landmarks"])
        right += list(p["right"])
        valid += list(p["split"] == "valid")
        synth += [False] * len(p["images"])
        ds += list(p["dataset"])
        free += list(p["hand_free"]) if "hand_free" in p else [np.full(4, -1)] * len(p["images"])
        # a pack from before ``others``: its photos' second hands are unknown (and left as background)
        others += list(p["others"]) if "others" in p else [no_others] * len(p["images"])
        faces += list(p["faces"]) if "faces" in p else [no_faces] * len(p["images"])
    if n_synthetic:
        try:
            from ..synthetic import render_sample

            rng = np.random.default_rng(seed)
            for i in range(n_synthetic):
                img, hands, handed = render_sample(rng, size=256, n_hands=1)
                images.append(img)
                lms.append(hands[0].astype(np.float32))
                right.append(1.0 if handed[0] == "right" else 0.0)
                valid.append(i % 20 == 0)
                synth.append(True)
                ds.append("synthetic")
                free.append(np.full(4, -1))
                others.append(no_others)
                faces.append(no_faces)
        except Exception as exc:  # a broken renderer must not cost a training run
            print(f"warning: synthetic renders unavailable ({exc}); training on real photos only")
    return Pool(images, np.stack(lms).astype(np.float32), np.asarray(right, np.float32),
                np.asarray(valid), np.asarray(synth), np.asarray(ds),
                np.asarray(free, np.int64).reshape(-1, 4), np.stack(others).astype(np.float32),
                np.stack(faces).astype(np.float32))


def require_in_pack(pool: Pool, hand_free_share: float = 0.0, face_share: float = 0.0) -> None:
    """Stop, saying how to make one, where an option asks for crops the pack has nothing for
    (else the option would silently do nothing)."""
    if hand_free_share > 0 and not (pool.hand_free[~pool.valid, 0] >= 0).any():
        raise SystemExit("--hand-free-share needs a pack with hand_free strips "
                         "(python -m handsdk.train.pseudolabel --hand-free-only, then pack again)")
    if face_share > 0 and not np.isfinite(pool.faces[:, 0]).all(-1).any():
        raise SystemExit("--face-share needs a pack with faces (scripts/mine_faces.py, then pack again)")


def refuse_other_arch(saved: dict, built: dict, what: str) -> None:
    """Weights saved for another network (a width or input size other than this run's options)
    stop the run with both named, not with a tensor-shape error. A width missing from older
    checkpoints is the class's default, as :func:`handsdk.nets.build` reads it."""
    cls = built.get("class") or saved.get("class")
    default = {"width": DEFAULT_WIDTH[cls]} if cls in DEFAULT_WIDTH else {}
    saved, built = {**default, **saved}, {**default, **built}
    diff = [k for k in ("input_size", "width") if k in saved and k in built and saved[k] != built[k]]
    if diff:
        raise SystemExit(f"{what}: those weights are for {', '.join(f'{k} {saved[k]}' for k in diff)}, this run "
                         f"builds {', '.join(f'{k} {built[k]}' for k in diff)}: pass the run's own options "
                         "(its recipe, e.g. --config scripts/long_run.toml) or another --workdir")


class Trainer:
    """Budgeted training state: model, EMA copy, optimiser, elapsed time, crops seen, metrics log.

    The cosine schedule spans ``budget_s`` seconds of training, or ``budget_crops`` crops when
    that is > 0: a budget in crops means the same schedule on a CPU and on a lent GPU, ~45 times
    faster, so one run can move between them. ``stop_after_s`` > 0 ends this sitting after that
    many seconds (with a last validation and checkpoint), leaving the rest for ``--resume``."""

    def __init__(self, model: torch.nn.Module, workdir: Path, budget_s: float, lr: float,
                 device: torch.device, resume: bool, ema_decay: float = 0.998, init: Path | None = None,
                 arch: dict | None = None, budget_crops: int = 0, stop_after_s: float = 0.0):
        self.workdir = workdir
        self.arch = arch or {}  # saved with every checkpoint, e.g. the input size export needs
        workdir.mkdir(parents=True, exist_ok=True)
        if init is not None:  # fine-tune from earlier weights (a best.pt or an exported .pt)
            state = torch.load(init, map_location="cpu", weights_only=False)
            refuse_other_arch(state.get("arch", {}), self.arch, f"--init {init}")
            model.load_state_dict(state["model"])
            print(f"initialised from {init}")
        self.model = model.to(device)
        if device.type == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ema = copy.deepcopy(self.model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=1e-4)
        self.base_lr, self.budget_s, self.ema_decay = lr, budget_s, ema_decay
        self.budget_crops, self.stop_after_s = budget_crops, stop_after_s
        self.step, self.elapsed, self.best, self.seen = 0, 0.0, -math.inf, 0
        self.log_path = workdir / "metrics.jsonl"
        if resume and (workdir / "last.pt").exists():
            state = torch.load(workdir / "last.pt", map_location=device, weights_only=False)
            refuse_other_arch(state.get("arch", {}), self.arch, f"--resume from {workdir / 'last.pt'}")
            self.model.load_state_dict(state["model"])
            self.ema.load_state_dict(state["ema"])
            self.opt.load_state_dict(state["opt"])
            self.step, self.elapsed, self.best = state["step"], state["elapsed"], state["best"]
            self.seen = state.get("seen", 0)  # runs saved before crop budgets: 0
            if budget_crops:
                if budget_crops <= self.seen:
                    print(f"warning: --crops {budget_crops} is the run's total budget and {self.seen} crops "
                          "are already trained: pass a larger --crops to train longer")
                print(f"resumed at step {self.step}, {self.seen} crops trained, "
                      f"{max(0, budget_crops - self.seen)} to go")
            else:
                if budget_s <= self.elapsed:
                    print(f"warning: --minutes {budget_s / 60:g} is the run's total budget and "
                          f"{self.elapsed / 60:.1f} min are already trained: pass a larger --minutes to train longer")
                self.budget_s = max(budget_s, self.elapsed + 1)
                print(f"resumed at step {self.step}, {self.elapsed:.0f}s trained, "
                      f"{max(0.0, self.budget_s - self.elapsed) / 60:.1f} min to go")
        self._t0 = time.time() - self.elapsed
        self._sitting_t0 = time.time()
        self._last_val = self.elapsed

    @property
    def fraction(self) -> float:
        """How far through the schedule: crops seen / budget, or time trained / budget."""
        if self.budget_crops:
            return min(1.0, self.seen / self.budget_crops)
        return min(1.0, (time.time() - self._t0) / self.budget_s)

    def done(self) -> bool:
        """The budget is spent, or this sitting's ``stop_after_s`` is."""
        sitting_over = self.stop_after_s > 0 and time.time() - self._sitting_t0 >= self.stop_after_s
        return self.fraction >= 1.0 or sitting_over

    def update(self, loss: torch.Tensor, crops: int = 0) -> None:
        """One optimiser step on ``loss``, computed from ``crops`` training crops."""
        self.seen += crops
        f = self.fraction
        warm = min(1.0, self.step / 300)
        lr = self.base_lr * warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * f)))
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.opt.step()
        self.step += 1
        self.update_ema(min(self.ema_decay, (1 + self.step) / (10 + self.step)))

    @torch.no_grad()
    def update_ema(self, decay: float) -> None:
        """EMA weights ← ``decay`` · EMA + (1 − ``decay``) · model; buffers (BatchNorm statistics) copied.
        Batched ``_foreach`` kernels: a Python loop over ~250 tensors kept the GPU trainer host-bound."""
        ema_p, model_p = list(self.ema.parameters()), [p.detach() for p in self.model.parameters()]
        torch._foreach_mul_(ema_p, decay)
        torch._foreach_add_(ema_p, model_p, alpha=1 - decay)
        buffers = list(self.ema.buffers())
        if buffers:  # a model without BatchNorm has none, and _foreach_copy_ refuses an empty list
            torch._foreach_copy_(buffers, list(self.model.buffers()))

    def closing_line(self, key: str) -> str:
        """What the run's last line says: done, or stopped part-way (a sitting) and how to go on."""
        where = f"best {key} {self.best:.4f}; weights in {self.workdir / 'best.pt'}"
        if self.fraction >= 1.0:
            return f"done: {where}"
        return (f"stopped at {100 * self.fraction:.1f} % of the budget (step {self.step}, {self.seen} crops): "
                f"{where}; run again with --resume to go on")

    def progress(self, text: str) -> None:
        f = self.fraction
        bar = "#" * int(30 * f) + "-" * (30 - int(30 * f))
        print(f"[{bar}] {100 * f:5.1f}% step {self.step} {text}", flush=True)

    def log_step(self, loss: torch.Tensor, parts: dict[str, torch.Tensor], every: int = 50) -> None:
        """The progress line with the loss and its parts, every ``every`` steps."""
        if self.step % every == 0:
            self.progress(f"loss {float(loss.detach()):.3f} "
                          + " ".join(f"{k} {float(v):.3f}" for k, v in parts.items()))

    def validation_due(self, every_s: float) -> bool:
        """True every ``every_s`` seconds of training, and once more when the budget is spent."""
        now = time.time() - self._t0
        if now - self._last_val > every_s or self.done():
            self._last_val = now
            return True
        return False

    def checkpoint(self, metrics: dict, key: str) -> bool:
        """Log ``metrics``, save last.pt, and best.pt when ``metrics[key]`` improved."""
        self.elapsed = time.time() - self._t0
        rec = {"step": self.step, "elapsed_s": round(self.elapsed, 1), "crops": self.seen, **metrics}
        with self.log_path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        state = {"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                 "opt": self.opt.state_dict(), "step": self.step, "elapsed": self.elapsed,
                 "best": self.best, "arch": self.arch, "seen": self.seen}
        improved = metrics[key] > self.best
        if improved:
            self.best = metrics[key]
            state["best"] = self.best
            save_atomically(self.workdir / "best.pt", {"model": self.ema.state_dict(), "metrics": rec, "arch": self.arch})
        save_atomically(self.workdir / "last.pt", state)
        return improved


def save_atomically(path: Path, obj: dict) -> None:
    """torch.save through a temporary file: a run killed mid-write (a timeout, a lost machine)
    keeps its previous checkpoint whole, so ``--resume`` still works."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def add_common_arguments(ap, *, minutes: float, input_size: int, batch_help: str, seed: int) -> None:
    """The options both trainers take."""
    ap.add_argument("--pack", type=Path, help="training pack from handsdk.train.pack")
    ap.add_argument("--minutes", type=float, default=minutes,
                    help="the run's total time budget, which the cosine schedule spans (unless --crops); with "
                         "--resume the run continues up to this total (raise it to train longer)")
    ap.add_argument("--crops", type=int, default=0,
                    help="the run's total budget in training crops (steps x batch), which the schedule spans "
                         "instead of --minutes: one schedule for a run that moves between a CPU and a lent GPU")
    ap.add_argument("--stop-after", type=float, default=0.0, metavar="MINUTES",
                    help="end this sitting after MINUTES (validated and saved), the rest left for --resume; "
                         "0: run to the end of the budget")
    ap.add_argument("--input-size", type=int, default=input_size)
    ap.add_argument("--batch", type=int, default=0, help=batch_help)
    ap.add_argument("--lr", type=float, default=0.0, help="0: 3e-3 on a GPU, 1.5e-3 on a CPU")
    ap.add_argument("--synthetic", type=int, default=1500, help="synthetic renders in the pool")
    ap.add_argument("--val-every", type=float, default=60.0, help="seconds between validations")
    ap.add_argument("--resume", action="store_true",
                    help="continue from WORKDIR/last.pt until --minutes in all")
    ap.add_argument("--init", type=Path, help="start from these weights (fine-tuning)")
    ap.add_argument("--seed", type=int, default=seed)


def setup(args, gpu_batch: int, cpu_batch: int) -> tuple[torch.device, int, float, Pool]:
    """Device (a GPU when there is one), batch size, learning rate and the data pool."""
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(args.seed)
    batch = args.batch or (gpu_batch if dev.type == "cuda" else cpu_batch)
    lr = args.lr or (3e-3 if dev.type == "cuda" else 1.5e-3)
    pool = build_pool(args.pack, args.synthetic, args.seed)
    print(f"pool: {len(pool.images)} images ({int(pool.synthetic.sum())} synthetic, "
          f"{int(pool.valid.sum())} held out) on {dev}", flush=True)
    return dev, batch, lr, pool


def parse_with_config(ap, argv: list[str] | None):
    """Parse ``argv``; ``--config FILE.toml`` supplies defaults (keys = option names with
    underscores), which explicit command-line options override."""
    from ..config import tomllib

    ap.add_argument("--config", type=Path, help="TOML file of option defaults, e.g. minutes = 60")
    first, _ = ap.parse_known_args(argv)
    if first.config is not None:
        try:
            data = tomllib.loads(first.config.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SystemExit(f"error: --config {first.config}: {exc}") from None
        known = {a.dest for a in ap._actions}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SystemExit(f"{first.config}: unknown keys {unknown}; valid: {sorted(known - {'help', 'config'})}")
        ap.set_defaults(**{k: (Path(v) if isinstance(ap.get_default(k), Path) or k in ("pack", "workdir", "init")
                               else v) for k, v in data.items()})
    return ap.parse_args(argv)


def plot_curves(log_path: Path, out: Path, keys: list[str]) -> None:
    """Plot the metrics log against minutes, or against crops where every row counts them (a run
    that moved between devices: minutes there mean different amounts of training). Needs
    matplotlib; skipped quietly without it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    if not rows:
        return
    by_crops = all(r.get("crops", 0) > 0 for r in rows)
    x = [r["crops"] / 1e6 if by_crops else r["elapsed_s"] / 60 for r in rows]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5))
    for ax, k in zip(np.atleast_1d(axes), keys, strict=False):
        ax.plot(x, [r.get(k, np.nan) for r in rows])
        ax.set_xlabel("million crops" if by_crops else "minutes")
        ax.set_title(k)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
