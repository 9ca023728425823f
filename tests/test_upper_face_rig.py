"""Upper-face rig controls (issue 12): blink, brows, squint, cheek raise on the four heads."""
import pickle

import numpy as np
import pytest

from flame_lipsync.core.flame import FLAME_ASSETS, SHARED_HEADS, VERTEX_COUNT
from flame_lipsync.core.mesh_io import load_head, recentred
from flame_lipsync.core.rig import (ALL_CONTROLS, CONTROL_LAYERS, CONTROLS, LID_CLEARANCE, LID_DIP,
                                    RIG_FILE, UPPER_FACE_CONTROLS, _sphere_fit, eyeball_radius, load_rig)

MOUTH = ("jaw_open", "lips_close", "lips_press", "pucker", "funnel", "stretch", "smile",
         "upper_lip_raise", "lower_lip_down", "lower_lip_tuck")


@pytest.fixture(scope="module")
def heads():
    if not FLAME_ASSETS.is_dir():
        pytest.skip(f"shared heads not found at {FLAME_ASSETS}")
    template, faces = load_head(FLAME_ASSETS / SHARED_HEADS[0])
    out = {}
    for name in SHARED_HEADS:
        v, _ = load_head(FLAME_ASSETS / name)
        out[name] = (recentred(v, template) if name.endswith(".obj") else v).astype(np.float64)
    return out, faces


def test_mouth_controls_unchanged_and_layers_cover_every_control_once():
    assert CONTROLS == MOUTH
    assert ALL_CONTROLS == CONTROLS + UPPER_FACE_CONTROLS
    grouped = [c for names in CONTROL_LAYERS.values() for c in names]
    assert sorted(grouped) == sorted(ALL_CONTROLS) and len(grouped) == len(set(grouped))
    assert CONTROL_LAYERS["mouth"] == CONTROLS


def test_offsets_named_matches_mouth_offsets_and_is_linear():
    rig = load_rig()
    rng = np.random.default_rng(0)
    mouth = rng.uniform(0, 1, (5, len(CONTROLS))).astype(np.float32)
    np.testing.assert_array_equal(rig.offsets_named(mouth, CONTROLS), rig.offsets(mouth))
    full = rng.uniform(0, 1, (4, len(ALL_CONTROLS))).astype(np.float32)
    expected = np.einsum("tc,cvk->tvk", full, rig.all_fields)
    np.testing.assert_allclose(rig.offsets_named(full, ALL_CONTROLS), expected, atol=1e-6)
    # A subset in any order: same as the full call with the others at 0.
    names = ("blink_left", "jaw_open")
    sub = full[:, [ALL_CONTROLS.index(n) for n in names]]
    only = np.zeros_like(full)
    only[:, [ALL_CONTROLS.index(n) for n in names]] = sub
    np.testing.assert_allclose(rig.offsets_named(sub, names), rig.offsets_named(only, ALL_CONTROLS), atol=1e-7)
    with pytest.raises(ValueError, match="unknown rig controls"):
        rig.offsets_named(sub, ("blink_left", "wink"))


def test_upper_fields_never_move_the_eyeballs_and_each_moves_mm():
    masks = pickle.load(open(FLAME_ASSETS / "FLAME_masks.pkl", "rb"), encoding="latin1")
    rig = load_rig()
    assert rig.upper_fields.shape == (len(UPPER_FACE_CONTROLS), VERTEX_COUNT, 3)
    for name in ("left_eyeball", "right_eyeball", "scalp", "left_ear", "right_ear"):
        assert np.all(rig.upper_fields[:, masks[name]] == 0), name
    for i, control in enumerate(UPPER_FACE_CONTROLS):
        peak = np.linalg.norm(rig.upper_fields[i], axis=1).max()
        assert 0.002 < peak < 0.012, f"{control}: {peak * 1000:.1f} mm"
    left, right = rig.field("blink_left"), rig.field("blink_right")
    template, _ = load_head(FLAME_ASSETS / SHARED_HEADS[0])
    assert np.all(left[template[:, 0] < 0] == 0) and np.all(right[template[:, 0] > 0] == 0)


def test_committed_upper_fields_match_the_build_script():
    from flame_lipsync.tools.build_rig import build_upper, load_assets
    fields, region, lids = build_upper(*load_assets())
    committed = np.load(RIG_FILE)
    np.testing.assert_allclose(committed["upper_fields"], fields, atol=1e-7)
    np.testing.assert_array_equal(committed["upper_region"], region)
    for key, value in lids.items():
        np.testing.assert_array_equal(committed[f"lid_{key}"], value)


def test_blink_moves_the_lid_like_the_reference_eyelid_shapes():
    """The shared (non-commercial) FLAME eyelid shapes, as a reference only."""
    rig = load_rig()
    for control, ref_file in (("blink_left", "l_eyelid.npy"), ("blink_right", "r_eyelid.npy")):
        ref = np.load(FLAME_ASSETS / ref_file)
        ours = rig.field(control)
        moved = np.linalg.norm(ref, axis=1) > 0.002
        cosine = (ref[moved] * ours[moved]).sum() / np.linalg.norm(ref[moved]) / np.linalg.norm(ours[moved])
        ratio = np.linalg.norm(ours[moved], axis=1).mean() / np.linalg.norm(ref[moved], axis=1).mean()
        assert cosine > 0.7, f"{control}: direction {cosine:.2f}"
        assert 0.5 < ratio < 1.5, f"{control}: magnitude ratio {ratio:.2f}"


def _front_coverage(points, faces, eyeball, ball_mask, centre, forward):
    """Share of the eyeball's front-facing vertices hidden behind skin, seen along `forward`."""
    q = points[eyeball] - centre
    front = eyeball[(q / np.linalg.norm(q, axis=1, keepdims=True)) @ forward > 0.5]
    tri = points[faces[~ball_mask[faces].any(1)]]
    tri = tri[np.linalg.norm(tri.mean(1) - centre, axis=1) < 0.03]
    origin = points[front] + forward * 1e-5
    v0, e1, e2 = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    p = np.cross(forward, e2)
    det = (e1 * p).sum(1)
    s = origin[:, None] - v0[None]
    u = (s * p).sum(2) / det
    qv = np.cross(s, e1[None])
    w = (qv @ forward) / det
    t = (qv * e2[None]).sum(2) / det
    return ((u >= 0) & (w >= 0) & (u + w <= 1) & (t > 0)).any(1).mean()


@pytest.mark.parametrize("head_name", SHARED_HEADS)
def test_eyelids_close_fully_without_entering_the_eyeballs(head_name, heads):
    """On each head's own eyes: closed, the lids hide the whole front of the eyeball;
    lid skin outside the eyeball at rest stays outside it when closed, and on the way
    (the shape key's straight path) loses at most LID_DIP of its clearance."""
    shared, faces = heads
    head = shared[head_name]
    rig = load_rig()
    fields = rig.all_fields_for(head)
    frame = rig.head_frame(head)
    forward = (frame / np.cbrt(np.linalg.det(frame)))[:, 2]
    lids = rig.lids
    ball = np.zeros(VERTEX_COUNT, bool)
    ball[lids["left_eyeball"]] = ball[lids["right_eyeball"]] = True
    for code, side in ((1, "left"), (2, "right")):
        field = fields[ALL_CONTROLS.index(f"blink_{side}")]
        eyeball = lids[f"{side}_eyeball"]
        centre, _ = _sphere_fit(head[eyeball])
        triangles = head[lids[f"{side}_eyeball_faces"]]
        assert _front_coverage(head, faces, eyeball, ball, centre, forward) < 0.7, "open at rest"
        assert _front_coverage(head + field, faces, eyeball, ball, centre, forward) == 1.0, \
            f"{side} eye of {head_name} not fully closed"
        lid = np.flatnonzero(lids["side"] == code)
        rest_clear = np.linalg.norm(head[lid] - centre, axis=1) - eyeball_radius(head[lid], centre, triangles)
        outside = rest_clear > 0
        want = np.minimum(rest_clear[outside], LID_CLEARANCE)
        for w in np.linspace(0.1, 1.0, 10):
            p = head[lid][outside] + w * field[lid][outside]
            clear = np.linalg.norm(p - centre, axis=1) - eyeball_radius(p, centre, triangles)
            allowed = want - (1e-6 if w == 1.0 else LID_DIP + 0.00005)
            assert (clear >= allowed).all(), \
                f"{head_name} {side} lid at {w:.1f}: {1000 * (clear - want).min():.2f} mm into the eye"
        # Nothing but the lids moves for a blink.
        assert np.all(field[lids["side"] != code] == 0)


@pytest.mark.parametrize("control", ["brow_raise_inner", "brow_raise_outer", "brow_furrow", "cheek_raise"])
def test_brows_and_cheeks_do_not_tear(control, heads):
    shared, faces = heads
    rig = load_rig()
    e = np.unique(np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1), axis=0)
    for name, rest in shared.items():
        posed = rest + rig.all_fields_for(rest)[ALL_CONTROLS.index(control)]
        ratio = (np.linalg.norm(posed[e[:, 0]] - posed[e[:, 1]], axis=1)
                 / np.linalg.norm(rest[e[:, 0]] - rest[e[:, 1]], axis=1))
        assert 0.4 < ratio.min() and ratio.max() < 2.0, f"{control} on {name}: {ratio.min():.2f}-{ratio.max():.2f}"


def test_eyeball_radius_tests_only_the_faces_a_ray_can_hit():
    """The cone prefilter changes no answer: every triangle tested (Moller-Trumbore on all
    ~1000 faces) gives the very same distances, for rays all round the eye."""
    rig = load_rig()
    head, _ = load_head(FLAME_ASSETS / SHARED_HEADS[0])
    rng = np.random.default_rng(3)
    for side in ("left", "right"):
        centre, radius = _sphere_fit(head[rig.lids[f"{side}_eyeball"]])
        triangles = head[rig.lids[f"{side}_eyeball_faces"]]
        d = rng.normal(size=(400, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        points = centre + 2 * radius * d
        v0, e1, e2 = triangles[:, 0], triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]
        p = np.cross(d[:, None], e2[None])
        det = (e1[None] * p).sum(2)
        u = ((centre - v0)[None] * p).sum(2) / det
        q = np.cross(centre - v0, e1)
        w = (d @ q.T) / det
        t = (e2 * q).sum(1)[None] / det
        hit = (u >= -1e-6) & (w >= -1e-6) & (u + w <= 1 + 1e-6) & (t > 0)
        every_face = np.where(hit, t, np.inf).min(1)
        assert np.isfinite(every_face).all()  # a closed eyeball: every ray leaves it
        np.testing.assert_allclose(eyeball_radius(points, centre, triangles), every_face, rtol=1e-12)
