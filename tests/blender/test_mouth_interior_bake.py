"""Teeth, tongue and mouth cavity baked in real Blender (bpy module): owned objects
parented to the head, the lower jaw following the face's jaw_open in both bake modes,
re-bake replaces, Clear removes, the option off leaves none, glTF export keeps them."""
import json

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from flame_lipsync.core import mouth_interior as core  # noqa: E402
from flame_lipsync.core.flame import FLAME_ASSETS, SPEECH_ASSETS  # noqa: E402
from flame_lipsync.core.mesh_io import load_head  # noqa: E402
from flame_lipsync.core.performance import Performance  # noqa: E402
from flame_lipsync.core.rig import CONTROLS  # noqa: E402
from flame_lipsync.operators import bake, mouth_interior  # noqa: E402
from flame_lipsync.operators.job import JobSettings, write  # noqa: E402

TEMPLATE = FLAME_ASSETS / "flame_template.ply"
AUDIO = SPEECH_ASSETS / "librivox" / "sense_and_sensibility_01_austen_64kb-0880.wav"


@pytest.fixture
def head():
    if not TEMPLATE.is_file():
        pytest.skip("shared assets not found beside the project")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    vertices, faces = load_head(TEMPLATE)
    mesh = bpy.data.meshes.new("Head")
    mesh.from_pydata(vertices.astype(float).tolist(), [], faces.astype(int).tolist())
    obj = bpy.data.objects.new("Head", mesh)
    bpy.context.scene.collection.objects.link(obj)
    # The artist's own transform: the interior must follow it.
    obj.location, obj.rotation_euler, obj.scale = (0.3, -0.2, 1.1), (1.5708, 0.0, 0.4), (2.0, 2.0, 2.0)
    bpy.context.view_layer.objects.active = obj
    return obj


def _performance(frames=20):
    controls = np.zeros((frames, len(CONTROLS)), np.float32)
    controls[:, 0] = np.linspace(0.0, 0.6, frames)          # jaw opens over the shot
    return Performance(fps=30.0, first_frame=5, controls=controls, control_names=CONTROLS)


def _evaluated(obj, frame):
    bpy.context.scene.frame_set(frame)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    evaluated.to_mesh_clear()
    return co.reshape(-1, 3).astype(np.float64)


def _parts(obj):
    return {p.name.split("_")[1]: p for p in mouth_interior.owned_parts(obj)}


def _expected(obj, part, jaw):
    from flame_lipsync.operators.job import head_vertices
    built = core.build(head_vertices(obj)).parts[part]
    return built.at({"jaw_open": jaw})


@pytest.mark.parametrize("mode", ["SHAPE_KEYS", "MESH_CACHE"])
def test_lower_jaw_follows_the_baked_jaw_open(head, mode, tmp_path):
    performance = _performance()
    settings = JobSettings(mode=mode, cache_path=str(tmp_path / "head.pc2"), relative_cache=False)
    summary = write(head, performance, settings)
    assert "teeth and mouth (4 objects)" in summary
    parts = _parts(head)
    assert sorted(parts) == ["LowerTeeth", "MouthCavity", "Tongue", "UpperTeeth"]
    for part in parts.values():
        assert part.parent == head and part.get(bake.OWNER_KEY)
        assert part.data.get(bake.OWNER_KEY) and part.data.materials[0].get(bake.OWNER_KEY)
        assert np.allclose(np.array(part.matrix_world), np.array(head.matrix_world), atol=1e-6)
    lower = parts["LowerTeeth"]
    key = lower.data.shape_keys
    if mode == "SHAPE_KEYS":   # a driver on the head's LS_jaw_open value
        driver = key.animation_data.drivers[0].driver
        assert driver.variables[0].targets[0].id == head.data.shape_keys
        assert key.animation_data.action is None
    else:                      # keyed from the performance's jaw_open
        assert key.animation_data.action.get(bake.OWNER_KEY)
        assert len(key.animation_data.drivers) == 0
    assert parts["UpperTeeth"].data.shape_keys is None      # fixed to the skull
    for i in (0, 10, 19):
        jaw = float(performance.controls[i, 0])
        for name, label in (("lower_teeth", "LowerTeeth"), ("tongue", "Tongue"), ("upper_teeth", "UpperTeeth")):
            got = _evaluated(parts[label], performance.first_frame + i)
            assert np.allclose(got, _expected(head, name, jaw), atol=2e-6), (mode, name, i)


def test_the_driver_follows_an_artist_edit_of_the_jaw_curve(head):
    write(head, _performance(), JobSettings(mode="SHAPE_KEYS"))
    lower = _parts(head)["LowerTeeth"]
    head.data.shape_keys.animation_data.action = None        # the artist takes the jaw over
    head.data.shape_keys.key_blocks["LS_jaw_open"].value = 0.8
    got = _evaluated(lower, 7)
    assert np.allclose(got, _expected(head, "lower_teeth", 0.8), atol=2e-6)


def test_rebake_replaces_clear_removes_and_the_option_off_leaves_none(head):
    write(head, _performance(), JobSettings(mode="SHAPE_KEYS"))
    first = sorted(p.name for p in mouth_interior.owned_parts(head))
    write(head, _performance(12), JobSettings(mode="SHAPE_KEYS"))
    assert sorted(p.name for p in mouth_interior.owned_parts(head)) == first   # replaced, not added
    assert len([o for o in bpy.data.objects if o != head and o.get(bake.OWNER_KEY)]) == 4
    artist = bpy.data.objects.new("ArtistProp", None)
    bpy.context.scene.collection.objects.link(artist)
    artist.parent = head

    import flame_lipsync
    if not hasattr(bpy.types.Scene, "flame_lipsync"):
        flame_lipsync.register()
    assert bpy.ops.flame_lipsync.clear() == {"FINISHED"}
    assert not mouth_interior.owned_parts(head) and mouth_interior.RECORD_KEY not in head
    assert sorted(o.name for o in bpy.data.objects) == ["ArtistProp", "Head"]
    assert not [m for m in bpy.data.meshes if m.get(bake.OWNER_KEY)]
    assert not [m for m in bpy.data.materials if m.get(bake.OWNER_KEY)]
    assert not [a for a in bpy.data.actions if a.get(bake.OWNER_KEY)]

    write(head, _performance(), JobSettings(mode="SHAPE_KEYS"))
    write(head, _performance(), JobSettings(mode="SHAPE_KEYS"), mouth_interior=False)
    assert not mouth_interior.owned_parts(head)


def test_generate_bakes_them_by_default_and_clear_removes_them(head):
    if not AUDIO.is_file():
        pytest.skip("shared speech not found")
    import flame_lipsync
    if not hasattr(bpy.types.Scene, "flame_lipsync"):
        flame_lipsync.register()
    props = bpy.context.scene.flame_lipsync
    assert props.bake_mouth_interior is True
    props.source, props.audio_file, props.transcript_beside_audio = "FILE", str(AUDIO), False
    assert bpy.ops.flame_lipsync.generate("EXEC_DEFAULT") == {"FINISHED"}
    assert len(mouth_interior.owned_parts(head)) == 4
    assert bpy.ops.flame_lipsync.clear() == {"FINISHED"}
    assert not mouth_interior.owned_parts(head)
    props.bake_mouth_interior = False
    assert bpy.ops.flame_lipsync.generate("EXEC_DEFAULT") == {"FINISHED"}
    assert not mouth_interior.owned_parts(head)
    props.bake_mouth_interior = True


def test_gltf_export_keeps_them(head, tmp_path):
    write(head, _performance(), JobSettings(mode="SHAPE_KEYS"))
    path = tmp_path / "head.gltf"
    bpy.ops.export_scene.gltf(filepath=str(path), export_format="GLTF_SEPARATE")
    gltf = json.loads(path.read_text())
    meshes = {m["name"]: m for m in gltf["meshes"]}
    for label in ("UpperTeeth", "LowerTeeth", "Tongue", "MouthCavity"):
        assert f"LS_{label}_Head" in meshes, sorted(meshes)
    nodes = {n["name"]: i for i, n in enumerate(gltf["nodes"])}
    head_node = gltf["nodes"][nodes["Head"]]
    assert {nodes[f"LS_{label}_Head"] for label in ("UpperTeeth", "LowerTeeth")} <= set(head_node["children"])
    lower = meshes["LS_LowerTeeth_Head"]
    assert lower["extras"]["targetNames"] == ["LS_jaw_open"]     # the jaw key travels as a morph target
    materials = {m["name"] for m in gltf["materials"]}
    assert "LS_MouthCavity_Head" in materials and "LS_UpperTeeth_Head" in materials
