"""`make eval` / `python cli.py eval`: runs on two short shared clips, checks what it writes."""
import json
import math

import numpy as np
import pytest

from flame_lipsync.pipeline.engines import ENGINES
from flame_lipsync.core.metrics import best_lag
from flame_lipsync.tools import evaluate

CLIPS = ("cards/001.wav", "librivox/sense_and_sensibility_01_austen_64kb-0880.wav")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def clips():
    if not evaluate.SPEECH_ASSETS.is_dir() or not evaluate.DEFAULT_HEAD.is_file():
        pytest.skip(f"shared assets not found at {evaluate.SPEECH_ASSETS.parent}")
    found = {c.name: c for c in evaluate.find_clips(evaluate.SPEECH_ASSETS)}
    return found


@pytest.fixture(scope="module")
def run(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    results = evaluate.evaluate(list(ENGINES), [clips[name] for name in CLIPS], out,
                                transcripts=True, say=lambda _: None)
    return out, results


def test_transcripts_found_for_every_kind_of_clip(clips):
    assert clips["cards/001.wav"].transcript == "ten of clubs"
    assert clips["cards/001.wav"].transcript_source == "cards.transcription"
    assert clips["cards/005.wav"].transcript == "eight of spades four of clubs seven of hearts"
    librivox = clips[CLIPS[1]]
    assert librivox.transcript.startswith("he was not") and librivox.transcript_source.endswith(".txt")
    assert librivox.reference is not None and librivox.reference.name.endswith(".phone.json")
    assert clips["jfk.flac"].transcript.startswith("And so, my fellow Americans")
    assert clips["english.wav"].transcript == "one two three"
    assert clips["french.aiff"].transcript is None  # README: partial
    assert clips["obama_11s.wav"].transcript is None and clips["obama_11s.wav"].reference is None


def test_results_json_schema(run):
    out, results = run
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))  # NaN written as null, not NaN
    assert set(on_disk) == {"meta", "clips", "summary"}
    assert {"date", "machine", "head", "fps", "engines", "masks", "total_s", "failed_runs"} <= set(on_disk["meta"])
    assert on_disk["meta"]["failed_runs"] == 0
    assert list(on_disk["clips"]) == list(CLIPS)
    for name, clip in on_disk["clips"].items():
        assert clip["transcript"] and clip["duration_s"] > 0
        for engine in ENGINES:
            assert set(clip["runs"][engine]) == {"no_transcript", "transcript"}
            for mode, r in clip["runs"][engine].items():
                m = r["metrics"]
                assert {"engine_s", "load_s", "metrics_s"} <= set(r["timings"]) and r["rtf"] > 0
                assert m["n_frames"] == r["n_frames"] > 0
                for key in ("loudness_corr", "loudness_lag_frames", "rest_in_silence_rate",
                            "n_silent_frames", "jitter_mm_per_frame2"):
                    assert key in m
                assert -5 <= m["loudness_lag_frames"] <= 5 and m["jitter_mm_per_frame2"] > 0
                if clip["reference"]:
                    ref = m["reference"]
                    assert ref["n_bilabials"] > 0 and ref["n_open_vowels"] > 0
                    assert ref["bilabial_hits"] <= ref["n_bilabials"]
                    assert -5 <= ref["sync_lag_frames"] <= 5
                else:
                    assert m["reference"] is None
        pairs = {(c["pred"], c["ref"]) for c in clip["comparisons"]}
        assert ("phonetic/no_transcript", "phonetic/transcript") in pairs
        for comparison in clip["comparisons"]:
            assert comparison["lve_mm"] == pytest.approx(math.sqrt(comparison["lve_m2"]) * 1000)
            assert comparison["mve_mm"] >= 0 and comparison["fdd_mm"] is not None


def test_markdown_has_a_row_per_clip_and_pooled_rows(run):
    out, results = run
    text = (out / "results.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    for name in CLIPS:
        per_clip = [r for r in rows if r.startswith(f"| {name} | phonetic |")]
        assert len(per_clip) == 2  # without and with the transcript
    assert sum(r.startswith("| **pooled") and "| phonetic |" in r for r in rows) == 3
    assert "best reference we have" in text


def test_plots_are_non_empty_pngs(run):
    out, results = run
    for clip in results["clips"].values():
        data = (out / clip["plot"]).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000


def test_pooled_counts_are_sums_of_per_clip_counts(run):
    _, results = run
    for mode in ("no_transcript", "transcript"):
        pooled = results["summary"]["runs"]["phonetic"][mode]
        per_clip = [c["runs"]["phonetic"][mode]["metrics"] for c in results["clips"].values()]
        refs = [m["reference"] for m in per_clip if m["reference"]]
        for key in ("bilabial_hits", "n_bilabials", "open_vowel_hits", "n_open_vowels",
                    "pause_rest_frames", "n_pause_frames"):
            assert pooled[key] == sum(r[key] for r in refs), key
        for key in ("rest_in_silence_frames", "n_silent_frames", "n_frames"):
            assert pooled[key] == sum(m[key] for m in per_clip), key
        assert pooled["bilabial_closure_recall"] == pytest.approx(
            pooled["bilabial_hits"] / pooled["n_bilabials"])
        weights = [m["n_frames"] - 2 for m in per_clip]
        assert pooled["jitter_mm_per_frame2"] == pytest.approx(
            np.average([m["jitter_mm_per_frame2"] for m in per_clip], weights=weights))
    pooled = results["summary"]["comparisons"]["phonetic/no_transcript vs phonetic/transcript"]
    rows = [c["comparisons"][0] for c in results["clips"].values()]
    assert pooled["n_frames"] == sum(r["n_frames"] for r in rows)
    assert pooled["lve_m2"] == pytest.approx(
        np.average([r["lve_m2"] for r in rows], weights=[r["n_frames"] for r in rows]))


def test_correlation_by_lag_agrees_with_best_lag():
    rng = np.random.default_rng(0)
    signal = np.convolve(rng.normal(size=200), np.ones(5) / 5, mode="same")
    shifted = np.concatenate([np.zeros(3), signal[:-3]])  # repeats signal 3 frames later
    by_lag = evaluate.correlation_by_lag(shifted, signal)
    assert max(by_lag, key=by_lag.get) == best_lag(shifted, signal)[0] == 3
    assert sorted(by_lag) == list(range(-5, 6))


def test_missing_masks_skip_mask_metrics(clips, tmp_path):
    results = evaluate.evaluate(list(ENGINES), [clips["cards/001.wav"]], tmp_path, plots=False,
                                masks_path=tmp_path / "absent.pkl", say=lambda _: None)
    assert "not found" in results["meta"]["masks"]
    clip = results["clips"]["cards/001.wav"]
    assert clip["runs"]["phonetic"]["transcript"]["metrics"]["jitter_mm_per_frame2"] is None
    assert clip["comparisons"][0]["lve_mm"] is None and clip["comparisons"][0]["mve_mm"] >= 0


def test_cli_eval_reports_bad_input(tmp_path, capsys):
    from flame_lipsync import cli
    assert cli.main(["eval", "--audio-dir", str(tmp_path)]) == 2
    assert "no audio" in capsys.readouterr().err
    assert cli.main(["eval", "--engine", "nope", "--audio-dir", str(tmp_path)]) == 2
    assert "unknown engine" in capsys.readouterr().err


def test_comparison_pairs_cover_transcript_reference_and_engine_pairs():
    sequences = {("a", "no_transcript"): 0, ("a", "transcript"): 0,
                 ("b", "no_transcript"): 0, ("b", "transcript"): 0, ("c", "no_transcript"): 0}
    pairs = evaluate._comparison_pairs(sequences)
    assert (("a", "no_transcript"), ("a", "transcript"), "vs_transcript") in pairs
    assert (("b", "no_transcript"), ("b", "transcript"), "vs_transcript") in pairs
    engine_pairs = {(p[0], r[0], p[1]) for p, r, kind in pairs if kind == "engine_vs_engine"}
    assert engine_pairs == {("a", "b", "no_transcript"), ("a", "c", "no_transcript"),
                            ("b", "c", "no_transcript"), ("a", "b", "transcript")}
