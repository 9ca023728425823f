"""Eyes layer: blinks timed by the speech.

People in conversation blink about 26 times a minute (17 at rest), mostly at the ends
of utterances and in pauses; a blink closes in ~100 ms, stays shut <= 300 ms (usually
far less) and opens in ~100-150 ms. Here: a blink at most pauses (just after the
phrase ends), the rest of the rate spread through the speech by a renewal process
with a refractory gap, louder stretches avoided. Both eyes blink together.
Gaze saccades are not generated (FLAME's eyeballs are part of the mesh; rotating them
is left to a later rig control).
"""
from dataclasses import dataclass

import numpy as np

from ..performance import Performance
from .common import rng_for, set_columns
from .prosody import Prosody

CONTROLS = ("blink_left", "blink_right")


@dataclass
class EyeSettings:
    enabled: bool = True
    intensity: float = 1.0        # 1 = lids meet; 0.5 = half blinks
    rate: float = 26.0            # blinks per minute while speaking
    rest_rate: float = 17.0       # blinks per minute in long silences (> 2 s)
    pause_share: float = 0.8      # probability that a pause (>= 250 ms) gets a blink
    close_s: float = 0.100
    hold_s: tuple = (0.03, 0.12)  # closed, uniform (at least one frame fully closed)
    open_s: tuple = (0.10, 0.15)
    refractory_s: float = 1.0     # no two blinks closer than this


def blink_times(prosody: Prosody, settings: EyeSettings, rng: np.random.Generator) -> list:
    """Blink onsets (s), sorted."""
    fps, n = prosody.fps, prosody.frame_count
    duration = n / fps
    quiet_long = sum(max(0, b - a + 1) for a, b in prosody.pauses if (b - a + 1) / fps > 2.0) / fps
    target = (settings.rate * (duration - quiet_long) + settings.rest_rate * quiet_long) / 60.0
    onsets = []
    for first, last in prosody.pauses:
        if first == 0:          # silence before the first word: not a phrase end
            continue
        if rng.random() < settings.pause_share:
            onsets.append(first / fps + rng.uniform(0.0, 0.15))
        # Long silences: resting blinks inside.
        span = (last - first + 1) / fps
        if span > 2.0:
            t = first / fps + rng.exponential(60.0 / settings.rest_rate)
            while t < last / fps - 0.4:
                onsets.append(t)
                t += settings.refractory_s + rng.exponential(60.0 / settings.rest_rate)
    # Fill to the target with speech-time blinks, preferring softer frames.
    need = int(round(target)) - len(onsets)
    if need > 0:
        weight = np.clip(-(prosody.loudness_db - np.percentile(prosody.loudness_db, 90)), 1.0, 30.0)
        weight = weight / weight.sum()
        tries = 0
        while need > 0 and tries < 50 * (need + 1):
            tries += 1
            t = rng.choice(n, p=weight) / fps
            if t > duration - 0.3 or any(abs(t - o) < settings.refractory_s for o in onsets):
                continue
            onsets.append(t)
            need -= 1
    onsets = sorted(onsets)
    kept = []
    for t in onsets:  # the refractory gap also between pause blinks
        if not kept or t - kept[-1] >= settings.refractory_s:
            kept.append(t)
    return kept


def blink_curve(onsets, fps: float, n: int, settings: EyeSettings, rng: np.random.Generator) -> np.ndarray:
    """(n,) lid closure 0..1: smoothstep close, hold, smoothstep open."""
    t = np.arange(n) / fps
    out = np.zeros(n)
    for t0 in onsets:
        close = settings.close_s
        hold = max(rng.uniform(*settings.hold_s), 1.0 / fps)
        opening = rng.uniform(*settings.open_s)
        x = np.clip((t - t0) / close, 0, 1)
        up = x * x * (3 - 2 * x)
        y = np.clip((t - t0 - close - hold) / opening, 0, 1)
        down = 1 - y * y * (3 - 2 * y)
        # Frame times may straddle the closed hold: make the nearest frame fully shut.
        shape = np.where(t < t0 + close, up, np.where(t < t0 + close + hold, 1.0, down))
        centre = int(round((t0 + close + hold / 2) * fps))
        if 0 <= centre < n:
            shape[centre] = 1.0
        out = np.maximum(out, shape)
    return out


def apply(performance: Performance, prosody: Prosody, settings: EyeSettings | None = None,
          seed: int = 0) -> Performance:
    settings = settings or EyeSettings()
    n = performance.frame_count
    if not settings.enabled:
        return set_columns(performance, {c: np.zeros(n) for c in CONTROLS})
    rng = rng_for(seed, "eyes")
    onsets = blink_times(prosody, settings, rng)
    curve = blink_curve(onsets, performance.fps, n, settings, rng) * settings.intensity
    # A squint (emotion layer) already narrows the lids: the blink travels the rest.
    if "squint" in performance.control_names:
        curve = np.minimum(curve, 1.0 - 0.45 * performance.control("squint"))
    out = set_columns(performance, {c: curve for c in CONTROLS})
    out.metadata = {**out.metadata, "blinks": [round(t, 3) for t in onsets]}
    return out
