"""Emotion layer: the speech's arousal over time scales articulation and brows (Pham et
al. 2017: emotional intensity scales the activations), plus an artist preset.

Arousal (0..1, 0.5 = this speaker's ordinary) from 2 s windows of: loudness relative to
the clip's speech level, pitch range (semitone spread) and syllable rate. The mouth
gain is 1 +/- 0.15 and the brow gain 1 +/- 0.4 at intensity 1. A preset (neutral,
happy, sad, angry, surprised) adds a steady pose (cheek raise, squint, brows, a touch
of smile/stretch/jaw) and a mouth gain, all times `strength` (0..1). Sealed lips stay
sealed (core.motion's closure rule is re-applied to the mouth).
"""
from dataclasses import dataclass

import numpy as np

from ..motion import _reseal
from ..performance import Performance
from ..rig import CONTROLS
from .common import set_columns
from .prosody import Prosody, _smooth

PRESETS = {
    "neutral": {},
    "happy": {"smile": 0.35, "cheek_raise": 0.6, "squint": 0.25, "brow_raise_outer": 0.1, "mouth_gain": 1.1},
    "sad": {"brow_raise_inner": 0.45, "brow_furrow": 0.25, "mouth_gain": 0.85},
    "angry": {"brow_furrow": 0.7, "squint": 0.35, "stretch": 0.1, "mouth_gain": 1.15},
    "surprised": {"brow_raise_inner": 0.6, "brow_raise_outer": 0.6, "jaw_open": 0.05, "mouth_gain": 1.1},
}
OWN = ("squint", "cheek_raise")
BROWS = ("brow_raise_inner", "brow_raise_outer", "brow_furrow")


@dataclass
class EmotionSettings:
    enabled: bool = True
    intensity: float = 1.0      # how much the arousal estimate scales mouth and brows
    preset: str = "neutral"
    strength: float = 0.5       # preset amount, 0..1
    mouth_range: float = 0.3    # mouth gain spans 1 +/- mouth_range / 2 at intensity 1
    brow_range: float = 0.8


def arousal(prosody: Prosody) -> np.ndarray:
    fps, n = prosody.fps, prosody.frame_count
    sigma = 1.0 * fps  # ~2 s window
    speaking = (~prosody.quiet).astype(float)
    weight = _smooth(speaking, sigma) + 1e-6
    level = np.percentile(prosody.loudness_db, 90)
    loud = _smooth((prosody.loudness_db - level) * speaking, sigma) / weight      # dB re speech level
    st = prosody.semitones
    voiced = (prosody.f0 > 0).astype(float)
    vw = _smooth(voiced, sigma) + 1e-6
    mean = _smooth(st * voiced, sigma) / vw
    spread = np.sqrt(np.maximum(_smooth(st * st * voiced, sigma) / vw - mean ** 2, 0))  # semitones
    peaks = np.zeros(n)
    peaks[prosody.peaks] = 1.0
    rate = _smooth(peaks, sigma) * fps / weight                                        # syllables / s spoken
    z = 0.12 * (loud + 8.0) + 0.5 * (spread - 2.5) + 0.35 * (rate - 4.0)
    return (1 / (1 + np.exp(-z)) * (weight > 0.05) + 0.5 * (weight <= 0.05)).astype(np.float64)


def preset_pose(settings: EmotionSettings) -> dict:
    if settings.preset not in PRESETS:
        raise ValueError(f"unknown emotion preset '{settings.preset}': one of {', '.join(PRESETS)}")
    strength = float(np.clip(settings.strength, 0, 1))
    return {k: (1 + (v - 1) * strength if k == "mouth_gain" else v * strength)
            for k, v in PRESETS[settings.preset].items()}


def brow_modulation(performance: Performance, n: int):
    """(gain (T,), bias {control: (T,)}) for the brows layer from what this layer
    recorded in metadata["emotion"]; (None, None) when it did not run."""
    meta = performance.metadata.get("emotion")
    if not meta:
        return None, None
    a = np.asarray(meta["arousal"], np.float64)
    gain = 1 + meta["brow_range"] * meta["intensity"] * (a - 0.5)
    pose = meta["pose"]
    return gain, {c: np.full(n, pose.get(c, 0.0)) for c in BROWS}


def apply(performance: Performance, prosody: Prosody, settings: EmotionSettings | None = None,
          seed: int = 0) -> Performance:
    settings = settings or EmotionSettings()
    n = performance.frame_count
    if not settings.enabled:
        out = set_columns(performance, {c: np.zeros(n) for c in OWN})
        out.metadata = {k: v for k, v in out.metadata.items() if k != "emotion"}
        return out
    a = arousal(prosody)
    pose = preset_pose(settings)
    gain = (1 + settings.mouth_range * settings.intensity * (a - 0.5)) * pose.get("mouth_gain", 1.0)
    names = performance.control_names
    mouth = np.stack([performance.control(c) for c in CONTROLS], 1).astype(np.float32)
    seal = mouth[:, CONTROLS.index("lips_close")].copy()
    scaled = mouth * gain[:, None].astype(np.float32)
    for c in ("smile", "stretch", "jaw_open"):
        scaled[:, CONTROLS.index(c)] += pose.get(c, 0.0)
    scaled[:, CONTROLS.index("lips_close")] = seal   # contact is not an amplitude
    scaled = _reseal(performance, scaled)
    columns = {c: scaled[:, i] for i, c in enumerate(CONTROLS)}
    columns.update({c: np.full(n, pose.get(c, 0.0)) for c in OWN})
    out = set_columns(performance, columns)
    out.metadata = {**out.metadata, "emotion": {
        "preset": settings.preset, "strength": settings.strength, "intensity": settings.intensity,
        "brow_range": settings.brow_range, "pose": {k: v for k, v in pose.items() if k in BROWS},
        "arousal": [round(float(x), 4) for x in a]}}
    assert out.control_names == names
    return out
