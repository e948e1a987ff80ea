"""Surface primitives: area-proportional point samples with exact normals.

Each sampler returns ``(points (n, 3), normals (n, 3))`` in local coordinates with y up;
:class:`Part` places one primitive in an object (offset, rotation) and tags it with the
name of the part it belongs to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Part", "Rng", "cylinder", "rot_x", "rot_y", "rot_z", "unit"]

Rng = np.random.Generator


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to unit length along its last axis (zero vectors stay near zero)."""
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _ellipsoid(n: int, rng: Rng, radii: tuple[float, float, float]) -> tuple[np.ndarray, ...]:
    d = unit(rng.normal(size=(n, 3)))
    r = np.asarray(radii)
    return d * r, unit(d / r)


def _ellipsoid_area(radii: tuple[float, float, float]) -> float:
    a, b, c = radii
    p = 1.6075
    return 4 * np.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p)


def _box(n: int, rng: Rng, size: tuple[float, float, float]) -> tuple[np.ndarray, ...]:
    s = np.asarray(size) / 2
    areas = np.array([s[1] * s[2], s[0] * s[2], s[0] * s[1]] * 2)
    face = rng.choice(6, size=n, p=areas / areas.sum())
    pts = rng.uniform(-1, 1, size=(n, 3)) * s
    axis = face % 3
    sign = np.where(face < 3, 1.0, -1.0)
    pts[np.arange(n), axis] = sign * s[axis]
    nrm = np.zeros((n, 3))
    nrm[np.arange(n), axis] = sign
    return pts, nrm


def _box_area(size: tuple[float, float, float]) -> float:
    x, y, z = size
    return 2 * (x * y + y * z + x * z)


def _frustum(
    n: int,
    rng: Rng,
    r0: float,
    r1: float,
    h: float,
    cap0: bool,
    cap1: bool,
) -> tuple[np.ndarray, ...]:
    """Side of a frustum from radius r0 at y=-h/2 to r1 at y=+h/2 (+ optional caps)."""
    slant = np.hypot(h, r0 - r1)
    areas = np.array([np.pi * (r0 + r1) * slant, np.pi * r0**2 * cap0, np.pi * r1**2 * cap1])
    which = rng.choice(3, size=n, p=areas / areas.sum())
    theta = rng.uniform(0, 2 * np.pi, size=n)
    # side: density proportional to the radius -> inverse CDF of r(t) = r0 + (r1 - r0) t
    u = rng.uniform(size=n)
    dr = r1 - r0
    if abs(dr) < 1e-9:
        t = u
    else:
        t = (-r0 + np.sqrt(np.maximum(r0**2 + u * (2 * r0 * dr + dr**2), 0.0))) / dr
    t = np.clip(t, 0, 1)
    rad = r0 + dr * t
    y = -h / 2 + h * t
    # caps: uniform on disks
    rc = np.sqrt(rng.uniform(size=n))
    rad = np.where(which == 1, rc * r0, np.where(which == 2, rc * r1, rad))
    y = np.where(which == 1, -h / 2, np.where(which == 2, h / 2, y))
    pts = np.stack([rad * np.cos(theta), y, rad * np.sin(theta)], axis=1)
    side_n = unit(np.stack([np.cos(theta) * h, np.full(n, r0 - r1), np.sin(theta) * h], 1))
    nrm = side_n.copy()
    nrm[which == 1] = (0, -1, 0)
    nrm[which == 2] = (0, 1, 0)
    return pts, nrm


def _frustum_area(r0: float, r1: float, h: float, cap0: bool, cap1: bool) -> float:
    return np.pi * (r0 + r1) * np.hypot(h, r0 - r1) + np.pi * (r0**2 * cap0 + r1**2 * cap1)


def _torus(
    n: int,
    rng: Rng,
    big: float,
    small: float,
    arc: float = 2 * np.pi,
) -> tuple[np.ndarray, ...]:
    """Torus around the y axis in the xz plane; ``arc`` < 2 pi gives a partial ring."""
    m = 2 * n + 16
    phi = rng.uniform(0, 2 * np.pi, size=m)
    keep = rng.uniform(size=m) * (big + small) <= big + small * np.cos(phi)
    phi = phi[keep][:n]
    while phi.size < n:  # rare: top up
        extra = rng.uniform(0, 2 * np.pi, size=n)
        phi = np.concatenate([phi, extra])[:n]
    theta = rng.uniform(0, arc, size=n)
    ring = big + small * np.cos(phi)
    pts = np.stack([ring * np.cos(theta), small * np.sin(phi), ring * np.sin(theta)], 1)
    nrm = np.stack([np.cos(phi) * np.cos(theta), np.sin(phi), np.cos(phi) * np.sin(theta)], 1)
    return pts, nrm


def _sheet(n: int, rng: Rng, w: float, d: float, bend: float) -> tuple[np.ndarray, ...]:
    """Sheet over the xz plane, bent as y = bend * x^2 (area ~ w * d)."""
    x = rng.uniform(-w / 2, w / 2, size=n)
    z = rng.uniform(-d / 2, d / 2, size=n)
    y = bend * x**2
    nrm = unit(np.stack([-2 * bend * x, np.ones(n), np.zeros(n)], 1))
    return np.stack([x, y, z], 1), nrm


@dataclass
class Part:
    """One primitive of an object.

    Args:
        kind: ``"ellipsoid"``, ``"box"``, ``"frustum"``, ``"torus"`` or ``"sheet"``.
        params: the sampler's keyword arguments (e.g. ``{"radii": (1, 1, 1)}``).
        tag: the name of the object part it belongs to (``"leg"``, ``"wing"``, ...).
        offset: its position in the object.
        rot: ``(3, 3)`` rotation from local to object coordinates, or ``None``.
    """

    kind: str
    params: dict[str, Any]
    tag: str
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rot: np.ndarray | None = None  # (3, 3) local -> object rotation

    def area(self) -> float:
        """Surface area (used to share an object's points among its parts)."""
        p = self.params
        if self.kind == "ellipsoid":
            return _ellipsoid_area(p["radii"])
        if self.kind == "box":
            return _box_area(p["size"])
        if self.kind == "frustum":
            return _frustum_area(p["r0"], p["r1"], p["h"], p["cap0"], p["cap1"])
        if self.kind == "torus":
            return 4 * np.pi**2 * p["big"] * p["small"] * p.get("arc", 2 * np.pi) / (2 * np.pi)
        return p["w"] * p["d"] * (1 + abs(p["bend"]) * p["w"] / 2)

    def sample(self, n: int, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
        """``n`` points and their normals on the part, in object coordinates."""
        fn: Callable[..., tuple[np.ndarray, ...]] = {
            "ellipsoid": _ellipsoid,
            "box": _box,
            "frustum": _frustum,
            "torus": _torus,
            "sheet": _sheet,
        }[self.kind]
        pts, nrm = fn(n, rng, **self.params)
        if self.rot is not None:
            pts, nrm = pts @ self.rot.T, nrm @ self.rot.T
        return pts + np.asarray(self.offset), nrm


def rot_x(a: float) -> np.ndarray:
    """Rotation by ``a`` radians about x, ``(3, 3)``."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_z(a: float) -> np.ndarray:
    """Rotation by ``a`` radians about z, ``(3, 3)``."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def rot_y(a: float) -> np.ndarray:
    """Rotation by ``a`` radians about y (the up axis), ``(3, 3)``."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def cylinder(
    r: float,
    h: float,
    tag: str,
    offset=(0.0, 0.0, 0.0),
    caps=(True, True),
    rot=None,
) -> Part:
    """A capped (or open, per ``caps``) cylinder of radius ``r`` and height ``h`` along y."""
    return Part(
        "frustum", {"r0": r, "r1": r, "h": h, "cap0": caps[0], "cap1": caps[1]}, tag, offset, rot
    )
