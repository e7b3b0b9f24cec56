"""Bad input, faulty plugins and sources: clear errors, nothing lost, no crash."""

from __future__ import annotations

import contextlib
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from handsdk import (
    ConfigError,
    FrameError,
    HandSDKError,
    ModelError,
    SourceError,
    Tracker,
    hookimpl,
)
from handsdk.frames import as_bgr
from handsdk.plugins import pm
from handsdk.synthetic import synthetic_clip


@pytest.fixture(scope="module")
def tracker():
    with Tracker() as t:
        yield t


@pytest.fixture(scope="module")
def clip():
    return [f.image for f in synthetic_clip(12, seed=10)]


BAD = {
    "None": (None, "is None"),
    "list": ([[0, 1], [2, 3]], "not a numpy array"),
    "string": ("frame.jpg", "not a numpy array"),
    "empty": (np.zeros((0, 0, 3), np.uint8), "0x0 pixels"),
    "1x1": (np.zeros((1, 1, 3), np.uint8), "1x1 pixels"),
    "2 channels": (np.zeros((64, 64, 2), np.uint8), "shape (64, 64, 2)"),
    "5 channels": (np.zeros((64, 64, 5), np.uint8), "shape (64, 64, 5)"),
    "4-D batch": (np.zeros((2, 64, 64, 3), np.uint8), "shape (2, 64, 64, 3)"),
    "NaN": (np.full((64, 64, 3), np.nan, np.float32), "NaN"),
    "inf": (np.full((64, 64, 3), np.inf, np.float64), "NaN or infinite"),
    "float out of range": (np.full((64, 64, 3), 300.0, np.float32), "values in"),
    "int32": (np.zeros((64, 64, 3), np.int32), "dtype int32"),
    "bool": (np.zeros((64, 64, 3), bool), "dtype bool"),
    "complex": (np.zeros((64, 64, 3), np.complex64), "dtype complex64"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_frames_are_refused_with_a_clear_error(tracker, case):
    value, message = BAD[case]
    for call in (tracker.detect, tracker.process):
        with pytest.raises(FrameError, match="expected a numpy array") as err:
            call(value)
        assert message in str(err.value)


def test_convertible_frames_give_the_same_hands(tracker, clip):
    bgr = clip[0]
    ref = tracker.detect(bgr)
    assert len(ref) == 1
    grey = bgr.mean(2).astype(np.uint8)
    variants = {
        "float 0-1": bgr.astype(np.float32) / 255,
        "float 0-255": bgr.astype(np.float64),
        "uint16": bgr.astype(np.uint16) * 257,
        "BGRA": np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)]),
        "non-contiguous": np.ascontiguousarray(np.repeat(bgr, 2, axis=1))[:, ::2],
        "Fortran order": np.asfortranarray(bgr),
    }
    for name, img in variants.items():
        hands = tracker.detect(img)
        assert len(hands) == 1, name
        assert np.abs(hands[0].landmarks[:, :2] - ref[0].landmarks[:, :2]).mean() < 1.5, name
    assert as_bgr(grey).shape == bgr.shape and as_bgr(grey[:, :, None]).shape == bgr.shape
    assert isinstance(tracker.detect(grey), list)


def test_huge_frame_is_handled(tracker):
    assert tracker.detect(np.zeros((4320, 7680, 3), np.uint8)) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hnp.arrays(dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int8, np.int64]),
                  shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=40)))
def test_any_array_gives_hands_or_a_frame_error(tracker, arr):
    with contextlib.suppress(FrameError):
        assert isinstance(tracker.detect(arr), list)


class Collect:
    kind = "sink"

    def __init__(self, delay: float = 0.0):
        self.results, self.tags, self.timings, self.delay = [], [], [], delay

    def __call__(self, result, frame):
        time.sleep(self.delay)
        self.results.append(result.frame_index)
        self.tags.append(int(frame[0, 0, 0]))
        self.timings.append(sorted(result.timings))


class Explode:
    kind = "classifier"

    def __init__(self):
        self.calls = 0

    def __call__(self, result, frame):
        self.calls += 1
        raise RuntimeError("consumer bug")


class TestPlugins:
    @staticmethod
    def _plugin():
        from handsdk import hookimpl

        class P:
            @hookimpl
            def handsdk_register_consumers(self, register):
                register("collect", Collect)
                register("explode", Explode)

            @hookimpl
            def handsdk_on_result(self, result):
                raise ValueError("hook bug")

        return P()


@pytest.fixture
def test_consumers():
    plugin = TestPlugins._plugin()
    pm.register(plugin, name="robustness-test-plugin")
    try:
        yield
    finally:
        pm.unregister(name="robustness-test-plugin")


def test_a_raising_consumer_and_hook_do_not_stop_tracking(test_consumers, clip):
    cfg = {"consumers": [{"name": "explode"}, {"name": "collect"}]}
    with Tracker(cfg) as t:
        results = list(t.run(clip))
        explode, collect = (s.consumer for s in t.consumers)
        assert t.consumers[0].errors == len(clip)
    assert len(results) == len(clip) and all(r.hands for r in results)
    assert explode.calls == len(clip)
    assert collect.results == list(range(len(clip)))


def test_slow_consumer_in_live_mode_drops_oldest_and_counts(test_consumers, clip):
    cfg = {"consumers": [{"name": "collect", "delay": 0.05}]}
    t = Tracker(cfg)
    results = list(t.run(clip * 3, live=True))
    t.close()
    sink = t.consumers[0].consumer
    assert len(results) == len(clip) * 3  # the caller still gets every result
    assert t.dropped_frames > 0
    assert len(sink.results) + t.dropped_frames == len(results)
    assert sink.results == sorted(sink.results)


def test_live_sinks_see_each_frame_even_when_the_source_reuses_its_buffer(test_consumers, clip):
    """A camera may decode every frame into the same array: live mode's sinks, which run later on
    their own thread, must still get each frame's pixels, and the timings a synchronous sink sees."""
    def camera():
        buf = np.empty_like(clip[0])
        for i, frame in enumerate(clip[:6]):
            buf[:] = frame
            buf[0, 0] = i  # a tag in the corner pixel
            yield buf

    with Tracker({"consumers": [{"name": "collect", "delay": 0.02}]}) as t:
        list(t.run(camera(), live=True))
        sink = t.consumers[0].consumer
        assert sink.results == list(range(6)) and sink.tags == list(range(6))  # 6 frames < the queue's 8
        live_timings = sink.timings[-1]
        t.process(clip[0])  # after the live run the sinks run inline again
        assert len(sink.results) == 7
        assert sink.timings[-1] == live_timings  # the same stages in both modes
        assert t.dropped_frames == 0


def test_source_failing_mid_stream_ends_the_run_cleanly(tracker, clip):
    def camera():
        yield from clip[:5]
        raise OSError("camera unplugged")

    results = list(tracker.run(camera()))
    assert len(results) == 5

    def dead():
        raise OSError("no camera")
        yield

    with pytest.raises(SourceError, match="no camera"):
        list(tracker.run(dead()))


def test_unreadable_sources_are_source_errors(tracker, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    for spec, msg in ((str(bad), "cannot be read"), (str(tmp_path / "missing.mp4"), "does not exist"),
                      (str(tmp_path / "x.unknown"), "no source can open"), (tmp_path, "holds no images")):
        with pytest.raises(SourceError, match=msg):
            list(tracker.run(spec))


def test_resolution_change_mid_stream(tracker, clip):
    tracker.reset()
    small = [f[::2, ::2].copy() for f in clip[:4]]
    results = [tracker.process(f) for f in clip[:4] + small + clip[:4]]
    assert all(r.hands for r in results)
    assert results[4].image_size == (320, 240)
    for r in results[4:8]:
        assert r.hands[0].landmarks[:, 0].max() <= 330


def test_closed_tracker_refuses_frames(clip):
    t = Tracker()
    with t:
        t.process(clip[0])
    with pytest.raises(HandSDKError, match="closed"):
        t.process(clip[0])
    t.close()  # twice is fine


def test_one_tracker_per_thread(clip):
    expected = [len(r.hands) for r in Tracker().run(clip)]
    out: dict[int, list[int]] = {}

    def work(k):
        with Tracker() as t:
            out[k] = [len(r.hands) for r in t.run(clip)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(v == expected for v in out.values())


def test_one_tracker_shared_by_two_threads_says_so(fake_backend, register_plugin):
    """process() from a second thread while the first is inside it: a clear error for the
    second, the first's frame unharmed (a slow landmark model holds the first one in place)."""
    inside, release = threading.Event(), threading.Event()

    def slow(outs):
        inside.set()
        release.wait(5)
        return outs

    _register_backend(register_plugin, "slow", _landmark_outputs_changed(slow))
    release.set()  # the tracker's own probe of the model, when it is built, passes straight through
    with Tracker(fake_backend.config(backend={"name": "slow"})) as t:
        inside.clear()
        release.clear()
        out: dict[str, object] = {}
        first = threading.Thread(target=lambda: out.update(first=t.process(fake_backend.frame())))
        first.start()
        assert inside.wait(5)
        with pytest.raises(HandSDKError, match="two threads at once.*one Tracker per thread"):
            t.process(fake_backend.frame())
        release.set()
        first.join(5)
        assert len(out["first"].hands) == 1
        assert len(t.process(fake_backend.frame()).hands) == 1  # and it goes on


def test_a_stalled_source_ends_the_run(tracker, clip):
    import threading

    never = threading.Event()

    def hanging_camera():
        yield from clip[:3]
        never.wait()  # a driver that blocks instead of failing
        yield clip[0]

    t0 = time.perf_counter()
    results = list(tracker.run(hanging_camera(), stall_timeout=0.5))
    assert len(results) == 3
    assert time.perf_counter() - t0 < 10
    never.set()


# -- models, configs and writers of the wrong kind ---------------------------------------------
def _register_backend(register_plugin, name: str, backend) -> None:
    """A throwaway backend plugin whose factory returns ``backend``."""
    class Plugin:
        @hookimpl
        def handsdk_register_backends(self, register):
            register(name, lambda: backend)

    register_plugin(Plugin(), f"test-{name}")


def _landmark_outputs_changed(change):
    """The fake backend, its landmark model's outputs passed through ``change``."""
    from conftest import FakeBackend

    class Changed(FakeBackend):
        def load(self, spec, variant="fp32"):
            runner = super().load(spec, variant)
            return runner if spec.name != "landmark" else (lambda batch: change(runner(batch)))

    return Changed({})


def test_a_model_file_of_the_wrong_kind_fails_at_load_naming_it(bundled_models):
    detector_file = str(bundled_models / "detector.onnx")
    with pytest.raises(ModelError, match=r"the landmark model \(.*detector\.onnx\) does not run on a 1x224x224x3"):
        Tracker({"models": {"landmark": detector_file}})


def test_a_model_with_other_outputs_fails_at_load(fake_backend, register_plugin):
    _register_backend(register_plugin, "fake2d",
                      _landmark_outputs_changed(lambda outs: [outs[0][..., :2], *outs[1:]]))
    with pytest.raises(ModelError, match=r"gives outputs of shapes \[\(1, 21, 2\).*reads \(1, 21, 3\)"):
        Tracker(fake_backend.config(backend={"name": "fake2d"}))


def test_one_number_per_item_may_come_flat(fake_backend, register_plugin):
    """Presence and handedness as (N,) instead of (N, 1): the tracker reads both the same."""
    _register_backend(register_plugin, "flat", _landmark_outputs_changed(
        lambda outs: [o.reshape(len(o)) if o.ndim == 2 and o.shape[1] == 1 else o for o in outs]))
    with Tracker(fake_backend.config(backend={"name": "flat"})) as tracker:
        hands = tracker.detect(fake_backend.frame())
    assert len(hands) == 1 and hands[0].score == pytest.approx(0.99)


@pytest.mark.parametrize(("entry", "match"), [
    ({"outputs": ["a"], "files": {}}, "needs 'input_size'"),
    ({"input_size": "224", "outputs": ["a"]}, "input_size must be an integer from 8 to 4096; got str '224'"),
    ({"input_size": 64, "files": {}}, "needs 'outputs'"),
    ({"input_size": 64, "outputs": list("abcd"), "files": {"onnx": {"sha256": "x"}}},
     r"models.landmark.files.onnx needs 'path'"),
    ("landmark.onnx", "must be an object"),
])
def test_a_malformed_manifest_entry_is_a_model_error(tmp_path, entry, match):
    import json

    good = {"input_size": 64, "outputs": ["heatmap", "geometry"], "files": {}}
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {"landmark": entry, "detector": good}}))
    with pytest.raises(ModelError, match=match):
        Tracker({"models": {"manifest": str(tmp_path / "manifest.json")}})


def test_a_failed_tracker_releases_its_backend(fake_backend, register_plugin):
    from conftest import FakeBackend

    closed = []

    class Closing(FakeBackend):
        def close(self):
            closed.append(True)

    _register_backend(register_plugin, "closing", Closing({}))
    with pytest.raises(HandSDKError, match="unknown consumer 'nope'"):
        Tracker(fake_backend.config(backend={"name": "closing"}, consumers=[{"name": "nope"}]))
    assert closed == [True]


@pytest.mark.parametrize("config", [123, 1.5, ["tracker"], b"handsdk.toml"])
def test_a_config_of_the_wrong_type_is_a_config_error(config):
    with pytest.raises(ConfigError, match="a TOML file path, a dict or a Config"):
        Tracker(config)


def test_a_closed_tracker_refuses_stills(clip):
    t = Tracker()
    t.close()
    with pytest.raises(HandSDKError, match="closed"):
        t.detect(clip[0])


def test_a_missing_folder_is_a_source_error(tmp_path):
    from handsdk.sources import open_source

    with pytest.raises(SourceError, match="does not exist or is not a folder"):
        open_source(str(tmp_path / "nowhere"), "folder")


@pytest.mark.skipif("GUI:                           NONE" not in __import__("cv2").getBuildInformation(),
                    reason="this OpenCV has a GUI: --show would open a window")
def test_show_without_a_gui_says_how_to_get_one(capsys):
    """The default install's OpenCV is headless: --show fails up front with the flag's name and
    the fix, not with a cv2.error traceback on the first frame."""
    from handsdk_signs import demo

    from handsdk.cli import main

    assert main(["track", "synthetic", "--show", "--max-frames", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --show 'overlay': showing a window needs an OpenCV build with GUI")
    assert "pip install opencv-python" in err and "Traceback" not in err
    assert demo.main(["--show", "--max-frames", "2", "--out", ""]) == 2
    err = capsys.readouterr().err
    assert "GUI support" in err and "Traceback" not in err


class BrokenFilter:
    """A filter plugin gone wrong in one of three ways."""

    def __init__(self, mode: str = "raise"):
        self.mode = mode

    def __call__(self, value, timestamp_s):
        if self.mode == "raise":
            raise RuntimeError("filter bug")
        if self.mode == "shape":
            return value[:5]
        return value * np.nan

    def reset(self):
        pass


@pytest.mark.parametrize("mode", ["raise", "shape", "nan"])
def test_a_broken_filter_plugin_leaves_the_hands_unfiltered_not_lost(register_filter, clip, caplog, mode):
    import logging

    with (caplog.at_level(logging.ERROR, logger="handsdk.tracker"),
          Tracker({"filter": {"name": "broken", "mode": mode}}) as t, Tracker({"filter": {"name": "none"}}) as raw):
        for frame in clip[:4]:
            got, want = t.process(frame), raw.process(frame)
            assert len(got.hands) == len(want.hands) == 1
            assert np.allclose(got.hands[0].landmarks, want.hands[0].landmarks)
        assert t.stats["filter_errors"] == 4
    assert "filter 'broken' failed" in caplog.text


@pytest.fixture
def register_filter():
    from handsdk import hookimpl

    class P:
        @hookimpl
        def handsdk_register_filters(self, register):
            register("broken", BrokenFilter)

    pm.register(P(), name="broken-filter-test-plugin")
    try:
        yield
    finally:
        pm.unregister(name="broken-filter-test-plugin")
