"""Build the articulation rig's displacement fields from the shared FLAME assets.

    python tools/build_rig.py            # writes core/data/rig_fields.npz

Each control is a displacement field (5023, 3) in metres at weight 1, built on
the neutral template. Falloffs are harmonic fields on the mesh (cotangent
Laplacian), so they are smooth along the surface and never leak across the
mouth opening: upper and lower lips meet only at the corners.
"""
import pickle
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from flame_lipsync.core.flame import FLAME_ASSETS, LOWER_LIP_EDGE, UPPER_LIP_EDGE
from flame_lipsync.core.mesh_io import read_mesh
from flame_lipsync.core.rig import CONTROLS, RIG_FILE, UPPER_FACE_CONTROLS, Rig, eyelid_fields

# Jaw hinge: just in front of the ear canal (FLAME landmarks 0/16 sit at
# y~0.007, z~-0.045 on the template); opening rotates about the x axis.
JAW_PIVOT = np.array([0.0, -0.005, -0.035])
JAW_MAX_ANGLE = 0.22  # rad (~12.6 deg): ~20 mm lower-lip drop at weight 1


def cotangent_laplacian(v, f):
    """Positive semi-definite cotangent Laplacian (clamped weights) over faces f."""
    n = len(v)
    rows, cols, vals = [], [], []
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        a, b, c = f[:, i], f[:, j], f[:, k]
        e1, e2 = v[a] - v[c], v[b] - v[c]
        cot = (e1 * e2).sum(1) / (np.linalg.norm(np.cross(e1, e2), axis=1) + 1e-12)
        w = np.clip(0.5 * cot, 1e-6, None)
        rows += [a, b]
        cols += [b, a]
        vals += [w, w]
    W = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), (n, n))
    return sp.diags(np.asarray(W.sum(1)).ravel()) - W


def harmonic(L, fixed: dict[int, float] | np.ndarray, fixed_values=None, n=None):
    """Solve L x = 0 with x prescribed on `fixed` vertices."""
    n = L.shape[0]
    idx = np.asarray(fixed)
    x = np.zeros(n)
    x[idx] = fixed_values
    free = np.setdiff1d(np.arange(n), idx)
    rhs = -L[free][:, idx] @ x[idx]
    x[free] = spla.spsolve(L[free][:, free].tocsc(), rhs)
    return x


def constrained(L, groups, region):
    """groups: list of (vertex indices, value); later groups win on overlap.
    Vertices outside `region` are held at 0; L couples only region vertices."""
    values = {int(i): 0.0 for i in np.flatnonzero(~region)}
    for idx, value in groups:
        for i in np.asarray(idx).ravel():
            values[int(i)] = value
    keys = np.fromiter(values.keys(), int)
    return harmonic(L, keys, np.fromiter(values.values(), float))


def smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def boundary_loops(f):
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), 1)
    edges, counts = np.unique(e, axis=0, return_counts=True)
    adj = {}
    for a, b in edges[counts == 1]:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    loops, seen = [], set()
    for start in adj:
        if start in seen:
            continue
        loop, prev, cur = [start], None, start
        seen.add(start)
        while True:
            nxt = [n for n in adj[cur] if n != prev and n not in seen]
            if not nxt:
                break
            prev, cur = cur, nxt[0]
            loop.append(cur)
            seen.add(cur)
        loops.append(np.array(loop))
    return loops


def vertex_neighbours(f, n):
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    A = sp.csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), (n, n))
    return ((A + A.T) > 0).astype(float)


def load_assets():
    v, f = read_mesh(FLAME_ASSETS / "flame_template.ply")
    masks = pickle.load(open(FLAME_ASSETS / "FLAME_masks.pkl", "rb"), encoding="latin1")
    lmk = pickle.load(open(FLAME_ASSETS / "flame_static_embedding_68.pkl", "rb"), encoding="latin1")
    landmarks = (v[f[lmk["lmk_face_idx"]]] * lmk["lmk_b_coords"][:, :, None]).sum(1)
    return v.astype(np.float64), f, {k: np.asarray(a) for k, a in masks.items()}, landmarks


def articulated_region(v, f, masks):
    """Vertices the rig may move: the face mask, the inner mouth (in no mask)
    and the chin underside down towards the throat (the jaw carries it)."""
    n = len(v)
    labelled = np.zeros(n, bool)
    for idx in masks.values():
        labelled[idx] = True
    mouth_centre = v[[UPPER_LIP_EDGE, LOWER_LIP_EDGE]].mean(0)
    # The inside of the lips and the mouth bag belong to no mask.
    inner_mouth = ~labelled & (np.abs(v[:, 1] - mouth_centre[1]) < 0.03) & (v[:, 2] > 0.0)
    neck = np.zeros(n, bool)
    neck[masks["neck"]] = True
    under_chin = neck & (v[:, 1] > -0.145) & (v[:, 2] > -0.045)
    region = np.zeros(n, bool)
    region[masks["face"]] = True
    region |= inner_mouth | under_chin
    # Never the eyes, nose bridge above the tip, forehead, ears or scalp.
    for name in ("left_eyeball", "right_eyeball", "eye_region", "forehead", "scalp",
                 "left_ear", "right_ear", "boundary"):
        region[masks[name]] = False
    region &= v[:, 1] < 0.0  # nothing above the nose tip moves
    return region, inner_mouth


def build():
    v, f, masks, landmarks = load_assets()
    n = len(v)
    region, inner_mouth = articulated_region(v, f, masks)
    # Laplacian of the region's own faces: outside vertices do not couple.
    L = cotangent_laplacian(v, f[region[f].all(1)])
    adjacency = vertex_neighbours(f, n)
    # Region border: region vertices touching a vertex outside (fixed at 0).
    outside = np.where(~region)[0]
    border = np.where(region & (adjacency @ (~region).astype(float) > 0))[0]
    zero_outside = (np.concatenate([outside, border]), 0.0)

    # Mouth ring split into upper and lower halves at the corners.
    mouth = [loop for loop in boundary_loops(f) if v[loop, 1].mean() > -0.08][0]
    corners = mouth[[np.argmin(v[mouth, 0]), np.argmax(v[mouth, 0])]]
    ring_mid_y = v[mouth, 1].mean()
    upper_ring = mouth[v[mouth, 1] > ring_mid_y]
    lower_ring = mouth[v[mouth, 1] <= ring_mid_y]
    lips = np.zeros(n, bool)
    lips[masks["lips"]] = True
    lip_area = lips | inner_mouth

    # Lowerness: 1 on the lower lip side, 0 on the upper, smooth around corners.
    lowerness = constrained(L, [
        (np.where(region & (v[:, 1] > -0.028))[0], 0.0),
        (np.where(region & (v[:, 1] < -0.062))[0], 1.0),
        (upper_ring, 0.0), (lower_ring, 1.0), (corners, 0.5)], region)
    lowerness = np.clip(lowerness, 0, 1)
    lower = lowerness > 0.5

    # Lip falloffs: 1 on the lips/inner mouth, 0 well beyond them.
    dist_to_lips = np.linalg.norm(v[:, None, :2] - v[lip_area][None, ::4, :2], axis=2).min(1)
    far = np.where(region & (dist_to_lips > 0.016))[0]
    lipness = smoothstep(constrained(L, [zero_outside, (far, 0.0), (np.where(lip_area)[0], 1.0)], region))
    far_wide = np.where(region & (dist_to_lips > 0.028))[0]
    lipness_wide = smoothstep(constrained(L, [zero_outside, (far_wide, 0.0), (np.where(lip_area)[0], 1.0)], region))
    upper_lip = lipness * (1 - lowerness)
    lower_lip = lipness * lowerness

    # Jaw: lower lip, inner lower mouth and chin follow the mandible fully;
    # the mouth corners are left free so they stretch smoothly (no fold).
    chin = region & (v[:, 1] < -0.062) & (np.abs(v[:, 0]) < 0.035) & np.isin(np.arange(n), masks["face"])
    corner_x = np.abs(v[corners, 0]).mean()
    central = np.abs(v[:, 0]) < 0.55 * corner_x
    jaw_weight = constrained(L, [
        zero_outside,
        (np.where(region & (v[:, 1] > -0.03))[0], 0.0),
        (np.where(lip_area & ~lower & central)[0], 0.0),
        (np.where(lip_area & lower & central)[0], 1.0),
        (upper_ring[central[upper_ring]], 0.0), (lower_ring[central[lower_ring]], 1.0),
        (np.where(chin)[0], 1.0)], region)
    jaw_weight = smoothstep(np.clip(jaw_weight, 0, 1))

    # Rest gap vector (upper edge minus lower edge) along the mouth width,
    # measured between outer lip-contact vertices paired by proximity.
    upper_idx = np.where(lips & ~lower)[0]
    lower_idx = np.where(lips & lower)[0]
    d = np.linalg.norm(v[upper_idx, None] - v[None, lower_idx], axis=2)
    nearest = d.argmin(1)
    contact = d.min(1) < 0.0035
    pair_u, pair_l = upper_idx[contact], lower_idx[nearest[contact]]
    # Smooth even fit of the gap across the mouth: g(x) = a + b x^2 + c x^4.
    gaps = v[pair_u] - v[pair_l]
    basis = lambda xx: np.stack([np.ones_like(xx), xx ** 2, xx ** 4], 1)  # noqa: E731
    coeffs = np.linalg.lstsq(basis(v[pair_u, 0]), gaps, rcond=None)[0]
    # Anchor the fit to the measured midline gap so the edges meet exactly there.
    coeffs *= np.linalg.norm(v[UPPER_LIP_EDGE] - v[LOWER_LIP_EDGE]) / np.linalg.norm(coeffs[0])

    def gap_at(x):
        return (basis(x) @ coeffs) * smoothstep((corner_x - np.abs(x)) / 0.006)[:, None]

    x = v[:, 0]
    contact_points = np.concatenate([v[pair_u], v[pair_l]])
    dist_to_contact = np.linalg.norm(v[:, None] - contact_points[None], axis=2).min(1)
    near_edge = np.exp(-(dist_to_contact / 0.004) ** 2)
    lips_only = smoothstep(constrained(L, [zero_outside, (far, 0.0), (np.where(lips)[0], 1.0)], region))
    across = np.clip(np.abs(x) / corner_x, 0, 1.5)
    centre_bump = smoothstep(1 - across)  # 1 on the midline, 0 at the corners
    corner_bump = smoothstep(across)      # 0 on the midline, 1 at the corners

    def rotate_x(points, angles):
        c, s = np.cos(angles), np.sin(angles)
        p = points - JAW_PIVOT
        out = p.copy()
        out[:, 1] = c * p[:, 1] - s * p[:, 2]
        out[:, 2] = s * p[:, 1] + c * p[:, 2]
        return out + JAW_PIVOT

    # Positive angle moves the chin (front, below the pivot) down: check sign.
    angle_sign = 1.0 if rotate_x(v[[LOWER_LIP_EDGE]], np.array([0.1]))[0, 1] < v[LOWER_LIP_EDGE, 1] else -1.0
    ey = np.array([0.0, 1.0, 0.0])
    ez = np.array([0.0, 0.0, 1.0])
    col = lambda a: a[:, None]  # noqa: E731

    fields = {
        "jaw_open": rotate_x(v, angle_sign * JAW_MAX_ANGLE * jaw_weight) - v,
        # Edges meet: each lip travels half the rest gap towards the other.
        "lips_close": -0.5 * gap_at(x) * col(upper_lip * np.where(lower, 0, 1))
                      + 0.5 * gap_at(x) * col(lower_lip * np.where(lower, 1, 0)),
        # Pressed lips roll in and thin; the meeting edges themselves stay put.
        "lips_press": col(lips_only * (1 - near_edge)) * (
            -0.0020 * ez + 0.0012 * col(np.where(lower, 1.0, -1.0)) * ey),
        "pucker": col(lipness) * np.stack([-0.35 * x, np.zeros(n),
                                          0.0075 * (1 - 0.4 * np.clip(across, 0, 1) ** 2)], 1),
        "funnel": col(lipness) * np.stack([-0.18 * x, np.zeros(n), 0.0055 * np.ones(n)], 1)
                  + col(near_edge * lipness * centre_bump * np.where(lower, -1.0, 1.0)) * 0.0022 * ey,
        "stretch": col(lipness_wide * corner_bump) * np.stack(
            [0.22 * x, np.zeros(n), -0.0025 * np.ones(n)], 1),
        "smile": col(lipness_wide * corner_bump) * np.stack(
            [0.16 * x, 0.0065 * corner_bump, -0.0035 * np.ones(n)], 1),
        "upper_lip_raise": col(upper_lip * centre_bump ** 0.5) * (0.0040 * ey + 0.0012 * ez),
        "lower_lip_down": col(lower_lip * centre_bump ** 0.5) * (-0.0045 * ey + 0.0012 * ez),
        # F/V: the lower lip comes up and back under the upper teeth line.
        "lower_lip_tuck": col(lower_lip * centre_bump ** 0.5) * (0.0012 * ey - 0.0045 * ez),
    }
    assert tuple(fields) == CONTROLS, "control order must match core.rig.CONTROLS"
    stack = np.stack([fields[name] for name in CONTROLS]).astype(np.float32)
    stack[:, ~region] = 0.0
    return stack, region


# Upper face at weight 1 (metres): brow travel as in FACS AU1/AU2/AU4 at full
# intensity on an adult face, cheek raise (AU6) a few millimetres.
BROW_RAISE = 0.0055
BROW_FURROW_DOWN, BROW_FURROW_IN = 0.0030, 0.0030
CHEEK_RAISE_UP, CHEEK_RAISE_FORWARD = 0.0030, 0.0012


def eye_geometry(v, f, masks, side):
    """One eye's lid data on the template: eyeball vertices and triangles, the lid
    margin (where the skin meets the eyeball), upper margin vertices as columns with
    their partner point on the lower margin, the lid region and its lining (skin
    inside the eyeball, hidden)."""
    n = len(v)
    eyeball = np.asarray(masks[f"{side}_eyeball"])
    is_ball = np.zeros(n, bool)
    is_ball[eyeball] = True
    ball_faces = f[is_ball[f].all(1)]
    centre, radius = np.array(0.0), 0.0
    a = np.c_[2 * v[eyeball], np.ones(len(eyeball))]
    x = np.linalg.lstsq(a, (v[eyeball] ** 2).sum(1), rcond=None)[0]
    centre, radius = x[:3], np.sqrt(x[3] + x[:3] @ x[:3])
    any_ball = np.zeros(n, bool)
    any_ball[masks["left_eyeball"]] = any_ball[masks["right_eyeball"]] = True
    distance = np.linalg.norm(v - centre, axis=1)
    lining = ~any_ball & (distance < radius) & (v[:, 2] > centre[2])
    adjacency = vertex_neighbours(f, n)
    margin = np.flatnonzero(~any_ball & ~lining & (distance < radius + 0.002)
                            & (adjacency @ lining.astype(float) > 0))
    corners = margin[[np.argmin(v[margin, 0]), np.argmax(v[margin, 0])]]
    chord_y = np.interp(v[margin, 0], v[corners, 0], v[corners, 1])
    upper = margin[(v[margin, 1] > chord_y) | np.isin(margin, corners)]
    lower = margin[(v[margin, 1] < chord_y) | np.isin(margin, corners)]
    upper = upper[np.argsort(v[upper, 0])]
    lower = lower[np.argsort(v[lower, 0])]
    # Partner of each upper column: the lower margin at the same x (linear between vertices).
    k = np.clip(np.searchsorted(v[lower, 0], v[upper, 0]) - 1, 0, len(lower) - 2)
    t = np.clip((v[upper, 0] - v[lower[k], 0]) / (v[lower[k + 1], 0] - v[lower[k], 0]), 0, 1)
    lid = np.zeros(n, bool)
    lid[masks[f"{side}_eye_region"]] = True
    around = np.zeros(n, bool)
    around[masks["eye_region"]] = True
    lid |= around & (distance < radius + 0.010) & (np.sign(v[:, 0]) == np.sign(centre[0]))
    lid |= lining
    lid[margin] = True
    lid &= ~any_ball
    return dict(eyeball=eyeball, eyeball_faces=ball_faces, centre=centre, radius=radius,
                lining=lining, upper=upper, lower=lower, corners=corners,
                partner0=lower[k], partner1=lower[k + 1], partner_t=t, lid=lid)


def build_upper(v, f, masks, landmarks):
    """(7, 5023, 3) upper-face fields on the template, their region, and the lid data
    the core needs to rebuild blink/squint on another head's own eyes."""
    n = len(v)
    adjacency = vertex_neighbours(f, n)
    lids = {"upper_weight": np.zeros(n), "lower_weight": np.zeros(n),
            "column": np.zeros(n), "side": np.zeros(n, np.int8)}
    lid_any = np.zeros(n, bool)
    for code, side in ((1, "left"), (2, "right")):
        eye = eye_geometry(v, f, masks, side)
        region = eye["lid"]
        L = cotangent_laplacian(v, f[region[f].all(1)])
        border = np.flatnonzero(region & (adjacency @ (~region).astype(float) > 0))
        outside = np.flatnonzero(~region)
        zero = (np.concatenate([outside, border]), 0.0)
        # Lid weights: 1 on its own margin, 0 on the other lid's margin and the region's
        # edge; smoothstep keeps the lid near the margin moving as one piece.
        upper_w = constrained(L, [zero, (eye["lower"], 0.0), (eye["upper"], 1.0), (eye["corners"], 0.0)], region)
        lower_w = constrained(L, [zero, (eye["upper"], 0.0), (eye["lower"], 1.0), (eye["corners"], 0.0)], region)
        index = np.flatnonzero(region)
        lids["upper_weight"][index] = smoothstep(np.clip(upper_w[index], 0, 1) * 1.25)
        lids["lower_weight"][index] = smoothstep(np.clip(lower_w[index], 0, 1) * 1.25)
        # Column coordinate: where along the upper margin (by x) each lid vertex lies.
        ux = v[eye["upper"], 0]
        lids["column"][index] = np.interp(v[index, 0], ux, np.arange(len(ux)))
        lids["side"][index] = code
        lid_any |= region
        for key in ("eyeball", "eyeball_faces", "partner0", "partner1", "partner_t"):
            lids[f"{side}_{key}"] = eye[key]
        lids[f"{side}_margin"] = eye["upper"]
    # Skin edges inside the lid regions: the closed lid is relaxed along them (core.rig).
    edges = np.unique(np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1), axis=0)
    lids["edges"] = edges[lid_any[edges].all(1)]
    lids = {k: (a.astype(np.float32) if a.dtype.kind == "f" else a.astype(np.int32) if a.dtype.kind in "iu"
                and k != "side" else a) for k, a in lids.items()}

    # Brows and cheeks: harmonic falloffs on the forehead / eye region / cheeks.
    any_ball = np.zeros(n, bool)
    any_ball[masks["left_eyeball"]] = any_ball[masks["right_eyeball"]] = True
    brow_area = np.zeros(n, bool)
    for name in ("forehead", "eye_region"):
        brow_area[masks[name]] = True
    brow_area &= ~any_ball & (v[:, 1] > 0.012)
    brows = landmarks[17:27]
    dist_brow = np.linalg.norm(v[:, None] - brows[None], axis=2).min(1)
    L = cotangent_laplacian(v, f[brow_area[f].all(1)])
    border = np.flatnonzero(brow_area & (adjacency @ (~brow_area).astype(float) > 0))
    eye_opening = (lids["upper_weight"] > 0.5) | (lids["lower_weight"] > 0.05)
    zero = (np.concatenate([np.flatnonzero(~brow_area), border, np.flatnonzero(eye_opening & brow_area),
                            np.flatnonzero(brow_area & (v[:, 1] > 0.080))]), 0.0)
    brow_band = np.flatnonzero(brow_area & (dist_brow < 0.007) & (lids["upper_weight"] < 0.02)
                               & (np.abs(v[:, 0]) < 0.050))  # off the temples: room to fall off
    brow_w = smoothstep(np.clip(constrained(L, [zero, (brow_band, 1.0)], brow_area), 0, 1))
    ax = np.abs(v[:, 0])
    inner = smoothstep((0.042 - ax) / 0.022)          # 1 inside |x| < 20 mm, 0 beyond 42 mm
    outer = 1 - inner
    # Up along the skin (the forehead leans back as it rises).
    normals = vertex_normals(v, f)
    ey = np.array([0.0, 1.0, 0.0])
    along = ey - (normals @ ey)[:, None] * normals
    along /= np.linalg.norm(along, axis=1, keepdims=True) + 1e-12
    col = lambda a: a[:, None]  # noqa: E731
    furrow_w = brow_w * smoothstep((0.036 - ax) / 0.020)
    cheek_area = np.zeros(n, bool)
    cheek_area[masks["face"]] = True
    cheek_area &= ~any_ball & ~brow_area & (v[:, 1] < 0.016) & (v[:, 1] > -0.035) & (ax > 0.018)
    cheek_area[masks["nose"]] = False
    cheek_area[masks["lips"]] = False
    L = cotangent_laplacian(v, f[cheek_area[f].all(1)])
    border = np.flatnonzero(cheek_area & (adjacency @ (~cheek_area).astype(float) > 0))
    apex = np.array([0.038, -0.002, 0.036])
    to_apex = np.linalg.norm(np.c_[ax, v[:, 1:]] - apex, axis=1)
    near_lid = (lids["lower_weight"] > 0.02) | (lids["upper_weight"] > 0.02)
    cheek_w = constrained(L, [(np.concatenate([np.flatnonzero(~cheek_area), border,
                                                np.flatnonzero(cheek_area & near_lid)]), 0.0),
                              (np.flatnonzero(cheek_area & (to_apex < 0.008)), 1.0)], cheek_area)
    cheek_w = smoothstep(np.clip(cheek_w, 0, 1))
    fields = {
        "blink_left": np.zeros((n, 3)), "blink_right": np.zeros((n, 3)),
        "brow_raise_inner": BROW_RAISE * col(brow_w * inner) * along,
        "brow_raise_outer": BROW_RAISE * col(brow_w * outer) * along,
        "brow_furrow": col(furrow_w) * np.stack([-np.tanh(v[:, 0] / 0.008) * BROW_FURROW_IN,
                                                 -BROW_FURROW_DOWN * np.ones(n), np.zeros(n)], 1),
        "squint": np.zeros((n, 3)),
        "cheek_raise": col(cheek_w) * np.stack([np.zeros(n), CHEEK_RAISE_UP * np.ones(n),
                                                CHEEK_RAISE_FORWARD * np.ones(n)], 1),
    }
    assert tuple(fields) == UPPER_FACE_CONTROLS
    # Blink and squint: the core's own lid model on the template (identity frame).
    for name, field in eyelid_fields(v, lids, np.eye(3)).items():
        fields[name] = field
    stack = np.stack([fields[name] for name in UPPER_FACE_CONTROLS]).astype(np.float32)
    stack[:, any_ball] = 0.0
    region = (np.abs(stack) > 0).any((0, 2))
    return stack, region, lids


def vertex_normals(v, f):
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    out = np.zeros_like(v)
    for i in range(3):
        np.add.at(out, f[:, i], fn)
    return out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-12)


def head_anchors():
    """Rigid parts of the head (forehead, nose, eye sockets, ears), every 6th
    vertex, averaged over the three neutral shared heads: what a head's pose
    and scale are fitted to when the rig is applied to it."""
    masks = pickle.load(open(FLAME_ASSETS / "FLAME_masks.pkl", "rb"), encoding="latin1")
    index = np.unique(np.concatenate([masks[m] for m in ("forehead", "nose", "eye_region",
                                                          "left_ear", "right_ear")]))[::6]
    template, _ = read_mesh(FLAME_ASSETS / "flame_template.ply")
    heads = [template, read_mesh(FLAME_ASSETS / "FLAME_sample.ply")[0]]
    deca = read_mesh(FLAME_ASSETS / "deca_head_template.obj")[0]
    heads.append(deca - deca.mean(0) + template.mean(0))
    return index.astype(np.int32), np.mean([h[index] for h in heads], 0).astype(np.float32)


def main():
    fields, region = build()
    v, f, masks, landmarks = load_assets()
    upper_fields, upper_region, lids = build_upper(v, f, masks, landmarks)
    anchor_index, anchor_positions = head_anchors()
    RIG_FILE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(RIG_FILE, fields=fields, region=region, controls=np.array(CONTROLS),
                        anchor_index=anchor_index, anchor_positions=anchor_positions,
                        upper_fields=upper_fields, upper_region=upper_region,
                        upper_controls=np.array(UPPER_FACE_CONTROLS),
                        **{f"lid_{k}": a for k, a in lids.items()})
    print(f"wrote {RIG_FILE} ({RIG_FILE.stat().st_size / 1024:.0f} KiB): "
          + ", ".join(f"{c} max {np.linalg.norm(fields[i], axis=1).max() * 1000:.1f} mm"
                      for i, c in enumerate(CONTROLS))
          + "; " + ", ".join(f"{c} max {np.linalg.norm(upper_fields[i], axis=1).max() * 1000:.1f} mm"
                             for i, c in enumerate(UPPER_FACE_CONTROLS)))


if __name__ == "__main__":
    main()
