"""Scoring functions of the real-face eval on constructed signals."""
import numpy as np
import pytest

from flame_lipsync.core import face_metrics as fm

FPS = 25.0


def _signal(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = np.convolve(rng.standard_normal(n + 20), np.ones(5) / 5, mode="same")[10:n + 10]
    return x


@pytest.mark.parametrize("k", [0, 3, -4, 7])
def test_shifted_copy_gives_its_lag_and_r_1(k):
    real = _signal()
    pred = np.roll(real, k)  # pred[t + k] = real[t]: late by k frames when k > 0
    r, lag_ms = fm.best_lag_correlation(pred, real, FPS)
    assert r == pytest.approx(1.0, abs=1e-9)
    assert lag_ms == pytest.approx(k * 1000 / FPS)


def test_lag_search_is_bounded_to_400_ms():
    real = _signal()
    pred = np.roll(real, 15)  # 600 ms at 25 fps: outside the window
    r, lag_ms = fm.best_lag_correlation(pred, real, FPS)
    assert abs(lag_ms) <= 400 and r < 0.99


def test_nan_frames_are_skipped():
    real = _signal()
    pred = np.roll(real, 2)
    real[50:60] = np.nan
    r, lag_ms = fm.best_lag_correlation(pred, real, FPS)
    assert r == pytest.approx(1.0, abs=1e-9) and lag_ms == pytest.approx(80.0)


def test_closure_f1_constructed():
    real = np.zeros(100, bool)
    real[[10, 11, 40, 70, 71, 72]] = True
    assert fm.closure_f1(real, real) == 1.0
    assert fm.closure_f1(np.roll(real, 1), real) == 1.0          # within the +-1 frame tolerance
    far = np.zeros(100, bool)
    far[[25, 55, 90]] = True
    assert fm.closure_f1(far, real) == 0.0
    assert fm.closure_f1(np.zeros(100, bool), real) == 0.0
    assert np.isnan(fm.closure_f1(np.zeros(100, bool), np.zeros(100, bool)))


def test_closure_f1_skips_frames_without_a_face():
    real = np.zeros(50, bool)
    real[10] = True
    pred = real.copy()
    pred[30] = True
    valid = np.ones(50, bool)
    valid[30] = False
    assert fm.closure_f1(pred, real, valid=valid) == 1.0


def test_amplitude_ratio():
    real = np.linspace(0, 10, 101)
    assert fm.amplitude_ratio(0.5 * real, real) == pytest.approx(0.5)
    assert fm.amplitude_ratio(real, real) == pytest.approx(1.0)


def test_lip_landmark_error_is_mean_of_per_frame_max():
    real = np.zeros((3, 4, 3))
    pred = real.copy()
    pred[0, 1, 0] = 2.0
    pred[1, 2, 1] = 4.0
    pred[1, 3, 1] = 1.0
    assert fm.lip_landmark_error(pred, real) == pytest.approx((2 + 4 + 0) / 3)


def test_loudness_floor_follows_the_envelope_in_the_measured_range():
    rate, fps = 16000, 25.0
    t = np.arange(rate * 2) / rate
    gate = (np.sin(2 * np.pi * 2 * t) > 0).astype(float)    # 2 Hz bursts
    samples = 0.3 * gate * np.sin(2 * np.pi * 200 * t)
    n = 50
    real = 2 + 8 * (np.sin(2 * np.pi * 2 * np.arange(n) / fps) > 0)
    floor = fm.loudness_floor(samples, rate, fps, real)
    assert floor.shape == (n,)
    assert np.percentile(floor, 95) == pytest.approx(np.percentile(real, 95), abs=1e-6)
    assert np.percentile(floor, 5) == pytest.approx(np.percentile(real, 5), abs=1e-6)
    assert fm.correlation_at(floor, real) > 0.8


def test_rms_envelope_matches_core_audio():
    from flame_lipsync.core.audio import Speech, loudness_envelope
    samples = np.random.default_rng(1).uniform(-0.5, 0.5, 16000).astype(np.float32)
    ours = fm.rms_envelope(samples, 16000, 30.0, 30)
    theirs = loudness_envelope(Speech(samples, 16000, "noise"), 30.0, 30)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_shared_offset_only_when_every_predictor_agrees():
    frame = 1000 / FPS
    assert fm.shared_offset([200, 240, 200, 160], FPS) == pytest.approx(200)
    assert fm.shared_offset([200, -120, 200, 160], FPS) == 0.0   # one disagrees: no clip offset
    assert fm.shared_offset([0, frame / 2, 0], FPS) == 0.0
