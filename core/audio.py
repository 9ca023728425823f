"""Speech input: decode an audio file (or take samples from memory), mix to mono,
resample, and refuse audio that cannot drive a face, with a message that says why.

Everything downstream (phonetic or neural engine, loudness) reads a `Speech`, so the
checks here are the only place bad dialogue is caught.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_RATE = 16000  # what speech models (wav2vec, DeepSpeech, pocketsphinx) expect
SILENCE_PEAK = 1e-4   # -80 dBFS: below this there is nothing to lip-sync to
FORMATS_HINT = "export the dialogue as WAV/FLAC/OGG/MP3/AIFF"


def _require(module: str):
    """Decoders load when first used, so the add-on enables without them and
    says what is missing instead of failing to load."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise AudioError(f"Reading audio needs the Python package '{module}', which this Python "
                         f"does not have: install it (pip install {module}) into the Python "
                         f"that runs Blender.") from None


@dataclass
class Speech:
    samples: np.ndarray  # mono float32 in [-1, 1]
    rate: int            # Hz
    source: str          # file path or description, used in messages

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate


class AudioError(ValueError):
    """Audio the user gave cannot be used; the message names it and says what to do."""


def load_speech(path, rate: int = DEFAULT_RATE, fps: float = 30.0) -> Speech:
    """Decode any file libsndfile reads, mix to mono, resample to `rate`."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not an audio file" if path.is_dir() else "does not exist"
        raise AudioError(f"Audio file '{path}' {what}: check the path or the sound strip's file.")
    soundfile = _require("soundfile")
    try:
        data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError) as err:
        # libsndfile reports garbage, renamed text files and broken streams alike.
        reason = getattr(err, "error_string", str(err)).removeprefix("Error : ").rstrip(". ")
        raise AudioError(
            f"Audio file '{path}' could not be decoded ({reason}): it is not audio, is "
            f"damaged, or uses an unsupported format; {FORMATS_HINT}."
        ) from None
    return speech_from_array(data, file_rate, rate, fps, source=str(path))


def speech_from_array(samples, rate, target_rate: int = DEFAULT_RATE, fps: float = 30.0,
                      source: str = "array") -> Speech:
    """Same checks as `load_speech` for audio already in memory (e.g. Blender's `aud`).

    `samples` is (n,) or (n, channels), float in [-1, 1] or integer PCM.
    """
    if rate <= 0 or target_rate <= 0 or fps <= 0:
        raise AudioError(f"Audio '{source}': sample rate and fps must be positive "
                         f"(got rate={rate}, target_rate={target_rate}, fps={fps}).")
    data = np.asarray(samples)
    if data.ndim not in (1, 2):
        raise AudioError(f"Audio '{source}' has shape {data.shape}; expected (samples,) "
                         f"or (samples, channels).")
    if np.issubdtype(data.dtype, np.integer):
        data = data / float(np.iinfo(data.dtype).max)  # integer PCM -> [-1, 1]
    data = data.astype(np.float32, copy=False)
    mono = data.mean(axis=1, dtype=np.float32) if data.ndim == 2 else data

    if mono.size == 0:
        raise AudioError(f"Audio '{source}' is empty (0 samples): {FORMATS_HINT} again "
                         f"and check the export range is not empty.")
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"Audio '{source}' contains invalid (NaN/infinite) samples: "
                         f"{FORMATS_HINT} again.")
    duration = mono.size / rate
    if duration < 1.0 / fps:
        raise AudioError(f"Audio '{source}' lasts {duration * 1000:.1f} ms, shorter than one "
                         f"animation frame at {fps:g} fps: use a longer dialogue clip.")
    peak = float(np.max(np.abs(mono)))
    if peak < SILENCE_PEAK:
        raise AudioError(f"Audio '{source}' has no speech signal ({_level(peak)}): "
                         f"check the strip/recording is not muted and the right file is used.")

    out = resample(mono, rate, target_rate)
    # Resampling filters overshoot slightly on full-scale input; keep the [-1, 1] promise.
    np.clip(out, -1.0, 1.0, out=out)
    return Speech(samples=out, rate=int(target_rate), source=source)


def resample(samples, from_rate, to_rate) -> np.ndarray:
    """Band-limited resampling (soxr HQ); float32 out, length round(n * to / from)."""
    x = np.ascontiguousarray(samples, dtype=np.float32)
    if from_rate == to_rate:
        return x.copy()
    return _require("soxr").resample(x, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def loudness_envelope(speech: Speech, fps: float, n_frames: int | None = None) -> np.ndarray:
    """Linear RMS per animation frame, window of two frames centred on t = i / fps.

    Windows are clipped at the ends of the audio and averaged over what remains, so the
    first and last frames are not biased towards silence; frames past the end are 0.
    """
    if n_frames is None:
        # round() first: 2.0 s * 30 fps must give 60, not 61 from float error.
        n_frames = math.ceil(round(speech.duration * fps, 6))
    x = speech.samples.astype(np.float64)
    energy = np.concatenate(([0.0], np.cumsum(x * x)))  # prefix sums: O(1) per window
    centres = np.arange(n_frames) * (speech.rate / fps)
    half = speech.rate / fps  # one frame either side
    lo = np.clip(np.round(centres - half), 0, x.size).astype(np.int64)
    hi = np.clip(np.round(centres + half), 0, x.size).astype(np.int64)
    count = hi - lo
    total = energy[hi] - energy[lo]
    rms = np.sqrt(np.maximum(total, 0.0) / np.maximum(count, 1))  # cumsum can dip below 0
    return np.where(count > 0, rms, 0.0).astype(np.float32)


def _level(peak: float) -> str:
    return "digital silence" if peak == 0 else f"peak {20 * math.log10(peak):.0f} dBFS"
