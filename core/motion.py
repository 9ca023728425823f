"""Post-processing of a Performance: intensity and smoothing.

Both keep the closures the audience checks: lips that were sealed on P/B/M
stay sealed whatever the intensity or smoothing.
"""
import numpy as np

from .coarticulation import enforce_closures
from .performance import Performance
from .rig import CONTROLS

_SEAL = CONTROLS.index("lips_close")


def _phones(performance: Performance):
    from .metrics import RefPhone  # (label, start, end) records
    return [RefPhone(*p) for p in performance.metadata.get("phones", [])]


def _reseal(performance: Performance, controls: np.ndarray) -> np.ndarray:
    return np.clip(enforce_closures(controls, _phones(performance), performance.fps), 0.0, 2.0)


def apply_intensity(performance: Performance, intensity: float) -> Performance:
    """Scale the articulation (0 = still, 1 = as engineered, up to 2 = exaggerated).
    Lip contact is not an amplitude: sealed lips stay sealed."""
    if intensity < 0:
        raise ValueError(f"intensity must be >= 0, got {intensity}")
    controls = performance.controls * np.float32(intensity)
    controls[:, _SEAL] = np.minimum(performance.controls[:, _SEAL], 1.0) * min(intensity, 1.0)
    return performance.with_(controls=_reseal(performance, controls), offsets=None)


def smooth(performance: Performance, amount: float) -> Performance:
    """Gaussian smoothing over time; `amount` is sigma in frames at 30 fps
    (scaled to the performance's fps so it means the same time at any rate)."""
    if amount <= 0:
        return performance
    controls = smooth_controls(performance.controls, performance.fps, amount)
    return performance.with_(controls=_reseal(performance, controls), offsets=None)


def smooth_controls(controls: np.ndarray, fps: float, amount: float) -> np.ndarray:
    """(T, C) Gaussian-smoothed over time, sigma = `amount` frames at 30 fps."""
    if amount <= 0:
        return np.array(controls, np.float32)  # a copy, as when smoothing
    sigma = amount * fps / 30.0
    radius = max(1, int(np.ceil(3 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(controls, ((radius, radius), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, c], kernel, mode="valid")
                     for c in range(padded.shape[1])], 1).astype(np.float32)


def predicted_closures(controls: np.ndarray, fps: float, threshold: float, evidence=None,
                       peak: float | None = None):
    """A network's estimate of lip closure is soft: spans where it rises above
    `threshold` become bilabial closures (as timed "M" phones), to be sealed
    exactly as the phonetic engine seals P/B/M. The evidence is the predicted
    lips_close, or `evidence` (T,) when given (a phone head's P(M|P|B)).
    Hysteresis: with `peak`, a span counts only if the evidence reaches `peak`
    somewhere in it (a confident detection, timed by where it stays above
    `threshold`). Both are chosen on held-out training voices, not on test speech."""
    from .metrics import RefPhone
    signal = controls[:, _SEAL] if evidence is None else np.asarray(evidence)
    above = (signal >= threshold).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], above, [0]])))
    peak = threshold if peak is None else peak
    return [RefPhone("M", start / fps, (end - 1) / fps) for start, end in zip(edges[::2], edges[1::2])
            if signal[start:end].max() >= peak]
