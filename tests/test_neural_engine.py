"""The shipped neural engine: registered, safe to load, numpy == torch, rests in silence."""
import json

import numpy as np
import pytest

from core import motion
from core.audio import load_speech, speech_from_array
from core.engines import ENGINES, run_engine
from core.metrics import lip_gap
from core.rig import CONTROLS, load_rig
from models import engine as neural

pytestmark = pytest.mark.skipif(not neural.available(), reason=f"no shipped weights at {neural.WEIGHTS}")


def test_weights_are_small_and_load_without_pickle():
    assert neural.WEIGHTS.stat().st_size < 20 * 1024 * 1024
    with np.load(neural.WEIGHTS, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
    assert meta and "config" in json.dumps(meta)
    assert "neural" in ENGINES


def test_numpy_and_torch_give_the_same_vertices(speech_dir):
    pytest.importorskip("torch")
    speech = load_speech(speech_dir / "english.wav")
    a = neural.animate(speech, fps=30, backend="numpy")
    b = neural.animate(speech, fps=30, backend="torch")
    assert a.metadata["backend"] != b.metadata["backend"]
    assert np.abs(a.offsets - b.offsets).max() <= 1e-5


def test_real_speech_moves_the_mouth_and_silence_rests(speech_dir, flame_dir):
    from core.mesh_io import load_head
    template, _ = load_head(flame_dir / "flame_template.ply")
    speech = load_speech(speech_dir / "librivox" / "sense_and_sensibility_01_austen_64kb-0880.wav")
    silence = np.zeros(speech.rate, np.float32)   # 1 s of digital silence each side
    padded = speech_from_array(np.concatenate([silence, speech.samples, silence]), speech.rate,
                               speech.rate, source="padded")
    perf = run_engine("neural", padded, 30.0, transcript="ignored")
    assert perf.metadata["transcript_ignored"]
    assert perf.controls.shape == (perf.frame_count, len(CONTROLS)) and np.isfinite(perf.controls).all()
    gap = lip_gap(template[None] + perf.offsets)
    speaking = gap[35:-35]
    assert np.ptp(speaking) > 0.004                      # opens and closes while speaking
    quiet = np.concatenate([gap[3:27], gap[-27:-3]])     # inside the silent padding
    assert np.mean(quiet <= 0.003) >= 0.9


def test_sealed_closures_survive_smoothing_and_intensity(speech_dir):
    speech = load_speech(speech_dir / "librivox" / "sense_and_sensibility_01_austen_64kb-0920.wav")
    perf = neural.animate(speech, fps=30, with_offsets=False)
    closures = perf.metadata["phones"]
    assert closures, "the network finds the bilabials of 'Sense and Sensibility' 0920"
    sealed = motion.apply_intensity(motion.smooth(perf, 2.0), 0.6)
    seal = CONTROLS.index("lips_close")
    for _, start, end in closures:
        frame = int(round(0.5 * (start + end) * 30))
        assert sealed.controls[frame, seal] == 1.0    # intensity scales shapes, not contact
        assert sealed.controls[frame, CONTROLS.index("jaw_open")] <= 0.02


def test_unknown_style_is_refused(speech_dir):
    speech = load_speech(speech_dir / "english.wav")
    with pytest.raises(ValueError, match="unknown speaking style"):
        neural.animate(speech, style="no-such-voice")
    named = neural.style_names()[0]
    assert neural.animate(speech, style=named, with_offsets=False).metadata["style"] == named
