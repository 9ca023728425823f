"""Audio without soundfile/soxr gives the numbers of the soundfile + soxr path (which is
also librosa's: `librosa.load(sr=...)` reads with soundfile and resamples with soxr HQ).

Tolerances, and why:
- WAV/AIFF read in numpy, and WAV/FLAC/AIFF read by Blender's `aud` (16-bit rescaled):
  bit-identical. Nothing less would do: pocketsphinx's phone loop answers a 1-LSB
  change of the input (aud's raw 1/32767 scaling) with other phones on some clips.
- OGG/MP3 through `aud` (ffmpeg) vs soundfile (libvorbis/mpg123): float decoders, 1e-5
  (-100 dBFS, a third of a 16-bit step; measured <= 6e-7).
- numpy resampler vs soxr HQ: the filters differ only in their transition band (91-100%
  of the output Nyquist, 7.3-8 kHz at 16 kHz, above the 6.8 kHz top of pocketsphinx's
  en-us filterbank). Bounds on speech: RMS error <= -60 dB of the signal, <= -80 dB in
  0-6.8 kHz, peak error <= 3e-4 (measured -67..-112, -91..-135 dB, 1.6e-4).
"""
import importlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from flame_lipsync.core import audio, audio_numpy
from flame_lipsync.core.audio import AudioError, load_speech
from flame_lipsync.core.audio_numpy import DecodeError, read_wav_aiff, resample

soundfile = pytest.importorskip("soundfile")

AUDIO_SUFFIXES = {".wav", ".flac", ".aiff", ".aif", ".ogg", ".mp3"}
WAV_AIFF = {".wav", ".aiff", ".aif"}

# (container, subtype, suffix) written by soundfile from a shared clip.
PCM_VARIANTS = [("WAV", "PCM_U8", ".u8.wav"), ("WAV", "PCM_16", ".s16.wav"), ("WAV", "PCM_24", ".s24.wav"),
                ("WAV", "PCM_32", ".s32.wav"), ("WAV", "FLOAT", ".f32.wav"), ("WAV", "DOUBLE", ".f64.wav"),
                ("WAVEX", "PCM_16", ".ex16.wav"), ("WAVEX", "FLOAT", ".exf32.wav"),
                ("AIFF", "PCM_S8", ".s8.aiff"), ("AIFF", "PCM_16", ".s16.aiff"), ("AIFF", "PCM_24", ".s24.aiff"),
                ("AIFF", "PCM_32", ".s32.aiff"), ("AIFF", "FLOAT", ".f32.aiff"), ("AIFF", "DOUBLE", ".f64.aiff")]


def shared(speech_dir, suffixes=AUDIO_SUFFIXES):
    return sorted(p for p in speech_dir.rglob("*") if p.suffix.lower() in suffixes)


def variants(speech_dir, tmp_path, table):
    data, rate = soundfile.read(str(speech_dir / "jfk.flac"), dtype="float32")  # stereo, 24-bit
    out = []
    for fmt, subtype, suffix in table:
        path = tmp_path / f"jfk{suffix}"
        soundfile.write(str(path), data, rate, format=fmt, subtype=subtype)
        out.append(path)
    return out


def db(error, reference):
    return 20 * math.log10(np.sqrt(np.mean(np.square(error, dtype=np.float64))) /
                           np.sqrt(np.mean(np.square(reference, dtype=np.float64))))


def in_band_db(error, reference, rate, top=6800.0):
    freqs = np.fft.rfftfreq(len(error), 1 / rate) <= top
    e = np.abs(np.fft.rfft(error.astype(np.float64)))[freqs] ** 2
    r = np.abs(np.fft.rfft(reference.astype(np.float64)))[freqs] ** 2
    return 10 * math.log10(e.sum() / r.sum())


@pytest.fixture
def without(monkeypatch):
    """Make core.audio behave as in a Python without the named optional modules."""
    def block(*names):
        def optional(module):
            return None if module in names else importlib.import_module(module)
        monkeypatch.setattr(audio, "_optional", optional)
    return block


# --- decoding -------------------------------------------------------------------

def test_wav_aiff_bit_identical_to_soundfile(speech_dir, tmp_path):
    files = shared(speech_dir, WAV_AIFF) + variants(speech_dir, tmp_path, PCM_VARIANTS)
    assert len(files) > len(PCM_VARIANTS) + 5
    for path in files:
        expected, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        data, file_rate = read_wav_aiff(path)
        assert file_rate == rate and data.dtype == np.float32, path
        np.testing.assert_array_equal(data, expected, err_msg=str(path))


def test_cut_data_chunk_reads_what_is_there_like_soundfile(speech_dir, tmp_path):
    for name in ("english.wav", "french.aiff"):
        raw = (speech_dir / name).read_bytes()
        cut = tmp_path / f"cut_{name}"
        cut.write_bytes(raw[:len(raw) // 2 + 1])
        expected, _ = soundfile.read(str(cut), dtype="float32", always_2d=True)
        np.testing.assert_array_equal(read_wav_aiff(cut)[0], expected)


def test_what_numpy_does_not_read(speech_dir, tmp_path):
    for path in (speech_dir / "jfk.flac", speech_dir / "chinese.flac"):
        with pytest.raises(DecodeError) as err:
            read_wav_aiff(path)
        assert not err.value.recognised  # not WAV/AIFF: another decoder may read it
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n" * 20)
    with pytest.raises(DecodeError) as err:
        read_wav_aiff(text)
    assert not err.value.recognised
    header = tmp_path / "cut_header.wav"
    header.write_bytes((speech_dir / "english.wav").read_bytes()[:30])
    with pytest.raises(DecodeError, match="incomplete") as err:
        read_wav_aiff(header)
    assert err.value.recognised
    ulaw, = variants(speech_dir, tmp_path, [("WAV", "ULAW", ".ulaw.wav")])
    with pytest.raises(DecodeError, match="compressed"):
        read_wav_aiff(ulaw)


# --- resampling -----------------------------------------------------------------

def test_resampler_matches_soxr_on_speech(speech_dir):
    soxr = pytest.importorskip("soxr")
    checked = 0
    for path in shared(speech_dir, {".wav", ".flac", ".aiff"}):
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        if rate == 16000:
            continue
        mono = data.mean(axis=1)
        expected = soxr.resample(mono, rate, 16000, quality="HQ")
        got = resample(mono, rate, 16000)
        assert got.dtype == np.float32 and len(got) == len(expected), path
        error = got - expected
        assert db(error, expected) <= -60, path
        assert in_band_db(error, expected, 16000) <= -80, path
        assert np.abs(error).max() <= 3e-4, path
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("from_rate, to_rate", [(44100, 16000), (48000, 16000), (16000, 48000),
                                                (48000, 22050), (22050, 16000), (8000, 16000),
                                                (11025, 16000), (44100, 16001), (96000, 16000)])
def test_resampler_lengths_and_white_noise(from_rate, to_rate):
    """Full-band noise is the worst case (all its energy near the band edge counts)."""
    soxr = pytest.importorskip("soxr")
    x = np.random.default_rng(from_rate + to_rate).standard_normal(from_rate * 2 + 7).astype(np.float32) * 0.1
    expected = soxr.resample(x, from_rate, to_rate, quality="HQ")
    got = resample(x, from_rate, to_rate)
    assert len(got) == len(expected) == audio_numpy.output_length(len(x), from_rate, to_rate)
    assert db(got - expected, expected) <= -50


def test_resampler_edge_cases():
    assert resample(np.zeros(0, np.float32), 44100, 16000).size == 0
    assert resample(np.ones(1, np.float32), 44100, 16000).size == 0  # round(0.36)
    x = np.sin(np.arange(1000) / 10).astype(np.float32)
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)
    dc = resample(np.full(44100, 0.5, np.float32), 44100, 16000)
    np.testing.assert_allclose(dc[200:-200], 0.5, atol=1e-5)  # unit gain away from the ends
    with pytest.raises(ValueError):
        resample(x, 44100.5, 16000)
    with pytest.raises(ValueError):
        resample(np.zeros((10, 2)), 44100, 16000)


# --- core.audio without soundfile / soxr ----------------------------------------

def test_load_speech_without_soundfile_is_identical(speech_dir, without):
    files = shared(speech_dir, WAV_AIFF)
    reference = {p: load_speech(p) for p in files}
    without("soundfile", "aud")
    for path in files:
        speech = load_speech(path)
        np.testing.assert_array_equal(speech.samples, reference[path].samples, err_msg=str(path))


def test_load_speech_without_soundfile_and_soxr(speech_dir, without):
    files = [p for p in shared(speech_dir, WAV_AIFF) if soundfile.info(str(p)).samplerate != 16000]
    reference = {p: load_speech(p) for p in files}
    without("soundfile", "soxr", "aud")
    assert files
    for path in files:
        got, expected = load_speech(path).samples, reference[path].samples
        assert len(got) == len(expected)
        assert db(got - expected, expected) <= -60 and np.abs(got - expected).max() <= 3e-4, path


def test_messages_without_soundfile_or_aud(speech_dir, tmp_path, without):
    without("soundfile", "aud")
    with pytest.raises(AudioError, match="only WAV and AIFF are read outside Blender"):
        load_speech(speech_dir / "jfk.flac")
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n" * 20)
    with pytest.raises(AudioError, match="notes.wav"):
        load_speech(text)
    header = tmp_path / "cut_header.wav"
    header.write_bytes((speech_dir / "english.wav").read_bytes()[:30])
    with pytest.raises(AudioError, match="could not be decoded .WAV header is incomplete"):
        load_speech(header)
    silent = tmp_path / "silent.wav"
    soundfile.write(str(silent), np.zeros(16000, np.float32), 16000)
    with pytest.raises(AudioError, match="no speech signal"):
        load_speech(silent)


def test_librosa_path_is_the_soundfile_soxr_path(speech_dir, without):
    """The issue's "aud decode vs the librosa path": librosa.load == soundfile + soxr here,
    and the Blender path (numpy WAV reader + soxr) equals both."""
    librosa = pytest.importorskip("librosa")
    pytest.importorskip("soxr")
    path = speech_dir / "english.wav"  # 44.1 kHz
    expected, _ = librosa.load(str(path), sr=16000, mono=True)
    without("soundfile", "aud")
    got = load_speech(path).samples
    # librosa sizes the output ceil(n * ratio) and pads with zeros; soxr rounds.
    assert 0 <= len(expected) - len(got) <= 1 and np.all(expected[len(got):] == 0)
    np.testing.assert_allclose(got, np.clip(expected[:len(got)], -1, 1), atol=1e-6)


def test_phonetic_engine_same_controls_without_soundfile(speech_dir, without):
    """End to end: a 44.1 kHz clip read in numpy (+ soxr) animates exactly like soundfile's."""
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("soxr")
    from flame_lipsync.pipeline.engines import run_engine
    path = speech_dir / "english.wav"
    reference = run_engine("phonetic", load_speech(path), 30.0, with_offsets=False)
    without("soundfile", "aud")
    got = run_engine("phonetic", load_speech(path), 30.0, with_offsets=False)
    assert got.metadata["phones"] == reference.metadata["phones"]
    np.testing.assert_array_equal(got.controls, reference.controls)


# --- Blender's aud --------------------------------------------------------------

def _aud():
    bpy = pytest.importorskip("bpy")
    try:
        import aud
    except ImportError:
        pytest.skip(f"bpy {bpy.app.version_string} is built without audaspace (aud)")
    return aud


def test_aud_decode_matches_soundfile(speech_dir, tmp_path):
    """Measured on the shared clips: raw aud vs soundfile differs by up to 3.05e-5 on
    16-bit files (1/32767 vs 1/32768); after the rescale in core.audio, 0."""
    _aud()
    exact = shared(speech_dir, {".wav", ".flac", ".aiff"}) + variants(speech_dir, tmp_path, [
        ("FLAC", "PCM_16", ".16.flac"), ("FLAC", "PCM_24", ".24.flac"), ("FLAC", "PCM_S8", ".8.flac"),
        ("WAV", "PCM_16", ".16.wav"), ("WAV", "FLOAT", ".f.wav"), ("AIFF", "PCM_24", ".24.aiff")])
    for path in exact:
        expected, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        data, file_rate = audio._read_aud(path)
        assert file_rate == rate and data.shape == expected.shape, path
        np.testing.assert_array_equal(data, expected, err_msg=str(path))
    for path in variants(speech_dir, tmp_path, [("OGG", "VORBIS", ".ogg"), ("MP3", None, ".mp3")]):
        expected, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        data, file_rate = audio._read_aud(path)
        assert file_rate == rate and data.shape == expected.shape, path
        assert np.abs(data - expected).max() <= 1e-5, path


def test_load_speech_through_aud_equals_soundfile(speech_dir, tmp_path, without):
    _aud()
    files = [speech_dir / "jfk.flac", speech_dir / "chinese.flac"] + variants(
        speech_dir, tmp_path, [("FLAC", "PCM_16", ".16.flac")])
    reference = {p: load_speech(p) for p in files}
    without("soundfile")
    for path in files:
        np.testing.assert_array_equal(load_speech(path).samples, reference[path].samples)


def test_aud_reads_what_soundfile_cannot(speech_dir, tmp_path):
    """AAC (video editors' audio): libsndfile refuses it, Blender's ffmpeg reads it."""
    aud = _aud()
    path = tmp_path / "english.aac"
    aud.Sound(str(speech_dir / "english.wav")).write(
        str(path), 44100, aud.CHANNELS_MONO, aud.FORMAT_FLOAT32, aud.CONTAINER_AAC, aud.CODEC_AAC, 128000)
    with pytest.raises(RuntimeError):
        soundfile.read(str(path))
    speech = load_speech(path)  # soundfile present: it fails, aud takes over
    assert abs(speech.duration - load_speech(speech_dir / "english.wav").duration) < 0.1  # AAC priming


AUD_BAD_FILES = r'''
import sys
import bpy, aud
from pathlib import Path
from flame_lipsync.core import audio
for path in sys.argv[2:]:  # argv[1]: the checkout (unused: flame_lipsync is installed)
    try:
        audio._read_aud(Path(path))
        print("READ", path)
    except audio.AudioError as err:
        print("ERROR", err)
print("ALIVE")
'''


def test_aud_refuses_bad_files_without_crashing(speech_dir, tmp_path):
    """aud's data() on an unreadable file aborts the process (uncaught C++ exception);
    core.audio asks `specs` first. Run in a subprocess so a regression cannot take pytest down."""
    _aud()
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n" * 50)
    garbage = tmp_path / "noise.flac"
    garbage.write_bytes(np.random.default_rng(0).bytes(4000))
    flac = (speech_dir / "jfk.flac").read_bytes()
    cut = tmp_path / "cut_stream.flac"
    cut.write_bytes(flac[:len(flac) // 3])
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run([sys.executable, "-c", AUD_BAD_FILES, root, str(text), str(garbage), str(cut),
                          str(empty)], capture_output=True, text=True, timeout=120)
    assert "ALIVE" in run.stdout, run.stdout + run.stderr
    errors = [line for line in run.stdout.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 4, run.stdout
    assert all("could not be decoded" in line for line in errors)
    assert "header declares" in errors[2]
