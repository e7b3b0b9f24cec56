"""The sign model: feature standardisation + a small MLP (one hidden ReLU layer) + softmax, in
plain numpy, and the vocabulary file that holds it.

Vocabulary file (JSON, ``models/signs/<name>.json``)::

    {"format": "handsdk-signs", "version": 1, "name": "asl_letters",
     "features": "handsdk_signs.v1", "orientation": true,
     "labels": ["A", ...], "notes": {...}, "metrics": {...}, "training": {...},
     "arrays": {"mean": {"shape": [113], "dtype": "float32", "data": "<base64>"}, ...}}

Arrays are stored as base64 little-endian float32, so a vocabulary is a few hundred KB at most.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from handsdk.errors import ConfigError

from .features import FEATURE_VERSION, feature_size

FORMAT = "handsdk-signs"
VERSION = 1


def _encode(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(a.shape), "dtype": "float32", "data": base64.b64encode(a.tobytes()).decode()}


def _decode(d: dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(d["data"])
    return np.frombuffer(raw, dtype="<f4").reshape(d["shape"]).astype(np.float64)


@dataclass
class SignModel:
    """Standardise, then ``softmax(relu(x W1 + b1) W2 + b2)``."""

    labels: list[str]
    mean: np.ndarray
    std: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    orientation: bool = False
    name: str = ""
    notes: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    # -- inference ---------------------------------------------------------------------------
    def logits(self, x: np.ndarray) -> np.ndarray:
        x = (np.atleast_2d(np.asarray(x, np.float64)) - self.mean) / self.std
        h = np.maximum(x @ self.w1 + self.b1, 0.0)
        return h @ self.w2 + self.b2

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, len(labels)) class probabilities for (n, features) inputs."""
        z = self.logits(x)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    # -- file --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": VERSION, "name": self.name, "features": FEATURE_VERSION,
            "orientation": bool(self.orientation), "labels": list(self.labels),
            "notes": self.notes, "metrics": self.metrics, "training": self.training,
            "arrays": {k: _encode(getattr(self, k)) for k in ("mean", "std", "w1", "b1", "w2", "b2")},
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "vocabulary") -> SignModel:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ConfigError(f"{where} is not a handsdk sign vocabulary (format {FORMAT!r})")
        if d.get("version") != VERSION:
            raise ConfigError(f"{where} has version {d.get('version')!r}; this handsdk reads {VERSION}")
        if d.get("features") != FEATURE_VERSION:
            raise ConfigError(f"{where} was trained on features {d.get('features')!r}; this handsdk "
                              f"computes {FEATURE_VERSION!r}: retrain it (python -m handsdk_signs.train)")
        try:
            arrays = {k: _decode(d["arrays"][k]) for k in ("mean", "std", "w1", "b1", "w2", "b2")}
            labels = [str(x) for x in d["labels"]]
            orientation = bool(d.get("orientation", False))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where} is damaged: {type(exc).__name__}: {exc}") from None
        n_in = feature_size(orientation)
        ok = (arrays["mean"].shape == (n_in,) and arrays["std"].shape == (n_in,)
              and arrays["w1"].ndim == 2 and arrays["w1"].shape[0] == n_in
              and arrays["b1"].shape == (arrays["w1"].shape[1],)
              and arrays["w2"].shape == (arrays["w1"].shape[1], len(labels))
              and arrays["b2"].shape == (len(labels),) and len(labels) >= 2
              and len(set(labels)) == len(labels)
              and all(np.all(np.isfinite(a)) for a in arrays.values()))
        if not ok:
            raise ConfigError(f"{where} is damaged: array shapes do not match its labels/features")
        arrays["std"] = np.where(arrays["std"] > 1e-9, arrays["std"], 1.0)
        return cls(labels=labels, orientation=orientation, name=str(d.get("name", "")),
                   notes=dict(d.get("notes") or {}), metrics=dict(d.get("metrics") or {}),
                   training=dict(d.get("training") or {}), **arrays)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> SignModel:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"sign vocabulary file {str(path)!r} does not exist")
        try:
            d = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"sign vocabulary {str(path)!r} is not valid JSON: {exc}") from None
        return cls.from_dict(d, f"sign vocabulary {str(path)!r}")


# -- training ------------------------------------------------------------------------------------
def fit(x: np.ndarray, y: np.ndarray, labels: Sequence[str], *, hidden: int = 128, epochs: int = 300,
        lr: float = 3e-3, weight_decay: float = 1e-3, batch: int = 128, label_smoothing: float = 0.05,
        dropout: float = 0.2, seed: int = 0, class_weight: bool = True, orientation: bool = False,
        name: str = "") -> SignModel:
    """Train the MLP with Adam on (n, features) ``x`` and integer classes ``y`` (numpy only)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.int64)
    n, d = x.shape
    c = len(labels)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 1e-6, std, 1.0)
    xs = (x - mean) / std
    params = {
        "w1": rng.normal(0, math.sqrt(2.0 / d), (d, hidden)), "b1": np.zeros(hidden),
        "w2": rng.normal(0, math.sqrt(1.0 / hidden), (hidden, c)), "b2": np.zeros(c),
    }
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(v) for k, v in params.items()}
    counts = np.bincount(y, minlength=c).astype(np.float64)
    cw = (n / (c * np.maximum(counts, 1))) if class_weight else np.ones(c)
    target = np.full((n, c), label_smoothing / c)
    target[np.arange(n), y] += 1.0 - label_smoothing
    b1_, b2_, eps = 0.9, 0.999, 1e-8
    step = 0
    steps_total = epochs * math.ceil(n / batch)
    for _epoch in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            xb, tb, wb = xs[idx], target[idx], cw[y[idx]]
            h_pre = xb @ params["w1"] + params["b1"]
            h = np.maximum(h_pre, 0.0)
            if dropout > 0:
                mask = (rng.random(h.shape) >= dropout) / (1.0 - dropout)
                h = h * mask
            z = h @ params["w2"] + params["b2"]
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            g = (p - tb) * (wb / wb.sum())[:, None]
            grads = {"w2": h.T @ g, "b2": g.sum(0)}
            gh = g @ params["w2"].T
            if dropout > 0:
                gh = gh * mask
            gh = gh * (h_pre > 0)
            grads["w1"] = xb.T @ gh
            grads["b1"] = gh.sum(0)
            step += 1
            rate = lr * 0.5 * (1 + math.cos(math.pi * step / steps_total))  # cosine decay
            for k in params:
                gk = grads[k]
                m[k] = b1_ * m[k] + (1 - b1_) * gk
                v[k] = b2_ * v[k] + (1 - b2_) * gk * gk
                mh = m[k] / (1 - b1_ ** step)
                vh = v[k] / (1 - b2_ ** step)
                params[k] -= rate * (mh / (np.sqrt(vh) + eps) + (weight_decay * params[k] if k[0] == "w" else 0))
    return SignModel(labels=list(labels), mean=mean, std=std, orientation=orientation, name=name, **params)
