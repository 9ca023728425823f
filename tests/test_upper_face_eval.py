"""The upper-face eval's detectors and scores on constructed signals (no video needed)."""
import numpy as np
import pytest

from flame_lipsync.tools import upper_face_eval as ufe

FPS = 25.0


def _eyes(n, blinks, depth=0.7, frames=3, open_mm=9.0, noise=0.15, seed=0, one_eye=()):
    """(n, 2) lid gaps: open with tracker-like noise, a `frames`-long dip per blink onset."""
    rng = np.random.default_rng(seed)
    x = open_mm + noise * rng.standard_normal((n, 2))
    x += np.linspace(0, -1.5, n)[:, None]              # slow drift (looking down): not blinks
    for b in blinks:
        x[b:b + frames] *= 1 - depth
    for b in one_eye:                                  # a dip in one eye only: not a blink
        x[b:b + frames, 0] *= 1 - depth
    return x


def test_detects_constructed_blinks_and_nothing_else():
    onsets = [20, 70, 130, 200, 240]
    eyes = _eyes(300, onsets, one_eye=[160])
    found = ufe.detect_blinks(eyes, FPS)
    assert [b[0] for b in found] == onsets
    assert all(first <= deepest <= last for first, deepest, last in found)


def test_shallow_dips_long_closures_and_missing_faces_are_not_blinks():
    eyes = _eyes(300, [40], depth=0.2)                  # 20 % narrowing: below the threshold
    eyes[100:130] *= 0.2                                # 1.2 s closed: not a blink
    eyes[200:210] = np.nan                              # no face
    assert ufe.detect_blinks(eyes, FPS) == []


def test_blink_rate_counts_per_minute():
    n = int(60 * FPS)
    onsets = list(range(30, n - 30, int(3 * FPS)))     # every 3 s: 20 / min
    found = ufe.detect_blinks(_eyes(n, onsets, seed=2), FPS)
    assert len(found) / (n / FPS / 60) == pytest.approx(len(onsets))
    assert len(onsets) == 20


def test_pause_share():
    pauses = [(50, 60), (200, 230)]
    frames = [45, 55, 66, 120, 235, 300]
    hit = ufe.in_pauses(frames, pauses, FPS, margin_s=0.2)   # 5 frames margin
    assert hit.tolist() == [True, True, False, False, True, False]


def test_brow_raises_and_their_timing_against_accents():
    n = 400
    rng = np.random.default_rng(1)
    brow = 0.1 * rng.standard_normal(n) + np.linspace(0, 2, n)   # drift is not a raise
    t = np.arange(n)
    for peak in (80, 200, 320):
        brow += 2.0 * np.exp(-0.5 * ((t - peak) / 3.0) ** 2)
    raises = ufe.detect_raises(brow, FPS)
    assert np.all(np.abs(raises - [80, 200, 320]) <= 1)
    timing = ufe.accent_timing(raises, [78, 260, 322], FPS, window_s=0.3)
    assert timing["raises"] == 3
    assert timing["on_accent_share"] == pytest.approx(2 / 3)    # 200 is 2.4 s from any accent
    assert timing["median_lag_s"] == pytest.approx(0.0, abs=0.1)


def test_motion_std_pearson_and_shift():
    still = np.zeros((50, 4, 3))
    assert np.allclose(ufe.motion_std(still), 0)
    moving = still.copy()
    moving[::5, :, 0] = 1.0                  # 1 mm off the median in a fifth of the frames
    assert np.allclose(ufe.motion_std(moving), 0.4)
    a = np.sin(np.arange(100) / 5)
    assert ufe.pearson(a, 2 * a + 1) == pytest.approx(1.0)
    assert ufe.pearson(a, np.zeros(100)) is None
    s = ufe.shift(np.arange(5.0), 2)
    assert s[:3].tolist() == [2, 3, 4] and np.isnan(s[3:]).all()
