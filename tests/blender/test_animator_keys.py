"""Keys for animators, in real Blender (bpy module): reduced Bézier keys evaluate within
the tolerance, one action per dialogue line on the NLA, a frame-range re-bake keeps an
animator's keys outside the range, word markers owned by us and removed by Clear."""
import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from flame_lipsync.core import key_reduction as kr  # noqa: E402
from flame_lipsync.core.flame import FLAME_ASSETS, SPEECH_ASSETS  # noqa: E402
from flame_lipsync.core.rig import CONTROLS, load_rig  # noqa: E402
from flame_lipsync.blender.sources import strip_span  # noqa: E402
from shot import can_add_sound_strips, open_strips_made_elsewhere, strip_named  # noqa: E402

TEMPLATE = FLAME_ASSETS / "flame_template.ply"
CLIPS = sorted((SPEECH_ASSETS / "librivox").glob("*.wav"))


@pytest.fixture(scope="module", autouse=True)
def addon():
    if not TEMPLATE.is_file() or len(CLIPS) < 2:
        pytest.skip("shared assets not found beside the project")
    import flame_lipsync as module
    if not hasattr(bpy.types.Scene, "flame_lipsync"):
        module.register()
    return module


@pytest.fixture
def head():
    from flame_lipsync.operators import headless
    return headless.open_head(str(TEMPLATE), None)


def fcurves(action, key, slot=None):
    if getattr(action, "layers", None):
        from bpy_extras import anim_utils
        return anim_utils.action_get_channelbag_for_slot(action, slot or key.animation_data.action_slot).fcurves
    return action.fcurves


def curve(action, key, name, slot=None):
    return next(fc for fc in fcurves(action, key, slot) if fc.data_path == f'key_blocks["LS_{name}"].value')


def test_reduced_keys_evaluate_in_blender_within_the_tolerance(head):
    from flame_lipsync.operators import bake
    rig = load_rig()
    fields = rig.fields.astype(np.float64)
    t = np.arange(240) / 30
    rng = np.random.default_rng(3)
    weights = np.clip(np.stack([0.5 + 0.5 * np.sin(2 * np.pi * (0.7 + 0.2 * c) * t + c) for c in range(10)], 1)
                      + 0.01 * rng.standard_normal((240, 10)), 0, 1.5)
    weights[60:70, CONTROLS.index("lips_close")] = 1.0      # a closure
    action = bake.bake_shape_keys(head, CONTROLS, fields, weights, frame_start=11, keys="REDUCED")
    key = head.data.shape_keys
    frames = 11 + np.arange(240)
    got = np.empty_like(weights)
    total = 0
    for c, name in enumerate(CONTROLS):
        fc = curve(action, key, name)
        points = fc.keyframe_points
        total += len(points)
        assert {p.interpolation for p in points} == {"BEZIER"}
        assert {p.handle_left_type for p in points} == {p.handle_right_type for p in points} == {"AUTO_CLAMPED"}
        got[:, c] = [fc.evaluate(float(f)) for f in frames]
    assert total < weights.size / 2
    w32 = weights.astype(np.float32).astype(np.float64)
    error = np.linalg.norm(np.einsum("tc,cnd->tnd", got - w32, fields), axis=2).max(1)
    assert error.max() <= kr.DEFAULT_TOLERANCE * 1.001, error.max()    # float32 in Blender
    closure = curve(action, key, "lips_close")
    keyed = {round(p.co[0]) for p in closure.keyframe_points}
    sealed = kr.sealed_frames(weights, CONTROLS)
    assert sealed[60:70].all()
    ends = {11 + int(f) for run in kr._runs(sealed) for f in run}
    assert ends and ends <= keyed                                # both ends of every closure
    assert error[sealed].max() <= kr.DEFAULT_TOLERANCE * kr.SEAL_FRACTION * 1.001  # sealed stays sealed


def _head_with_strips(tmp_path, strips):
    """The template head in a fresh scene with sound strips (name, wav, channel, frame):
    added here, or by Blender 4.5 where this bpy has no audaspace (shot.py)."""
    if not can_add_sound_strips():
        head = open_strips_made_elsewhere(tmp_path, strips, head=TEMPLATE)
        return head, [strip_named(bpy.context.scene, name) for name, *_ in strips]
    from flame_lipsync.operators import headless
    head = headless.open_head(str(TEMPLATE), None)
    editor = bpy.context.scene.sequence_editor_create()
    added = editor.strips if hasattr(editor, "strips") else editor.sequences
    return head, [added.new_sound(name, str(path), channel, frame) for name, path, channel, frame in strips]


def test_several_strips_give_one_nla_strip_each_at_their_frames(tmp_path):
    from flame_lipsync.operators import bake
    head, (a, b, _) = _head_with_strips(tmp_path, [("Line A", CLIPS[1], 3, 10), ("Line B", CLIPS[4], 3, 200),
                                                  ("Other channel", CLIPS[2], 5, 400)])
    scene = bpy.context.scene
    props = scene.flame_lipsync
    props.source, props.strip, props.all_strips, props.strip_channel = "STRIP", "Line A", True, 3
    assert bpy.ops.flame_lipsync.generate("EXEC_DEFAULT") == {"FINISHED"}
    ad = head.data.shape_keys.animation_data
    assert ad.action is None                                      # the NLA plays the lines
    tracks = [t for t in ad.nla_tracks if t.name == bake.LINES_TRACK]
    assert len(tracks) == 1
    strips = list(tracks[0].strips)
    assert [s.name for s in strips] == ["Line A", "Line B"]
    for strip, sound in zip(strips, (a, b)):
        first, end = strip_span(sound)
        assert strip.frame_start == first
        assert strip.action.name == f"LS_{sound.name}" and strip.action.get("flame_lipsync")
        keyed = [p.co[0] for fc in fcurves(strip.action, head.data.shape_keys, getattr(strip, "action_slot", None))
                 for p in fc.keyframe_points]
        assert min(keyed) == first and max(keyed) == end - 1     # keys on the frames it plays
    # Clear removes the track, both actions and the markers; nothing of the artist's.
    assert len(scene.timeline_markers) > 0
    scene.timeline_markers.new("artist", frame=5)
    assert bpy.ops.flame_lipsync.clear("EXEC_DEFAULT") == {"FINISHED"}
    assert [m.name for m in scene.timeline_markers] == ["artist"]
    assert not [x for x in bpy.data.actions if x.get("flame_lipsync")]
    assert head.data.shape_keys is None


def test_frame_range_rebake_keeps_hand_moved_keys_outside_the_range(tmp_path):
    from flame_lipsync.operators import bake
    head, (strip,) = _head_with_strips(tmp_path, [("Dialogue", CLIPS[0], 1, 1)])
    scene = bpy.context.scene
    props = scene.flame_lipsync
    props.source, props.strip = "STRIP", strip.name
    props.markers = "NONE"
    assert bpy.ops.flame_lipsync.generate("EXEC_DEFAULT") == {"FINISHED"}
    key = head.data.shape_keys
    action = bake.owned_action(head)
    jaw = curve(action, key, "jaw_open")
    before = [tuple(p.co) for p in jaw.keyframe_points]
    # The animator moves a key before the range and one after it.
    early = next(p for p in jaw.keyframe_points if 5 <= p.co[0] < 40)
    late = next(p for p in jaw.keyframe_points if p.co[0] > 150)
    early.co.y += 0.25
    late.co.y -= 0.2
    early.handle_left_type = early.handle_right_type = "FREE"
    jaw.update()
    early_frame = round(early.co.x)
    moved = {early_frame: early.co.y, round(late.co.x): late.co.y}
    outside = {round(p.co[0]): p.co[1] for p in jaw.keyframe_points if not 60 <= p.co[0] <= 120}
    props.use_frame_range, props.frame_start, props.frame_end = True, 60, 120
    props.intensity = 0.5                                         # a different take inside the range
    assert bpy.ops.flame_lipsync.generate("EXEC_DEFAULT") == {"FINISHED"}
    action = bake.owned_action(head)
    jaw = curve(action, key, "jaw_open")
    after = {round(p.co[0]): p.co[1] for p in jaw.keyframe_points}
    for frame, value in outside.items():
        assert after[frame] == pytest.approx(value, abs=1e-7)
    for frame, value in moved.items():
        assert after[frame] == pytest.approx(value, abs=1e-7)
    assert {60, 120} <= set(after)                                 # the range's ends are keyed
    inside = {f: v for f, v in after.items() if 60 <= f <= 120}
    assert inside != {round(c[0]): c[1] for c in before if 60 <= c[0] <= 120}
    assert next(p for p in jaw.keyframe_points if round(p.co[0]) == early_frame).handle_left_type == "FREE"
