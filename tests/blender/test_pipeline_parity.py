"""`cli.py animate` and a UI bake of the same audio give the same vertices, motion
stage included: both run pipeline.perform and pipeline.pose_blocks."""
import subprocess
import sys

import bpy
import numpy as np
import pytest

from shot import AUDIO, TEMPLATE, registered_addon

from flame_lipsync.core.flame import PROJECT_ROOT
from flame_lipsync.core.pc2 import read_pc2


@pytest.fixture(scope="module", autouse=True)
def addon():
    registered_addon()


def animate(tmp_path, engine, intensity_args=()):
    out = tmp_path / f"{engine}.npy"
    run = subprocess.run([sys.executable, "cli.py", "animate", "--audio", str(AUDIO), "--head", str(TEMPLATE),
                          "--fps", "30", "--engine", engine, "--export-npy", str(out)],
                         capture_output=True, text=True, cwd=str(PROJECT_ROOT), timeout=600)
    assert run.returncode == 0, run.stderr
    return np.load(out)


def ui_bake(tmp_path, engine):
    from flame_lipsync.operators import headless
    obj = headless.open_head(str(TEMPLATE), None)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    props = scene.flame_lipsync
    props.source, props.audio_file, props.transcript = "FILE", str(AUDIO), ""
    props.transcript_beside_audio = False
    props.engine, props.bake_mode, props.cache_folder = engine, "MESH_CACHE", str(tmp_path)
    assert bpy.ops.flame_lipsync.generate("EXEC_DEFAULT") == {"FINISHED"}
    modifier = next(m for m in obj.modifiers if m.type == "MESH_CACHE")
    vertices, _, _ = read_pc2(bpy.path.abspath(modifier.filepath))
    return vertices


@pytest.mark.parametrize("engine", ["phonetic", "neural_fast"])
def test_cli_animate_gives_the_ui_bakes_vertices(tmp_path, engine):
    from flame_lipsync.pipeline.engines import ENGINES
    if engine not in ENGINES:
        pytest.skip(f"{engine} weights not shipped")
    cli = animate(tmp_path, engine)
    ui = ui_bake(tmp_path, engine)
    assert cli.shape == ui.shape and cli.shape[1:] == (5023, 3)
    np.testing.assert_array_equal(cli, ui)
    gap = np.linalg.norm(cli[:, 3546] - cli[:, 3504], axis=1)
    assert gap.max() - gap.min() > 0.005  # the mouth really moves (>5 mm of lip gap range)
