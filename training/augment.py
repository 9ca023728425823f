"""Audio augmentation for the synthetic corpus, numpy only, seeded.

Used by training/build_corpus.py to write augmented copies, and usable by training
to augment on the fly. Every function takes plain arrays (mono float32 audio at
`rate`, controls (T, C) at frame times i / fps) and, where randomness is needed,
a `numpy.random.Generator`, so a seed reproduces the result.

What changes timing and what does not:
  * noise, reverberation, gain, pitch shift, formant shift: the length and the
    timing of the speech stay as they were, so the targets are unchanged;
  * speed (tape-style: tempo and pitch together) and time_stretch (tempo only):
    the speech happens `factor` times faster, so the targets are time-warped with
    `warp_controls_for_speed` (or recomputed from time-scaled phones, as the
    builder does; see `scale_phones`);
  * pad_silence: audio gains silence at the ends and the targets gain the rest
    pose there (see REST_POSE for why the rest pose is not all zeros).
"""
from __future__ import annotations

import math

import numpy as np

from ..core.coarticulation import LIPS_SETTLE, REST_CLOSE
from ..core.phonetic import frame_count
from ..core.rig import CONTROLS

# What the teacher (core.coarticulation.rest_in_pauses) shows in any silence of
# 0.2 s or more, leading and trailing silence included: jaw shut, lips together
# at REST_CLOSE. All-zero controls (the neutral FLAME mouth, lips 2 mm apart)
# would contradict the teacher's own silences in the same clip.
REST_POSE = np.zeros(len(CONTROLS), np.float32)
REST_POSE[CONTROLS.index("lips_close")] = REST_CLOSE


# --------------------------------------------------------------------- levels

def power(x) -> float:
    x = np.asarray(x, np.float64)
    return float(np.mean(x * x)) if x.size else 0.0


def snr_db(clean, noise) -> float:
    """10 log10(P_clean / P_noise) over the whole clip (the definition add_noise uses)."""
    return 10.0 * math.log10(max(power(clean), 1e-20) / max(power(noise), 1e-20))


def change_gain(audio, gain_db: float, limit: bool = True) -> np.ndarray:
    """Scale by gain_db; with `limit`, the gain is lowered so the peak stays <= 1
    (a level change, not a clipping effect)."""
    audio = np.asarray(audio, np.float32)
    gain = 10.0 ** (gain_db / 20.0)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if limit and peak * gain > 1.0:
        gain = 1.0 / peak
    return (audio * gain).astype(np.float32)


# ---------------------------------------------------------------------- noise

def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f power spectrum (-3 dB per octave), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(max(n, 2)))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    spectrum /= np.sqrt(f)
    spectrum[0] = 0.0  # no DC
    x = np.fft.irfft(spectrum, max(n, 2))[:n]
    return (x / max(np.sqrt(np.mean(x * x)), 1e-12)).astype(np.float32)


def babble_noise(n: int, sources, rng: np.random.Generator, talkers: int = 4) -> np.ndarray:
    """Several other utterances summed (each a random stretch, looped to n samples,
    at equal RMS): speech-shaped, speech-modulated noise."""
    sources = [np.asarray(s, np.float32) for s in sources if len(s)]
    if not sources:
        raise ValueError("babble_noise needs at least one source utterance")
    out = np.zeros(n, np.float64)
    for k in range(talkers):
        s = sources[rng.integers(len(sources))] if k >= len(sources) else sources[k]
        s = s / max(np.sqrt(np.mean(s.astype(np.float64) ** 2)), 1e-12)
        reps = int(np.ceil((n + len(s)) / len(s)))
        looped = np.tile(s, reps)
        start = int(rng.integers(len(s)))
        out += looped[start:start + n]
    return out.astype(np.float32)


def add_noise(audio, noise, snr: float) -> np.ndarray:
    """audio + noise scaled so that 10 log10(P_audio / P_noise) == snr dB, powers
    taken over the whole clip. `noise` is tiled or cut to the audio's length."""
    audio = np.asarray(audio, np.float32)
    noise = np.asarray(noise, np.float64)
    if noise.size < audio.size:
        noise = np.tile(noise, int(np.ceil(audio.size / max(noise.size, 1))))
    noise = noise[:audio.size]
    p_noise = power(noise)
    if p_noise <= 0:
        return audio.copy()
    scale = math.sqrt(power(audio) / (p_noise * 10.0 ** (snr / 10.0)))
    return (audio + scale * noise).astype(np.float32)


# ---------------------------------------------------------------- reverberation

def exponential_ir(rate: int, rt60: float, rng: np.random.Generator,
                   drr_db: float = 3.0, predelay: float = 0.004) -> np.ndarray:
    """Synthetic room impulse response: a direct path at t=0, then Gaussian noise
    decaying by 60 dB in rt60 seconds (starting after `predelay`), scaled so the
    direct-to-reverberant energy ratio is drr_db."""
    length = max(int(round(rt60 * 1.2 * rate)), 2)
    t = np.arange(length) / rate
    tail = rng.standard_normal(length) * np.exp(-6.9078 * t / rt60)  # ln(1000) = 6.9078
    tail[: int(round(predelay * rate)) + 1] = 0.0
    tail *= math.sqrt(10.0 ** (-drr_db / 10.0) / max(np.sum(tail * tail), 1e-20))
    tail[0] = 1.0  # direct path
    return tail.astype(np.float32)


def _fft_convolve(x, h) -> np.ndarray:
    n = x.size + h.size - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[:n]


def reverberate(audio, ir) -> np.ndarray:
    """Convolve with an impulse response; same length as the input (the tail
    past the end is cut) and the same RMS, so only the room changes."""
    audio = np.asarray(audio, np.float64)
    wet = _fft_convolve(audio, np.asarray(ir, np.float64))[:audio.size]
    wet *= math.sqrt(power(audio) / max(power(wet), 1e-20))
    peak = np.max(np.abs(wet)) if wet.size else 0.0
    if peak > 1.0:
        wet /= peak
    return wet.astype(np.float32)


# ------------------------------------------------------------------- channel

def channel_response(rate: int, n_bins: int, rng: np.random.Generator) -> np.ndarray:
    """A random microphone / codec / room-colouring magnitude response over n_bins rfft bins:
    a spectral tilt of +-4 dB per octave around 1 kHz, a few smooth +-6 dB bumps, and
    half the time a low-pass between 3.4 kHz (telephone) and 7.5 kHz (low-bit-rate MP3)
    and a high-pass below 60-300 Hz. Real recordings differ from clean TTS mostly here."""
    freqs = np.linspace(0.0, rate / 2.0, n_bins)
    octaves = np.log2(np.maximum(freqs, 50.0) / 1000.0)
    db = rng.uniform(-4.0, 4.0) * octaves
    for _ in range(rng.integers(1, 4)):
        centre, width = rng.uniform(-3.0, 2.5), rng.uniform(0.3, 1.5)
        db += rng.uniform(-6.0, 6.0) * np.exp(-0.5 * ((octaves - centre) / width) ** 2)
    gain = 10.0 ** (db / 20.0)
    if rng.random() < 0.5:
        cutoff = rng.uniform(3400.0, 7500.0)
        gain /= np.sqrt(1.0 + (freqs / cutoff) ** 16)
    if rng.random() < 0.5:
        corner = rng.uniform(60.0, 300.0)
        gain *= 1.0 / np.sqrt(1.0 + (corner / np.maximum(freqs, 1.0)) ** 4)
    return gain


def colour(audio, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Filter through `channel_response` (zero phase, same length, same RMS)."""
    audio = np.asarray(audio, np.float64)
    if audio.size == 0:
        return audio.astype(np.float32)
    size = 1 << (audio.size - 1).bit_length()
    spectrum = np.fft.rfft(audio, size)
    out = np.fft.irfft(spectrum * channel_response(rate, len(spectrum), rng), size)[:audio.size]
    out *= math.sqrt(power(audio) / max(power(out), 1e-20))
    peak = np.max(np.abs(out))
    if peak > 1.0:
        out /= peak
    return out.astype(np.float32)


# ------------------------------------------------------------ timing and pitch

def resample_length(audio, n_out: int) -> np.ndarray:
    """Band-limited resampling to exactly n_out samples (FFT method; the clip is
    zero-padded first so its ends do not wrap into each other)."""
    x = np.asarray(audio, np.float64)
    n = x.size
    if n_out == n:
        return x.astype(np.float32)
    pad = min(n, 2048)
    xp = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    m = int(round(xp.size * n_out / n))
    spectrum = np.fft.rfft(xp)
    out = np.zeros(m // 2 + 1, complex)
    k = min(spectrum.size, out.size)
    out[:k] = spectrum[:k]
    y = np.fft.irfft(out, m) * (m / xp.size)
    start = int(round(pad * n_out / n))
    y = y[start:start + n_out]
    if y.size < n_out:
        y = np.concatenate([y, np.zeros(n_out - y.size)])
    return y.astype(np.float32)


def speed(audio, factor: float) -> np.ndarray:
    """Tape-style speed change: plays `factor` times faster (factor > 1: shorter,
    higher pitched, formants up). Output length round(n / factor)."""
    return resample_length(audio, int(round(len(audio) / factor)))


def time_stretch(audio, factor: float, rate: int = 16000, frame: float = 0.040,
                 tolerance: float = 0.010) -> np.ndarray:
    """Tempo change without pitch change (WSOLA): speech `factor` times faster,
    output length round(n / factor). Each output frame is the input segment,
    within +-tolerance of where it should be, that best continues the previous one."""
    x = np.asarray(audio, np.float64)
    n_out = int(round(x.size / factor))
    size = int(round(frame * rate)) // 2 * 2
    hop = size // 2
    tol = int(round(tolerance * rate))
    window = np.hanning(size + 2)[1:-1]  # periodic-ish: overlaps to ~1 at 50 %
    n_frames = int(math.ceil(n_out / hop)) + 1
    lead = size + tol
    xp = np.concatenate([np.zeros(lead), x, np.zeros(lead + int(n_frames * hop * factor) + size)])
    y = np.zeros(n_frames * hop + size)
    norm = np.zeros_like(y)
    offset = 0  # chosen deviation of the current frame from its nominal position
    for k in range(n_frames):
        pos = lead + int(round(k * hop * factor)) + offset
        y[k * hop:k * hop + size] += xp[pos:pos + size] * window
        norm[k * hop:k * hop + size] += window
        natural = xp[pos + hop:pos + hop + size]  # what would follow seamlessly
        nominal = lead + int(round((k + 1) * hop * factor))
        region = xp[nominal - tol:nominal + tol + size]
        corr = np.correlate(region, natural, mode="valid")
        energy = np.convolve(region * region, np.ones(size), mode="valid")
        offset = int(np.argmax(corr / np.sqrt(energy + 1e-12))) - tol
    y = y[:n_out] / np.maximum(norm[:n_out], 1e-3)
    return y.astype(np.float32)


def pitch_shift(audio, semitones: float, rate: int = 16000) -> np.ndarray:
    """Pitch (and formants with it) up by `semitones`, timing kept: resample, then
    time-stretch back to the original length (same length, same timing)."""
    ratio = 2.0 ** (semitones / 12.0)
    n = len(audio)
    y = speed(audio, ratio)          # faster and higher
    y = time_stretch(y, 1.0 / ratio, rate)  # back to the original tempo
    if y.size < n:
        y = np.concatenate([y, np.zeros(n - y.size, np.float32)])
    return y[:n].astype(np.float32)


def _stft(x, size, hop, window):
    n_frames = 1 + max(0, int(math.ceil((x.size - size) / hop)))
    xp = np.concatenate([x, np.zeros(n_frames * hop + size - x.size)])
    idx = np.arange(size)[None, :] + hop * np.arange(n_frames)[:, None]
    return np.fft.rfft(xp[idx] * window, axis=1)


def _istft(spec, size, hop, window, n):
    frames = np.fft.irfft(spec, size, axis=1) * window
    y = np.zeros(hop * (len(frames) - 1) + size)
    norm = np.zeros_like(y)
    for k, f in enumerate(frames):
        y[k * hop:k * hop + size] += f
        norm[k * hop:k * hop + size] += window * window
    return y[:n] / np.maximum(norm[:n], 1e-8)


def formant_shift(audio, alpha: float, rate: int = 16000, lifter: int = 30) -> np.ndarray:
    """Move the spectral envelope (formants) by `alpha` (> 1: up, a shorter vocal
    tract) and keep the pitch: per STFT frame, the cepstrally smoothed envelope
    E(f) is replaced by E(f / alpha). Same length, same timing."""
    x = np.asarray(audio, np.float64)
    size, hop = 512, 128
    window = np.hanning(size + 1)[:-1]
    pad = size
    xp = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    spec = _stft(xp, size, hop, window)
    log_mag = np.log(np.abs(spec) + 1e-9)
    cep = np.fft.irfft(log_mag, size, axis=1)
    cep[:, lifter:size - lifter + 1] = 0.0  # keep the slow part: the envelope
    envelope = np.fft.rfft(cep, size, axis=1).real
    bins = np.arange(spec.shape[1], dtype=np.float64)
    source = np.clip(bins / alpha, 0, bins[-1])
    warped = np.stack([np.interp(source, bins, e) for e in envelope])
    spec = spec * np.exp(warped - envelope)
    y = _istft(spec, size, hop, window, xp.size)[pad:pad + x.size]
    peak = np.max(np.abs(y)) if y.size else 0.0
    if peak > 1.0:
        y /= peak
    return y.astype(np.float32)


# ----------------------------------------------------------------- the targets

def warp_controls(controls, fps: float, source_times, fill=None) -> np.ndarray:
    """Controls sampled at arbitrary times of the ORIGINAL clip (linear
    interpolation between its frames). Times outside the original clip take
    `fill` (a (C,) pose) or, with fill=None, the nearest end frame."""
    controls = np.asarray(controls, np.float32)
    times = np.arange(len(controls)) / fps
    t = np.asarray(source_times, np.float64)
    out = np.stack([np.interp(t, times, controls[:, c]) for c in range(controls.shape[1])], axis=1)
    if fill is not None:
        outside = (t < -1e-9) | (t > times[-1] + 1e-9)
        out[outside] = np.asarray(fill, np.float32)
    return out.astype(np.float32)


def warp_controls_for_speed(controls, fps: float, factor: float, n_frames: int) -> np.ndarray:
    """Targets for audio played `factor` times faster (speed or time_stretch):
    new frame i at time i/fps shows what the original showed at i/fps * factor."""
    return warp_controls(controls, fps, np.arange(n_frames) / fps * factor)


def pad_silence(audio, controls, rate: int, fps: float, before: float, after: float,
                rest=None, settle: float = LIPS_SETTLE):
    """Digital silence of `before`/`after` seconds at the ends of the audio; the
    targets are shifted by `before` and take the `rest` pose (default REST_POSE;
    pass zeros for the neutral face) in the new silence. Where the clip's edge
    frame is not at rest already, it eases to rest over `settle` seconds.
    Returns (audio, controls); the frame count follows core.phonetic.frame_count."""
    audio = np.asarray(audio, np.float32)
    controls = np.asarray(controls, np.float32)
    rest = REST_POSE if rest is None else np.asarray(rest, np.float32)
    n_before, n_after = int(round(before * rate)), int(round(after * rate))
    shift = n_before / rate
    padded = np.concatenate([np.zeros(n_before, np.float32), audio, np.zeros(n_after, np.float32)])
    n_frames = frame_count(padded.size / rate, fps)
    t = np.arange(n_frames) / fps - shift
    out = warp_controls(controls, fps, t)  # edges held outside the original...
    last = (len(controls) - 1) / fps
    distance = np.maximum(-t, 0) + np.maximum(t - last, 0)  # ...then eased to rest
    x = np.clip(distance / settle, 0.0, 1.0) if settle > 0 else (distance > 0).astype(float)
    ease = (x * x * (3 - 2 * x))[:, None]
    out = (1 - ease) * out + ease * rest[None]
    return padded, out.astype(np.float32)


def scale_phones(phones, factor: float, shift: float = 0.0):
    """(label, start, end) timings for audio `factor` times faster, then shifted
    by `shift` seconds (padding). Used to recompute teacher targets."""
    return [(label, start / factor + shift, end / factor + shift) for label, start, end in phones]
