"""Brows layer: quick raises on pitch accents and emphasis, a light furrow on loud low
stretches.

About 71 % of quick brow raises coincide with pitch rises (the rest go with emphasis:
loud stressed syllables without a rise). Raises: ~150 ms up, ~450 ms down, inner and
outer together (inner a little more), amplitude with the size of the rise; at most one
raise per `min_gap_s`. The emotion layer (when on) scales them by the speech's arousal
and adds its preset's brow pose.
"""
from dataclasses import dataclass

import numpy as np

from ..performance import Performance
from .common import events_curve, rng_for, set_columns
from .prosody import Prosody

CONTROLS = ("brow_raise_inner", "brow_raise_outer", "brow_furrow")


@dataclass
class BrowSettings:
    enabled: bool = True
    intensity: float = 1.0
    accent_share: float = 0.71    # share of raises placed on pitch accents
    raises_per_min: float = 12.0  # at most (fewer if the speech has fewer accents)
    amplitude: float = 0.45       # raise weight for a 4-semitone rise
    min_gap_s: float = 1.2
    attack_s: float = 0.15
    release_s: float = 0.45
    furrow: float = 0.2           # furrow weight on loud, low-pitched stretches


def raise_events(prosody: Prosody, settings: BrowSettings, rng: np.random.Generator):
    """(frames, amplitudes, on_accent flags) of quick raises."""
    fps, n = prosody.fps, prosody.frame_count
    budget = max(1, int(round(settings.raises_per_min * n / fps / 60.0)))
    gap = int(round(settings.min_gap_s * fps))
    accents = [(int(f), float(r)) for f, r in zip(prosody.accents, prosody.rise)]
    accents.sort(key=lambda a: -a[1])
    chosen = []
    n_accent = int(round(budget * settings.accent_share))
    for f, r in accents:
        if len([c for c in chosen if c[2]]) >= n_accent:
            break
        if all(abs(f - c[0]) >= gap for c in chosen):
            chosen.append((f, min(1.0, r / 4.0), True))
    # Emphasis without a rise: the most stressed syllables away from any accent.
    n_emph = int(round(len(chosen) * (1 - settings.accent_share) / max(settings.accent_share, 1e-6)))
    order = np.argsort(-prosody.stress, kind="stable")
    accent_frames = set(int(f) for f in prosody.accents)
    for k in order:
        if n_emph <= 0:
            break
        f = int(prosody.peaks[k])
        if prosody.stress[k] < 3.0:
            break
        if any(abs(f - a) < int(0.2 * fps) for a in accent_frames):
            continue
        if all(abs(f - c[0]) >= gap for c in chosen):
            chosen.append((f, 0.6 + 0.2 * rng.random(), False))
            n_emph -= 1
    chosen.sort()
    frames = np.array([c[0] for c in chosen], int)
    amps = np.array([c[1] for c in chosen]) * settings.amplitude * (0.85 + 0.3 * rng.random(len(chosen)))
    return frames, amps, np.array([c[2] for c in chosen], bool)


def apply(performance: Performance, prosody: Prosody, settings: BrowSettings | None = None,
          seed: int = 0, gain: np.ndarray | None = None, bias: dict | None = None) -> Performance:
    """`gain` (T,) and `bias` {control: (T,)} come from the emotion layer."""
    settings = settings or BrowSettings()
    n = performance.frame_count
    bias = bias or {}
    base = {c: np.asarray(bias.get(c, np.zeros(n)), np.float64) for c in CONTROLS}
    if not settings.enabled:
        return set_columns(performance, {c: np.clip(base[c], 0, 1) for c in CONTROLS})
    rng = rng_for(seed, "brows")
    frames, amps, on_accent = raise_events(prosody, settings, rng)
    bump = events_curve(frames, amps, prosody.fps, n, settings.attack_s, settings.release_s)
    loud = prosody.loudness_db - np.percentile(prosody.loudness_db, 90)
    low = prosody.semitones < -1.0
    furrow_on = (~prosody.quiet & low & (loud > -6)).astype(float)
    radius = max(1, int(0.3 * prosody.fps))
    kernel = np.hanning(2 * radius + 1)
    furrow = np.convolve(furrow_on, kernel / kernel.sum(), mode="same") * settings.furrow
    g = np.ones(n) if gain is None else np.asarray(gain, np.float64)
    k = settings.intensity * g
    out = set_columns(performance, {
        "brow_raise_inner": np.clip(base["brow_raise_inner"] + k * bump, 0, 1),
        "brow_raise_outer": np.clip(base["brow_raise_outer"] + k * 0.8 * bump, 0, 1),
        "brow_furrow": np.clip(base["brow_furrow"] + k * furrow, 0, 1),
    })
    out.metadata = {**out.metadata, "brow_raises": {
        "frames": frames.tolist(), "on_pitch_rise": on_accent.tolist()}}
    return out
