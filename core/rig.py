"""The articulation rig: named controls, each a displacement field on FLAME topology.

Fields are built by `python tools/build_rig.py` from ../shared/assets/flame and
committed as core/data/rig_fields.npz. Offsets are linear in the weights, so a
baked shape key per control reproduces the rig exactly.
"""
from functools import lru_cache
from pathlib import Path

import numpy as np

from .flame import VERTEX_COUNT
from .npz import DataFileError, read_npz

# The one list of control names (order = column order of Performance.controls).
CONTROLS = (
    "jaw_open",         # mandible rotation about the jaw hinge (~20 mm lip drop at 1)
    "lips_close",       # lip edges meet (closes the neutral's lip gap)
    "lips_press",       # lips roll in and thin (M/P/B occlusion, before release)
    "pucker",           # lips forward and narrow (OW, UW, W)
    "funnel",           # lips forward, flared open (SH, CH, JH, ER)
    "stretch",          # mouth corners pulled wide (IY, EH)
    "smile",            # corners out, up and back
    "upper_lip_raise",  # upper lip lifts off the teeth
    "lower_lip_down",   # lower lip drops away from the teeth
    "lower_lip_tuck",   # lower lip up and back under the upper teeth (F, V)
)

# The upper face (eyes, brows, cheeks), after the mouth: models output CONTROLS only,
# the motion layers add these columns (ALL_CONTROLS order).
UPPER_FACE_CONTROLS = (
    "blink_left",        # left upper lid down over the eyeball to meet the lower lid (FLAME +x side)
    "blink_right",       # same for the right eye (FLAME -x side)
    "brow_raise_inner",  # inner brows up (AU1), both sides
    "brow_raise_outer",  # outer brows up (AU2), both sides
    "brow_furrow",       # inner brows down and together (AU4)
    "squint",            # lids narrow, mostly the lower lid up (AU6/7), both eyes
    "cheek_raise",       # cheeks up and forward under the eyes (AU6)
)
ALL_CONTROLS = CONTROLS + UPPER_FACE_CONTROLS

# Which layer writes which control (the bake's F-curve groups; a layer switched off
# leaves its columns at 0 and every other column bit-identical).
CONTROL_LAYERS = {
    "mouth": CONTROLS,
    "eyes": ("blink_left", "blink_right"),
    "brows": ("brow_raise_inner", "brow_raise_outer", "brow_furrow"),
    "emotion": ("squint", "cheek_raise"),
}
LAYER_OF = {name: layer for layer, names in CONTROL_LAYERS.items() for name in names}
assert tuple(LAYER_OF) == ALL_CONTROLS

# Eyelid closure: fractions of the lid opening travelled by the upper / lower lid at
# weight 1 (blink: the lids meet; squint: narrows to ~half).
LID_TRAVEL = {"blink": (0.8, 0.2), "squint": (0.12, 0.33)}
LID_CLEARANCE = 0.0002  # m: closed lid skin stays this far outside the eyeball (or as far as at rest)
LID_SPREAD = 0.003      # m: radius over which a lift of the closed lid is shared by the skin around
LID_DIP = 0.0002        # m: at most this much less clearance mid-blink (linear shape-key path)
# Closed-lid relaxation: turned about the eye's centre, the lid keeps its rest folds (the
# upper-lid crease, a pit at the inner corner); a closed lid is stretched smooth. The
# closed shape is relaxed towards its neighbours' mean (uniform Laplacian), strongest
# between margin and region edge (sin²(pi * lid weight)): the margins meet where they did.
LID_RELAX_STEPS = 40
LID_RELAX_RATE = 0.5
LID_RELAX_CLEAR_EVERY = 5

RIG_FILE = Path(__file__).resolve().parent / "data" / "rig_fields.npz"
RIG_FIX = "reinstall the add-on, or rebuild the file from a checkout with `make rig`"


class Rig:
    def __init__(self, fields: np.ndarray, region: np.ndarray,
                 anchor_index: np.ndarray | None = None, anchor_positions: np.ndarray | None = None,
                 upper_fields: np.ndarray | None = None, upper_region: np.ndarray | None = None,
                 lids: dict | None = None):
        assert fields.shape == (len(CONTROLS), VERTEX_COUNT, 3)
        self.fields = fields.astype(np.float32)
        self.region = region.astype(bool)
        # Only region vertices ever move: work on that subset for speed.
        self.region_index = np.flatnonzero(self.region)
        self._region_fields = self.fields[:, self.region_index].reshape(len(CONTROLS), -1)
        self.anchor_index, self.anchor_positions = anchor_index, anchor_positions
        # Upper face: (7, 5023, 3) on the template, and the eyelid data that rebuilds
        # blink/squint on any head's own eyes (see eyelid_fields).
        self.upper_fields = None if upper_fields is None else upper_fields.astype(np.float32)
        self.upper_region = None if upper_region is None else upper_region.astype(bool)
        self.lids = lids
        if self.upper_fields is not None:
            assert self.upper_fields.shape == (len(UPPER_FACE_CONTROLS), VERTEX_COUNT, 3)
            self.all_fields = np.concatenate([self.fields, self.upper_fields])
            self.all_region = self.region | self.upper_region
            self._all_index = np.flatnonzero(self.all_region)
            self._all_region_fields = self.all_fields[:, self._all_index].reshape(len(ALL_CONTROLS), -1)

    def offsets(self, weights: np.ndarray) -> np.ndarray:
        """(T, C) control weights -> (T, 5023, 3) float32 vertex offsets."""
        weights = np.asarray(weights, np.float32)
        out = np.zeros((len(weights), VERTEX_COUNT, 3), np.float32)
        out[:, self.region_index] = (weights @ self._region_fields).reshape(len(weights), -1, 3)
        return out

    def field(self, name: str) -> np.ndarray:
        if name in CONTROLS:
            return self.fields[CONTROLS.index(name)]
        return self._upper()[UPPER_FACE_CONTROLS.index(name)]

    def _upper(self) -> np.ndarray:
        if self.upper_fields is None:
            raise ValueError(f"{RIG_FILE} has no upper-face fields: rebuild with `make rig`")
        return self.upper_fields

    def offsets_named(self, weights: np.ndarray, names) -> np.ndarray:
        """(T, len(names)) weights of any controls in ALL_CONTROLS -> (T, 5023, 3) float32
        offsets on the template frame (mouth-only names give exactly `offsets`)."""
        names = tuple(names)
        weights = np.asarray(weights, np.float32)
        if names == CONTROLS:
            return self.offsets(weights)
        self._upper()
        unknown = [n for n in names if n not in ALL_CONTROLS]
        if unknown:
            raise ValueError(f"unknown rig controls {unknown}: the rig has {', '.join(ALL_CONTROLS)}")
        full = np.zeros((len(weights), len(ALL_CONTROLS)), np.float32)
        full[:, [ALL_CONTROLS.index(n) for n in names]] = weights
        out = np.zeros((len(weights), VERTEX_COUNT, 3), np.float32)
        out[:, self._all_index] = (full @ self._all_region_fields).reshape(len(weights), -1, 3)
        return out

    def all_fields_for(self, head: np.ndarray) -> np.ndarray:
        """(17, 5023, 3) fields of ALL_CONTROLS in `head`'s coordinates. The mouth and
        brows/cheeks follow the head frame; blink and squint are rebuilt on the head's
        own eyeballs and lid opening, so the lids meet (and stay outside the eyeballs)
        on every head, not only on the template."""
        frame = self.head_frame(head)
        upper = self._upper() @ frame.T
        if self.lids is not None:
            for name, field in eyelid_fields(head, self.lids, frame).items():
                upper[UPPER_FACE_CONTROLS.index(name)] = field
        return np.concatenate([self.fields_for(head), upper])

    def head_frame(self, head: np.ndarray) -> np.ndarray:
        """3x3 linear map (scale * rotation) from FLAME axes into the head's own
        coordinates: a head imported Z-up, scaled to centimetres or posed gets
        offsets that move its lips the same way (Umeyama fit on rigid anchors)."""
        source = self.anchor_positions - self.anchor_positions.mean(0)
        target = head[self.anchor_index] - head[self.anchor_index].mean(0)
        u, sigma, vt = np.linalg.svd(target.T @ source)
        d = np.sign(np.linalg.det(u @ vt))
        correction = np.diag([1.0, 1.0, d])
        rotation = u @ correction @ vt
        scale = (sigma * np.diag(correction)).sum() / (source ** 2).sum()
        return (scale * rotation).astype(np.float32)

    def fields_for(self, head: np.ndarray) -> np.ndarray:
        """(C, 5023, 3) fields expressed in `head`'s coordinates."""
        return self.fields @ self.head_frame(head).T


def _sphere_fit(points: np.ndarray):
    a = np.c_[2 * points, np.ones(len(points))]
    x = np.linalg.lstsq(a, (points ** 2).sum(1), rcond=None)[0]
    centre = x[:3]
    return centre, float(np.sqrt(x[3] + centre @ centre))


def eye_cones(centre: np.ndarray, triangles: np.ndarray):
    """Each eyeball triangle (F, 3, 3) seen from `centre`: its corners' mean direction and
    the cosine of its angular radius. A ray from the centre can only hit a triangle within
    that radius of the mean (the triangle's cone is convex), so `eyeball_radius` tests
    only those pairs, without changing any hit: a ray meets ~5 of ~1000 faces."""
    corners = triangles - centre
    corner_dirs = corners / np.linalg.norm(corners, axis=2, keepdims=True)
    middle = corner_dirs.sum(1)
    middle /= np.linalg.norm(middle, axis=1, keepdims=True)
    reach = np.arccos(np.clip((corner_dirs * middle[:, None]).sum(2), -1, 1)).max(1)
    return middle, np.cos(np.minimum(reach + 1e-3, np.pi))


def eyeball_radius(points: np.ndarray, centre: np.ndarray, triangles: np.ndarray, cones=None) -> np.ndarray:
    """Distance from `centre` to the eyeball surface (triangles (F, 3, 3)) along the
    direction of each point: the eyeball (cornea bulge included) as a star-shaped mesh.
    `cones`: `eye_cones(centre, triangles)`, when the caller asks about one eye often."""
    if not len(points):
        return np.zeros(0)
    d = points - centre
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    middle, cos_reach = eye_cones(centre, triangles) if cones is None else cones
    ray, face = np.nonzero(d @ middle.T >= cos_reach[None])
    d, triangles = d[ray], triangles[face]                  # one row per pair (Moller-Trumbore)
    v0, e1, e2 = triangles[:, 0], triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]
    p = np.cross(d, e2)
    det = (e1 * p).sum(1)
    det = np.where(np.abs(det) < 1e-18, 1e-18, det)
    s = centre - v0
    u = (s * p).sum(1) / det
    q = np.cross(s, e1)
    w = (d * q).sum(1) / det
    t = (e2 * q).sum(1) / det
    hit = (u >= -1e-6) & (w >= -1e-6) & (u + w <= 1 + 1e-6) & (t > 0)
    out = np.full(len(points), np.inf)
    np.minimum.at(out, ray[hit], t[hit])
    return out


def _outside_eye(points, moved, centre, triangles, want, cones=None) -> np.ndarray:
    """`points` with the `moved` ones pushed out radially to `want` outside the eyeball."""
    points = points.copy()
    radius = np.linalg.norm(points[moved] - centre, axis=1)
    need = np.maximum(radius, eyeball_radius(points[moved], centre, triangles, cones) + want[moved])
    points[moved] = centre + (points[moved] - centre) * (need / radius)[:, None]
    return points


def _relax_closed_lid(target, index, lids, clear_of_eye) -> np.ndarray:
    """The closed lid (`target`, positions of the lid vertices `index`) relaxed smooth,
    kept outside the eyeball every few steps and at the end (LID_RELAX_*)."""
    local = np.full(VERTEX_COUNT, -1)
    local[index] = np.arange(len(index))
    edges = local[lids["edges"]]
    edges = edges[(edges >= 0).all(1)]
    degree = np.bincount(edges.ravel(), minlength=len(index))[:, None]
    lid_weight = np.maximum(lids["upper_weight"][index], lids["lower_weight"][index])
    rate = LID_RELAX_RATE * np.sin(np.pi * np.clip(lid_weight, 0.0, 1.0))[:, None] ** 2 * (degree > 0)
    for step in range(1, LID_RELAX_STEPS + 1):
        total = np.zeros_like(target)
        np.add.at(total, edges[:, 0], target[edges[:, 1]])
        np.add.at(total, edges[:, 1], target[edges[:, 0]])
        target = target + rate * (total / np.maximum(degree, 1) - target)
        if step % LID_RELAX_CLEAR_EVERY == 0:  # a step moves skin by microns: check every few
            target = clear_of_eye(target)
    return target


def eyelid_fields(head: np.ndarray, lids: dict, frame: np.ndarray) -> dict:
    """blink_left, blink_right and squint built on `head` itself.

    Each lid vertex turns about the horizontal axis through its eyeball's centre (the
    lid slides over the eye), by its lid weight times the angle that brings the upper
    margin down (and the lower margin up) to the meeting line; `LID_TRAVEL` sets the
    shares. Turning about the centre keeps the distance to a spherical eye; where the
    cornea bulges, skin is pushed out radially to stay `LID_CLEARANCE` outside it.
    """
    head = np.asarray(head, np.float64)
    rotation = frame / np.cbrt(np.linalg.det(frame))
    axis, up, forward = rotation[:, 0], rotation[:, 1], rotation[:, 2]
    fields = {name: np.zeros((VERTEX_COUNT, 3), np.float32) for name in ("blink_left", "blink_right", "squint")}
    for side in ("left", "right"):
        centre, _ = _sphere_fit(head[lids[f"{side}_eyeball"]])
        triangles = head[lids[f"{side}_eyeball_faces"]]
        cones = eye_cones(centre, triangles)
        margin, j0, j1, t = (lids[f"{side}_{k}"] for k in ("margin", "partner0", "partner1", "partner_t"))
        index = np.flatnonzero(lids["side"] == (1 if side == "left" else 2))
        rest = head[index]

        def elevation(points):
            q = points - centre
            return np.arctan2(q @ up, q @ forward)

        lower_points = head[j0] * (1 - t[:, None]) + head[j1] * t[:, None]
        opening = np.maximum(elevation(head[margin]) - elevation(lower_points), 0.0)  # per column, rad
        columns = np.arange(len(margin))
        upper_share = np.interp(lids["column"][index], columns, opening)
        q = rest - centre
        qa, qu, qf = q @ axis, q @ up, q @ forward
        rest_radius = np.linalg.norm(q, axis=1)
        rest_clear = rest_radius - eyeball_radius(rest, centre, triangles, cones)
        outside = rest_clear > 0
        want = np.minimum(np.maximum(rest_clear, 0.0), LID_CLEARANCE)
        for name, (down, raise_) in LID_TRAVEL.items():
            angle = (-down * lids["upper_weight"][index] + raise_ * lids["lower_weight"][index]) * upper_share
            c, s = np.cos(angle), np.sin(angle)
            target = (centre + qa[:, None] * axis + (c * qf - s * qu)[:, None] * forward
                      + (s * qf + c * qu)[:, None] * up)
            moved = outside & (np.abs(angle) > 1e-9)
            clear_of_eye = lambda points: _outside_eye(points, moved, centre, triangles, want, cones)  # noqa: E731
            target = clear_of_eye(target)
            if name == "blink":
                target = _relax_closed_lid(target, index, lids, clear_of_eye)
            # A shape key moves on the straight line rest -> target: where that chord would
            # cut into the eye mid-blink by more than LID_DIP, lift the target further out.
            for _ in range(12):
                deficit = np.zeros(len(index))
                for w in (0.2, 0.35, 0.5, 0.65, 0.8):
                    p = rest[moved] + w * (target[moved] - rest[moved])
                    clear = np.linalg.norm(p - centre, axis=1) - eyeball_radius(p, centre, triangles, cones)
                    deficit[moved] = np.maximum(deficit[moved], (want[moved] - LID_DIP - clear) / w)
                if deficit.max() <= 1e-6:
                    break
                # Spread the lift over the skin around (3 mm): the closed lid lies over the
                # cornea as one smooth sheet instead of a ridge along the margin.
                need_lift = np.where(deficit > 0, deficit + 2e-5, 0.0)
                source = np.flatnonzero(need_lift > 0)
                spread = np.exp(-(np.linalg.norm(rest[:, None] - rest[None, source], axis=2) / LID_SPREAD) ** 2)
                lift = (spread * need_lift[source]).max(1)[moved]
                offset = target[moved] - centre
                target[moved] = centre + offset * (1 + lift / np.linalg.norm(offset, axis=1))[:, None]
            field = target - rest
            key = name if name == "squint" else f"blink_{side}"
            fields[key][index] = field
    return fields


@lru_cache(maxsize=1)
def load_rig(path: Path = RIG_FILE) -> Rig:
    data = read_npz(path, RIG_FIX, "rig fields")
    if tuple(str(c) for c in data["controls"]) != CONTROLS:
        raise DataFileError(f"rig fields '{path}' were built for other controls; {RIG_FIX}.")
    upper = {}
    if "upper_fields" in data:
        if tuple(str(c) for c in data["upper_controls"]) != UPPER_FACE_CONTROLS:
            raise DataFileError(f"rig fields '{path}' were built for other upper-face controls; {RIG_FIX}.")
        lids = dict(data.under("lid_"))
        upper = dict(upper_fields=data["upper_fields"], upper_region=data["upper_region"], lids=lids)
    return Rig(data["fields"], data["region"], data["anchor_index"], data["anchor_positions"], **upper)
