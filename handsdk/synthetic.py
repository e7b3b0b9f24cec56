"""Synthetic hands: an articulated 3-D hand drawn with numpy + OpenCV, with exact landmarks.

Why it exists: tests need images whose 21 landmarks are known exactly, the SDK ships a default
demo clip that must not depend on a camera or a download, and the landmark CNN gets a minority of
its training data from here. So the renders try to look like a photo of a hand (shaded skin
volumes, palm/back colour difference, nails, forearm, soft shadows, cluttered backgrounds, blur
and sensor noise) while staying cheap: a few milliseconds per image.

Model: a 21-joint kinematic chain (MediaPipe landmark order) with realistic bone lengths. Every
bone is a tapered capsule and the palm a rounded slab; they are rasterised into a small z-buffer
with per-pixel normals, then lit (wrapped Lambert + a little specular + depth-based ambient
occlusion). Projection is orthographic (weak perspective).

Coordinates: the canonical hand frame is camera-aligned, x right, y down (like an image), z away
from the camera. With yaw = pitch = roll = 0 the fingers point up (-y), the palm faces the
camera and, for a right hand, the thumb is on the +x side. A left hand is the mirror image (x
negated) of the right hand with the same parameters.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache

import cv2
import numpy as np

from .types import HAND_CONNECTIONS

__all__ = [
    "GESTURES",
    "JOINT_LIMITS",
    "HandPose",
    "SyntheticFrame",
    "hand_landmarks_3d",
    "random_background",
    "render_hand",
    "render_sample",
    "synthetic_clip",
]

_D = math.pi / 180.0

# --------------------------------------------------------------------------------------------
# Canonical right hand (units: hand length, wrist -> middle fingertip = 1). See module docstring.
# --------------------------------------------------------------------------------------------
_MCP = np.array(
    [
        [0.105, -0.478, 0.000],  # index
        [0.000, -0.500, 0.000],  # middle
        [-0.097, -0.480, 0.010],  # ring
        [-0.185, -0.430, 0.022],  # pinky
    ]
)
_FAN = np.array([6.0, 0.0, -5.0, -11.0]) * _D  # rest direction, + = toward the thumb
_PHALANX = np.array(  # proximal, middle, distal (MCP->PIP, PIP->DIP, DIP->TIP)
    [
        [0.215, 0.130, 0.100],
        [0.240, 0.150, 0.110],
        [0.225, 0.145, 0.105],
        [0.172, 0.105, 0.095],
    ]
)
_FRAD = np.array(  # capsule radius at MCP, PIP, DIP, tip
    [
        [0.058, 0.053, 0.047, 0.039],
        [0.060, 0.055, 0.049, 0.040],
        [0.057, 0.052, 0.046, 0.038],
        [0.051, 0.046, 0.041, 0.034],
    ]
)
_THUMB_CMC = np.array([0.110, -0.130, 0.000])
_THUMB_LEN = np.array([0.215, 0.170, 0.140])  # CMC->MCP, MCP->IP, IP->TIP
_THUMB_RAD = np.array([0.072, 0.062, 0.056, 0.046])
_THUMB_ALPHA0 = 42.0 * _D  # rest angle of the thumb metacarpal off the finger axis, in the palm
_THUMB_BETA = 55.0 * _D  # how far the thumb's flexion plane is turned toward the fingers
_PALM_T = 0.062  # half thickness of the palm slab

#: Natural joint limits in radians (per finger for the four long fingers).
JOINT_LIMITS: dict[str, tuple[float, float]] = {
    "mcp_flex": (-25 * _D, 95 * _D),
    "mcp_abd": (-15 * _D, 25 * _D),
    "pip_flex": (-5 * _D, 115 * _D),
    "dip_flex": (-10 * _D, 90 * _D),
    "thumb_cmc_flex": (-35 * _D, 70 * _D),
    "thumb_cmc_abd": (-10 * _D, 70 * _D),
    "thumb_mcp_flex": (-10 * _D, 70 * _D),
    "thumb_ip_flex": (-20 * _D, 85 * _D),
    "wrist_flex": (-60 * _D, 60 * _D),
    "wrist_dev": (-25 * _D, 25 * _D),
}

_FINGER_FIELDS = ("mcp_flex", "mcp_abd", "pip_flex", "dip_flex")
_SCALAR_FIELDS = (
    "thumb_cmc_flex",
    "thumb_cmc_abd",
    "thumb_mcp_flex",
    "thumb_ip_flex",
    "yaw",
    "pitch",
    "roll",
    "wrist_flex",
    "wrist_dev",
)


def _zeros4() -> np.ndarray:
    return np.zeros(4)


@dataclass
class HandPose:
    """Joint angles (radians) of one hand plus its global orientation.

    Finger arrays are ordered index, middle, ring, pinky. ``mcp_abd`` is the spread away from the
    middle finger (for the middle finger itself: toward the thumb). Flexion bends toward the palm.
    Thumb: ``thumb_cmc_flex`` swings the metacarpal across the palm toward the fingers,
    ``thumb_cmc_abd`` lifts it out of the palm plane (palmar abduction), then MCP and IP flexion.
    ``yaw`` (about the vertical axis, pi shows the back of the hand), ``pitch`` (fingertips toward
    / away from the camera) and ``roll`` (in-plane, clockwise on screen) orient the whole hand;
    ``wrist_flex`` / ``wrist_dev`` only bend the drawn forearm. ``handedness`` is "left" or
    "right": a left hand is the exact mirror image of the right one.
    """

    mcp_flex: np.ndarray = field(default_factory=_zeros4)
    mcp_abd: np.ndarray = field(default_factory=_zeros4)
    pip_flex: np.ndarray = field(default_factory=_zeros4)
    dip_flex: np.ndarray = field(default_factory=_zeros4)
    thumb_cmc_flex: float = 0.0
    thumb_cmc_abd: float = 0.0
    thumb_mcp_flex: float = 0.0
    thumb_ip_flex: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    wrist_flex: float = 0.0
    wrist_dev: float = 0.0
    handedness: str = "right"

    def __post_init__(self) -> None:
        for name in _FINGER_FIELDS:
            arr = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if arr.size == 1:
                arr = np.repeat(arr, 4)
            if arr.shape != (4,):
                raise ValueError(f"{name} needs 4 values (index, middle, ring, pinky)")
            setattr(self, name, arr.copy())
        for name in _SCALAR_FIELDS:
            setattr(self, name, float(getattr(self, name)))
        if self.handedness not in ("left", "right"):
            raise ValueError(f"handedness must be 'left' or 'right', not {self.handedness!r}")

    # -- vector form, used for interpolation ---------------------------------------------------
    def to_vector(self) -> np.ndarray:
        """All angles as one flat vector (25,) so poses can be blended and compared."""
        return np.concatenate(
            [getattr(self, n) for n in _FINGER_FIELDS]
            + [[getattr(self, n) for n in _SCALAR_FIELDS]]
        )

    @classmethod
    def from_vector(cls, vec: np.ndarray, handedness: str = "right") -> HandPose:
        """Inverse of :meth:`to_vector`."""
        v = np.asarray(vec, np.float64)
        kw: dict = {n: v[4 * i : 4 * i + 4] for i, n in enumerate(_FINGER_FIELDS)}
        kw.update({n: v[16 + i] for i, n in enumerate(_SCALAR_FIELDS)})
        return cls(**kw, handedness=handedness)

    def lerp(self, other: HandPose, t: float) -> HandPose:
        """Blend toward ``other`` (t = 0 -> self, 1 -> other); keeps this pose's handedness."""
        return HandPose.from_vector(
            (1.0 - t) * self.to_vector() + t * other.to_vector(), self.handedness
        )

    def clipped(self) -> HandPose:
        """The same pose with every joint clamped to :data:`JOINT_LIMITS`."""
        kw = {}
        for name, (lo, hi) in JOINT_LIMITS.items():
            kw[name] = np.clip(getattr(self, name), lo, hi)
        return replace(self, **kw)

    def with_rotation(self, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> HandPose:
        """Copy with a different global orientation (radians)."""
        return replace(self, yaw=yaw, pitch=pitch, roll=roll)

    def mirrored(self) -> HandPose:
        """The other hand in the same pose (its geometry is this one's mirror image)."""
        return replace(self, handedness="left" if self.handedness == "right" else "right")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HandPose):
            return NotImplemented
        return self.handedness == other.handedness and np.array_equal(
            self.to_vector(), other.to_vector()
        )

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def random(cls, rng: np.random.Generator) -> HandPose:
        """A random natural pose: coupled per-finger curls within the joint limits, any view.

        Orientation: yaw covers palm and back views, pitch up to +-60 degrees, roll the full
        circle. Handedness is a coin flip.
        """
        kind = rng.random()
        if kind < 0.2:  # a named gesture, jittered: keeps common shapes well represented
            name = _GESTURE_NAMES[int(rng.integers(len(_GESTURE_NAMES)))]
            base = cls.gesture(name)
            vec = base.to_vector()
            vec[:20] += rng.normal(0.0, 6 * _D, 20)
            vec[16:20] += rng.normal(0.0, 4 * _D, 4)
            pose = cls.from_vector(vec)
        else:
            curl = np.empty(4)
            for i in range(4):
                r = rng.random()
                curl[i] = (
                    rng.uniform(0.0, 0.15)
                    if r < 0.4
                    else rng.uniform(0.8, 1.0)
                    if r < 0.7
                    else rng.uniform(0.0, 1.0)
                )
            # the ring finger is tied to its neighbours (shared tendons)
            curl[2] = 0.55 * curl[2] + 0.25 * curl[1] + 0.2 * curl[3]
            mcp = curl * 88 * _D + rng.normal(0, 8 * _D, 4)
            pip = curl * 100 * _D + rng.normal(0, 10 * _D, 4)
            dip = 0.65 * pip + rng.normal(0, 8 * _D, 4)
            if rng.random() < 0.15:  # claw / hook: PIP bent, MCP straight
                mcp *= rng.uniform(0.0, 0.4)
            spread = rng.uniform(-3, 20) * _D * (1.0 - 0.8 * curl) + rng.normal(0, 3 * _D, 4)
            tcurl = rng.random()
            pose = cls(
                mcp_flex=mcp,
                mcp_abd=spread,
                pip_flex=pip,
                dip_flex=dip,
                thumb_cmc_flex=(-20 + 70 * tcurl) * _D + rng.normal(0, 8 * _D),
                thumb_cmc_abd=rng.uniform(0, 55) * _D,
                thumb_mcp_flex=(5 + 45 * tcurl) * _D + rng.normal(0, 8 * _D),
                thumb_ip_flex=rng.uniform(-10, 70) * _D * (0.4 + 0.6 * tcurl),
            )
        pose.yaw = float(rng.uniform(-math.pi, math.pi))
        pose.pitch = float(rng.uniform(-60, 60) * _D)
        pose.roll = float(rng.uniform(-math.pi, math.pi))
        pose.wrist_flex = float(rng.uniform(-40, 40) * _D)
        pose.wrist_dev = float(rng.uniform(-20, 20) * _D)
        pose.handedness = "left" if rng.random() < 0.5 else "right"
        return pose.clipped()

    @classmethod
    def gesture(cls, name: str, handedness: str = "right") -> HandPose:
        """A named pose, palm toward the camera (thumb_up/thumb_down/asl_* turned to be readable).

        Names: see :data:`GESTURES` (case-insensitive; MediaPipe spellings such as
        "Closed_Fist", "Pointing_Up", "ILoveYou" are accepted too).
        """
        key = name.strip().lower().replace("-", "_").replace(" ", "_")
        key = _GESTURE_ALIASES.get(key, key)
        if key not in _GESTURE_TABLE:
            raise KeyError(f"unknown gesture {name!r}; known: {', '.join(GESTURES)}")
        vec = _gesture_vector(key)
        return cls.from_vector(vec, handedness)


# finger states: (mcp, pip, dip) flexion in degrees
_F = {
    "ext": (4, 4, 2),
    "curl": (88, 102, 62),
    "loose": (40, 55, 30),
    "relax": (18, 25, 12),
    "hook": (12, 95, 65),
    "bent": (80, 8, 4),
    "c": (30, 40, 25),
    "pinch": (50, 70, 35),
    "tuck": (62, 88, 45),
}
# thumb states: (cmc_flex, cmc_abd, mcp, ip) in degrees
_T = {
    "out": (-18, 12, 4, 4),
    "relax": (0, 22, 10, 10),
    "across": (42, 30, 38, 30),  # folded over the curled fingers (fist)
    "side": (12, 0, 8, 4),  # against the side of the index finger (ASL A)
    "palm": (62, 18, 40, 30),  # tucked across the palm (ASL B, four)
    "up": (-30, 10, 0, 0),
    "c": (5, 45, 15, 15),
}

# name -> (finger states, spread deg, thumb state, (yaw, pitch, roll) deg, thumb-to-finger solve)
_GESTURE_TABLE: dict[str, tuple] = {
    "open_palm": (("ext",) * 4, 11, "out", (0, 0, 0), None),
    "fist": (("curl",) * 4, 0, "across", (0, 0, 0), None),
    "point_up": (("ext", "curl", "curl", "curl"), 0, "across", (0, 0, 0), None),
    "victory": (("ext", "ext", "curl", "curl"), 12, "across", (0, 0, 0), None),
    "thumb_up": (("curl",) * 4, 0, "up", (15, 48, -106), None),
    "thumb_down": (("curl",) * 4, 0, "up", (15, 48, 74), None),
    "ilove_you": (("ext", "curl", "curl", "ext"), 10, "out", (0, 0, 0), None),
    "pinch": (("pinch", "relax", "relax", "relax"), 4, "relax", (30, 0, 0), 0),
    "ok": (("pinch", "ext", "ext", "ext"), 10, "relax", (30, 0, 0), 0),
    "call_me": (("curl", "curl", "curl", "ext"), 5, "out", (0, 0, -25), None),
    "rock": (("ext", "curl", "curl", "ext"), 10, "across", (0, 0, 0), None),
    "three": (("ext", "ext", "ext", "curl"), 10, "across", (0, 0, 0), None),
    "four": (("ext",) * 4, 10, "palm", (0, 0, 0), None),
    "asl_a": (("curl",) * 4, 0, "side", (0, 0, 0), None),
    "asl_b": (("ext",) * 4, -3, "palm", (0, 0, 0), None),
    "asl_c": (("c",) * 4, -2, "c", (-70, 0, 0), None),
    "asl_d": (("ext", "tuck", "tuck", "tuck"), 0, "relax", (0, 0, 0), 1),
    "asl_e": (("hook",) * 4, 0, "palm", (0, 0, 0), None),
    "asl_i": (("curl", "curl", "curl", "ext"), 0, "across", (0, 0, 0), None),
    "asl_l": (("ext", "curl", "curl", "curl"), 0, "out", (0, 0, 0), None),
    "asl_o": (("loose", "loose", "loose", "loose"), 0, "relax", (60, 0, 0), 0),
    "asl_v": (("ext", "ext", "curl", "curl"), 12, "across", (0, 0, 0), None),
    "asl_w": (("ext", "ext", "ext", "curl"), 9, "across", (0, 0, 0), None),
    "asl_y": (("curl", "curl", "curl", "ext"), 5, "out", (0, 0, 0), None),
}
_GESTURE_ALIASES = {
    "closed_fist": "fist",
    "pointing_up": "point_up",
    "thumbs_up": "thumb_up",
    "thumbs_down": "thumb_down",
    "iloveyou": "ilove_you",
    "i_love_you": "ilove_you",
    "open_hand": "open_palm",
    "peace": "victory",
    "l": "asl_l",
    "y": "asl_y",
}
#: Names accepted by :meth:`HandPose.gesture`.
GESTURES: tuple[str, ...] = tuple(_GESTURE_TABLE)
_GESTURE_NAMES = GESTURES


@cache
def _gesture_vector_cached(key: str) -> tuple[float, ...]:
    fstates, spread, tstate, rot, solve = _GESTURE_TABLE[key]
    f = np.array([_F[s] for s in fstates], np.float64) * _D
    t = np.array(_T[tstate], np.float64) * _D
    pose = HandPose(
        mcp_flex=f[:, 0],
        mcp_abd=np.full(4, spread * _D),
        pip_flex=f[:, 1],
        dip_flex=f[:, 2],
        thumb_cmc_flex=t[0],
        thumb_cmc_abd=t[1],
        thumb_mcp_flex=t[2],
        thumb_ip_flex=t[3],
    )
    if key in ("asl_l", "ilove_you", "call_me", "asl_y"):
        pose.thumb_cmc_flex = -30 * _D  # thumb sticks out sideways
    if solve is not None:
        pose = _solve_thumb_to_finger(pose, solve)
    pose.yaw, pose.pitch, pose.roll = (a * _D for a in rot)
    return tuple(pose.to_vector())


def _gesture_vector(key: str) -> np.ndarray:
    return np.array(_gesture_vector_cached(key))


def _solve_thumb_to_finger(pose: HandPose, finger: int) -> HandPose:
    """Adjust the thumb so its tip touches the tip of ``finger`` (0 = index): pinch, OK, O, D.

    Gauss-Newton on (CMC flexion, CMC abduction, a common MCP/IP curl), within the limits.
    """
    target_idx = 8 + 4 * finger
    names = ("thumb_cmc_flex", "thumb_cmc_abd", "thumb_mcp_flex", "thumb_ip_flex")
    lo = np.array([JOINT_LIMITS[n][0] for n in names])
    hi = np.array([JOINT_LIMITS[n][1] for n in names])
    base = np.array([getattr(pose, n) for n in names])

    def angles(x: np.ndarray) -> np.ndarray:
        return np.clip(base + np.array([x[0], x[1], x[2], x[2]]), lo, hi)

    def err(x: np.ndarray) -> np.ndarray:
        p = replace(pose, **dict(zip(names, angles(x), strict=True)))
        j = _skeleton(p)[0]
        d = j[4] - j[target_idx]
        return d - 0.035 * d / (np.linalg.norm(d) + 1e-9)  # pads touch: tips ~ 1 radius apart

    xlo = np.array([lo[0] - base[0], lo[1] - base[1], max(lo[2] - base[2], lo[3] - base[3])])
    xhi = np.array([hi[0] - base[0], hi[1] - base[1], min(hi[2] - base[2], hi[3] - base[3])])
    # coarse grid for a start point, then damped Gauss-Newton
    grid = np.stack(np.meshgrid(*[np.linspace(a, b, 5) for a, b in zip(xlo, xhi, strict=True)]), -1)
    x = min(grid.reshape(-1, 3), key=lambda g: float(np.linalg.norm(err(g))))
    for _ in range(30):
        e = err(x)
        if np.linalg.norm(e) < 1e-4:
            break
        jac = np.empty((3, 3))
        for k in range(3):
            dx = np.zeros(3)
            dx[k] = 1e-4
            jac[:, k] = (err(x + dx) - e) / 1e-4
        step = np.linalg.solve(jac.T @ jac + 1e-3 * np.eye(3), -jac.T @ e)
        step *= min(1.0, 0.15 / (np.abs(step).max() + 1e-12))
        x = np.clip(x + step, xlo, xhi)
    return replace(pose, **dict(zip(names, angles(x), strict=True)))


# --------------------------------------------------------------------------------------------
# Kinematics
# --------------------------------------------------------------------------------------------
def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3-vector cross product (np.cross is ~20x slower on single vectors)."""
    return np.array(
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    )


def _rot_pair(u: np.ndarray, v: np.ndarray, ang: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate the orthonormal pair (u, v) in their plane so that u turns toward v by ``ang``."""
    c, s = math.cos(ang), math.sin(ang)
    return u * c + v * s, v * c - u * s


def _skeleton(pose: HandPose) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canonical right-hand joints (21, 3) before the global rotation.

    Also returns, per landmark j, the dorsal (back-of-hand) unit vector of the bone that ends at
    j (21, 3), and the direction of each distal phalanx (5, 3) (thumb first).
    """
    joints = np.zeros((21, 3))
    dorsal = np.zeros((21, 3))
    dorsal[:] = (0.0, 0.0, 1.0)
    tipdir = np.zeros((5, 3))
    zb = np.array([0.0, 0.0, -1.0])
    for i in range(4):
        fan = _FAN[i]
        f = np.array([math.sin(fan), -math.cos(fan), 0.0])
        b = zb
        lat = _cross(f, b)  # toward the thumb
        sign = 1.0 if i < 2 else -1.0
        f, lat = _rot_pair(f, lat, sign * pose.mcp_abd[i])
        base = 5 + 4 * i
        p = _MCP[i]
        joints[base] = p
        for k, ang in enumerate((pose.mcp_flex[i], pose.pip_flex[i], pose.dip_flex[i])):
            f, b = _rot_pair(f, b, ang)
            p = p + _PHALANX[i, k] * f
            joints[base + 1 + k] = p
            dorsal[base + 1 + k] = -b
        tipdir[1 + i] = f
    # thumb
    a0 = _THUMB_ALPHA0
    f = np.array([math.sin(a0), -math.cos(a0), 0.0])
    q = np.array([-math.cos(a0), -math.sin(a0), 0.0])  # in the palm, toward the fingers
    z = zb
    f, q = _rot_pair(f, q, pose.thumb_cmc_flex)
    f, z = _rot_pair(f, z, pose.thumb_cmc_abd)
    b = math.cos(_THUMB_BETA) * z + math.sin(_THUMB_BETA) * q
    p = _THUMB_CMC.copy()
    joints[1] = p
    p = p + _THUMB_LEN[0] * f
    joints[2] = p
    dorsal[2] = -b
    for k, ang in enumerate((pose.thumb_mcp_flex, pose.thumb_ip_flex)):
        f, b = _rot_pair(f, b, ang)
        p = p + _THUMB_LEN[1 + k] * f
        joints[3 + k] = p
        dorsal[3 + k] = -b
    tipdir[0] = f
    return joints, dorsal, tipdir


def _rotation(pose: HandPose) -> np.ndarray:
    """Global rotation R = Rz(roll) @ Rx(pitch) @ Ry(yaw) (image axes, y down)."""
    cy, sy = math.cos(pose.yaw), math.sin(pose.yaw)
    cp, sp = math.cos(pose.pitch), math.sin(pose.pitch)
    cr, sr = math.cos(pose.roll), math.sin(pose.roll)
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    rz = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return rz @ rx @ ry


def _apply(pose: HandPose, pts: np.ndarray) -> np.ndarray:
    out = pts @ _rotation(pose).T
    if pose.handedness == "left":
        out[..., 0] *= -1.0
    return out


def hand_landmarks_3d(pose: HandPose) -> np.ndarray:
    """The 21 landmarks (21, 3) of ``pose`` in the canonical camera-aligned frame.

    Wrist at the origin, hand length (wrist -> middle tip, fingers straight) 1; the global
    rotation and handedness are applied. Exact ground truth for tests: no noise.
    """
    return _apply(pose, _skeleton(pose)[0])


# --------------------------------------------------------------------------------------------
# Full render model: landmarks + the extra points, capsules and slabs that give the volumes
# --------------------------------------------------------------------------------------------
_SKIN, _NAIL, _SLEEVE = 1, 2, 3


@dataclass
class _Capsule:
    a: int
    b: int
    ra: float
    rb: float
    dorsal: np.ndarray
    mat: int = _SKIN
    nail: bool = False
    crease: tuple[float, float] = (0.0, 0.0)  # skin crease strength at the start / end joint


@dataclass
class _Slab:
    poly: list[int]
    plane: tuple[int, int, int]
    offset: float  # face offset from the polygon along its normal (= edge capsule radius)
    dorsal: np.ndarray
    bulge: float = 0.0  # height of a smooth elliptic dome on the face
    dome: tuple[int, int, int] | None = None  # dome centre, end of its u semi-axis, of its v one


@dataclass
class _Model:
    pts: np.ndarray  # (N, 3), first 21 are the landmarks
    caps: list[_Capsule]
    slabs: list[_Slab]
    cap_ab: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.intp))  # end points
    cap_r: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # radii at the ends
    cap_dorsal: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    cap_nail: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    cap_mat: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    cap_crease: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    arms: list[tuple[int, int, float]] = field(default_factory=list)  # forearm/sleeve (a, b, r)


# the palm's mid-surface outline; the drawn palm is this polygon swept by a sphere of radius
# _PALM_T (flat faces + rounded edges), so it keeps its thickness when seen edge-on
_PALM_POLY = np.array(
    [
        [0.060, -0.010, 0.012],
        [0.105, -0.455, 0.012],
        [0.000, -0.480, 0.012],
        [-0.097, -0.460, 0.012],
        [-0.180, -0.405, 0.012],
        [-0.185, -0.230, 0.012],
        [-0.100, -0.010, 0.012],
    ]
)


def _build_model(pose: HandPose, forearm: bool = True, sleeve: float | None = None) -> _Model:
    joints, dorsal_j, tipdir = _skeleton(pose)
    pts = list(joints)
    arms: list[tuple[int, int, float]] = []

    def add(p: np.ndarray) -> int:
        pts.append(np.asarray(p, np.float64))
        return len(pts) - 1

    up = np.array([0.0, 0.0, 1.0])
    caps: list[_Capsule] = []
    # forearm and wrist
    if forearm:
        d = np.array([0.0, 1.0, 0.0])
        d, zz = _rot_pair(d, up, pose.wrist_flex)
        d = np.array(
            [
                d[0] * math.cos(pose.wrist_dev) - d[1] * math.sin(pose.wrist_dev),
                d[0] * math.sin(pose.wrist_dev) + d[1] * math.cos(pose.wrist_dev),
                d[2],
            ]
        )
        s = add([0.0, 0.10, 0.015])
        e = add(pts[s] + 2.5 * d)
        caps.append(_Capsule(s, e, 0.105, 0.2, zz))
        arms = [(s, e, 0.2)]
        if sleeve is not None:
            s2 = add(pts[s] + sleeve * d)
            caps.append(_Capsule(s2, e, 0.15, 0.25, zz, mat=_SLEEVE))
            arms.append((s2, e, 0.25))
    # fingers
    for i in range(4):
        base = 5 + 4 * i
        for k in range(3):
            a, b = base + k, base + k + 1
            ra, rb = _FRAD[i, k], _FRAD[i, k + 1]
            if k == 2:  # the capsule's cap ends exactly at the fingertip landmark
                b = add(joints[b] - rb * tipdir[1 + i])
            crease = ((0.0, 1.0), (1.0, 1.0), (1.0, 0.0))[k]  # flexion creases at PIP and DIP
            caps.append(
                _Capsule(a, b, ra, rb, dorsal_j[base + k + 1], nail=(k == 2), crease=crease)
            )
    # thumb, and the thenar mound that joins its metacarpal to the palm
    caps.append(_Capsule(1, 2, _THUMB_RAD[0], _THUMB_RAD[1], dorsal_j[2]))
    caps.append(_Capsule(2, 3, _THUMB_RAD[1], _THUMB_RAD[2], dorsal_j[3], crease=(1.0, 1.0)))
    tb = add(joints[4] - _THUMB_RAD[3] * tipdir[0])
    caps.append(
        _Capsule(3, tb, _THUMB_RAD[2], _THUMB_RAD[3], dorsal_j[4], nail=True, crease=(1.0, 0.0))
    )
    th0 = add([0.035, -0.06, -0.012])
    th1 = add(joints[1] + 0.55 * (joints[2] - joints[1]) + [0.0, 0.0, -0.01])
    caps.append(_Capsule(th0, th1, 0.078, 0.068, dorsal_j[2]))

    # palm: a rounded slab (flat faces + a capsule along every edge)
    poly = [add(p) for p in _PALM_POLY]
    for a, b in zip(poly, poly[1:] + poly[:1], strict=True):
        caps.append(_Capsule(a, b, _PALM_T, _PALM_T, up))
    dome = (add([-0.04, -0.25, 0.012]), add([0.10, -0.25, 0.012]), add([-0.04, -0.46, 0.012]))
    slabs = [_Slab(poly, (poly[0], poly[1], poly[4]), _PALM_T, up, 0.02, dome)]
    # thumb web: between the thumb metacarpal and the index finger base
    mid = 0.5 * (joints[2] + joints[5])
    web = add(mid + 0.4 * (joints[1] - mid))
    inner = add([0.08, -0.30, 0.0])
    webn = _cross(joints[2] - joints[1], joints[5] - joints[1])
    webn = webn / (np.linalg.norm(webn) + 1e-9)
    if webn[2] < 0:
        webn = -webn
    slabs.append(_Slab([1, 2, web, 5, inner], (1, 2, 5), 0.02, webn))

    # global rotation / mirror on every point and direction
    arr = _apply(pose, np.array(pts))
    vecs = _apply(pose, np.array([c.dorsal for c in caps] + [sl.dorsal for sl in slabs]))
    for c, v in zip(caps, vecs, strict=False):
        c.dorsal = v
    for sl, v in zip(slabs, vecs[len(caps) :], strict=True):
        sl.dorsal = v
    return _Model(
        arr,
        caps,
        slabs,
        np.array([(c.a, c.b) for c in caps], np.intp),
        np.array([(c.ra, c.rb) for c in caps]),
        vecs[: len(caps)],
        np.array([c.nail for c in caps]),
        np.array([c.mat for c in caps], np.uint8),
        np.array([c.crease for c in caps]),
        arms,
    )


# --------------------------------------------------------------------------------------------
# Rasteriser
# --------------------------------------------------------------------------------------------
class _Raster:
    """z-buffer + id of the winning primitive over one rectangle of the image.

    ids: -1 nothing, k >= 0 capsule k, -2 - j slab j (its shading parameters in ``slabs``).
    """

    def __init__(self, x0: int, y0: int, x1: int, y1: int) -> None:
        self.x0, self.y0, self.x1, self.y1 = x0, y0, x1, y1
        h, w = y1 - y0, x1 - x0
        self.z = np.full((h, w), np.inf, np.float32)
        self.cid = np.full((h, w), -1, np.int16)
        self.slabs: list[tuple] = []
        self.xs = np.arange(x0, x1, dtype=np.float32)  # pixel centres
        self.ys = np.arange(y0, y1, dtype=np.float32)

    def window(
        self, x0: float, y0: float, x1: float, y1: float
    ) -> tuple[int, int, int, int] | None:
        """Clip an image-space box to this raster; returns buffer-local (x0, y0, x1, y1)."""
        a = max(int(math.floor(x0)), self.x0) - self.x0
        b = max(int(math.floor(y0)), self.y0) - self.y0
        c = min(int(math.ceil(x1)) + 1, self.x1) - self.x0
        d = min(int(math.ceil(y1)) + 1, self.y1) - self.y0
        if c <= a or d <= b:
            return None
        return a, b, c, d


def _draw_capsule(r: _Raster, k: int, a: np.ndarray, b: np.ndarray, ra: float, rb: float) -> None:
    """z-test one tapered capsule (sphere-swept segment, orthographic); records depth and id.

    Normals and materials are filled in later for the winning pixels only (_resolve). Pixels
    outside the capsule get NaN depth (sqrt of a negative), which fails the z-test by itself;
    the caller silences the warning.
    """
    rm = max(ra, rb)
    win = r.window(
        min(a[0], b[0]) - rm, min(a[1], b[1]) - rm, max(a[0], b[0]) + rm, max(a[1], b[1]) + rm
    )
    if win is None:
        return
    x0, y0, x1, y1 = win
    length = math.hypot(b[0] - a[0], b[1] - a[1])
    if length > 6.0 * rm and (x1 - x0) * (y1 - y0) > 3.0 * (length + 2 * rm) * 2 * rm:
        # long and diagonal: two halves have much tighter boxes
        m = 0.5 * (a + b)
        rmid = 0.5 * (ra + rb)
        _draw_capsule(r, k, a, m, ra, rmid)
        _draw_capsule(r, k, m, b, rmid, rb)
        return
    xs = r.xs[x0:x1] - np.float32(a[0])
    ys = r.ys[y0:y1] - np.float32(a[1])
    vx, vy, vz = float(b[0] - a[0]), float(b[1] - a[1]), float(b[2] - a[2])
    q = max(vx * vx + vy * vy, 1e-6)
    t = (xs * np.float32(vx / q))[None, :] + (ys * np.float32(vy / q))[:, None]
    if abs(vz) * 0.5 * (ra + rb) > 0.3 * q:  # shifts the visible point by > 0.3 px
        # an axis tilted in depth: the visible point of the swept sphere lies nearer the close
        # end than the pixel's 2-D projection onto the axis (exact for a constant radius)
        corr = (xs * xs)[None, :] + (ys * ys)[:, None]
        corr -= t * t * np.float32(q)  # squared distance to the axis line
        np.subtract(np.float32((0.5 * (ra + rb)) ** 2), corr, out=corr)
        np.maximum(corr, 0.0, out=corr)
        np.sqrt(corr, out=corr)
        corr *= np.float32(vz / math.sqrt(q * (q + vz * vz)))
        t -= corr
    np.maximum(t, 0.0, out=t)
    np.minimum(t, 1.0, out=t)
    cx = xs[None, :] - t * np.float32(vx)
    cy = ys[:, None] - t * np.float32(vy)
    cx *= cx
    cy *= cy
    cx += cy  # squared distance to the axis
    if ra != rb:
        rad = t * np.float32(rb - ra)
        rad += np.float32(ra)
        rad *= rad
        rad -= cx
    else:
        rad = np.float32(ra * ra) - cx
    np.sqrt(rad, out=rad)  # NaN outside
    z = t * np.float32(b[2] - a[2])
    z += np.float32(a[2])
    z -= rad
    zs = r.z[y0:y1, x0:x1]
    upd = z < zs
    np.copyto(zs, z, where=upd)
    np.copyto(r.cid[y0:y1, x0:x1], np.int16(k), where=upd)


def _draw_slab(r: _Raster, P: np.ndarray, slab: _Slab, size: float) -> None:
    """z-test the camera-facing face of a polygon offset by ``slab.offset`` along its normal
    (with the edge capsules this makes a sphere-swept polygon), optionally with a smooth dome."""
    p0, p1, p2 = (P[i] for i in slab.plane)
    n = _cross(p1 - p0, p2 - p0)
    n = n / (np.linalg.norm(n) + 1e-12)
    if n[2] > 0:
        n = -n  # the face we see is the one whose normal points at the camera (-z)
    if n[2] > -0.05:
        return  # edge-on: the edge capsules draw it
    shift = n * (slab.offset * size)
    poly = P[slab.poly, :2] + shift[:2]
    lo = poly.min(0)
    hi = poly.max(0)
    win = r.window(lo[0], lo[1], hi[0], hi[1])
    if win is None:
        return
    x0, y0, x1, y1 = win
    h, w = y1 - y0, x1 - x0
    mask = np.zeros((h, w), np.uint8)
    off = np.array([x0 + r.x0, y0 + r.y0])
    cv2.fillPoly(mask, [np.round((poly - off) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    gx, gy = -n[0] / n[2], -n[1] / n[2]
    c = p0 + shift
    xs = (np.arange(x0 + r.x0, x1 + r.x0, dtype=np.float32) - np.float32(c[0]))[None, :]
    ys = (np.arange(y0 + r.y0, y1 + r.y0, dtype=np.float32) - np.float32(c[1]))[:, None]
    z = np.float32(c[2]) + xs * np.float32(gx) + ys * np.float32(gy)
    dome = None
    if slab.bulge > 0 and slab.dome is not None:
        # dome over an ellipse in the slab's plane: d = B (1 - s^2)^2, s^2 = u^2 + v^2 with
        # (u, v) affine in the pixel coordinates (the face is a plane)
        dc, du, dv = (P[i] + shift for i in slab.dome)
        eu, ev = du - dc, dv - dc
        ku = np.array([eu[0] + gx * eu[2], eu[1] + gy * eu[2]]) / float(eu @ eu)
        kv = np.array([ev[0] + gx * ev[2], ev[1] + gy * ev[2]]) / float(ev @ ev)
        dome = (dc[0], dc[1], ku, kv, slab.bulge * size)
        q = _dome_q(xs + np.float32(c[0]), ys + np.float32(c[1]), dome)
        z -= np.float32(dome[4]) * q * q
    zs = r.z[y0:y1, x0:x1]
    upd = (mask > 0) & (z < zs)
    np.copyto(zs, z, where=upd)
    np.copyto(r.cid[y0:y1, x0:x1], np.int16(-2 - len(r.slabs)), where=upd)
    side = float(np.clip(np.dot(n, slab.dorsal) * 3.0, -1.0, 1.0))
    r.slabs.append((gx, gy, dome, side))


def _dome_q(x: np.ndarray, y: np.ndarray, dome: tuple) -> np.ndarray:
    dx, dy, ku, kv, _ = dome
    xr, yr = x - np.float32(dx), y - np.float32(dy)
    u = xr * np.float32(ku[0]) + yr * np.float32(ku[1])
    v = xr * np.float32(kv[0]) + yr * np.float32(kv[1])
    return np.maximum(1.0 - (u * u + v * v), 0.0)


def _resolve(r: _Raster, P: np.ndarray, model: _Model, size: float) -> tuple[np.ndarray, ...]:
    """Normals, back/palm side and material of every covered pixel, in vector passes.

    Returns (flat index into the raster, nx, ny, nz, side, material, crease shading), each
    (N,): "crease" multiplies the shading (flexion creases at finger joints, palm lines).
    """
    cid = r.cid.reshape(-1)
    idx = np.flatnonzero(cid != -1)
    ids = cid[idx]
    n = idx.size
    nx = np.zeros(n, np.float32)
    ny = np.zeros(n, np.float32)
    nz = np.full(n, -1.0, np.float32)
    side = np.zeros(n, np.float32)
    mat = np.full(n, _SKIN, np.uint8)
    crease = np.ones(n, np.float32)
    ww = r.x1 - r.x0
    qy, qx = np.divmod(idx, ww)
    px = qx.astype(np.float32) + np.float32(r.x0)
    py = qy.astype(np.float32) + np.float32(r.y0)
    sel = ids >= 0
    if sel.any():
        A = P[model.cap_ab[:, 0]]
        B = P[model.cap_ab[:, 1]]
        V = B[:, :2] - A[:, :2]
        l2 = np.maximum((V * V).sum(1), 1e-6)
        rr = model.cap_r * size
        prm = np.empty((16, len(rr)), np.float32)  # one row per parameter: contiguous gathers
        prm[0:2] = A[:, :2].T
        prm[2:4] = V.T
        prm[4] = 1.0 / l2
        prm[5] = rr[:, 0]
        prm[6] = rr[:, 1] - rr[:, 0]
        prm[7:10] = model.cap_dorsal.T
        prm[10] = np.where(model.cap_nail, 1.0 + 0.5 * rr[:, 1] / np.sqrt(l2), -1.0)
        prm[11] = model.cap_mat
        prm[12:14] = model.cap_crease.T
        prm[14] = np.sqrt(l2)
        prm[15] = B[:, 2] - A[:, 2]
        g = np.take(prm, ids[sel], axis=1)
        dx = px[sel] - g[0]
        dy = py[sel] - g[1]
        traw = (dx * g[2] + dy * g[3]) * g[4]
        # same depth-tilt correction as in _draw_capsule
        rm = g[5] + 0.5 * g[6]
        dp = np.maximum(rm * rm - (dx * dx + dy * dy - traw * traw * g[14] * g[14]), 0.0)
        q = g[14] * g[14]
        # shading uses half the tilt: smooths the normal jump where bones meet at an angle
        t = np.clip(traw - 0.5 * g[15] * np.sqrt(dp / (q * (q + g[15] * g[15]))), 0.0, 1.0)
        rad = g[5] + t * g[6]
        cx = (dx - t * g[2]) / rad
        cy = (dy - t * g[3]) / rad
        h = np.sqrt(np.maximum(1.0 - cx * cx - cy * cy, 0.0))
        sd = cx * g[7] + cy * g[8] - h * g[9]
        m = g[11].astype(np.uint8)
        m[(sd > 0.6) & (traw > 0.33) & (traw < g[10])] = _NAIL
        nx[sel], ny[sel], nz[sel], side[sel], mat[sel] = cx, cy, -h, sd, m
        # flexion creases: thin dark bands across the finger at the joints (deeper on the palm
        # side); distance along the axis to the nearer end, in units of the band width
        near_end = np.minimum(traw, 1.0 - traw)
        np.abs(near_end, out=near_end)
        near_end *= g[14]
        near_end /= 0.09 * rad
        near_end *= near_end
        strength = np.where(traw < 0.5, g[12], g[13])
        strength *= 0.18 - 0.1 * sd
        crease[sel] = 1.0 - strength * np.exp(-near_end)
    for j, (gx, gy, dome, sd) in enumerate(r.slabs):
        sel = ids == -2 - j
        if not sel.any():
            continue
        fx = np.full(int(sel.sum()), gx, np.float32)
        fy = np.full(fx.shape, gy, np.float32)
        if dome is not None:
            x, y = px[sel], py[sel]
            q = _dome_q(x, y, dome)
            _, _, ku, kv, bulge = dome
            xr, yr = x - np.float32(dome[0]), y - np.float32(dome[1])
            u = xr * np.float32(ku[0]) + yr * np.float32(ku[1])
            v = xr * np.float32(kv[0]) + yr * np.float32(kv[1])
            dq = np.float32(4.0 * bulge) * q  # d(B q^2) = 2 B q dq, dq = -2 (u du + v dv)
            fx += dq * (u * np.float32(ku[0]) + v * np.float32(kv[0]))
            fy += dq * (u * np.float32(ku[1]) + v * np.float32(kv[1]))
        inv = 1.0 / np.sqrt(fx * fx + fy * fy + 1.0)
        nx[sel], ny[sel], nz[sel], side[sel] = fx * inv, fy * inv, -inv, sd
        if j == 0 and dome is not None and sd < -0.2 and size > 60:
            crease[sel] = _palm_lines(u, v)
    return idx, nx, ny, nz, side, mat, crease


def _palm_lines(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shading factor with the three main palm creases (heart, head, life line).

    (u, v): palm coordinates normalised to the palm dome (u toward the thumb, v toward the
    fingers, 1 ~ 0.14 / 0.21 hand lengths).
    """
    w = np.float32(0.006)  # line half-width, hand lengths
    heart = np.abs(v - (0.78 + 0.12 * u - 0.08 * u * u)) * np.float32(0.21 / w)
    head = np.abs(v - (0.42 + 0.22 * u)) * np.float32(0.21 / w)
    life = np.abs(u - (0.35 + 0.75 * ((v + 1.1) / 1.55) ** 2)) * np.float32(0.14 / w)
    line = np.exp(-heart * heart) * ((u > -1.3) & (u < 0.55))
    line = np.maximum(line, np.exp(-head * head) * ((u > -0.9) & (u < 1.05)))
    line = np.maximum(line, np.exp(-life * life) * ((v > -1.0) & (v < 0.45)))
    return 1.0 - np.float32(0.22) * line


# --------------------------------------------------------------------------------------------
# Appearance
# --------------------------------------------------------------------------------------------
#: Skin albedos (BGR) from very light to very dark, as they look in a well lit photo.
SKIN_TONES = np.array(
    [
        [190, 208, 242],
        [160, 188, 232],
        [135, 168, 220],
        [110, 147, 202],
        [88, 126, 182],
        [68, 102, 156],
        [50, 78, 128],
        [38, 58, 98],
        [28, 42, 70],
    ],
    np.float32,
)


@dataclass
class _Style:
    skin: np.ndarray  # dorsal albedo, BGR float
    palm: np.ndarray  # palmar albedo
    nail: np.ndarray
    sleeve: np.ndarray
    light: np.ndarray  # unit vector toward the light (camera frame)
    ambient: float = 0.35
    diffuse: float = 0.75
    wrap: float = 0.35
    spec: float = 0.12
    ao: float = 0.55
    shadow: float = 0.0  # cast shadow strength on the background (0 = none)
    texture: float = 0.05
    forearm: bool = True
    sleeve_at: float | None = None
    seed: int = 0


def _random_skin(rng: np.random.Generator) -> np.ndarray:
    x = rng.uniform(0, len(SKIN_TONES) - 1)
    i = int(x)
    c = SKIN_TONES[i] * (1 - (x - i)) + SKIN_TONES[min(i + 1, len(SKIN_TONES) - 1)] * (x - i)
    c = c * rng.uniform(0.9, 1.08) + rng.normal(0, 5, 3)
    c[2] += rng.uniform(-6, 10)  # redness
    return np.clip(c, 15, 250).astype(np.float32)


def _make_style(
    skin: tuple[int, int, int] | np.ndarray | None, rng: np.random.Generator | None
) -> _Style:
    if rng is None:
        sk = np.array(skin if skin is not None else SKIN_TONES[2], np.float32)
        light = np.array([-0.35, -0.45, -0.82])
        return _finish_style(sk, light / np.linalg.norm(light), None)
    sk = np.array(skin, np.float32) if skin is not None else _random_skin(rng)
    light = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.9, 0.5), -rng.uniform(0.35, 1.0)])
    style = _finish_style(sk, light / np.linalg.norm(light), rng)
    return style


def _finish_style(sk: np.ndarray, light: np.ndarray, rng: np.random.Generator | None) -> _Style:
    pinkish = np.array([150, 165, 225], np.float32) * (0.55 + 0.45 * sk.mean() / 200.0)
    palm = 0.55 * sk + 0.45 * pinkish
    nail = 0.5 * sk + 0.5 * np.array([190, 190, 238], np.float32)
    st = _Style(
        skin=sk, palm=palm, nail=nail, sleeve=np.array([90, 90, 90], np.float32), light=light
    )
    if rng is not None:
        st.ambient = float(rng.uniform(0.25, 0.45))
        st.diffuse = float(rng.uniform(0.6, 0.85))
        st.wrap = float(rng.uniform(0.2, 0.6))
        st.spec = float(rng.uniform(0.02, 0.2))
        st.ao = float(rng.uniform(0.35, 0.7))
        st.shadow = float(rng.uniform(0.2, 0.55)) if rng.random() < 0.35 else 0.0
        st.texture = float(rng.uniform(0.02, 0.08))
        st.forearm = bool(rng.random() < 0.9)
        if rng.random() < 0.45:
            st.sleeve_at = float(rng.uniform(0.2, 0.7))
            st.sleeve = _random_color(rng).astype(np.float32)
        st.seed = int(rng.integers(1 << 30))
    return st


def _project(model: _Model, center: tuple[float, float], size: float) -> np.ndarray:
    pts = model.pts
    pc = pts[[0, 5, 9, 13, 17], :2].mean(0)
    out = np.empty_like(pts)
    out[:, :2] = (pts[:, :2] - pc) * size + np.asarray(center, np.float64)
    out[:, 2] = (pts[:, 2] - pts[0, 2]) * size
    return out


def _render_model(
    image: np.ndarray, model: _Model, P: np.ndarray, size: float, style: _Style
) -> None:
    H, W = image.shape[:2]
    # bounding box of everything drawn
    ends = P[[i for c in model.caps for i in (c.a, c.b)], :2]
    rad = np.repeat([max(c.ra, c.rb) * size for c in model.caps], 2)[:, None]
    lo, hi = (ends - rad).min(0), (ends + rad).max(0)
    pad = 2.0
    if style.shadow > 0:
        off = -style.light[:2] / max(-style.light[2], 0.3) * 0.07 * size
        pad += abs(off).max() + 0.08 * size
    x0 = max(int(lo[0] - pad), 0)
    y0 = max(int(lo[1] - pad), 0)
    x1 = min(int(hi[0] + pad) + 1, W)
    y1 = min(int(hi[1] + pad) + 1, H)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    r = _Raster(x0, y0, x1, y1)
    for sl in model.slabs:
        _draw_slab(r, P, sl, size)
    with np.errstate(invalid="ignore"):
        for k, c in enumerate(model.caps):
            _draw_capsule(r, k, P[c.a], P[c.b], c.ra * size, c.rb * size)
    idx, nx, ny, nz, side, mat, crease = _resolve(r, P, model, size)
    if idx.size == 0:
        return
    hh, ww = r.z.shape
    # shading is computed on the covered pixels only (flat index), colour through a LUT
    L = style.light
    diff = nx * np.float32(L[0]) + ny * np.float32(L[1]) + nz * np.float32(L[2])
    diff += np.float32(style.wrap)
    diff *= np.float32(1.0 / (1.0 + style.wrap))
    np.maximum(diff, 0.0, out=diff)
    hv = L + np.array([0.0, 0.0, -1.0])
    hv = hv / np.linalg.norm(hv)
    spec = nx * np.float32(hv[0]) + ny * np.float32(hv[1]) + nz * np.float32(hv[2])
    np.maximum(spec, 0.0, out=spec)
    spec *= spec
    spec *= spec
    spec *= spec  # ^8
    shade = np.float32(style.ambient) + np.float32(style.diffuse) * np.minimum(diff, 1.0)
    # ambient occlusion from the depth buffer: darken pixels that lie behind their neighbourhood
    zin = r.z.ravel()[idx]
    zf = np.minimum(r.z, np.float32(float(zin.max()) + 0.15 * size))
    small = max(1, int(round(size / 50)))
    if small > 1:
        zs = cv2.resize(
            zf, (max(ww // small, 1), max(hh // small, 1)), interpolation=cv2.INTER_AREA
        )
        zs = cv2.GaussianBlur(zs, (0, 0), 0.045 * size / small)
        zb = cv2.resize(zs, (ww, hh), interpolation=cv2.INTER_LINEAR)
    else:
        zb = cv2.GaussianBlur(zf, (0, 0), 0.045 * size)
    ao = (zin - zb.ravel()[idx]) * np.float32(1.0 / (0.06 * size))
    ao = np.clip(ao, 0.0, 1.0)
    # low-frequency blotches of the skin
    cell = max(size / 6.0, 2.0)
    gh, gw = int(hh / cell) + 2, int(ww / cell) + 2
    bank = _noise_bank()  # deterministic per style.seed, no Generator needed
    oy = style.seed % max(_BANK_H - gh, 1)
    ox = (style.seed // 7919) % max(_BANK_W - gw, 1)
    blot = bank[oy : oy + gh, ox : ox + gw, 0].astype(np.float32)
    blot = cv2.resize(blot, (ww, hh)).ravel()[idx]
    blot -= np.float32(128.0)
    blot *= np.float32(style.texture / 32.0)
    blot += np.float32(1.0)
    shade *= (1.0 - np.float32(style.ao) * ao) * blot * crease
    # albedo row: 0..13 back of the hand -> palm side, 14 nail, 15 sleeve
    row = np.clip(np.float32(6.5) - np.float32(10.4) * side, 0.0, 13.0).astype(np.intp)
    row[mat == _NAIL] = 14
    row[mat == _SLEEVE] = 15
    # specular highlights ride on the shade level: the LUT runs past full light (1.6) where
    # skin colours saturate toward a pale highlight; nails are glossier
    spec *= np.float32(style.spec * 3.0)
    spec[row == 14] *= 1.6
    shade += spec
    q = np.clip(shade * np.float32(255.0 / 1.6), 0.0, 255.0).astype(np.intp)
    q += row * 256
    colimg = np.zeros((hh * ww, 3), np.uint8)
    colimg[idx] = _shade_lut(style)[q]
    colimg = colimg.reshape(hh, ww, 3)
    # composite (anti-aliased edge), optional soft cast shadow on what lies behind
    sub = image[y0:y1, x0:x1]
    m = np.zeros(hh * ww, np.float32)
    m[idx] = 1.0
    m = m.reshape(hh, ww)
    if style.shadow > 0:
        off = -L[:2] / max(-L[2], 0.3) * 0.07 * size
        mt = np.float32([[1, 0, off[0]], [0, 1, off[1]]])
        sh = _fast_blur(cv2.warpAffine(m, mt, (ww, hh)), 0.03 * size + 1)
        sh = 1.0 - np.float32(style.shadow) * sh
        sub[...] = cv2.multiply(sub, cv2.merge([sh, sh, sh]), dtype=cv2.CV_8U)
    alpha = cv2.GaussianBlur(m, (3, 3), 0.7)
    alpha *= m
    sub[...] = cv2.blendLinear(colimg, sub, alpha, 1.0 - alpha)


def _shade_lut(style: _Style) -> np.ndarray:
    """(16 * 256, 3) uint8 colour for albedo row * 256 + shade level (shade = level * 1.6 / 255).

    Rows 0..13 blend the back-of-hand colour into the palm colour, 14 is nail, 15 sleeve;
    half-lit skin gets redder (a cheap stand-in for subsurface scattering).
    """
    u = np.arange(256, dtype=np.float32) * np.float32(1.6 / 255.0)
    sss = (u * (1.0 - np.minimum(u, 1.0)))[:, None] * np.array([-0.15, 0.0, 0.35], np.float32)
    w = np.linspace(0.0, 1.0, 14, dtype=np.float32)[:, None]
    alb = np.empty((16, 3), np.float32)
    alb[:14] = style.skin + w * (style.palm - style.skin)
    alb[14] = style.nail
    alb[15] = style.sleeve
    lut = alb[:, None, :] * (u[:, None] + sss)[None]
    lut[15] = style.sleeve * u[:, None]
    return np.clip(lut, 0, 255).astype(np.uint8).reshape(16 * 256, 3)


def render_hand(
    image: np.ndarray,
    pose: HandPose,
    center: tuple[float, float],
    size: float,
    skin: tuple[int, int, int] | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Draw ``pose`` into the BGR uint8 ``image`` in place and return its landmarks.

    ``center`` is where the palm centre (mean of wrist and the four finger MCPs) lands, ``size``
    the hand length in pixels (wrist -> middle fingertip, fingers straight). ``skin`` is a BGR
    albedo (default: a light-medium tone, or random when ``rng`` is given); ``rng`` also
    randomises lighting, sleeve, cast shadow. Without ``rng`` the result is deterministic.
    Returns float32 (21, 3): x, y image pixels, z relative depth in pixels (wrist = 0, smaller
    = closer to the camera).
    """
    style = _make_style(skin, rng)
    model = _build_model(pose, style.forearm, style.sleeve_at)
    P = _project(model, center, size)
    _render_model(image, model, P, size, style)
    return P[:21].astype(np.float32)


# --------------------------------------------------------------------------------------------
# Backgrounds and camera effects
# --------------------------------------------------------------------------------------------
_PALETTE = np.array(
    [  # BGR: walls, wood, fabrics, greys, foliage, sky ...
        [235, 235, 235], [200, 205, 210], [120, 120, 120], [40, 40, 40], [20, 20, 20],
        [180, 210, 230], [60, 100, 150], [40, 70, 110], [120, 160, 200], [90, 140, 120],
        [60, 110, 60], [200, 160, 100], [150, 90, 40], [110, 60, 30], [80, 80, 160],
        [60, 60, 180], [40, 150, 220], [180, 120, 160], [210, 190, 170], [140, 170, 150],
    ],
    np.float32,
)  # fmt: skip


def _random_color(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.7:
        c = _PALETTE[int(rng.integers(len(_PALETTE)))] * rng.uniform(0.7, 1.15)
        c = c + rng.normal(0, 12, 3)
    else:
        c = rng.uniform(0, 255, 3)
    return np.clip(c, 0, 255).astype(np.float32)


def _smooth_noise(h: int, w: int, rng: np.random.Generator, octaves: int = 3) -> np.ndarray:
    """Value noise in [0, 1] at (h, w), built from a few upsampled random grids."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    cells = int(rng.integers(2, 6))
    for _ in range(octaves):
        g = rng.random((cells + 1, cells + 1)).astype(np.float32)
        out += amp * cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
        cells *= 2
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _ramp(t: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    return c0 + t[..., None] * (c1 - c0)


def _fast_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; wide ones are done on a downsampled copy (plenty for a blurry backdrop)."""
    f = int(sigma / 2.0)
    if f < 2:
        return cv2.GaussianBlur(img, (0, 0), sigma)
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(w // f, 1), max(h // f, 1)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / f)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


_BG_KINDS = ("flat", "linear", "radial", "noise", "stripes", "wood", "room", "shapes")


def random_background(
    height: int, width: int, rng: np.random.Generator, *, kind: str | None = None
) -> np.ndarray:
    """A random BGR uint8 background: flat, gradients, noise textures, stripes, wood grain,
    "rooms", scattered (possibly defocused) shapes, sometimes grain and uneven light.

    Smooth parts are computed at reduced resolution and upsampled, the rest is drawn in uint8,
    so a 256x256 background costs well under a millisecond. ``kind`` forces one of
    ``_BG_KINDS`` (default: random).
    """
    h, w = int(height), int(width)
    if kind is None:
        kind = str(rng.choice(_BG_KINDS, p=[0.08, 0.14, 0.08, 0.16, 0.1, 0.08, 0.12, 0.24]))
    elif kind not in _BG_KINDS:
        raise ValueError(f"unknown background kind {kind!r}; known: {', '.join(_BG_KINDS)}")
    ls = 2 if kind in ("stripes", "wood") else 4
    ls = ls if min(h, w) >= 8 * ls else 1
    lh, lw = max(h // ls, 2), max(w // ls, 2)
    c0, c1 = _random_color(rng), _random_color(rng)
    yy = np.linspace(0, 1, lh, dtype=np.float32)[:, None]
    xx = np.linspace(0, 1, lw, dtype=np.float32)[None, :]
    if kind == "flat":
        low = _ramp(np.broadcast_to(0.15 * yy * rng.uniform(-1, 1), (lh, lw)), c0, c0 * 0.7)
    elif kind == "linear" or kind == "shapes" and rng.random() < 0.4:
        ang = rng.uniform(0, 2 * math.pi)
        t = xx * math.cos(ang) + yy * math.sin(ang)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        low = _ramp(t, c0, c1)
    elif kind == "radial":
        cx, cy = rng.uniform(0, 1, 2)
        t = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        low = _ramp(np.clip(t / max(float(t.max()), 1e-6), 0, 1), c0, c1)
    elif kind in ("noise", "shapes"):
        low = _ramp(_smooth_noise(lh, lw, rng, 3), c0, c1)
        if rng.random() < 0.5:
            c2 = _random_color(rng)
            wgt = np.clip(_smooth_noise(lh, lw, rng, 2) * 2 - 1, 0, 1)[..., None]
            low = low + wgt * (c2 - low)
    elif kind == "room":
        low = _ramp(np.broadcast_to(yy * 0.3, (lh, lw)), c0, c0 * 0.6)
        horizon = int(lh * rng.uniform(0.55, 0.95))
        low[horizon:] = _ramp(np.broadcast_to(yy[horizon:] * 0.6, (lh - horizon, lw)), c1, c1 * 0.5)
    else:  # stripes / wood grain, at half resolution
        ang = rng.uniform(0, math.pi)
        period = rng.uniform(0.04, 0.25) * max(lh, lw)
        u = (np.arange(lw, dtype=np.float32)[None, :] * math.cos(ang)
             + np.arange(lh, dtype=np.float32)[:, None] * math.sin(ang))  # fmt: skip
        if kind == "wood":
            u = u + _smooth_noise(lh, lw, rng, 2) * np.float32(period * rng.uniform(1, 4))
            c1 = c0 * rng.uniform(0.55, 0.8)
        t = 0.5 + 0.5 * np.sin(u * np.float32(2 * math.pi / period))
        if kind == "stripes" and rng.random() < 0.6:
            t = np.clip((t - 0.5) * 6.0 + 0.5, 0.0, 1.0)  # hard-ish stripes
        low = _ramp(t, c0, c1)
    img = np.clip(low, 0, 255).astype(np.uint8)
    if ls > 1:
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    if kind in ("room", "shapes"):
        n = int(rng.integers(2, 6)) if kind == "room" else int(rng.integers(3, 16))
        blur = kind == "shapes" and rng.random() < 0.5
        aa = cv2.LINE_8 if blur else cv2.LINE_AA
        for _ in range(n):
            col = tuple(float(v) for v in _random_color(rng))
            typ = rng.integers(5)
            x0, y0 = int(rng.integers(-w // 4, w)), int(rng.integers(-h // 4, h))
            sx = int(rng.uniform(0.05, 0.5) * w)
            sy = int(rng.uniform(0.05, 0.5) * h)
            if kind == "room" or typ == 0:
                cv2.rectangle(img, (x0, y0), (x0 + sx, y0 + sy), col, -1)
            elif typ == 1:
                cv2.circle(img, (x0, y0), max(sx, sy) // 2, col, -1, aa)
            elif typ == 2:
                ang = float(rng.uniform(0, 180))
                cv2.ellipse(img, (x0, y0), (sx // 2, sy // 2), ang, 0, 360, col, -1, aa)
            elif typ == 3:
                pts = rng.integers(-w // 4, max(w, h) * 5 // 4, (int(rng.integers(3, 7)), 2))
                cv2.fillPoly(img, [pts.astype(np.int32)], col, aa)
            else:
                t = max(1, int(rng.uniform(0.005, 0.05) * max(h, w)))
                cv2.line(img, (x0, y0), (x0 + sx, y0 + sy), col, t, aa)
        if blur:  # out of focus
            img = _fast_blur(img, rng.uniform(0.005, 0.03) * max(h, w))
    if rng.random() < 0.3:  # vignette / uneven light
        v = cv2.resize(0.7 + 0.45 * _smooth_noise(lh, lw, rng, 1), (w, h))
        img = cv2.multiply(img, cv2.merge([v, v, v]), dtype=cv2.CV_8U)
    if rng.random() < 0.3:  # grain (fabric, paper, plaster)
        g = _add_noise(img, rng.uniform(3, 10), rng)
        img = cv2.GaussianBlur(g, (3, 3), 0.6) if rng.random() < 0.5 else g
    return img


_BANK_H, _BANK_W = 560, 720


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    g = np.random.default_rng(0x5EED)
    n = 128.0 + 32.0 * g.standard_normal((_BANK_H, _BANK_W, 3), dtype=np.float32)
    return np.clip(n, 0, 255).astype(np.uint8)


def _add_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-ish sensor noise of std ``sigma`` (grey levels), cut from a cached noise bank."""
    h, w = img.shape[:2]
    if h <= _BANK_H and w <= _BANK_W:
        bank = _noise_bank()
        oy = int(rng.integers(0, _BANK_H - h + 1))
        ox = int(rng.integers(0, _BANK_W - w + 1))
        n = bank[oy : oy + h, ox : ox + w]
    else:
        n = np.clip(128 + 32 * rng.standard_normal(img.shape), 0, 255).astype(np.uint8)
    k = sigma / 32.0
    return cv2.addWeighted(img, 1.0, n, k, -128.0 * k)


def _color_jitter(img: np.ndarray, rng: np.random.Generator, amount: float = 1.0) -> np.ndarray:
    x = np.arange(256, dtype=np.float32) / 255.0
    gamma = math.exp(rng.normal(0, 0.18 * amount))
    contrast = 1.0 + rng.normal(0, 0.12 * amount)
    bright = rng.normal(0, 0.06 * amount)
    gain = 1.0 + rng.normal(0, 0.05 * amount, 3)  # white balance
    base = (x**gamma - 0.5) * contrast + 0.5 + bright
    lut = np.clip(base[:, None] * gain[None, :] * 255.0, 0, 255).astype(np.uint8)
    return cv2.LUT(img, lut.reshape(256, 1, 3))


def _camera_effects(img: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Defocus/motion blur, colour/exposure jitter, sensor noise, sometimes JPEG artefacts."""
    r = rng.random()
    if r < 0.45:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.2) * scale)
    elif r < 0.6:
        k = int(rng.integers(3, 8))
        ker = np.zeros((k, k), np.float32)
        ker[k // 2, :] = 1.0 / k
        rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), rng.uniform(0, 180), 1.0)
        ker = cv2.warpAffine(ker, rot, (k, k))
        ker /= max(float(ker.sum()), 1e-6)
        img = cv2.filter2D(img, -1, ker)
    img = _color_jitter(img, rng)
    if rng.random() < 0.8:
        img = _add_noise(img, rng.uniform(1.0, 7.0), rng)
    if rng.random() < 0.15:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 95))])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return img


# --------------------------------------------------------------------------------------------
# Stills and clips
# --------------------------------------------------------------------------------------------
def _extent(model: _Model) -> tuple[np.ndarray, np.ndarray]:
    """Landmark bounding box (unit scale) relative to the palm centre, padded by finger width."""
    pts = model.pts[:21, :2]
    pc = model.pts[[0, 5, 9, 13, 17], :2].mean(0)
    return pts.min(0) - pc - 0.045, pts.max(0) - pc + 0.045


_FOOT_SEGS = np.array(list(HAND_CONNECTIONS) + [(0, 9), (0, 13), (1, 5), (2, 5)])
_FOOT_T = np.linspace(0.0, 1.0, 4)


def _footprint(model: _Model) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, float]]]:
    """Unit-scale points covering the hand (relative to the palm centre; radius ~0.07 each)
    and the forearm/sleeve segments with their radii, for overlap tests between hands."""
    pts = model.pts[:, :2] - model.pts[[0, 5, 9, 13, 17], :2].mean(0)
    a, b = pts[_FOOT_SEGS[:, 0]], pts[_FOOT_SEGS[:, 1]]
    hand = (a[:, None, :] + _FOOT_T[None, :, None] * (b - a)[:, None, :]).reshape(-1, 2)
    return hand, [(pts[i], pts[j], r) for i, j, r in model.arms]


def _clip_segment(a: np.ndarray, b: np.ndarray, lo: float, hi: float) -> tuple | None:
    """The part of segment a-b inside the square [lo, hi]^2 (Liang-Barsky), or None."""
    t0, t1 = 0.0, 1.0
    d = b - a
    for k in range(2):
        if abs(d[k]) < 1e-12:
            if a[k] < lo or a[k] > hi:
                return None
            continue
        ta, tb = (lo - a[k]) / d[k], (hi - a[k]) / d[k]
        t0, t1 = max(t0, min(ta, tb)), min(t1, max(ta, tb))
        if t0 > t1:
            return None
    return a + t0 * d, a + t1 * d


def _seg_dist(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Smallest distance from the points p (M, 2) to the segment a-b."""
    v = b - a
    t = np.clip(((p - a) @ v) / max(float(v @ v), 1e-9), 0.0, 1.0)
    return float(np.sqrt((((a + t[:, None] * v) - p) ** 2).sum(1)).min())


def _overlaps(new: tuple, old: tuple) -> bool:
    """new/old: (hand points px, hand radius px, [(a px, b px, r px)])."""
    hp, hr, arms = new
    hp2, hr2, arms2 = old
    d = np.sqrt(((hp[:, None, :] - hp2[None, :, :]) ** 2).sum(-1)).min()
    if d < hr + hr2:
        return True
    if any(_seg_dist(hp, a, b) < hr + r for a, b, r in arms2):
        return True
    return any(_seg_dist(hp2, a, b) < hr2 + r for a, b, r in arms)


def render_sample(
    rng: np.random.Generator, size: int = 256, *, n_hands: int = 1
) -> tuple[np.ndarray, list[np.ndarray], list[str]]:
    """One random training still: background + ``n_hands`` hands.

    Random pose, view (full 360 degree roll), scale, position, skin, light and camera effects;
    every landmark lies inside the image. With several hands no hand (nor its forearm) covers
    another hand; in the rare case no free spot is found for a hand after shrinking it, fewer
    hands are returned. Returns (image_bgr, [landmarks (21, 3) float32], [handedness]).
    """
    img = random_background(size, size, rng)
    lms: list[np.ndarray] = []
    hands: list[str] = []
    placed_fp: list[tuple] = []
    margin = 0.02 * size
    prev_style: _Style | None = None
    for _ in range(n_hands):
        pose = HandPose.random(rng)
        style = _make_style(None, rng)
        if prev_style is not None and rng.random() < 0.5:  # same person, same skin
            style.skin, style.palm, style.nail = prev_style.skin, prev_style.palm, prev_style.nail
        model = _build_model(pose, style.forearm, style.sleeve_at)
        lo, hi = _extent(model)
        span = float(max(hi - lo))
        frac = rng.uniform(0.4, 0.9) if n_hands == 1 else rng.uniform(0.3, 0.55)
        hand = frac * size / max(span, 1e-3)
        foot, arms = _footprint(model) if n_hands > 1 else (None, [])
        center = None
        for _ in range(60):
            cmin = margin - lo * hand
            cmax = size - margin - hi * hand
            if np.any(cmax < cmin):
                hand *= 0.9
                continue
            c = rng.uniform(cmin, cmax)
            if foot is not None:
                segs = []
                for a, b, r in arms:  # only the part of the forearm inside the image matters
                    ab = _clip_segment(a * hand + c, b * hand + c, -r * hand, size + r * hand)
                    if ab is not None:
                        segs.append((ab[0], ab[1], r * hand))
                fp = (foot * hand + c, 0.08 * hand, segs)
                if any(_overlaps(fp, old) for old in placed_fp):
                    hand *= 0.97
                    continue
                placed_fp.append(fp)
            center = c
            break
        if center is None:
            continue
        prev_style = style
        P = _project(model, (float(center[0]), float(center[1])), hand)
        _render_model(img, model, P, hand, style)
        lms.append(P[:21].astype(np.float32))
        hands.append(pose.handedness)
    img = _camera_effects(img, rng, size / 256.0)
    return img, lms, hands


@dataclass
class SyntheticFrame:
    """One frame of :func:`synthetic_clip` with its exact ground truth."""

    image: np.ndarray  # BGR uint8
    landmarks: list[np.ndarray]  # one (21, 3) float32 per visible hand
    handedness: list[str]
    timestamp_ms: float


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


class _Wave:
    """A smooth random signal in about [-1, 1]: a sum of three sines."""

    def __init__(self, rng: np.random.Generator, fmin: float = 0.08, fmax: float = 0.45) -> None:
        self.f = rng.uniform(fmin, fmax, 3) * 2 * math.pi
        self.p = rng.uniform(0, 2 * math.pi, 3)
        self.a = np.array([1.0, 0.5, 0.25]) / 1.75

    def __call__(self, t: float) -> float:
        return float(np.sum(self.a * np.sin(self.f * t + self.p)))


_DEFAULT_CLIP_GESTURES = ("open_palm", "victory", "point_up", "fist", "thumb_up", "ilove_you",
                          "pinch", "open_palm")  # fmt: skip


def synthetic_clip(
    n_frames: int = 120,
    size: tuple[int, int] = (640, 480),
    *,
    n_hands: int = 1,
    fps: float = 30.0,
    seed: int = 0,
    leave_and_return: bool = False,
    gestures: list[str] | None = None,
    speed: float = 1.0,
) -> Iterator[SyntheticFrame]:
    """A smooth synthetic video with exact landmarks (the demo clip and tracker tests).

    ``size`` is (width, height). Each hand drifts along a sum-of-sines path with smooth
    rotation, cycling through ``gestures`` (about one second each, blended), over a slightly
    drifting background; hands are ~35-50 % of the frame height; with two hands each keeps to
    its own half of the frame so they never overlap. ``leave_and_return`` sweeps the hand(s) out
    of the frame so that ~15 % of the clip in the middle has no hand (empty ``landmarks``).
    A hand is listed while at least one of its landmarks is inside the frame (during the exit
    some may lie outside). Same arguments -> identical frames.
    """
    W, H = int(size[0]), int(size[1])
    n_hands = int(n_hands)
    rng = np.random.default_rng(seed)
    m = int(0.05 * max(W, H)) + 4
    bg_kind = ("room", "shapes", "noise", "wood", "linear")[int(rng.integers(5))]
    bg = random_background(H + 2 * m, W + 2 * m, rng, kind=bg_kind)
    drift_x, drift_y = _Wave(rng, 0.05, 0.2), _Wave(rng, 0.05, 0.2)
    names = list(gestures) if gestures else list(_DEFAULT_CLIP_GESTURES)
    light = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.8, 0.1), -rng.uniform(0.6, 1.0)])
    light /= np.linalg.norm(light)
    hands = []
    for k in range(n_hands):
        style = _finish_style(_random_skin(rng) if k == 0 else hands[0]["style"].skin, light, rng)
        style.shadow = 0.0
        style.forearm = True
        style.light = light
        if k == 1:
            style.sleeve_at, style.sleeve = hands[0]["style"].sleeve_at, hands[0]["style"].sleeve
        hand_len = H * (rng.uniform(0.42, 0.5) if n_hands == 1 else rng.uniform(0.36, 0.42))
        # two hands: the left hand in the left half (as in a mirrored selfie view), so that
        # forearms of rotated gestures (thumb_up ...) point out of the frame, not at the other
        side = (
            ("left" if k == 0 else "right")
            if n_hands > 1
            else ("right" if rng.random() < 0.7 else "left")
        )
        region = (0.0, float(W)) if n_hands == 1 else (k * W / 2.0, (k + 1) * W / 2.0)
        poses = [HandPose.gesture(g, side) for g in names]
        hands.append(
            dict(
                style=style,
                len=hand_len,
                side=side,
                region=region,
                poses=poses,
                offset=int(rng.integers(len(poses))) if k > 0 else 0,
                wx=_Wave(rng),
                wy=_Wave(rng),
                wyaw=_Wave(rng),
                wpitch=_Wave(rng),
                wroll=_Wave(rng),
                wfing=[_Wave(rng, 0.2, 0.7) for _ in range(4)],
                exit_dir=(-1.0 if k == 0 else 1.0)
                if n_hands > 1
                else (1.0 if rng.random() < 0.5 else -1.0),
            )
        )
    roll_amp = 0.35 if n_hands == 1 else 0.22
    for i in range(int(n_frames)):
        t = i / fps
        te = t * speed
        mt = np.float32(
            [[1, 0, -m + 3.0 * m / 4 * drift_x(te)], [0, 1, -m + 3.0 * m / 4 * drift_y(te)]]
        )
        frame = cv2.warpAffine(
            bg, mt, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        # leave_and_return: g = 0 .. 1 (last landmark just leaving) at u = 0.425, then further out
        # (so the forearm follows), symmetric back in: no landmark inside for u in [.425, .575)
        u = i / max(n_frames, 1)
        x = min(u, 1.0 - u)
        if not leave_and_return or x < 0.3:
            gain = 0.0
        elif x < 0.425:
            gain = ((x - 0.3) / 0.125) ** 2
        else:
            gain = 1.0 + 2.0 * (x - 0.425) / 0.125
        lms, hds = [], []
        for hi_, hd in enumerate(hands):
            seq = hd["poses"]
            g = te / 1.0 + hd["offset"]
            gi = int(math.floor(g))
            frac = g - gi
            a, b = seq[gi % len(seq)], seq[(gi + 1) % len(seq)]
            pose = a.lerp(b, _smoothstep((frac - 0.6) / 0.4))
            fid = np.array([w(te) for w in hd["wfing"]]) * 0.06
            pose.mcp_flex = pose.mcp_flex + np.abs(fid)
            pose.pip_flex = pose.pip_flex + np.abs(fid) * 1.2
            pose.yaw += 0.45 * hd["wyaw"](te)
            pose.pitch += 0.3 * hd["wpitch"](te)
            pose.roll += roll_amp * hd["wroll"](te)
            pose.wrist_flex = 0.2 * hd["wpitch"](te * 0.7)
            pose = pose.clipped()
            model = _build_model(pose, True, hd["style"].sleeve_at)
            lo, hi = _extent(model)
            L = hd["len"]
            r0, r1 = hd["region"]
            mg = 0.03 * H
            cx = 0.5 * (r0 + r1) + hd["wx"](te) * 0.3 * (r1 - r0)
            cy = 0.5 * H + hd["wy"](te) * 0.2 * H
            # keep the landmarks inside the hand's region (continuous in time)
            cx += max(0.0, r0 + mg - (cx + lo[0] * L)) - max(0.0, (cx + hi[0] * L) - (r1 - mg))
            cy += max(0.0, mg - (cy + lo[1] * L)) - max(0.0, (cy + hi[1] * L) - (H - mg))
            if gain > 0:
                if hd["exit_dir"] > 0:
                    cx += gain * (W + 2.0 - (cx + lo[0] * L))
                else:
                    cx -= gain * (cx + hi[0] * L + 2.0)
            P = _project(model, (cx, cy), L)
            hd["style"].seed = int(seed * 100003 + i * 7 + hi_)
            _render_model(frame, model, P, L, hd["style"])
            lm = P[:21].astype(np.float32)
            inside = (lm[:, 0] >= 0) & (lm[:, 0] < W) & (lm[:, 1] >= 0) & (lm[:, 1] < H)
            if inside.any():
                lms.append(lm)
                hds.append(hd["side"])
        frng = np.random.default_rng([seed, i])
        frame = _add_noise(frame, 2.5, frng)
        yield SyntheticFrame(frame, lms, hds, t * 1000.0)
