"""Audio front end: log-mel energies + log loudness at 50 frames per second.

One definition, two implementations that give the same numbers:
  * `features_numpy(samples)`  - numpy only (runs inside a Blender without torch)
  * `features_torch(samples)`  - torch (training, GPU), same framing / window / filterbank

Frame j is centred on sample j * HOP (time j / FEATURE_RATE s): the signal is zero-padded by
N_FFT // 2 on both sides, as librosa's `center=True, pad_mode="constant"`, so
`librosa.feature.melspectrogram(y, sr=16000, n_fft=512, hop_length=320, n_mels=40)` gives the
same mel energies (tested). Column layout: [log mel 0..39, log loudness].

Log floors keep silence finite: digital silence maps to `silence_features()`, the vector the
network's windows are padded with beyond the ends of the audio.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000
HOP = 320                          # 20 ms -> 50 feature frames per second
FEATURE_RATE = SAMPLE_RATE / HOP   # 50.0
N_FFT = 512
N_MELS = 40
N_FEATURES = N_MELS + 1            # + log loudness
MEL_FLOOR = 1e-6                   # ~ -85 dBFS per mel band: below it, silence
LOUDNESS_FLOOR = 1e-8              # mean power floor (-80 dBFS)


# ----------------------------------------------------------------------------- filterbank

def _hz_to_mel(hz):
    """Slaney mel scale (librosa's default, htk=False): linear below 1 kHz, log above."""
    hz = np.asarray(hz, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    mel = hz / f_sp
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, mel)


def _mel_to_hz(mel):
    mel = np.asarray(mel, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


@lru_cache(maxsize=4)
def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 Slaney-normalised triangles, fmin 0, fmax sr / 2.

    The same formula as `librosa.filters.mel` (computed in float64, stored float32), written
    out so the add-on does not need librosa; `tests/test_models.py` checks they are equal."""
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((n_mels, len(fft_freqs)), np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, None]
    weights.flags.writeable = False
    return weights


@lru_cache(maxsize=2)
def hann_window(n: int = N_FFT) -> np.ndarray:
    """Periodic Hann (scipy `get_window('hann', n, fftbins=True)`), float64."""
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
    w.flags.writeable = False
    return w


def n_feature_frames(n_samples: int) -> int:
    return 1 + n_samples // HOP


def silence_features() -> np.ndarray:
    """The feature vector of digital silence (what windows are padded with)."""
    out = np.full(N_FEATURES, math.log(MEL_FLOOR), np.float32)
    out[-1] = math.log(LOUDNESS_FLOOR)
    return out


# ----------------------------------------------------------------------------- numpy

def _frames_numpy(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples, np.float64).reshape(-1)
    x = np.pad(x, (N_FFT // 2, N_FFT // 2))
    n = n_feature_frames(len(x) - N_FFT)
    return np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP][:n]


def mel_power_numpy(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mel energies (T, 40), mean windowed power (T,)) in float64."""
    window = hann_window()
    frames = _frames_numpy(samples) * window
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    mel = power @ mel_filterbank().astype(np.float64).T
    loud = (frames ** 2).sum(-1) / (window ** 2).sum()
    return mel, loud


def features_numpy(samples: np.ndarray) -> np.ndarray:
    """(n_feature_frames(len), 41) float32: log mel + log loudness, unnormalised."""
    samples = np.asarray(samples, np.float32).reshape(-1)
    if samples.size == 0:
        return np.zeros((0, N_FEATURES), np.float32)
    mel, loud = mel_power_numpy(samples)
    out = np.empty((len(mel), N_FEATURES), np.float64)
    out[:, :N_MELS] = np.log(mel + MEL_FLOOR)
    out[:, N_MELS] = np.log(loud + LOUDNESS_FLOOR)
    return out.astype(np.float32)


# ----------------------------------------------------------------------------- torch

def features_torch(samples, dtype=None):
    """Same as `features_numpy`, in torch (any device). Takes a 1-D tensor or array.

    The front end runs in float64 (like the numpy path and librosa's FFT) and returns float32:
    it costs nothing next to the network and keeps the two paths within ~1e-6."""
    import torch

    x = samples if isinstance(samples, torch.Tensor) else torch.as_tensor(np.asarray(samples, np.float32))
    if dtype is None:  # MPS has no float64
        dtype = torch.float32 if x.device.type == "mps" else torch.float64
    x = x.reshape(-1).to(torch.float32).to(dtype)
    if x.numel() == 0:
        return torch.zeros((0, N_FEATURES), dtype=torch.float32, device=x.device)
    window = torch.tensor(hann_window(), dtype=x.dtype, device=x.device)
    bank = torch.tensor(mel_filterbank(), device=x.device).to(x.dtype)
    n = n_feature_frames(x.numel())
    pad = x.new_zeros(N_FFT // 2)
    frames = torch.cat([pad, x, pad]).unfold(0, N_FFT, HOP)[:n] * window
    spectrum = torch.fft.rfft(frames, dim=-1)
    power = spectrum.real ** 2 + spectrum.imag ** 2
    mel = power @ bank.T
    loud = (frames ** 2).sum(-1) / (window ** 2).sum()
    out = torch.cat([torch.log(mel + MEL_FLOOR), torch.log(loud + LOUDNESS_FLOOR)[:, None]], dim=1)
    return out.to(torch.float32)


# ----------------------------------------------------------------------------- normalisation

def feature_stats(feature_list) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean / std over a list of (T, F) arrays (the training set)."""
    total = total_sq = 0.0
    count = 0
    for f in feature_list:
        f = np.asarray(f, np.float64)
        total = total + f.sum(0)
        total_sq = total_sq + (f ** 2).sum(0)
        count += len(f)
    if count == 0:
        raise ValueError("no feature frames to compute normalisation statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))
    return mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32)


# ----------------------------------------------------------------------------- time alignment

def window_indices(frames, fps: float, window: int, n_feature_frames_total: int,
                   time_scale: float = 1.0) -> np.ndarray:
    """(len(frames), window) int64 feature-frame indices feeding animation frames `frames`.

    Animation frame i is at t = i / fps; its window is the `window` feature frames centred on
    t (frame c = round(t * 50), indices c - window//2 .. c + window//2 - 1). Indices outside
    the audio are -1: the caller fills them with `silence_features()`. `time_scale` maps
    target time to audio time (audio stretched by a speed augmentation)."""
    frames = np.asarray(frames, np.float64)
    centre = np.floor(frames * (FEATURE_RATE * time_scale / fps) + 0.5).astype(np.int64)
    idx = centre[:, None] + np.arange(-(window // 2), window - window // 2, dtype=np.int64)[None]
    idx[(idx < 0) | (idx >= n_feature_frames_total)] = -1
    return idx


# ----------------------------------------------------------------------------- front ends

FRONT_ENDS = ("mel", "mel+phones")


def n_front_end_features(front_end: str = "mel") -> int:
    """Columns of a front end: log-mel + loudness (41), + 40 phone-loop posteriors (81)."""
    from .phone_features import PHONES
    _check_front_end(front_end)
    return N_FEATURES + (len(PHONES) if front_end == "mel+phones" else 0)


def _check_front_end(front_end: str):
    if front_end not in FRONT_ENDS:
        raise ValueError(f"unknown front end {front_end!r}: choose one of {', '.join(FRONT_ENDS)}")


def front_end_features(samples: np.ndarray, front_end: str = "mel", phones=None) -> np.ndarray:
    """(n_feature_frames, n_front_end_features) float32, unnormalised. `phones`: the
    phone-loop posteriors when already known (a training cache), else recognised here."""
    _check_front_end(front_end)
    mel = features_numpy(samples)
    if front_end == "mel":
        return mel
    from .phone_features import phone_posteriors
    post = phone_posteriors(samples) if phones is None else np.asarray(phones, np.float32)
    if len(post) != len(mel):
        raise ValueError(f"{len(post)} phone frames for {len(mel)} feature frames")
    return np.concatenate([mel, post], 1)


def front_end_silence(front_end: str = "mel") -> np.ndarray:
    """The padding vector beyond the ends of the audio: digital silence (+ the SIL phone)."""
    _check_front_end(front_end)
    if front_end == "mel":
        return silence_features()
    from .phone_features import PHONE_INDEX, PHONES, SIL
    post = np.zeros(len(PHONES), np.float32)
    post[PHONE_INDEX[SIL]] = 1.0
    return np.concatenate([silence_features(), post])
