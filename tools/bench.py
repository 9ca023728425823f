"""Speed and memory on real speech, with baselines measured in the same run (`make bench`).

For 10 s, 60 s and 600 s of speech (the shared librivox clips concatenated,
with their transcripts), every engine in core.engines.ENGINES with and without
the transcript, and both bake modes, through the add-on's own path: a scene
from operators/headless.py `open_head`, then pipeline.perform and
`write`. Wall time is split into

    load            decode + mono + resample (core.audio.load_speech)
    recognition     phones / speech features (the engine's "recognition" + "features")
    inference       the network (the engine's "inference"; 0 for the phonetic engine)
    post            everything else in `pipeline.perform`: coarticulation, loudness, motion
    bake            `write`: shape keys + action, or the PC2 file + MeshCache modifier

Real-time factor = (load + recognition + inference + post + bake) / speech
duration (lower is faster; 0.05 = 20x faster than real time). Bringing up bpy
and the head ("setup") is reported apart. Each case runs in a fresh subprocess,
so its peak RSS (ru_maxrss) is its own; `setup_rss_mb` is the peak before the
audio is touched, so `peak - setup` is what the speech itself needed.

Baselines, same run: decoding the audio alone (the floor), and the naive bake
loops of tools/bench_bake.py (keyframe_insert per frame per control; a PC2
writer packing each vertex) on the controls the engine produced, each timed on
a leading subset when it would exceed --naive-budget and extrapolated linearly.
Cold start: `python cli.py bake` on the 10 s clip, as a subprocess.

Writes out/bench.json and out/bench.md (the Markdown table, also printed).

    python tools/bench.py [--seconds 10 60 600] [--fps 30] [--naive-budget 8]
"""
import argparse
import dataclasses
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from flame_lipsync.core.flame import FLAME_ASSETS, SPEECH_ASSETS

LIBRIVOX = SPEECH_ASSETS / "librivox"
HEAD = FLAME_ASSETS / "flame_template.ply"
MODES = {"SHAPE_KEYS": "shape keys", "MESH_CACHE": "mesh cache"}
DEFAULT_SECONDS = (10.0, 60.0, 600.0)
PREVIOUS = Path(__file__).resolve().parent / "bench_previous.json"  # the last release's figures


def peak_rss_mb() -> float:
    """This process's peak resident memory, MB. VmHWM, not ru_maxrss: a child's
    ru_maxrss starts from its parent's peak (it survives fork + exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


# --------------------------------------------------------------------- inputs

def _spoken_words(phone_json: Path, before: float) -> int | None:
    """How many transcript words start before `before` seconds (reference alignment)."""
    if not phone_json.is_file():
        return None
    words = json.loads(phone_json.read_text())["w"]
    return sum(1 for w in words if not w["t"].startswith(("<", "[")) and w["b"] + w["d"] / 2 < before)


def make_long_clip(seconds: float, folder: Path, first: int = 0) -> tuple[Path, Path]:
    """The librivox clips (and their transcripts) concatenated, in a loop from clip
    `first`, cut at `seconds`. The words of the clip that is cut are cut where its
    reference alignment (*.phone.json) says, so the transcript matches the audio."""
    import numpy as np
    import soundfile

    clips = sorted(LIBRIVOX.glob("*.wav"))
    clips = clips[first % len(clips):] + clips[:first % len(clips)] if clips else clips
    if not clips:
        raise SystemExit(f"bench needs the shared speech clips at {LIBRIVOX}")
    audio, words, total, rate, target = [], [], 0, None, None
    while target is None or total < target:
        for wav in clips:
            samples, clip_rate = soundfile.read(wav, dtype="float32")
            if target is None:
                rate, target = clip_rate, int(round(seconds * clip_rate))
            if clip_rate != rate or samples.ndim != 1:
                raise SystemExit(f"bench expects mono clips at one rate: {wav} differs")
            need = target - total
            text = wav.with_suffix(".txt").read_text().split()
            if len(samples) > need:
                kept = _spoken_words(wav.with_suffix(".phone.json"), need / rate)
                text = text[: kept if kept is not None else int(len(text) * need / len(samples))]
                samples = samples[:need]
            audio.append(samples)
            words += text
            total += len(samples)
            if total >= target:
                break
    name = f"speech_{seconds:g}s" + (f"_from{first}" if first else "")
    wav_path, txt_path = folder / f"{name}.wav", folder / f"{name}.txt"
    soundfile.write(wav_path, np.concatenate(audio), rate)
    txt_path.write_text(" ".join(words) + "\n")
    return wav_path, txt_path


# -------------------------------------------------------------------- workers
# Each runs in its own process (python tools/bench.py --worker JSON).

def work_decode(p: dict) -> dict:
    """The floor: decode, mono, resample; nothing else imported."""
    from flame_lipsync.core.audio import load_speech
    _decoders()
    t0 = time.perf_counter()
    speech = load_speech(p["wav"], fps=p["fps"])
    return {"load": time.perf_counter() - t0, "duration": speech.duration}


def _decoders():
    """Import the audio decoders before the clock starts (load_speech imports them lazily)."""
    import soundfile  # noqa: F401
    import soxr  # noqa: F401


def _addon():
    import flame_lipsync  # noqa: F401
    from flame_lipsync.operators import headless, job
    return headless, job


def work_engine(p: dict) -> dict:
    """One engine, one bake mode, through the pipeline as the add-on runs it."""
    t0 = time.perf_counter()
    headless, job = _addon()
    from flame_lipsync import pipeline
    from flame_lipsync.core.audio import load_speech
    _decoders()
    obj = headless.open_head(str(HEAD), None)
    import bpy
    row = {"setup": time.perf_counter() - t0, "setup_rss_mb": peak_rss_mb(),
           "blender": bpy.app.version_string}

    t0 = time.perf_counter()
    speech = load_speech(p["wav"], fps=p["fps"])
    row["load"] = time.perf_counter() - t0
    settings = pipeline.Settings(engine=p["engine"], mode=p["mode"], cache_path=p.get("pc2"),
                               relative_cache=False,
                               **({"layers": None} if p.get("mouth_only") else {}),
                               transcript=Path(p["txt"]).read_text() if p["transcript"] else None)
    t0 = time.perf_counter()
    performance = pipeline.perform(speech, p["fps"], settings)
    compute = time.perf_counter() - t0
    timings = performance.metadata.get("timings", {})
    row["recognition"] = timings.get("recognition", 0.0) + timings.get("features", 0.0)
    row["inference"] = timings.get("inference", 0.0)
    row["post"] = compute - row["recognition"] - row["inference"]
    row["engine_timings"] = timings
    row["compute_rss_mb"] = peak_rss_mb()

    t0 = time.perf_counter()
    job.write(obj, performance, settings)
    row["bake"] = time.perf_counter() - t0
    row.update(frames=performance.frame_count, duration=speech.duration,
               mode_detail=performance.metadata.get("mode", ""))
    if p.get("pc2"):
        row["pc2_bytes"] = Path(p["pc2"]).stat().st_size
        Path(p["pc2"]).unlink()  # 1 GB at 600 s
    if p.get("save_controls"):
        import numpy as np
        np.save(p["save_controls"], performance.controls)
    # Warm: another bake in this process (weights, rig, decoders loaded): first of other
    # speech of the same length, as the next shot of a manifest; then the first speech
    # again, as a re-bake in the UI (another intensity or layer), whose phones are remembered.
    if not p.get("warm"):
        return row
    if p.get("other_wav"):
        t0 = time.perf_counter()
        speech = load_speech(p["other_wav"], fps=p["fps"])
        other = dataclasses.replace(settings, transcript=(
            Path(p["other_txt"]).read_text() if p["transcript"] else None))
        job.write(obj, pipeline.perform(speech, p["fps"], other), other)
        row["warm_total"] = time.perf_counter() - t0
        if p.get("pc2"):
            Path(p["pc2"]).unlink()
    t0 = time.perf_counter()
    speech = load_speech(p["wav"], fps=p["fps"])
    job.write(obj, pipeline.perform(speech, p["fps"], settings), settings)
    row["rebake_total"] = time.perf_counter() - t0
    if p.get("pc2"):
        Path(p["pc2"]).unlink()
    if p.get("mouth_only"):  # the face layers' own cost, recognition (remembered) set apart:
        layered = dataclasses.replace(settings, layers=pipeline.LayerSettings())
        for key in ("layers_first_s", "layers_again_s"):  # first: builds the lids for this head
            t0 = time.perf_counter()
            speech = load_speech(p["wav"], fps=p["fps"])
            job.write(obj, pipeline.perform(speech, p["fps"], layered), layered)
            row[key] = time.perf_counter() - t0
    return row


def work_manifest(p: dict) -> dict:
    """`cli.py bake --manifest` with `shots` jobs of one short clip, in this process:
    total and per-shot time, and how often weights and recognisers were loaded. Each shot
    gets its own copy of the clip at a slightly other gain, as shots have their own audio:
    the same samples twice would reuse the phones recognised for the first."""
    import numpy as np
    import soundfile
    from flame_lipsync import cli
    from flame_lipsync.core import phones
    from flame_lipsync.models import engine as neural
    folder = Path(p["into"]) / "manifest"
    folder.mkdir(exist_ok=True)
    samples, rate = soundfile.read(p["wav"], dtype="float32")
    for i in range(p["shots"]):
        soundfile.write(folder / f"shot_{i:03d}.wav", samples * np.float32(1 - 1e-3 * i / p["shots"]), rate)
    rows = ["audio,head,out,engine,mode"] + [
        f"{folder / f'shot_{i:03d}.wav'},{HEAD},{folder / f'shot_{i:03d}.blend'},{p['engine']},{p['mode']}"
        for i in range(p["shots"])]
    (folder / "jobs.csv").write_text("\n".join(rows) + "\n")
    t0 = time.perf_counter()
    code = cli.main(["bake", "--manifest", str(folder / "jobs.csv")])
    total = time.perf_counter() - t0
    outs = sorted(folder.glob("shot_*.blend"))
    caches = sorted(folder.glob("*.pc2"))
    row = {"exit": code, "shots": p["shots"], "total_s": total, "per_shot_s": total / p["shots"],
           "outputs": len(outs), "distinct_caches": len(caches), "engine": p["engine"], "mode": p["mode"],
           "model_loads": neural._load.cache_info().misses, "recognisers": len(phones._decoders)}
    shutil.rmtree(folder)
    return row


def work_animate(p: dict) -> dict:
    """`cli.py animate --export-npy` in this process (peak RSS of a streamed export)."""
    from flame_lipsync import cli
    out = Path(p["into"]) / "animate.npy"
    t0 = time.perf_counter()
    code = cli.main(["animate", "--audio", p["wav"], "--head", str(HEAD), "--fps", str(p["fps"]),
                     "--engine", p["engine"], "--export-npy", str(out)])
    row = {"exit": code, "total_s": time.perf_counter() - t0, "npy_bytes": out.stat().st_size if out.exists() else 0}
    out.unlink(missing_ok=True)
    return row


def work_naive(p: dict) -> dict:
    """The naive bake loop vs the add-on's bake, on the engine's controls."""
    import numpy as np
    _addon()
    from flame_lipsync.tools import bench_bake
    controls = np.load(p["controls"])
    with tempfile.TemporaryDirectory() as tmp:
        return bench_bake.bulk_vs_naive(p["mode"], controls, p["fps"], Path(tmp), p["budget"])


def work_clip(p: dict) -> dict:
    """Make a test clip here, not in the parent: a child's ru_maxrss starts at its parent's peak."""
    wav, txt = make_long_clip(p["seconds"], Path(p["into"]))
    other_wav, other_txt = make_long_clip(p["seconds"], Path(p["into"]), first=2)
    return {"wav": str(wav), "txt": str(txt), "other_wav": str(other_wav), "other_txt": str(other_txt)}


WORKERS = {"clip": work_clip, "decode": work_decode, "engine": work_engine, "naive": work_naive,
           "manifest": work_manifest, "animate": work_animate}


def worker_main(spec: str) -> None:
    p = json.loads(spec)
    row = WORKERS[p["kind"]](p)
    row["peak_rss_mb"] = peak_rss_mb()
    Path(p["result"]).write_text(json.dumps(row))


# --------------------------------------------------------------------- parent

def run_case(folder: Path, **params) -> dict:
    result = folder / "result.json"
    result.unlink(missing_ok=True)
    params["result"] = str(result)
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(params)]
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if done.returncode != 0 or not result.is_file():
        raise SystemExit(f"bench case {params} failed:\n{done.stderr[-4000:]}")
    row = json.loads(result.read_text())
    row["process_wall"] = wall
    return row


def cold_start(wav: Path, folder: Path) -> dict:
    """`python cli.py bake` on a clip, as a user starts it: wall time and peak RSS
    (its ru_maxrss; this parent stays far smaller than a bpy process, see work_clip)."""
    out = folder / "cold_start.blend"
    command = [sys.executable, str(ROOT / "cli.py"), "bake", "--audio", str(wav),
               "--head", str(HEAD), "--out", str(out)]
    with open(folder / "cold_start.log", "w+b") as log:
        t0 = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - t0
        process.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"cold start failed:\n{output[-4000:]}")
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return {"wall": wall, "peak_rss_mb": usage.ru_maxrss / scale, "summary": output.strip().splitlines()[-1].split("; saved")[0],
            "command": " ".join(["python", "cli.py"] + command[2:4] + [f"<{wav.name}>"]
                                + ["--head", HEAD.name, "--out", "<tmp>.blend"])}


def variants(engines, transcripts=(True, False)) -> list[tuple[str, bool]]:
    return [(name, transcript) for name in engines for transcript in transcripts]


def case_name(engine: str, transcript: bool) -> str:
    return f"{engine}+transcript" if transcript else engine


def run_all(args) -> dict:
    from flame_lipsync.pipeline.engines import ENGINES
    engines = args.engines or list(ENGINES)
    unknown = set(engines) - set(ENGINES)
    if unknown:
        raise SystemExit(f"unknown engine(s) {', '.join(sorted(unknown))}: choose from {', '.join(ENGINES)}")
    if not HEAD.is_file():
        raise SystemExit(f"bench needs the FLAME template at {HEAD}")
    started = time.perf_counter()
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "fps": args.fps,
               "load_average_start": os.getloadavg(),
               "naive_budget_s": args.naive_budget, "seconds": args.seconds, "cases": []}

    def log(message):
        if not args.quiet:
            print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="flame_bench_") as tmp:
        tmp = Path(tmp)

        others = {}

        def clip(seconds):
            made = run_case(tmp, kind="clip", seconds=seconds, into=str(tmp))
            others[seconds] = dict(other_wav=made["other_wav"], other_txt=made["other_txt"])
            return Path(made["wav"]), Path(made["txt"])

        clips = {s: clip(s) for s in args.seconds}
        if args.cold_start:
            wav = clips[10.0][0] if 10.0 in clips else clip(10.0)[0]
            log("cold start: python cli.py bake on the 10 s clip")
            results["cold_start"] = cold_start(wav, tmp)
        for seconds, (wav, txt) in clips.items():
            common = dict(wav=str(wav), txt=str(txt), fps=args.fps)
            log(f"{seconds:g} s: decode floor")
            row = run_case(tmp, kind="decode", **common)
            if seconds <= 60.0:  # the warm bakes (other speech, then a re-bake): the 60 s target
                common.update(others[seconds], warm=True)
            results["cases"].append({"case": "decode (floor)", "kind": "decode", "seconds": seconds, **row})
            controls = None
            for engine, transcript in variants(engines, (False,) if args.no_transcripts else (True, False)):
                for mode in args.modes:
                    log(f"{seconds:g} s: {case_name(engine, transcript)}, {MODES[mode]}")
                    save = str(tmp / f"controls_{seconds:g}.npy") if controls is None else None
                    row = run_case(tmp, kind="engine", engine=engine, transcript=transcript, mode=mode,
                                   pc2=str(tmp / "bench.pc2") if mode == "MESH_CACHE" else None,
                                   save_controls=save, **common)
                    controls = controls or save
                    results["cases"].append({"case": case_name(engine, transcript), "kind": "engine",
                                             "engine": engine, "transcript": transcript, "mode": mode,
                                             "seconds": seconds, **row})
            if seconds == 60.0 and "phonetic" in engines:  # what the face layers cost (issue 12)
                log("60 s: phonetic, mouth only (no face layers), shape keys")
                row = run_case(tmp, kind="engine", engine="phonetic", transcript=False, mode="SHAPE_KEYS",
                               mouth_only=True, **common)
                results["cases"].append({"case": "phonetic (mouth only)", "kind": "engine", "engine": "phonetic",
                                         "transcript": False, "mode": "SHAPE_KEYS", "mouth_only": True,
                                         "seconds": seconds, **row})
            if args.naive_budget > 0 and controls:
                for mode in args.modes:
                    log(f"{seconds:g} s: naive bake baseline, {MODES[mode]}")
                    row = run_case(tmp, kind="naive", mode=mode, controls=controls,
                                   budget=args.naive_budget, fps=args.fps)
                    results["cases"].append({"case": "naive bake loop", "kind": "naive", "mode": mode,
                                             "seconds": seconds, **row})
        if args.manifest_shots:
            wav = clip(3.0)[0]
            for engine in ("phonetic", "neural_fast"):
                if engine in ENGINES:
                    log(f"manifest: {args.manifest_shots} shots of 3 s, {engine}, mesh cache")
                    row = run_case(tmp, kind="manifest", wav=str(wav), shots=args.manifest_shots,
                                   engine=engine, mode="meshcache", into=str(tmp))
                    results.setdefault("manifests", []).append(row)
        for seconds, (wav, _) in clips.items():
            if seconds in (60.0, max(clips)):
                log(f"{seconds:g} s: cli.py animate --export-npy (phonetic)")
                row = run_case(tmp, kind="animate", wav=str(wav), fps=args.fps, engine="phonetic", into=str(tmp))
                results.setdefault("animate", []).append({"seconds": seconds, **row})
    for row in results["cases"]:
        if row["kind"] == "engine":
            row["processing"] = sum(row[k] for k in ("load", "recognition", "inference", "post", "bake"))
            row["rtf"] = row["processing"] / row["seconds"]
        elif row["kind"] == "decode":
            row["rtf"] = row["load"] / row["seconds"]
    results["memory_ratios"] = memory_ratios(results, long=max(args.seconds)) if max(args.seconds) > 60 else []
    results["face_layers"] = _layer_cost(results)
    results["total_wall_s"] = time.perf_counter() - started
    results["load_average_end"] = os.getloadavg()
    return results


def memory_ratios(results, long: float = 600.0, short: float = 60.0) -> list[dict]:
    """Peak RSS of each case at `long` s over the same case at `short` s (bound: <= 2)."""
    rows = {}
    for r in results["cases"]:
        if r["kind"] in ("engine", "decode"):
            rows[(r["case"], r.get("mode"), r["seconds"])] = r
    out = []
    for (case, mode, seconds), r in rows.items():
        if seconds != long or (case, mode, short) not in rows:
            continue
        s = rows[(case, mode, short)]
        entry = {"case": case, "mode": mode, "short_s": short, "long_s": long, "kind": r["kind"],
                 "peak_short_mb": s["peak_rss_mb"], "peak_long_mb": r["peak_rss_mb"],
                 "ratio": r["peak_rss_mb"] / s["peak_rss_mb"]}
        if "setup_rss_mb" in r:
            grow_s, grow_l = s["peak_rss_mb"] - s["setup_rss_mb"], r["peak_rss_mb"] - r["setup_rss_mb"]
            entry.update(above_setup_short_mb=grow_s, above_setup_long_mb=grow_l,
                         above_setup_ratio=grow_l / grow_s if grow_s > 0 else None)
        out.append(entry)
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        model = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
        cpu = model.group(1).strip() if model else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}, Python {platform.python_version()}"


# ------------------------------------------------------------------- reporting

def _s(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _layer_cost(results) -> dict | None:
    """The 60 s phonetic shape-key bake with every face layer against mouth only."""
    def case(mouth_only):
        return next((r for r in results["cases"] if r["kind"] == "engine" and r["seconds"] == 60.0
                     and r["case"] in ("phonetic", "phonetic (mouth only)") and r["mode"] == "SHAPE_KEYS"
                     and bool(r.get("mouth_only")) == mouth_only), None)
    full, bare = case(False), case(True)
    if not (full and bare):
        return None
    cost = {"with": full["processing"], "without": bare["processing"],
            "first_pct": 100 * (full["processing"] / bare["processing"] - 1),
            "warm_with": full["warm_total"], "warm_without": bare["warm_total"],
            "warm_pct": 100 * (full["warm_total"] / bare["warm_total"] - 1)}
    if "layers_first_s" in bare:  # same process, same phones: the layers' time alone
        cost.update(rebake_without=bare["rebake_total"], rebake_first_with=bare["layers_first_s"],
                    rebake_again_with=bare["layers_again_s"],
                    own_first_pct=100 * (bare["layers_first_s"] - bare["rebake_total"]) / bare["processing"],
                    own_again_pct=100 * (bare["layers_again_s"] - bare["rebake_total"]) / bare["processing"])
    return cost


def markdown(results) -> str:
    blender = next((r["blender"] for r in results["cases"] if "blender" in r), "?")
    lines = [f"Benchmark {results['date']} on {results['machine']}, Blender {blender} (bpy module); "
             f"{results['fps']:g} fps, FLAME template (5023 vertices); each case a fresh process.", "",
             "| speech | case | bake mode | load s | recognition s | inference s | post s | bake s "
             "| total s | RTF | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["cases"]:
        mode = MODES.get(r.get("mode"), "-")
        if r["kind"] == "decode":
            lines.append(f"| {r['seconds']:g} s | decode only (floor) | - | {_s(r['load'])} | - | - | - | - "
                         f"| {_s(r['load'])} | {r['rtf']:.4f} | {r['peak_rss_mb']:.0f} |")
        elif r["kind"] == "engine":
            lines.append(f"| {r['seconds']:g} s | {r['case']} | {mode} | {_s(r['load'])} "
                         f"| {_s(r['recognition'])} | {_s(r['inference'])} | {_s(r['post'])} | {_s(r['bake'])} "
                         f"| {_s(r['processing'])} | {r['rtf']:.4f} | {r['peak_rss_mb']:.0f} |")
    warm = [r for r in results["cases"] if r["kind"] == "engine" and "warm_total" in r]
    if warm:
        lines += ["", "Warm: a second bake in the same process (weights, rig and recogniser loaded; "
                  "audio decode + engine + motion + bake), seconds: *warm* on other speech of the same "
                  "length (the next shot), *re-bake* on the same speech again (another intensity or "
                  "layer in the UI: its phones are remembered):", "",
                  "| speech | case | bake mode | first s | warm s | re-bake s |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['seconds']:g} s | {r['case']} | {MODES.get(r.get('mode'), '-')} | {_s(r['processing'])} "
                  f"| {_s(r['warm_total'])} | {_s(r.get('rebake_total', float('nan')))} |" for r in warm]
    layers = _layer_cost(results)
    if layers:
        lines += ["", "Face layers (eyes, brows, head, emotion) on 60 s, phonetic, shape keys: "
                  f"{_s(layers['with'])} s with them, {_s(layers['without'])} s mouth only "
                  f"({layers['first_pct']:+.0f} %); warm {_s(layers['warm_with'])} s against "
                  f"{_s(layers['warm_without'])} s ({layers['warm_pct']:+.0f} %)."]
        if "own_first_pct" in layers:
            lines += ["", "The layers' own time (same process and speech, phones remembered, so the "
                      f"recogniser's run-to-run noise is out): re-bake mouth only {_s(layers['rebake_without'])} s, "
                      f"with the layers {_s(layers['rebake_first_with'])} s the first time (the head's lids "
                      f"are built) and {_s(layers['rebake_again_with'])} s after: "
                      f"{layers['own_first_pct']:+.1f} % / {layers['own_again_pct']:+.1f} % of the mouth-only "
                      f"bake's {_s(layers['without'])} s."]
    for m in results.get("manifests", []):
        lines += ["", f"Manifest: {m['shots']} shots of a 3 s clip, each its own file ({m['engine']}, {m['mode']}) in one "
                  f"`cli.py bake --manifest` process: {m['total_s']:.1f} s, {m['per_shot_s']:.2f} s a shot, "
                  f"exit {m['exit']}, {m['outputs']} .blend files, {m['distinct_caches']} distinct PC2 caches, "
                  f"network weights loaded {m['model_loads']} time(s), {m['recognisers']} recogniser(s) made."]
    for a in results.get("animate", []):
        lines += ["", f"`cli.py animate --export-npy` on {a['seconds']:g} s (phonetic, streamed to a memory "
                  f"map): {a['total_s']:.1f} s, peak RSS {a['peak_rss_mb']:.0f} MB, "
                  f"{a['npy_bytes'] / 1e6:.0f} MB written, exit {a['exit']}."]
    previous = json.loads(PREVIOUS.read_text()) if PREVIOUS.is_file() else None
    if previous:
        before = {(r["seconds"], r["case"], r["mode"]): r for r in previous["cases"]}
        pairs = [(r, before[(r["seconds"], r["case"], r.get("mode"))]) for r in results["cases"]
                 if r["kind"] == "engine" and (r["seconds"], r["case"], r.get("mode")) in before]
        if pairs:
            lines += ["", f"Against the previous release ({previous['release']}; tools/bench_previous.json):", "",
                      "| speech | case | bake mode | previous total s | now total s | now / previous | warm s |",
                      "|---|---|---|---|---|---|---|"]
            lines += [f"| {r['seconds']:g} s | {r['case']} | {MODES[r['mode']]} | {_s(b['total_s'])} | {_s(r['processing'])} "
                      f"| {r['processing'] / b['total_s']:.2f} | {_s(r.get('warm_total', float('nan')))} |" for r, b in pairs]
    lines += ["", "RTF = (load + recognition + inference + post + bake) / speech duration (lower is "
              "faster); setup (import bpy + add-on, build the head scene) is excluded and reported in "
              "bench.json. Recognition includes loading the pocketsphinx model (~0.3 s)."]
    naive = [r for r in results["cases"] if r["kind"] == "naive"]
    if naive:
        lines += ["", "Bake baseline: the add-on's bake (operators/job.py `write`) vs the naive loop "
                  "(keyframe_insert per frame per control; struct.pack per vertex per frame) on the same "
                  "engine controls, same process:", "",
                  "| speech | bake mode | add-on bake s | naive loop s | naive / add-on | naive frames timed "
                  "| same output |", "|---|---|---|---|---|---|---|"]
        for r in naive:
            est = "≥ " if r["naive_extrapolated"] else ""
            timed = (f"{r['naive_frames_timed']} of {r['frames']} (linear extrapolation)"
                     if r["naive_extrapolated"] else f"all {r['frames']}")
            lines.append(f"| {r['seconds']:g} s | {MODES[r['mode']]} | {_s(r['bulk_s'])} | {est}{_s(r['naive_s'])} "
                         f"| {est}{r['ratio']:.0f}x | {timed} | {r['same_output']} |")
        lines += ["", "keyframe_insert slows down as the curve grows, so its linear extrapolation is a "
                  "lower bound."]
    if "cold_start" in results:
        c = results["cold_start"]
        lines += ["", f"Cold start: `{c['command']}` took {c['wall']:.2f} s wall, peak RSS "
                  f"{c['peak_rss_mb']:.0f} MB (no --fps: the new scene's 24 fps; it reported: {c['summary']})."]
    if results.get("memory_ratios"):
        longest = max(m["long_s"] for m in results["memory_ratios"])
        lines += ["", f"Memory bound ({longest:g} s must need at most 2x the peak of 60 s; the decode floor is "
                  "shown for scale, the whole clip is decoded into memory):", "",
                  f"| case | bake mode | peak 60 s MB | peak {longest:g} s MB | ratio | above setup 60 s MB "
                  f"| above setup {longest:g} s MB | ratio above setup |", "|---|---|---|---|---|---|---|---|"]
        for m in results["memory_ratios"]:
            above = ("| - | - | - |" if "above_setup_short_mb" not in m else
                     f"| {m['above_setup_short_mb']:.0f} | {m['above_setup_long_mb']:.0f} | "
                     f"{m['above_setup_ratio']:.2f} |")
            lines.append(f"| {m['case']} | {MODES.get(m['mode'], '-')} | {m['peak_short_mb']:.0f} "
                         f"| {m['peak_long_mb']:.0f} | {m['ratio']:.2f} {above}")
    if "total_wall_s" in results:
        load = "/".join(f"{x:.1f}" for x in results["load_average_start"])
        lines += ["", f"Whole benchmark: {results['total_wall_s']:.0f} s (load average at the start "
                  f"{load}, 1/5/15 min, on {os.cpu_count()} cores)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=list(DEFAULT_SECONDS))
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--engines", nargs="+", help="default: every engine in core.engines.ENGINES")
    parser.add_argument("--modes", nargs="+", choices=tuple(MODES), default=list(MODES))
    parser.add_argument("--naive-budget", type=float, default=8.0,
                        help="seconds each naive bake loop may run before it is extrapolated (0: skip)")
    parser.add_argument("--no-cold-start", dest="cold_start", action="store_false")
    parser.add_argument("--no-transcripts", action="store_true",
                        help="only the engines without their transcript (the defaults)")
    parser.add_argument("--out-dir", default=str(ROOT / "out"))
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--manifest-shots", type=int, default=200, help="manifest case: shots (0: skip)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.worker)
        return 0
    results = run_all(args)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(results)
    (out / "bench.json").write_text(json.dumps(results, indent=2))
    (out / "bench.md").write_text(text + "\n")
    print(text)
    print(f"\nwrote {out / 'bench.json'} and {out / 'bench.md'}", file=sys.stderr)
    over = [m for m in results["memory_ratios"] if m["kind"] == "engine" and m["ratio"] > 2.0]
    for m in over:
        print(f"memory bound broken: {m['case']} {m['mode']}: {max(args.seconds):g} s needs {m['ratio']:.2f}x the peak of 60 s",
              file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
