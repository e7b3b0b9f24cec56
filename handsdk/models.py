"""The model manifest: which files make each model, their hashes, input size, normalisation
and output layout. Backends load models through a :class:`ModelSpec`, never by path alone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError

#: The file formats a manifest can list, by backend family.
FORMATS = ("onnx", "onnx_int8", "tflite", "torch")
SUFFIX_FORMAT = {".onnx": "onnx", ".tflite": "tflite", ".pt": "torch", ".pth": "torch"}


def bundled_models_dir() -> Path:
    """``$HANDSDK_MODELS``, else the project's ``models/`` folder: installed (from a wheel or
    editable) it is the data package ``handsdk_models``; in a checkout that is not installed,
    ``models/`` beside ``handsdk/``."""
    env = os.environ.get("HANDSDK_MODELS")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("handsdk_models")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[1] / "models"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ModelSpec:
    """One model of the manifest (``landmark`` or ``detector``) and how to read its files."""

    name: str
    entry: dict[str, Any]
    root: Path
    override: Path | None = None  # a user's file replacing the bundled one

    @property
    def input_size(self) -> int:
        return int(self.entry["input_size"])

    @property
    def outputs(self) -> list[str]:
        return list(self.entry["outputs"])

    def available_formats(self) -> list[str]:
        if self.override is not None:
            return [SUFFIX_FORMAT.get(self.override.suffix, "onnx")]
        return [f for f in FORMATS if f in self.entry.get("files", {})]

    def path(self, fmt: str) -> Path:
        """The verified file for ``fmt``: exists, non-empty, and matches the manifest's sha256."""
        if self.override is not None:
            if not self.override.is_file():
                raise ModelError(f"{self.name} model file {str(self.override)!r} does not exist "
                                 "(set by [models] in the config)")
            return self.override
        files = self.entry.get("files", {})
        if fmt not in files:
            raise ModelError(f"the {self.name} model has no {fmt!r} file in {self.root / 'manifest.json'}; "
                             f"available: {', '.join(files) or '(none)'}")
        info = files[fmt]
        p = self.root / info["path"]
        if not p.is_file():
            raise ModelError(f"{self.name} model file {str(p)!r} is missing (expected by the manifest "
                             f"{self.root / 'manifest.json'}); reinstall handsdk or fix [models]")
        if p.stat().st_size != info.get("bytes", p.stat().st_size):
            raise ModelError(f"{self.name} model file {str(p)!r} is {p.stat().st_size} bytes, the manifest "
                             f"expects {info['bytes']}: the file is truncated or replaced")
        if "sha256" in info and sha256(p) != info["sha256"]:
            raise ModelError(f"{self.name} model file {str(p)!r} does not match the manifest's sha256 "
                             f"{info['sha256'][:12]}…: the file is corrupt or from another version")
        return p


def load_manifest(path: Path | None = None) -> dict[str, Any]:
    path = path or bundled_models_dir() / "manifest.json"
    if not path.is_file():
        raise ModelError(f"model manifest {str(path)!r} not found; set [models] manifest or HANDSDK_MODELS")
    try:
        data = json.loads(path.read_text())
        data["models"]  # noqa: B018
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ModelError(f"model manifest {str(path)!r} is not a valid handsdk manifest: {exc}") from exc
    return data


def model_spec(name: str, manifest: str | Path | None = None, override: str | Path | None = None) -> ModelSpec:
    """The :class:`ModelSpec` for ``name`` from the bundled (or given) manifest."""
    mpath = Path(manifest) if manifest else None
    data = load_manifest(mpath)
    models = data["models"]
    if name not in models:
        raise ModelError(f"the manifest has no model {name!r}; it has: {', '.join(models)}")
    root = mpath.parent if mpath else bundled_models_dir()
    _check_entry(name, models[name], root / "manifest.json")
    return ModelSpec(name, models[name], root, Path(override) if override else None)


def _check_entry(name: str, entry: Any, where: Path) -> None:
    """The keys backends and the tracker read, present and of the right type."""
    def bad(what: str) -> ModelError:
        return ModelError(f"model manifest {str(where)!r}: {name!r} {what}")

    if not isinstance(entry, dict):
        raise bad(f"must be an object, not {type(entry).__name__}")
    size = entry.get("input_size")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise bad(f"needs 'input_size', a positive integer (pixels a side); got {size!r}")
    outputs = entry.get("outputs")
    if not isinstance(outputs, list) or not outputs or not all(isinstance(o, str) for o in outputs):
        raise bad(f"needs 'outputs', a list of output names in the model's order; got {outputs!r}")
    files = entry.get("files", {})
    if not isinstance(files, dict):
        raise bad(f"'files' must map formats ({', '.join(FORMATS)}) to {{path, sha256, bytes}}")
    for fmt, info in files.items():
        if not isinstance(info, dict) or not isinstance(info.get("path"), str):
            raise bad(f"file {fmt!r} needs a 'path' (relative to the manifest); got {info!r}")
