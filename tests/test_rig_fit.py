"""The rig fit on landmarks synthesised from the rig itself (no video needed)."""
import numpy as np
import pytest

from flame_lipsync.core.flame import FLAME_ASSETS, LOWER_LIP_EDGE
from flame_lipsync.core.rig import CONTROLS, load_rig

if not (FLAME_ASSETS / "mediapipe_landmark_embedding.npz").is_file():
    pytest.skip(f"shared assets not found at {FLAME_ASSETS} (clone the project beside ../shared)",
                allow_module_level=True)

from flame_lipsync.tools import rig_fit  # noqa: E402


def _controls(T=60, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    phase = rng.uniform(0, 6, len(CONTROLS))
    amp = rng.uniform(0.2, 0.8, len(CONTROLS))
    return np.clip(0.1 + amp * np.sin(t / 5.0 + phase), 0.0, 2.0)


def test_fit_recovers_known_controls_below_half_a_millimetre():
    rig = load_rig()
    true = _controls()
    A, template = rig_fit.lip_basis()
    head = template[None] + (true @ A.T).reshape(len(true), -1, 3)
    fitted, rest, residual = rig_fit.fit_lips(head, np.ones(len(true), bool))
    error = np.linalg.norm(rig.offsets(fitted) - rig.offsets(true), axis=-1).max() * 1000
    assert error < 0.5, f"largest vertex error {error:.3f} mm"
    assert np.nanmax(residual) < 0.5
    assert np.abs(rest).max() < 0.5


def test_fit_through_head_pose_and_missing_frames():
    """Landmarks posed by a similarity (rotated, scaled, moved) in camera space; frames
    without a face stay NaN and do not spoil their neighbours."""
    emb = rig_fit.embedding()
    rig = load_rig()
    true = _controls(40, seed=1)
    vertices = emb.template[None] * 1000.0 + rig.offsets(true) * 1000.0       # mm
    lm = emb.landmarks(vertices)                                              # (T, 105, 3)
    cam = np.full((len(true), 478, 3), np.nan)
    angle = np.radians(12.0)
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    cam[:, list(emb.mediapipe)] = 2.5 * lm @ rot.T + np.array([300.0, -200.0, 10.0])
    detected = np.ones(len(true), bool)
    detected[[5, 6]] = False
    cam[~detected] = np.nan
    fit = rig_fit.fit_track({"landmarks_cam": cam, "detected": detected})
    assert np.isnan(fit.controls[[5, 6]]).all()
    ok = detected
    error = np.linalg.norm(rig.offsets(fit.controls[ok]) - rig.offsets(true[ok]), axis=-1).max() * 1000
    assert error < 0.5, f"largest vertex error {error:.3f} mm"
    assert np.allclose(fit.scale[ok], 2.5)


def test_embedded_lower_lip_follows_the_lip_edge_vertex():
    """MediaPipe 14 (lower inner lip) sits on FLAME's lower lip-edge vertex: with
    jaw_open = 1 both drop together (within 1 mm)."""
    emb = rig_fit.embedding()
    rig = load_rig()
    for weight in (0.0, 1.0):
        w = np.zeros((1, len(CONTROLS)))
        w[0, CONTROLS.index("jaw_open")] = weight
        v = emb.template + rig.offsets(w)[0]
        lower = emb.landmarks(v, (14,))[0] * 1000
        assert np.linalg.norm(lower - v[LOWER_LIP_EDGE] * 1000) < 1.0


def test_embedded_aperture_matches_lip_gap_at_jaw_open_and_sealed():
    """The track's aperture (embedded 13-14) and our lip gap agree within 1 mm on the
    template posed at jaw_open = 1, and sealed lips read sealed through the embedding."""
    emb = rig_fit.embedding()
    rig = load_rig()
    for control, weight in (("jaw_open", 1.0), ("lips_close", 1.0)):
        w = np.zeros((1, len(CONTROLS)))
        w[0, CONTROLS.index(control)] = weight
        v = emb.template + rig.offsets(w)[0]
        assert abs(rig_fit.aperture_mm(v) - rig_fit.lip_gap_mm(v)) < 1.0, control
    assert rig_fit.aperture_mm(v) < 1.0, "lips_close = 1 must read as lip contact (< 1 mm)"
