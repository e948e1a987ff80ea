"""The procedural objects: one builder per class, and the sampling of one instance.

A builder draws an object's proportions from ``rng`` and returns its :class:`Part` list;
:func:`sample_shape` turns the parts into a point cloud with normals and part indices.
:data:`CLASSIFICATION_CLASSES` and :data:`SEGMENTATION_CATEGORIES` list the builders of
each task in label order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .primitives import Part, Rng, cylinder, rot_x, rot_y, rot_z, unit

__all__ = ["CLASSIFICATION_CLASSES", "SEGMENTATION_CATEGORIES", "sample_shape"]


def _b_sphere(rng: Rng) -> list[Part]:
    r = rng.uniform(0.9, 1.1, size=3)
    return [Part("ellipsoid", {"radii": tuple(r)}, "body")]


def _b_cube(rng: Rng) -> list[Part]:
    return [Part("box", {"size": tuple(rng.uniform(0.75, 1.25, size=3))}, "body")]


def _b_cylinder(rng: Rng) -> list[Part]:
    return [cylinder(rng.uniform(0.3, 0.6), rng.uniform(0.8, 2.0), "body")]


def _b_cone(rng: Rng) -> list[Part]:
    r, h = rng.uniform(0.4, 0.8), rng.uniform(0.8, 1.8)
    tip = rng.uniform(0.0, 0.08)
    return [Part("frustum", {"r0": r, "r1": tip, "h": h, "cap0": True, "cap1": False}, "body")]


def _b_torus(rng: Rng) -> list[Part]:
    return [Part("torus", {"big": rng.uniform(0.6, 0.9), "small": rng.uniform(0.15, 0.35)}, "body")]


def _b_sheet(rng: Rng) -> list[Part]:
    return [
        Part(
            "sheet",
            {
                "w": rng.uniform(1.2, 2.0),
                "d": rng.uniform(1.0, 2.0),
                "bend": rng.uniform(-0.35, 0.35),
            },
            "body",
        )
    ]


def _legs(
    rng: Rng, w: float, d: float, height: float, top_y: float, tag: str, inset: float
) -> list[Part]:
    r = rng.uniform(0.03, 0.06)
    square = rng.uniform() < 0.5
    out = []
    for sx in (-1, 1):
        for sz in (-1, 1):
            off = (sx * (w / 2 - inset), top_y - height / 2, sz * (d / 2 - inset))
            if square:
                out.append(Part("box", {"size": (2 * r, height, 2 * r)}, tag, off))
            else:
                out.append(cylinder(r, height, tag, off, caps=(True, False)))
    return out


def _b_table(rng: Rng) -> list[Part]:
    w, d = rng.uniform(1.2, 2.0), rng.uniform(0.8, 1.4)
    t, height = rng.uniform(0.05, 0.1), rng.uniform(0.6, 1.0)
    parts = [Part("box", {"size": (w, t, d)}, "top", (0, height, 0))]
    if rng.uniform() < 0.3:  # pedestal table
        parts.append(cylinder(rng.uniform(0.05, 0.1), height, "leg", (0, height / 2, 0)))
        parts.append(cylinder(rng.uniform(0.3, 0.5), 0.04, "support", (0, 0.02, 0)))
    else:
        parts += _legs(rng, w, d, height, height - t / 2, "leg", rng.uniform(0.05, 0.15))
        if rng.uniform() < 0.7:  # stretchers between the legs
            y = rng.uniform(0.15, 0.4) * height
            s = 0.03
            parts.append(Part("box", {"size": (w * 0.8, s, s)}, "support", (0, y, d / 2 * 0.8)))
            parts.append(Part("box", {"size": (w * 0.8, s, s)}, "support", (0, y, -d / 2 * 0.8)))
    return parts


def _b_chair(rng: Rng) -> list[Part]:
    w, d = rng.uniform(0.8, 1.1), rng.uniform(0.8, 1.0)
    t, seat_y = rng.uniform(0.06, 0.12), rng.uniform(0.7, 0.95)
    back_h = rng.uniform(0.7, 1.2)
    tilt = rng.uniform(0.0, 0.25)
    parts = [Part("box", {"size": (w, t, d)}, "seat", (0, seat_y, 0))]
    parts.append(
        Part(
            "box",
            {"size": (w, back_h, t)},
            "back",
            (0, seat_y + back_h / 2, -d / 2 + t / 2 - np.sin(tilt) * back_h / 2),
            rot_x(-tilt),
        )
    )
    parts += _legs(rng, w, d, seat_y, seat_y - t / 2, "leg", 0.06)
    if rng.uniform() < 0.4:
        for sx in (-1, 1):
            parts.append(
                Part(
                    "box",
                    {"size": (0.06, 0.06, d * 0.8)},
                    "arm",
                    (sx * (w / 2 - 0.03), seat_y + 0.3, 0),
                )
            )
            parts.append(
                Part(
                    "box",
                    {"size": (0.05, 0.3, 0.05)},
                    "arm",
                    (sx * (w / 2 - 0.03), seat_y + 0.15, d * 0.3),
                )
            )
    return parts


def _b_lamp(rng: Rng) -> list[Part]:
    base_r, base_h = rng.uniform(0.3, 0.5), rng.uniform(0.05, 0.12)
    pole_h = rng.uniform(1.2, 2.0)
    r0, r1, sh = rng.uniform(0.35, 0.6), rng.uniform(0.12, 0.3), rng.uniform(0.3, 0.55)
    top = base_h + pole_h
    return [
        cylinder(base_r, base_h, "base", (0, base_h / 2, 0)),
        cylinder(
            rng.uniform(0.025, 0.05),
            pole_h,
            "tube",
            (0, base_h + pole_h / 2, 0),
            caps=(False, False),
        ),
        Part(
            "frustum",
            {"r0": r0, "r1": r1, "h": sh, "cap0": False, "cap1": False},
            "shade",
            (0, top - sh * 0.3, 0),
        ),
        cylinder(r1 * 0.5, 0.05, "canopy", (0, top - sh * 0.3 + sh / 2 + 0.025, 0)),
    ]


def _b_mug(rng: Rng) -> list[Part]:
    r, h = rng.uniform(0.4, 0.6), rng.uniform(0.8, 1.3)
    hr = rng.uniform(0.2, 0.35)
    handle = Part(
        "torus",
        {"big": hr, "small": rng.uniform(0.04, 0.07), "arc": np.pi},
        "handle",
        (r, rng.uniform(-0.1, 0.1) * h, 0),
        rot_z(-np.pi / 2) @ rot_x(-np.pi / 2),
    )  # half ring in the xy plane, +x
    return [cylinder(r, h, "cup", caps=(True, False)), handle]


def _b_airplane(rng: Rng) -> list[Part]:
    length, rad = rng.uniform(2.0, 3.0), rng.uniform(0.12, 0.22)
    span, chord = rng.uniform(1.8, 3.0), rng.uniform(0.35, 0.7)
    wing_x = rng.uniform(-0.15, 0.2) * length
    tail_x = -length / 2 + 0.15
    parts = [
        Part("ellipsoid", {"radii": (length / 2, rad, rad)}, "body"),
        Part(
            "box",
            {"size": (chord, 0.04, span)},
            "wing",
            (wing_x, -rad * 0.3, 0),
            rot_y(rng.uniform(-0.3, 0.3)),
        ),
        Part("box", {"size": (0.3, 0.03, span * 0.35)}, "tail", (tail_x, rad * 0.5, 0)),
        Part("box", {"size": (0.35, 0.45, 0.03)}, "tail", (tail_x, rad + 0.2, 0)),
    ]
    if rng.uniform() < 0.8:
        for sz in (-1, 1):
            z = sz * span * rng.uniform(0.18, 0.3)
            parts.append(
                cylinder(
                    0.07,
                    0.35,
                    "engine",
                    (wing_x + 0.1, -rad * 0.3 - 0.12, z),
                    rot=rot_z(np.pi / 2),
                )
            )
    return parts


def _b_bottle(rng: Rng) -> list[Part]:
    r, h = rng.uniform(0.3, 0.5), rng.uniform(1.0, 1.6)
    neck_r, sh, nh = rng.uniform(0.08, 0.15), rng.uniform(0.2, 0.4), rng.uniform(0.2, 0.45)
    return [
        cylinder(r, h, "body", (0, h / 2, 0), caps=(True, False)),
        Part(
            "frustum",
            {"r0": r, "r1": neck_r, "h": sh, "cap0": False, "cap1": False},
            "body",
            (0, h + sh / 2, 0),
        ),
        cylinder(neck_r, nh, "neck", (0, h + sh + nh / 2, 0), caps=(False, False)),
    ]


#: Classification classes of the synthetic set, in label order.
CLASSIFICATION_CLASSES: dict[str, Callable[[Rng], list[Part]]] = {
    "sphere": _b_sphere,
    "cube": _b_cube,
    "cylinder": _b_cylinder,
    "cone": _b_cone,
    "torus": _b_torus,
    "sheet": _b_sheet,
    "table": _b_table,
    "chair": _b_chair,
    "lamp": _b_lamp,
    "mug": _b_mug,
    "airplane": _b_airplane,
    "bottle": _b_bottle,
}

#: Part-segmentation categories: builder and part tag -> global ShapeNetPart part id.
SEGMENTATION_CATEGORIES: dict[str, tuple[Callable[[Rng], list[Part]], dict[str, int]]] = {
    "Airplane": (_b_airplane, {"body": 0, "wing": 1, "tail": 2, "engine": 3}),
    "Chair": (_b_chair, {"back": 12, "seat": 13, "leg": 14, "arm": 15}),
    "Lamp": (_b_lamp, {"base": 24, "shade": 25, "canopy": 26, "tube": 27}),
    "Mug": (_b_mug, {"handle": 36, "cup": 37}),
    "Table": (_b_table, {"top": 47, "leg": 48, "support": 49}),
}


def sample_shape(
    parts: list[Part],
    points: int,
    rng: Rng,
    *,
    aniso: tuple[float, float] = (0.75, 1.33),
    noise: float = 0.01,
    cut_prob: float = 0.3,
    cut_radius: tuple[float, float] = (0.25, 0.45),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample one instance: points, normals and the part index of each point.

    Points are sampled on the parts in proportion to their area, then the whole shape is
    scaled anisotropically, rotated about y, cut (a random ball removed) with probability
    ``cut_prob``, normalised into the unit sphere, jittered by ``noise`` and shuffled.

    Shapes:
        returns ``(points, 3)`` float32, ``(points, 3)`` float32, ``(points,)`` int64.
    """
    over = int(points * 1.6) + 8
    areas = np.array([p.area() for p in parts], dtype=np.float64)
    counts = rng.multinomial(over, areas / areas.sum())
    pts, nrm, pid = [], [], []
    for i, (part, c) in enumerate(zip(parts, counts, strict=True)):
        if c == 0:
            continue
        p, n = part.sample(int(c), rng)
        pts.append(p)
        nrm.append(n)
        pid.append(np.full(int(c), i))
    P, N, I = np.concatenate(pts), np.concatenate(nrm), np.concatenate(pid)
    scale = rng.uniform(*aniso, size=3)
    rot = rot_y(rng.uniform(0, 2 * np.pi))
    P = (P * scale) @ rot.T
    N = unit(N / scale) @ rot.T
    if rng.uniform() < cut_prob:
        centre = P[rng.integers(P.shape[0])]
        radius = rng.uniform(*cut_radius) * np.linalg.norm(P - P.mean(0), axis=1).max()
        keep = np.linalg.norm(P - centre, axis=1) > radius
        if keep.sum() >= points // 2:
            P, N, I = P[keep], N[keep], I[keep]
    sel = rng.choice(P.shape[0], size=points, replace=P.shape[0] < points)
    P, N, I = P[sel], N[sel], I[sel]
    P = P - P.mean(0)
    P = P / np.linalg.norm(P, axis=1).max()
    P = P + rng.normal(scale=noise, size=P.shape)
    P = P / max(1.0, float(np.linalg.norm(P, axis=1).max()))
    return P.astype(np.float32), N.astype(np.float32), I.astype(np.int64)
