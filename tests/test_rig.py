"""The articulation rig on all four shared FLAME heads."""
import pickle

import numpy as np
import pytest

from flame_lipsync.core.flame import FLAME_ASSETS, LOWER_LIP_EDGE, UPPER_LIP_EDGE, VERTEX_COUNT
from flame_lipsync.core.rig import CONTROLS, RIG_FILE, load_rig


@pytest.fixture(scope="module")
def heads():
    if not FLAME_ASSETS.is_dir():
        pytest.skip(f"shared heads not found at {FLAME_ASSETS}")
    from flame_lipsync.tools.contact_sheets import shared_heads
    return shared_heads()


@pytest.fixture(scope="module")
def edges(heads):
    _, faces = heads
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    return np.unique(e, axis=0)


def test_fields_have_one_column_per_control():
    rig = load_rig()
    assert rig.fields.shape == (len(CONTROLS), VERTEX_COUNT, 3)
    assert np.isfinite(rig.fields).all()


def test_fields_are_zero_outside_the_face_region():
    masks = pickle.load(open(FLAME_ASSETS / "FLAME_masks.pkl", "rb"), encoding="latin1") \
        if FLAME_ASSETS.is_dir() else None
    rig = load_rig()
    assert np.all(rig.fields[:, ~rig.region] == 0)
    if masks is None:
        pytest.skip("FLAME masks not found: checked the region only")
    for name in ("scalp", "left_ear", "right_ear", "left_eyeball", "right_eyeball",
                 "eye_region", "forehead", "boundary"):
        assert np.all(rig.fields[:, masks[name]] == 0), name
    # Every vertex of the lips mask is articulated.
    assert rig.region[masks["lips"]].all()


@pytest.mark.parametrize("control", CONTROLS)
def test_control_is_bounded_and_moves_the_mouth(control, heads):
    field = load_rig().field(control)
    magnitude = np.linalg.norm(field, axis=1)
    assert 0.0008 < magnitude.max() < 0.030, "a control moves the mouth by mm, not cm"
    template = heads[0]["flame_template.ply"]
    mouth = template[[UPPER_LIP_EDGE, LOWER_LIP_EDGE]].mean(0)
    # Where it moves most is the mouth (the jaw's is the chin).
    assert np.linalg.norm(template[magnitude.argmax()] - mouth) < 0.055


@pytest.mark.parametrize("control", CONTROLS)
def test_no_tearing_on_any_head(control, heads, edges):
    """Edges stay continuous: nothing stretches at the region border and
    lip edges stretch within what skin does (jaw opening stretches the corners)."""
    shared, _ = heads
    rig = load_rig()
    border = rig.region[edges[:, 0]] != rig.region[edges[:, 1]]
    low, high = (0.2, 5.0) if control == "jaw_open" else (0.3, 2.5)
    for name, rest in shared.items():
        posed = rest + rig.fields_for(rest)[CONTROLS.index(control)]
        length = lambda v: np.linalg.norm(v[edges[:, 0]] - v[edges[:, 1]], axis=1)  # noqa: E731
        ratio = length(posed) / length(rest)
        assert np.isfinite(posed).all(), name
        assert np.abs(ratio[border] - 1).max() < 0.05, f"{control} tears the region border on {name}"
        assert low < ratio.min() and ratio.max() < high, f"{control} on {name}: {ratio.min():.2f}-{ratio.max():.2f}"


@pytest.mark.parametrize("weights", [{c: 1.0} for c in CONTROLS]
                         + [{"lips_close": 1.0, "lips_press": 1.0}, {"lips_close": 1.0, "pucker": 1.0},
                            {"lower_lip_tuck": 1.0, "lips_close": 1.0}],
                         ids=lambda w: "+".join(w))
def test_lips_never_pass_through_each_other(weights, heads):
    """Upper lip stays above the lower lip along the mouth (central 2/3),
    on every head including the open, smiling registered scan."""
    shared, _ = heads
    rig = load_rig()
    row = np.zeros((1, len(CONTROLS)), np.float32)
    for name, value in weights.items():
        row[0, CONTROLS.index(name)] = value
    template = shared["flame_template.ply"]
    lips_x = np.abs(template[:, 0])
    # Upper/lower edge pairs: the closest lower-edge vertex to each upper one.
    upper = np.array([UPPER_LIP_EDGE])
    lower = np.array([LOWER_LIP_EDGE])
    for name, rest in shared.items():
        offsets = rig.offsets(row)[0] @ rig.head_frame(rest).T
        for u, lo in zip(upper, lower):
            rest_gap = rest[u] - rest[lo]
            posed_gap = (rest[u] + offsets[u]) - (rest[lo] + offsets[lo])
            # Crossing flips the gap vector against the head's own rest direction.
            assert posed_gap @ rest_gap / np.linalg.norm(rest_gap) > -0.0003, f"{name}: {weights}"
    assert lips_x.shape == (VERTEX_COUNT,)


def test_lips_close_seals_the_template_and_jaw_opens_it(heads):
    shared, _ = heads
    rig = load_rig()
    template = shared["flame_template.ply"]
    gap = lambda v: np.linalg.norm(v[UPPER_LIP_EDGE] - v[LOWER_LIP_EDGE])  # noqa: E731
    assert gap(template) == pytest.approx(0.0020, abs=0.0001)
    assert gap(template + rig.field("lips_close")) < 0.001
    assert gap(template + 0.5 * rig.field("jaw_open")) > 0.010
    # Jaw opening is a rotation: the chin tip moves down and back, on an arc.
    chin = 3414
    d = rig.field("jaw_open")[chin]
    assert d[1] < -0.010 and d[2] < 0


def test_committed_fields_match_the_build_script():
    if not FLAME_ASSETS.is_dir():
        pytest.skip(f"shared heads not found at {FLAME_ASSETS}: cannot rebuild the rig")
    from flame_lipsync.tools.build_rig import build
    fields, region = build()
    committed = np.load(RIG_FILE)
    np.testing.assert_allclose(committed["fields"], fields, atol=1e-7)
    np.testing.assert_array_equal(committed["region"], region)


def test_head_frame_follows_axes_units_and_pose(heads):
    """A head imported Z-up in centimetres gets the same motion, rotated and scaled."""
    shared, _ = heads
    rig = load_rig()
    template = shared["flame_template.ply"]
    z_up = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], np.float32)
    converted = template @ z_up.T * 100 + 7
    expected = rig.fields_for(template) @ (100 * z_up).T
    np.testing.assert_allclose(rig.fields_for(converted), expected, atol=1e-4 * 100)
    frame = rig.head_frame(template)
    assert np.allclose(frame, np.eye(3) * np.cbrt(np.linalg.det(frame)), atol=0.01)
