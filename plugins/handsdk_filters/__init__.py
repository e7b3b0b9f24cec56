"""First-party landmark filters: ``one_euro``, ``kalman`` and ``none``.

Both filters work elementwise on arrays of any shape (``(21, 3)`` landmarks, ``(2, 21, 3)``…),
in the units of the input (pixels for landmarks), use the real time between calls, and follow
:class:`handsdk.smoothing.Filter`. Shared conventions:

* the first call (and the first after :meth:`reset`) returns the input unchanged;
* a call whose timestamp does not advance (``dt <= 0``: a repeated frame, or the clock went
  backwards) returns the last output again and does not update the state; the filter re-syncs to
  the new timestamp, so the next frame gets a normal ``dt`` instead of freezing until the old
  clock is caught up;
* a value whose shape differs from the previous one (another number of hands) restarts the filter.

Outputs are new float64 arrays; the caller may modify them freely.
"""

from __future__ import annotations

import math

import numpy as np

from handsdk.config import number_option
from handsdk.hookspecs import Register, hookimpl
from handsdk.smoothing import IdentityFilter

__all__ = ["IdentityFilter", "KalmanFilter", "OneEuroFilter"]


@hookimpl
def handsdk_register_filters(register: Register) -> None:
    register("one_euro", OneEuroFilter)
    register("kalman", KalmanFilter)
    register("none", IdentityFilter)


#: Seconds below which two timestamps count as the same instant: a step of (sub)nanoseconds would
#: make the speed estimate overflow to inf/NaN. The tracker itself never spaces frames closer than
#: a microsecond.
MIN_DT = 1e-9


def _smoothing_factor(cutoff_hz: np.ndarray | float, dt: float) -> np.ndarray | float:
    """The exponential smoothing factor of a first-order low-pass at ``cutoff_hz`` over ``dt``."""
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """The One Euro filter (Casiez, Roussel & Vogel, CHI 2012), elementwise.

    A first-order low-pass whose cutoff rises with speed: ``cutoff = min_cutoff + beta * |dx/dt|``.
    Why: landmarks jitter by a pixel or two when the hand holds still, which a strong low-pass
    removes, but a strong low-pass lags a moving hand; the adaptive cutoff gives both.

    ``min_cutoff`` (Hz) sets the smoothing at rest, ``beta`` (Hz per px/s, since landmarks are in
    pixels) how fast the cutoff opens with speed, ``d_cutoff`` (Hz) the low-pass on the speed
    estimate. The derivative is taken against the previous *filtered* value, as in the paper.

    The defaults come from the smoothing study (``scripts/smoothing_study.py``, docs/smoothing.md:
    the tracker's own landmarks on synthetic clips with exact truth): the largest jitter cut whose
    mean lag stays within half a frame — there −96 % jitter at 0.25 frame mean lag.
    """

    def __init__(self, min_cutoff: float = 0.05, beta: float = 0.045, d_cutoff: float = 1.0) -> None:
        self.min_cutoff = number_option("one_euro", "min_cutoff", min_cutoff, 0.0, 1e6, lo_open=True)
        self.beta = number_option("one_euro", "beta", beta, 0.0, 1e6)
        self.d_cutoff = number_option("one_euro", "d_cutoff", d_cutoff, 0.0, 1e6, lo_open=True)
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None  # last output
        self._dx: np.ndarray | None = None  # last filtered speed, units per second
        self._t: float = 0.0

    def __call__(self, value: np.ndarray, timestamp_s: float) -> np.ndarray:
        x = np.array(value, dtype=np.float64)
        t = float(timestamp_s)
        if self._x is None or self._dx is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x, np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        if not dt > MIN_DT or not math.isfinite(dt):
            if math.isfinite(t):
                self._t = t
            return self._x.copy()
        a_d = _smoothing_factor(self.d_cutoff, dt)
        self._dx = self._dx + a_d * ((x - self._x) / dt - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        a = _smoothing_factor(cutoff, dt)
        self._x = self._x + a * (x - self._x)
        self._t = t
        return self._x.copy()


class KalmanFilter:
    """A constant-velocity Kalman filter, one independent ``[position, velocity]`` per element.

    Why: it models the motion, so it follows a hand moving at constant speed with no steady lag
    (unlike a low-pass), and its gain comes from the two noise levels rather than from cutoffs.

    ``process_noise`` is the standard deviation of the random acceleration, px/s²
    (discrete white-noise acceleration model, so ``Q`` scales with the real ``dt``);
    ``measurement_noise`` is the standard deviation of the landmark noise, px. All elements share
    the same 2x2 covariance (same noise, same dt), so it is kept once, not per element.

    The defaults come from the smoothing study (docs/smoothing.md), with the same rule as
    :class:`OneEuroFilter`: there −74 % jitter at 0.49 frame mean lag.
    """

    #: velocity uncertainty at the first frame, px/s: a hand can already be moving at this speed
    initial_speed_std = 1000.0

    def __init__(self, process_noise: float = 100.0, measurement_noise: float = 2.0) -> None:
        self.process_noise = number_option("kalman", "process_noise", process_noise, 0.0, 1e9, lo_open=True)
        self.measurement_noise = number_option("kalman", "measurement_noise", measurement_noise, 0.0, 1e9,
                                               lo_open=True)
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None  # position estimate = last output
        self._v: np.ndarray | None = None  # velocity estimate, units per second
        self._p = np.zeros((2, 2))  # shared covariance of [position, velocity]
        self._t: float = 0.0

    def __call__(self, value: np.ndarray, timestamp_s: float) -> np.ndarray:
        z = np.array(value, dtype=np.float64)
        t = float(timestamp_s)
        r = self.measurement_noise**2
        if self._x is None or self._v is None or self._x.shape != z.shape:
            self._x, self._v, self._t = z, np.zeros_like(z), t
            self._p = np.diag([r, self.initial_speed_std**2])
            return z.copy()
        dt = t - self._t
        if not dt > MIN_DT or not math.isfinite(dt):
            if math.isfinite(t):
                self._t = t
            return self._x.copy()
        # predict
        f = np.array([[1.0, dt], [0.0, 1.0]])
        g = np.array([[0.5 * dt * dt], [dt]])
        p = f @ self._p @ f.T + self.process_noise**2 * (g @ g.T)
        x = self._x + dt * self._v
        # update (H = [1, 0])
        s = p[0, 0] + r
        k0, k1 = p[0, 0] / s, p[1, 0] / s
        innovation = z - x
        self._x = x + k0 * innovation
        self._v = self._v + k1 * innovation
        kh = np.array([[k0, 0.0], [k1, 0.0]])
        p = (np.eye(2) - kh) @ p
        self._p = 0.5 * (p + p.T)
        self._t = t
        return self._x.copy()
