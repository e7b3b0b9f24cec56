"""The config file (TOML) or dict that builds a :class:`~handsdk.Tracker`.

Sections: ``[tracker]``, ``[backend]``, ``[filter]``, ``[[consumers]]``, ``[models]`` and
``[source]``. Core sections are checked here; the options of a plugin section are checked
against the plugin factory's signature when the tracker is built. Every problem raises a
:class:`~handsdk.errors.ConfigError` naming the file, the key and what is valid.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError, HandSDKError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


#: ``detector_rotations`` -> the turns (radians) added to a detection's crop angle.
DETECTOR_ROTATIONS: dict[int, tuple[float, ...]] = {
    1: (0.0,), 2: (0.0, math.pi), 4: (0.0, math.pi, math.pi / 2, -math.pi / 2)}


#: [tracker] options that change how fast a frame is read, never what is read: results cached or
#: resumed under one setting stand for the other.
TRACKER_SPEED_ONLY = ("overlap_detector",)


def tracker_result_options(t: TrackerConfig) -> dict[str, Any]:
    """The [tracker] options that decide what is read, as a dict (``TRACKER_SPEED_ONLY`` left
    out): the part of a config that keys cached or resumed results."""
    return {k: v for k, v in asdict(t).items() if k not in TRACKER_SPEED_ONLY}


@dataclass
class TrackerConfig:
    max_hands: int = 2
    min_detection_confidence: float = 0.15  # detector score for a crop to be read (measured: see docs/models.md)
    # landmark model's presence to keep a hand; None: the model's own measured threshold (its manifest's
    # presence_threshold), and for a whole-pipeline backend (mediapipe) only that backend's own thresholds
    min_presence_confidence: float | None = None
    min_landmark_confidence: float = 0.0  # mean per-landmark confidence to keep a hand
    # beside a hand read with at least this mean landmark confidence, a new reading below it is dropped
    # (faces and clutter next to a real hand; 0: off; measured: docs/models.md, "Faces")
    min_confidence_beside_hand: float = 0.25
    mirrored: bool = False  # selfie camera: swap handedness
    refine_still: bool = True  # detect(): re-crop from the first landmarks and run again
    detector_rotations: int = 2  # try each new detection's crop at 1, 2 (+180°) or 4 (+-90°) rotations
    mirror_new: bool = True  # read each new hand (detect(), new detections in video) mirrored too, and average
    mirror_tracked: bool = False  # the same for every tracked hand in every video frame (one more crop each)
    fps: float = 30.0  # timestamps for process() calls that give none
    detector_interval: int = 0  # also run the detector every N frames while tracking (0: never)
    # read the tracked hands' landmarks while the detector looks for more on a second thread (the
    # same results; a second core). None (unset): on, except in `handsdk extract` when its
    # workers fill the cores
    overlap_detector: bool | None = None
    new_hand_interval: int = 1  # with some hands tracked but fewer than max_hands, look for more every N frames
    # fewer than max_hands sure hands in the whole frame: look again in its 2x2 overlapping tiles for small
    # hands (detect(): all four; process(): while no hand is tracked, one per frame in turn)
    tile_search: bool = True


@dataclass
class PluginSection:
    """A section that picks a plugin by ``name``; the other keys are its options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    origin: str | None = None  # where it came from when not a config file, e.g. a CLI flag (errors name it)


@dataclass
class ModelsConfig:
    manifest: str | None = None  # a manifest.json other than the bundled one
    landmark: str | None = None  # a model file overriding the bundled landmark model
    detector: str | None = None  # a model file overriding the bundled detector
    variant: str = "fp32"  # "fp32" or "int8" (ONNX Runtime)


@dataclass
class Config:
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    backend: PluginSection = field(default_factory=lambda: PluginSection("onnxruntime"))
    filter: PluginSection = field(default_factory=lambda: PluginSection("one_euro"))
    consumers: list[PluginSection] = field(default_factory=list)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    source: PluginSection | None = None
    origin: str = field(default="<dict>", compare=False)  # for error messages


SECTIONS = ("tracker", "backend", "filter", "consumers", "models", "source")
VARIANTS = ("fp32", "int8")


def number_option(where: str, option: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    """``value`` as a float if it is a finite number in [lo, hi] (``(lo, hi]`` with ``lo_open``),
    else a :class:`ConfigError` naming the plugin (``where``), the option and the range: for
    plugins checking their own options."""
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
          and (value > lo if lo_open else value >= lo) and value <= hi)
    if not ok:
        bracket = "(" if lo_open else "["
        raise ConfigError(f"{where}: option {option!r} must be a number in {bracket}{lo:g}, {hi:g}], "
                          f"got {value!r}")
    return float(value)


def integer_option(where: str, option: str, value: Any, lo: int, hi: int) -> int:
    """``value`` if it is an integer in [lo, hi], else a :class:`ConfigError` naming the plugin,
    the option and the range (``true`` / ``false`` are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{where}: option {option!r} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def flag_option(where: str, option: str, value: Any) -> bool:
    """``value`` if it is ``true`` / ``false``, else a :class:`ConfigError` naming the option."""
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: option {option!r} must be true or false, got {value!r}")
    return value


def path_option(where: str, option: str, value: Any) -> Path:
    """``value`` as a :class:`~pathlib.Path` if it is a non-empty path string, else a :class:`ConfigError`."""
    if isinstance(value, os.PathLike) or (isinstance(value, str) and value):
        return Path(value)
    raise ConfigError(f"{where}: option {option!r} must be a file path, got {value!r}")


def _check_type(where: str, key: str, value: Any, expected: type) -> Any:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(f"{where}: {key} is too large: {value!r}") from None
    if expected is int and isinstance(value, bool):
        raise ConfigError(f"{where}: {key} must be an integer, got {value!r}")
    if not isinstance(value, expected):
        raise ConfigError(f"{where}: {key} must be {expected.__name__}, got {type(value).__name__} {value!r}")
    return value


def _dataclass_section(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a table of keys, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r}; valid keys: {', '.join(known)}")
        ftype = known[key].type
        base = {"int": int, "float": float, "float | None": float, "bool": bool, "bool | None": bool, "str": str, "str | None": str}[ftype]
        kwargs[key] = _check_type(where, key, value, base)
    return cls(**kwargs)


def _plugin_section(data: Any, where: str, default: str | None = None) -> PluginSection:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a table with a 'name' key, got {type(data).__name__}")
    opts = dict(data)
    name = opts.pop("name", default)
    if name is None:
        raise ConfigError(f"{where}: missing 'name' (the plugin to use)")
    if not isinstance(name, str):
        raise ConfigError(f"{where}: name must be a string, got {name!r}")
    return PluginSection(name, opts)


def parse_config(data: Mapping[str, Any], origin: str = "<dict>") -> Config:
    """Validate a config dict (the shape of the TOML file) into a :class:`Config`."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{origin}: a config must be a table/dict, got {type(data).__name__}")
    for key in data:
        if key not in SECTIONS:
            raise ConfigError(f"{origin}: unknown section [{key}]; valid sections: "
                              + ", ".join(f"[{s}]" if s != "consumers" else "[[consumers]]" for s in SECTIONS))
    cfg = Config(origin=origin)
    if "tracker" in data:
        cfg.tracker = _dataclass_section(TrackerConfig, data["tracker"], f"{origin} [tracker]")
        t = cfg.tracker
        if not 1 <= t.max_hands <= 16:
            raise ConfigError(f"{origin} [tracker]: max_hands must be 1..16, got {t.max_hands}")
        for k in ("min_detection_confidence", "min_presence_confidence", "min_landmark_confidence",
                  "min_confidence_beside_hand"):
            if getattr(t, k) is not None and not 0.0 <= getattr(t, k) <= 1.0:
                raise ConfigError(f"{origin} [tracker]: {k} must be in [0, 1], got {getattr(t, k)}")
        from .sources import MAX_FPS, MIN_FPS  # the frame rates a source may report, too

        if not (math.isfinite(t.fps) and MIN_FPS <= t.fps <= MAX_FPS):  # 5e-324 or 1e308: infinite times
            raise ConfigError(f"{origin} [tracker]: fps must be a number in [{MIN_FPS:g}, {MAX_FPS:g}], "
                              f"got {t.fps}")
        if t.detector_interval < 0:
            raise ConfigError(f"{origin} [tracker]: detector_interval must be >= 0")
        if t.new_hand_interval < 1:
            raise ConfigError(f"{origin} [tracker]: new_hand_interval must be >= 1 (1: every frame), got {t.new_hand_interval}")
        if t.detector_rotations not in DETECTOR_ROTATIONS:
            raise ConfigError(f"{origin} [tracker]: detector_rotations must be one of "
                              f"{sorted(DETECTOR_ROTATIONS)}, got {t.detector_rotations!r}")
    if "backend" in data:
        cfg.backend = _plugin_section(data["backend"], f"{origin} [backend]", "onnxruntime")
    if "filter" in data:
        cfg.filter = _plugin_section(data["filter"], f"{origin} [filter]", "one_euro")
    if "consumers" in data:
        cons = data["consumers"]
        if not isinstance(cons, list):
            raise ConfigError(f"{origin}: consumers must be an array of tables ([[consumers]])")
        cfg.consumers = [_plugin_section(c, f"{origin} [[consumers]] #{i + 1}") for i, c in enumerate(cons)]
    if "models" in data:
        cfg.models = _dataclass_section(ModelsConfig, data["models"], f"{origin} [models]")
        if cfg.models.variant not in VARIANTS:
            raise ConfigError(f"{origin} [models]: variant {cfg.models.variant!r} unknown; "
                              f"valid: {', '.join(VARIANTS)}")
    if "source" in data:
        cfg.source = _plugin_section(data["source"], f"{origin} [source]")
    return cfg


def load_config(source: str | Path | Mapping[str, Any] | Config | None) -> Config:
    """A :class:`Config` from a TOML path, a dict, an existing Config, or None (defaults)."""
    if source is None:
        return Config()
    if isinstance(source, Config):
        return source
    if isinstance(source, Mapping):
        return parse_config(source)
    if not isinstance(source, str | Path):
        raise ConfigError(f"a config is a TOML file path, a dict or a Config, not a {type(source).__name__}")
    path = Path(source)
    if path.is_dir():
        raise ConfigError(f"config {str(path)!r} is a folder, not a TOML file")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {exc.strerror or exc}") from exc
    data = _parse_toml(raw, path)
    cfg = parse_config(data, str(path))
    base = path.resolve().parent
    for key in ("manifest", "landmark", "detector"):
        value = getattr(cfg.models, key)
        if value and not Path(value).is_absolute():
            setattr(cfg.models, key, str(base / value))
    return cfg


def _parse_toml(raw: bytes, path: Path) -> dict[str, Any]:
    """TOML is UTF-8; a UTF-8 byte-order mark (Windows Notepad adds one) is accepted, a UTF-16
    file or other bytes are one :class:`ConfigError` that says so."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{path}: the file is UTF-16 (it starts with a UTF-16 byte-order mark); "
                          "TOML is UTF-8: save it as UTF-8")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x}); "
                          "TOML is UTF-8: save it as UTF-8") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def build_component(factory: Callable[..., Any], options: Mapping[str, Any], where: str) -> Any:
    """Call a plugin factory with config options; a wrong option becomes a ConfigError that
    lists the options the plugin accepts."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        sig = None
    if sig is not None and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        accepted = [n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        for key in options:
            if key not in accepted:
                raise ConfigError(f"{where}: unknown option {key!r}; accepted: "
                                  f"{', '.join(accepted) or '(none)'}")
    try:
        return factory(**options)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # every failure names the file, section and plugin (SystemExit too)
        plugin = where.rsplit(" ", 1)[-1].strip("'")
        msg = str(exc).removeprefix(f"{plugin}: ")  # ``where`` names the plugin already
        if isinstance(exc, HandSDKError) and not isinstance(exc, ConfigError):
            raise type(exc)(f"{where}: {msg}") from exc  # a missing extra, a model, a source: same type
        if not isinstance(exc, (TypeError, ValueError)):
            raise HandSDKError(f"{where}: the plugin failed to start: {type(exc).__name__}: {msg}") from exc
        if not isinstance(exc, ConfigError):  # raised deeper, maybe naming no option: show what is expected
            defaults = ", ".join(f"{n}={p.default!r}" for n, p in (sig.parameters.items() if sig else ())
                                 if p.default is not p.empty and n != "spec")
            msg += f" (options and their defaults: {defaults})" if defaults else ""
        raise ConfigError(f"{where}: {msg}") from exc
