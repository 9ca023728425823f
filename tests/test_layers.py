"""Motion layers (issue 12): eyes, brows, head, emotion on a real speech clip."""
from dataclasses import replace

import numpy as np
import pytest

from flame_lipsync.core.flame import SPEECH_ASSETS
from flame_lipsync.core.layers import LayerSettings, analyse, apply_layers
from flame_lipsync.core.performance import Performance
from flame_lipsync.core.rig import ALL_CONTROLS, CONTROL_LAYERS, CONTROLS

CLIP = SPEECH_ASSETS / "speech_22s.wav"


@pytest.fixture(scope="module")
def clip():
    if not CLIP.is_file():
        pytest.skip(f"shared speech not found at {CLIP}")
    from flame_lipsync.core import phonetic
    from flame_lipsync.core.audio import load_speech
    speech = load_speech(CLIP)
    mouth = phonetic.animate(speech, 30.0, with_offsets=False)
    return speech, mouth, analyse(speech, 30.0, mouth.frame_count)


def _cols(perf, layer):
    return perf.controls[:, perf.layer_columns(layer)]


@pytest.mark.parametrize("layer", ["eyes", "brows", "head", "emotion"])
def test_switching_a_layer_off_leaves_the_others_bit_identical(layer, clip):
    speech, mouth, prosody = clip
    on = apply_layers(mouth, speech, LayerSettings(seed=4), prosody)
    off = apply_layers(mouth, speech, replace(LayerSettings(seed=4), **{layer: False}), prosody)
    assert on.control_names == off.control_names == ALL_CONTROLS
    # Emotion scales the mouth and the brows by design; everything else must not move.
    untouched = {"eyes": ["mouth", "brows", "emotion"], "brows": ["mouth", "eyes", "emotion"],
                 "head": ["mouth", "eyes", "brows", "emotion"], "emotion": ["eyes"]}[layer]
    for other in untouched:
        np.testing.assert_array_equal(_cols(on, other), _cols(off, other), err_msg=other)
    if layer == "head":
        assert off.head_rotation is None and on.head_rotation is not None
    else:
        np.testing.assert_array_equal(on.head_rotation, off.head_rotation)
        if layer != "emotion":
            assert np.all(_cols(off, layer) == 0) and np.any(_cols(on, layer) > 0.1)
    if layer == "emotion":
        # Off: the engine's mouth exactly; on: arousal scales it.
        np.testing.assert_array_equal(_cols(off, "mouth"), mouth.controls)
        assert not np.array_equal(_cols(on, "mouth"), mouth.controls)


def test_each_layer_alone_and_same_seed_same_motion(clip):
    speech, mouth, prosody = clip
    alone = LayerSettings(eyes=False, brows=False, head=False, emotion=False, seed=9)
    none = apply_layers(mouth, speech, alone, prosody)
    np.testing.assert_array_equal(_cols(none, "mouth"), mouth.controls)
    assert np.all(none.controls[:, len(CONTROLS):] == 0) and none.head_rotation is None
    full = apply_layers(mouth, speech, LayerSettings(seed=9), prosody)
    for layer in ("eyes", "brows"):
        only = apply_layers(mouth, speech, replace(alone, **{layer: True}), prosody)
        # The emotion layer is off here, so the brows lack its gain; the eyes match exactly.
        if layer == "eyes":
            np.testing.assert_array_equal(_cols(only, "eyes"), _cols(full, "eyes"))
        assert np.any(_cols(only, layer) > 0.1)
    again = apply_layers(mouth, speech, LayerSettings(seed=9), prosody)
    np.testing.assert_array_equal(again.controls, full.controls)
    np.testing.assert_array_equal(again.head_rotation, full.head_rotation)
    other = apply_layers(mouth, speech, LayerSettings(seed=10), prosody)
    assert not np.array_equal(_cols(other, "eyes"), _cols(full, "eyes"))


def test_blinks_have_the_human_rate_and_shape(clip):
    speech, mouth, prosody = clip
    fps = mouth.fps
    rates, in_pauses = [], []
    for seed in range(6):
        perf = apply_layers(mouth, speech, LayerSettings(seed=seed), prosody)
        b = perf.control("blink_left")
        np.testing.assert_array_equal(b, perf.control("blink_right"))
        starts = np.flatnonzero((b[1:] > 0.02) & (b[:-1] <= 0.02)) + 1
        rates.append(len(starts) / speech.duration * 60)
        for s in starts:
            end = s + np.argmax(b[s:] <= 0.02) if np.any(b[s:] <= 0.02) else len(b)
            seg = b[s - 1:end + 1]
            assert seg.max() == pytest.approx(1.0), "every blink closes fully"
            closing = np.argmax(seg >= 0.999)          # frames from open to shut
            shut = int((seg >= 0.95).sum())
            assert 0.066 <= closing / fps <= 0.134, f"closing {closing / fps:.3f} s"
            assert shut / fps <= 0.300, f"closed {shut / fps:.3f} s"
            assert (len(seg) - 1 - closing - shut) / fps <= 0.25, "opening ~100-150 ms"
        quiet_frames = set()
        for a, z in prosody.pauses:
            quiet_frames.update(range(a, z + 6))
        in_pauses.append(np.mean([s in quiet_frames for s in starts]))
    assert 15 <= np.mean(rates) <= 35 and min(rates) >= 10, rates
    assert np.mean(in_pauses) >= 0.4, in_pauses


def test_brow_raises_mostly_on_pitch_rises(clip):
    speech, mouth, prosody = clip
    shares, counts = [], []
    for seed in range(4):
        perf = apply_layers(mouth, speech, LayerSettings(seed=seed), prosody)
        raises = perf.metadata["brow_raises"]
        counts.append(len(raises["frames"]))
        shares.append(np.mean(raises["on_pitch_rise"]))
        inner = perf.control("brow_raise_inner")
        for f in raises["frames"]:
            assert inner[f] > 0.1
    assert min(counts) >= 2 and 0.6 <= np.mean(shares) <= 0.9, (counts, shares)


def test_head_rotation_amplitude_is_the_stated_std(clip):
    speech, mouth, prosody = clip
    perf = apply_layers(mouth, speech, LayerSettings(seed=2), prosody)
    rot = perf.head_rotation
    assert rot.shape == (mouth.frame_count, 3) and rot.dtype == np.float32
    np.testing.assert_allclose(np.degrees(rot.std(0)), (2.3, 2.5, 2.2), rtol=1e-3)
    s = LayerSettings(seed=2, head_intensity=0.5)
    s.head_motion = replace(s.head_motion, std_deg=(4.0, 1.0, 1.0))
    half = apply_layers(mouth, speech, s, prosody).head_rotation
    np.testing.assert_allclose(np.degrees(half.std(0)), (2.0, 0.5, 0.5), rtol=1e-3)
    # Motion lives below ~2 Hz (the mouth is 3-4 Hz): little energy above 3 Hz.
    spectrum = np.abs(np.fft.rfft(rot[:, 0] - rot[:, 0].mean())) ** 2
    freqs = np.fft.rfftfreq(len(rot), 1 / mouth.fps)
    assert spectrum[freqs > 3].sum() < 0.05 * spectrum.sum()


@pytest.mark.parametrize("preset", ["happy", "sad", "angry", "surprised"])
def test_emotion_presets_pose_the_face_and_keep_lips_sealed(preset, clip):
    speech, mouth, prosody = clip
    neutral = apply_layers(mouth, speech, LayerSettings(seed=1), prosody)
    posed = apply_layers(mouth, speech, LayerSettings(seed=1, emotion_preset=preset, emotion_strength=1.0), prosody)
    diff = np.abs(posed.controls - neutral.controls).mean(0)
    assert diff.max() > 0.05
    sealed = mouth.control("lips_close") >= 0.999
    assert np.all(posed.control("lips_close")[sealed] >= 0.999)
    # Lids never cross: blink + squint stay within the opening.
    assert np.all(posed.control("blink_left") + 0.45 * posed.control("squint") <= 1.0 + 1e-6)
    with pytest.raises(ValueError, match="unknown emotion preset"):
        apply_layers(mouth, speech, LayerSettings(emotion_preset="bored"), prosody)


def test_performance_stays_backward_compatible_and_offsets_follow_all_controls(clip):
    p = Performance(fps=30.0)
    assert p.head_rotation is None and p.frame_count == 0
    speech, mouth, prosody = clip
    from flame_lipsync.core.rig import load_rig
    with_offsets = mouth.with_(offsets=load_rig().offsets(mouth.controls))
    out = apply_layers(with_offsets, speech, LayerSettings(), prosody)
    np.testing.assert_allclose(out.offsets[::50], load_rig().offsets_named(out.controls, ALL_CONTROLS)[::50])
    assert sorted(c for layer in CONTROL_LAYERS for c in out.control_names
                  if out.layer_of(c) == layer) == sorted(ALL_CONTROLS)


def test_prosody_in_blocks_hears_what_it_hears_in_one_piece(clip, monkeypatch):
    """F0 is found block by block (memory flat on an hour of speech): block edges, the
    zero padding at both ends of the clip included, change nothing."""
    from flame_lipsync.core.layers import prosody
    speech, mouth, whole = clip
    monkeypatch.setattr(prosody, "F0_BLOCK", 37)  # blocks start at odd places, last one short
    blocks = prosody.analyse(speech, 30.0, mouth.frame_count)
    monkeypatch.setattr(prosody, "F0_BLOCK", 10 ** 9)
    one = prosody.analyse(speech, 30.0, mouth.frame_count)
    for field in ("f0", "semitones", "peaks", "accents", "stress", "rise", "quiet"):
        np.testing.assert_array_equal(getattr(blocks, field), getattr(one, field))
        np.testing.assert_array_equal(getattr(whole, field), getattr(one, field))
    assert blocks.pauses == one.pauses and len(one.accents) > 0


@pytest.mark.parametrize("fps", [24.0, 29.97, 30.0, 60.0])
def test_event_bumps_added_only_where_they_are_nonzero_sum_like_everywhere(fps):
    from flame_lipsync.core.layers.common import events_curve
    rng = np.random.default_rng(1)
    n = 3000
    frames = np.sort(rng.uniform(-30, n + 30, 200))  # some past either end of the clip
    amplitudes = rng.normal(size=200)
    t = np.arange(n) / fps
    for attack, release in ((0.1, 0.3), (0.02, 0.04), (0.6, 1.5)):
        everywhere = np.zeros(n)
        for f, a in zip(frames, amplitudes):
            x = np.clip((t - (f / fps - attack)) / attack, 0, 1)
            y = np.clip((t - f / fps) / release, 0, 1)
            everywhere += a * np.where(t <= f / fps, x * x * (3 - 2 * x), 1 - y * y * (3 - 2 * y))
        np.testing.assert_array_equal(events_curve(frames, amplitudes, fps, n, attack, release), everywhere)
