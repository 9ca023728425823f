"""The shipped neural engines (neural: mel + heard phones; neural_fast: mel): registered,
safe to load, numpy == torch, rests in silence, seals where the network hears M/P/B."""
import json

import numpy as np
import pytest

from flame_lipsync.core import motion
from flame_lipsync.core.audio import load_speech, speech_from_array
from flame_lipsync.pipeline.engines import ENGINES, run_engine
from flame_lipsync.core.metrics import lip_gap
from flame_lipsync.core.rig import CONTROLS
from flame_lipsync.models import engine as neural

pytestmark = pytest.mark.skipif(not neural.available(), reason=f"no shipped weights at {neural.WEIGHTS}")


VARIANTS = pytest.mark.parametrize("variant", neural.names())


@VARIANTS
def test_weights_are_small_and_load_without_pickle(variant):
    path = neural.weights_path(variant)
    assert path.stat().st_size < 20 * 1024 * 1024
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
    assert meta and "config" in json.dumps(meta)
    assert variant in ENGINES
    # calibrated on held-out voices (training/calibrate_engine.py)
    assert meta["seal"]["evidence"] in neural.SEAL_EVIDENCE and "chosen_on" in meta["seal"]
    assert meta["articulation"]["gain"] > 1.0  # the network shrinks vowels; the gain restores them


def test_both_front_ends_ship():
    assert set(neural.names()) == {"neural", "neural_fast"}
    assert neural._model("numpy").cfg.front_end == "mel+phones"
    assert neural._model("numpy", None, "neural_fast").cfg.front_end == "mel"


@VARIANTS
def test_numpy_and_torch_give_the_same_vertices(speech_dir, variant):
    pytest.importorskip("torch")
    speech = load_speech(speech_dir / "english.wav")
    a = neural.animate(speech, fps=30, backend="numpy", variant=variant)
    b = neural.animate(speech, fps=30, backend="torch", variant=variant)
    assert a.metadata["backend"] != b.metadata["backend"]
    assert np.abs(a.offsets - b.offsets).max() <= 1e-5


@VARIANTS
def test_real_speech_moves_the_mouth_and_silence_rests(speech_dir, flame_dir, variant):
    from flame_lipsync.core.mesh_io import load_head
    template, _ = load_head(flame_dir / "flame_template.ply")
    speech = load_speech(speech_dir / "librivox" / "sense_and_sensibility_01_austen_64kb-0880.wav")
    silence = np.zeros(speech.rate, np.float32)   # 1 s of digital silence each side
    padded = speech_from_array(np.concatenate([silence, speech.samples, silence]), speech.rate,
                               speech.rate, source="padded")
    perf = run_engine(variant, padded, 30.0, transcript="ignored")
    assert perf.metadata["transcript_ignored"]
    assert perf.controls.shape == (perf.frame_count, len(CONTROLS)) and np.isfinite(perf.controls).all()
    gap = lip_gap(template[None] + perf.offsets)
    speaking = gap[35:-35]
    assert np.ptp(speaking) > 0.004                      # opens and closes while speaking
    quiet = np.concatenate([gap[3:27], gap[-27:-3]])     # inside the silent padding
    assert np.mean(quiet <= 0.003) >= 0.9


@VARIANTS
def test_sealed_closures_survive_smoothing_and_intensity(speech_dir, variant):
    speech = load_speech(speech_dir / "librivox" / "sense_and_sensibility_01_austen_64kb-0920.wav")
    perf = neural.animate(speech, fps=30, with_offsets=False, variant=variant)
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


def test_seal_rule_comes_from_the_weights_and_evidence_is_used():
    model = neural._model("numpy")
    rule = neural.seal_rule(model)
    assert rule["evidence"] in neural.SEAL_EVIDENCE and 0 < rule["threshold"] < 1
    # evidence above the threshold only at frames 10-12 and 20: two closures, timed there
    controls = np.zeros((30, len(CONTROLS)), np.float32)
    evidence = np.zeros(30)
    evidence[10:13], evidence[20] = 0.9, 0.6
    spans = motion.predicted_closures(controls, 30.0, 0.5, evidence)
    assert [(round(p.start * 30), round(p.end * 30)) for p in spans] == [(10, 12), (20, 20)]
    assert motion.predicted_closures(controls, 30.0, 0.5) == []  # lips_close is all zero
    # hysteresis: a span counts only if it peaks at >= `peak`
    peaked = motion.predicted_closures(controls, 30.0, 0.5, evidence, peak=0.8)
    assert [(round(p.start * 30), round(p.end * 30)) for p in peaked] == [(10, 12)]


def test_calibration_picks_best_closure_f1_that_keeps_vowels_open():
    from flame_lipsync.training.calibrate_engine import choose
    counts = {  # closures hit/total, open vowels open/total, seals at an M/P/B / all seals
        ("lips_close", 0.3): np.array([98, 100, 90, 100, 99, 100]),        # vowels 0.90: refused
        ("lips_close", 0.5): np.array([90, 100, 97, 100, 90, 100]),        # F1 0.90
        ("bilabial_posterior", 0.2): np.array([99, 100, 99, 100, 50, 100]),  # recall alone would win
        ("bilabial_posterior", 0.4): np.array([94, 100, 96, 100, 94, 100]),  # F1 0.94
        ("bilabial_posterior", 0.6): np.array([94, 100, 99, 100, 94, 100]),  # same F1, higher t
    }
    rule = choose(counts)
    assert (rule["evidence"], rule["threshold"]) == ("bilabial_posterior", 0.6)
    assert choose(counts, "lips_close")["threshold"] == 0.5
    assert choose({("lips_close", 0.3): np.array([1, 1, 0, 10, 0, 1])}) is None


def test_network_closes_as_many_bilabials_as_the_phone_loop_on_real_speech(speech_dir, flame_dir):
    """On the five librivox clips, no transcript. Before the viseme timing was fitted to
    real faces (closures now hold 0.12 s, as tracked lips do) the network closed more
    M/P/B than the phone loop; now both close 27 of 29, so the claim is 'at least as many'.
    (The default engine is the phonetic one: it measures best on real faces.)"""
    from flame_lipsync.core.flame import LOWER_LIP_EDGE, UPPER_LIP_EDGE
    from flame_lipsync.core.mesh_io import load_head
    from flame_lipsync.core.metrics import _bilabial_counts, _open_vowel_counts, closure_events, load_reference_phones, sync_lag
    template, _ = load_head(flame_dir / "flame_template.ply")
    rest = float(np.linalg.norm(template[UPPER_LIP_EDGE] - template[LOWER_LIP_EDGE]))
    totals = {}
    for engine in ("phonetic", "neural"):
        counts, lags = np.zeros(6, int), []
        for wav in sorted((speech_dir / "librivox").glob("*.wav")):
            reference = load_reference_phones(wav.with_suffix(".phone.json"))
            perf = run_engine(engine, load_speech(wav), 30.0)
            gap = lip_gap(template[None] + perf.offsets)
            counts += [*_bilabial_counts(gap, reference, 30.0, 0.003, 0.040),
                       *_open_vowel_counts(gap, reference, 30.0, rest, 0.004, 0.060),
                       *closure_events(gap, reference, 30.0)]
            lags.append(abs(sync_lag(gap, reference, 30.0)[0]))
        totals[engine] = (counts, max(lags))
        if engine == "neural":
            assert "recognition" in perf.metadata["timings"]  # the phone front end's recogniser
    (phonetic, phonetic_lag), (network, network_lag) = totals["phonetic"], totals["neural"]
    assert network[0] / network[1] >= phonetic[0] / phonetic[1] >= 0.9  # M/P/B closed
    assert network[2] / network[3] >= phonetic[2] / phonetic[3]  # open vowels: at least as many
    assert network_lag <= phonetic_lag <= 1
    assert network[4] <= 2 * phonetic[4] + 2  # not by sealing everywhere: few closures away from M/P/B


def test_articulation_scales_shapes_not_contact_and_pauses_come_from_the_phone_head():
    from flame_lipsync.models.phone_features import PHONE_INDEX, PHONES
    controls = np.full((40, len(CONTROLS)), 0.3, np.float32)
    shaped = neural.articulate(controls, 30.0, {"smooth": 0.0, "gain": 1.5})
    close = CONTROLS.index("lips_close")
    assert np.allclose(shaped[:, close], 0.3)                   # contact is not an amplitude
    assert np.allclose(np.delete(shaped, close, 1), 0.45)
    assert np.allclose(controls, 0.3)                           # the input is left alone
    phones = np.zeros((40, len(PHONES)), np.float32)
    phones[:, PHONE_INDEX["AA"]] = 1.0
    phones[10:25] = 0.0
    phones[10:25, PHONE_INDEX["SIL"]] = 1.0                     # 0.5 s of silence mid-clip
    phones[30, :] = 0.0
    phones[30, PHONE_INDEX["SIL"]] = 0.6                        # one doubtful frame: not a pause
    phones[30, PHONE_INDEX["AA"]] = 0.4
    pauses = [(p.label, round(p.start * 30), round(p.end * 30)) for p in neural.heard_pauses(phones, 30.0)]
    assert pauses == [("speech", 0, 10), ("SIL", 10, 25), ("speech", 25, 40)]
