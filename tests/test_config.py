"""Config validation: every problem in a config dict or TOML file is a ConfigError that names
the file, the key and what is valid; plugin names and options are checked when the tracker is
built (a fake backend stands in for the model files)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handsdk import Tracker
from handsdk.config import (
    SECTIONS,
    Config,
    ModelsConfig,
    PluginSection,
    TrackerConfig,
    build_component,
    load_config,
    parse_config,
)
from handsdk.errors import ConfigError, HandSDKError, PluginNotFoundError
from handsdk.plugins import get_component

VALID_SECTIONS = "[tracker], [backend], [filter], [[consumers]], [models], [source]"
TRACKER_KEYS = [f.name for f in dataclasses.fields(TrackerConfig)]
MODELS_KEYS = [f.name for f in dataclasses.fields(ModelsConfig)]


def write(tmp_path: Path, text: str, name: str = "handsdk.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_error_classes():
    assert issubclass(ConfigError, HandSDKError) and issubclass(ConfigError, ValueError)
    assert issubclass(PluginNotFoundError, ConfigError) and issubclass(PluginNotFoundError, LookupError)


def test_defaults():
    cfg = load_config(None)
    assert cfg == Config()
    assert (cfg.backend.name, cfg.filter.name, cfg.consumers, cfg.source) == ("onnxruntime", "one_euro", [], None)
    assert load_config(cfg) is cfg


# -- sections and keys -------------------------------------------------------------------------
def test_unknown_section_lists_valid_sections():
    with pytest.raises(ConfigError) as info:
        parse_config({"tracker": {}, "trackers": {"max_hands": 1}})
    msg = str(info.value)
    assert msg.startswith("<dict>: unknown section [trackers]")
    assert msg.endswith("valid sections: " + VALID_SECTIONS)


def test_unknown_section_in_a_file_names_the_file(tmp_path):
    path = write(tmp_path, "[tracker]\nmax_hands = 1\n\n[display]\nshow = true\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: unknown section [display]")
    assert VALID_SECTIONS in str(info.value)


@pytest.mark.parametrize("section, keys", [("tracker", TRACKER_KEYS), ("models", MODELS_KEYS)])
def test_unknown_key_lists_valid_keys(section, keys):
    with pytest.raises(ConfigError) as info:
        parse_config({section: {"max_hand": 1}})
    msg = str(info.value)
    assert f"[{section}]: unknown key 'max_hand'" in msg
    assert msg.endswith("valid keys: " + ", ".join(keys))


def test_unknown_tracker_key_in_a_file(tmp_path):
    path = write(tmp_path, "[tracker]\nmax_hand = 2\n")
    with pytest.raises(ConfigError, match=r"\[tracker\]: unknown key 'max_hand'; valid keys: max_hands, "):
        load_config(path)


@pytest.mark.parametrize("key, value, expected", [
    ("max_hands", "two", "max_hands must be int, got str 'two'"),
    ("max_hands", 2.5, "max_hands must be int, got float 2.5"),
    ("max_hands", True, "max_hands must be an integer, got True"),
    ("min_detection_confidence", "0.5", "min_detection_confidence must be float, got str '0.5'"),
    ("min_presence_confidence", None, "min_presence_confidence must be float, got NoneType None"),
    ("mirrored", "yes", "mirrored must be bool, got str 'yes'"),
    ("mirrored", 1, "mirrored must be bool, got int 1"),
    ("mirror_new", "yes", "mirror_new must be bool, got str 'yes'"),
    ("mirror_tracked", 1, "mirror_tracked must be bool, got int 1"),
    ("fps", True, "fps must be float, got bool True"),
    ("detector_interval", 1.0, "detector_interval must be int, got float 1.0"),
])
def test_wrong_type_names_the_key(key, value, expected):
    with pytest.raises(ConfigError) as info:
        parse_config({"tracker": {key: value}})
    assert str(info.value) == f"<dict> [tracker]: {expected}"


@pytest.mark.parametrize("key, value, expected", [
    ("min_detection_confidence", 2, "min_detection_confidence must be in [0, 1], got 2.0"),
    ("min_detection_confidence", -0.1, "min_detection_confidence must be in [0, 1], got -0.1"),
    ("min_presence_confidence", 1.5, "min_presence_confidence must be in [0, 1], got 1.5"),
    ("min_detection_confidence", math.nan, "min_detection_confidence must be in [0, 1], got nan"),
    ("max_hands", 0, "max_hands must be 1..16, got 0"),
    ("max_hands", 17, "max_hands must be 1..16, got 17"),
    ("fps", 0, "fps must be a number in [0.01, 10000], got 0.0"),
    ("fps", -30.0, "fps must be a number in [0.01, 10000], got -30.0"),
    ("fps", 4.9e-324, "fps must be a number in [0.01, 10000], got 5e-324"),
    ("fps", 1e308, "fps must be a number in [0.01, 10000], got 1e+308"),
    ("detector_interval", -1, "detector_interval must be >= 0"),
    ("new_hand_interval", 0, "new_hand_interval must be >= 1 (1: every frame), got 0"),
    ("detector_rotations", 3, "detector_rotations must be one of [1, 2, 4], got 3"),
    ("min_landmark_confidence", 1.5, "min_landmark_confidence must be in [0, 1], got 1.5"),
])
def test_out_of_range_names_the_key(key, value, expected):
    with pytest.raises(ConfigError) as info:
        parse_config({"tracker": {key: value}})
    assert str(info.value) == f"<dict> [tracker]: {expected}"


def test_wrong_type_and_range_in_a_file(tmp_path):
    path = write(tmp_path, '[tracker]\nmax_hands = "two"\n')
    with pytest.raises(ConfigError, match=rf"^{path} \[tracker\]: max_hands must be int"):
        load_config(path)
    path = write(tmp_path, "[tracker]\nmin_detection_confidence = 2\n", "b.toml")
    with pytest.raises(ConfigError, match=r"min_detection_confidence must be in \[0, 1\], got 2\.0"):
        load_config(path)


@pytest.mark.parametrize("fps", ["nan", "inf"])
def test_non_finite_fps_is_refused(tmp_path, fps):
    with pytest.raises(ConfigError, match="fps"):
        load_config(write(tmp_path, f"[tracker]\nfps = {fps}\n"))


def test_huge_int_for_a_float_key_is_a_config_error():
    with pytest.raises(ConfigError, match="fps"):
        parse_config({"tracker": {"fps": 10**400}})


def test_ints_are_accepted_for_floats():
    cfg = parse_config({"tracker": {"fps": 25, "min_detection_confidence": 1}})
    assert cfg.tracker.fps == 25.0 and type(cfg.tracker.fps) is float
    assert cfg.tracker.min_detection_confidence == 1.0


@pytest.mark.parametrize("data, expected", [
    ({"tracker": [1, 2]}, "[tracker] must be a table of keys, got list"),
    ({"backend": "onnxruntime"}, "[backend] must be a table with a 'name' key, got str"),
    ({"backend": {"name": 3}}, "[backend]: name must be a string, got 3"),
    ({"consumers": {"name": "overlay"}}, "consumers must be an array of tables ([[consumers]])"),
    ({"consumers": [{"name": "overlay"}, {"show": True}]}, "[[consumers]] #2: missing 'name'"),
    ({"source": {"spec": 0}}, "[source]: missing 'name'"),
    ({"models": {"variant": "fp16"}}, "[models]: variant 'fp16' unknown; valid: fp32, int8"),
    ({"models": {"landmark": 3}}, "[models]: landmark must be str, got int 3"),
])
def test_malformed_sections(data, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert expected in str(info.value)


def test_plugin_sections_default_their_name():
    cfg = parse_config({"backend": {"threads": 2}, "filter": {"beta": 0.1}})
    assert cfg.backend == PluginSection("onnxruntime", {"threads": 2})
    assert cfg.filter == PluginSection("one_euro", {"beta": 0.1})


def test_not_a_mapping():
    with pytest.raises(ConfigError, match="a config must be a table/dict, got list"):
        parse_config([("tracker", {})])  # type: ignore[arg-type]


# -- plugin names --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, name, valid", [
    ("backend", "onnx", ["onnxruntime", "tflite", "torch"]),
    ("filter", "oneeuro", ["kalman", "none", "one_euro"]),
    ("consumer", "overlays", ["jsonl", "overlay", "video"]),
    ("source", "webcam", ["camera", "folder", "image", "synthetic", "video"]),
])
def test_get_component_unknown_name_lists_valid(kind, name, valid):
    with pytest.raises(PluginNotFoundError) as info:
        get_component(kind, name)
    msg = str(info.value)
    assert msg.startswith(f"unknown {kind} {name!r}; registered {kind}s: ")
    listed = msg.split(": ", 1)[1].split(", ")
    assert set(valid) <= set(listed)
    assert listed == sorted(listed)


def test_tracker_unknown_backend(tmp_path):
    # the backend is looked up before any model file is read
    with pytest.raises(PluginNotFoundError, match=r"unknown backend 'onnx'; registered backends: .*onnxruntime"):
        Tracker({"backend": {"name": "onnx"}})
    path = write(tmp_path, '[backend]\nname = "onnx"\n')
    with pytest.raises(PluginNotFoundError, match="onnxruntime, tflite, torch") as info:
        Tracker(path)
    assert str(info.value).startswith(f"{path} [backend]: unknown backend 'onnx'")  # the file and section


def test_tracker_unknown_filter(fake_backend):
    with pytest.raises(PluginNotFoundError, match=r"unknown filter 'oneeuro'; registered filters: kalman, none, one_euro"):
        Tracker(fake_backend.config(filter={"name": "oneeuro"}))


def test_tracker_unknown_consumer(fake_backend):
    cfg = fake_backend.config(consumers=[{"name": "jsonl", "path": "/dev/null"}, {"name": "overlays"}])
    with pytest.raises(PluginNotFoundError) as info:
        Tracker(cfg)
    msg = str(info.value)
    assert msg.startswith("<dict> [[consumers]] #2: unknown consumer 'overlays'; registered consumers: ")
    assert {"jsonl", "overlay", "video"} <= set(msg.split("registered consumers: ", 1)[1].split(", "))


def test_tracker_unknown_source(fake_backend):
    tracker = Tracker(fake_backend.config(source={"name": "webcam", "spec": 0}))
    try:
        with pytest.raises(PluginNotFoundError, match="unknown source 'webcam'; registered sources: camera, "):
            next(tracker.run())
    finally:
        tracker.close()


def test_fake_backend_builds_a_tracker(fake_backend):
    """The control for the tests above: the same config with valid names builds and runs."""
    with Tracker(fake_backend.config(filter={"name": "one_euro", "beta": 0.1})) as tracker:
        result = tracker.process(fake_backend.frame())
    assert len(result.hands) == 1


def test_source_errors_name_the_config_section_and_summarise_arrays(fake_backend):
    import numpy as np

    from handsdk.errors import SourceError

    with Tracker(fake_backend.config(source={"name": "synthetic", "spec": "synthetic", "nn": 3})) as tracker:
        with pytest.raises(ConfigError, match=r"^<dict> \[source\] 'synthetic': unknown option 'nn'; accepted: spec, "):
            next(tracker.run())
        with pytest.raises(SourceError) as info:
            next(tracker.run(np.zeros((48, 64, 3), np.uint8)))
    msg = str(info.value)
    assert "a numpy array of shape (48, 64, 3) (uint8): for one frame call process() or detect()" in msg
    assert len(msg) < 400  # not the array's repr


# -- plugin options ------------------------------------------------------------------------------
def test_unknown_plugin_option_lists_accepted():
    factory = get_component("filter", "one_euro").factory
    with pytest.raises(ConfigError) as info:
        build_component(factory, {"foo": 1}, "cfg.toml [filter] 'one_euro'")
    assert str(info.value) == ("cfg.toml [filter] 'one_euro': unknown option 'foo'; "
                               "accepted: min_cutoff, beta, d_cutoff")


def test_plugin_option_of_the_wrong_type_is_a_config_error():
    factory = get_component("consumer", "video").factory
    with pytest.raises(ConfigError, match="codec must be a four-letter FOURCC"):
        build_component(factory, {"codec": "h264x"}, "[[consumers]] #1 'video'")

    def needs_positional(a, /, b=1):
        return a, b

    with pytest.raises(ConfigError, match=r"^w: .*missing 1 required positional argument"):
        build_component(needs_positional, {"b": 2}, "w")
    with pytest.raises(ConfigError, match="unknown option 'a'; accepted: b"):
        build_component(needs_positional, {"a": 2}, "w")


@pytest.mark.parametrize(("kind", "name", "options", "message"), [
    ("filter", "one_euro", {"beta": math.nan}, "option 'beta' must be a number in [0, "),
    ("filter", "one_euro", {"min_cutoff": 0}, "option 'min_cutoff' must be a number in (0, "),
    ("filter", "kalman", {"process_noise": "x"}, "option 'process_noise' must be a number"),
    ("filter", "kalman", {"measurement_noise": math.inf}, "option 'measurement_noise' must be a number"),
    ("backend", "onnxruntime", {"threads": -3}, "option 'threads' must be an integer in [0, 256], got -3"),
    ("backend", "onnxruntime", {"threads": "two"}, "option 'threads' must be an integer"),
    ("consumer", "video", {"fps": -5}, "option 'fps' must be a positive number (frames per second), got -5"),
    ("consumer", "video", {"annotate": "yes"}, "option 'annotate' must be true or false"),
    ("consumer", "jsonl", {"path": 3}, "option 'path' must be a file path, got 3"),
    ("consumer", "overlay", {"skeleton": "no"}, "option 'skeleton' must be true or false"),
    ("source", "synthetic", {"spec": "synthetic", "n_frames": 0}, "option 'n_frames' must be an integer in [1, "),
    ("source", "synthetic", {"spec": "synthetic", "n_hands": 3}, "option 'n_hands' must be an integer in [0, 2]"),
])
def test_first_party_plugins_check_their_options(kind, name, options, message):
    """A bad value fails when the component is built, naming the option, the accepted range and
    the value — not later as NaN landmarks, a silent default or a raw numpy / OpenCV error."""
    where = f"cfg.toml [{kind}] {name!r}"
    with pytest.raises(ConfigError) as info:
        build_component(get_component(kind, name).factory, options, where)
    assert str(info.value).startswith(f"{where}: option ")  # the plugin's own name is not repeated
    assert message in str(info.value)


def test_an_error_naming_no_option_lists_the_options_and_defaults():
    def factory(path: str = "x.txt", rate: float = 2.0):
        return float(rate)

    with pytest.raises(ConfigError) as info:
        build_component(factory, {"rate": "fast"}, "w")
    assert str(info.value) == ("w: could not convert string to float: 'fast' "
                               "(options and their defaults: path='x.txt', rate=2.0)")


def test_a_plugin_that_fails_to_start_is_named_and_keeps_its_error_type():
    from handsdk.errors import MissingDependencyError

    def gpu_only():
        raise RuntimeError("GPU not found")

    def needs_extra():
        raise MissingDependencyError("boom: 'tensorrt' is not installed")

    with pytest.raises(HandSDKError) as info:
        build_component(gpu_only, {}, "cfg.toml [backend] 'boom'")
    assert str(info.value) == "cfg.toml [backend] 'boom': the plugin failed to start: RuntimeError: GPU not found"
    with pytest.raises(MissingDependencyError) as info:
        build_component(needs_extra, {}, "cfg.toml [backend] 'boom'")
    assert str(info.value) == "cfg.toml [backend] 'boom': 'tensorrt' is not installed"


def test_factory_with_kwargs_accepts_any_option():
    assert build_component(lambda **kw: kw, {"anything": 1}, "w") == {"anything": 1}


def test_tracker_reports_plugin_options_with_the_file(fake_backend, tmp_path):
    body = (f'[backend]\nname = "fake"\n\n[models]\nmanifest = "{fake_backend.manifest}"\n\n'
            '[filter]\nname = "one_euro"\nfoo = 1\n')
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        Tracker(path)
    assert str(info.value) == (f"{path} [filter] 'one_euro': unknown option 'foo'; "
                               "accepted: min_cutoff, beta, d_cutoff")
    cfg = fake_backend.config(consumers=[{"name": "jsonl", "file": "x.jsonl"}])
    with pytest.raises(ConfigError, match=r"<dict> \[\[consumers\]\] #1 'jsonl': unknown option 'file'; accepted: path$"):
        Tracker(cfg)


# -- files ---------------------------------------------------------------------------------------
def test_malformed_toml_names_the_file(tmp_path):
    path = write(tmp_path, "[tracker]\nmax_hands = = 2\n", "broken.toml")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: not valid TOML: ")
    assert "line 2" in str(info.value)


def test_non_utf8_file_names_the_file(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[source]\nname = "image"\nspec = "caf\xe9.png"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"^{path}: not UTF-8 text \(byte 35 is 0xe9\); TOML is UTF-8"):
        load_config(path)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_a_byte_order_mark_is_accepted_or_named(tmp_path, encoding):
    """Windows editors save a UTF-8 byte-order mark (accepted: the file reads as without it) or
    UTF-16 (refused, saying so), never "Invalid statement (at line 1, column 1)"."""
    path = tmp_path / "bom.toml"
    path.write_bytes('[tracker]\nmax_hands = 3\n'.encode(encoding))
    assert path.read_bytes()[:2] in (b"\xef\xbb", b"\xff\xfe")
    if encoding == "utf-8-sig":
        assert load_config(path).tracker.max_hands == 3
    else:
        with pytest.raises(ConfigError, match=r"the file is UTF-16 .*save it as UTF-8"):
            load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is a folder, not a TOML file"):
        load_config(tmp_path)  # a folder is not a config file


def test_relative_model_paths_resolve_from_the_file(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    absolute = tmp_path / "elsewhere" / "det.onnx"
    path = write(tmp_path / "conf", f'[models]\nlandmark = "x.onnx"\nmanifest = "../m/manifest.json"\n'
                                    f'detector = "{absolute}"\n')
    cfg = load_config(path)
    assert cfg.models.landmark == str(tmp_path / "conf" / "x.onnx")
    assert Path(cfg.models.manifest).resolve() == (tmp_path / "m" / "manifest.json").resolve()
    assert cfg.models.detector == str(absolute)
    # a relative path to the file itself: still relative to the file, wherever the cwd goes next
    monkeypatch.chdir(tmp_path)
    cfg = load_config(Path("conf") / path.name)
    assert Path(cfg.models.landmark).resolve() == (tmp_path / "conf" / "x.onnx").resolve()
    # a dict has no folder: the path stays as written
    assert parse_config({"models": {"landmark": "x.onnx"}}).models.landmark == "x.onnx"


FULL_TOML = """
[tracker]
max_hands = 1
min_detection_confidence = 0.6
mirrored = true
fps = 25

[backend]
name = "onnxruntime"
threads = 2

[filter]
name = "kalman"
process_noise = 100.0

[[consumers]]
name = "overlay"
show = false

[[consumers]]
name = "jsonl"
path = "out/hands.jsonl"

[models]
variant = "int8"
landmark = "{landmark}"

[source]
name = "synthetic"
spec = "synthetic"
n_frames = 10
"""


def full_dict(landmark: str) -> dict:
    return {
        "tracker": {"max_hands": 1, "min_detection_confidence": 0.6, "mirrored": True, "fps": 25},
        "backend": {"name": "onnxruntime", "threads": 2},
        "filter": {"name": "kalman", "process_noise": 100.0},
        "consumers": [{"name": "overlay", "show": False}, {"name": "jsonl", "path": "out/hands.jsonl"}],
        "models": {"variant": "int8", "landmark": landmark},
        "source": {"name": "synthetic", "spec": "synthetic", "n_frames": 10},
    }


def test_file_and_dict_give_the_same_config(tmp_path):
    landmark = str(tmp_path / "lm.onnx")  # absolute: no resolution difference
    path = write(tmp_path, FULL_TOML.format(landmark=landmark))
    from_file, from_dict = load_config(path), load_config(full_dict(landmark))
    assert from_file.origin == str(path) and from_dict.origin == "<dict>"
    assert dataclasses.replace(from_file, origin="<dict>") == from_dict
    assert from_dict.tracker == TrackerConfig(max_hands=1, min_detection_confidence=0.6, mirrored=True, fps=25.0)
    assert from_dict.consumers == [PluginSection("overlay", {"show": False}),
                                   PluginSection("jsonl", {"path": "out/hands.jsonl"})]
    assert from_dict.source == PluginSection("synthetic", {"spec": "synthetic", "n_frames": 10})
    assert from_dict.models == ModelsConfig(landmark=landmark, variant="int8")


def test_file_with_relative_paths_equals_dict_with_resolved_paths(tmp_path):
    path = write(tmp_path, FULL_TOML.format(landmark="lm.onnx"))
    from_file = load_config(path)
    from_dict = parse_config(full_dict(str(tmp_path / "lm.onnx")), origin=str(path))
    assert from_file == from_dict


# -- properties ----------------------------------------------------------------------------------
json_scalars = (st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
unknown_names = st.text(min_size=0, max_size=12).filter(lambda s: s not in SECTIONS)
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(unknown=st.dictionaries(unknown_names, json_values, min_size=1, max_size=3),
       known=st.dictionaries(st.sampled_from(SECTIONS), json_values, max_size=3))
def test_property_unknown_sections_always_raise_config_error(unknown, known):
    data = {**known, **unknown}
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert "unknown section" in str(info.value)
    assert VALID_SECTIONS in str(info.value)


@PROPERTY_SETTINGS
@given(section=st.sampled_from(["tracker", "models"]),
       keys=st.dictionaries(st.text(max_size=12).filter(lambda s: s not in TRACKER_KEYS + MODELS_KEYS),
                            json_values, min_size=1, max_size=3))
def test_property_unknown_keys_always_raise_config_error(section, keys):
    with pytest.raises(ConfigError) as info:
        parse_config({section: keys})
    assert "unknown key" in str(info.value) and "valid keys: " in str(info.value)


tracker_tables = st.dictionaries(st.sampled_from(TRACKER_KEYS), json_values, max_size=4)
models_tables = st.dictionaries(st.sampled_from(MODELS_KEYS), json_values, max_size=3)
plugin_tables = st.dictionaries(st.sampled_from(["name", "threads", "path", "spec"]), json_values, max_size=3)
any_config = st.fixed_dictionaries({}, optional={
    "tracker": tracker_tables | json_values,
    "models": models_tables | json_values,
    "backend": plugin_tables | json_values,
    "filter": plugin_tables | json_values,
    "source": plugin_tables | json_values,
    "consumers": st.lists(plugin_tables | json_values, max_size=3) | json_values,
})


@PROPERTY_SETTINGS
@given(data=any_config)
def test_property_any_value_is_a_config_or_a_config_error(data):
    """Whatever the values (in TOML's integer range), parsing gives a Config or a ConfigError."""
    try:
        cfg = parse_config(data)
    except ConfigError:
        return
    assert isinstance(cfg, Config)
    assert 1 <= cfg.tracker.max_hands <= 16
    assert cfg.models.variant in ("fp32", "int8")
    assert all(isinstance(c.name, str) for c in cfg.consumers)
