"""Switching bake mode over a stashed artist action: refused before anything changes
(clearing our shape-key bake would put the artist's action back and block the cache)."""
import bpy
import pytest

from shot import AUDIO, TEMPLATE, registered_addon


@pytest.fixture(scope="module", autouse=True)
def addon():
    registered_addon()


def snapshot(obj):
    key = obj.data.shape_keys
    ad = key.animation_data
    return {"keys": [k.name for k in key.key_blocks], "action": ad.action.name if ad.action else None,
            "tracks": [(t.name, [s.action.name for s in t.strips]) for t in ad.nla_tracks],
            "modifiers": [m.name for m in obj.modifiers], "objects": sorted(o.name for o in bpy.data.objects)}


def test_mesh_cache_over_a_stashed_artist_action_is_refused_and_changes_nothing(tmp_path):
    from flame_lipsync.operators import headless
    obj = headless.open_head(str(TEMPLATE), None)
    blink = obj.shape_key_add(name="Basis") and obj.shape_key_add(name="ArtistBlink", from_mix=False)
    blink.keyframe_insert("value", frame=1)
    obj.data.shape_keys.animation_data.action.name = "ArtistKeyAction"
    props = bpy.context.scene.flame_lipsync
    props.source, props.audio_file, props.transcript = "FILE", str(AUDIO), ""
    props.transcript_beside_audio, props.bake_mode = False, "SHAPE_KEYS"
    props.stash_existing_action = True
    assert bpy.ops.flame_lipsync.generate("EXEC_DEFAULT") == {"FINISHED"}
    before = snapshot(obj)
    assert before["tracks"] and before["tracks"][0][1] == ["ArtistKeyAction"]
    props.stash_existing_action = False
    props.bake_mode, props.cache_folder = "MESH_CACHE", str(tmp_path)
    with pytest.raises(RuntimeError, match="stashed by the last bake.*Stash"):  # the operator's error report
        bpy.ops.flame_lipsync.generate("EXEC_DEFAULT")
    assert snapshot(obj) == before and not list(tmp_path.glob("*.pc2"))
    props.stash_existing_action = True   # with Stash it goes through
    assert bpy.ops.flame_lipsync.generate("EXEC_DEFAULT") == {"FINISHED"}
    assert [m.name for m in obj.modifiers] == ["LS_MeshCache"]
