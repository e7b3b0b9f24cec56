"""The model manifest: which files make each model, their hashes, input size, normalisation
and output layout. Backends load models through a :class:`ModelSpec`, never by path alone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError

log = logging.getLogger(__name__)

#: A landmark model's presence threshold when its manifest entry gives none (models up to 0.2.4).
DEFAULT_PRESENCE_THRESHOLD = 0.8
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
    """One model of the manifest (``landmark`` or ``detector``) and how to read its files. The
    entry has passed :func:`check_manifest`, so its fields have the documented types."""

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

    @property
    def crop_scale(self) -> float:
        """Landmark crop side over the hand's rotated box side (the model was trained on it)."""
        return float(self.entry.get("crop_scale", 1.5))

    @property
    def presence_threshold(self) -> float:
        """The presence at which this landmark model keeps a hand: measured with the detector it
        ships with, so it moves with the models (the tracker's ``min_presence_confidence`` default)."""
        return float(self.entry.get("presence_threshold", DEFAULT_PRESENCE_THRESHOLD))

    @property
    def stride(self) -> int:
        """Input pixels per detector heatmap cell."""
        return int(self.entry.get("stride", 8))

    @property
    def where(self) -> str:
        """The file or manifest errors name."""
        return str(self.override or self.root / "manifest.json")

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
        size = p.stat().st_size
        if "bytes" in info and size != info["bytes"]:
            raise ModelError(f"{self.name} model file {str(p)!r} is {size} bytes, the manifest expects "
                             f"{info['bytes']}: the file is truncated or replaced")
        if "sha256" in info and sha256(p) != info["sha256"].lower():
            raise ModelError(f"{self.name} model file {str(p)!r} does not match the manifest's sha256 "
                             f"{info['sha256'][:12]}…: the file is corrupt or from another version")
        return p

    def unverified_override(self) -> bool:
        """Whether a ``[models]`` override is a file the manifest does not list by sha256 (a
        user's own model, or the right shapes with untrained weights): it is then said loudly and
        must pass :func:`handsdk.backend.self_check`."""
        if self.override is None:
            return False
        known = {str(i.get("sha256", "")).lower() for i in self.entry.get("files", {}).values()}
        digest = sha256(self.override)
        if digest in known:
            return False
        log.warning("the %s model %r is not one the manifest %s lists (sha256 %s… matches none of "
                    "its files): it is checked on a known hand before use, and its accuracy is not "
                    "handsdk's measured one", self.name, str(self.override),
                    self.root / "manifest.json", digest[:12])
        return True


def load_manifest(path: Path | None = None) -> dict[str, Any]:
    """The manifest at ``path`` (default: the bundled one), checked against :data:`SCHEMA`: any
    problem is one :class:`ModelError` naming the file, the field, the value and what is accepted."""
    path = path or bundled_models_dir() / "manifest.json"
    if path.is_dir():
        raise ModelError(f"model manifest {str(path)!r} is a folder; give the manifest.json in it")
    if not path.is_file():
        raise ModelError(f"model manifest {str(path)!r} not found; set [models] manifest or HANDSDK_MODELS")
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a byte-order mark some editors add is fine
        data = json.loads(text, parse_constant=_no_constant)
    except OSError as exc:
        raise ModelError(f"model manifest {str(path)!r} cannot be read: {exc}") from exc
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise ModelError(f"model manifest {str(path)!r} is not valid UTF-8 JSON: {exc}") from exc
    check_manifest(data, path)
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def model_spec(name: str, manifest: str | Path | None = None, override: str | Path | None = None) -> ModelSpec:
    """The :class:`ModelSpec` for ``name`` from the bundled (or given) manifest."""
    mpath = Path(manifest) if manifest else None
    data = load_manifest(mpath)
    models = data["models"]
    if name not in models:
        raise ModelError(f"model manifest {str(mpath or bundled_models_dir() / 'manifest.json')!r} has no "
                         f"model {name!r}; it has: {', '.join(models)}")
    root = mpath.parent if mpath else bundled_models_dir()
    return ModelSpec(name, models[name], root, Path(override) if override else None)


# -- the manifest's schema ---------------------------------------------------------------------
#: How many outputs the tracker reads from each model it runs (more are allowed, and ignored).
MODEL_OUTPUTS = {"landmark": 4, "detector": 2}
MANIFEST_VERSION = 1


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int_in(lo: int, hi: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: _is_int(v) and lo <= v <= hi), f"an integer from {lo} to {hi}"


def _text(v: Any) -> bool:
    return isinstance(v, str)


def _names(v: Any) -> bool:
    return (isinstance(v, list) and bool(v) and all(isinstance(o, str) and o for o in v)
            and len(set(v)) == len(v))


def _str_map(v: Any) -> bool:
    return isinstance(v, dict)


def _rel_path(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip()) and "\0" not in v and not Path(v).is_absolute()


#: field -> (check, what is accepted, required). Every field a manifest may hold: an unknown one
#: (a typo such as ``crop_sclae`` would silently fall back to a default) is an error too.
ENTRY_SCHEMA: dict[str, tuple[Callable[[Any], bool], str, bool]] = {
    "version": (_text, "a version string such as \"0.1.1\"", False),
    "input_size": (*_int_in(8, 4096), True),
    "input_layout": (lambda v: v == "NHWC", '"NHWC" (the only layout backends are given)', False),
    "input": (_text, "a description (text)", False),
    "normalisation": (_text, "a description (text)", False),
    "outputs": (_names, "a non-empty list of distinct output names, in the model's order", True),
    "output_layout": (lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
                      "an object of output name -> description", False),
    "arch": (lambda v: isinstance(v, dict) and isinstance(v.get("class"), str)
             and _is_int(v.get("input_size")),
             'an object {"class": network class name, "input_size": integer}', False),
    "params": (lambda v: _is_int(v) and v >= 0, "an integer >= 0 (the parameter count)", False),
    "train_metrics": (_str_map, "an object of metric name -> value", False),
    "crop_scale": (lambda v: _is_number(v) and 1.0 <= v <= 4.0,
                   "a number from 1 to 4 (crop side / the hand's rotated box side)", False),
    "presence_threshold": (lambda v: _is_number(v) and 0.0 <= v <= 1.0,
                           "a number from 0 to 1 (the presence at which the model keeps a hand)", False),
    "stride": (*_int_in(1, 64), False),
    "files": (_str_map, f"an object of format ({', '.join(FORMATS)}) -> {{path, sha256, bytes}}", False),
}
FILE_SCHEMA: dict[str, tuple[Callable[[Any], bool], str, bool]] = {
    "path": (_rel_path, "a file path relative to the manifest's folder", True),
    "sha256": (lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-fA-F]{64}", v) is not None,
               "64 hexadecimal digits", False),
    "bytes": (lambda v: _is_int(v) and v > 0, "the file's size, an integer > 0", False),
}


def check_manifest(data: Any, where: Path) -> None:
    """``data`` (a parsed manifest) against the schema above, or a :class:`ModelError` naming the
    file, the field (``models.landmark.files.onnx.bytes``), the value and what is accepted."""
    def bad(field: str, value: Any, accepted: str) -> ModelError:
        shown = f"{type(value).__name__} {value!r}"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return ModelError(f"model manifest {str(where)!r}: {field} must be {accepted}; got {shown}")

    def fields(obj: dict[str, Any], schema: dict[str, Any], prefix: str) -> None:
        for key in obj:
            if key not in schema:
                raise ModelError(f"model manifest {str(where)!r}: {prefix}.{key} is not a manifest field "
                                 f"(a typo?); fields: {', '.join(schema)}")
        for key, (ok, accepted, required) in schema.items():
            if key not in obj:
                if required:
                    raise ModelError(f"model manifest {str(where)!r}: {prefix} needs {key!r}, {accepted}")
            elif not ok(obj[key]):
                raise bad(f"{prefix}.{key}", obj[key], accepted)

    if not isinstance(data, dict):
        raise bad("the manifest", data, 'an object {"manifest_version": 1, "models": {...}}')
    for key in data:
        if key not in ("manifest_version", "models"):
            raise ModelError(f"model manifest {str(where)!r}: {key!r} is not a manifest field (a typo?); "
                             "fields: manifest_version, models")
    version = data.get("manifest_version", MANIFEST_VERSION)
    if version != MANIFEST_VERSION or not _is_int(version):
        raise bad("manifest_version", version, f"{MANIFEST_VERSION} (the format this handsdk reads)")
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise bad("models", models, "an object of model name (landmark, detector) -> its entry")
    for name, entry in models.items():
        prefix = f"models.{name}"
        if not isinstance(entry, dict):
            raise bad(prefix, entry, "an object (the model's entry)")
        fields(entry, ENTRY_SCHEMA, prefix)
        need = MODEL_OUTPUTS.get(name, 1)
        if len(entry["outputs"]) < need:
            raise bad(f"{prefix}.outputs", entry["outputs"], f"a list of at least {need} names (the "
                      f"tracker reads {need} outputs from the {name} model)")
        arch_size = entry.get("arch", {}).get("input_size", entry["input_size"])
        if arch_size != entry["input_size"]:
            raise bad(f"{prefix}.arch.input_size", arch_size, f"the entry's input_size, {entry['input_size']}")
        stride = entry.get("stride")
        if stride is not None and entry["input_size"] % stride:
            raise bad(f"{prefix}.stride", stride, f"a divisor of input_size {entry['input_size']}")
        for fmt, info in entry.get("files", {}).items():
            if fmt not in FORMATS:
                raise ModelError(f"model manifest {str(where)!r}: {prefix}.files.{fmt} is not a model "
                                 f"format; formats: {', '.join(FORMATS)}")
            if not isinstance(info, dict):
                raise bad(f"{prefix}.files.{fmt}", info, "an object {path, sha256, bytes}")
            fields(info, FILE_SCHEMA, f"{prefix}.files.{fmt}")
