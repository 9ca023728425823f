"""What the Blender-side tests of a whole bake share: the template head, a short
librivox line, and the add-on registered once (skipped without ../shared)."""
import bpy
import pytest

from flame_lipsync.core.flame import FLAME_ASSETS, SPEECH_ASSETS

TEMPLATE = FLAME_ASSETS / "flame_template.ply"
AUDIO = SPEECH_ASSETS / "librivox" / "sense_and_sensibility_01_austen_64kb-0880.wav"


def registered_addon():
    if not TEMPLATE.is_file() or not AUDIO.is_file():
        pytest.skip("shared assets not found beside the project")
    import flame_lipsync
    if not hasattr(bpy.types.Scene, "flame_lipsync"):
        flame_lipsync.register()
