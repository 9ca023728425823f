"""Lip-sync quality on real speech, measured like artists and the field do (`make eval`).

    python cli.py eval --engine NAME|all [--audio-dir DIR] [--transcripts] [--out out/eval]
    python tools/evaluate.py ...   (same arguments)

Every engine runs on every clip under DIR (default ../shared/assets/speech, searched
recursively) on one FLAME head at 30 fps: without a transcript, and with
`--transcripts` also with one wherever a transcript exists. Writes

- `OUT/results.json`: per clip, per engine, per transcript mode, every metric with the
  counts behind it and the timings; plus pooled summaries (counts summed over clips);
- `OUT/results.md`: the per-clip table with pooled rows per engine/mode, and the
  between-sequence table (LVE, mean vertex error, FDD);
- `OUT/plots/<clip>.png`: lip gap (mm) over time for every run, phones as labelled
  spans under it, rest and rest + 4 mm lines, M/P/B shaded.

Metric definitions live in core/metrics.py; this file only runs engines, pools and
reports. Pooled fractions are sum(hits) / sum(totals) over clips, never a mean of
per-clip rates; pooled means (jitter, LVE, ...) are weighted by frames.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from flame_lipsync.core import metrics
from flame_lipsync.core.flame import FLAME_ASSETS, SPEECH_ASSETS

AUDIO_SUFFIXES = (".wav", ".flac", ".aiff", ".aif", ".ogg", ".mp3")
DEFAULT_HEAD = FLAME_ASSETS / "flame_template.ply"
MASKS_FILE = FLAME_ASSETS / "FLAME_masks.pkl"
DEFAULT_OUT = ROOT / "out" / "eval"
MODES = ("no_transcript", "transcript")
PAIRED = "no_transcript_paired"  # pooled only: no transcript, on the clips that have one
MODE_LABEL = {"no_transcript": "none", PAIRED: "none (clips with one)", "transcript": "given"}

# Transcripts the shared assets give only in ../shared/assets/README.md (the speech/
# table, column "transcript": "in this row"); keyed by path under the speech folder.
# french.aiff is listed there as "partial", so it is evaluated without a transcript.
KNOWN_TRANSCRIPTS = {
    "jfk.flac": "And so, my fellow Americans: ask not what your country can do for you "
                "- ask what you can do for your country.",
    "english.wav": "one two three",
    "chinese.flac": "砸自己的脚",
}

SILENCE_DB = -40.0        # rest_rate_in_silence: quiet = 40 dB or more below the clip's peak
LOUDNESS_FLOOR_DB = -60.0  # dB loudness is floored 60 dB below the peak (digital silence
#                            would otherwise reach -inf and dominate the correlation)


# ------------------------------------------------------------------------ clips

@dataclass
class Clip:
    path: Path
    name: str                          # path under the audio folder, posix
    transcript: str | None = None
    transcript_source: str | None = None
    reference: Path | None = None      # *.phone.json beside the audio


def _sphinx_transcriptions(folder: Path) -> dict[str, str]:
    """`<s> ten of clubs </s> (001)` lines of *.transcription files -> {"001": "ten of clubs"}."""
    found = {}
    for path in sorted(folder.glob("*.transcription")):
        for line in path.read_text(errors="replace").splitlines():
            m = re.fullmatch(r"\s*(.*?)\s*\(([^()]+)\)\s*", line)
            if m:
                words = re.sub(r"</?s>", " ", m.group(1)).split()
                found[m.group(2)] = (" ".join(words), path)
    return found


def find_clips(audio_dir=SPEECH_ASSETS) -> list[Clip]:
    """Audio files under `audio_dir` (recursive), each with its transcript and reference
    alignment when one exists: `<stem>.txt` beside it, a sphinx `*.transcription` line
    naming its stem, or KNOWN_TRANSCRIPTS for the shared clips."""
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise FileNotFoundError(f"audio folder '{audio_dir}' does not exist: pass --audio-dir DIR "
                                f"(or clone the project beside ../shared)")
    shared = SPEECH_ASSETS.resolve() if SPEECH_ASSETS.is_dir() else None
    clips, transcriptions = [], {}
    for path in sorted(p for p in audio_dir.rglob("*")
                       if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES):
        clip = Clip(path=path, name=path.relative_to(audio_dir).as_posix())
        text_file = path.with_suffix(".txt")
        if path.parent not in transcriptions:
            transcriptions[path.parent] = _sphinx_transcriptions(path.parent)
        known = None
        if shared is not None:
            try:
                known = KNOWN_TRANSCRIPTS.get(path.resolve().relative_to(shared).as_posix())
            except ValueError:
                pass
        if text_file.is_file():
            clip.transcript = text_file.read_text(errors="replace").strip()
            clip.transcript_source = text_file.name
        elif path.stem in transcriptions[path.parent]:
            text, source = transcriptions[path.parent][path.stem]
            clip.transcript, clip.transcript_source = text, source.name
        elif known:
            clip.transcript, clip.transcript_source = known, "shared assets README"
        reference = path.with_suffix(".phone.json")
        clip.reference = reference if reference.is_file() else None
        clips.append(clip)
    if not clips:
        raise ValueError(f"no audio ({', '.join(AUDIO_SUFFIXES)}) found under '{audio_dir}'")
    return clips


def load_masks(path=MASKS_FILE) -> tuple[dict | None, str]:
    """FLAME region masks read from the shared file at run time (never copied)."""
    path = Path(path)
    if not path.is_file():
        return None, (f"FLAME masks not found at {path}: jitter, LVE and FDD (which need the "
                      f"lip and upper-face vertex sets) are skipped")
    import pickle
    with open(path, "rb") as handle:
        masks = pickle.load(handle, encoding="latin1")
    lips = np.asarray(masks["lips"], dtype=np.int64)
    upper = np.union1d(masks["forehead"], masks["eye_region"]).astype(np.int64)
    return ({"lips": lips, "upper_face": upper},
            f"{path.name}: {len(lips)} lip vertices, {len(upper)} upper-face (forehead + eye_region)")


# ---------------------------------------------------------------------- metrics

def _nan_to_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, np.generic):
        return _nan_to_none(value.item())
    return value


def correlation_by_lag(a, b, max_lag=metrics.MAX_LAG) -> dict[int, float]:
    """corr(a[t], b[t - k]) for every k in [-max_lag, max_lag], the convention of
    metrics.best_lag (which picks the best of these); kept per clip so lags can be
    pooled across clips."""
    n = min(len(a), len(b))
    a, b = np.asarray(a, np.float64)[:n], np.asarray(b, np.float64)[:n]
    out = {}
    for k in range(-min(max_lag, n - 2), min(max_lag, n - 2) + 1):
        pair = (a[k:], b[:n - k]) if k >= 0 else (a[:n + k], b[-k:])
        out[k] = metrics.best_lag(*pair, max_lag=0)[1]
    return out


def loudness_db(speech, fps, n_frames) -> np.ndarray:
    from flame_lipsync.core.audio import loudness_envelope
    rms = loudness_envelope(speech, fps, n_frames).astype(np.float64)
    peak = float(rms.max()) if rms.size else 0.0
    floor = peak * 10 ** (LOUDNESS_FLOOR_DB / 20) if peak > 0 else 1e-10
    return 20 * np.log10(np.maximum(rms, floor))


def clip_metrics(vertices, loud_db, rest_gap, masks, reference, fps) -> dict:
    """Everything measured on one animated sequence; counts beside every fraction."""
    gap = metrics.lip_gap(vertices)
    n = len(gap)
    lag, corr = metrics.loudness_correlation(gap, loud_db)
    quiet = int(np.sum(loud_db[:n] <= loud_db[:n].max() + SILENCE_DB)) if n else 0
    rest_rate = metrics.rest_rate_in_silence(gap, loud_db, silence_db=SILENCE_DB)
    out = {
        "n_frames": n,
        "gap_min_mm": float(gap.min() * 1000), "gap_max_mm": float(gap.max() * 1000),
        "gap_mean_mm": float(gap.mean() * 1000),
        "loudness_lag_frames": lag, "loudness_corr": corr,
        "loudness_corr_by_lag": correlation_by_lag(gap, loud_db),
        "rest_in_silence_rate": rest_rate,
        "rest_in_silence_frames": 0 if not quiet else int(round(rest_rate * quiet)),
        "n_silent_frames": quiet,
        "jitter_mm_per_frame2": (metrics.jitter(vertices, masks["lips"]) if masks else None),
        "reference": None,
    }
    if reference is not None:
        report = metrics.lipsync_report(vertices, reference, fps, rest_gap)
        out["reference"] = _reference_block(report, gap, reference, fps)
    return out


def _reference_block(report, gap, reference, fps) -> dict:
    pause_frames = report["n_pause_frames"]
    return {
        "bilabial_closure_recall": report["bilabial_closure_recall"],
        "bilabial_hits": _hits(report["bilabial_closure_recall"], report["n_bilabials"]),
        "n_bilabials": report["n_bilabials"],
        "pause_rest_rate": report["pause_rest_rate"],
        "pause_rest_frames": _hits(report["pause_rest_rate"], pause_frames),
        "n_pause_frames": pause_frames,
        "open_vowel_rate": report["open_vowel_rate"],
        "open_vowel_hits": _hits(report["open_vowel_rate"], report["n_open_vowels"]),
        "n_open_vowels": report["n_open_vowels"],
        "sync_lag_frames": report["sync_lag_frames"],
        "sync_corr": report["sync_corr"],
        "sync_corr_by_lag": correlation_by_lag(
            gap, metrics.phone_openness(reference, fps, len(gap))),
    }


def _hits(rate, total) -> int:
    """The count behind a fraction (metrics returns hits / total, NaN when total is 0)."""
    return int(round(rate * total)) if total else 0


def compare(pred, ref, template, masks) -> dict:
    """Field-standard errors of one vertex sequence against another (same clip)."""
    n = min(len(pred), len(ref))
    pred, ref = pred[:n], ref[:n]
    out = {"n_frames": n, "mve_mm": metrics.mean_vertex_error(pred, ref),
           "lve_m2": None, "lve_mm": None, "fdd_mm": None}
    if masks:
        out["lve_m2"], out["lve_mm"] = metrics.lip_vertex_error(pred, ref, masks["lips"])
        out["fdd_mm"] = metrics.upper_face_dynamics_deviation(pred, ref, masks["upper_face"], template)
    return out


# ---------------------------------------------------------------------- running

class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _dictionary_words(transcript: str | None):
    """How many transcript words the aligner's dictionary knows (0: it falls back to
    phone-loop recognition). None when pocketsphinx is not there to ask."""
    if not transcript:
        return None
    try:
        from flame_lipsync.core.phones import normalise_transcript
        logger = logging.getLogger("core.phones")
        level, logger.level = logger.level, logging.ERROR
        try:
            return len(normalise_transcript(transcript))
        finally:
            logger.level = level
    except Exception:  # noqa: BLE001 - informational only
        return None


def run_one(engine, speech, fps, transcript, head, frame):
    """(vertices (T, 5023, 3) float32, run record) for one engine on one clip."""
    from flame_lipsync.core import phones
    from flame_lipsync.pipeline.engines import run_engine
    phones.forget_recent()  # each engine's time is its own: no phones from the engine before
    collect = _Collect()
    root = logging.getLogger()
    root.addHandler(collect)
    start = time.perf_counter()
    try:
        performance = run_engine(engine, speech, fps, transcript, with_offsets=True)
    finally:
        root.removeHandler(collect)
    engine_s = time.perf_counter() - start
    if performance.offsets is None:
        raise RuntimeError(f"engine '{engine}' returned no vertex offsets")
    vertices = (head[None] + performance.offsets @ frame.T).astype(np.float32)
    meta = performance.metadata
    return vertices, {
        "engine": engine,
        "engine_mode": meta.get("mode"),
        "n_frames": int(vertices.shape[0]),
        "phones": [[str(p[0]), round(float(p[1]), 4), round(float(p[2]), 4)]
                   for p in meta.get("phones", [])],
        "warnings": collect.messages,
        "timings": {"engine_s": engine_s,
                    **{f"{k}_s": float(v) for k, v in meta.get("timings", {}).items()}},
    }


def evaluate(engines, clips, out_dir, head_path=DEFAULT_HEAD, fps=30.0, transcripts=True,
             plots=True, masks_path=MASKS_FILE, say=print) -> dict:
    """Run, measure, pool and write results.json, results.md and plots/. Returns the
    results dict (NaN as None, as in the JSON)."""
    from flame_lipsync.core.audio import AudioError, load_speech
    from flame_lipsync.core.mesh_io import load_head
    from flame_lipsync.core.rig import load_rig

    if fps <= 0:
        raise ValueError(f"--fps must be positive, got {fps}")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    head, _ = load_head(head_path)
    head = head.astype(np.float32)
    frame = load_rig().head_frame(head)
    rest_gap = float(metrics.lip_gap(head[None])[0])
    masks, masks_note = load_masks(masks_path)
    if masks is None:
        say(f"note: {masks_note}")

    results = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                       f"Python {platform.python_version()}",
            "head": str(head_path), "fps": fps, "rest_gap_mm": rest_gap * 1000,
            "engines": list(engines), "transcripts": transcripts, "masks": masks_note,
            "thresholds": {"closed_mm": metrics.CLOSED_GAP * 1000,
                           "open_above_rest_mm": metrics.MIN_OPEN * 1000,
                           "closure_tolerance_s": metrics.CLOSURE_TOLERANCE,
                           "min_pause_s": metrics.MIN_PAUSE, "pause_trim_s": metrics.PAUSE_TRIM,
                           "min_vowel_s": metrics.MIN_VOWEL, "max_lag_frames": metrics.MAX_LAG,
                           "silence_db": SILENCE_DB, "loudness_floor_db": LOUDNESS_FLOOR_DB},
            "comparison_reference": "no ground-truth meshes exist for these clips: each engine's "
                                    "no-transcript output is compared with the same engine WITH the "
                                    "transcript (the best reference we have); engines are also "
                                    "compared with each other",
        },
        "clips": {},
    }
    failures = 0
    for number, clip in enumerate(clips, 1):
        t0 = time.perf_counter()
        try:
            speech = load_speech(clip.path, fps=fps)
        except AudioError as err:  # one bad file must not stop the eval
            failures += 1
            results["clips"][clip.name] = {"path": str(clip.path), "error": str(err), "runs": {},
                                           "comparisons": [], "plot": None}
            say(f"[{number}/{len(clips)}] {clip.name}: FAILED: {err}")
            continue
        load_s = time.perf_counter() - t0
        reference = metrics.load_reference_phones(clip.reference) if clip.reference else None
        entry = {
            "path": str(clip.path), "duration_s": speech.duration,
            "transcript": clip.transcript, "transcript_source": clip.transcript_source,
            "transcript_dictionary_words": _dictionary_words(clip.transcript),
            "reference": str(clip.reference) if clip.reference else None,
            "n_reference_phones": len(reference) if reference else 0,
            "load_s": load_s, "runs": {}, "comparisons": [], "plot": None,
        }
        modes = ["no_transcript"] + (["transcript"] if transcripts and clip.transcript else [])
        sequences, loud = {}, None
        for engine in engines:
            entry["runs"][engine] = {}
            for mode in modes:
                try:
                    vertices, run = run_one(engine, speech, fps,
                                            clip.transcript if mode == "transcript" else None,
                                            head, frame)
                except Exception as err:  # noqa: BLE001 - one engine must not stop the eval
                    failures += 1
                    entry["runs"][engine][mode] = {"engine": engine, "error": f"{type(err).__name__}: {err}"}
                    say(f"  {clip.name} {engine}/{mode}: FAILED: {err}")
                    continue
                if loud is None or len(loud) != len(vertices):
                    loud = loudness_db(speech, fps, len(vertices))
                t1 = time.perf_counter()
                run["metrics"] = clip_metrics(vertices, loud, rest_gap, masks, reference, fps)
                run["timings"]["metrics_s"] = time.perf_counter() - t1
                run["timings"]["load_s"] = load_s
                run["rtf"] = (load_s + run["timings"]["engine_s"]) / speech.duration
                entry["runs"][engine][mode] = run
                for warning in run["warnings"]:
                    say(f"  {clip.name} {engine}/{mode}: {warning}")
                sequences[(engine, mode)] = vertices
        for (pred_key, ref_key, kind) in _comparison_pairs(sequences):
            row = compare(sequences[pred_key], sequences[ref_key], head, masks)
            row.update(pred="/".join(pred_key), ref="/".join(ref_key), kind=kind)
            entry["comparisons"].append(row)
        if plots and sequences:
            t1 = time.perf_counter()
            plot_path = out_dir / "plots" / (clip.name.replace("/", "__").rsplit(".", 1)[0] + ".png")
            plot_clip(plot_path, clip, entry, sequences, reference, rest_gap, fps)
            entry["plot"] = plot_path.relative_to(out_dir).as_posix()
            entry["plot_s"] = time.perf_counter() - t1
        results["clips"][clip.name] = entry
        say(f"[{number}/{len(clips)}] {clip.name}: {speech.duration:.1f} s, "
            f"{len(modes) * len(engines)} run(s), {time.perf_counter() - t0:.1f} s")
        del sequences

    results["summary"] = summarise(results)
    results["meta"]["failed_runs"] = failures
    results["meta"]["total_s"] = time.perf_counter() - started
    results = _nan_to_none(results)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    (out_dir / "results.md").write_text(markdown(results))
    return results


def _comparison_pairs(sequences):
    """(pred, ref, kind): no-transcript vs the same engine with transcript, and every
    pair of engines in the same transcript mode."""
    pairs = []
    engines = list(dict.fromkeys(e for e, _ in sequences))
    for e in engines:
        if (e, "no_transcript") in sequences and (e, "transcript") in sequences:
            pairs.append(((e, "no_transcript"), (e, "transcript"), "vs_transcript"))
    for mode in MODES:
        present = [e for e in engines if (e, mode) in sequences]
        for i, a in enumerate(present):
            for b in present[i + 1:]:
                pairs.append(((a, mode), (b, mode), "engine_vs_engine"))
    return pairs


# ---------------------------------------------------------------------- pooling

def _pool_lag(entries, key):
    """Lag maximising the frame-weighted mean correlation over clips."""
    sums, weights = {}, {}
    for n, by_lag in entries:
        for k, r in by_lag.items():
            if r is not None and math.isfinite(r):
                sums[int(k)] = sums.get(int(k), 0.0) + n * r
                weights[int(k)] = weights.get(int(k), 0) + n
    if not sums:
        return {f"{key}_lag_frames": None, f"{key}_corr": None}
    best = max(sorted(sums, key=abs), key=lambda k: sums[k] / weights[k])
    return {f"{key}_lag_frames": best, f"{key}_corr": sums[best] / weights[best]}


def _ratio(hits, total):
    return hits / total if total else float("nan")


def _weighted(pairs):
    pairs = [(w, v) for w, v in pairs if v is not None and math.isfinite(v) and w > 0]
    total = sum(w for w, _ in pairs)
    return sum(w * v for w, v in pairs) / total if total else float("nan")


def pool_runs(runs, fps) -> dict:
    """Pooled metrics over a list of run records (same engine and mode)."""
    ok = [r for r in runs if "metrics" in r]
    m = [r["metrics"] for r in ok]
    out = {"n_clips": len(ok), "n_failed": len(runs) - len(ok),
           "n_frames": sum(x["n_frames"] for x in m),
           "seconds_of_speech": sum(x["n_frames"] for x in m) / fps}
    for name, hits, total in (("rest_in_silence", "rest_in_silence_frames", "n_silent_frames"),):
        h, t = sum(x[hits] for x in m), sum(x[total] for x in m)
        out.update({f"{name}_rate": _ratio(h, t), hits: h, total: t})
    out["jitter_mm_per_frame2"] = _weighted((x["n_frames"] - 2, x["jitter_mm_per_frame2"]) for x in m)
    out.update(_pool_lag([(x["n_frames"], x["loudness_corr_by_lag"]) for x in m], "loudness"))
    refs = [x["reference"] for x in m if x["reference"]]
    out["n_reference_clips"] = len(refs)
    for name, hits, total in (("bilabial_closure_recall", "bilabial_hits", "n_bilabials"),
                              ("pause_rest_rate", "pause_rest_frames", "n_pause_frames"),
                              ("open_vowel_rate", "open_vowel_hits", "n_open_vowels")):
        h, t = sum(x[hits] for x in refs), sum(x[total] for x in refs)
        out.update({name: _ratio(h, t), hits: h, total: t})
    ref_frames = [x["n_frames"] for x in m if x["reference"]]
    out.update(_pool_lag([(n, x["sync_corr_by_lag"]) for n, x in zip(ref_frames, refs)], "sync"))
    engine_s = sum(r["timings"]["engine_s"] + r["timings"]["load_s"] for r in ok)
    out["engine_s"] = engine_s
    out["rtf"] = engine_s / out["seconds_of_speech"] if out["seconds_of_speech"] else float("nan")
    return out


def pool_comparisons(rows) -> dict:
    out = {"n_clips": len(rows), "n_frames": sum(r["n_frames"] for r in rows)}
    lve = _weighted((r["n_frames"], r["lve_m2"]) for r in rows)
    out["lve_m2"] = lve
    out["lve_mm"] = math.sqrt(lve) * 1000 if math.isfinite(lve) else float("nan")
    out["mve_mm"] = _weighted((r["n_frames"], r["mve_mm"]) for r in rows)
    out["fdd_mm"] = _weighted((r["n_frames"], r["fdd_mm"]) for r in rows)
    return out


def summarise(results) -> dict:
    """Pooled rows per engine and mode. "no_transcript_paired" pools the no-transcript
    runs of only the clips that also have a transcript run, so it compares like with
    like against "transcript"."""
    runs, comps = {}, {}
    for entry in results["clips"].values():
        for engine, by_mode in entry["runs"].items():
            pooled = runs.setdefault(engine, {"no_transcript": [], PAIRED: [], "transcript": []})
            for mode, run in by_mode.items():
                pooled[mode].append(run)
            if "transcript" in by_mode and "no_transcript" in by_mode:
                pooled[PAIRED].append(by_mode["no_transcript"])
        for row in entry["comparisons"]:
            comps.setdefault(f"{row['pred']} vs {row['ref']}", []).append(row)
    fps = results["meta"]["fps"]
    return {"runs": {e: {m: pool_runs(r, fps) for m, r in by_mode.items() if r}
                     for e, by_mode in runs.items()},
            "comparisons": {k: {**pool_comparisons(v), "kind": v[0]["kind"]} for k, v in comps.items()}}


# --------------------------------------------------------------------- markdown

def _f(value, spec=".2f", dash="–"):
    return dash if value is None or (isinstance(value, float) and not math.isfinite(value)) \
        else format(value, spec)


def _n(count, noun):
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _frac(rate, hits, total):
    return "–" if not total else f"{_f(rate)} ({hits}/{total})"


RUN_HEADER = ("| clip | engine | transcript | s | bilabial closure | pause rest | open vowels | "
              "sync lag (r) | loudness r (lag) | rest in silence | jitter mm/f² | time s |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|")


def _run_cells(m, ref_key="reference"):
    """Metric cells shared by per-clip and pooled rows (m: clip metrics or a pooled dict)."""
    ref = m.get(ref_key) if ref_key else m
    if ref_key and ref is None:
        ref_cells = ["–"] * 4
    else:
        ref_cells = [
            _frac(ref["bilabial_closure_recall"], ref["bilabial_hits"], ref["n_bilabials"]),
            _frac(ref["pause_rest_rate"], ref["pause_rest_frames"], ref["n_pause_frames"]),
            _frac(ref["open_vowel_rate"], ref["open_vowel_hits"], ref["n_open_vowels"]),
            "–" if ref.get("sync_lag_frames") is None
            else f"{ref['sync_lag_frames']:+d} ({_f(ref['sync_corr'])})",
        ]
    loud = ("–" if m.get("loudness_lag_frames") is None
            else f"{_f(m['loudness_corr'])} ({m['loudness_lag_frames']:+d})")
    rest = _frac(m.get("rest_in_silence_rate"), m.get("rest_in_silence_frames"), m.get("n_silent_frames"))
    return ref_cells + [loud, rest, _f(m.get("jitter_mm_per_frame2"), ".3f")]


def markdown(results) -> str:
    meta = results["meta"]
    lines = [
        "# Lip-sync evaluation",
        "",
        f"{meta['date']} on {meta['machine']}; head `{Path(meta['head']).name}` "
        f"(rest gap {meta['rest_gap_mm']:.1f} mm) at {meta['fps']:g} fps; "
        f"{len(results['clips'])} clips; engines: {', '.join(meta['engines'])}; "
        f"total {meta['total_s']:.1f} s. Masks: {meta['masks']}.",
        "",
        "Reference-alignment columns (bilabial closure, pause rest, open vowels, sync lag) "
        "need a `*.phone.json`; `–` means nothing to score. Fractions show (hits/total); "
        "pooled rows sum hits and totals over clips. Sync lag and loudness lag are frames, "
        "positive = mouth late; pooled lags maximise the frame-weighted mean correlation. "
        f"Rest in silence: frames {-SILENCE_DB:g} dB below the clip's peak with gap <= "
        f"{metrics.CLOSED_GAP * 1000:g} mm. Time: decode + engine, seconds.",
        "",
        "## Per clip",
        "",
        RUN_HEADER,
    ]
    for name, entry in results["clips"].items():
        if "error" in entry:
            lines.append(f"| {name} | – | – | – | FAILED: {entry['error'][:100]} |" + " |" * 7)
        for engine, by_mode in entry["runs"].items():
            for mode, run in by_mode.items():
                label = MODE_LABEL[mode]
                if mode == "transcript" and entry.get("transcript_dictionary_words") == 0:
                    label += " (no dictionary words: phone loop)"
                if "error" in run:
                    lines.append(f"| {name} | {engine} | {label} | {entry['duration_s']:.1f} | "
                                 f"FAILED: {run['error'][:80]} |" + " |" * 7)
                    continue
                t = run["timings"]["engine_s"] + run["timings"]["load_s"]
                lines.append("| " + " | ".join([name, engine, label, f"{entry['duration_s']:.1f}"]
                                                + _run_cells(run["metrics"]) + [f"{t:.2f}"]) + " |")
    for engine, by_mode in results["summary"]["runs"].items():
        for mode, p in by_mode.items():
            lines.append("| " + " | ".join([f"**pooled ({_n(p['n_clips'], 'clip')}, {p['n_reference_clips']} "
                                            f"with reference)**", engine, MODE_LABEL[mode],
                                            f"{p['seconds_of_speech']:.1f}"]
                                           + _run_cells(p, None) + [f"{p['engine_s']:.2f}"]) + " |")
    lines += [
        "",
        "## Between sequences",
        "",
        "No ground-truth meshes exist for these clips, so each engine's output **without** "
        "a transcript is compared against the same engine **with** the transcript (the best "
        "reference we have); with several engines, engines are also compared with each other. "
        "LVE: per frame the max over the lip-mask vertices of the squared error, mean over "
        "frames (mm², and its square root in mm). MVE: mean vertex distance (mm). FDD: "
        "upper-face (forehead + eye region) dynamics deviation, reference minus prediction (mm).",
        "",
        "| clip | prediction | reference | LVE mm² | √LVE mm | MVE mm | FDD mm |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in results["clips"].items():
        for row in entry["comparisons"]:
            lines.append(_comparison_row(name, row))
    for key, row in results["summary"]["comparisons"].items():
        lines.append(_comparison_row(f"**pooled ({_n(row['n_clips'], 'clip')})**", {**row, **dict(
            zip(("pred", "ref"), key.split(" vs ")))}))
    if not any(e["comparisons"] for e in results["clips"].values()):
        lines.append("| (none: needs --transcripts with a transcript, or two engines) | | | | | | |")
    return "\n".join(lines) + "\n"


def _comparison_row(name, row):
    lve_mm2 = None if row.get("lve_m2") is None else row["lve_m2"] * 1e6
    return (f"| {name} | {row['pred']} | {row['ref']} | {_f(lve_mm2, '.2f')} | {_f(row['lve_mm'])} | "
            f"{_f(row['mve_mm'], '.3f')} | {_f(row['fdd_mm'], '.4f')} |")


def summary_markdown(results) -> str:
    """The pooled rows of results.md (what `make eval` prints)."""
    text = markdown(results)
    keep = [line for line in text.splitlines()
            if line.startswith(("| clip", "|---", "| **pooled"))]
    return "\n".join(keep)


# ------------------------------------------------------------------------- plot

PHONE_COLOURS = {"bilabial": "#d62728", "open_vowel": "#1f77b4", "other_vowel": "#9ecae1",
                 "consonant": "#bdbdbd", "silence": "#ffffff"}


def _phone_class(label):
    if label == metrics.SILENCE:
        return "silence"
    if label in metrics.BILABIALS:
        return "bilabial"
    if label in metrics.OPEN_VOWELS:
        return "open_vowel"
    if label in metrics.OTHER_VOWELS:
        return "other_vowel"
    return "consonant"


PLOT_SECONDS_PER_ROW = 8.0  # longer clips wrap onto several rows at the same time scale
PLOT_INCHES_PER_SECOND = 2.0


def plot_clip(path, clip, entry, sequences, reference, rest_gap, fps):
    """Lip gap of every run over time, phone spans under it, M/P/B shaded."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if reference is not None:
        rows = [("reference (phone.json)", [(p.label, p.start, p.end) for p in reference])]
    else:  # no reference: each run's own phones, the forced-aligned ones first
        ordered = sorted(sequences, key=lambda k: (k[1] != "transcript", k[0]))
        rows = [(f"{e}, transcript {MODE_LABEL[m]}", entry["runs"][e][m]["phones"]) for e, m in ordered]
    gaps = {key: metrics.lip_gap(v) * 1000 for key, v in sequences.items()}
    top = max(float(g.max()) for g in gaps.values()) * 1.05 + 0.5
    duration = entry["duration_s"]
    n_rows = max(1, math.ceil(duration / PLOT_SECONDS_PER_ROW - 1e-9))
    span_s = duration if n_rows == 1 else PLOT_SECONDS_PER_ROW
    left_in = 1.5  # room for the phone-row names
    width = max(10.0, PLOT_INCHES_PER_SECOND * span_s + left_in + 0.2)
    block = [3.0] + [0.42] * len(rows)
    ratios = block + ([0.55] + block) * (n_rows - 1)  # 0.55: spacer with the x labels
    height = sum(ratios) + 1.3  # + title, legend and the last x axis
    fig = plt.figure(figsize=(width, height), dpi=100)
    grid = fig.add_gridspec(len(ratios), 1, height_ratios=ratios, hspace=0.08)
    inches_per_s = (width - left_in - 0.1) / span_s
    rest_mm = rest_gap * 1000
    for r in range(n_rows):
        t0, t1 = r * span_s, min((r + 1) * span_s, duration) if n_rows > 1 else duration
        base = r * (len(block) + 1)
        ax = fig.add_subplot(grid[base])
        for _, start, end in (p for p in rows[0][1] if p[0] in metrics.BILABIALS):
            ax.axvspan(start, end, color=PHONE_COLOURS["bilabial"], alpha=0.15, lw=0)
        for (engine, mode), gap in gaps.items():
            ax.plot(np.arange(len(gap)) / fps, gap, lw=1.3, ls="-" if mode == "transcript" else "--",
                    label=f"{engine}, transcript {MODE_LABEL[mode]}")
        ax.axhline(rest_mm, color="k", lw=0.8, ls=":", label=f"rest {rest_mm:.1f} mm")
        ax.axhline(rest_mm + metrics.MIN_OPEN * 1000, color="tab:green", lw=0.8, ls="-.",
                   label=f"open: rest + {metrics.MIN_OPEN * 1000:g} mm")
        ax.axhline(metrics.CLOSED_GAP * 1000, color="tab:red", lw=0.6, ls=":",
                   label=f"closed <= {metrics.CLOSED_GAP * 1000:g} mm")
        ax.set_xlim(t0, t0 + span_s)
        ax.set_ylim(0, top)
        ax.set_ylabel("lip gap (mm)")
        ax.tick_params(labelbottom=False)
        ax.grid(alpha=0.3)
        if r == 0:
            ax.axvspan(0, 0, color=PHONE_COLOURS["bilabial"], alpha=0.15, label=f"M/P/B ({rows[0][0]})")
            ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=7.5, ncol=4, frameon=False)
        for i, (title, phones) in enumerate(rows):
            pax = fig.add_subplot(grid[base + 1 + i], sharex=ax)
            _draw_phones(pax, [p for p in phones if p[2] > t0 and p[1] < t1], inches_per_s)
            pax.set_ylabel(title, rotation=0, ha="right", va="center", fontsize=7)
            if i < len(rows) - 1:
                pax.tick_params(labelbottom=False)
        pax.set_xlabel("time (s)", fontsize=8)
    source = f"transcript from {entry['transcript_source']}" if entry["transcript"] else "no transcript"
    fig.suptitle(f"{clip.name}: {duration:.1f} s at {fps:g} fps, {source}"
                 f"{', reference phones from .phone.json' if reference is not None else ''}",
                 x=0.01, ha="left", fontsize=10)
    fig.subplots_adjust(left=left_in / width, right=1 - 0.1 / width, top=1 - 0.85 / height,
                        bottom=0.5 / height)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _draw_phones(pax, phones, inches_per_s):
    """Phone spans coloured by class, labelled; narrow ones staggered in smaller type."""
    narrow = 0
    for label, start, end in phones:
        pax.axvspan(start, end, color=PHONE_COLOURS[_phone_class(label)], alpha=0.8, lw=0.3,
                    ec="#555555")
        if label == metrics.SILENCE:
            continue
        if (end - start) * inches_per_s >= 0.06 * len(label) + 0.02:  # fits: centred
            pax.text((start + end) / 2, 0.5, label, ha="center", va="center", fontsize=6.5, clip_on=True)
        else:
            narrow += 1
            pax.text((start + end) / 2, 0.78 if narrow % 2 else 0.22, label, ha="center",
                     va="center", fontsize=5, clip_on=True)
    pax.set_yticks([])
    pax.set_ylim(0, 1)


# -------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", default="all", help="engine name, or 'all' (default)")
    parser.add_argument("--audio-dir", default=str(SPEECH_ASSETS),
                        help="folder searched recursively for wav/flac/aiff/ogg/mp3 "
                             "(default: ../shared/assets/speech)")
    parser.add_argument("--transcripts", action="store_true",
                        help="also run with the transcript wherever one exists (<stem>.txt, "
                             "*.transcription, or the shared README's)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default out/eval)")
    parser.add_argument("--head", default=str(DEFAULT_HEAD), help="FLAME head (default flame_template.ply)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def run_from_args(args) -> dict:
    from flame_lipsync.pipeline.engines import ENGINES
    if args.engine == "all":
        engines = list(ENGINES)
    elif args.engine in ENGINES:
        engines = [args.engine]
    else:
        raise ValueError(f"unknown engine '{args.engine}': choose 'all' or one of {', '.join(ENGINES)}")
    args.audio_dir = args.audio_dir or str(SPEECH_ASSETS)
    args.head = args.head or str(DEFAULT_HEAD)
    clips = find_clips(args.audio_dir)
    say = lambda message: print(message, file=sys.stderr)  # noqa: E731
    say(f"eval: {len(engines)} engine(s) x {len(clips)} clip(s) from {args.audio_dir}"
        f"{', with transcripts where given' if args.transcripts else ''}")
    results = evaluate(engines, clips, args.out, args.head, args.fps, args.transcripts,
                       plots=not args.no_plots, say=say)
    print(summary_markdown(results))
    out = Path(args.out)
    say(f"wrote {out / 'results.json'}, {out / 'results.md'}"
        f"{'' if args.no_plots else ', ' + str(out / 'plots') + '/*.png'} "
        f"in {results['meta']['total_s']:.1f} s")
    if results["meta"]["failed_runs"]:
        raise RuntimeError(f"{results['meta']['failed_runs']} clip(s) or engine run(s) failed "
                           f"(see {out / 'results.md'})")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tools/evaluate.py", description=__doc__.split("\n")[0])
    add_arguments(parser)
    run_from_args(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
