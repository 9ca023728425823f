"""Speech input: decode an audio file (or take samples from memory), mix to mono,
resample, and refuse audio that cannot drive a face, with a message that says why.

Everything downstream (phonetic or neural engine, loudness) reads a `Speech`, so the
checks here are the only place bad dialogue is caught.
"""
from __future__ import annotations

import contextvars
import math
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import audio_numpy

DEFAULT_RATE = 16000  # what speech models (wav2vec, DeepSpeech, pocketsphinx) expect
SILENCE_PEAK = 1e-4   # -80 dBFS: below this there is nothing to lip-sync to
FORMATS_HINT = "export the dialogue as WAV/FLAC/OGG/MP3/AIFF"
MIN_RATE, MAX_RATE = 4000, 384000   # a header outside this range is damaged, not audio
SPEECH_FLOOR_DB = -60.0  # loudest 2% of 20 ms frames (DC removed) below this: no speech
                         # (the shared speech clips sit at -30..-16 dBFS)

# A file cut short (fewer samples than its header declares) is refused; a caller that
# sets this to True (cli.py --allow-truncated) gets a warning naming the missing seconds.
ALLOW_TRUNCATED = contextvars.ContextVar("flame_lipsync_allow_truncated", default=False)


def _optional(module: str):
    """soundfile, soxr (and Blender's `aud`) are used when importable, never required:
    core.audio_numpy reads WAV/AIFF and resamples with the same numbers."""
    import importlib
    try:
        return importlib.import_module(module)
    except (ImportError, OSError):  # OSError: a package whose native library is missing
        return None


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
    """Decode an audio file, mix to mono, resample to `rate`.

    Decoders, first available first: soundfile (libsndfile); else core.audio_numpy for
    WAV/AIFF (bit-identical to soundfile); then Blender's `aud` (ffmpeg: FLAC, OGG, MP3,
    and what libsndfile does not read, such as AAC), when importable.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not an audio file" if path.is_dir() else "does not exist"
        raise AudioError(f"Audio file '{path}' {what}: check the path or the sound strip's file.")
    soundfile = _optional("soundfile")
    if soundfile is not None:
        try:
            data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except (soundfile.SoundFileError, RuntimeError) as err:
            # libsndfile reports garbage, renamed text files and broken streams alike.
            reason = getattr(err, "error_string", str(err)).removeprefix("Error : ").rstrip(". ")
            if _optional("aud") is None:
                raise _undecodable(path, reason) from None
            data, file_rate = _read_aud(path, reason)  # Blender's ffmpeg reads more (AAC, M4A...)
    else:
        data, file_rate = _decode_without_soundfile(path)
    if not MIN_RATE <= file_rate <= MAX_RATE:
        raise AudioError(f"Audio file '{path}' declares a sample rate of {file_rate} Hz, outside "
                         f"{MIN_RATE // 1000} kHz-{MAX_RATE // 1000} kHz: its header is damaged or it is not "
                         f"speech audio; {FORMATS_HINT} again.")
    _check_length(path, len(data), file_rate, soundfile)
    return speech_from_array(data, file_rate, rate, fps, source=str(path), owned=True)


def declared_frames(path) -> int | None:
    """Sample frames a WAV/AIFF header declares (None: not WAV/AIFF, or a streaming
    header with no length). Reads the header only."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return None
    if len(head) < 12:
        return None
    if head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
        e = ">" if head[:4] == b"RIFX" else "<"
        pos, block = 12, None
        while pos + 8 <= len(head):
            cid, (size,) = head[pos:pos + 4], struct.unpack(e + "I", head[pos + 4:pos + 8])
            if cid == b"fmt " and pos + 8 + 16 <= len(head):
                block = struct.unpack(e + "H", head[pos + 8 + 12:pos + 8 + 14])[0]
            elif cid == b"data":
                if not block or size in (0, 0xFFFFFFFF):
                    return None
                return size // block
            pos += 8 + size + (size & 1)
        return None
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        pos = 12
        while pos + 8 <= len(head):
            cid, (size,) = head[pos:pos + 4], struct.unpack(">I", head[pos + 4:pos + 8])
            if cid == b"COMM" and pos + 8 + 6 <= len(head):
                return struct.unpack(">I", head[pos + 10:pos + 14])[0]
            pos += 8 + size + (size & 1)
    return None


def _check_length(path: Path, frames: int, file_rate: int, soundfile=None) -> None:
    """Refuse a file cut short: fewer sample frames than its header declares."""
    declared = declared_frames(path)
    if declared is None and soundfile is not None and path.suffix.lower() in _EXACT_LENGTH:
        try:
            declared = int(soundfile.info(str(path)).frames)
        except Exception:  # noqa: BLE001 - the decode already succeeded; no declared length then
            declared = None
    if not declared or frames >= declared - file_rate // 100:
        return
    have, missing = frames / file_rate, (declared - frames) / file_rate
    message = (f"Audio file '{path}' is cut short: its header declares {declared / file_rate:.2f} s but "
               f"the file holds {have:.2f} s ({missing:.2f} s missing at the end)")
    if not ALLOW_TRUNCATED.get():
        raise AudioError(f"{message}; export or copy it again, or bake what is there with "
                         "--allow-truncated.")
    warnings.warn(f"{message}; baking the {have:.2f} s that are there.", stacklevel=3)


def _undecodable(path, reason: str) -> AudioError:
    return AudioError(f"Audio file '{path}' could not be decoded ({reason}): it is not audio, is "
                      f"damaged, or uses an unsupported format; {FORMATS_HINT}.")


def _decode_without_soundfile(path: Path):
    """core.audio_numpy for WAV/AIFF, else Blender's `aud` (when importable)."""
    try:
        return audio_numpy.read_wav_aiff(path)
    except audio_numpy.DecodeError as err:
        first = err
    except OSError as err:
        from .atomic import describe
        reason, todo = describe(err, reading=True)
        raise AudioError(f"Audio file '{path}' could not be read: {reason}; {todo}.") from None
    if _optional("aud") is None:  # Blender's audio library (importable once bpy is loaded)
        if first.recognised:
            raise _undecodable(path, str(first))
        raise AudioError(
            f"Audio file '{path}' could not be decoded: without the 'soundfile' package only "
            f"WAV and AIFF are read outside Blender; export the dialogue as WAV, or install "
            f"soundfile (pip install soundfile) into this Python.")
    return _read_aud(path, reason=str(first) if first.recognised else None)


# Formats whose header states the exact length, so a shorter stream means a cut file.
_EXACT_LENGTH = {".wav", ".wave", ".aif", ".aiff", ".aifc", ".flac", ".w64", ".caf", ".rf64"}


def _read_aud(path: Path, reason: str | None = None):
    """Decode with Blender's audaspace (ffmpeg + libsndfile inside Blender) at the file's
    own rate -> (float32 (frames, channels), rate), with soundfile's numbers:

    - audaspace scales 16-bit PCM by 1/32767 where libsndfile uses 1/32768; when every
      sample is a multiple of 1/32767 the data is 16-bit (or 8-bit) PCM and is rescaled,
      which makes WAV/FLAC/AIFF bit-identical to soundfile (24-bit and float already are;
      OGG/MP3 decoders agree to ~1e-6).
    - resampling stays with `resample` (soxr or its numpy equivalent): aud's own
      resampler differs from soxr by -33 to -63 dB on the shared clips.
    """
    import aud
    try:
        sound = aud.Sound(str(path))
        # `specs` raises for unreadable files; `data()` on one aborts the whole process
        # (an uncaught C++ exception, Blender 4.5-5.0), so it is only called after.
        file_rate, _ = sound.specs
        declared = sound.length
        data = np.asarray(sound.data(), dtype=np.float32)
    except aud.error as err:
        raise _undecodable(path, reason or str(err).rstrip(". ")) from None
    file_rate = int(round(file_rate))
    if path.suffix.lower() in _EXACT_LENGTH and declared > 0 and len(data) < declared - file_rate // 100:
        raise _undecodable(path, f"the stream ends at {len(data) / file_rate:.2f} s of the "
                                 f"{declared / file_rate:.2f} s its header declares")
    scaled = data.astype(np.float64) * 32767.0
    steps = np.round(scaled)
    if data.size and np.max(np.abs(scaled - steps)) < 0.01:  # float32 keeps k/32767 to < 0.002
        data = (steps / 32768.0).astype(np.float32)
    return data, file_rate


def speech_from_array(samples, rate, target_rate: int = DEFAULT_RATE, fps: float = 30.0,
                      source: str = "array", owned: bool = False) -> Speech:
    """Same checks as `load_speech` for audio already in memory (e.g. Blender's `aud`).

    `samples` is (n,) or (n, channels), float in [-1, 1] or integer PCM. `owned`: the
    caller hands the array over (a file just decoded), so audio already at `target_rate`
    is kept as it is instead of copied: an hour of speech is then in memory once.
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
    if data.ndim == 2 and data.shape[1] == 1:  # x / 1 is x: the column itself, no copy
        data = data[:, 0]
    mono = data.mean(axis=1, dtype=np.float32) if data.ndim == 2 else data

    if mono.size == 0:
        raise AudioError(f"Audio '{source}' is empty (0 samples): {FORMATS_HINT} again "
                         f"and check the export range is not empty.")
    if not np.isfinite(mono.sum(dtype=np.float64)):  # finite iff every sample is (no mask array)
        raise AudioError(f"Audio '{source}' contains invalid (NaN/infinite) samples: "
                         f"{FORMATS_HINT} again.")
    duration = mono.size / rate
    if duration < 1.0 / fps:
        raise AudioError(f"Audio '{source}' lasts {duration * 1000:.1f} ms, shorter than one "
                         f"animation frame at {fps:g} fps: use a longer dialogue clip.")
    peak = float(max(mono.max(), -mono.min()))
    if peak < SILENCE_PEAK:
        raise AudioError(f"Audio '{source}' has no speech signal ({_level(peak)}): "
                         f"check the strip/recording is not muted and the right file is used.")
    level = speech_level_db(mono, rate)
    if level < SPEECH_FLOOR_DB:
        heard = "it is a constant DC offset, no sound" if level == -math.inf else \
            f"its loudest moments reach {level:.0f} dBFS once any DC offset is removed; speech reaches -40 dBFS or more"
        raise AudioError(f"Audio '{source}' has no speech in it ({heard}): check the strip/recording "
                         f"is not muted and the right file or channel is used.")

    if owned and rate == target_rate and mono.flags.c_contiguous:
        out = mono  # ours to keep (and to clip in place)
    else:
        out = resample(mono, rate, target_rate)
    # Resampling filters overshoot slightly on full-scale input; keep the [-1, 1] promise.
    np.clip(out, -1.0, 1.0, out=out)
    return Speech(samples=out, rate=int(target_rate), source=source)


def speech_level_db(mono: np.ndarray, rate: int) -> float:
    """Level of the loudest 2% of 20 ms frames, each with its mean (DC, rumble below
    ~50 Hz) removed, in dBFS: a constant offset or a noise floor reads very low, any
    speech recording -40 dBFS or more."""
    n = max(1, int(rate * 0.02))
    m = len(mono) // n
    if m == 0:
        frames = mono[None, :].astype(np.float64)
    else:
        frames = mono[:m * n].reshape(m, n)
    mean = frames.mean(axis=1, dtype=np.float64)
    power = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / frames.shape[1] - mean * mean
    rms = np.sqrt(np.maximum(power, 0.0))
    loud = float(np.percentile(rms, 98))
    return 20 * math.log10(loud) if loud > 0 else -math.inf


def resample(samples, from_rate, to_rate) -> np.ndarray:
    """Band-limited resampling (soxr HQ, or core.audio_numpy's equivalent without soxr);
    float32 out, length round(n * to / from)."""
    x = np.ascontiguousarray(samples, dtype=np.float32)
    if from_rate == to_rate:
        return x.copy()
    soxr = _optional("soxr")
    if soxr is None:
        return audio_numpy.resample(x, from_rate, to_rate)
    return soxr.resample(x, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def loudness_envelope(speech: Speech, fps: float, n_frames: int | None = None) -> np.ndarray:
    """Linear RMS per animation frame, window of two frames centred on t = i / fps.

    Windows are clipped at the ends of the audio and averaged over what remains, so the
    first and last frames are not biased towards silence; frames past the end are 0.
    """
    if n_frames is None:
        # round() first: 2.0 s * 30 fps must give 60, not 61 from float error.
        n_frames = math.ceil(round(speech.duration * fps, 6))
    size = speech.samples.size
    centres = np.arange(n_frames) * (speech.rate / fps)
    half = speech.rate / fps  # one frame either side
    lo = np.clip(np.round(centres - half), 0, size).astype(np.int64)
    hi = np.clip(np.round(centres + half), 0, size).astype(np.int64)
    count = hi - lo
    energy = _energy_before(speech.samples, np.concatenate([lo, hi]))  # prefix sums: O(1) a window
    total = energy[n_frames:] - energy[:n_frames]
    rms = np.sqrt(np.maximum(total, 0.0) / np.maximum(count, 1))  # cumsum can dip below 0
    return np.where(count > 0, rms, 0.0).astype(np.float32)


ENERGY_BLOCK = 1 << 20  # samples squared and summed at a time: an hour costs 8 MB, not 1.4 GB


def _energy_before(samples: np.ndarray, at: np.ndarray) -> np.ndarray:
    """sum(samples[:i] ** 2) in float64 for every i in `at` (0 <= i <= len), block by block.
    Each block's running sum starts from the last one's total, so every addition is the one
    a single cumsum over the whole clip would make: the same numbers, bit for bit."""
    out = np.zeros(len(at))
    order = np.argsort(at, kind="stable")
    wanted = at[order]
    carry, first = 0.0, 0
    for begin in range(0, samples.size, ENERGY_BLOCK):
        block = samples[begin:begin + ENERGY_BLOCK].astype(np.float64)
        running = np.cumsum(np.concatenate(([carry], block * block)))  # running[j] = sum before begin + j
        last = np.searchsorted(wanted, begin + block.size, side="right")
        out[order[first:last]] = running[wanted[first:last] - begin]
        carry, first = running[-1], last
    return out


def _level(peak: float) -> str:
    return "digital silence" if peak == 0 else f"peak {20 * math.log10(peak):.0f} dBFS"
