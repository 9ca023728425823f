"""Scoring predicted mouths against tracked real faces (numpy only).

Signals are per video frame; NaN marks frames without a measurement (no face found) and
is skipped, never filled. Lags are in frames inside, reported in ms: positive = the
prediction is late (it shows at frame t + k what the real face showed at frame t).
"""
from __future__ import annotations

import numpy as np

MAX_LAG_MS = 400.0
MIN_OVERLAP = 8  # frames a correlation needs before it means anything


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < MIN_OVERLAP:
        return float("nan")
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def aligned(pred, real, lag: int):
    """The overlapping parts of pred and real with pred shifted by `lag` frames:
    pairs (pred[t + lag], real[t]); lag > 0 = prediction late."""
    pred, real = np.asarray(pred, np.float64), np.asarray(real, np.float64)
    n = min(len(pred), len(real))
    pred, real = pred[:n], real[:n]
    if lag >= 0:
        return pred[lag:], real[:n - lag]
    return pred[:n + lag], real[-lag:]


def correlation_at(pred, real, lag: int = 0) -> float:
    return _pearson(*aligned(pred, real, lag))


def best_lag_correlation(pred, real, fps: float, max_lag_ms: float = MAX_LAG_MS,
                         centre: int = 0) -> tuple[float, float]:
    """Highest Pearson r over lags within +-max_lag_ms (around `centre` frames) ->
    (r, lag in ms), positive lag = prediction late. (nan, nan) without enough overlap."""
    k = int(np.floor(max_lag_ms / 1000.0 * fps + 1e-9))
    best_r, best_lag = float("nan"), float("nan")
    for lag in sorted(range(centre - k, centre + k + 1), key=lambda l: (abs(l - centre), l)):
        r = correlation_at(pred, real, lag)  # ties go to the lag nearest the centre
        if np.isfinite(r) and not (r <= best_r + 1e-12):
            best_r, best_lag = r, lag
    return best_r, (best_lag * 1000.0 / fps if np.isfinite(best_lag) else float("nan"))


def shared_offset(lags_ms, fps: float, tolerance_frames: float = 2.0) -> float:
    """A lag every predictor on a clip shares (loudness included) is the clip's own
    audio/video offset: the median lag when every lag lies within `tolerance_frames`
    of it and it is at least one frame; else 0. In ms (positive = audio early in the
    video: every prediction looks late)."""
    lags = np.asarray([l for l in lags_ms if np.isfinite(l)], np.float64)
    if len(lags) < 2:
        return 0.0
    median = float(np.median(lags))
    frame_ms = 1000.0 / fps
    if abs(median) < frame_ms - 1e-6 or np.any(np.abs(lags - median) > tolerance_frames * frame_ms + 1e-6):
        return 0.0
    return round(median / frame_ms) * frame_ms


def closure_f1(pred_closed, real_closed, tolerance: int = 1, valid=None) -> float:
    """F1 of closure frames with +-`tolerance` frames: a predicted closed frame counts as
    right if the real lips touch within tolerance of it, and a real closed frame as found
    if ours touch within tolerance. Frames where `valid` is False (no face) are skipped.
    nan when neither side closes."""
    pred = np.asarray(pred_closed, bool)
    real = np.asarray(real_closed, bool)
    n = min(len(pred), len(real))
    pred, real = pred[:n].copy(), real[:n].copy()
    ok = np.ones(n, bool) if valid is None else np.asarray(valid, bool)[:n]
    pred &= ok
    real &= ok

    def dilate(x):
        out = x.copy()
        for d in range(1, tolerance + 1):
            out[d:] |= x[:-d]
            out[:-d] |= x[d:]
        return out
    if not pred.any() and not real.any():
        return float("nan")
    if not pred.any() or not real.any():
        return 0.0
    precision = (pred & dilate(real)).sum() / pred.sum()
    recall = (real & dilate(pred)).sum() / real.sum()
    return float(2 * precision * recall / (precision + recall)) if precision + recall > 0 else 0.0


def amplitude_ratio(ours, real, q: float = 95.0) -> float:
    """p95 of our aperture / p95 of the real one (both mm)."""
    ours, real = np.asarray(ours, np.float64), np.asarray(real, np.float64)
    top = np.nanpercentile(real, q)
    return float(np.nanpercentile(ours, q) / top) if top > 0 else float("nan")


def lip_landmark_error(pred, real) -> float:
    """(T, L, 3) landmarks in mm -> per frame the largest distance over the L landmarks,
    averaged over frames with a measurement (the field's LVE, on lips)."""
    pred, real = np.asarray(pred, np.float64), np.asarray(real, np.float64)
    n = min(len(pred), len(real))
    worst = np.linalg.norm(pred[:n] - real[:n], axis=-1).max(-1)
    return float(np.nanmean(worst)) if np.isfinite(worst).any() else float("nan")


def rms_envelope(samples, rate: int, fps: float, n_frames: int) -> np.ndarray:
    """Linear RMS per video frame, a window of two frames centred on t = i / fps (the
    same window as core.audio.loudness_envelope); frames past the audio are 0."""
    x = np.asarray(samples, np.float64)
    energy = np.concatenate(([0.0], np.cumsum(x * x)))
    centres = np.arange(n_frames) * (rate / fps)
    half = rate / fps
    lo = np.clip(np.round(centres - half), 0, x.size).astype(np.int64)
    hi = np.clip(np.round(centres + half), 0, x.size).astype(np.int64)
    count = hi - lo
    rms = np.sqrt(np.maximum(energy[hi] - energy[lo], 0.0) / np.maximum(count, 1))
    return np.where(count > 0, rms, 0.0)


def loudness_floor(samples, rate: int, fps: float, real, q=(5.0, 95.0)) -> np.ndarray:
    """The floor predictor: the audio's RMS envelope at the video fps, mapped linearly so
    its p5..p95 spans the measured aperture's p5..p95 (mm). An engine that does not beat
    this has learnt nothing about mouths."""
    real = np.asarray(real, np.float64)
    env = rms_envelope(samples, rate, fps, len(real))
    e_lo, e_hi = np.percentile(env, q)
    r_lo, r_hi = np.nanpercentile(real, q)
    span = e_hi - e_lo
    if span <= 0:
        return np.full(len(real), r_lo)
    return r_lo + (env - e_lo) / span * (r_hi - r_lo)
