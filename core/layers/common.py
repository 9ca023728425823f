"""Shared by the layers: per-layer random streams and column writes."""
import zlib

import numpy as np

from ..performance import Performance
from ..rig import ALL_CONTROLS


def rng_for(seed: int, layer: str) -> np.random.Generator:
    """Each layer draws from its own stream: switching one layer off, or changing its
    settings, never shifts another layer's random choices."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(layer.encode())])


def with_all_controls(performance: Performance) -> Performance:
    """Controls widened to ALL_CONTROLS (mouth first, upper face after, zeros where the
    engine gave nothing); existing columns are kept bit-identical."""
    names = tuple(performance.control_names)
    if names == ALL_CONTROLS:
        return performance.with_(controls=performance.controls.copy())
    n = performance.frame_count
    controls = np.zeros((n, len(ALL_CONTROLS)), np.float32)
    for i, name in enumerate(names):
        if name not in ALL_CONTROLS:
            raise ValueError(f"control '{name}' is not a rig control ({', '.join(ALL_CONTROLS)})")
        controls[:, ALL_CONTROLS.index(name)] = performance.controls[:, i]
    return performance.with_(controls=controls, control_names=ALL_CONTROLS)


def set_columns(performance: Performance, columns: dict) -> Performance:
    controls = performance.controls.copy()
    for name, values in columns.items():
        controls[:, performance.control_names.index(name)] = np.asarray(values, np.float32)
    return performance.with_(controls=controls)


def events_curve(frames, amplitudes, fps: float, n: int, attack_s: float, release_s: float) -> np.ndarray:
    """Sum of smooth bumps peaking at `frames`: smoothstep rise over `attack_s` before,
    smoothstep fall over `release_s` after."""
    t = np.arange(n) / fps
    out = np.zeros(n)
    for f, a in zip(frames, amplitudes):
        tp = f / fps
        # A bump is exactly 0 outside (tp - attack, tp + release): add it only there, so
        # an hour of speech costs events x bump, not events x frames.
        near = slice(max(0, int(np.floor((tp - attack_s) * fps))), min(n, int(np.ceil((tp + release_s) * fps)) + 1))
        x = np.clip((t[near] - (tp - attack_s)) / attack_s, 0, 1)
        y = np.clip((t[near] - tp) / release_s, 0, 1)
        out[near] += a * np.where(t[near] <= tp, x * x * (3 - 2 * x), 1 - y * y * (3 - 2 * y))
    return out
