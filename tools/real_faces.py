"""Real-face eval: every engine against tracked talking-face video, beside the loudness floor.

    python tools/real_faces.py [--videos ../shared/assets/video] [--out out/eval]

For every video in ../shared/assets/video (its README lists them):
  1. track it with tools/face_tracking.py in .venv-track (cached by the file's sha256 in
     out/tracks; `make venv-track` builds that environment);
  2. fit the rig to the track (tools/rig_fit.py; cached beside the track);
  3. run every engine on the clip's own audio at the video's fps (`predict`, the one
     adapter to the product) and the loudness floor (RMS envelope scaled to the measured
     range), and score each against the track.

What is compared with what:
  - real aperture: the tracker's inner-lip opening, MediaPipe 13-14, in mm of the FLAME
    template; predicted aperture: the rig's lip gap |v3546 - v3504| (core.flame) in mm.
    (Through the embedding MediaPipe 13 sits 2.8 mm below FLAME's upper lip edge, so the
    embedded 13-14 of a prediction reads 20.9 mm at jaw_open = 1 against a 24.4 mm lip
    gap and cannot close: the lip gap is the prediction's measure.)
  - closure: real lips touch when the aperture < 1 mm (face_tracking.CONTACT_MM); ours
    when the lip gap < 1 mm; F1 with +-1 frame.
  - width: MediaPipe 61-291 on the track; the same landmarks through the embedding on
    the prediction.
  - lip landmark error: the 40 embedded lip landmarks of the prediction vs. those of the
    rig-fitted real trajectory (both on the template), per frame the largest, mean over
    frames (mm).
  - lag: best-lag correlation within +-400 ms, positive = prediction late. A lag every
    predictor shares on a clip (loudness included) is the clip's audio/video offset: it is
    recorded in the clip table and corrected once for the clip (closure, width, landmark
    error are scored at it; the per-predictor lag is reported relative to it).
Transcripts are not shipped with the videos, so the phonetic engine runs without one.

Outputs: out/eval/real_faces.json, real_faces.md, plots/real_<clip>.png.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from flame_lipsync import pipeline
from flame_lipsync.core import atomic
from flame_lipsync.core import face_metrics as fm
from flame_lipsync.core.flame import PROJECT_ROOT, SHARED_ASSETS
from flame_lipsync.core.rig import CONTROLS
from flame_lipsync.tools import rig_fit

VIDEOS = SHARED_ASSETS / "video"
TRACK_PY = PROJECT_ROOT / ".venv-track" / "bin" / "python"
TRACKER = PROJECT_ROOT / "tools" / "face_tracking.py"
CONTACT_MM = 1.0          # as tools/face_tracking.py
LONG_S = 4.0
LOUDNESS = "loudness"


# ---- the one adapter to the product ------------------------------------------------------

def predict(engine: str, wav_path, fps: float):
    """Run `engine` on a WAV at `fps` -> (controls (T, 10), vertices (T, 5023, 3) metres on
    the FLAME template, the Performance's metadata). The only place the eval calls the
    product; point it at whatever the pipeline's entry is."""
    from flame_lipsync.core import phones
    phones.forget_recent()  # each engine recognises afresh (its time is its own)
    speech = pipeline.load_audio(wav_path, fps=fps)
    performance = pipeline.perform(speech, fps, pipeline.Settings(engine=engine))
    vertices = pipeline.pose(performance, rig_fit.embedding().template.astype(np.float32))
    return performance.controls, vertices, performance.metadata


# ---- tracking + fit (cached) --------------------------------------------------------------

def track_all(videos: list[Path], tracks: Path, jobs: int, summary_name: str = "summary.json") -> list[dict]:
    """Track `videos` (cached); their summary goes to tracks/`summary_name`. "summary.json"
    is the whole set's, which tools/upper_face_eval.py reads: a subset names its own."""
    if not TRACK_PY.is_file():
        raise SystemExit(f"tracking environment missing ({TRACK_PY}): run `make venv-track`")
    summary = tracks / summary_name
    tracks.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([str(TRACK_PY), str(TRACKER), *map(str, videos), "--out", str(tracks),
                           "--jobs", str(jobs), "--summary", str(summary)],
                          capture_output=True, text=True)
    for line in done.stdout.splitlines():
        print("  track:", line, flush=True)
    if not summary.is_file():
        raise SystemExit(f"the tracker failed:\n{done.stderr[-2000:]}")
    return json.loads(summary.read_text())


def fitted(npz: Path, track: dict) -> dict:
    cache = rig_fit.fit_cache(npz)
    if cache.is_file() and cache.stat().st_mtime >= npz.stat().st_mtime:
        with np.load(cache) as data:
            return {k: data[k] for k in data.files}
    fit = rig_fit.fit_track(track)
    out = {"controls": fit.controls, "residual_mm": fit.residual_mm, "rest_mm": fit.rest_mm}
    fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".npz.part")
    os.close(fd)
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **out)
    os.replace(tmp, cache)
    return out


def read_wav(path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0


# ---- scoring ------------------------------------------------------------------------------

def shift(x: np.ndarray, frames: int) -> np.ndarray:
    """x delayed by `frames` removed: out[t] = x[t + frames] (NaN past the end)."""
    x = np.asarray(x, np.float64)
    out = np.full(x.shape, np.nan)
    if frames >= 0:
        out[:len(x) - frames] = x[frames:]
    else:
        out[-frames:] = x[:len(x) + frames]
    return out


def score_clip(name: str, track: dict, fit: dict, wav: str, engines: list[str]) -> tuple[dict, dict]:
    fps = float(track["grid_fps"])
    real_ap = track["aperture"].astype(np.float64)
    real_width = track["mouth_width"].astype(np.float64)
    real_closed = np.asarray(track["lip_contact"], bool)
    detected = np.asarray(track["detected"], bool)
    real_lips = rig_fit.real_lip_landmarks(np.nan_to_num(fit["controls"]))
    real_lips[~np.isfinite(fit["controls"]).all(1)] = np.nan
    T = len(real_ap)
    series, meta = {}, {}
    for engine in engines:
        t0 = time.perf_counter()
        controls, vertices, metadata = predict(engine, wav, fps)
        n = min(T, len(vertices))
        pad = lambda a: np.concatenate([a[:n], np.full((T - n,) + a.shape[1:], np.nan)])  # noqa: E731
        series[engine] = {
            "aperture": pad(rig_fit.lip_gap_mm(vertices)),
            "width": pad(rig_fit.mouth_width_mm(vertices)),
            "lips": pad(rig_fit.embedding().landmarks(vertices, rig_fit.LIPS) * 1000.0),
            "controls": pad(np.asarray(controls, np.float64)),
        }
        meta[engine] = {"seconds": time.perf_counter() - t0, "phones": metadata.get("phones", [])}
    samples = read_wav(wav)
    series[LOUDNESS] = {"aperture": fm.loudness_floor(samples, 16000, fps, real_ap)}

    raw = {p: fm.best_lag_correlation(s["aperture"], real_ap, fps) for p, s in series.items()}
    offset_ms = fm.shared_offset([lag for _, lag in raw.values()], fps)
    k = int(round(offset_ms * fps / 1000.0))
    scores = {}
    for p, s in series.items():
        r, lag = fm.best_lag_correlation(s["aperture"], real_ap, fps, centre=k)
        ap = shift(s["aperture"], k)
        closed = np.nan_to_num(ap, nan=np.inf) < CONTACT_MM
        valid = detected & np.isfinite(ap)
        row = {"r": r, "lag_ms": lag - offset_ms, "raw_lag_ms": raw[p][1],
               "r_at_offset": fm.correlation_at(ap, real_ap),
               "closure_f1": fm.closure_f1(closed, real_closed, 1, valid),
               "amplitude_ratio": fm.amplitude_ratio(ap[valid], real_ap[valid])}
        if "width" in s:
            row["width_r"] = fm.correlation_at(shift(s["width"], k), real_width)
            lips = np.stack([shift(s["lips"][:, i, j], k) for i in range(s["lips"].shape[1])
                             for j in range(3)], -1).reshape(T, -1, 3)
            row["lve_mm"] = fm.lip_landmark_error(lips, real_lips)
        scores[p] = row
    clip = {
        "clip": name, "seconds": T / fps, "fps": fps, "frames": T,
        "detection_rate": float(detected[track["shown"]].mean()), "fit_residual_mm": float(np.nanmean(fit["residual_mm"])),
        "real_aperture_p95_mm": float(np.nanpercentile(real_ap, 95)),
        "real_closed_fraction": float(real_closed[detected].mean()) if detected.any() else float("nan"),
        "av_offset_ms": offset_ms, "scores": scores,
        "engine_seconds": {e: meta[e]["seconds"] for e in engines},
    }
    plot_data = {"fps": fps, "real": real_ap, "offset": k,
                 "pred": {p: shift(s["aperture"], k) for p, s in series.items()},
                 "phones": meta.get("phonetic", {}).get("phones", [])}
    return clip, plot_data


def plot_clip(path: Path, name: str, data: dict, clip: dict):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fps = data["fps"]
    t = np.arange(len(data["real"])) / fps
    fig, ax = plt.subplots(figsize=(max(10, min(24, len(t) / fps * 1.2)), 4.0), dpi=90)
    ax.plot(t, data["real"], color="black", lw=2, label="real (tracked 13-14)")
    colors = {"phonetic": "tab:blue", "neural": "tab:orange", "neural_fast": "tab:green",
              LOUDNESS: "tab:gray"}
    for p, y in data["pred"].items():
        s = clip["scores"][p]
        ax.plot(t, y, lw=1.2, color=colors.get(p), ls="--" if p == LOUDNESS else "-",
                label=f"{p} (r {s['r']:.2f}, lag {s['lag_ms']:+.0f} ms)")
    for label, start, end in data["phones"]:
        if label in ("SIL", "sil", "+SPN+", "+NSN+"):
            continue
        mid = (start + end) / 2 - data["offset"] / fps
        ax.text(mid, -1.5, label, ha="center", va="top", fontsize=6, color="tab:blue")
    ax.set_ylim(-4, max(5.0, np.nanmax(data["real"]) * 1.3))
    ax.set_xlabel("s")
    ax.set_ylabel("lip aperture, mm")
    ax.set_title(f"{name}: A/V offset {clip['av_offset_ms']:+.0f} ms corrected, face in "
                 f"{100 * clip['detection_rate']:.0f} % of frames, fit residual "
                 f"{clip['fit_residual_mm']:.1f} mm; phones: phonetic engine, no transcript",
                 fontsize=9, loc="left", pad=26)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.1), ncol=5, frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# ---- tables ------------------------------------------------------------------------------

METRICS = ("r", "lag_ms", "closure_f1", "amplitude_ratio", "width_r", "lve_mm")


def pooled(clips: list[dict], predictors: list[str]) -> dict:
    out = {}
    for subset, chosen in (("all", clips), (f">= {LONG_S:g} s", [c for c in clips if c["seconds"] >= LONG_S])):
        table = {"clips": len(chosen)}
        for p in predictors:
            table[p] = {}
            for m in METRICS:
                values = [c["scores"][p].get(m, np.nan) for c in chosen]
                values = np.array([v for v in values if v is not None], np.float64)
                table[p][m] = float(np.nanmean(values)) if np.isfinite(values).any() else None
                if m == "lag_ms":
                    table[p]["abs_lag_ms"] = (float(np.nanmean(np.abs(values)))
                                              if np.isfinite(values).any() else None)
        out[subset] = table
    out["detection_rate"] = float(np.mean([c["detection_rate"] for c in clips]))
    out["fit_residual_mm"] = float(np.mean([c["fit_residual_mm"] for c in clips]))
    out["clips_with_av_offset"] = int(sum(c["av_offset_ms"] != 0 for c in clips))
    return out


def _f(v, fmt="{:.2f}"):
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else fmt.format(v)


def markdown(result: dict) -> str:
    predictors = result["predictors"]
    lines = ["# Real faces: engines vs. tracked talking-face video", "",
             f"{len(result['clips'])} clips from `../shared/assets/video/` (tracked with MediaPipe "
             f"Face Mesh 0.10.14; face found in {100 * result['pooled']['detection_rate']:.1f} % of "
             f"frames on average; mean rig-fit residual {result['pooled']['fit_residual_mm']:.2f} mm "
             f"RMS over the 40 lip landmarks). Transcripts are not shipped with the videos: the "
             f"phonetic engine runs without one. Correlation of the predicted lip aperture "
             f"(rig lip gap) with the tracked one (MediaPipe 13-14, mm of the FLAME template) at "
             f"the best lag within +-400 ms; closure F1 with +-1 frame (lips touch below 1 mm); "
             f"amplitude = p95 ours / p95 real; width r = mouth-corner distance; LVE = lip "
             f"landmark error against the rig-fitted real trajectory. A lag shared by every "
             f"predictor on a clip is that clip's A/V offset, corrected once per clip "
             f"({result['pooled']['clips_with_av_offset']} clips).", ""]
    for subset in ("all", f">= {LONG_S:g} s"):
        table = result["pooled"][subset]
        lines += [f"## Pooled: {subset} ({table['clips']} clips; means of per-clip figures)", "",
                  "| predictor | r | lag ms | abs lag ms | closure F1 | amplitude | width r | LVE mm |",
                  "|---|---|---|---|---|---|---|---|"]
        for p in predictors:
            s = table[p]
            lines.append(f"| {p} | {_f(s['r'], '{:.3f}')} | {_f(s['lag_ms'], '{:+.0f}')} | "
                         f"{_f(s['abs_lag_ms'], '{:.0f}')} | {_f(s['closure_f1'])} | "
                         f"{_f(s['amplitude_ratio'])} | {_f(s['width_r'])} | {_f(s['lve_mm'], '{:.1f}')} |")
        lines.append("")
    lines += ["## Per clip", "",
              "| clip | s | fps | face % | fit mm | A/V offset ms | real p95 mm | " +
              " | ".join(f"{p} r (lag)" for p in predictors) + " | " +
              " | ".join(f"{p} F1" for p in predictors) + " |",
              "|" + "---|" * (7 + 2 * len(predictors))]
    for c in result["clips"]:
        s = c["scores"]
        lines.append(
            f"| {c['clip']} | {c['seconds']:.1f} | {c['fps']:g} | {100 * c['detection_rate']:.0f} | "
            f"{c['fit_residual_mm']:.2f} | {c['av_offset_ms']:+.0f} | {c['real_aperture_p95_mm']:.1f} | " +
            " | ".join(f"{_f(s[p]['r'])} ({_f(s[p]['lag_ms'], '{:+.0f}')})" for p in predictors) + " | " +
            " | ".join(_f(s[p]["closure_f1"]) for p in predictors) + " |")
    if result["problems"]:
        lines += ["", "## Clips not scored", ""] + [f"- {p}" for p in result["problems"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, default=VIDEOS)
    parser.add_argument("--out", type=Path, default=Path("out/eval"))
    parser.add_argument("--tracks", type=Path, default=Path("out/tracks"))
    parser.add_argument("--clips", nargs="*", help="only these clip names (stems)")
    parser.add_argument("--engines", nargs="*", default=list(pipeline.ENGINES))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.videos.is_dir():
        print(f"no videos at {args.videos} (clone the project beside ../shared)")
        return 2
    videos = sorted(args.videos.glob("*.mp4"))
    if args.clips:
        videos = [v for v in videos if v.stem in set(args.clips)]
    print(f"tracking {len(videos)} videos (cached in {args.tracks})", flush=True)
    tracked = track_all(videos, args.tracks, args.jobs, "summary_clips.json" if args.clips else "summary.json")
    clips, problems = [], []
    predictors = list(args.engines) + [LOUDNESS]
    for entry in tracked:
        name = Path(entry["video"]).stem
        if "error" in entry:
            problems.append(entry["error"])
            continue
        if entry["problems"] or not entry["wav"]:
            problems.append(f"{entry['video']}: " + "; ".join(entry["problems"] or ["no audio"]))
            continue
        t0 = time.perf_counter()
        try:
            track = rig_fit.load_track(entry["npz"])
            fit = fitted(Path(entry["npz"]), track)
            clip, plot_data = score_clip(name, track, fit, entry["wav"], args.engines)
        except Exception as err:  # noqa: BLE001 - one clip must not stop the eval
            problems.append(f"{entry['video']}: scoring failed ({type(err).__name__}: {err})")
            print(problems[-1], flush=True)
            continue
        plot_clip(args.out / "plots" / f"real_{name}.png", name, plot_data, clip)
        clips.append(clip)
        s = clip["scores"]
        print(f"{name}: {clip['seconds']:.1f} s, offset {clip['av_offset_ms']:+.0f} ms, fit "
              f"{clip['fit_residual_mm']:.2f} mm, r " +
              " ".join(f"{p} {s[p]['r']:.2f}" for p in predictors) +
              f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    for p in problems:
        print(p)
    if not clips:
        print("no clip could be scored")
        return 1
    result = {"predictors": predictors, "controls": list(CONTROLS), "clips": clips,
              "pooled": pooled(clips, predictors), "problems": problems,
              "notes": {"transcripts": "not shipped with the videos: phonetic runs without one",
                        "real_aperture": "MediaPipe 13-14 in mm of the FLAME template",
                        "predicted_aperture": "rig lip gap |v3546 - v3504| in mm",
                        "contact_mm": CONTACT_MM}}
    atomic.write_text(args.out / "real_faces.json", json.dumps(result, indent=1, default=float))
    atomic.write_text(args.out / "real_faces.md", markdown(result))
    print(f"wrote {args.out / 'real_faces.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
