"""The synthetic corpus: a tiny build (3 sentences x 2 espeak-ng voices) through the
real command line, its manifest, splits and targets, and the augmentation
functions on their own (numpy only, fast)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flame_lipsync.core.phonetic import frame_count
from flame_lipsync.core.rig import CONTROLS
from flame_lipsync.training import augment
from flame_lipsync.training.corpus import iter_utterances, load_manifest, select, vertex_offsets

ROOT = Path(__file__).resolve().parent.parent
RATE, FPS = 16000, 30.0
CLOSE = CONTROLS.index("lips_close")
SENTENCES = ["Bob bought a big blue boat.", "My mother made plum jam.",
             "Please pass the pepper, Mabel."]
TRAIN_VOICE, VAL_VOICE = "espeak:en-us+m3", "espeak:en+f1"


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed, so no corpus can be synthesized: "
                    "`make corpus` installs it (apt-get install espeak-ng)")
    tmp = tmp_path_factory.mktemp("corpus")
    (tmp / "sentences.txt").write_text("# test sentences\n" + "\n".join(SENTENCES) + "\n")
    out = tmp / "corpus"
    cmd = [sys.executable, "-m", "flame_lipsync.training.build_corpus", "--out", str(out),
           "--sentence-file", str(tmp / "sentences.txt"), "--sentences", "3", "--seed", "1",
           "--voices", TRAIN_VOICE, "--val-voices", VAL_VOICE, "--test-voices", "",
           "--per-sentence", "1", "--heldout-sentences", "3", "--augmented", "1",
           "--workers", "1"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_manifest_and_splits(tiny_corpus):
    m = load_manifest(tiny_corpus)
    assert m["splits"] == {"train": [TRAIN_VOICE], "val": [VAL_VOICE], "test": []}
    assert m["split_by"] == "voice" and m["seed"] == 1
    assert "--seed 1" in m["build_command"]
    assert m["fps"] == FPS and m["rate"] == RATE and m["controls"] == list(CONTROLS)
    total = m["total"]
    assert total["clean"] + total["rejected"] == 6  # 3 sentences x (1 train + 1 val voice)
    assert total["clean"] >= 4, m["rejected"]
    assert total["augmented"] == total["clean"] and total["utterances"] == 2 * total["clean"]
    assert total["hours"] > 0 and total["bytes"] > 0
    for u in m["utterances"]:
        assert (tiny_corpus / u["file"]).is_file()
        assert u["split"] == {TRAIN_VOICE: "train", VAL_VOICE: "val"}[u["voice"]]
    # A held-out voice never appears in train, and each copy keeps its source's split.
    ids = {u["id"]: u for u in m["utterances"]}
    for u in select(m, augmented=True):
        assert ids[u["source"]]["split"] == u["split"] and ids[u["source"]]["voice"] == u["voice"]
    assert {u["voice"] for u in select(m, "train")} == {TRAIN_VOICE}
    with pytest.raises(ValueError, match="unknown split"):
        select(m, "dev")


def test_shapes_fps_and_loading(tiny_corpus):
    m = load_manifest(tiny_corpus)
    seen = 0
    for utt in iter_utterances(tiny_corpus, None):
        seen += 1
        assert utt.audio.dtype == np.float32 and utt.audio.ndim == 1 and utt.rate == RATE
        assert np.max(np.abs(utt.audio)) <= 1.0
        assert utt.controls.dtype == np.float32 and utt.controls.shape[1] == len(CONTROLS)
        assert utt.fps == FPS
        assert len(utt.controls) == frame_count(utt.duration, FPS)
        assert np.all((utt.controls >= 0) & (utt.controls <= 1))
        assert utt.phones[0][1] == 0 and abs(utt.phones[-1][2] - utt.duration) < 1e-3
        assert utt.text in SENTENCES
    assert seen == m["total"]["utterances"]
    clean = list(iter_utterances(tiny_corpus, "train", augmented=False))
    assert clean and all(not u.augmented for u in clean)
    offsets = vertex_offsets(clean[0].controls[:3])
    assert offsets.shape == (3, 5023, 3)


def test_bilabials_close_the_lips(tiny_corpus):
    """Every sentence has M/P/B; the teacher targets seal the lips on each."""
    checked = 0
    for utt in iter_utterances(tiny_corpus, None, augmented=False):
        bilabials = [(a, b) for label, a, b in utt.phones if label in ("M", "P", "B")]
        assert bilabials, utt.text
        for a, b in bilabials:
            frames = np.arange(int(np.floor(a * FPS)), int(np.ceil(b * FPS)) + 1)
            frames = frames[frames < len(utt.controls)]
            assert utt.controls[frames, CLOSE].max() >= 0.95, (utt.id, a, b)
            checked += 1
    assert checked >= 10


def test_augmented_copies_keep_targets_in_step(tiny_corpus):
    m = load_manifest(tiny_corpus)
    root = Path(m["_root"])
    for u in select(m, augmented=True):
        assert u["augmentation"]
        from flame_lipsync.training.corpus import load_utterance
        copy, source = load_utterance(root / u["file"]), load_utterance(root / f"utt/{u['source']}.npz")
        if u["augmentation"]["targets"].startswith("copied"):
            np.testing.assert_array_equal(copy.controls, source.controls)
            assert len(copy.audio) == len(source.audio)


def test_command_prints_its_packages():
    r = subprocess.run([sys.executable, "-m", "flame_lipsync.training.build_corpus", "--apt-packages"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "espeak-ng" in r.stdout.split()


def test_sentences_cover_arpabet_in_dictionary():
    from flame_lipsync.core.phones import ARPABET, normalise_transcript, _dictionary
    from flame_lipsync.training.build_corpus import generate_sentences, read_sentences
    import pocketsphinx
    written = read_sentences()
    assert len(written) >= 200 and len(set(written)) == len(written)
    known = _dictionary()
    pron = {}
    with open(pocketsphinx.get_model_path("en-us/cmudict-en-us.dict"), encoding="utf-8") as f:
        for line in f:
            word, *phones = line.split()
            pron.setdefault(word, phones)
    sentences = generate_sentences(400, seed=0)
    assert len(sentences) == 400 and len(set(sentences)) == 400
    assert sentences[:len(written)] == written
    counts = {}
    for s in sentences:
        words = normalise_transcript(s)
        assert all(w in known for w in words), s
        for w in words:
            for p in pron[w]:
                counts[p.rstrip("012")] = counts.get(p.rstrip("012"), 0) + 1
    assert set(ARPABET) <= set(counts), set(ARPABET) - set(counts)
    assert min(counts[p] for p in ARPABET) >= 15
    assert sum(counts[p] for p in ("M", "P", "B")) > 0.1 * sum(counts.values())
    assert sum(s.endswith("?") for s in sentences) >= 40
    assert generate_sentences(400, seed=0) == sentences  # seeded


# ----------------------------------------------------------------- augmentation

def _speechlike(seconds=1.5, seed=0):
    """Amplitude-modulated harmonic tone with pauses: enough like speech for level tests."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None)
    rng = np.random.default_rng(seed)
    return (0.3 * x * envelope + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
def test_noise_at_requested_snr(kind, snr):
    rng = np.random.default_rng(3)
    clean = _speechlike()
    if kind == "white":
        noise = augment.white_noise(clean.size, rng)
    elif kind == "pink":
        noise = augment.pink_noise(clean.size, rng)
    else:
        noise = augment.babble_noise(clean.size, [_speechlike(1.1, s) for s in range(3)], rng, 3)
    noisy = augment.add_noise(clean, noise, snr)
    assert noisy.shape == clean.shape and noisy.dtype == np.float32
    assert abs(augment.snr_db(clean, noisy - clean) - snr) < 0.5


def test_pink_noise_slopes_down():
    x = augment.pink_noise(1 << 16, np.random.default_rng(0))
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / RATE)
    low = spectrum[(f > 100) & (f < 200)].mean()
    high = spectrum[(f > 3200) & (f < 6400)].mean()
    # 1/f: the mean density in 100-200 Hz is 32x that in 3.2-6.4 kHz (15 dB).
    assert 10 * np.log10(low / high) == pytest.approx(15.05, abs=1.5)


def test_reverb_keeps_length_and_level():
    rng = np.random.default_rng(0)
    x = _speechlike()
    ir = augment.exponential_ir(RATE, 0.5, rng, drr_db=0.0)
    assert ir[0] == 1.0 and ir.size == int(round(0.6 * RATE))
    y = augment.reverberate(x, ir)
    assert y.shape == x.shape and y.dtype == np.float32
    assert augment.power(y) == pytest.approx(augment.power(x), rel=1e-3)
    assert not np.allclose(x, y)
    # The decay: energy 60 dB down after rt60.
    t60 = int(0.5 * RATE)
    early = np.mean(ir[100:400].astype(float) ** 2)
    late = np.mean(ir[t60 - 150:t60 + 150].astype(float) ** 2)
    assert 10 * np.log10(early / late) == pytest.approx(60, abs=6)


def test_gain_limits_the_peak():
    x = _speechlike()
    assert np.max(np.abs(augment.change_gain(x, -20))) == pytest.approx(0.1 * np.max(np.abs(x)), rel=1e-5)
    assert np.max(np.abs(augment.change_gain(x, 40))) == pytest.approx(1.0, rel=1e-6)


def test_silence_padding_pads_targets_with_rest():
    rng = np.random.default_rng(0)
    x = _speechlike(1.0)
    controls = rng.uniform(0, 1, (frame_count(1.0, FPS), len(CONTROLS))).astype(np.float32)
    zeros = np.zeros(len(CONTROLS), np.float32)
    audio, padded = augment.pad_silence(x, controls, RATE, FPS, 0.5, 0.3, rest=zeros)
    assert audio.size == x.size + int(0.8 * RATE)
    assert np.all(audio[:int(0.5 * RATE)] == 0) and np.all(audio[-int(0.3 * RATE):] == 0)
    np.testing.assert_array_equal(audio[int(0.5 * RATE):int(0.5 * RATE) + x.size], x)
    assert len(padded) == frame_count(audio.size / RATE, FPS)
    # 0.5 s = 15 frames exactly: the original frames sit 15 later, untouched.
    np.testing.assert_allclose(padded[15:15 + len(controls)], controls, atol=1e-6)
    settle = int(np.ceil(augment.LIPS_SETTLE * FPS))
    assert np.all(padded[:15 - settle] == 0) and np.all(padded[15 + len(controls) + settle:] == 0)
    # Default: the teacher's rest pose (lips together at REST_CLOSE), not all zeros.
    _, rest = augment.pad_silence(x, controls, RATE, FPS, 0.5, 0.3)
    np.testing.assert_allclose(rest[0], augment.REST_POSE)
    assert rest[0, CLOSE] > 0 and np.all(np.delete(rest[0], CLOSE) == 0)


def test_speed_change_warps_targets_consistently():
    """A click at 0.9 s and a closure (lips_close = 1) around it: after the speed
    change both sit at 0.9 / factor s."""
    n = int(1.5 * RATE)
    x = np.zeros(n, np.float32)
    x[int(0.9 * RATE)] = 1.0
    controls = np.zeros((frame_count(1.5, FPS), len(CONTROLS)), np.float32)
    controls[25:30, CLOSE] = 1.0  # frames 25..29: 0.833-0.967 s
    for factor in (0.85, 1.2):
        for fn in (augment.speed, augment.time_stretch):
            y = fn(x, factor)
            assert y.size == int(round(n / factor))
            if fn is augment.speed:  # the click (band-limited) moves with the audio
                assert abs(np.argmax(np.abs(y)) / RATE - 0.9 / factor) < 2 / RATE
            n_frames = frame_count(y.size / RATE, FPS)
            warped = augment.warp_controls_for_speed(controls, FPS, factor, n_frames)
            assert len(warped) == n_frames
            closed = np.flatnonzero(warped[:, CLOSE] > 0.99) / FPS
            assert closed.min() >= 25 / FPS / factor - 1e-6
            assert closed.max() <= 29 / FPS / factor + 1e-6
            assert abs(closed.mean() - 27 / FPS / factor) < 1.5 / FPS


def test_speed_recomputed_targets_agree_with_time_warp(tiny_corpus):
    """The builder recomputes targets from time-scaled phones; on average that is
    the time warp (the rules' fixed durations make small local differences)."""
    from flame_lipsync.training.build_corpus import recompute_targets
    utt = next(iter_utterances(tiny_corpus, "train", augmented=False))
    for factor in (0.9, 1.1):
        y = augment.speed(utt.audio, factor)
        n = frame_count(y.size / RATE, FPS)
        recomputed = recompute_targets(augment.scale_phones(utt.phones, factor), y, n)
        warped = augment.warp_controls_for_speed(utt.controls, FPS, factor, n)
        assert recomputed.shape == warped.shape
        assert np.mean(np.abs(recomputed - warped)) < 0.03
        for label, a, b in augment.scale_phones(utt.phones, factor):
            if label in ("M", "P", "B"):
                mid = int(round(0.5 * (a + b) * FPS))
                assert recomputed[mid, CLOSE] >= 0.95 and warped[mid, CLOSE] >= 0.7


def test_pitch_and_formant_shifts_keep_length_and_timing():
    x = _speechlike()
    for y in (augment.pitch_shift(x, 3.0, RATE), augment.pitch_shift(x, -2.5, RATE),
              augment.formant_shift(x, 1.12, RATE), augment.formant_shift(x, 0.9, RATE)):
        assert y.shape == x.shape and y.dtype == np.float32 and np.all(np.isfinite(y))
        # The syllable envelope stays where it was (within 10 ms).
        hop = 160
        ex = np.sqrt(np.convolve(x.astype(float) ** 2, np.ones(hop), "same")[::hop])
        ey = np.sqrt(np.convolve(y.astype(float) ** 2, np.ones(hop), "same")[::hop])
        lags = range(-5, 6)
        best = max(lags, key=lambda k: np.dot(np.roll(ey, k), ex))
        assert abs(best) <= 1
    # Pitch: the 140 Hz fundamental moves by the ratio.
    y = augment.pitch_shift(x, 12.0, RATE)
    f = np.fft.rfftfreq(x.size, 1 / RATE)
    peak = f[np.argmax(np.abs(np.fft.rfft(y)) * (f < 400))]
    assert peak == pytest.approx(280, abs=6)


def test_augmentation_is_seeded():
    from flame_lipsync.training.build_corpus import choose_augmentation
    a = [choose_augmentation(np.random.default_rng([5, k])) for k in range(20)]
    b = [choose_augmentation(np.random.default_rng([5, k])) for k in range(20)]
    assert a == b and all(a)
    n1 = augment.pink_noise(1000, np.random.default_rng(1))
    np.testing.assert_array_equal(n1, augment.pink_noise(1000, np.random.default_rng(1)))


def test_missing_corpus_says_how_to_build(tmp_path):
    with pytest.raises(FileNotFoundError, match="make corpus"):
        load_manifest(tmp_path / "nothing")
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 99, "utterances": []}))
    with pytest.raises(ValueError, match="rebuild"):
        load_manifest(tmp_path)
