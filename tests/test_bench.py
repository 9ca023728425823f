"""Smoke test of the `make bench` machinery on 3 s of speech (not a timing test)."""
import json
import subprocess
import sys

import pytest

from flame_lipsync.tools import bench


def test_long_clip_is_cut_with_its_words(speech_dir, tmp_path):
    soundfile = pytest.importorskip("soundfile")
    wav, txt = bench.make_long_clip(3.0, tmp_path)
    info = soundfile.info(wav)
    assert info.frames == 3 * info.samplerate
    # 0870 starts "<sil> and mister john dashwood had then leisure to consider":
    # "consider" (2.89-3.44 s) is mostly past the 3 s cut, so it goes.
    assert txt.read_text().split() == "and mister john dashwood had then leisure to".split()
    assert wav.parent == tmp_path and txt.parent == tmp_path  # nothing lands in the project


def test_clip_loops_over_the_clips(speech_dir, tmp_path):
    soundfile = pytest.importorskip("soundfile")
    clips = sorted((speech_dir / "librivox").glob("*.wav"))
    one_pass = sum(soundfile.info(c).duration for c in clips)
    wav, txt = bench.make_long_clip(one_pass + 2.0, tmp_path)
    assert soundfile.info(wav).duration == pytest.approx(one_pass + 2.0, abs=1e-3)
    words = sum(len(c.with_suffix(".txt").read_text().split()) for c in clips)
    assert words < len(txt.read_text().split()) < 2 * words


def _row(kind, case, mode, seconds, peak, setup=None):
    row = {"kind": kind, "case": case, "mode": mode, "seconds": seconds, "peak_rss_mb": peak}
    if setup is not None:
        row["setup_rss_mb"] = setup
    return row


def test_memory_ratios_and_table():
    results = {"date": "today", "machine": "m", "fps": 30.0, "cases": [
        _row("decode", "decode (floor)", None, 60.0, 50.0),
        _row("decode", "decode (floor)", None, 600.0, 150.0),
        _row("engine", "phonetic", "MESH_CACHE", 60.0, 400.0, 300.0),
        _row("engine", "phonetic", "MESH_CACHE", 600.0, 500.0, 300.0),
        _row("engine", "phonetic", "SHAPE_KEYS", 10.0, 350.0, 300.0),  # no 600 s partner
    ]}
    ratios = {(m["case"], m["mode"]): m for m in bench.memory_ratios(results)}
    assert set(ratios) == {("decode (floor)", None), ("phonetic", "MESH_CACHE")}
    assert ratios[("decode (floor)", None)]["ratio"] == pytest.approx(3.0)
    cache = ratios[("phonetic", "MESH_CACHE")]
    assert cache["ratio"] == pytest.approx(1.25) and cache["above_setup_ratio"] == pytest.approx(2.0)
    text = bench.markdown({**results, "cases": [], "memory_ratios": list(ratios.values())})
    assert "| phonetic | mesh cache | 400 | 500 | 1.25 | 100 | 200 | 2.00 |" in text


def test_bench_end_to_end_on_3_seconds(speech_dir, flame_dir, tmp_path):
    pytest.importorskip("bpy")
    command = [sys.executable, str(bench.ROOT / "tools" / "bench.py"), "--seconds", "3",
               "--naive-budget", "0.3", "--no-cold-start", "--quiet", "--manifest-shots", "3",
               "--engines", "phonetic", "--out-dir", str(tmp_path)]  # one engine: the plumbing, not the figures
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "bench.json").read_text())
    cases = results["cases"]
    engine_rows = [r for r in cases if r["kind"] == "engine"]
    assert {r["engine"] for r in engine_rows} == {"phonetic"}
    assert len(engine_rows) == 2 * 2  # with/without transcript x 2 bake modes
    assert {(r["transcript"], r["mode"]) for r in engine_rows} == {
        (t, m) for t in (True, False) for m in ("SHAPE_KEYS", "MESH_CACHE")}
    for r in engine_rows:
        assert r["frames"] == 91 and r["duration"] == pytest.approx(3.0)
        parts = [r[k] for k in ("load", "recognition", "inference", "post", "bake")]
        # The phonetic engine's time is recognition, the neural engine's inference.
        assert all(p >= 0 for p in parts) and r["recognition"] + r["inference"] > 0 and r["bake"] > 0
        assert r["processing"] == pytest.approx(sum(parts))
        assert r["rtf"] == pytest.approx(r["processing"] / 3.0)
        assert r["peak_rss_mb"] >= r["setup_rss_mb"] > 0
        if r["mode"] == "MESH_CACHE":
            assert r["pc2_bytes"] == 32 + 91 * 5023 * 12
    assert [r["transcript"] for r in engine_rows if r["mode"] == "SHAPE_KEYS"][0] is True
    floor = [r for r in cases if r["kind"] == "decode"]
    assert len(floor) == 1 and floor[0]["load"] > 0
    naive = {r["mode"]: r for r in cases if r["kind"] == "naive"}
    assert set(naive) == {"SHAPE_KEYS", "MESH_CACHE"}
    assert all(r["same_output"] and r["naive_s"] > 0 and r["bulk_s"] > 0 for r in naive.values())
    assert results["memory_ratios"] == []  # one duration: nothing to compare
    text = (tmp_path / "bench.md").read_text()
    assert "| 3 s | phonetic+transcript | shape keys |" in text and "naive / add-on" in text
