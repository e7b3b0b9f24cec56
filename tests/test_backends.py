"""The three backends give the same hands; backends and model variants switch by config alone."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from handsdk import ConfigError, ModelError, Tracker
from handsdk.data import iter_photos
from handsdk.models import model_spec
from handsdk.synthetic import synthetic_clip

BACKENDS = ["onnxruntime", "torch", "tflite"]


def _available(name: str) -> bool:
    spec = model_spec("landmark")
    fmt = {"onnxruntime": "onnx", "torch": "torch", "tflite": "tflite"}[name]
    if fmt not in spec.available_formats():
        return False
    try:
        Tracker({"backend": {"name": name}})
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def trackers():
    out = {}
    for name in BACKENDS:
        if not _available(name):
            pytest.skip(f"backend {name} or its model file is not installed")
        out[name] = Tracker({"backend": {"name": name}})
    return out


def _real_photos(n: int = 12) -> list[np.ndarray]:
    photos = [p for p in iter_photos(("asl_letters", "gesture_counts")) if p.split == "valid"]
    images = [cv2.imread(str(p.path)) for p in photos[:: max(1, len(photos) // n)][:n]]
    return [im for im in images if im is not None]


def _compare(trackers, images):
    ref = [trackers["onnxruntime"].detect(im) for im in images]
    for name in ("torch", "tflite"):
        for im, hands_ref in zip(images, ref, strict=True):
            hands = trackers[name].detect(im)
            assert len(hands) == len(hands_ref), f"{name} found {len(hands)} hands, onnxruntime {len(hands_ref)}"
            for a, b in zip(hands, hands_ref, strict=True):
                diff = np.abs(a.landmarks[:, :2] - b.landmarks[:, :2]).mean()
                assert diff <= 0.5, f"{name}: mean landmark difference {diff:.3f} px"
                assert a.handedness.label == b.handedness.label
                assert abs(a.score - b.score) < 0.02


def test_backends_agree_on_synthetic_frames(trackers):
    _compare(trackers, [f.image for f in synthetic_clip(4, seed=8)])


def test_backends_agree_on_real_photos(trackers, data_root):
    images = _real_photos()
    assert len(images) >= 8
    _compare(trackers, images)


def test_backend_reports_its_device(trackers):
    assert trackers["onnxruntime"].backend.device == "CPUExecutionProvider"
    assert trackers["torch"].backend.device == "cpu"


def test_int8_variant_by_config():
    frame = next(iter(synthetic_clip(1, seed=9))).image
    fp32 = Tracker().detect(frame)
    int8 = Tracker({"models": {"variant": "int8"}}).detect(frame)
    assert len(int8) == len(fp32) == 1
    size = np.ptp(fp32[0].landmarks[:, :2], axis=0).max()
    assert np.abs(int8[0].landmarks[:, :2] - fp32[0].landmarks[:, :2]).mean() < 0.05 * size


def test_unknown_backend_and_device_are_config_errors():
    with pytest.raises(ConfigError, match="onnxruntime"):
        Tracker({"backend": {"name": "tensorrt"}})
    with pytest.raises(ConfigError, match="valid: auto, cpu"):
        Tracker({"backend": {"name": "onnxruntime", "device": "tpu"}})


def test_missing_optional_dependency_names_the_extra():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from handsdk import Tracker, MissingDependencyError\n"
            "try:\n    Tracker({'backend': {'name': 'torch'}})\n"
            "except MissingDependencyError as e:\n    print('MDE', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "MDE" in out.stdout and "pip install 'handsdk[torch]'" in out.stdout, out.stdout + out.stderr


def test_core_import_does_not_pull_torch_or_tensorflow():
    code = ("import sys, handsdk\nfrom handsdk import Tracker\nTracker()\n"
            "print(sorted(m for m in ('torch', 'tensorflow', 'ai_edge_litert') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("damage", ["missing", "truncated", "corrupt"])
def test_bad_model_files_name_the_path(tmp_path, damage):
    import json
    import shutil

    spec = model_spec("landmark")
    for f in ("manifest.json", "landmark.onnx", "detector.onnx"):
        shutil.copy(spec.root / f, tmp_path / f)
    target = tmp_path / "landmark.onnx"
    if damage == "missing":
        target.unlink()
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[:1000])
    else:
        data = bytearray(target.read_bytes())
        data[5000:5100] = bytes(100)
        target.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="landmark.onnx"):
        Tracker({"models": {"manifest": str(tmp_path / "manifest.json")}})
    # a user's own file (no manifest hash) that is not a model at all
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="bogus.onnx"):
        Tracker({"models": {"landmark": str(bogus)}})
    json.loads((tmp_path / "manifest.json").read_text())


@pytest.mark.parametrize(("cores", "all_cores", "all_but_one"), [(1, 1, 1), (2, 2, 1), (4, 4, 3), (16, 4, 4)])
def test_default_threads(monkeypatch, cores, all_cores, all_but_one):
    import os

    from handsdk.backend import default_threads

    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert default_threads() == all_cores and default_threads(leave_free=1) == all_but_one


def test_the_example_third_party_backend_registers_as_a_module(register_plugin):
    """examples/backend_plugin.py: the module itself is the plugin (what its entry point would
    load), and its OpenCV-DNN runner gives ONNX Runtime's hands."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "backend_plugin.py"
    spec = importlib.util.spec_from_file_location("backend_plugin", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    register_plugin(module, "test-backend-plugin-example")
    frame = next(iter(synthetic_clip(1, seed=3))).image
    with Tracker({"backend": {"name": "opencv_dnn"}}) as ours, Tracker() as ref:
        a, b = ours.detect(frame), ref.detect(frame)
    assert len(a) == len(b) == 1
    assert np.abs(a[0].landmarks[:, :2] - b[0].landmarks[:, :2]).mean() < 0.5


@pytest.mark.skipif(not _available("torch"), reason="torch not installed")
def test_int8_variant_on_an_fp32_only_backend_is_said_not_silently_ignored(caplog, monkeypatch):
    import logging

    from handsdk import backend

    monkeypatch.setattr(backend, "_told_fp32_only", set())
    with caplog.at_level(logging.WARNING, logger="handsdk.backend"):
        with Tracker({"backend": {"name": "torch"}, "models": {"variant": "int8"}}):
            pass
        with Tracker({"backend": {"name": "torch"}}):
            pass
    said = [r.getMessage() for r in caplog.records if "fp32 models only" in r.getMessage()]
    assert said == ["the torch backend has fp32 models only: [models] variant = 'int8' is not applied "
                    "(INT8 runs on onnxruntime)"]  # once, and not for the fp32 tracker
