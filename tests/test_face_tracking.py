"""The face tracker on the first few frames of one shared video (run in .venv-track,
the tracking environment; CI never tracks a whole video)."""
import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from flame_lipsync.core.flame import PROJECT_ROOT, SHARED_ASSETS

TRACK_PY = PROJECT_ROOT / ".venv-track" / "bin" / "python"
TOOL = PROJECT_ROOT / "tools" / "face_tracking.py"
VIDEO = SHARED_ASSETS / "video" / "mead_W015_level_1_neutral_030.mp4"
FRAMES = 6


def _run(tmp, *videos):
    summary = tmp / "summary.json"
    done = subprocess.run([str(TRACK_PY), str(TOOL), *map(str, videos), "--out", str(tmp / "tracks"),
                           "--max-frames", str(FRAMES), "--summary", str(summary)],
                          capture_output=True, text=True, timeout=300)
    return done, json.loads(summary.read_text()) if summary.is_file() else None


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    if not TRACK_PY.is_file():
        pytest.skip(f"tracking environment missing ({TRACK_PY}): run `make venv-track`")
    if not VIDEO.is_file():
        pytest.skip(f"shared video not found at {VIDEO} (clone the project beside ../shared)")
    tmp = tmp_path_factory.mktemp("track")
    broken = tmp / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    done, summary = _run(tmp, VIDEO, broken)
    return tmp, done, summary


def test_tracker_arrays_and_units(tracked):
    tmp, done, summary = tracked
    good = summary[0]
    assert "error" not in good, good
    data = np.load(good["npz"])
    T = FRAMES
    assert data["landmarks"].shape == (T, 478, 3)
    assert data["landmarks_cam"].shape == (T, 478, 3)
    assert data["landmarks_mm"].shape == (T, 478, 3)
    assert data["detected"].dtype == bool and data["detected"].all()   # README: face in every frame
    for key, shape in (("rotation", (T, 3)), ("translation", (T, 3)), ("aperture", (T,)),
                       ("mouth_width", (T,)), ("protrusion", (T,)), ("lip_contact", (T,)),
                       ("eye_open", (T, 2)), ("brow_height", (T, 2)), ("times", (T,))):
        assert data[key].shape == shape, key
    assert float(data["fps"]) == pytest.approx(25.0)
    np.testing.assert_allclose(np.diff(data["times"]), 1 / 25.0, atol=1e-6)
    # Units: millimetres of the FLAME template, degrees.
    assert 35 < np.nanmean(data["mouth_width"]) < 70          # template: 53.6 mm
    assert 0 <= np.nanmin(data["aperture"]) and np.nanmax(data["aperture"]) < 40
    assert np.nanmax(data["pose_residual"]) < 5               # rigid landmarks fit to mm
    assert np.all(np.abs(data["rotation"]) < 45)              # a frontal speaker
    assert np.all((data["eye_open"] > 0) & (data["eye_open"] < 20))
    assert (data["lip_contact"] == (data["aperture"] < float(data["contact_mm"]))).all()
    # Audio: 16 kHz mono 16-bit, the clip's full length (4.8 s).
    with wave.open(good["wav"]) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert w.getnframes() / 16000 == pytest.approx(4.8, abs=0.1)


def test_unreadable_video_is_named_and_the_batch_goes_on(tracked):
    tmp, done, summary = tracked
    assert done.returncode == 1
    assert "broken.mp4: cannot be read as video" in done.stdout
    assert "error" not in summary[0] and "error" in summary[1]


def test_second_run_is_cached(tracked):
    tmp, _, summary = tracked
    npz = Path(summary[0]["npz"])
    before = npz.stat().st_mtime_ns
    done, again = _run(tmp, VIDEO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert npz.stat().st_mtime_ns == before and again[0]["npz"] == str(npz)
