"""Teeth, tongue and mouth cavity geometry (bpy-free), on the four shared heads and
the control ranges the engines emit (every engine, run here on shared speech)."""
from functools import lru_cache

import numpy as np
import pytest

from flame_lipsync.core import mouth_interior as mi
from flame_lipsync.core.flame import FLAME_ASSETS, SHARED_HEADS, SPEECH_ASSETS
from flame_lipsync.core.mesh_io import load_head, recentred
from flame_lipsync.core.metrics import lip_gap
from flame_lipsync.core.rig import CONTROLS, load_rig

CLIPS = ("english.wav", "librivox/sense_and_sensibility_01_austen_64kb-0880.wav")
OPEN = {"jaw_open": 0.50, "lower_lip_down": 0.25}        # AA's hand-set target
# The registered scan's mouth is open at rest (12.5 mm) and lips_close = 1 leaves 11 mm:
# its lips never meet, so "closed lips hide the teeth" is checked on the other three.
LIPS_NEVER_MEET = "flame_registered_mesh.ply"


@lru_cache(maxsize=1)
def _heads():
    if not FLAME_ASSETS.is_dir():
        pytest.skip(f"shared heads not found at {FLAME_ASSETS}")
    template, faces = load_head(FLAME_ASSETS / SHARED_HEADS[0])
    heads = {}
    for name in SHARED_HEADS:
        vertices, _ = load_head(FLAME_ASSETS / name)
        heads[name] = (recentred(vertices, template) if name.endswith(".obj") else vertices).astype(np.float64)
    return heads, faces


@lru_cache(maxsize=1)
def _emitted() -> np.ndarray:
    """(T, 10) mouth controls of every engine on the shared clips, default settings."""
    from flame_lipsync import pipeline
    from flame_lipsync.pipeline.engines import ENGINES
    rows = []
    for clip in CLIPS:
        path = SPEECH_ASSETS / clip
        if not path.is_file():
            pytest.skip(f"shared speech not found at {path}")
        speech = pipeline.load_audio(str(path), fps=30)
        for engine in ENGINES:
            performance = pipeline.perform(speech, 30, pipeline.Settings(engine=engine, layers=None))
            names = list(performance.control_names)
            rows.append(performance.controls[:, [names.index(c) for c in CONTROLS]])
    return np.concatenate(rows).astype(np.float64)


def _posed(head, fields, controls):
    return head + np.tensordot(np.asarray(controls, np.float64), fields, 1)


def _near(triangles, points, axes, margin=0.01):
    """Triangles whose extent overlaps the points' box on `axes` (the rays' cross-section)."""
    lo, hi = points.min(0) - margin, points.max(0) + margin
    keep = np.ones(len(triangles), bool)
    for a in axes:
        keep &= (triangles[:, :, a].max(1) >= lo[a]) & (triangles[:, :, a].min(1) <= hi[a])
    return triangles[keep]


def _visible(points, posed, faces, interior):
    tri = _near(posed[faces], points, (0, 1), margin=0.03)
    return mi.ray_hits(points, interior.forward, tri) == 0


def test_mouth_loop_is_the_boundary_at_the_back_of_the_lips():
    _, faces = _heads()
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    unique, count = np.unique(edges, axis=0, return_counts=True)
    boundary = {tuple(e) for e in unique[count == 1]}
    loop = mi.MOUTH_LOOP
    assert len(set(loop)) == 32
    assert all(tuple(sorted((loop[i], loop[(i + 1) % len(loop)]))) in boundary for i in range(len(loop)))


@pytest.mark.parametrize("name", SHARED_HEADS)
def test_parts_are_built_and_follow_the_head_frame(name):
    heads, _ = _heads()
    head = heads[name]
    interior = mi.build(head)
    assert tuple(interior.parts) == mi.PARTS
    for part in interior.parts.values():
        assert np.isfinite(part.vertices).all() and part.faces.max() < len(part.vertices)
    assert not interior.parts["upper_teeth"].offsets                    # fixed to the skull
    assert set(interior.parts["lower_teeth"].offsets) == {"jaw_open"}
    # A head turned, moved and scaled to centimetres gets the same interior, turned alike.
    a = np.radians(70)
    turn = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    moved = mi.build(100 * head @ turn.T + [3.0, -4.0, 5.0])
    for part in mi.PARTS:
        expected = 100 * interior.parts[part].vertices @ turn.T + [3.0, -4.0, 5.0]
        assert np.abs(moved.parts[part].vertices - expected).max() < 1e-4   # 1 um in cm units


@pytest.mark.parametrize("name", SHARED_HEADS)
def test_no_tooth_passes_in_front_of_the_lips(name):
    """Forward distance from every tooth vertex to its lip at the lip line >= 0, for
    every frame every engine emits (default settings) on shared speech."""
    heads, _ = _heads()
    head = heads[name]
    rig = load_rig()
    fields = rig.fields_for(head).astype(np.float64)
    interior = mi.build(head, rig)
    worst = np.inf
    for controls in _emitted():
        posed = _posed(head, fields, controls)
        parts = interior.posed(controls)
        worst = min(worst, mi.lip_clearance(parts["upper_teeth"], posed, interior, "upper").min(),
                    mi.lip_clearance(parts["lower_teeth"], posed, interior, "lower").min())
    assert worst >= 0.0, f"{name}: a tooth {-worst * 1e3:.2f} mm in front of the lips"


@pytest.mark.parametrize("name", [
    pytest.param(h, marks=pytest.mark.xfail(strict=True, reason=(
        "DECA's lips stay 4.2 mm apart at lips_close = 1 (rig); with the stretch + smile + "
        "pucker the engines emit while closed, a few posterior lower-tooth vertices show")))
    if h == "deca_head_template.obj" else h
    for h in SHARED_HEADS if h != LIPS_NEVER_MEET])
def test_closed_lips_hide_everything_inside(name):
    """Every frame the engines emit with the lips closed (lips_close >= 0.99 and the
    lips as close as lips_close alone brings them on this head), plus lips_close = 1
    with lips_press / pucker / funnel / stretch / smile / tuck at the largest values the
    engines emit while closed: no vertex of teeth, tongue or cavity seen from the front."""
    heads, faces = _heads()
    head = heads[name]
    rig = load_rig()
    fields = rig.fields_for(head).astype(np.float64)
    interior = mi.build(head, rig)
    emitted = _emitted()
    seal = np.zeros(len(CONTROLS))
    seal[CONTROLS.index("lips_close")] = 1.0
    sealed_gap = lip_gap(_posed(head, fields, seal)[None])[0]
    closed = emitted[emitted[:, CONTROLS.index("lips_close")] >= 0.99]
    closed = closed[lip_gap(np.stack([_posed(head, fields, c) for c in closed])) <= sealed_gap + 5e-4]
    assert len(closed) >= 10
    extremes = []
    for c in range(len(CONTROLS)):
        pose = seal.copy()
        pose[c] = max(pose[c], closed[:, c].max())
        extremes.append(pose)
    poses = np.concatenate([closed[np.unique(np.linspace(0, len(closed) - 1, 40).astype(int))], extremes])
    for controls in poses:
        posed = _posed(head, fields, controls)
        for part, points in interior.posed(controls).items():
            seen = _visible(points, posed, faces, interior)
            if part == "cavity":      # its first ring is the lips' own loop: on the skin
                seen[:len(mi.MOUTH_LOOP)] = False
            assert not seen.any(), f"{name}: {seen.sum()} {part} vertices show at {dict(zip(CONTROLS, controls.round(2)))}"


@pytest.mark.parametrize("name", SHARED_HEADS)
def test_open_vowels_show_the_teeth(name):
    heads, faces = _heads()
    head = heads[name]
    rig = load_rig()
    fields = rig.fields_for(head).astype(np.float64)
    interior = mi.build(head, rig)
    controls = np.array([OPEN.get(c, 0.0) for c in CONTROLS])
    posed = _posed(head, fields, controls)
    parts = interior.posed(controls)
    for part in ("upper_teeth", "lower_teeth", "cavity"):
        assert _visible(parts[part], posed, faces, interior).sum() >= 20, part
    # The widest opening the engines emit shows them too.
    widest = _emitted()[_emitted()[:, 0].argmax()]
    posed = _posed(head, fields, widest)
    teeth = np.concatenate([interior.posed(widest)[p] for p in ("upper_teeth", "lower_teeth")])
    assert _visible(teeth, posed, faces, interior).sum() >= 100


@pytest.mark.parametrize("name", SHARED_HEADS)
def test_everything_stays_inside_the_head(name):
    """No vertex pokes through the cheeks or the back of the mouth: rays from every
    interior vertex backwards (and to both sides, from behind the mouth corners: nearer
    the lips a sideways ray leaves through the open mouth; downwards one leaves through
    the open neck) cross the head's skin an odd number of times, at rest and at the
    widest opening the engines emit."""
    heads, faces = _heads()
    head = heads[name]
    rig = load_rig()
    fields = rig.fields_for(head).astype(np.float64)
    interior = mi.build(head, rig)
    widest = _emitted()[_emitted()[:, 0].argmax()]
    for controls in (np.zeros(len(CONTROLS)), widest):
        posed = _posed(head, fields, controls)
        tri_all = posed[faces]
        corner = (posed[list(mi.MOUTH_LOOP)] @ interior.forward).min() - 3e-3
        for part, points in interior.posed(controls).items():
            if part == "cavity":
                points = points[len(mi.MOUTH_LOOP):]
            behind = points[points @ interior.forward < corner]
            for direction, axes, subset in ((-interior.forward, (), points),   # a tilted head: no prefilter
                                            (interior.right, (1, 2), behind), (-interior.right, (1, 2), behind)):
                hits = mi.ray_hits(subset, direction, _near(tri_all, subset, axes, margin=0.03))
                outside = hits % 2 == 0
                assert not outside.any(), f"{name}: {outside.sum()} {part} vertices outside the head"
