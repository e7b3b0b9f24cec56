"""The plugin system: entry points, env vars, broken plugins, throwaway plugins, hook isolation,
and the example third-party package in ``examples/custom_plugin`` (``handsdk-pinch``).

Plugin loading happens once per process, so whatever depends on the environment or on what is
installed runs in a fresh interpreter (the ``run_python`` fixture).
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import handsdk
from handsdk import Tracker, hookimpl, plugins
from handsdk.config import build_component
from handsdk.errors import ConfigError, PluginNotFoundError
from handsdk.types import FrameResult, Hand, Handedness, Label, RotatedRect

REPO = Path(__file__).resolve().parents[1]
PINCH_DIR = REPO / "examples" / "custom_plugin"

try:
    from handsdk_pinch import PinchDetector, pinch_ratio
except ImportError:  # not installed (yet): use the example's source folder
    sys.path.insert(0, str(PINCH_DIR))
    from handsdk_pinch import PinchDetector, pinch_ratio

FIRST_PARTY = {
    "backend": {"onnxruntime": "onnxruntime", "torch": "torch", "tflite": "tflite"},
    "filter": {"one_euro": "filters", "kalman": "filters", "none": "filters"},
    "consumer": {"overlay": "overlay", "jsonl": "writers", "video": "writers"},
    "source": {"camera": "sources", "video": "sources", "image": "sources", "folder": "sources",
               "synthetic": "sources"},
}

#: A fresh interpreter reports what it loaded as JSON.
REPORT = """
import json
from handsdk import plugins
from handsdk.errors import PluginNotFoundError

out = {k: {n: [c.distribution, c.plugin] for n, c in plugins.components(k).items()}
       for k in plugins.KINDS}
try:
    plugins.get_component("filter", "one_euro")
    out["one_euro_error"] = None
except PluginNotFoundError as exc:
    out["one_euro_error"] = str(exc)
out["plugins"] = sorted(n for n, _ in plugins.pm.list_name_plugin())
out["failures"] = [vars(f) for f in plugins.load_failures]
print(json.dumps(out))
"""


def _plugin_env_set() -> bool:
    return any(v in os.environ for v in ("HANDSDK_LOAD_PLUGINS", "HANDSDK_BLOCK_PLUGINS"))


# -- first-party entry points ------------------------------------------------------------------
@pytest.mark.skipif(_plugin_env_set(), reason="HANDSDK_*_PLUGINS is set in this environment")
@pytest.mark.parametrize("kind", sorted(FIRST_PARTY))
def test_first_party_components_come_from_entry_points(kind):
    found = plugins.components(kind)
    for name, plugin in FIRST_PARTY[kind].items():
        assert name in found, f"{kind} {name!r} missing; found {sorted(found)}"
        comp = found[name]
        assert (comp.kind, comp.name, comp.plugin) == (kind, name, plugin)
        assert comp.distribution == "handsdk"
        assert comp.version == handsdk.__version__
        assert callable(comp.factory)
    assert not [f for f in plugins.load_failures if f.distribution == "handsdk"]


def test_first_party_in_a_fresh_interpreter(run_python):
    out = run_python(REPORT, json=True)
    for kind, names in FIRST_PARTY.items():
        for name, plugin in names.items():
            assert out[kind][name] == ["handsdk", plugin], (kind, name, out[kind])
    assert out["one_euro_error"] is None
    assert {"onnxruntime", "torch", "tflite", "filters", "overlay", "writers", "sources"} <= set(out["plugins"])
    assert [f for f in out["failures"] if f["distribution"] == "handsdk"] == []


def test_unknown_kind_and_name_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid kinds: backend, filter, consumer, source"):
        plugins.components("gizmo")
    with pytest.raises(PluginNotFoundError) as info:
        plugins.get_component("filter", "one_eur")
    msg = str(info.value)
    assert "'one_eur'" in msg
    for name in ("kalman", "none", "one_euro"):
        assert name in msg


# -- environment variables ---------------------------------------------------------------------
def test_block_plugins_removes_filters(run_python):
    out = run_python(REPORT, env={"HANDSDK_BLOCK_PLUGINS": "filters"}, json=True)
    assert out["filter"] == {}
    assert "filters" not in out["plugins"]
    assert out["one_euro_error"] is not None
    assert "unknown filter 'one_euro'" in out["one_euro_error"]
    assert "(none registered)" in out["one_euro_error"]
    # the rest still loads
    assert set(FIRST_PARTY["backend"]) <= set(out["backend"])
    assert set(FIRST_PARTY["consumer"]) <= set(out["consumer"])


def test_block_plugins_error_lists_the_remaining_names(run_python):
    code = """
import json
from handsdk import plugins
from handsdk.errors import PluginNotFoundError
try:
    plugins.get_component("consumer", "jsonl")
except PluginNotFoundError as exc:
    print(json.dumps(str(exc)))
"""
    msg = run_python(code, env={"HANDSDK_BLOCK_PLUGINS": "writers"}, json=True)
    assert "unknown consumer 'jsonl'" in msg
    assert "overlay" in msg
    assert "video" not in msg.split("registered consumers:")[1]
    assert msg.endswith("(HANDSDK_BLOCK_PLUGINS='writers' limits which plugins load)")


def test_a_plugin_name_no_plugin_has_is_reported(run_python):
    """A typo in the env vars is said, not silently turned into "nothing registered"."""
    proc = run_python(REPORT, env={"HANDSDK_LOAD_PLUGINS": "onnxruntime,filtres"})
    assert "HANDSDK_LOAD_PLUGINS names filtres, which no installed plugin has (a typo?)" in proc.stderr


def test_load_plugins_loads_only_those(run_python):
    out = run_python(REPORT, env={"HANDSDK_LOAD_PLUGINS": "onnxruntime,filters"}, json=True)
    assert out["plugins"] == ["filters", "onnxruntime"]
    assert set(out["backend"]) == {"onnxruntime"}
    assert set(out["filter"]) == {"one_euro", "kalman", "none"}
    assert out["consumer"] == {} and out["source"] == {}
    assert out["one_euro_error"] is None


def test_block_wins_over_load(run_python):
    out = run_python(REPORT, env={"HANDSDK_LOAD_PLUGINS": "onnxruntime,filters",
                                  "HANDSDK_BLOCK_PLUGINS": "filters"}, json=True)
    assert out["plugins"] == ["onnxruntime"]
    assert out["filter"] == {}


def test_env_vars_in_process_with_fresh_state(fresh_plugins, monkeypatch):
    """The same, in this process, through the ``fresh_plugins`` fixture (spaces are ignored)."""
    monkeypatch.setenv("HANDSDK_LOAD_PLUGINS", " onnxruntime , filters ,")
    assert set(fresh_plugins.components("backend")) == {"onnxruntime"}
    assert set(fresh_plugins.components("filter")) == {"one_euro", "kalman", "none"}
    assert fresh_plugins.components("source") == {}
    assert fresh_plugins.components("filter")["kalman"].distribution == "handsdk"


def test_fresh_plugins_puts_everything_back():
    assert set(FIRST_PARTY["source"]) <= set(plugins.components("source"))
    assert plugins._loaded


# -- broken plugins ----------------------------------------------------------------------------
def _fake_distribution(root: Path, name: str, entry_points: dict[str, str]) -> Path:
    info = root / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    eps = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[handsdk]\n{eps}")
    return info


#: Every way a plugin can fail while loading or registering, each its own entry point of one
#: throwaway distribution: the exceptions a module can raise at import (an argparse at import
#: time exits), and the same from a registration hook.
BROKEN_MODULES = {
    "missing": None,  # no such module
    "raising": "raise RuntimeError('boom at import')\n",
    "exiting": "import argparse\nargparse.ArgumentParser(prog='tool').parse_args(['--nope'])\n",
    "exit0": "import sys\nsys.exit(0)\n",
    "baseexc": "class Odd(BaseException):\n    pass\nraise Odd('not an Exception')\n",
    "syntax": "def broken(:\n",
    "badhook": "from handsdk import hookimpl\n\n@hookimpl\ndef handsdk_register_consumers(register):\n"
               "    raise RuntimeError('boom in register')\n",
    "exithook": "import sys\nfrom handsdk import hookimpl\n\n@hookimpl\ndef handsdk_register_filters(register):\n"
                "    register('exithook_filter', object)\n    sys.exit(3)\n",
    "arityhook": "from handsdk import hookimpl\n\n@hookimpl\ndef handsdk_register_sources(register):\n"
                 "    register('only_a_name')\n",
}


def test_broken_plugins_are_disabled_with_one_warning_each(tmp_path, run_python):
    """Any exception while a plugin imports or registers (``SystemExit`` from an argparse at
    import time, a ``BaseException`` subclass, a syntax error, a hook that exits or calls
    ``register`` wrongly) disables that plugin, with one warning naming its distribution; the SDK,
    ``handsdk plugins`` and ``Tracker()`` carry on."""
    _fake_distribution(tmp_path, "broken", {n: f"handsdk_broken_{n}" for n in BROKEN_MODULES})
    for name, code in BROKEN_MODULES.items():
        if code is not None:
            (tmp_path / f"handsdk_broken_{name}.py").write_text(code)
    code = REPORT + "from handsdk import Tracker\nTracker().close()\nprint('tracker ok')\n"
    proc = run_python(code, pythonpath=[tmp_path], check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "tracker ok"
    out = json.loads(proc.stdout.splitlines()[-2])
    failures = {f["name"]: f for f in out["failures"]}
    assert set(failures) == set(BROKEN_MODULES)
    assert {f["distribution"] for f in failures.values()} == {"broken"}
    assert failures["missing"]["error"].startswith("ModuleNotFoundError")
    assert failures["raising"]["error"] == "RuntimeError: boom at import"
    assert failures["exiting"]["error"].startswith("SystemExit: 2 (tool: error: unrecognized arguments: --nope")
    assert failures["exit0"]["error"] == "SystemExit: 0"
    assert failures["baseexc"]["error"] == "Odd: not an Exception"
    assert failures["badhook"]["error"] == "RuntimeError: boom in register"
    assert failures["exithook"]["error"] == "SystemExit: 3"
    assert failures["arityhook"]["error"].startswith("TypeError")
    # disabled whole: not listed, and what a failing hook registered before it failed is gone
    assert not set(BROKEN_MODULES) & set(out["plugins"])
    assert "exithook_filter" not in out["filter"]
    for kind, names in FIRST_PARTY.items():
        assert set(names) <= set(out[kind]), kind
    for name in BROKEN_MODULES:  # one warning each, naming the distribution
        assert proc.stderr.count(f"handsdk plugin {name!r} from broken 0.1") == 1, (name, proc.stderr)
    assert "usage: tool" not in proc.stderr  # argparse's usage block is not printed on its own


def test_a_plugin_that_exits_does_not_end_handsdk_plugins(tmp_path):
    """The command line too: ``handsdk plugins`` lists the broken plugin and exits 0."""
    _fake_distribution(tmp_path, "argparse-at-import", {"cli_tool": "handsdk_cli_tool"})
    (tmp_path / "handsdk_cli_tool.py").write_text(
        "import argparse\nargparse.ArgumentParser().parse_args(['--unknown'])\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "handsdk", "plugins"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "cli_tool" in proc.stdout + proc.stderr
    assert proc.stderr.count("handsdk plugin 'cli_tool' from argparse-at-import 0.1") == 1


# -- a throwaway plugin registered in code -------------------------------------------------------
class Recorder:
    """A sink consumer that keeps what it saw."""

    kind = "sink"

    def __init__(self, tag: str = "rec"):
        self.tag = tag
        self.seen: list[FrameResult] = []
        self.labels: list[dict[str, str]] = []

    def __call__(self, result, frame):
        self.seen.append(result)
        self.labels.append({k: v.name for h in result.hands for k, v in h.labels.items()})


class RecorderPlugin:
    def __init__(self):
        self.results: list[FrameResult] = []

    @hookimpl
    def handsdk_register_consumers(self, register):
        register("recorder", Recorder)

    @hookimpl
    def handsdk_on_result(self, result):
        self.results.append(result)


def _result(i: int = 0, hands: list[Hand] | None = None) -> FrameResult:
    return FrameResult(i, i * 33.3, hands or [], (640, 480))


def test_throwaway_plugin_is_listed_and_used(register_plugin):
    plugin = register_plugin(RecorderPlugin(), "test-recorder")
    comp = plugins.components("consumer")["recorder"]
    assert comp.plugin == "test-recorder"
    assert comp.distribution == "(registered in code)"
    assert comp.factory is Recorder
    rec = build_component(comp.factory, {"tag": "x"}, "test")
    assert isinstance(rec, Recorder) and rec.tag == "x"
    with pytest.raises(ConfigError, match="unknown option 'nope'; accepted: tag"):
        build_component(comp.factory, {"nope": 1}, "test")
    r = _result(7)
    plugins.call_hook_safely("handsdk_on_result", result=r)
    assert len(plugin.results) == 1 and plugin.results[0] is r


def test_throwaway_plugin_is_gone_after_unregister():
    assert "recorder" not in plugins.components("consumer")
    assert plugins.pm.get_plugin("test-recorder") is None


def test_later_registration_does_not_override(register_plugin, caplog):
    """``components`` says later registrations do not override: a plugin registered after the
    first-party ones cannot take over ``overlay``."""

    class Impostor:
        @hookimpl
        def handsdk_register_consumers(self, register):
            register("overlay", Recorder)

    register_plugin(Impostor(), "test-impostor")
    with caplog.at_level(logging.WARNING, logger="handsdk.plugins"):
        comp = plugins.components("consumer")["overlay"]
    assert comp.plugin == "overlay"
    assert "test-impostor" in caplog.text  # the ignored one is named


def test_tracker_uses_throwaway_consumer_and_hook(fake_backend, register_plugin):
    plugin = register_plugin(RecorderPlugin(), "test-recorder")
    with Tracker(fake_backend.config(consumers=[{"name": "recorder", "tag": "t"}])) as tracker:
        results = [tracker.process(fake_backend.frame()) for _ in range(3)]
    rec = tracker.consumers[0].consumer
    assert isinstance(rec, Recorder) and rec.tag == "t"
    assert len(rec.seen) == len(plugin.results) == 3
    assert all(a is b is c for a, b, c in zip(rec.seen, results, plugin.results, strict=True))
    assert [len(r.hands) for r in results] == [1, 1, 1]
    assert {h.track_id for r in results for h in r.hands} == {1}


# -- hook isolation ----------------------------------------------------------------------------
class Exploding:
    def __init__(self):
        self.calls = 0

    @hookimpl
    def handsdk_on_result(self, result):
        self.calls += 1
        raise RuntimeError("plugin bug")


@pytest.mark.parametrize("exploding_first", [True, False])
def test_a_raising_hook_does_not_stop_the_others(register_plugin, caplog, exploding_first):
    bad, good = Exploding(), RecorderPlugin()
    pairs = [(bad, "test-exploding"), (good, "test-good")]
    for obj, name in pairs if exploding_first else pairs[::-1]:
        register_plugin(obj, name)
    r = _result(3)
    with caplog.at_level(logging.ERROR, logger="handsdk.plugins"):
        plugins.call_hook_safely("handsdk_on_result", result=r)
        plugins.call_hook_safely("handsdk_on_result", result=r)
    assert bad.calls == 2
    assert len(good.results) == 2 and all(x is r for x in good.results)
    assert "test-exploding" in caplog.text and "handsdk_on_result" in caplog.text
    assert "plugin bug" in caplog.text  # the traceback is logged


def test_a_raising_hook_does_not_stop_the_tracker(fake_backend, register_plugin):
    bad, good = register_plugin(Exploding(), "test-exploding"), register_plugin(RecorderPlugin(), "test-good")
    with Tracker(fake_backend.config()) as tracker:
        results = [tracker.process(fake_backend.frame()) for _ in range(2)]
    assert bad.calls == 2
    assert [id(r) for r in good.results] == [id(r) for r in results]


def test_a_hook_may_take_fewer_arguments(register_plugin):
    class Counter:
        calls = 0

        @hookimpl
        def handsdk_on_result(self):
            Counter.calls += 1

    register_plugin(Counter(), "test-counter")
    plugins.pm.hook.handsdk_on_result(result=_result())  # pluggy itself accepts it
    assert Counter.calls == 1
    plugins.call_hook_safely("handsdk_on_result", result=_result())
    assert Counter.calls == 2


# -- the example plugin: PinchDetector ---------------------------------------------------------
def make_hand(gap: float, track_id: int = 1, size: float = 100.0, angle: float = 0.0,
              origin: tuple[float, float] = (320.0, 300.0)) -> Hand:
    """A hand whose thumb-index gap is ``gap`` times its wrist-to-middle-MCP size."""
    lm = np.zeros((21, 3), np.float64)
    rng = np.random.default_rng(0)
    lm[:, :2] = rng.uniform(-0.8, 0.8, (21, 2))  # the other landmarks do not matter
    lm[0, :2] = (0.0, 0.0)
    lm[9, :2] = (0.0, -1.0)
    lm[4, :2] = (-0.2 - gap / 2, -1.2)
    lm[8, :2] = (-0.2 + gap / 2, -1.2)
    c, s = math.cos(angle), math.sin(angle)
    lm[:, :2] = lm[:, :2] @ np.array([[c, -s], [s, c]]).T * size + origin
    return Hand(landmarks=lm.astype(np.float32), confidence=np.ones(21, np.float32), score=0.9,
                handedness=Handedness("right", 0.9), box=RotatedRect(origin, (size, size), 0.0),
                track_id=track_id)


def run_gaps(det: PinchDetector, gaps: list[float], track_id: int = 1) -> list[str]:
    labels = []
    for i, gap in enumerate(gaps):
        hand = make_hand(gap, track_id)
        det(FrameResult(i, 1000.0 + 40.0 * i, [hand], (640, 480)), None)
        labels.append(hand.labels["pinch"].name)
    return labels


@pytest.mark.parametrize("size, angle", [(100.0, 0.0), (37.0, 1.1), (250.0, -2.5)])
def test_pinch_ratio_ignores_scale_and_rotation(size, angle):
    assert pinch_ratio(make_hand(0.3, size=size, angle=angle).landmarks) == pytest.approx(0.3, abs=1e-4)


def test_pinch_start_and_end_with_hysteresis(caplog):
    det = PinchDetector()
    gaps = [0.8, 0.5, 0.3, 0.2, 0.1, 0.2, 0.3, 0.34, 0.4, 0.8, 0.2, 0.5]
    with caplog.at_level(logging.INFO, logger="handsdk_pinch"):
        labels = run_gaps(det, gaps)
    assert labels == ["open"] * 3 + ["pinch"] * 5 + ["open"] * 2 + ["pinch", "open"]
    assert det.events == [
        ("pinch_start", 1, 3, 1120.0),
        ("pinch_end", 1, 8, 1320.0),
        ("pinch_start", 1, 10, 1400.0),
        ("pinch_end", 1, 11, 1440.0),
    ]
    assert caplog.text.count("pinch_start") == 2 and caplog.text.count("pinch_end") == 2


def test_jitter_around_the_threshold_does_not_flicker():
    jitter = [0.8, 0.22, 0.28, 0.24, 0.31, 0.26, 0.34, 0.23, 0.29]
    det = PinchDetector()
    assert run_gaps(det, jitter)[1:] == ["pinch"] * 8
    assert [e[0] for e in det.events] == ["pinch_start"]
    # without a band (release == threshold) the same signal flickers: the check can fail
    flat = PinchDetector(threshold=0.25, release=0.25)
    run_gaps(flat, jitter)
    assert len(flat.events) > 4


def test_pinch_scores():
    det = PinchDetector()
    closed, open_ = make_hand(0.05), make_hand(0.8)
    det(_result(0, [closed]), None)
    det(FrameResult(0, 0.0, [open_], (640, 480)), None)  # track 1 again: the pinch ends
    assert closed.labels["pinch"] == Label("pinch", pytest.approx(1.0, abs=0.02))
    assert open_.labels["pinch"] == Label("open", pytest.approx(1.0, abs=0.02))
    for gap in np.linspace(0.0, 1.0, 21):
        h = make_hand(float(gap), track_id=-1)
        det.classify([h], None)
        assert 0.0 <= h.labels["pinch"].score <= 1.0


def test_tracks_are_independent_and_lost_tracks_end_their_pinch():
    det = PinchDetector()
    frames = [
        [make_hand(0.8, 1), make_hand(0.8, 2)],
        [make_hand(0.1, 1), make_hand(0.8, 2)],
        [make_hand(0.1, 1), make_hand(0.1, 2)],
        [make_hand(0.1, 2)],                      # track 1 lost while pinching
        [make_hand(0.8, 2), make_hand(0.1, 3)],   # track 3 is new and pinching at once
    ]
    for i, hands in enumerate(frames):
        det(FrameResult(i, 10.0 * i, hands, (640, 480)), None)
    assert det.events == [
        ("pinch_start", 1, 1, 10.0),
        ("pinch_start", 2, 2, 20.0),
        ("pinch_end", 1, 3, 30.0),
        ("pinch_end", 2, 4, 40.0),
        ("pinch_start", 3, 4, 40.0),
    ]


def test_untracked_and_degenerate_hands():
    det = PinchDetector()
    untracked = [make_hand(0.1, -1), make_hand(0.8, -1)]
    det(_result(0, untracked), None)
    assert [h.labels["pinch"].name for h in untracked] == ["pinch", "open"]
    degenerate = make_hand(0.1, 5)
    degenerate.landmarks[:] = 0.0
    nan_hand = make_hand(0.1, 6)
    nan_hand.landmarks[4] = np.nan
    det(_result(1, [degenerate, nan_hand]), None)
    assert degenerate.labels == {} and nan_hand.labels == {}
    assert det.events == []


def test_pinch_options_are_validated():
    with pytest.raises(ConfigError, match="release .* must be >= threshold"):
        build_component(PinchDetector, {"threshold": 0.3, "release": 0.2}, "[[consumers]] #1 'pinch'")
    with pytest.raises(ConfigError, match="unknown option 'foo'; accepted: threshold, release"):
        build_component(PinchDetector, {"foo": 1}, "[[consumers]] #1 'pinch'")
    with pytest.raises(ConfigError, match="threshold must be a finite number"):
        build_component(PinchDetector, {"threshold": "0.2"}, "[[consumers]] #1 'pinch'")
    assert PinchDetector.kind == "classifier"


def test_pinch_through_a_tracker(fake_backend, register_plugin):
    """A real Tracker (fake models): the classifier runs before a sink listed before it."""

    class PinchUnderTest:
        @hookimpl
        def handsdk_register_consumers(self, register):
            register("pinch_under_test", PinchDetector)

    register_plugin(PinchUnderTest(), "test-pinch")
    register_plugin(RecorderPlugin(), "test-recorder")
    cfg = fake_backend.config(consumers=[{"name": "recorder"},
                                         {"name": "pinch_under_test", "threshold": 0.2}])
    pinched = [False, False, True, True, False, False]
    with Tracker(cfg) as tracker:
        for i, p in enumerate(pinched):
            fake_backend.state["pinch"] = p
            tracker.process(fake_backend.frame(), timestamp_ms=100.0 * i)
    rec, det = (slot.consumer for slot in tracker.consumers)
    assert isinstance(det, PinchDetector) and det.threshold == 0.2
    assert det.events == [("pinch_start", 1, 2, 200.0), ("pinch_end", 1, 4, 400.0)]
    assert rec.labels == [{"pinch": "pinch" if p else "open"} for p in pinched]


# -- the example plugin, installed -------------------------------------------------------------
def _installed_from_here() -> bool:
    try:
        dist = metadata.distribution("handsdk-pinch")
    except metadata.PackageNotFoundError:
        return False
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    return direct.get("url", "").rstrip("/") == PINCH_DIR.as_uri()


@pytest.fixture(scope="session")
def pinch_installed() -> None:
    """``pip install -e examples/custom_plugin`` once (left installed: idempotent)."""
    if _installed_from_here():
        return
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
           "--disable-pip-version-check", "-q", "-e", str(PINCH_DIR)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr)[-2000:]
        offline = ("No matching distribution", "Could not find a version", "connection",
                   "Network", "setuptools")
        if any(s.lower() in out.lower() for s in offline):
            pytest.skip(f"pip could not install the example plugin (offline?): {out}")
        pytest.fail(f"pip install -e examples/custom_plugin failed:\n{out}")


PINCH_SCRIPT = """
import json
from handsdk import plugins
from handsdk.config import build_component
from handsdk.types import FrameResult, Hand, Handedness, RotatedRect
import numpy as np

comp = plugins.components("consumer").get("pinch")
if comp is None:
    print(json.dumps({"found": False, "failures": [vars(f) for f in plugins.load_failures]}))
    raise SystemExit
det = build_component(comp.factory, {"threshold": 0.25, "release": 0.35}, "test")
base = np.zeros((21, 3), np.float32)
base[9] = (0, -100, 0)
for i, gap in enumerate([80, 10, 10, 50]):
    lm = base.copy()
    lm[4] = (-gap / 2, -120, 0)
    lm[8] = (gap / 2, -120, 0)
    hand = Hand(lm, np.ones(21, np.float32), 0.9, Handedness("left", 0.9),
                RotatedRect((0.0, 0.0), (1.0, 1.0), 0.0), track_id=4)
    det(FrameResult(i, 25.0 * i, [hand], (640, 480)), None)
print(json.dumps({"found": True, "distribution": comp.distribution, "version": comp.version,
                  "plugin": comp.plugin, "factory": comp.factory.__module__ + "." + comp.factory.__qualname__,
                  "kind": det.kind, "events": det.events, "label": hand.labels["pinch"].name}))
"""


def test_installed_example_registers_pinch(pinch_installed, run_python):
    out = run_python(PINCH_SCRIPT, json=True)
    assert out["found"], out
    assert out["distribution"] == "handsdk-pinch"
    assert out["version"] == "0.1.0"
    assert out["plugin"] == "pinch"
    assert out["factory"] == "handsdk_pinch.PinchDetector"
    assert out["kind"] == "classifier"
    assert out["events"] == [["pinch_start", 4, 1, 25.0], ["pinch_end", 4, 3, 75.0]]
    assert out["label"] == "open"


def test_installed_example_can_be_blocked(pinch_installed, run_python):
    out = run_python(PINCH_SCRIPT, env={"HANDSDK_BLOCK_PLUGINS": "pinch"}, json=True)
    assert out == {"found": False, "failures": []}


def test_installed_example_in_a_real_tracker(pinch_installed, bundled_models, run_python):
    code = """
import json
import numpy as np
from handsdk import Tracker

with Tracker({"consumers": [{"name": "pinch"}]}) as tracker:
    slot = tracker.consumers[0]
    results = [tracker.process(np.zeros((480, 640, 3), np.uint8), timestamp_ms=0.0)]
    results += list(tracker.run("synthetic", max_frames=5, n_frames=5))
labels = [sorted(h.labels) for r in results for h in r.hands]
print(json.dumps({"kind": slot.kind, "errors": slot.errors, "calls": slot.calls,
                  "module": type(slot.consumer).__module__, "labels": labels,
                  "hands": [len(r.hands) for r in results]}))
"""
    out = run_python(code, json=True, timeout=300)
    assert out["module"] == "handsdk_pinch" and out["kind"] == "classifier"
    assert out["calls"] == 6 and out["errors"] == 0
    assert all(labels == ["pinch"] for labels in out["labels"])


def test_the_core_never_imports_a_plugin():
    """handsdk/ reaches plugins only through the registry: no import of a first-party plugin
    package anywhere in the core (the training tools included)."""
    import ast

    root = Path(__file__).resolve().parents[1]
    plugin_packages = {p.name for p in (root / "plugins").iterdir() if (p / "__init__.py").is_file()}
    found = []
    for path in (root / "handsdk").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.relative_to(root)}: {n}" for n in names if n.split(".")[0] in plugin_packages]
    assert plugin_packages and not found, found


def _imports(path: Path) -> list[str]:
    import ast

    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the file's package
                package = list(path.relative_to(Path(__file__).resolve().parents[1]).parent.parts)
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([base] if base else []))
            names += [base] + [f"{base}.{a.name}" for a in node.names]
    return names


def test_layers_point_one_way():
    """Inference (plugins, the torch backend) never imports training code, and nothing below the
    CLI imports the CLI: shared pieces (``handsdk.nets``, ``handsdk.script``) live below both."""
    root = Path(__file__).resolve().parents[1]
    found = []
    for path in [*(root / "handsdk").rglob("*.py"), *(root / "plugins").rglob("*.py")]:
        rel = path.relative_to(root)
        if rel.parts[:2] == ("handsdk", "cli.py") or rel.name == "__main__.py":
            continue
        for name in _imports(path):
            if name == "handsdk.cli" or name.startswith("handsdk.cli."):
                found.append(f"{rel}: {name}")
            if rel.parts[0] == "plugins" and name.startswith("handsdk.train"):
                found.append(f"{rel}: {name}")
    assert not found, found


def test_label_switch_ignores_blips_and_follows_clean_changes():
    from handsdk.consumers import LabelSwitch

    s = LabelSwitch("A", min_frames=2, switch_margin=0.3)
    assert s.update("B", 0.1) == "A"  # one frame of B: a blip
    assert s.update("A", 0.0) == "A" and s.count == 0
    assert [s.update("B", 0.1), s.update("B", 0.1)] == ["A", "B"]  # two in a row: switch
    assert s.update("C", 0.5) == "C"  # a clear lead switches at once
    assert [s.update("A", 0.1), s.update("B", 0.1), s.update("A", 0.1)] == ["C", "C", "C"]  # no streak


def test_a_hook_raising_every_frame_is_counted_not_logged_every_frame(register_plugin, caplog):
    bad = Exploding()
    register_plugin(bad, "test-exploding-often")
    r = _result(1)
    with caplog.at_level(logging.ERROR, logger="handsdk.plugins"):
        for _ in range(150):
            plugins.call_hook_safely("handsdk_on_result", result=r)
    assert bad.calls == 150
    assert plugins.hook_errors["test-exploding-often", "handsdk_on_result"] == 150
    logged = [rec for rec in caplog.records if "test-exploding-often" in rec.getMessage()]
    assert len(logged) == 4  # errors 1, 2, 3 and 100
    assert "(100 errors so far)" in logged[-1].getMessage()


def test_an_installed_plugin_cannot_take_over_a_built_in_name(tmp_path):
    """A third-party distribution found before handsdk's (first on sys.path) registers a filter
    called ``one_euro``: handsdk's own stays in charge, the other is named in one warning, and the
    third-party's other components still load."""
    (tmp_path / "squatter.py").write_text(
        "from handsdk import hookimpl\n\n"
        "class Mine:\n    def __call__(self, value, timestamp_s):\n        return value\n"
        "    def reset(self):\n        pass\n\n"
        "@hookimpl\ndef handsdk_register_filters(register):\n"
        "    register('one_euro', Mine)\n    register('squatter_own', Mine)\n")
    dist = tmp_path / "squatter-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: squatter\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[handsdk]\nsquatter = squatter\n")
    code = ("import logging; logging.basicConfig()\n"
            "from handsdk import Tracker\nfrom handsdk.plugins import components\n"
            "c = components('filter')\nprint(c['one_euro'].distribution, c['squatter_own'].distribution)\n"
            "Tracker().close(); Tracker().close()\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["handsdk", "squatter"]
    assert out.stderr.count("filter 'one_euro' from squatter ignored: already registered by") == 1


def test_a_misspelled_hook_and_an_event_only_plugin_are_shown(register_plugin, capsys):
    """pluggy leaves a hook with a typo uncalled and silent; handsdk names it, and ``handsdk
    plugins`` lists a plugin that registers no component (it only listens or adds commands)."""
    from handsdk import hookimpl
    from handsdk.cli import main

    class Typo:
        @hookimpl
        def handsdk_register_consumer(self, register):  # singular: not a handsdk hook
            register("never", object)

    class Listener:
        @hookimpl
        def handsdk_on_result(self, result):
            pass

    register_plugin(Typo(), "test-typo")
    register_plugin(Listener(), "test-listener")
    assert ("test-typo", "handsdk_register_consumer") in plugins.unknown_hooks()
    assert "handsdk_register_consumers" in plugins.hook_names()
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "UNKNOWN HOOK  test-typo: handsdk_register_consumer is not a handsdk hook" in out
    row = next(line.split() for line in out.splitlines() if line.endswith("test-listener"))
    assert row[:2] == ["hooks", "handsdk_on_result"]


# -- what a plugin registers, and who keeps a name ---------------------------------------------
def test_garbage_registrations_are_ignored_with_a_warning(register_plugin, caplog, fake_backend):
    """A name that is not a non-empty string without spaces, or a factory that is not callable,
    is ignored (the plugin's good components stay), and a config naming an unknown consumer still
    gets the usual list of valid names, not ``'<' not supported between 'str' and 'int'``."""

    class Garbage:
        @hookimpl
        def handsdk_register_consumers(self, register):
            register(123, Recorder)
            register(None, Recorder)
            register("", Recorder)
            register("two words", Recorder)
            register("not_callable", 42)
            register("garbage_ok", Recorder)

    register_plugin(Garbage(), "test-garbage")
    with caplog.at_level(logging.WARNING, logger="handsdk.plugins"):
        found = plugins.components("consumer")
        with pytest.raises(PluginNotFoundError, match=r"unknown consumer 'nope'; registered consumers: .*garbage_ok"):
            Tracker(fake_backend.config(consumers=[{"name": "nope"}]))
    assert "garbage_ok" in found and all(isinstance(n, str) and n and " " not in n for n in found)
    for shown in ("consumer 123", "consumer None", "consumer ''", "consumer 'two words'", "consumer 'not_callable'"):
        assert caplog.text.count(f"registered {shown} with factory") == 1, shown


class JsonlImpostor:
    @hookimpl
    def handsdk_register_consumers(self, register):
        register("jsonl", Recorder)
        register("impostor_own", Recorder)


@pytest.mark.parametrize("before_first_load", [True, False])
def test_a_plugin_registered_in_code_never_takes_a_built_in_name(fresh_plugins, caplog, before_first_load):
    """One rule whatever the order: registered before handsdk loads its entry points (before the
    first Tracker) or after, a plugin registered in code that registers ``jsonl`` does not take it
    over (one warning names it); its other components load."""
    if not before_first_load:
        fresh_plugins.load_plugins()
    fresh_plugins.pm.register(JsonlImpostor(), name="test-jsonl-impostor")
    with caplog.at_level(logging.WARNING, logger="handsdk.plugins"):
        found = fresh_plugins.components("consumer")
        fresh_plugins.components("consumer")
    assert found["jsonl"].plugin == "writers" and found["jsonl"].distribution == "handsdk"
    assert found["impostor_own"].plugin == "test-jsonl-impostor"
    assert caplog.text.count("consumer 'jsonl' from test-jsonl-impostor ignored: already registered by writers") == 1


def test_an_installed_plugin_keeps_its_name_over_one_registered_in_code(fresh_plugins, tmp_path, monkeypatch):
    """Installed plugins (entry points) come before plugins registered in code, whichever came first."""
    _fake_distribution(tmp_path, "installed-rec", {"installed_rec": "handsdk_installed_rec"})
    (tmp_path / "handsdk_installed_rec.py").write_text(
        "from handsdk import hookimpl\n\nclass Rec:\n    kind = 'sink'\n    def __call__(self, result, frame):\n"
        "        pass\n\n@hookimpl\ndef handsdk_register_consumers(register):\n    register('rec_name', Rec)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fresh_plugins.pm.register(JsonlImpostor(), name="test-early")

    class Early:
        @hookimpl
        def handsdk_register_consumers(self, register):
            register("rec_name", Recorder)

    fresh_plugins.pm.register(Early(), name="test-early-rec")
    comp = fresh_plugins.components("consumer")["rec_name"]
    assert (comp.plugin, comp.distribution) == ("installed_rec", "installed-rec")
