"""Issue 13 in real Blender: linked and library-override heads are refused with how to make
them local, and nothing changes; the preview movie is written atomically (a failed,
interrupted or disk-full render leaves no partial file and the previous preview
byte-identical); system errors and damaged data files reach the sidebar as words."""
import contextlib
import errno
import hashlib
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from flame_lipsync.core import atomic  # noqa: E402
from flame_lipsync.core.flame import FLAME_ASSETS, PROJECT_ROOT  # noqa: E402

TEMPLATE = FLAME_ASSETS / "flame_template.ply"
RATE = 16000


@pytest.fixture(scope="module", autouse=True)
def addon():
    if not TEMPLATE.is_file():
        pytest.skip("shared assets not found beside the project")
    import flame_lipsync as module
    if not hasattr(bpy.types.Scene, "flame_lipsync"):
        module.register()
    return module


def tree(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def speech_wav(path, seconds=1.0):
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(120 + 20 * np.sin(2 * np.pi * 0.7 * t)) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    x = 0.3 * x / np.abs(x).max() * np.clip(np.sin(2 * np.pi * 3.5 * t), 0, None) ** 0.5
    data = (x * 32767).astype("<i2").tobytes()
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt "
                     + struct.pack("<IHHIIHH", 16, 1, 1, RATE, 2 * RATE, 2, 16) + b"data"
                     + struct.pack("<I", len(data)) + data)
    return path


def snapshot():
    """What a refused bake must leave exactly as it was."""
    return {
        "objects": sorted((o.name, bool(o.library)) for o in bpy.data.objects),
        "meshes": sorted(m.name for m in bpy.data.meshes),
        "actions": sorted(a.name for a in bpy.data.actions),
        "keys": sorted(k.name for k in bpy.data.shape_keys),
        "modifiers": {o.name: [m.name for m in o.modifiers] for o in bpy.data.objects},
        "props": {o.name: sorted(o.keys()) for o in bpy.data.objects},
        "markers": sorted(m.name for m in bpy.context.scene.timeline_markers),
    }


def run_generate():
    return bpy.ops.flame_lipsync.generate("EXEC_DEFAULT")


def ready_to_bake(obj, audio, mode="SHAPE_KEYS", cache_folder=""):
    for other in bpy.context.view_layer.objects:
        other.select_set(False)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    props = bpy.context.scene.flame_lipsync
    props.source, props.audio_file = "FILE", str(audio)
    props.engine, props.transcript, props.transcript_beside_audio = "phonetic", "", False
    props.bake_mode, props.cache_folder = mode, cache_folder


# ----------------------------------------------------------------------------- linked / overridden heads

def write_library(folder):
    """library.blend: the FLAME head 'Head' (mesh 'Head') in a collection 'HeadRig'."""
    from flame_lipsync.operators import headless
    obj = headless.open_head(str(TEMPLATE), None)
    rig = bpy.data.collections.new("HeadRig")
    rig.objects.link(obj)
    path = folder / "library.blend"
    bpy.data.libraries.write(str(path), {obj, rig}, fake_user=True)
    return path


def linked_object(library):
    with bpy.data.libraries.load(str(library), link=True) as (_, dst):
        dst.objects = ["Head"]
    obj = dst.objects[0]
    bpy.context.scene.collection.objects.link(obj)
    return obj


def linked_mesh(library):
    with bpy.data.libraries.load(str(library), link=True) as (_, dst):
        dst.meshes = ["Head"]
    obj = bpy.data.objects.new("LocalHead", dst.meshes[0])
    bpy.context.scene.collection.objects.link(obj)
    return obj


def override(library):
    with bpy.data.libraries.load(str(library), link=True) as (_, dst):
        dst.collections = ["HeadRig"]
    linked, children = dst.collections[0], bpy.context.scene.collection.children
    children.link(linked)    # as Link leaves it (5.3 overrides only what the scene uses)
    made = linked.override_hierarchy_create(bpy.context.scene, bpy.context.view_layer)
    if linked.name in children and children[linked.name] == linked:  # the override replaces it
        children.unlink(linked)
    return made.all_objects["Head"]


HEADS = {
    "linked object": (linked_object, r"'Head' is linked from the library '.*library\.blend'"),
    "linked mesh": (linked_mesh, r"'LocalHead' \(its mesh 'Head'\) is linked from the library '.*library\.blend'"),
    "library override": (override, r"'Head' is a library override of the library '.*library\.blend': "
                                   r"an override saves only its overridden properties"),
}


@pytest.mark.parametrize("mode", ["SHAPE_KEYS", "MESH_CACHE"])
@pytest.mark.parametrize("case", list(HEADS))
def test_linked_or_overridden_head_is_refused_and_nothing_changes(case, mode, tmp_path):
    library = write_library(tmp_path)
    audio = speech_wav(tmp_path / "line.wav")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    make, pattern = HEADS[case]
    obj = make(library)
    (tmp_path / "cache").mkdir()
    ready_to_bake(obj, audio, mode, str(tmp_path / "cache"))
    files, before = tree(tmp_path), snapshot()
    with pytest.raises(RuntimeError, match=pattern + r".*Object > Relations > Make Local\.\.\. > Selected "
                                                     r"Objects and Data\) and bake again"):
        run_generate()
    assert snapshot() == before and tree(tmp_path) == files     # the library and the scene untouched
    assert obj.data.shape_keys is None and not obj.modifiers


@pytest.mark.parametrize("case", ["linked object", "library override"])
def test_the_fix_the_message_names_works_and_the_keys_are_saved(case, tmp_path):
    library = write_library(tmp_path)
    audio = speech_wav(tmp_path / "line.wav")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = HEADS[case][0](library)
    ready_to_bake(obj, audio)
    assert bpy.ops.object.make_local(type="SELECT_OBDATA") == {"FINISHED"}   # what the message says
    obj = bpy.context.view_layer.objects.active
    assert obj.library is None and obj.override_library is None and obj.data.library is None
    assert run_generate() == {"FINISHED"}
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot.blend"))
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "shot.blend"))
    keys = bpy.data.objects["Head"].data.shape_keys
    assert keys is not None and "LS_jaw_open" in keys.key_blocks      # the saved file keeps the bake
    assert "LS_UpperTeeth_Head" in bpy.data.objects     # the teeth too (a local collection holds them)


def test_cli_refuses_a_shot_whose_head_is_linked(tmp_path):
    inputs, out = tmp_path / "inputs", tmp_path / "out"
    inputs.mkdir(), out.mkdir()
    library = write_library(inputs)
    audio = speech_wav(inputs / "line.wav")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    linked_object(library)
    bpy.ops.wm.save_as_mainfile(filepath=str(inputs / "shot.blend"), relative_remap=False)
    before = tree(inputs)
    result = subprocess.run([sys.executable, "cli.py", "bake", "--audio", str(audio), "--head",
                             str(inputs / "shot.blend"), "--out", str(out / "baked.blend")],
                            capture_output=True, text=True, cwd=str(PROJECT_ROOT))
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 'Head' is linked from the library") and "Make Local" in last, last
    assert "Traceback" not in result.stderr
    assert tree(inputs) == before and tree(out) == {}


# ----------------------------------------------------------------------------- the preview movie

@pytest.fixture
def shot_blend(tmp_path):
    """A head that turns over 24 frames (a movie with content to encode)."""
    from flame_lipsync.operators import headless
    obj = headless.open_head(str(TEMPLATE), None)
    for frame, angle in ((1, 0.0), (24, 3.0)):
        obj.rotation_euler[2] = angle
        obj.keyframe_insert("rotation_euler", frame=frame)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 24
    path = tmp_path / "inputs" / "shot.blend"
    path.parent.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    return path


def test_preview_writes_a_complete_movie_and_nothing_else(shot_blend, tmp_path):
    from flame_lipsync.operators import headless
    out = tmp_path / "out" / "preview.mp4"
    assert headless.preview(str(shot_blend), str(out), size=(64, 64)) == f"wrote {out}"
    atomic.check_mp4(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["preview.mp4"]


def _partial_render(then):
    def render():
        with open(bpy.context.scene.render.filepath, "wb") as handle:   # what a render half done leaves
            handle.write(b"\0\0\0\x20ftypisom" + b"\0" * 20 + b"\0\0\0\0mdat" + b"\1" * 500)
        then()
    return render


def _raise(err):
    def go():
        raise err
    return go


@pytest.mark.parametrize("case,render,raised,words", [
    ("render fails", _partial_render(_raise(RuntimeError("Error: render failed"))), RuntimeError, "render failed"),
    ("interrupted", _partial_render(_raise(KeyboardInterrupt())), KeyboardInterrupt, ""),
    ("cut movie reported as success", _partial_render(lambda: None), atomic.WriteError,
     r"the rendered movie came out incomplete, the disk is probably full \(the previous file was left as it was\)"),
    ("no movie at all", lambda: None, atomic.WriteError, r"Blender rendered no movie \(the previous file was left"),
])
def test_failed_preview_keeps_the_previous_one_and_leaves_nothing(case, render, raised, words, shot_blend,
                                                                 tmp_path, monkeypatch):
    from flame_lipsync.operators import headless
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "preview.mp4").write_bytes(b"the previous good preview" * 100)
    before, inputs = tree(folder), tree(shot_blend.parent)
    monkeypatch.setattr(headless, "render_movie", render)
    with pytest.raises(raised, match=words):
        headless.preview(str(shot_blend), str(folder / "preview.mp4"), size=(64, 64))
    assert tree(folder) == before and tree(shot_blend.parent) == inputs


@contextlib.contextmanager
def tmpfs(folder, options):
    folder.mkdir(parents=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root and mount): real disk-full preview skipped")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_preview_on_a_full_disk_keeps_the_previous_one(shot_blend, tmp_path):
    """Blender itself reports success here, with a movie cut short; the check catches it."""
    from flame_lipsync.operators import headless
    with tmpfs(tmp_path / "disk", "size=16k") as disk:
        (disk / "preview.mp4").write_bytes(b"the previous good preview" * 160)   # 4 kB
        before = tree(disk)
        with pytest.raises(atomic.WriteError, match=rf"could not write '{disk / 'preview.mp4'}': the rendered "
                                                    r"movie came out incomplete.*previous file was left as it was"):
            headless.preview(str(shot_blend), str(disk / "preview.mp4"), size=(256, 256))
        assert tree(disk) == before


def test_preview_must_be_an_mp4(shot_blend, tmp_path):
    from flame_lipsync.operators import headless
    with pytest.raises(ValueError, match=re.escape("preview.mov' must be an .mp4 file (e.g. preview.mp4)")):
        headless.preview(str(shot_blend), str(tmp_path / "preview.mov"))
    assert not (tmp_path / "preview.mov").exists()


def test_preview_into_a_file_where_the_folder_should_be(shot_blend, tmp_path):
    from flame_lipsync.operators import headless
    (tmp_path / "shots").write_text("not a folder")
    with pytest.raises(atomic.WriteError, match="'.*shots' is a file where a folder should be"):
        headless.preview(str(shot_blend), str(tmp_path / "shots" / "p.mp4"))


# ----------------------------------------------------------------------------- errors in words, in the sidebar

@pytest.fixture
def local_head(tmp_path):
    from flame_lipsync.operators import headless
    obj = headless.open_head(str(TEMPLATE), None)
    ready_to_bake(obj, speech_wav(tmp_path / "line.wav"))
    return obj


def test_cache_folder_under_a_file_reads_as_words(local_head, tmp_path):
    (tmp_path / "notes.txt").write_text("not a folder")
    ready_to_bake(local_head, tmp_path / "line.wav", "MESH_CACHE", str(tmp_path / "notes.txt" / "cache"))
    before = snapshot()
    with pytest.raises(RuntimeError) as caught:
        run_generate()
    message = str(caught.value)
    assert f"could not write '{tmp_path / 'notes.txt' / 'cache'}" in message
    assert "a file is in the way where a folder should be; rename or move that file" in message
    assert "Errno" not in message and snapshot() == before


@pytest.mark.parametrize("code,words", [
    (errno.ENOSPC, "could not write '/shots/sh010.pc2': the disk is full; free some space or write to another disk."),
    (errno.EACCES, "could not use '/shots/sh010.pc2': permission denied; choose a folder you can write to."),
    (errno.EROFS, "could not write '/shots/sh010.pc2': the file system is read-only; choose a writable folder."),
])
def test_a_raw_system_error_reaches_the_sidebar_as_words(code, words, local_head, monkeypatch):
    from flame_lipsync import pipeline

    def boom(*args, **kwargs):
        raise OSError(code, os.strerror(code), "/shots/sh010.pc2")
    monkeypatch.setattr(pipeline, "perform", boom)
    before = snapshot()
    with pytest.raises(RuntimeError) as caught:
        run_generate()
    assert words in str(caught.value) and "Errno" not in str(caught.value)
    assert snapshot() == before


def test_damaged_rig_fields_reach_the_sidebar_as_words(local_head, tmp_path, monkeypatch):
    from flame_lipsync.core import rig
    damaged = tmp_path / "rig_fields.npz"
    damaged.write_bytes(rig.RIG_FILE.read_bytes()[:20_000])
    monkeypatch.setattr(rig.load_rig.__wrapped__, "__defaults__", (damaged,))
    rig.load_rig.cache_clear()
    before = snapshot()
    try:
        with pytest.raises(RuntimeError, match=rf"rig fields '{damaged}' is cut short or damaged .*make rig"):
            run_generate()
    finally:
        monkeypatch.undo()
        rig.load_rig.cache_clear()
    assert snapshot() == before
