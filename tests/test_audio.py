import math

import numpy as np
import pytest
import soundfile

from flame_lipsync.core.audio import (
    AudioError, Speech, load_speech, loudness_envelope, resample, speech_from_array,
)

AUDIO_SUFFIXES = {".wav", ".flac", ".aiff", ".aif", ".ogg", ".mp3"}


def shared_audio(speech_dir):
    files = sorted(p for p in speech_dir.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    assert files, f"no audio files under {speech_dir}"
    return files


def tone(freq=440.0, rate=16000, seconds=1.0, amp=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def fft_peak_hz(x, rate):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * rate / len(x)


# --- decoding every shared file -------------------------------------------------

@pytest.mark.parametrize("rate", [16000, 22050])
def test_every_shared_file_loads(speech_dir, rate):
    for path in shared_audio(speech_dir):
        speech = load_speech(path, rate=rate)
        info = soundfile.info(str(path))
        assert speech.rate == rate
        assert speech.samples.dtype == np.float32 and speech.samples.ndim == 1, path
        assert abs(speech.duration - info.duration) < 1e-3, path
        assert np.abs(speech.samples).max() > 1e-2, path
        assert np.abs(speech.samples).max() <= 1.0, path
        assert speech.source == str(path)


@pytest.mark.parametrize("fmt, subtype, suffix", [("OGG", "VORBIS", ".ogg"), ("MP3", None, ".mp3")])
def test_compressed_formats(speech_dir, tmp_path, fmt, subtype, suffix):
    data, rate = soundfile.read(str(speech_dir / "english.wav"), dtype="float32")
    path = tmp_path / f"english{suffix}"
    soundfile.write(str(path), data, rate, format=fmt, subtype=subtype)
    speech = load_speech(path)
    assert speech.rate == 16000 and speech.samples.dtype == np.float32
    assert abs(speech.duration - len(data) / rate) < 1e-3
    assert np.abs(speech.samples).max() > 1e-2


def test_stereo_is_averaged_to_mono(speech_dir):
    path = speech_dir / "jfk.flac"
    assert soundfile.info(str(path)).channels == 2
    data, rate = soundfile.read(str(path), dtype="float32")
    speech = load_speech(path, rate=rate)  # same rate: no resampling, exact comparison
    assert speech.samples.ndim == 1
    np.testing.assert_allclose(speech.samples, data.mean(axis=1), atol=1e-6)


def test_stereo_array_and_int_pcm():
    left, right = tone(440), tone(440, amp=0.1)
    speech = speech_from_array(np.stack([left, right], axis=1), 16000)
    np.testing.assert_allclose(speech.samples, (left + right) / 2, atol=1e-6)
    pcm = (tone(440) * 32767).astype(np.int16)
    speech = speech_from_array(pcm, 16000)
    np.testing.assert_allclose(speech.samples, tone(440), atol=1e-4)


# --- resampling ----------------------------------------------------------------

@pytest.mark.parametrize("from_rate, to_rate", [(44100, 16000), (16000, 48000), (48000, 22050)])
def test_resample_keeps_frequency(from_rate, to_rate):
    x = tone(440.0, rate=from_rate, seconds=2.0)
    y = resample(x, from_rate, to_rate)
    assert y.dtype == np.float32
    assert abs(len(y) - len(x) * to_rate / from_rate) <= 1
    assert abs(fft_peak_hz(y, to_rate) - 440.0) < 1.0
    assert abs(np.sqrt(np.mean(y ** 2)) - 0.5 / math.sqrt(2)) < 0.01  # level kept


def test_resample_same_rate_is_copy():
    x = tone()
    y = resample(x, 16000, 16000)
    assert y is not x and np.array_equal(x, y)


# --- bad input: AudioError naming the file --------------------------------------

def _raises(path, match=None, **kwargs):
    with pytest.raises(AudioError, match=match) as err:
        load_speech(path, **kwargs)
    assert path.name in str(err.value)
    return str(err.value)


def test_missing_file(tmp_path):
    _raises(tmp_path / "nowhere.wav", match="does not exist")


def test_text_renamed_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 50)
    assert "WAV/FLAC/OGG/MP3/AIFF" in _raises(path, match="could not be decoded")


def test_garbage_file(tmp_path):
    path = tmp_path / "noise.flac"
    path.write_bytes(np.random.default_rng(0).bytes(4000))
    _raises(path, match="could not be decoded")


def test_truncated_files(speech_dir, tmp_path):
    wav = (speech_dir / "english.wav").read_bytes()
    cut_header = tmp_path / "cut_header.wav"
    cut_header.write_bytes(wav[:30])  # stops inside the RIFF header
    _raises(cut_header, match="could not be decoded")

    flac = (speech_dir / "jfk.flac").read_bytes()
    cut_stream = tmp_path / "cut_stream.flac"
    cut_stream.write_bytes(flac[: len(flac) // 3])  # decoder loses sync mid-stream
    _raises(cut_stream, match="could not be decoded")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(str(path), np.zeros(0, np.float32), 16000)
    _raises(path, match="empty")


def test_silent_file(tmp_path):
    path = tmp_path / "muted.wav"
    soundfile.write(str(path), np.zeros(16000, np.float32), 16000)
    assert "not muted" in _raises(path, match="no speech signal")
    quiet = tmp_path / "quiet.wav"
    soundfile.write(str(quiet), tone(amp=5e-5), 16000, subtype="FLOAT")  # about -86 dBFS
    _raises(quiet, match="no speech signal")


def test_shorter_than_a_frame(tmp_path):
    path = tmp_path / "blip.wav"
    soundfile.write(str(path), tone(seconds=0.02), 16000)  # 20 ms < 33 ms at 30 fps
    _raises(path, match="shorter than one animation frame")
    assert load_speech(path, fps=60).duration == pytest.approx(0.02)  # 20 ms > 16.7 ms


def test_array_errors_name_source():
    with pytest.raises(AudioError, match="strip 'Dialogue'"):
        speech_from_array(np.zeros(16000), 16000, source="strip 'Dialogue'")
    with pytest.raises(AudioError, match="NaN"):
        speech_from_array(np.full(16000, np.nan), 16000)


# --- loudness envelope ----------------------------------------------------------

def test_loudness_envelope_length():
    speech = Speech(tone(seconds=2.0), 16000, "tone")
    assert len(loudness_envelope(speech, 30)) == 60
    assert len(loudness_envelope(Speech(tone(seconds=2.01), 16000, "t"), 30)) == 61
    env = loudness_envelope(speech, 24, n_frames=100)
    assert env.dtype == np.float32 and len(env) == 100
    assert np.allclose(env[50:], 0)  # past the end of the audio
    assert np.allclose(env[1:47], 0.5 / math.sqrt(2), atol=1e-3)  # RMS of a sine


def test_loudness_envelope_speech_vs_silence(speech_dir):
    speech = load_speech(speech_dir / "english.wav")
    pad = np.zeros(speech.rate, np.float32)  # 1 s of silence after the speech
    padded = Speech(np.concatenate([speech.samples, pad]), speech.rate, "padded")
    env = loudness_envelope(padded, 30)
    speech_frames = int(speech.duration * 30)
    assert len(env) == math.ceil(padded.duration * 30)
    assert env[:speech_frames].max() > 0.05
    assert env[:speech_frames].mean() > 10 * env[speech_frames + 2:].max() + 1e-6
    assert np.all(env[speech_frames + 2:] == 0)


def test_loudness_in_blocks_is_the_whole_clip_sum_bit_for_bit(speech_dir, monkeypatch):
    from flame_lipsync.core import audio
    speech = audio.load_speech(speech_dir / "speech_22s.wav")
    whole = audio.loudness_envelope(speech, 29.97)
    monkeypatch.setattr(audio, "ENERGY_BLOCK", 4099)  # ~90 blocks, edges anywhere
    np.testing.assert_array_equal(audio.loudness_envelope(speech, 29.97), whole)
    x = speech.samples.astype(np.float64)  # and it is what one cumsum over the clip gives
    energy = np.concatenate(([0.0], np.cumsum(x * x)))
    at = np.array([0, 1, 4098, 4099, 4100, x.size - 1, x.size])
    np.testing.assert_array_equal(audio._energy_before(speech.samples, at), energy[at])


def test_speech_from_a_callers_array_leaves_it_as_it_was():
    from flame_lipsync.core import audio
    loud = np.sin(np.arange(16000) / 5.0).astype(np.float32) * 1.5  # clipped to [-1, 1] in the Speech
    kept = loud.copy()
    speech = audio.speech_from_array(loud, 16000)
    assert speech.samples.max() == 1.0 and np.array_equal(loud, kept)
    assert not np.shares_memory(speech.samples, loud)
