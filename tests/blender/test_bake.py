"""Bake writers in real Blender (bpy module): shape keys + action, PC2 mesh cache,
ownership (re-bake, Clear, conflicts), artist data byte-for-byte, undo, glTF."""
import json
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
from flame_lipsync.operators import bake  # noqa: E402

from flame_lipsync.core.mesh_io import load_head  # noqa: E402
from flame_lipsync.core.pc2 import HEADER_SIZE, PC2Error, read_pc2, write_pc2  # noqa: E402
from flame_lipsync.core.rig import CONTROLS, load_rig  # noqa: E402

TOL = 1e-5


@lru_cache(maxsize=1)
def _template(path: str):
    return load_head(path)


@pytest.fixture
def template(flame_dir):
    return _template(str(flame_dir / "flame_template.ply"))


@pytest.fixture
def fields():
    return load_rig().fields.astype(np.float64)


def _weights(t: int, seed: int = 0, hi: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, hi, (t, len(CONTROLS)))


def _new_scene(template, name="Head"):
    """Empty factory scene with the FLAME template as mesh object `name`."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    vertices, faces = template
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(vertices.astype(float).tolist(), [], faces.astype(int).tolist())
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


@pytest.fixture
def head(template):
    return _new_scene(template)


def _co(collection) -> np.ndarray:
    out = np.empty(len(collection) * 3, np.float32)
    collection.foreach_get("co", out)
    return out.reshape(-1, 3)


def _evaluated(obj, frame: int) -> np.ndarray:
    bpy.context.scene.frame_set(frame)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        return _co(mesh.vertices).astype(np.float64)
    finally:
        evaluated.to_mesh_clear()


def _fcurves(action) -> list:
    """All F-curves of an action on any Blender version (5.0 has no Action.fcurves)."""
    if getattr(action, "layers", None) is not None and len(action.layers):
        return [fc for layer in action.layers for strip in layer.strips
                for bag in strip.channelbags for fc in bag.fcurves]
    return list(action.fcurves) if hasattr(action, "fcurves") else []


def _rna(struct_, skip=("execution_time", "rna_type")) -> dict:
    """Every plain RNA property value of a struct (pointers by name)."""
    out = {}
    for prop in struct_.bl_rna.properties:
        name = prop.identifier
        if name in skip or prop.type == 'COLLECTION':
            continue
        value = getattr(struct_, name)
        if prop.type == 'POINTER':
            value = getattr(value, "name", None) if value is not None else None
        elif hasattr(value, "__len__") and not isinstance(value, str):
            value = tuple(value)
        out[name] = value
    return out


def _keyframes(fcurve) -> dict:
    n = len(fcurve.keyframe_points)
    arrays = {}
    for attr in ("co", "handle_left", "handle_right"):
        a = np.empty(2 * n, np.float32)
        fcurve.keyframe_points.foreach_get(attr, a)
        arrays[attr] = a.tobytes()
    arrays["interpolation"] = tuple(p.interpolation for p in fcurve.keyframe_points)
    arrays["handle_types"] = tuple((p.handle_left_type, p.handle_right_type) for p in fcurve.keyframe_points)
    return {"path": (fcurve.data_path, fcurve.array_index), "mute": fcurve.mute,
            "extrapolation": fcurve.extrapolation, **arrays}


def _artist_snapshot(obj) -> dict:
    """Everything the artist owns on/around `obj`, byte-for-byte.

    Taken at frame 1 so animated values (object location, a keyed blink) are
    comparable; `dimensions`/`bound_box` are derived from the evaluated mesh
    (which includes our bake) and so are not artist data.
    """
    bpy.context.scene.frame_set(1)
    ours_keys = {kb.name for kb in bake.owned_shape_keys(obj)}
    ours_mod = bake.owned_modifier(obj)
    key = obj.data.shape_keys
    snap = {
        "mesh_co": _co(obj.data.vertices).tobytes(),
        "object": {k: v for k, v in _rna(obj).items() if k not in ("dimensions", "bound_box")},
        "active_shape_key_index": obj.active_shape_key_index,
        "shape_keys": {
            kb.name: {"co": _co(kb.data).tobytes(), **_rna(kb)}
            for kb in (key.key_blocks if key else []) if kb.name not in ours_keys
            and not (kb == key.reference_key and obj.get(bake.OWNER_KEY, {}).get("basis") == kb.name)},
        "actions": {
            a.name: [_keyframes(fc) for fc in _fcurves(a)]
            for a in bpy.data.actions if not a.get(bake.OWNER_KEY)},
        "action_slots": {
            a.name: [s.identifier for s in getattr(a, "slots", [])]
            for a in bpy.data.actions if not a.get(bake.OWNER_KEY)},
        "modifiers": [_rna(m) for m in obj.modifiers if m != ours_mod],
        "object_action": obj.animation_data.action.name if obj.animation_data else None,
    }
    return snap


def _diff(a, b, path="") -> list:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in _diff(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {str(a)[:60]} != {str(b)[:60]}"]


def _assert_untouched(obj, before: dict):
    changes = _diff(before, _artist_snapshot(obj))
    assert not changes, "artist data changed:\n" + "\n".join(changes)


def _add_artist_data(obj):
    """Shape keys, an object action and a modifier made 'by the artist'."""
    basis = obj.shape_key_add(name="Basis", from_mix=False)
    smile = obj.shape_key_add(name="ArtistSmile", from_mix=False)
    co = _co(basis.data)
    co[:, 1] += np.linspace(0, 0.004, len(co), dtype=np.float32)
    smile.data.foreach_set("co", co.ravel())
    smile.value = 0.25
    smile.slider_max = 1.5
    blink = obj.shape_key_add(name="ArtistBlink", from_mix=False)
    co = _co(basis.data)
    co[:, 2] -= 0.002
    blink.data.foreach_set("co", co.ravel())
    blink.value = 0.0       # new keys start at 1.0 in Blender 5.0, at 0.0 before
    obj.active_shape_key_index = 1
    # Object-level animation (not the Key's): must never be touched.
    obj.location = (0.0, 0.0, 0.0)
    obj.keyframe_insert("location", frame=1)
    obj.location = (0.0, 0.1, 0.0)
    obj.keyframe_insert("location", frame=40)
    obj.location = (0.0, 0.0, 0.0)
    obj.animation_data.action.name = "ArtistObjectAction"
    mod = obj.modifiers.new("ArtistWeightedNormal", 'WEIGHTED_NORMAL')
    mod.weight = 70
    mod.keep_sharp = True
    return smile, blink


def _artist_key_action(obj, blink):
    """An action on the Key animating the artist's blink (blocks our active action)."""
    blink.value = 0.0
    blink.keyframe_insert("value", frame=1)
    blink.value = 1.0
    blink.keyframe_insert("value", frame=11)
    blink.value = 0.0
    action = obj.data.shape_keys.animation_data.action
    action.name = "ArtistKeyAction"
    return action


def _expected(basis, fields, w, extra=0.0):
    return basis + np.einsum("c,cnd->nd", w, fields) + extra


# --------------------------------------------------------------------------
# PC2


def test_pc2_roundtrip_array_and_chunks(tmp_path):
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(7, 5, 3)).astype(np.float32)
    path = tmp_path / "a.pc2"
    assert write_pc2(path, frames, start_frame=12, sample_rate=1.0) == 7
    raw = path.read_bytes()
    assert raw[:12] == b"POINTCACHE2\0"
    assert struct.unpack("<iiffi", raw[12:HEADER_SIZE]) == (1, 5, 12.0, 1.0, 7)
    assert len(raw) == HEADER_SIZE + 7 * 5 * 12
    back, start, rate = read_pc2(path)
    assert back.dtype == np.float32 and np.array_equal(back, frames) and (start, rate) == (12.0, 1.0)

    # Chunks (blocks and single frames) give the same bytes.
    chunked = tmp_path / "b.pc2"
    write_pc2(chunked, iter([frames[:3], frames[3], frames[4:]]), start_frame=12)
    assert chunked.read_bytes() == raw
    mapped, _, _ = read_pc2(chunked, mmap=True)
    assert np.array_equal(mapped, frames)

    # A failing stream leaves the previous file intact and no temp file behind.
    def broken():
        yield frames[:2]
        raise KeyboardInterrupt("cancelled")
    with pytest.raises(KeyboardInterrupt):
        write_pc2(path, broken(), start_frame=0)
    assert path.read_bytes() == raw
    with pytest.raises(PC2Error, match="points"):
        write_pc2(path, iter([frames[:2], frames[2:, :4]]), start_frame=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pc2", "b.pc2"]
    (tmp_path / "bad.pc2").write_bytes(b"POINTCACHE2\0" + b"\0" * 4)
    with pytest.raises(PC2Error):
        read_pc2(tmp_path / "bad.pc2")


# --------------------------------------------------------------------------
# Shape keys


def test_shape_key_bake_evaluates_at_frames(head, template, fields):
    basis = template[0].astype(np.float64)
    weights = _weights(15, hi=1.4)           # > 1 must not be clamped
    start = 7
    action = bake.bake_shape_keys(head, CONTROLS, fields, weights, frame_start=start)

    key = head.data.shape_keys
    assert [kb.name for kb in key.key_blocks] == ["Basis"] + [f"LS_{c}" for c in CONTROLS]
    assert all(kb.slider_min == 0.0 and kb.slider_max >= 2.0 for kb in bake.owned_shape_keys(head))
    assert action.name == "LS_Head" and action[bake.OWNER_KEY]
    assert key.animation_data.action == action and bake.owned_action(head) == action
    if bake.SLOTTED:
        assert key.animation_data.action_slot is not None
        assert key.animation_data.action_slot.target_id_type == 'KEY'
    curves = _fcurves(action)
    assert [fc.data_path for fc in curves] == [f'key_blocks["LS_{c}"].value' for c in CONTROLS]
    for c, fc in enumerate(curves):
        co = np.empty(2 * len(weights), np.float32)
        fc.keyframe_points.foreach_get("co", co)
        assert np.array_equal(co[0::2], start + np.arange(len(weights)))
        assert np.allclose(co[1::2], weights[:, c], atol=1e-6)
    assert head[bake.OWNER_KEY]["shape_keys"] == [f"LS_{c}" for c in CONTROLS]

    for k in (0, 4, 14):
        got = _evaluated(head, start + k)
        assert np.abs(got - _expected(basis, fields, weights[k])).max() < TOL, k
    # Before the first key the first value holds (constant extrapolation).
    assert np.abs(_evaluated(head, start - 3) - _expected(basis, fields, weights[0])).max() < TOL


def test_rebake_and_clear_touch_only_ours(head, template, fields):
    smile, _ = _add_artist_data(head)
    before = _artist_snapshot(head)
    actions_before = sorted(a.name for a in bpy.data.actions)
    basis = template[0].astype(np.float64)
    artist = 0.25 * (_co(smile.data) - template[0]).astype(np.float64)

    first = bake.bake_shape_keys(head, CONTROLS, fields, _weights(10, 1), frame_start=1)
    _assert_untouched(head, before)
    assert [kb.name for kb in head.data.shape_keys.key_blocks][:3] == ["Basis", "ArtistSmile", "ArtistBlink"]

    # Re-bake: fewer controls, longer clip, another start. Same action, stale key gone.
    controls = CONTROLS[:6]
    weights = _weights(30, 2)[:, :6]
    again = bake.bake_shape_keys(head, controls, fields[:6], weights, frame_start=101)
    assert again == first and again.name == "LS_Head"
    assert sorted(a.name for a in bpy.data.actions) == sorted(actions_before + ["LS_Head"])
    assert [kb.name for kb in bake.owned_shape_keys(head)] == [f"LS_{c}" for c in controls]
    assert "LS_lower_lip_tuck" not in head.data.shape_keys.key_blocks
    assert len(_fcurves(again)) == 6
    assert all(len(fc.keyframe_points) == 30 for fc in _fcurves(again))
    _assert_untouched(head, before)
    got = _evaluated(head, 101 + 17)
    assert np.abs(got - _expected(basis, fields[:6], weights[17], artist)).max() < TOL

    report = bake.clear_bake(head)
    assert report["shape_keys"] == [f"LS_{c}" for c in controls]
    assert report["action"] == "LS_Head" and report["basis"] is None
    _assert_untouched(head, before)
    assert sorted(a.name for a in bpy.data.actions) == actions_before
    assert [kb.name for kb in head.data.shape_keys.key_blocks] == ["Basis", "ArtistSmile", "ArtistBlink"]
    assert bake.OWNER_KEY not in head
    assert bake.owned_shape_keys(head) == [] and bake.owned_action(head) is None


def test_clear_on_fresh_head_restores_plain_mesh(head, template, fields):
    co_before = _co(head.data.vertices).tobytes()
    bake.bake_shape_keys(head, CONTROLS, fields, _weights(5), frame_start=1)
    report = bake.clear_bake(head)
    assert report["basis"] == "Basis" and len(report["shape_keys"]) == len(CONTROLS)
    assert head.data.shape_keys is None
    assert len(bpy.data.actions) == 0 and len(bpy.data.shape_keys) == 0
    assert _co(head.data.vertices).tobytes() == co_before
    assert bake.OWNER_KEY not in head
    # Clearing again is harmless and reports nothing removed.
    assert bake.clear_bake(head)["shape_keys"] == []


def test_conflict_refuse_changes_nothing(head, fields):
    _, blink = _add_artist_data(head)
    artist_action = _artist_key_action(head, blink)
    before = _artist_snapshot(head)
    key_names = [kb.name for kb in head.data.shape_keys.key_blocks]
    n_tracks = len(head.data.shape_keys.animation_data.nla_tracks)

    with pytest.raises(bake.BakeConflict) as err:
        bake.bake_shape_keys(head, CONTROLS, fields, _weights(5), frame_start=1)
    message = str(err.value)
    assert "'Head'" in message and "'ArtistKeyAction'" in message and "Stash" in message

    _assert_untouched(head, before)
    assert [kb.name for kb in head.data.shape_keys.key_blocks] == key_names
    assert head.data.shape_keys.animation_data.action == artist_action
    assert len(head.data.shape_keys.animation_data.nla_tracks) == n_tracks
    assert [a.name for a in bpy.data.actions if a.get(bake.OWNER_KEY)] == []
    assert bake.OWNER_KEY not in head


def test_conflict_stash_keeps_artist_action_playing(head, template, fields):
    smile, blink = _add_artist_data(head)
    artist_action = _artist_key_action(head, blink)
    if bake.SLOTTED:
        artist_slot = head.data.shape_keys.animation_data.action_slot.identifier
    before = _artist_snapshot(head)

    weights = _weights(20, 3)
    ours = bake.bake_shape_keys(head, CONTROLS, fields, weights, frame_start=1, on_conflict="stash")
    ad = head.data.shape_keys.animation_data
    assert ad.action == ours and ours != artist_action
    tracks = [t for t in ad.nla_tracks if any(s.action == artist_action for s in t.strips)]
    assert len(tracks) == 1 and not tracks[0].mute
    strip = tracks[0].strips[0]
    assert strip.frame_start == 1.0 and strip.frame_end == 11.0
    if bake.SLOTTED:
        assert strip.action_slot.identifier == artist_slot
    _assert_untouched(head, before)                  # the artist's action is unchanged

    # Both play: the stashed blink (NLA) under our mouth (active action).
    basis = template[0].astype(np.float64)
    smile_d = (_co(smile.data) - template[0]).astype(np.float64)
    blink_d = (_co(blink.data) - template[0]).astype(np.float64)
    got = _evaluated(head, 6)                        # blink at 0.5 halfway 1 -> 11
    expected = _expected(basis, fields, weights[5], 0.25 * smile_d + 0.5 * blink_d)
    assert np.abs(got - expected).max() < TOL

    # Clear gives the artist's action back as active and removes our track.
    report = bake.clear_bake(head)
    assert report["restored_action"] == "ArtistKeyAction" and report["nla_track"]
    ad = head.data.shape_keys.animation_data
    assert ad.action == artist_action and len(ad.nla_tracks) == 0
    if bake.SLOTTED:
        assert ad.action_slot.identifier == artist_slot
    _assert_untouched(head, before)


def test_artist_key_named_like_ours_is_refused(head, fields):
    head.shape_key_add(name="Basis", from_mix=False)
    head.shape_key_add(name="LS_jaw_open", from_mix=False)
    before = _artist_snapshot(head)
    with pytest.raises(bake.BakeConflict, match="LS_jaw_open"):
        bake.bake_shape_keys(head, CONTROLS, fields, _weights(3), frame_start=1)
    _assert_untouched(head, before)
    assert len(bpy.data.actions) == 0


def test_bad_inputs_change_nothing(head, fields):
    with pytest.raises(ValueError, match="5023"):
        bake.bake_shape_keys(head, CONTROLS, fields[:, :100], _weights(3), frame_start=1)
    with pytest.raises(ValueError, match="weights"):
        bake.bake_shape_keys(head, CONTROLS, fields, _weights(3)[:, :4], frame_start=1)
    with pytest.raises(ValueError, match="on_conflict"):
        bake.bake_shape_keys(head, CONTROLS, fields, _weights(3), frame_start=1, on_conflict="x")
    assert head.data.shape_keys is None and len(bpy.data.actions) == 0


def test_undo_restores_scene_after_bake_and_clear(head, fields):
    _add_artist_data(head)
    snapshot = _artist_snapshot(head)
    keys_before = [kb.name for kb in head.data.shape_keys.key_blocks]
    bpy.ops.ed.undo_push(message="before bake")
    bake.bake_shape_keys(head, CONTROLS, fields, _weights(8), frame_start=1)
    bpy.ops.ed.undo_push(message="Generate lip sync")
    baked_keys = [kb.name for kb in bpy.data.objects["Head"].data.shape_keys.key_blocks]

    bpy.ops.ed.undo()
    head = bpy.data.objects["Head"]
    assert [kb.name for kb in head.data.shape_keys.key_blocks] == keys_before
    assert "LS_Head" not in bpy.data.actions and bake.OWNER_KEY not in head
    _assert_untouched(head, snapshot)

    bpy.ops.ed.redo()
    head = bpy.data.objects["Head"]
    assert [kb.name for kb in head.data.shape_keys.key_blocks] == baked_keys
    bake.clear_bake(head)
    bpy.ops.ed.undo_push(message="Clear lip sync")
    bpy.ops.ed.undo()
    head = bpy.data.objects["Head"]
    assert [kb.name for kb in head.data.shape_keys.key_blocks] == baked_keys
    assert bake.owned_action(head) is not None


def test_gltf_export_keeps_shape_key_animation(head, fields, tmp_path):
    weights = _weights(12, 4)
    bake.bake_shape_keys(head, CONTROLS, fields, weights, frame_start=5)
    path = tmp_path / "head.gltf"
    bpy.ops.export_scene.gltf(filepath=str(path), export_format='GLTF_SEPARATE')
    gltf = json.loads(path.read_text())

    mesh = gltf["meshes"][0]
    assert mesh["extras"]["targetNames"] == [f"LS_{c}" for c in CONTROLS]
    channels = [(a, c) for a in gltf["animations"] for c in a["channels"]
                if c["target"]["path"] == "weights"]
    assert len(channels) == 1
    animation, channel = channels[0]
    sampler = animation["samplers"][channel["sampler"]]

    def accessor(index):
        acc = gltf["accessors"][index]
        view = gltf["bufferViews"][acc["bufferView"]]
        blob = (tmp_path / gltf["buffers"][view["buffer"]]["uri"]).read_bytes()
        start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
        width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc["type"]]
        return np.frombuffer(blob, np.float32, acc["count"] * width, start)

    fps = bpy.context.scene.render.fps / bpy.context.scene.render.fps_base
    times = accessor(sampler["input"])
    assert np.allclose(times, (5 + np.arange(12)) / fps, atol=1e-5)
    values = accessor(sampler["output"]).reshape(len(times), len(CONTROLS))
    assert np.allclose(values, weights, atol=1e-5)


# --------------------------------------------------------------------------
# Mesh cache


def _save_blend(tmp_path) -> Path:
    path = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    return path


def test_mesh_cache_bake_plays_exact_frames(head, template, fields, tmp_path):
    _add_artist_data(head)
    before = _artist_snapshot(head)
    _save_blend(tmp_path)
    rig = load_rig()
    vertices = template[0] + rig.offsets(_weights(9, 5))
    pc2 = tmp_path / "cache" / "Head.pc2"
    start = 11

    mod = bake.bake_mesh_cache(head, vertices, start, str(pc2))
    assert mod.name == "LS_MeshCache" and head.modifiers[0] == mod     # first in the stack
    assert mod.cache_format == 'PC2' and mod.filepath == "//cache/Head.pc2"
    assert (mod.forward_axis, mod.up_axis) == ('POS_Y', 'POS_Z')
    assert not any(mod.flip_axis)   # no axis flipped: 3 booleans (4.4+) or a set of flags (4.2)
    assert mod.frame_scale == 1.0 and mod.frame_start == start
    assert bake.owned_modifier(head) == mod and head[bake.OWNER_KEY]["pc2"] == str(pc2)
    frames, pc2_start, rate = read_pc2(pc2)
    assert np.array_equal(frames, vertices.astype(np.float32)) and (pc2_start, rate) == (start, 1.0)
    _assert_untouched(head, before)
    assert head.modifiers.active is None or head.modifiers.active.name == "ArtistWeightedNormal"

    for k in (0, 3, 8):
        got = _evaluated(head, start + k)
        assert np.abs(got - vertices[k]).max() < TOL, k

    # Re-bake from a chunk stream: same modifier, new data.
    again = template[0] + rig.offsets(_weights(6, 6))
    mod2 = bake.bake_mesh_cache(head, (again[i:i + 4] for i in range(0, 6, 4)), 2, str(pc2))
    assert mod2 == mod and len([m for m in head.modifiers if m.type == 'MESH_CACHE']) == 1
    assert np.abs(_evaluated(head, 2 + 5) - again[5]).max() < TOL
    _assert_untouched(head, before)

    report = bake.clear_bake(head)
    assert report["modifier"] == "LS_MeshCache" and report["pc2_file"] == str(pc2)
    assert [m.name for m in head.modifiers] == ["ArtistWeightedNormal"]
    assert pc2.exists()                             # kept: Undo cannot restore a file
    _assert_untouched(head, before)


def test_mesh_cache_refusals_change_nothing(head, template, tmp_path):
    assert bpy.data.filepath == ""
    vertices = np.repeat(template[0][None], 3, 0)
    pc2 = tmp_path / "Head.pc2"
    with pytest.raises(ValueError, match="not saved"):
        bake.bake_mesh_cache(head, vertices, 1, str(pc2), relative=True)
    with pytest.raises(ValueError, match="absolute"):
        bake.bake_mesh_cache(head, vertices, 1, "Head.pc2", relative=False)
    with pytest.raises(ValueError, match="5023"):
        bake.bake_mesh_cache(head, vertices[:, :100], 1, str(pc2), relative=False)
    assert len(head.modifiers) == 0 and not pc2.exists() and bake.OWNER_KEY not in head

    # Unsaved file with an explicit folder: absolute path works.
    mod = bake.bake_mesh_cache(head, vertices, 1, str(pc2), relative=False)
    assert mod.filepath == str(pc2) and pc2.exists()

    # An artist's modifier that happens to carry our name is not ours.
    bake.clear_bake(head)
    clash = head.modifiers.new("LS_MeshCache", 'MESH_CACHE')
    with pytest.raises(bake.BakeConflict, match="LS_MeshCache"):
        bake.bake_mesh_cache(head, vertices, 1, str(pc2), relative=False)
    assert clash.filepath == "" and [m.name for m in head.modifiers] == ["LS_MeshCache"]
    assert bake.clear_bake(head)["modifier"] is None and len(head.modifiers) == 1
