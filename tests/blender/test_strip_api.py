"""A sound strip's timing through blender/sources.py, in whichever Blender runs this:
5.1+ reads left_handle / right_handle / content_start (frame_final_* and frame_start warn
there and go away in 6.0), 4.2-5.0 the old names. A strip trimmed on both ends and moved
lands on the same frames either way, and on 5.1+ nothing of ours raises a DeprecationWarning.
Where this bpy cannot add sound strips (4.2's wheel has no audaspace), Blender 4.5 adds
them and saves the file this Blender opens (tests/blender/shot.py)."""
import contextlib
import warnings

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from flame_lipsync.blender import sources  # noqa: E402
from flame_lipsync.core.audio import load_speech  # noqa: E402
from flame_lipsync.core.flame import FLAME_ASSETS, SPEECH_ASSETS  # noqa: E402
from shot import can_add_sound_strips, open_strips_made_elsewhere, strip_named  # noqa: E402

WAV = SPEECH_ASSETS / "librivox" / "sense_and_sensibility_01_austen_64kb-0880.wav"
TEMPLATE = FLAME_ASSETS / "flame_template.ply"
NEW_API = bpy.app.version >= (5, 1, 0)
START, LEFT, RIGHT, MOVE = 37, 12, 5, 10   # added at 37, trimmed 12 | 5 frames, moved 10 later


@contextlib.contextmanager
def ours_must_not_deprecate():
    """Inside: a DeprecationWarning raised by a line of the add-on is an error."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=DeprecationWarning, module=r"flame_lipsync(\.|$)")
        yield


def _legacy(strip, name, value=None):
    """The 4.2-5.0 name, read or set without its 5.1+ deprecation warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if value is None:
            return getattr(strip, name)
        setattr(strip, name, value)


def _needs_sound_strips():
    if not WAV.is_file():
        pytest.skip(f"shared assets not found at {WAV} (clone the project beside ../shared)")


@pytest.fixture
def scene(tmp_path):
    _needs_sound_strips()
    if not can_add_sound_strips():
        open_strips_made_elsewhere(tmp_path, [("Line", WAV, 1, START)])
    scene = bpy.context.scene
    editor = scene.sequence_editor or scene.sequence_editor_create()
    before = {s.name for s in sources.strips_of(scene)}
    yield scene
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    for strip in [s for s in sources.strips_of(scene) if s.name not in before]:
        strips.remove(strip)


def _add(scene, name="Line"):
    """A sound strip of WAV added at START (or the one Blender 4.5 added there)."""
    if not can_add_sound_strips():
        return strip_named(scene, name)
    editor = scene.sequence_editor
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    return strips.new_sound(name, str(WAV), 1, START)


def _length(strip) -> int:
    """The sound's length in frames, before trims."""
    return int(strip.content_duration if NEW_API else strip.frame_duration)


def _trim_and_move(strip, new_api: bool):
    if new_api:
        strip.left_handle_offset, strip.right_handle_offset = LEFT, RIGHT
        strip.content_start = strip.content_start + MOVE
    else:
        _legacy(strip, "frame_offset_start", LEFT)
        _legacy(strip, "frame_offset_end", RIGHT)
        _legacy(strip, "frame_start", _legacy(strip, "frame_start") + MOVE)


def _expected(length):
    return START + MOVE + LEFT, START + MOVE + length - RIGHT


def test_trimmed_moved_strip_spans_where_it_plays(scene):
    strip = _add(scene)
    length = _length(strip)
    assert sources.strip_span(strip) == (START, START + length)
    _trim_and_move(strip, NEW_API)
    with ours_must_not_deprecate():
        span, content = sources.strip_span(strip), sources.strip_content_start(strip)
    assert span == _expected(length)
    assert content == START + MOVE
    assert isinstance(span[0], int) and isinstance(span[1], int)


@pytest.mark.skipif(not NEW_API, reason="Blender before 5.1 has only the frame_final_* API "
                    "(covered by the test above)")
@pytest.mark.parametrize("set_new", [True, False], ids=["set-new-read-old", "set-old-read-new"])
def test_new_and_old_api_agree(scene, set_new):
    """On 5.1+ both names exist: a strip edited through one reads the same through the other."""
    strip = _add(scene)
    length = _length(strip)
    _trim_and_move(strip, set_new)
    first, end = _expected(length)
    assert sources.strip_span(strip) == (first, end)
    assert (strip.left_handle, strip.right_handle, strip.duration) == (first, end, end - first)
    old = tuple(_legacy(strip, n) for n in ("frame_final_start", "frame_final_end",
                                            "frame_final_duration", "frame_start"))
    assert old == (first, end, end - first, START + MOVE)


def test_strip_speech_is_the_audible_part(scene):
    """The samples between the handles, first frame = the left handle; no warning of ours."""
    scene.render.fps, scene.render.fps_base = 25, 1.0
    strip = _add(scene)
    length = _length(strip)
    _trim_and_move(strip, NEW_API)
    from flame_lipsync.panels.properties import _strip_items
    with ours_must_not_deprecate():
        speech, first = sources.strip_speech(scene, strip.name)
        items = _strip_items(None, bpy.context)
    whole = load_speech(str(WAV), fps=25.0)
    lo, hi = _expected(length)
    assert first == lo
    a, b = round(LEFT / 25 * 16000), round((LEFT + hi - lo) / 25 * 16000)
    assert len(speech.samples) == b - a
    np.testing.assert_allclose(speech.samples, whole.samples[a:b], atol=1e-6)
    assert (strip.name, strip.name, f"frames {lo}-{hi}") in items


def test_generate_from_a_trimmed_strip_raises_no_deprecation(tmp_path):
    """The whole operator (gather -> pipeline -> bake) on a trimmed, moved strip."""
    _needs_sound_strips()
    if not TEMPLATE.is_file():
        pytest.skip(f"shared assets not found at {TEMPLATE}")
    import flame_lipsync
    from flame_lipsync.operators import bake, headless
    if not hasattr(bpy.types.Scene, "flame_lipsync"):
        flame_lipsync.register()
    if can_add_sound_strips():
        head = headless.open_head(str(TEMPLATE), None)   # a fresh scene, holding only the head
        bpy.context.scene.sequence_editor_create()
    else:
        head = open_strips_made_elsewhere(tmp_path, [("Trimmed line", WAV, 1, START)], head=TEMPLATE)
    scene = bpy.context.scene
    strip = _add(scene, "Trimmed line")
    length = _length(strip)
    _trim_and_move(strip, NEW_API)
    props = scene.flame_lipsync
    props.source, props.strip, props.engine = "STRIP", strip.name, "phonetic"
    props.transcript, props.transcript_beside_audio = "", False
    props.use_frame_range = False
    with ours_must_not_deprecate():
        assert bpy.ops.flame_lipsync.generate("EXEC_DEFAULT") == {"FINISHED"}
    action = bake.owned_action(head)
    assert action is not None
    lo, hi = _expected(length)
    assert tuple(round(f) for f in action.frame_range) == (lo, hi - 1)
