"""Head layer: rotation (pitch, yaw, roll) in radians from prosody.

Nods (pitch, chin down then back, ~0.5 s: the 1-2 Hz band) on stressed syllables,
scaled by stress; a posture shift (yaw/roll/pitch offset, eased over ~0.6 s) after each
pause; slow drift in between. Each axis is then scaled to a target standard deviation
(`std_deg`), the one number a tracked speaker gives per axis: the defaults are set just
below the tracked speakers' median (tools/upper_face_eval.py). Axes:
Performance.head_rotation (pitch about +x, yaw about +y, roll about +z).
"""
from dataclasses import dataclass

import numpy as np

from ..performance import Performance
from .common import events_curve, rng_for
from .prosody import Prosody, _smooth


@dataclass
class HeadSettings:
    enabled: bool = True
    intensity: float = 1.0
    # pitch, yaw, roll at intensity 1: from the tracked speakers (tools/upper_face_eval.py,
    # 32 clips >= 4 s of ../shared/assets/video): median per-clip std 2.42 / 2.53 / 2.29 deg,
    # 2.38 / 2.52 / 2.28 with the tracker's frame-to-frame noise removed; set just below.
    std_deg: tuple = (2.3, 2.5, 2.2)
    nod_s: float = 0.25                # half-period of a nod (0.5 s = 2 Hz full cycle)
    shift_s: float = 0.6               # ease time of a posture shift after a pause


def rotation(prosody: Prosody, settings: HeadSettings, rng: np.random.Generator) -> np.ndarray:
    fps, n = prosody.fps, prosody.frame_count
    # Nods on the stressed syllables (prominence > 2 dB), bigger on pitch accents too.
    strong = prosody.stress > 2.0
    frames = prosody.peaks[strong]
    amps = np.clip(prosody.stress[strong] / 8.0, 0, 1)
    accent = np.isin(frames, prosody.accents)
    amps = amps * np.where(accent, 1.3, 1.0)
    nods = events_curve(frames, amps, fps, n, settings.nod_s, settings.nod_s * 1.4)
    # Posture: piecewise targets changing after each pause, eased; plus slow drift.
    t_end = [last for _, last in prosody.pauses]
    targets = np.zeros((n, 3))
    current = rng.normal(0, 1, 3) * [0.3, 0.6, 0.5]
    ease = max(1, int(settings.shift_s * fps))
    previous = current.copy()
    start = 0
    for last in t_end + [n]:
        seg = slice(start, min(last + 1, n))
        idx = np.arange(seg.start, seg.stop)
        x = np.clip((idx - start) / ease, 0, 1)
        s = (x * x * (3 - 2 * x))[:, None]
        targets[seg] = previous + s * (current - previous)
        previous, current = current, rng.normal(0, 1, 3) * [0.3, 0.6, 0.5]
        start = min(last + 1, n)
    drift = np.stack([_smooth(rng.normal(0, 1, n), 0.8 * fps) for _ in range(3)], 1)
    drift /= np.maximum(drift.std(0), 1e-9)
    speaking = _smooth((~prosody.quiet).astype(float), 0.2 * fps)[:, None]
    raw = targets + 0.35 * drift * (0.4 + 0.6 * speaking)
    raw[:, 0] += 1.5 * nods
    raw -= raw.mean(0)
    std = raw.std(0)
    scale = np.radians(np.asarray(settings.std_deg, float)) * settings.intensity / np.maximum(std, 1e-9)
    return (raw * scale).astype(np.float32)


def apply(performance: Performance, prosody: Prosody, settings: HeadSettings | None = None,
          seed: int = 0) -> Performance:
    settings = settings or HeadSettings()
    if not settings.enabled:
        return performance.with_(head_rotation=None)
    return performance.with_(head_rotation=rotation(prosody, settings, rng_for(seed, "head")))
