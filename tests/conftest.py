"""Shared fixtures: the data folder, the plugin manager's load state, throwaway plugins, a
fake backend that lets a real :class:`~handsdk.Tracker` run without model files, and a
helper that runs Python in a fresh interpreter (plugin loading happens once per process)."""

from __future__ import annotations

import json as _json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import handsdk.data
from handsdk import hookimpl
from handsdk import plugins as plugins_mod
from handsdk.models import bundled_models_dir

REPO = Path(__file__).resolve().parents[1]
PLUGIN_ENV_VARS = ("HANDSDK_LOAD_PLUGINS", "HANDSDK_BLOCK_PLUGINS")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The shared real-photo datasets, or a skip."""
    root = handsdk.data.data_root()
    if root is None:
        pytest.skip("../shared/data not found (set HANDSDK_DATA)")
    return root


@pytest.fixture(scope="session")
def asl_clip(data_root: Path) -> Path:
    """The shared real clip of one hand fingerspelling (325 frames, 25 fps), or a skip."""
    clip = data_root / "asl_video" / "asl_hand.25fps.mp4"
    if not clip.is_file():
        pytest.skip(f"{clip} not found (the shared ASL clip)")
    return clip


@pytest.fixture(scope="session")
def bundled_models() -> Path:
    """The bundled models folder with its manifest, or a skip."""
    folder = bundled_models_dir()
    if not (folder / "manifest.json").is_file():
        pytest.skip(f"no model manifest in {folder} (train/export the models or set HANDSDK_MODELS)")
    return folder


# -- plugin manager state ----------------------------------------------------------------------
@pytest.fixture
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Unregister every plugin and reset the entry-point load state, so the test can set
    ``HANDSDK_*_PLUGINS`` with ``monkeypatch.setenv`` and load again; everything is put back
    afterwards. Yields the ``handsdk.plugins`` module."""
    pm = plugins_mod.pm
    before = list(pm.list_name_plugin())
    for name, plugin in before:
        pm.unregister(plugin, name=name)
    monkeypatch.setattr(plugins_mod, "_loaded", False)
    monkeypatch.setattr(plugins_mod, "load_failures", [])
    monkeypatch.setattr(plugins_mod, "_distributions", {})
    monkeypatch.setattr(plugins_mod, "_told_clashes", set())  # each test sees its own warnings
    try:
        yield plugins_mod
    finally:
        for name, plugin in list(pm.list_name_plugin()):
            pm.unregister(plugin, name=name)
        for name, plugin in before:
            pm.register(plugin, name=name)


@pytest.fixture
def register_plugin() -> Iterator[Callable[[Any, str], Any]]:
    """``register_plugin(obj, name)`` registers a throwaway plugin, unregistered at teardown."""
    pm = plugins_mod.pm
    plugins_mod.load_plugins()  # entry points first, as in normal use
    added: list[tuple[Any, str]] = []

    def register(obj: Any, name: str) -> Any:
        pm.register(obj, name=name)
        added.append((obj, name))
        return obj

    yield register
    for obj, name in reversed(added):
        if pm.is_registered(obj):
            pm.unregister(obj, name=name)


# -- a fresh interpreter -----------------------------------------------------------------------
@pytest.fixture
def run_python() -> Callable[..., Any]:
    """``run_python(code, env={...}, pythonpath=[...])`` runs ``code`` in a new interpreter
    (cwd: the repo root), with the plugin env vars cleared unless given; fails the test with
    the interpreter's output if it exits non-zero, unless ``check=False``. With ``json=True``
    it returns the last line the script printed, parsed as JSON."""

    def run(code: str, env: dict[str, str] | None = None, pythonpath: list[Path] | None = None,
            check: bool = True, timeout: float = 120, json: bool = False) -> Any:
        full_env = {k: v for k, v in os.environ.items() if k not in PLUGIN_ENV_VARS}
        if pythonpath:
            extra = os.pathsep.join(str(p) for p in pythonpath)
            old = full_env.get("PYTHONPATH")
            full_env["PYTHONPATH"] = extra + (os.pathsep + old if old else "")
        full_env.update(env or {})
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=full_env,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            pytest.fail(f"subprocess exited {proc.returncode}\n--- stdout\n{proc.stdout}"
                        f"\n--- stderr\n{proc.stderr}")
        if not json:
            return proc
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        assert lines, f"the script printed nothing; stderr:\n{proc.stderr}"
        return _json.loads(lines[-1])

    return run


# -- a fake backend ----------------------------------------------------------------------------
#: A right hand in crop-normalised coordinates [a, b, z] (wrist at the bottom, fingers up):
#: wrist→middle MCP is 0.40 of the crop, the open thumb-index gap 0.32 (ratio 0.8).
_OPEN_HAND = np.array([
    [0.50, 0.85, 0.0],                                                        # wrist
    [0.38, 0.78, 0.0], [0.30, 0.68, 0.0], [0.26, 0.56, 0.0], [0.24, 0.46, 0.0],  # thumb
    [0.42, 0.48, 0.0], [0.42, 0.34, 0.0], [0.42, 0.24, 0.0], [0.42, 0.14, 0.0],  # index
    [0.50, 0.45, 0.0], [0.50, 0.30, 0.0], [0.50, 0.20, 0.0], [0.50, 0.10, 0.0],  # middle
    [0.58, 0.47, 0.0], [0.58, 0.33, 0.0], [0.58, 0.24, 0.0], [0.58, 0.15, 0.0],  # ring
    [0.65, 0.50, 0.0], [0.66, 0.40, 0.0], [0.66, 0.32, 0.0], [0.66, 0.25, 0.0],  # pinky
], dtype=np.float32)  # fmt: skip


def fake_hand(pinch: bool) -> np.ndarray:
    """The canned hand, with thumb and index tips together (ratio 0.05) when ``pinch``."""
    lm = _OPEN_HAND.copy()
    if pinch:
        lm[4, :2] = (0.37, 0.33)
        lm[8, :2] = (0.39, 0.33)
    return lm


class FakeBackend:
    """A backend whose detector always finds one upright hand in the middle of a 64x64 frame
    and whose landmark model returns :func:`fake_hand` (pinched while ``state["pinch"]``).

    With ``state["white_hand_min_px"] = N`` the detector instead finds the white patch of its
    input, as a hand, only when the patch is at least N pixels across there: a detector that
    misses hands too small at its input's scale. ``state["confidence"]`` sets the landmark
    model's per-landmark confidence (default 1); ``state["nan"]`` makes its landmarks NaN."""

    name = "fake"
    device = "cpu"

    def __init__(self, state: dict[str, Any]):
        self.state = state

    def load(self, spec: Any, variant: str = "fp32") -> Callable[[np.ndarray], list[np.ndarray]]:
        size = spec.input_size
        if spec.name == "detector":
            def detector(batch: np.ndarray) -> list[np.ndarray]:
                g = size // 8
                heat = np.zeros((1, 1, g, g), np.float32)
                geom = np.zeros((1, 7, g, g), np.float32)
                min_px = self.state.get("white_hand_min_px")
                if min_px is not None:
                    ys, xs = np.nonzero(batch[0].min(-1) > 0.9)
                    if len(xs) and min(np.ptp(xs), np.ptp(ys)) + 1 >= min_px:
                        cx, cy = (xs.min() + xs.max() + 1) / 2 / 8, (ys.min() + ys.max() + 1) / 2 / 8
                        x, y = int(cx), int(cy)
                        heat[0, 0, y, x] = 0.9
                        geom[0, :2, y, x] = (cx - x - 0.5, cy - y - 0.5)
                        geom[0, 2, y, x] = np.log((np.ptp(xs) + 1) / size)
                        geom[0, 3:5, y, x] = (0.0, 0.4)
                        geom[0, 5:7, y, x] = (0.0, -0.1)
                    return [heat, geom]
                y = x = g // 2
                heat[0, 0, y, x] = 0.9
                geom[0, 2, y, x] = np.log(0.5)        # side: half the input
                geom[0, 3:5, y, x] = (0.0, 0.4)      # wrist below the centre
                geom[0, 5:7, y, x] = (0.0, -0.1)     # middle MCP above it
                return [heat, geom]
            return detector

        def landmark(batch: np.ndarray) -> list[np.ndarray]:
            n = batch.shape[0]
            lm = np.repeat(fake_hand(bool(self.state.get("pinch")))[None], n, axis=0)
            if self.state.get("nan"):
                lm[:] = np.nan
            conf = np.full((n, 21), self.state.get("confidence", 1.0), np.float32)
            presence = np.full((n, 1), self.state.get("presence", 0.99), np.float32)
            right = np.full((n, 1), 0.9, np.float32)
            return [lm, conf, presence, right]
        return landmark


class FakeBackendSetup:
    """What the ``fake_backend`` fixture gives: ``config(**sections)`` and ``frame()``."""

    def __init__(self, manifest: Path, state: dict[str, Any]):
        self.manifest, self.state = manifest, state

    def config(self, **sections: Any) -> dict[str, Any]:
        cfg: dict[str, Any] = {"backend": {"name": "fake"}, "filter": {"name": "none"},
                               "models": {"manifest": str(self.manifest)},
                               "tracker": {"max_hands": 1}}
        cfg.update(sections)
        return cfg

    @staticmethod
    def frame() -> np.ndarray:
        return np.zeros((64, 64, 3), np.uint8)


@pytest.fixture
def fake_backend(tmp_path: Path, register_plugin: Callable[[Any, str], Any]) -> FakeBackendSetup:
    """Registers the ``fake`` backend and writes a manifest for it (no model files needed)."""
    state: dict[str, Any] = {"pinch": False}

    class Plugin:
        @hookimpl
        def handsdk_register_backends(self, register):
            register("fake", lambda device="cpu", threads=0: FakeBackend(state))

    register_plugin(Plugin(), "test-fake-backend")
    outputs = {"detector": ["heatmap", "geometry"],
               "landmark": ["landmarks", "confidence", "presence", "handedness"]}
    manifest = tmp_path / "fake_models" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text(_json.dumps({"models": {
        "detector": {"input_size": 64, "outputs": outputs["detector"], "files": {}},
        "landmark": {"input_size": 32, "outputs": outputs["landmark"], "files": {}, "crop_scale": 1.5},
    }}))
    return FakeBackendSetup(manifest, state)


def to_pixels(lm: np.ndarray, size: float = 200.0, centre=(320.0, 240.0), angle_deg: float = 0.0,
              mirror: bool = False) -> np.ndarray:
    """Image-pixel landmarks (y down, z in the same pixel scale): the hand ``size`` px long,
    its palm centre at ``centre``, turned ``angle_deg`` in the image plane, mirrored in x."""
    p = np.asarray(lm, np.float64) * size
    p[:, :2] -= p[[0, 5, 9, 13, 17], :2].mean(axis=0)
    a = np.radians(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    p[:, :2] = p[:, :2] @ rot.T
    if mirror:
        p[:, 0] *= -1
    p[:, :2] += centre
    return p.astype(np.float32)
