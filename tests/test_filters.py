"""The landmark filters of the ``handsdk_filters`` plugin, on synthetic landmark streams.

Signals follow the smoothing study: 21x3 landmarks in pixels, Gaussian noise sigma = 2 px, 30 fps.
Each quality check is paired with a badly tuned filter that must fail it, so the checks can fail.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import numpy as np
import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

try:
    import handsdk_filters
except ImportError:  # repo not installed: use the checkout (core in ./, plugin in plugins/)
    _ROOT = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(_ROOT), str(_ROOT / "plugins")]
    import handsdk_filters

from handsdk_filters import KalmanFilter, OneEuroFilter

from handsdk import hookspecs
from handsdk.smoothing import Filter, IdentityFilter

FPS = 30.0
DT = 1.0 / FPS
SIGMA = 2.0
DIRECTION = np.array([0.8, 0.6, 0.0])  # unit vector of the motion in (x, y, z)
FILTERS = [OneEuroFilter, KalmanFilter]

MAX_LAG_FRAMES = 0.5  # steady ramp error at 300 px/s, in frames of motion
#: the smoothing study's criterion, lag under one frame from 100 to 600 px/s
MAX_LAG_FRAMES_BY_SPEED = {100.0: 1.0, 300.0: MAX_LAG_FRAMES, 600.0: 1.0}
MIN_JITTER_REDUCTION = 0.70


def _landmarks(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(100.0, 500.0, size=(21, 3))


def _run(filt: Filter, values: np.ndarray, times: np.ndarray) -> np.ndarray:
    return np.stack([filt(v, float(t)) for v, t in zip(values, times, strict=True)])


def _jitter(x: np.ndarray) -> float:
    """RMS of the second difference over time (axis 0)."""
    return float(np.sqrt(np.mean(np.diff(x, n=2, axis=0) ** 2)))


def _jitter_reduction(filt: Filter, frames: int = 300, seed: int = 1) -> float:
    """1 - filtered/raw jitter on a static hand with 2 px noise, skipping a 1 s warm-up."""
    rng = np.random.default_rng(seed)
    raw = _landmarks(seed) + rng.normal(0.0, SIGMA, size=(frames, 21, 3))
    out = _run(filt, raw, np.arange(frames) * DT)
    return 1.0 - _jitter(out[30:]) / _jitter(raw[30:])


def _ramp(speed: float, times: np.ndarray, seed: int = 2, noise: float = SIGMA):
    """Still for 1 s, then moving at ``speed`` px/s: (truth, noisy measurement)."""
    moved = np.clip(times - 1.0, 0.0, None) * speed
    truth = _landmarks(seed) + moved[:, None, None] * DIRECTION
    rng = np.random.default_rng(seed)
    return truth, truth + rng.normal(0.0, noise, size=truth.shape)


def _ramp_lag_px(filt: Filter, times: np.ndarray, speed: float = 300.0, **kw) -> float:
    """Mean error along the motion, from 1 s after the hand started moving (at t = 1 s)."""
    truth, measured = _ramp(speed, times, **kw)
    out = _run(filt, measured, times)
    steady = times >= 2.0
    return float(np.mean((truth[steady] - out[steady]) @ DIRECTION))


def _ramp_lag_frames(filt: Filter, speed: float = 300.0) -> float:
    return _ramp_lag_px(filt, np.arange(90) * DT, speed) / (speed * DT)


# -- quality ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", FILTERS)
def test_cuts_jitter_on_a_static_hand(make):
    assert _jitter_reduction(make()) >= MIN_JITTER_REDUCTION


@pytest.mark.parametrize("make", FILTERS)
@pytest.mark.parametrize("speed", sorted(MAX_LAG_FRAMES_BY_SPEED))
def test_follows_a_moving_hand_with_bounded_lag(make, speed):
    bound = MAX_LAG_FRAMES_BY_SPEED[speed]
    assert -bound < _ramp_lag_frames(make(), speed) < bound


class _FrameCounting:
    """A control: a filter fed frame counts at a nominal 30 fps instead of the real timestamps."""

    def __init__(self, filt: Filter) -> None:
        self.filt, self.frames = filt, 0

    def __call__(self, value: np.ndarray, timestamp_s: float) -> np.ndarray:
        self.frames += 1
        return self.filt(value, self.frames * DT)

    def reset(self) -> None:
        self.frames = 0
        self.filt.reset()


def _timing_is_respected(make) -> bool:
    """On a noise-free ramp with irregular frame times (drops, 10-60 fps), a filter that uses the
    real dt has the steady error of a steady 30 fps stream, and that error does not wobble."""
    regular = np.arange(90) * DT
    irregular = np.cumsum(np.random.default_rng(3).uniform(1 / 60, 1 / 10, size=200))
    irregular = irregular[irregular < 3.0]
    lag_regular = _ramp_lag_px(make(), regular, noise=0.0)
    truth, measured = _ramp(300.0, irregular, noise=0.0)
    error = ((truth - _run(make(), measured, irregular)) @ DIRECTION)[irregular >= 2.0]
    same_lag = abs(error.mean() - lag_regular) <= 0.2 * abs(lag_regular) + 0.3
    return bool(same_lag and error.std() < 0.3)


@pytest.mark.parametrize("make", [*FILTERS, partial(OneEuroFilter, min_cutoff=1.0, beta=0.0)])
def test_uses_the_real_time_between_frames(make):
    assert _timing_is_respected(make)


@pytest.mark.parametrize(
    "bad, check",
    [
        (IdentityFilter, "jitter"),  # no smoothing at all
        (partial(KalmanFilter, process_noise=20_000.0), "jitter"),  # trusts every measurement
        (partial(OneEuroFilter, min_cutoff=0.01, beta=0.0), "lag"),  # a very slow low-pass
        (partial(OneEuroFilter, min_cutoff=1.0, beta=0.0), "lag"),  # the paper's start point
        (partial(KalmanFilter, process_noise=1.0), "lag"),  # thinks hands never accelerate
        (lambda: _FrameCounting(OneEuroFilter()), "timing"),
        (lambda: _FrameCounting(KalmanFilter()), "timing"),
    ],
)
def test_the_quality_checks_fail_for_a_badly_tuned_filter(bad, check):
    if check == "jitter":
        assert _jitter_reduction(bad()) < MIN_JITTER_REDUCTION
    elif check == "lag":
        assert _ramp_lag_frames(bad()) > MAX_LAG_FRAMES
    else:
        assert not _timing_is_respected(bad)


# -- robustness ---------------------------------------------------------------------------------

ALL_FILTERS = [OneEuroFilter, KalmanFilter, IdentityFilter]


@pytest.mark.parametrize("make", ALL_FILTERS)
def test_repeated_and_backwards_timestamps_stay_finite(make):
    filt = make()
    x = _landmarks()
    first = filt(x, 10.0)
    moved = filt(x + 5.0, 10.0 + DT)
    repeated = filt(x + 50.0, 10.0 + DT)  # dt == 0
    backwards = filt(x + 60.0, 9.0)  # dt < 0: the clock went back
    after = filt(x + 7.0, 9.0 + DT)  # next frame on the new clock
    for out in (first, moved, repeated, backwards, after):
        assert out.shape == x.shape and np.all(np.isfinite(out))
    if make is not IdentityFilter:
        np.testing.assert_array_equal(repeated, moved)  # a stale frame changes nothing
        np.testing.assert_array_equal(backwards, moved)
        assert np.all(np.abs(after - (x + 7.0)) < 10.0)  # resumed, not frozen or thrown off


@pytest.mark.parametrize("make", ALL_FILTERS)
def test_reset_forgets_state(make):
    filt = make()
    x = _landmarks()
    for i in range(20):
        filt(x + 30.0 * i, i * DT)
    y = _landmarks(seed=5)
    filt.reset()
    np.testing.assert_array_equal(filt(y, 0.0), y)  # first output after reset == input
    np.testing.assert_allclose(filt(y, DT), y, atol=1e-9)  # and no velocity left over


@pytest.mark.parametrize("make", ALL_FILTERS)
@pytest.mark.parametrize("shape", [(21, 3), (2, 21, 3), (3,), ()])
def test_preserves_shape(make, shape):
    filt = make()
    rng = np.random.default_rng(4)
    for i in range(5):
        value = rng.uniform(0.0, 640.0, size=shape)
        out = filt(value, i * DT)
        assert out.shape == shape and np.all(np.isfinite(out))


@pytest.mark.parametrize("make", FILTERS)
def test_a_new_shape_restarts_the_filter_and_outputs_are_copies(make):
    filt = make()
    x = _landmarks()
    x_before = x.copy()
    out = filt(x, 0.0)
    out += 1000.0  # the caller owns its output...
    np.testing.assert_allclose(filt(x, DT), x, atol=1e-9)  # ...so the state did not move
    np.testing.assert_array_equal(x, x_before)  # and the input is not modified
    two = np.stack([x, x + 100.0])
    np.testing.assert_array_equal(filt(two, 2 * DT), two)  # 1 hand -> 2 hands: restart
    np.testing.assert_allclose(filt(two, 3 * DT), two, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    make=st.sampled_from(FILTERS),
    steps=st.lists(
        st.tuples(
            st.floats(-0.1, 0.2, allow_nan=False),  # dt, zero and negative included
            st.floats(-1e4, 1e4, allow_nan=False),  # value offset, px
        ),
        min_size=1,
        max_size=30,
    ),
)
def test_any_timestamps_give_finite_output(make, steps):
    filt = make()
    t, base = 0.0, _landmarks()
    for dt, offset in steps:
        t += dt
        out = filt(base + offset, t)
        assert out.shape == base.shape and np.all(np.isfinite(out))


# -- registration -------------------------------------------------------------------------------


def test_registered_through_pluggy():
    pm = pluggy.PluginManager("handsdk")
    pm.add_hookspecs(hookspecs)
    pm.register(handsdk_filters, name="filters")
    registered: dict = {}
    pm.hook.handsdk_register_filters(
        register=lambda name, factory: registered.update({name: factory})
    )
    assert {"one_euro", "kalman", "none"} <= set(registered)

    one_euro = registered["one_euro"](min_cutoff=0.5, beta=0.01, d_cutoff=2.0)
    kalman = registered["kalman"](process_noise=300.0, measurement_noise=1.5)
    none = registered["none"]()
    assert (one_euro.min_cutoff, one_euro.beta, one_euro.d_cutoff) == (0.5, 0.01, 2.0)
    assert (kalman.process_noise, kalman.measurement_noise) == (300.0, 1.5)
    x = _landmarks()
    for filt in (one_euro, kalman, none):
        assert isinstance(filt, Filter)
        np.testing.assert_array_equal(filt(x, 0.0), x)
    with pytest.raises(TypeError):
        registered["one_euro"](no_such_option=1)


@pytest.mark.parametrize("make", FILTERS)
def test_a_subnormal_time_step_is_no_time_at_all(make):
    # found by the property test above: a 2e-309 s step overflowed the speed estimate to NaN
    filt, base = make(), _landmarks()
    filt(base, 0.0)
    np.testing.assert_array_equal(filt(base + 1.0, 2.2e-309), base)  # same instant: no update
    assert np.all(np.isfinite(filt(base, 0.125)))
