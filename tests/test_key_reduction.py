"""Key reduction (core.key_reduction): fewest auto-clamped Bézier keys within a vertex
tolerance of the dense bake, closures sealed. The curve model is checked against
Blender's own F-curve evaluation in tests/blender/test_animator_keys.py."""
import pickle

import numpy as np
import pytest

from flame_lipsync.core import key_reduction as kr
from flame_lipsync.core import metrics
from flame_lipsync.core.flame import FLAME_ASSETS, SPEECH_ASSETS
from flame_lipsync.core.rig import ALL_CONTROLS

TOL = kr.DEFAULT_TOLERANCE
LIBRIVOX = sorted((SPEECH_ASSETS / "librivox").glob("*.wav"))


def test_keys_on_every_frame_reproduce_the_frames():
    y = np.random.default_rng(0).uniform(0, 1, 40)
    x = np.arange(40.0)
    assert np.allclose(kr.evaluate(x, y, x), y)


def test_auto_clamped_handles_are_flat_at_extrema_and_ends():
    x = np.array([0.0, 10.0, 20.0, 30.0])
    y = np.array([0.0, 1.0, 0.2, 0.5])
    left, right = kr.auto_clamped_handles(x, y)
    assert left[1, 1] == right[1, 1] == 1.0          # a peak: flat
    assert left[0, 1] == right[0, 1] == 0.0          # ends ease in/out (constant extrapolation)
    assert left[3, 1] == right[3, 1] == 0.5
    # Never overshoots a key's neighbours: between two keys the curve stays inside them.
    v = kr.evaluate(x, y, np.linspace(0, 30, 301))
    assert v.min() >= -1e-12 and v.max() <= 1.0 + 1e-12


def _synthetic(t=300, seed=1):
    rng = np.random.default_rng(seed)
    fields = np.zeros((3, 50, 3))
    fields[0, :30, 1] = rng.uniform(0.005, 0.02, 30)      # a jaw-like control, 2 cm
    fields[1, 20:, 2] = rng.uniform(0.001, 0.004, 30)     # overlapping vertices: errors add
    fields[2, 40:, 0] = 0.01
    time = np.arange(t) / 30
    weights = np.stack([0.5 + 0.4 * np.sin(2 * np.pi * 1.3 * time) + 0.02 * rng.standard_normal(t),
                        0.8 * np.clip(np.sin(2 * np.pi * 0.4 * time), 0, None),
                        np.zeros(t)], 1)
    return weights, fields


def _error(weights, values, fields):
    diff = np.einsum("tc,cnd->tnd", values - np.asarray(weights, np.float32).astype(np.float64), fields)
    return np.linalg.norm(diff, axis=2).max(1)


def test_reduced_keys_stay_within_the_tolerance_jointly():
    weights, fields = _synthetic()
    r = kr.reduce_keys(weights, fields, TOL)
    assert r.key_count < 0.5 * weights.size
    err = _error(weights, r.values, fields)
    assert err.max() <= TOL * (1 + 1e-9) and np.isclose(err.max(), r.max_error)
    # What the keys give is what the curve model gives from them.
    for c, keys in enumerate(r.keys):
        model = kr.evaluate(keys.astype(float), weights[keys, c].astype(np.float32), np.arange(len(weights)))
        assert np.allclose(model, r.values[:, c], atol=1e-9)
    assert len(r.keys[2]) == 2                     # a still control: two keys


def test_sealed_closures_keep_keys_at_both_ends_and_a_tenth_of_the_tolerance():
    weights, fields = _synthetic()
    names = ("jaw_open", "lips_close", "smile")
    weights[100:112, 1] = 1.0
    r = kr.reduce_keys(weights, fields, TOL, names)
    assert r.sealed[100:112].all() and not r.sealed[:100].any()
    assert {100, 111} <= set(r.keys[1].tolist())
    assert np.allclose(r.values[100:112, 1], 1.0, atol=1e-6)     # flat between: sealed exactly
    assert _error(weights, r.values, fields)[100:112].max() <= TOL * kr.SEAL_FRACTION * (1 + 1e-9)


def test_pinned_frames_keep_keys():
    weights, fields = _synthetic(60)
    r = kr.reduce_keys(weights, fields, TOL, pinned=(0, 1, 58, 59))
    assert all({0, 1, 58, 59} <= set(k.tolist()) for k in r.keys)


def test_bad_tolerance_is_refused():
    weights, fields = _synthetic(10)
    with pytest.raises(ValueError, match="tolerance"):
        kr.reduce_keys(weights, fields, 0.0)


def _lips():
    with open(FLAME_ASSETS / "FLAME_masks.pkl", "rb") as f:
        return np.asarray(pickle.load(f, encoding="latin1")["lips"], np.int64)


@pytest.mark.skipif(not LIBRIVOX, reason="shared librivox clips not found beside the project")
@pytest.mark.parametrize("wav", LIBRIVOX, ids=lambda p: p.stem[-4:])
def test_librivox_reduced_bake_within_tolerance_and_closures_sealed(wav):
    """The figures of the README: keys per minute, the largest lip-vertex error, the
    closure rate against the clip's reference phones, dense vs reduced."""
    from flame_lipsync import pipeline
    from flame_lipsync.core.mesh_io import load_head
    head, _ = load_head(FLAME_ASSETS / "flame_template.ply")
    fps = 30.0
    speech = pipeline.load_audio(str(wav), fps=fps)
    performance = pipeline.perform(speech, fps, pipeline.Settings(transcript=wav.with_suffix(".txt").read_text()))
    assert performance.control_names == ALL_CONTROLS
    fields = pipeline.head_fields(head, performance.control_names).astype(np.float64)
    dense_w = performance.controls.astype(np.float32).astype(np.float64)
    r = kr.reduce_keys(performance.controls, fields, TOL, performance.control_names, head=head)
    dense = head[None] + np.einsum("tc,cnd->tnd", dense_w, fields)
    reduced = head[None] + np.einsum("tc,cnd->tnd", r.values, fields)
    distance = np.linalg.norm(reduced - dense, axis=2)
    lip_error, any_error = distance[:, _lips()].max(), distance.max()
    phones = metrics.load_reference_phones(wav.with_name(wav.stem + ".phone.json"))
    rest = float(metrics.lip_gap(head[None])[0])
    a, b = (metrics.lipsync_report(v, phones, fps, rest) for v in (dense, reduced))
    minutes = len(dense_w) / fps / 60
    print(f"\n{wav.stem[-4:]}: {len(dense_w)} frames; keys/min dense {dense_w.size / minutes:.0f}, "
          f"reduced {r.key_count / minutes:.0f} ({dense_w.size / r.key_count:.1f}x fewer); "
          f"max lip-vertex error {lip_error * 1000:.3f} mm, any vertex {any_error * 1000:.3f} mm; "
          f"closure recall dense {a['bilabial_closure_recall']:.3f} ({a['n_bilabials']}) reduced "
          f"{b['bilabial_closure_recall']:.3f}; speech closures {a['n_speech_closures']}/{b['n_speech_closures']}, "
          f"spurious {a['spurious_closures']}/{b['spurious_closures']}; sealed frames {int(r.sealed.sum())}, "
          f"max error there {distance[r.sealed].max(initial=0) * 1000:.3f} mm")
    assert lip_error <= any_error <= TOL * (1 + 1e-6)
    assert r.key_count < dense_w.size / 3
    assert b["bilabial_closure_recall"] == a["bilabial_closure_recall"]
    assert (b["n_speech_closures"], b["spurious_closures"]) == (a["n_speech_closures"], a["spurious_closures"])
    assert distance[r.sealed].max(initial=0) <= TOL * kr.SEAL_FRACTION * (1 + 1e-6)
