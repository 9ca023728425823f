"""Teeth, tongue and a dark mouth cavity for any FLAME head (procedural, bpy-free).

FLAME is a skin: its lips roll inwards into a short tube that ends at an open
boundary loop (MOUTH_LOOP), so an open mouth shows the inside of the head. This
module builds what sits behind that loop, in the FLAME template's units and axes
(metres, +X the head's left, +Y up, +Z forward), fitted to each head's own mouth:

- upper and lower teeth: six per side (incisors to first molar), rounded boxes
  along an elliptic dental arch whose front sits just behind the loop's front
  (upper incisors over the lower ones: overbite and overjet), whose width follows
  the loop's width and whose occlusal plane is the head's lip line;
- a tongue resting inside the lower arch, below the lower incisor tips;
- a cavity: an open-fronted dark bag whose rim hugs the loop from behind, so
  whatever shows through the lips is teeth, tongue or dark.

The head's rig frame (Rig.head_frame: scale and rotation from FLAME axes into the
head's coordinates) carries the result into the head's own space, so a head
imported Z-up, in centimetres or posed gets the same mouth.

The jaw. Upper teeth are fixed to the skull. Lower teeth and tongue (and the
cavity's floor, by a weight falling to 0 at the lip line) follow the mandible:
the rigid motion that best fits the rig's jaw_open field on the chin and lower lip
(residual ~0.1 mm). Like the face's own jaw_open shape key it is linear in the
weight, so `jaw_offsets` baked as a shape key and driven by the face's jaw_open
value keeps the lower teeth where the lower lip goes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flame import LOWER_LIP_EDGE, UPPER_LIP_EDGE, VERTEX_COUNT

# The open boundary at the back of FLAME's lip tube (same on every FLAME head: a
# property of the face list; tests/test_mouth_interior.py checks it is a boundary loop).
MOUTH_LOOP = (1572, 1573, 1860, 1862, 1830, 1835, 1852, 3497, 2941, 2933, 2930, 2945,
              2943, 2709, 2708, 2730, 2731, 2861, 2862, 2857, 2854, 2782, 2783, 3514,
              1666, 1665, 1739, 1742, 1747, 1746, 1595, 1594)

PARTS = ("upper_teeth", "lower_teeth", "tongue", "cavity")
# Viewport / material colours (linear RGB).
COLORS = {"upper_teeth": (0.80, 0.76, 0.66), "lower_teeth": (0.80, 0.76, 0.66),
          "tongue": (0.45, 0.10, 0.10), "cavity": (0.02, 0.004, 0.004)}

MM = 1e-3
# Crown width along the arch, labial-lingual thickness, crown height (mm): central
# incisor, lateral incisor, canine, two premolars, first molar (adult averages).
UPPER_TEETH = ((8.5, 7.0, 10.0), (6.5, 6.0, 8.8), (7.5, 7.5, 9.5), (7.0, 8.5, 8.0),
               (6.5, 8.5, 7.5), (10.0, 10.0, 7.0))
LOWER_TEETH = ((5.3, 6.0, 8.5), (5.9, 6.0, 8.8), (6.9, 7.0, 9.5), (7.0, 7.5, 8.0),
               (7.0, 8.0, 7.5), (11.0, 10.0, 7.0))
ARCH_DEPTH = 40 * MM          # the elliptic arch: front to where it would turn parallel
BEHIND_LOOP = 2.0 * MM        # upper incisors' front this far behind the loop's front
ARCH_SHRINK = 4.0 * MM        # the arch's half-width = the loop's half-width minus this
UPPER_TIP = -1.5 * MM         # upper incisor tips this far below the upper lip's lowest point
SMILE_ARC = (0.0, 0.3, 1.0, 3.2, 4.0, 4.6)   # mm: posterior tips higher (behind the upper lip)
OVERBITE = 1.8 * MM           # lower incisor tips above the upper ones, behind them
OVERJET = 4.5 * MM            # lower front arch this far behind the upper one
JAW_FIT_SHARE = 0.8           # jaw fit on vertices moving >= this share of the field's max


@dataclass
class Part:
    name: str
    vertices: np.ndarray       # (N, 3) head-local rest positions
    faces: np.ndarray          # (F, 3) triangles
    offsets: dict              # control name -> (N, 3) offsets at weight 1 (absent: does not move)

    @property
    def jaw_offsets(self) -> np.ndarray:
        return self.offsets.get("jaw_open", np.zeros_like(self.vertices))

    def at(self, controls) -> np.ndarray:
        """Posed vertices; `controls`: {name: weight} or a (C,) array in CONTROLS order."""
        if not isinstance(controls, dict):
            from .rig import CONTROLS
            controls = dict(zip(CONTROLS, np.asarray(controls, np.float64).ravel()))
        out = self.vertices.copy()
        for name, offset in self.offsets.items():
            out += float(controls.get(name, 0.0)) * offset
        return out


@dataclass
class MouthInterior:
    parts: dict                # name -> Part, PARTS order
    forward: np.ndarray        # (3,) the head's forward axis (unit, head-local)
    up: np.ndarray             # (3,) the head's up axis
    right: np.ndarray          # (3,) the head's +X (FLAME left) axis

    def posed(self, controls) -> dict:
        return {name: part.at(controls) for name, part in self.parts.items()}


# --------------------------------------------------------------------------
# Frames


class _Frame:
    """Template <-> head coordinates through the rig's head frame."""

    def __init__(self, head: np.ndarray, rig):
        frame = np.asarray(rig.head_frame(head), np.float64)
        self.scale = float(np.cbrt(np.linalg.det(frame)))
        self.rotation = frame / self.scale
        self.head_centre = head[rig.anchor_index].astype(np.float64).mean(0)
        self.template_centre = np.asarray(rig.anchor_positions, np.float64).mean(0)

    def to_template(self, p):
        return self.template_centre + (np.asarray(p, np.float64) - self.head_centre) @ self.rotation / self.scale

    def to_head(self, q):
        return self.head_centre + self.scale * (np.asarray(q, np.float64) - self.template_centre) @ self.rotation.T


def jaw_motion(head: np.ndarray, rig) -> tuple[np.ndarray, np.ndarray]:
    """Rigid (R, t) in head coordinates fitted to the jaw_open field at weight 1."""
    field = np.asarray(rig.fields_for(head)[0], np.float64)
    size = np.linalg.norm(field, axis=1)
    index = np.flatnonzero(size >= JAW_FIT_SHARE * size.max())
    p = np.asarray(head, np.float64)[index]
    q = p + field[index]
    pc, qc = p.mean(0), q.mean(0)
    u, _, vt = np.linalg.svd((q - qc).T @ (p - pc))
    d = np.sign(np.linalg.det(u @ vt))
    rotation = u @ np.diag([1.0, 1.0, d]) @ vt
    return rotation, qc - pc @ rotation.T


# --------------------------------------------------------------------------
# Shapes (template units)


def _superellipsoid(n_lat: int, n_lon: int, e_lat: float, e_lon: float):
    """Unit rounded box: (V, 3) points in [-1, 1]^3 and (F, 3) outward triangles.
    Axes: x along the arch, y up, z inwards; poles at y = +-1."""
    def f(c, e):
        return np.sign(c) * np.abs(c) ** e
    lat = np.linspace(-np.pi / 2, np.pi / 2, n_lat + 2)[1:-1]
    lon = np.linspace(-np.pi, np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    ring = np.stack([f(np.cos(la), e_lat) * f(np.cos(lo), e_lon), f(np.sin(la), e_lat),
                     f(np.cos(la), e_lat) * f(np.sin(lo), e_lon)], -1).reshape(-1, 3)
    points = np.concatenate([ring, [[0.0, -1.0, 0.0], [0.0, 1.0, 0.0]]])
    south, north = len(ring), len(ring) + 1
    faces = []
    for i in range(n_lat - 1):
        for j in range(n_lon):
            a, b = i * n_lon + j, i * n_lon + (j + 1) % n_lon
            c, d = a + n_lon, b + n_lon
            faces += [(a, c, b), (b, c, d)]
    top = (n_lat - 1) * n_lon
    for j in range(n_lon):
        faces.append((south, j, (j + 1) % n_lon))
        faces.append((north, top + (j + 1) % n_lon, top + j))
    faces = np.array(faces, np.int64)
    # Orient outwards (check one face).
    t = points[faces[0]]
    if np.cross(t[1] - t[0], t[2] - t[0]) @ t.mean(0) < 0:
        faces = faces[:, ::-1]
    return points, faces


def _arch(half_width: float, depth: float, samples: int = 400):
    """Right half of an elliptic arch from the midline: (x, back) by arc length."""
    t = np.linspace(0.0, np.pi / 2, samples)
    x, back = half_width * np.sin(t), depth * (1 - np.cos(t))
    s = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(back)))])
    return s, x, back


def _on_arch(arch, s_at):
    s, x, back = arch
    xi, bi = np.interp(s_at, s, x), np.interp(s_at, s, back)
    eps = 1e-4
    dx = np.interp(s_at + eps, s, x) - np.interp(s_at - eps, s, x)
    db = np.interp(s_at + eps, s, back) - np.interp(s_at - eps, s, back)
    tangent = np.array([dx, 0.0, -db])          # along +s: to +x, backwards (-z)
    tangent /= np.linalg.norm(tangent)
    inward = np.array([-tangent[2], 0.0, tangent[0]])  # rotate in the xz plane: towards the midline/back
    if inward[2] > 0 or (abs(inward[2]) < 1e-9 and inward[0] > 0):
        inward = -inward
    return xi, bi, tangent, inward


def _teeth(mouth, upper: bool):
    """Twelve teeth of one jaw as one (V, 3), (F, 3) mesh in template units."""
    unit, unit_faces = _superellipsoid(7, 12, 0.45, 0.45)
    table = UPPER_TEETH if upper else LOWER_TEETH
    half_width = mouth["half_width"] - ARCH_SHRINK - (0.0 if upper else OVERJET * 0.6)
    front = mouth["front"] - BEHIND_LOOP - (0.0 if upper else OVERJET)
    arch = _arch(half_width, ARCH_DEPTH - (0.0 if upper else OVERJET))
    vertices, faces = [], []
    for side in (1.0, -1.0):
        s0 = 0.15 * MM
        for i, (width, thick, height) in enumerate(table):
            width, thick, height = width * MM, thick * MM, height * MM
            x, back, tangent, inward = _on_arch(arch, s0 + width / 2)
            s0 += width + 0.15 * MM
            tip = mouth["upper_tip"] + SMILE_ARC[i] * MM
            if not upper:
                tip += OVERBITE if i < 3 else -0.3 * MM
            local = unit.copy()
            # Tapered towards the biting edge (incisors more than molars).
            edge = (local[:, 1] + 1) / 2 if upper else (1 - local[:, 1]) / 2   # 0 at the tip
            taper = (0.45 if i < 3 else 0.75) + (0.55 if i < 3 else 0.25) * edge
            local[:, 2] *= taper
            local[:, 0] *= 0.92 + 0.08 * edge
            centre_y = tip + (height / 2 if upper else -height / 2)
            labial = np.array([side * x, 0.0, front - back])
            t = tangent * np.array([side, 1.0, 1.0])
            n = inward * np.array([side, 1.0, 1.0])
            # Thickness measured from the labial face inwards.
            points = (labial + np.outer(local[:, 0] * width / 2, t)
                      + np.outer((local[:, 2] + 1) * thick / 2, n))
            points[:, 1] = centre_y + local[:, 1] * height / 2
            tri = unit_faces if side > 0 else unit_faces[:, ::-1]
            faces.append(tri + sum(len(v) for v in vertices))
            vertices.append(points)
    return np.concatenate(vertices), np.concatenate(faces)


def _tongue(mouth):
    unit, faces = _superellipsoid(8, 16, 0.7, 0.6)
    half_w = mouth["half_width"] - ARCH_SHRINK - OVERJET - 5.5 * MM
    half_h, half_l = 5.5 * MM, 22 * MM
    top = mouth["upper_tip"] + OVERBITE - 4.0 * MM
    tip_z = mouth["front"] - BEHIND_LOOP - OVERJET - 6.5 * MM
    p = unit.copy()
    p[:, 1] = np.where(p[:, 1] < 0, p[:, 1] * 0.6, p[:, 1])           # flatter underneath
    width = half_w * (0.75 + 0.25 * np.clip(-p[:, 2], 0, 1))           # narrower at the tip
    points = np.stack([p[:, 0] * width, top - half_h + p[:, 1] * half_h,
                       tip_z - half_l - p[:, 2] * half_l], 1)
    return points, faces


def _cavity(mouth, loop_template: np.ndarray):
    """Bag sealed to the lips: its first ring is the loop itself (the back edge of the
    lip tube), the next rings open out behind it and close at the back, so no view
    through the lips reaches the inside of the head. Faces point inwards."""
    rim_w = mouth["half_width"] + 2.5 * MM
    top, bottom = mouth["lip_line"] + 14 * MM, mouth["lip_line"] - 22 * MM
    mid_y, half_h = (top + bottom) / 2, (top - bottom) / 2
    depth = np.array([2, 6, 12, 20, 29, 38, 45, 50, 53]) * MM
    widen = np.array([1.0, 1.08, 1.12, 1.12, 1.08, 0.98, 0.8, 0.55, 0.12])
    tall = np.array([1.0, 1.05, 1.08, 1.08, 1.05, 0.95, 0.78, 0.5, 0.12])
    loop = loop_template.copy()
    loop[:, 0] -= mouth["centre_x"]
    angle = np.arctan2((loop[:, 1] - mid_y) / half_h, loop[:, 0] / rim_w)
    order = np.argsort(angle)
    ring0 = order                               # loop vertices by angle round the mouth
    angle = angle[order]
    around = len(angle)
    c, s = np.cos(angle), np.sin(angle)
    ex = 0.35
    ux, uy = np.sign(c) * np.abs(c) ** ex, np.sign(s) * np.abs(s) ** ex
    points = [loop[order]]
    for k in range(len(depth)):
        x = ux * rim_w * widen[k]
        y = mid_y + uy * half_h * tall[k]
        # The bag's front bends back with the loop's curve.
        z = mouth["front"] - mouth["curve"] * np.minimum(np.abs(x), rim_w) ** 2 - depth[k]
        points.append(np.stack([x, y, z], 1))
    points = np.concatenate(points)
    rings = len(depth) + 1
    faces = []
    for k in range(rings - 1):
        for j in range(around):
            a, b = k * around + j, k * around + (j + 1) % around
            cc, d = a + around, b + around
            faces += [(a, b, cc), (b, d, cc)]
    back = len(points)
    points = np.concatenate([points, [[0.0, mid_y, points[-around:, 2].mean() - 1 * MM]]])
    top_ring = (rings - 1) * around
    faces += [(top_ring + j, top_ring + (j + 1) % around, back) for j in range(around)]
    faces = np.array(faces, np.int64)
    # Inwards: the normal of a side face points towards the bag's axis.
    t = points[faces[around * 2 + around // 4]]
    axis_point = np.array([0.0, mid_y, t[:, 2].mean()])
    if np.cross(t[1] - t[0], t[2] - t[0]) @ (axis_point - t.mean(0)) < 0:
        faces = faces[:, ::-1]
    return points, faces, np.asarray(MOUTH_LOOP)[ring0]


def mouth_measures(head_template: np.ndarray, jaw_field: np.ndarray) -> dict:
    """The head's mouth in template units: lip line height, the loop's front depth,
    half-width and how fast it bends back (z = front - curve * x^2), and where the
    upper incisor tips go (just below the upper lip's lowest point on the midline:
    the lip's inner side hangs below its edge)."""
    loop = head_template[list(MOUTH_LOOP)]
    centre_x = (loop[:, 0].max() + loop[:, 0].min()) / 2
    dx = loop[:, 0] - centre_x
    near = np.abs(dx) < 6 * MM
    front = float(loop[near, 2].max())
    half_width = float((loop[:, 0].max() - loop[:, 0].min()) / 2)
    corner = float(loop[np.abs(dx) > half_width - 2 * MM, 2].min())
    lip_line = float((head_template[UPPER_LIP_EDGE, 1] + head_template[LOWER_LIP_EDGE, 1]) / 2)
    size = np.linalg.norm(jaw_field, axis=1)
    lips = ((np.abs(head_template[:, 0] - centre_x) < 6 * MM) & (size < 0.2 * size.max())
            & (head_template[:, 2] > front - 1 * MM)
            & (np.abs(head_template[:, 1] - lip_line) < 12 * MM))
    upper_low = float(head_template[lips, 1].min())
    return {"centre_x": float(centre_x), "front": front, "half_width": half_width,
            "curve": max((front - corner) / half_width ** 2, 0.0), "lip_line": lip_line,
            "upper_low": upper_low, "upper_tip": upper_low + UPPER_TIP,
            "loop_top": float(loop[near, 1].max()), "loop_bottom": float(loop[near, 1].min())}


def build(head: np.ndarray, rig=None) -> MouthInterior:
    """Teeth, tongue and cavity for `head` ((5023, 3) rest vertices, any frame)."""
    from .rig import load_rig
    head = np.asarray(head, np.float64)
    if head.shape != (VERTEX_COUNT, 3):
        raise ValueError(f"a FLAME head has {VERTEX_COUNT} vertices, got {head.shape}")
    rig = rig or load_rig()
    frame = _Frame(head, rig)
    mouth = mouth_measures(frame.to_template(head), rig.fields[0])
    jaw_r, jaw_t = jaw_motion(head, rig)

    def place(points):
        p = points.copy()
        p[:, 0] += mouth["centre_x"]
        return frame.to_head(p)

    def jaw(points, weight=1.0):
        return (points @ jaw_r.T + jaw_t - points) * np.asarray(weight, np.float64).reshape(-1, 1)

    parts = {}
    upper, upper_faces = _teeth(mouth, upper=True)
    v = place(upper)
    parts["upper_teeth"] = Part("upper_teeth", v, upper_faces, {})
    lower, lower_faces = _teeth(mouth, upper=False)
    v = place(lower)
    parts["lower_teeth"] = Part("lower_teeth", v, lower_faces, {"jaw_open": jaw(v)})
    tongue, tongue_faces = _tongue(mouth)
    v = place(tongue)
    parts["tongue"] = Part("tongue", v, tongue_faces, {"jaw_open": jaw(v)})
    cavity, cavity_faces, rim = _cavity(mouth, frame.to_template(head[list(MOUTH_LOOP)]))
    v = place(cavity)
    v[:len(rim)] = head[rim]                       # exactly the lips' loop
    # The floor follows the jaw, the roof the skull; smooth in between. The first ring
    # is the lips' own loop: it moves with every mouth control, as the face does.
    below = np.clip((mouth["lip_line"] + 3 * MM - cavity[:, 1]) / (12 * MM), 0.0, 1.0)
    offsets = {"jaw_open": jaw(v, below * below * (3 - 2 * below))}
    fields = rig.fields_for(head)
    from .rig import CONTROLS
    for c, name in enumerate(CONTROLS):
        field = np.asarray(fields[c], np.float64)[rim]
        if not np.any(field):
            continue
        offset = offsets.get(name, np.zeros_like(v))
        offset[:len(rim)] = field
        offsets[name] = offset
    parts["cavity"] = Part("cavity", v, cavity_faces, offsets)
    rotation = frame.rotation
    return MouthInterior(parts, forward=rotation[:, 2], up=rotation[:, 1], right=rotation[:, 0])


# --------------------------------------------------------------------------
# Checks (used by the tests and the contact sheet)


def ray_hits(origins: np.ndarray, direction: np.ndarray, triangles: np.ndarray,
             chunk: int = 256, cells: int = 16) -> np.ndarray:
    """(N,) number of triangles ((F, 3, 3)) each ray origin + t * direction (t > 0) crosses.

    The origins are grouped into a cells x cells grid across the rays; each group is
    tested (Moller-Trumbore) only against the triangles whose shadow along the rays
    overlaps its box: the same count as testing all of them, at a fraction of the cost."""
    origins = np.asarray(origins, np.float64)
    d = np.asarray(direction, np.float64)
    triangles = np.asarray(triangles, np.float64)
    out = np.zeros(len(origins), np.int64)
    if not len(origins) or not len(triangles):
        return out
    across = _across(d)                                       # (2, 3): the plane the rays cross
    shadow = triangles @ across.T                             # (F, 3, 2)
    low, high = shadow.min(1), shadow.max(1)
    spots = origins @ across.T                                # (N, 2)
    start, size = spots.min(0), np.ptp(spots, 0) / cells + 1e-12
    cell = np.minimum(((spots - start) / size).astype(np.int64), cells - 1)
    groups = cell[:, 0] * cells + cell[:, 1]
    margin = 1e-9 + 1e-9 * np.abs(shadow).max()
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        box_low, box_high = spots[members].min(0) - margin, spots[members].max(0) + margin
        near = ((high >= box_low) & (low <= box_high)).all(1)
        if near.any():
            out[members] = _crossings(origins[members], d, triangles[near], chunk)
    return out


def _across(direction: np.ndarray) -> np.ndarray:
    """Two unit axes perpendicular to `direction` (and to each other)."""
    unit = direction / np.linalg.norm(direction)
    helper = np.eye(3)[np.argmin(np.abs(unit))]
    first = np.cross(unit, helper)
    first /= np.linalg.norm(first)
    return np.stack([first, np.cross(unit, first)])


def _crossings(origins: np.ndarray, d: np.ndarray, triangles: np.ndarray, chunk: int) -> np.ndarray:
    v0 = triangles[:, 0]
    e1, e2 = triangles[:, 1] - v0, triangles[:, 2] - v0
    p = np.cross(d, e2)
    det = (e1 * p).sum(1)
    ok = np.abs(det) > 1e-20
    v0, e1, e2, p, det = v0[ok], e1[ok], e2[ok], p[ok], det[ok]
    out = np.zeros(len(origins), np.int64)
    for lo in range(0, len(origins), chunk):
        s = origins[lo:lo + chunk, None] - v0[None]
        u = (s * p).sum(2) / det
        q = np.cross(s, e1[None])
        w = (q @ d) / det
        t = (q * e2[None]).sum(2) / det
        hit = (u >= 0) & (w >= 0) & (u + w <= 1) & (t > 1e-9)
        out[lo:lo + chunk] = hit.sum(1)
    return out


def visible_from_front(points: np.ndarray, head_posed: np.ndarray, faces: np.ndarray,
                       forward: np.ndarray) -> np.ndarray:
    """(N,) True where a ray from the point towards the viewer in front of the face
    (along +forward) crosses no triangle of the posed head (orthographic front view;
    the interior does not occlude itself here, so this over-counts: conservative)."""
    tri = np.asarray(head_posed, np.float64)[faces]
    return ray_hits(points, forward, tri) == 0


def lip_clearance(points: np.ndarray, head_posed: np.ndarray, interior: MouthInterior,
                  lip: str = "upper") -> np.ndarray:
    """(N,) forward distance from each point to the `lip` ("upper" or "lower") at the
    lip line: the loop where that lip's inner surface ends, at the point's lateral
    position (beyond the corners, the corner's depth). >= 0 means behind the lip."""
    loop = np.asarray(head_posed, np.float64)[list(MOUTH_LOOP)]
    lateral, depth, up = loop @ interior.right, loop @ interior.forward, loop @ interior.up
    order = np.argsort(lateral)
    corners = order[[0, -1]]
    # The loop's halves: the chain above / below the line through its two corners.
    line = np.interp(lateral, lateral[corners], up[corners])
    half = np.flatnonzero(up >= line if lip == "upper" else up < line)
    half = half[np.argsort(lateral[half])]
    xs = np.concatenate([[lateral[corners[0]]], lateral[half], [lateral[corners[1]]]])
    zs = np.concatenate([[depth[corners[0]]], depth[half], [depth[corners[1]]]])
    return np.interp(points @ interior.right, xs, zs) - points @ interior.forward
