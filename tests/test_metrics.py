"""Metrics on constructed sequences whose answers are known by construction."""
import json
import math

import numpy as np
import pytest

from flame_lipsync.core.flame import LOWER_LIP_EDGE, UPPER_LIP_EDGE, VERTEX_COUNT
from flame_lipsync.core.metrics import (
    OPENNESS, RefPhone, best_lag, bilabial_closure_recall, jitter, lip_gap,
    lip_vertex_error, lipsync_report, load_reference_phones, loudness_correlation,
    mean_vertex_error, open_vowel_rate, pause_rest_rate, pauses, phone_openness,
    rest_rate_in_silence, sync_lag, upper_face_dynamics_deviation,
)

FPS = 30
REST = 0.002  # neutral FLAME lip gap, metres
LIPS = [UPPER_LIP_EDGE, LOWER_LIP_EDGE]

# "ma pee bah" framed by silence; every boundary is a whole frame at 30 fps.
PHONES = [
    RefPhone("SIL", 0.0, 0.5),
    RefPhone("M", 0.5, 0.6),
    RefPhone("AA", 0.6, 0.8),
    RefPhone("P", 0.8, 0.9),
    RefPhone("IY", 0.9, 1.0),
    RefPhone("B", 1.0, 1.1),
    RefPhone("AE", 1.1, 1.3),
    RefPhone("SIL", 1.3, 2.0),
]
N = 60  # 2 s


def frames(start, end):
    """Frame indices whose time lies in [start, end)."""
    return slice(round(start * FPS), round(end * FPS))


def talking_gap(closed=0.0, open_=0.010, silent=REST):
    """Gap per frame: `closed` on M/P/B, `open_` on vowels, `silent` in SIL."""
    gap = np.full(N, silent)
    for p in PHONES:
        if p.label in ("M", "P", "B"):
            gap[frames(p.start, p.end)] = closed
        elif p.label != "SIL":
            gap[frames(p.start, p.end)] = open_
    return gap


def head_with_gap(gap):
    """(T, 5023, 3) head where only the two lip-edge vertices move, apart in y."""
    v = np.zeros((len(gap), VERTEX_COUNT, 3))
    v[:, UPPER_LIP_EDGE, 1] = gap / 2
    v[:, LOWER_LIP_EDGE, 1] = -gap / 2
    return v


def shifted(signal, k):
    """out[t] = signal[t - k], edges padded with the nearest value."""
    idx = np.clip(np.arange(len(signal)) - k, 0, len(signal) - 1)
    return signal[idx]


def test_lip_gap_measures_edge_vertices():
    gap = talking_gap()
    np.testing.assert_allclose(lip_gap(head_with_gap(gap)), gap)


def test_bilabial_recall_closures_at_mpb():
    assert bilabial_closure_recall(talking_gap(), PHONES, FPS) == 1.0


def test_bilabial_recall_without_closures():
    gap = talking_gap(closed=0.006, silent=0.006)
    assert bilabial_closure_recall(gap, PHONES, FPS) == 0.0


def test_bilabial_recall_tolerance():
    gap = np.full(N, 0.008)
    gap[round(0.5 * FPS) - 1] = 0.0  # M: closes one frame (33 ms) early, inside tolerance
    gap[round(1.1 * FPS) + 3] = 0.0  # B: closes 100 ms after it ends, outside tolerance
    assert bilabial_closure_recall(gap, PHONES, FPS) == pytest.approx(1 / 3)  # P never closes


def test_bilabial_recall_nan_without_bilabials():
    assert math.isnan(bilabial_closure_recall(np.zeros(N), [RefPhone("AA", 0, 1)], FPS))


def test_pauses_merged_and_filtered():
    phones = [RefPhone("SIL", 0.0, 0.1), RefPhone("SIL", 0.1, 0.3),
              RefPhone("AA", 0.3, 0.5), RefPhone("SIL", 0.5, 0.6)]
    assert pauses(phones) == [(0.0, 0.3)]


def test_pause_rest_rate():
    assert pause_rest_rate(talking_gap(), PHONES, FPS) == 1.0
    assert pause_rest_rate(talking_gap(silent=0.006), PHONES, FPS) == 0.0


def test_pause_rest_rate_ignores_trimmed_edges():
    gap = talking_gap()
    gap[frames(1.3, 1.36)] = 0.008  # still opening out of the last vowel
    assert pause_rest_rate(gap, PHONES, FPS) == 1.0
    gap[frames(1.5, 1.6)] = 0.008  # but open in the middle of the pause counts
    assert pause_rest_rate(gap, PHONES, FPS) < 1.0


def test_open_vowel_rate():
    assert open_vowel_rate(talking_gap(open_=0.010), PHONES, FPS, REST) == 1.0
    assert open_vowel_rate(talking_gap(open_=0.005), PHONES, FPS, REST) == 0.0
    gap = talking_gap(open_=0.005)
    gap[frames(0.6, 0.8)] = 0.010  # AA opens, AE does not (IY is not an open vowel)
    assert open_vowel_rate(gap, PHONES, FPS, REST) == 0.5


def test_open_vowel_rate_skips_short_vowels():
    phones = [RefPhone("AA", 0.0, 0.04), RefPhone("AE", 0.04, 0.2)]
    gap = np.full(N, 0.010)
    gap[:2] = REST  # the short AA stays shut but is too brief to score
    assert open_vowel_rate(gap, phones, FPS, REST) == 1.0


def test_phone_openness_table():
    target = phone_openness(PHONES, FPS, N + 5)
    expected = {0.25: "silence", 0.55: "bilabial", 0.7: "open_vowel",
                0.95: "other_vowel", 1.9: "silence"}
    for t, cls in expected.items():
        assert target[round(t * FPS)] == OPENNESS[cls]
    assert phone_openness([RefPhone("S", 0, 1)], FPS, 3)[1] == OPENNESS["consonant"]
    assert np.all(target[N:] == 0.0)  # past the last phone: rest


@pytest.mark.parametrize("k", [3, -2, 0])
def test_best_lag_recovers_shift(k):
    b = np.random.default_rng(0).normal(size=200)
    lag, corr = best_lag(shifted(b, k), b)
    assert lag == k
    assert corr > 0.95


def test_best_lag_constant_signal_is_undefined():
    lag, corr = best_lag(np.ones(50), np.arange(50.0))
    assert lag == 0 and math.isnan(corr)


def test_sync_lag_of_late_mouth():
    gap = REST + 0.008 * phone_openness(PHONES, FPS, N)
    assert sync_lag(gap, PHONES, FPS) == (0, pytest.approx(1.0))
    lag, corr = sync_lag(shifted(gap, 2), PHONES, FPS)
    assert lag == 2 and corr > 0.9


def test_loudness_correlation_and_silence_rest():
    loudness = np.full(N, -70.0)
    loudness[frames(0.5, 1.3)] = -20.0
    gap = talking_gap(closed=0.004, open_=0.010)
    lag, corr = loudness_correlation(shifted(gap, -1), loudness)
    assert lag == -1 and corr > 0.5
    assert rest_rate_in_silence(gap, loudness) == 1.0
    assert rest_rate_in_silence(gap + 0.004, loudness) == 0.0


def test_jitter():
    t = np.arange(10.0)[:, None, None]
    linear = np.zeros((10, VERTEX_COUNT, 3)) + 0.001 * t
    assert jitter(linear, LIPS) == pytest.approx(0.0, abs=1e-9)
    # x alternates +-0.5 mm: second difference is 4 * 0.5 mm every frame.
    alternating = np.zeros((10, VERTEX_COUNT, 3))
    alternating[:, LIPS, 0] = 0.0005 * (-1.0) ** t[:, :, 0]
    assert jitter(alternating, LIPS) == pytest.approx(2.0)


def test_lve_and_mve_constant_offset():
    ref = np.random.default_rng(1).normal(scale=0.01, size=(4, VERTEX_COUNT, 3))
    pred = ref + np.array([0.001, 0.0, 0.0])  # every vertex 1 mm off
    assert mean_vertex_error(pred, ref) == pytest.approx(1.0)
    lve, lve_mm = lip_vertex_error(pred, ref, LIPS)
    assert lve == pytest.approx(1e-6)
    assert lve_mm == pytest.approx(1.0)


def test_lve_takes_worst_lip_vertex_per_frame():
    ref = np.zeros((2, VERTEX_COUNT, 3))
    pred = ref.copy()
    pred[0, UPPER_LIP_EDGE, 2] = 0.002  # frame 0: one vertex 2 mm off; frame 1 exact
    lve, _ = lip_vertex_error(pred, ref, LIPS)
    assert lve == pytest.approx(2e-6)  # mean of (4e-6, 0)


def test_errors_reject_mismatched_lengths():
    with pytest.raises(ValueError):
        mean_vertex_error(np.zeros((3, VERTEX_COUNT, 3)), np.zeros((4, VERTEX_COUNT, 3)))


def test_fdd():
    template = np.zeros((VERTEX_COUNT, 3))
    upper = [10, 20]
    ref = np.zeros((4, VERTEX_COUNT, 3))
    ref[:, upper, 1] = np.array([0.0, 0.002, 0.0, 0.002])[:, None]  # std 1 mm
    assert upper_face_dynamics_deviation(ref, ref, upper, template) == 0.0
    still = np.zeros_like(ref)
    assert upper_face_dynamics_deviation(still, ref, upper, template) == pytest.approx(1.0)


def test_lipsync_report_on_ideal_mouth():
    gap = REST + 0.008 * phone_openness(PHONES, FPS, N)
    report = lipsync_report(head_with_gap(gap), PHONES, FPS, REST)
    assert report["bilabial_closure_recall"] == 1.0
    assert report["pause_rest_rate"] == 1.0
    assert report["open_vowel_rate"] == 1.0
    assert report["sync_lag_frames"] == 0
    assert report["n_bilabials"] == 3 and report["n_open_vowels"] == 2
    assert report["n_frames"] == N and report["n_pause_frames"] > 0


def test_real_phone_file(speech_dir):
    path = sorted((speech_dir / "librivox").glob("*.phone.json"))[0]
    clip = json.loads(path.read_text())
    phones = load_reference_phones(path)
    # Phones tile the clip: no holes, no overlaps, from its start to its end.
    assert phones[0].start == pytest.approx(clip["b"])
    assert phones[-1].end == pytest.approx(clip["b"] + clip["d"], abs=0.02)
    for a, b in zip(phones, phones[1:]):
        assert b.start == pytest.approx(a.end, abs=1e-6)
    assert all(p.label.isalpha() and p.label.isupper() for p in phones)
    found = pauses(phones)
    assert found and all(b - a >= 0.2 - 1e-9 for a, b in found)
    # An ideal mouth driven by the openness target passes every check.
    n = int(clip["d"] * FPS)
    gap = REST + 0.008 * phone_openness(phones, FPS, n)
    report = lipsync_report(head_with_gap(gap.astype(np.float32)), phones, FPS, REST)
    assert report["n_bilabials"] > 0
    assert report["bilabial_closure_recall"] == 1.0
    assert report["pause_rest_rate"] == 1.0


def test_closure_events_count_slams_away_from_mpb():
    from flame_lipsync.core.metrics import closure_events
    gap = talking_gap()  # closed on M, P, B only; silence at rest (2 mm, also "closed")
    assert closure_events(gap, PHONES, FPS) == (0, 3)
    gap[frames(0.65, 0.75)] = 0.001  # mid-"AA" (far from M/P): one spurious closure
    gap[frames(1.2, 1.25)] = 0.001   # in "AE", 0.1 s after B: also spurious
    assert closure_events(gap, PHONES, FPS) == (2, 5)
    gap[frames(1.1, 1.13)] = 0.001   # right after B (within 40 ms): part of the B closure
    assert closure_events(gap, PHONES, FPS) == (2, 5)
