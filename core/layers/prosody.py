"""What the upper-face layers hear: per-frame loudness, F0, voicing, pauses, syllable
peaks and pitch accents, from the samples alone (numpy; no librosa, no transcript).

Computed once per clip (`analyse`) and shared by the eyes, brows, head and emotion
layers, so switching one layer off does not change what the others hear.
"""
from dataclasses import dataclass

import bisect

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..audio import Speech, loudness_envelope

F0_MIN, F0_MAX = 70.0, 400.0   # Hz, adult speech
VOICING = 0.45                 # normalised autocorrelation peak for a voiced frame
PAUSE_MIN = 0.25               # s of quiet that count as a pause
QUIET_DB = 18.0                # dB below the clip's speech level (90th percentile) = quiet
F0_BLOCK = 512                 # frames per FFT block (~30 MB): memory stays flat on an hour of speech


@dataclass
class Prosody:
    fps: float
    loudness_db: np.ndarray   # (T,) dB re full scale
    quiet: np.ndarray         # (T,) bool: not speaking
    f0: np.ndarray            # (T,) Hz, 0 where unvoiced
    semitones: np.ndarray     # (T,) F0 in semitones re the clip's median F0, interpolated over gaps, smoothed
    pauses: list              # [(first, last)] frames of quiet spans >= PAUSE_MIN (inside or at the ends)
    peaks: np.ndarray         # frames of syllable (loudness) peaks in speech
    stress: np.ndarray        # (len(peaks),) prominence of each peak, dB over its surroundings
    accents: np.ndarray       # frames of pitch accents (F0 rises)
    rise: np.ndarray          # (len(accents),) semitones risen into each accent

    @property
    def frame_count(self) -> int:
        return len(self.loudness_db)


def _smooth(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    if sigma_frames <= 0:
        return x.astype(np.float64)
    radius = max(1, int(3 * sigma_frames))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    kernel /= kernel.sum()
    return np.convolve(np.pad(x.astype(np.float64), radius, mode="edge"), kernel, mode="valid")


def f0_track(speech: Speech, fps: float, n_frames: int, among=None) -> tuple[np.ndarray, np.ndarray]:
    """(f0 Hz, voicing strength) per animation frame: normalised autocorrelation of a
    40 ms Hann window centred on t = i / fps (FFT), parabolic peak refinement. `among`:
    a (n_frames,) mask of the frames worth it (the others get 0, 0: quiet frames are
    never voiced, and F0 is most of what the layers cost)."""
    rate = speech.rate
    win = int(round(0.040 * rate))
    samples = speech.samples
    padded_len = len(samples) + win // 2 + win  # the samples with win/2 zeros before, win after
    starts = np.clip(np.round(np.arange(n_frames) * rate / fps).astype(int), 0, padded_len - win)
    n_fft = _fast_length(2 * win - 1)  # no circular wrap for lags < win
    hann = np.hanning(win)
    # Normalise by the window's own autocorrelation (unbiased) and the energy.
    w_ac = np.fft.irfft(np.abs(np.fft.rfft(hann, n_fft)) ** 2, n_fft)[:win]
    lo, hi = int(rate / F0_MAX), int(rate / F0_MIN)
    wanted = np.ones(n_frames, bool) if among is None else np.asarray(among, bool)
    f0, strength = np.zeros(n_frames), np.zeros(n_frames)
    for first in range(0, n_frames, F0_BLOCK):  # blocks of frames, so of samples too
        block = first + np.flatnonzero(wanted[first:first + F0_BLOCK])
        if len(block):
            f0[block], strength[block] = _f0_frames(samples, starts[block], win, n_fft, hann, w_ac, lo, hi, rate)
    return f0, strength


def _fast_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: FFT sizes pocketfft does fastest."""
    best = 1 << int(np.ceil(np.log2(n)))
    p2 = 1
    while p2 < best:
        p3 = p2
        while p3 < best:
            p5 = p3
            while p5 < n:
                p5 *= 5
            best = min(best, p5)
            p3 *= 3
        p2 *= 2
    return best


def _padded_span(samples: np.ndarray, first: int, end: int, before: int) -> np.ndarray:
    """[first, end) of the samples zero-padded by `before` at the start (and zeros past the
    end), as float64, without padding the whole clip."""
    out = np.zeros(end - first)
    a, b = max(first - before, 0), min(end - before, len(samples))
    if b > a:
        out[a + before - first: b + before - first] = samples[a:b]
    return out


def _f0_frames(samples, starts, win, n_fft, hann, w_ac, lo, hi, rate):
    x = _padded_span(samples, int(starts[0]), int(starts[-1]) + win, win // 2)
    frames = x[(starts - starts[0])[:, None] + np.arange(win)[None]]
    frames = frames - frames.mean(1, keepdims=True)
    frames *= hann[None]
    spectrum = np.fft.rfft(frames, n_fft)
    ac = np.fft.irfft(np.abs(spectrum) ** 2, n_fft)[:, :win]
    ac = ac / np.maximum(w_ac[None], 1e-9) * w_ac[0]
    ac = ac / np.maximum(ac[:, :1], 1e-12)
    band = ac[:, lo:hi]
    k = band.argmax(1)
    rows = np.arange(len(band))
    strength = band[rows, k]
    # Parabolic refinement of the lag.
    left = band[rows, np.clip(k - 1, 0, band.shape[1] - 1)]
    right = band[rows, np.clip(k + 1, 0, band.shape[1] - 1)]
    denom = left - 2 * strength + right
    safe = np.where(np.abs(denom) > 1e-12, denom, 1.0)
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / safe, 0.0)
    lag = lo + k + np.clip(shift, -0.5, 0.5)
    return rate / lag, strength


def _window_median(values: np.ndarray, keep: np.ndarray, radius: int) -> np.ndarray:
    """Median of the kept values within +-radius frames of each frame (0 where none)."""
    padded = np.pad(np.where(keep, values, np.nan), radius, constant_values=np.nan)
    windows = sliding_window_view(padded, 2 * radius + 1)
    out = np.zeros(len(values))
    keep_any = sliding_window_view(np.pad(keep, radius), 2 * radius + 1).any(1)
    out[keep_any] = np.nanmedian(windows[keep_any], axis=1)
    return out


def _running_min(values: np.ndarray, back: int) -> np.ndarray:
    """min(values[i - back : i + 1]) for every i (the window truncated at the start)."""
    padded = np.pad(values, (back, 0), constant_values=np.inf)
    return sliding_window_view(padded, back + 1).min(1)


def analyse(speech: Speech, fps: float, n_frames: int) -> Prosody:
    loud = loudness_envelope(speech, fps, n_frames).astype(np.float64)
    db = 20 * np.log10(np.maximum(loud, 1e-5))
    level = np.percentile(db, 90)
    quiet = _smooth(db, 0.03 * fps) < level - QUIET_DB
    f0, strength = f0_track(speech, fps, n_frames, among=~quiet)
    voiced = (strength > VOICING) & ~quiet
    f0 = np.where(voiced, f0, 0.0)

    # Pitch in semitones, gaps filled by interpolation, smoothed (~50 ms).
    if voiced.sum() >= 2:
        ref = np.median(f0[voiced])
        st = 12 * np.log2(np.where(voiced, f0, ref) / ref)
        # Octave errors: a frame more than 7 st from its neighbours' median is dropped.
        med = _window_median(st, voiced, 4)
        good = voiced & (np.abs(st - med) < 7)
        idx = np.flatnonzero(good) if good.sum() >= 2 else np.flatnonzero(voiced)
        semitones = _smooth(np.interp(np.arange(n_frames), idx, st[idx]), 0.05 * fps)
    else:
        good = voiced
        semitones = np.zeros(n_frames)

    pauses = _spans(quiet, int(np.ceil(PAUSE_MIN * fps)))

    # Syllable peaks: local maxima of the smoothed loudness while speaking.
    smooth_db = _smooth(db, 0.025 * fps)
    around = _smooth(db, 0.25 * fps)
    is_peak = np.r_[False, (smooth_db[1:-1] > smooth_db[:-2]) & (smooth_db[1:-1] >= smooth_db[2:]), False]
    peaks = np.flatnonzero(is_peak & ~quiet & (smooth_db > level - 12))
    peaks = _thin(peaks, smooth_db, int(round(0.12 * fps)))
    stress = smooth_db[peaks] - around[peaks]

    # Pitch accents: voiced maxima of F0 after a rise of >= 1.5 st within 300 ms.
    back = max(1, int(round(0.3 * fps)))
    is_max = np.r_[False, (semitones[1:-1] > semitones[:-2]) & (semitones[1:-1] >= semitones[2:]), False]
    low_before = _running_min(semitones, back)
    rise_all = semitones - low_before
    accents = np.flatnonzero(is_max & good & (rise_all >= 1.5))
    accents = _thin(accents, rise_all, int(round(0.25 * fps)))
    return Prosody(fps=fps, loudness_db=db, quiet=quiet, f0=f0, semitones=semitones, pauses=pauses,
                   peaks=peaks, stress=stress, accents=accents, rise=rise_all[accents])


def _spans(mask: np.ndarray, min_len: int) -> list:
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_len]


def _thin(frames: np.ndarray, score: np.ndarray, gap: int) -> np.ndarray:
    """Keep the strongest of events closer than `gap` frames."""
    kept = []  # sorted: only the nearest kept event on each side can be too close
    for i in frames[np.argsort(-score[frames], kind="stable")]:
        at = bisect.bisect_left(kept, i)
        if (at == 0 or i - kept[at - 1] >= gap) and (at == len(kept) or kept[at] - i >= gap):
            kept.insert(at, int(i))
    return np.array(kept, dtype=int)
