"""Headless entry point.

    python cli.py animate --audio A [--transcript T] [--engine phonetic] --head H.ply --fps 30 --export-npy V.npy
    python cli.py render-frames rig --out docs/rig_controls.png
    python cli.py render-frames clip --audio A [--transcript T] [--reference J.phone.json] --out S.png
    python cli.py bake --audio A --head H(.blend|.ply|.obj) [--object NAME] --out O.blend [--transcript T]
                       [--engine NAME] [--mode shapekeys|meshcache] [--fps F] [--export-npy V.npy]
    python cli.py bake --manifest jobs.csv     (columns: audio,head,out[,object,transcript,engine,mode,fps])
    python cli.py preview O.blend --out preview.mp4
    python cli.py train --config training/configs/voca.json [--resume]
    python cli.py eval --engine NAME|all [--audio-dir DIR] [--transcripts] [--out out/eval]
    blender -b -P cli.py -- bake ...           (same arguments inside Blender)

Bad input ends with exit status 2 and a one-line reason on stderr.
eval, render-frames and train are development commands: they need the checkout
(tools/, training/), which the extension zip leaves out.
"""
import argparse
import importlib.util
import os
import sys
from pathlib import Path


def bootstrap():
    """The checkout is the package `flame_lipsync`: `make venv` links it into the
    environment; a Blender without that link (`blender -b -P cli.py`) loads it from
    this folder, once, under the same name. The one bootstrap of the project."""
    if importlib.util.find_spec("flame_lipsync") is None:
        root = Path(__file__).resolve().parent
        spec = importlib.util.spec_from_file_location(
            "flame_lipsync", root / "__init__.py", submodule_search_locations=[str(root)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["flame_lipsync"] = module
        spec.loader.exec_module(module)


PACKAGE = __package__ or "flame_lipsync"  # "bl_ext.<repo>.flame_lipsync" when installed


def dev_module(name: str):
    """A development module (tools/, training/) or a clear error without the checkout."""
    try:
        return importlib.import_module(f"{PACKAGE}.{name}")
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith(f"{PACKAGE}.{name.partition('.')[0]}"):
            raise RuntimeError(f"this command needs the project's checkout ({name.replace('.', '/')}.py "
                               "is not in the installed add-on): run it from a clone of the project") from None
        raise


FPS_RANGE = (1.0, 240.0)


def check_fps(value, flag: str = "--fps") -> float | None:
    """A frame rate in 1-240 and finite, or None (the scene's own)."""
    if value is None or value == "":
        return None
    try:
        fps = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{flag} must be a number of frames per second, got '{value}'") from None
    import math
    if not math.isfinite(fps) or not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
        raise ValueError(f"{flag} must be between {FPS_RANGE[0]:g} and {FPS_RANGE[1]:g} frames per second, "
                         f"got {value} (e.g. 24, 25, 29.97 or 30)")
    return fps


def _looks_like_path(value: str) -> bool:
    return value.lower().endswith(".txt") or (not any(c.isspace() for c in value.strip())
                                               and ("/" in value or "\\" in value))


def resolve_transcript(value: str | None, base: Path | None = None) -> tuple[str | None, Path | None]:
    """--transcript is a file when a file of that name exists (relative to `base`, the
    manifest's folder, when given), else the words themselves. A value that looks like
    a path (ends in .txt, or a single word with a slash) but names no file is refused:
    it would be aligned as words. Returns (text, file or None) and says which it used."""
    if not value or not value.strip():
        return None, None
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if path.is_file():
        try:
            text = path.read_bytes().decode("utf-8-sig", errors="replace")
        except OSError as err:
            from flame_lipsync.core.atomic import describe
            reason, todo = describe(err, reading=True)
            raise ValueError(f"transcript file '{path}' could not be read: {reason}; {todo}") from None
        if not text.strip():
            raise ValueError(f"transcript file '{path}' is empty: write the words spoken in it, or leave "
                             "--transcript out")
        if "\0" in text:
            raise ValueError(f"transcript file '{path}' is not text: give a plain .txt with the words spoken")
        print(f"transcript: read from the file {path}", file=sys.stderr)
        return text, path
    if path.is_dir():
        raise ValueError(f"--transcript '{value}' is a folder: give a .txt file or the words themselves")
    if _looks_like_path(value):
        raise FileNotFoundError(f"transcript file '{path}' does not exist: check the path, or pass the "
                                "words themselves in quotes")
    print(f"transcript: using the text given ({len(value.split())} words)", file=sys.stderr)
    return value, None


def read_transcript(value: str | None) -> str | None:
    """--transcript takes the text itself or a path to a file (see resolve_transcript)."""
    return resolve_transcript(value)[0]


def cmd_animate(args) -> None:
    """The pipeline as a bake runs it (engine + motion), posed on the head, to .npy."""
    import numpy as np

    from flame_lipsync import pipeline
    from flame_lipsync.core.mesh_io import load_head

    from flame_lipsync.core import atomic

    args.fps = check_fps(args.fps)
    head, _ = load_head(args.head)  # check the head before the slow part
    out = Path(args.export_npy)
    for what, source in (("audio", args.audio), ("head", args.head)):
        if Path(source).exists() and out.exists() and out.resolve() == Path(source).resolve():
            raise ValueError(f"--export-npy '{out}' is the {what} file: choose another output path")
    atomic.check_writable(out, "--export-npy")
    speech = pipeline.load_audio(args.audio, fps=args.fps)
    mouth, layers = face_settings(args)
    settings = pipeline.Settings(engine=args.engine, style=args.style, transcript=read_transcript(args.transcript),
                                 mouth=mouth, layers=layers)
    performance = pipeline.perform(speech, args.fps, settings)
    # Streamed block by block (an hour of dialogue never sits in memory), atomically.
    atomic.write_npy_blocks(out, (performance.frame_count,) + head.shape, np.float32,
                            pipeline.pose_blocks(performance, head))
    if performance.head_rotation is not None:  # the head layer: (T, 3) pitch, yaw, roll, radians
        np.save(out.with_name(out.stem + "_head_rotation.npy"), performance.head_rotation)
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in performance.metadata["timings"].items())
    print(f"wrote {out}: {performance.frame_count} frames at {args.fps:g} fps "
          f"({performance.metadata['mode']}; {timings})", file=sys.stderr)


def cmd_render_frames(args) -> None:
    contact_sheets = dev_module("tools.contact_sheets")

    if args.what == "rig":
        contact_sheets.rig_sheet(Path(args.out))
    elif args.what == "teeth":
        contact_sheets.teeth_sheet(Path(args.out))
    else:
        contact_sheets.clip_strip(Path(args.out), args.audio, read_transcript(args.transcript),
                                  args.reference, args.head, args.fps, tuple(args.engines.split(",")))
    print(f"wrote {args.out}", file=sys.stderr)


def addon():
    """The add-on, registered, from this checkout (same operators as the UI)."""
    import bpy

    import flame_lipsync as module
    if not hasattr(bpy.types.Scene, "flame_lipsync"):
        module.register()
    return module


BAKE_FIELDS = ("audio", "head", "out", "object", "transcript", "engine", "mode", "fps", "export_npy", "style")
MANIFEST_REQUIRED = ("audio", "head", "out")
MODES = ("shapekeys", "meshcache")


LAYERS = ("mouth", "eyes", "brows", "head", "emotion")
EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised")


def add_face_arguments(parser) -> None:
    for layer in LAYERS:
        parser.add_argument(f"--no-{layer}", action="store_true", help=f"leave the {layer} layer still")
    for layer in LAYERS[1:]:
        parser.add_argument(f"--{layer}-intensity", type=float, default=1.0, metavar="X",
                            help=f"scale of the {layer} layer (0-2, default 1)")
    parser.add_argument("--emotion", default="neutral", choices=EMOTIONS, help="expression preset")
    parser.add_argument("--emotion-strength", type=float, default=0.5, help="0-1 (default 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same blinks and nods")
    parser.add_argument("--no-teeth", action="store_true", help="bake: no teeth, tongue and mouth cavity")


def face_props(args) -> dict:
    """The face layers as the sidebar's scene settings (the bake reads those)."""
    props = {f"layer_{layer}": not getattr(args, f"no_{layer}", False) for layer in LAYERS}
    for layer in LAYERS[1:]:
        value = float(getattr(args, f"{layer}_intensity", 1.0))
        if not 0.0 <= value <= 2.0:
            raise ValueError(f"--{layer}-intensity must be within 0-2, got {value:g}")
        props[f"{layer}_intensity"] = value
    strength = float(getattr(args, "emotion_strength", 0.5))
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"--emotion-strength must be within 0-1, got {strength:g}")
    props.update(emotion_preset=getattr(args, "emotion", "neutral").upper(), emotion_strength=strength,
                 motion_seed=int(getattr(args, "seed", 0)), bake_mouth_interior=not getattr(args, "no_teeth", False))
    props["keys"] = {"dense": "EVERY_FRAME", "reduced": "REDUCED"}[getattr(args, "keys", None) or "reduced"]
    channel = getattr(args, "all_strips_on_channel", None)
    if channel is not None:
        props.update(all_strips=True, strip_channel=int(channel))
    return props


def face_settings(args):
    """(mouth on?, core.layers.LayerSettings) for pipeline.Settings, from the same flags."""
    from flame_lipsync.core.layers import LayerSettings
    p = face_props(args)
    return p["layer_mouth"], LayerSettings(
        eyes=p["layer_eyes"], eyes_intensity=p["eyes_intensity"], brows=p["layer_brows"],
        brows_intensity=p["brows_intensity"], head=p["layer_head"], head_intensity=p["head_intensity"],
        emotion=p["layer_emotion"], emotion_intensity=p["emotion_intensity"],
        emotion_preset=p["emotion_preset"].lower(), emotion_strength=p["emotion_strength"], seed=p["motion_seed"])


def bake_one(job: dict, stash: bool = False, base: Path | None = None, face: dict | None = None) -> str:
    fps = check_fps(job.get("fps"), "fps")
    mode = job.get("mode") or "shapekeys"
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got '{mode}'")
    transcript, transcript_file = resolve_transcript(job.get("transcript") or None, base)
    addon()
    from flame_lipsync.operators import headless
    return headless.bake(job["audio"], job["head"], job["out"], job.get("object") or None,
                         transcript, job.get("engine") or "phonetic",
                         mode, fps, job.get("export_npy") or None,
                         job.get("style") or None, "stash" if stash else "refuse", transcript_file, face)


def read_manifest(path) -> list[dict]:
    """The jobs of a CSV manifest: comma, semicolon or tab separated, UTF-8 with or
    without a BOM; the header row names the columns (audio, head, out required)."""
    import csv
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"manifest '{path}' {what}: give the CSV of jobs (columns audio,head,out)")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"manifest '{path}' is not UTF-8 text: save it as CSV (UTF-8)") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"manifest '{path}' is empty: it needs a header row (audio,head,out) and one row per shot")
    header = lines[0]
    delimiter = max(",;\t", key=header.count) if any(d in header for d in ",;\t") else ","
    rows = list(csv.reader(lines, delimiter=delimiter))
    columns = [c.strip().lower().lstrip("\ufeff") for c in rows[0]]
    missing = [c for c in MANIFEST_REQUIRED if c not in columns]
    if missing:
        raise ValueError(f"manifest '{path}' has no column {', '.join(repr(c) for c in missing)} in its header row "
                         f"(found: {', '.join(columns) or 'nothing'}); the first row must name the columns: "
                         f"{','.join(MANIFEST_REQUIRED)}[,{','.join(BAKE_FIELDS[3:])}]")
    duplicate = sorted({c for c in columns if columns.count(c) > 1 and c})
    if duplicate:
        raise ValueError(f"manifest '{path}' names the column(s) {', '.join(duplicate)} twice: keep one")
    unknown = [c for c in columns if c not in BAKE_FIELDS]
    if unknown:
        print(f"warning: manifest '{path}': ignoring unknown column(s) {', '.join(unknown)} "
              f"(known: {', '.join(BAKE_FIELDS)})", file=sys.stderr)
    jobs = []
    for number, row in enumerate(rows[1:], 1):
        if len(row) > len(columns) and any(cell.strip() for cell in row[len(columns):]):
            raise ValueError(f"manifest '{path}' job {number} has {len(row)} fields but the header has "
                             f"{len(columns)}: quote paths that contain '{delimiter}'")
        job = {c: (row[i].strip() if i < len(row) else "") for i, c in enumerate(columns) if c in BAKE_FIELDS}
        empty = [c for c in MANIFEST_REQUIRED if not job.get(c)]
        if empty:
            raise ValueError(f"manifest '{path}' job {number} has no {', '.join(empty)}: fill it in or remove the row")
        jobs.append(job)
    if not jobs:
        raise ValueError(f"manifest '{path}' has a header but no jobs: add one row per shot")
    return jobs


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def plan_manifest(path, overwrite: bool = False, allow_outside: bool = False) -> list[dict]:
    """Check every job's outputs before anything runs: relative paths resolve against the
    manifest's folder; no two jobs write one file (the .blend, its mesh cache, the .npy);
    no output is an input; existing outputs need --overwrite; outputs outside the
    manifest's folder need --allow-outside. Raises with every problem found."""
    manifest = Path(path).resolve()
    base = manifest.parent
    jobs = read_manifest(manifest)

    def resolved(value):
        p = Path(value).expanduser()
        return (p if p.is_absolute() else base / p).resolve()

    problems, writers, inputs = [], {}, {}
    for number, job in enumerate(jobs, 1):
        for key in ("audio", "head", "out", "export_npy"):
            if job.get(key):
                job[key] = str(resolved(job[key]))
        if job.get("transcript"):
            candidate = resolved(job["transcript"])
            if candidate.is_file() or _looks_like_path(job["transcript"]):
                job["transcript"] = str(candidate)
        out = Path(job["out"])
        outputs = [("out", out)]
        if job.get("export_npy"):
            outputs.append(("export_npy", Path(job["export_npy"])))
        if (job.get("mode") or "shapekeys") == "meshcache":
            name = job.get("object") or "Head"
            outputs.append(("mesh cache", out.parent / f"{out.stem}_{name}_lipsync.pc2"))
        job["outputs"] = outputs
        for key in ("audio", "head", "transcript"):
            if job.get(key) and Path(job[key]).is_absolute():
                inputs.setdefault(str(Path(job[key])), []).append((number, key))
        for what, target in outputs:
            if str(target) in writers:
                other, other_what = writers[str(target)]
                problems.append(f"jobs {other} and {number} both write '{target}' ({other_what} / {what}): "
                                "give each shot its own out")
            else:
                writers[str(target)] = (number, what)
            if not allow_outside and not _inside(target, base):
                problems.append(f"job {number}: {what} '{target}' is outside the manifest's folder {base} "
                                "(pass --allow-outside to write there)")
            if target.exists() and not overwrite:
                problems.append(f"job {number}: {what} '{target}' already exists (pass --overwrite to replace it)")
            if target.suffix.lower() != ".blend" and what == "out":
                problems.append(f"job {number}: out '{target}' must be a .blend file")
    for target, (number, what) in writers.items():
        for other, key in inputs.get(target, []):
            problems.append(f"job {number}'s {what} '{target}' is the {key} of job {other}: "
                            "an output must never replace an input")
    if problems:
        listed = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ValueError(f"manifest '{manifest}' was not started ({len(problems)} problem"
                         f"{'s' if len(problems) > 1 else ''}): {listed}")
    return jobs


def cmd_bake(args) -> None:
    if args.allow_truncated:
        from flame_lipsync.core.audio import ALLOW_TRUNCATED
        ALLOW_TRUNCATED.set(True)
    if not args.manifest:
        missing = [f"--{f.replace('_', '-')}" for f in ("audio", "head", "out") if not getattr(args, f)]
        if missing:
            raise ValueError(f"bake needs {', '.join(missing)} (or --manifest jobs.csv)")
        print(bake_one({f: getattr(args, f, None) for f in BAKE_FIELDS}, args.stash, face=face_props(args)),
              file=sys.stderr)
        return
    jobs = plan_manifest(args.manifest, args.overwrite, args.allow_outside)
    base = Path(args.manifest).resolve().parent
    failures = 0
    results = []
    for number, job in enumerate(jobs, 1):
        print(f"job {number}/{len(jobs)}: {job.get('audio')} -> {job.get('out')}", file=sys.stderr)
        try:
            results.append((number, "ok", bake_one(job, args.stash, base)))
        except Exception as err:  # keep going: one bad shot must not stop the batch
            failures += 1
            results.append((number, "FAILED", user_message(err)))
    print("summary:", file=sys.stderr)
    for number, status, message in results:
        print(f"  job {number}: {status}: {message}", file=sys.stderr)
    print(f"{len(jobs) - failures}/{len(jobs)} jobs baked", file=sys.stderr)
    if failures:
        raise RuntimeError(f"{failures} of {len(jobs)} jobs failed (see the summary above)")


def cmd_preview(args) -> None:
    addon()
    from flame_lipsync.operators import headless
    print(headless.preview(args.blend, args.out, stills_dir=args.stills), file=sys.stderr)


def cmd_eval(args) -> None:
    dev_module("tools.evaluate").run_from_args(args)


def config_with_overrides(path: str, overrides: list[str]) -> dict:
    """A JSON config with `section.key=value` overrides (value parsed as JSON)."""
    import json
    config = json.loads(Path(path).read_text())
    config.setdefault("name", Path(path).stem)
    for item in overrides:
        key, _, value = item.partition("=")
        if not value:
            raise ValueError(f"--set expects section.key=value, got '{item}'")
        *sections, leaf = key.split(".")
        target = config
        for section in sections:
            target = target.setdefault(section, {})
        try:
            target[leaf] = json.loads(value)
        except json.JSONDecodeError:
            target[leaf] = value
    return config


def cmd_train(args) -> None:
    train = dev_module("training.train").train
    config = config_with_overrides(args.config, args.set) if args.set else args.config
    summary = train(config, resume=args.resume)
    print(f"wrote {summary['export']}", file=sys.stderr)


def engine_names():
    from flame_lipsync.pipeline.engines import ENGINES
    return tuple(ENGINES)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cli.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    animate = sub.add_parser("animate", help="speech -> per-frame FLAME vertices (.npy)")
    animate.add_argument("--audio", required=True)
    animate.add_argument("--transcript", help="the words spoken, or a .txt file with them")
    animate.add_argument("--engine", default="phonetic", help="one of: " + ", ".join(engine_names()))
    animate.add_argument("--head", required=True, help="FLAME-topology head (.ply or .obj)")
    animate.add_argument("--fps", type=float, default=30.0)
    animate.add_argument("--export-npy", required=True, help="output (T, 5023, 3) float32, metres")
    animate.add_argument("--style", help="neural engine: speaking style (a training voice; default: average)")
    add_face_arguments(animate)
    animate.set_defaults(func=cmd_animate)

    render = sub.add_parser("render-frames", help="Workbench stills and contact sheets")
    render.add_argument("what", choices=("rig", "clip", "teeth"))
    render.add_argument("--out", required=True)
    render.add_argument("--audio")
    render.add_argument("--transcript")
    render.add_argument("--reference", help="a *.phone.json whose phones choose the frames")
    render.add_argument("--head", help="head to animate (default: the FLAME template)")
    render.add_argument("--fps", type=float, default=30.0)
    render.add_argument("--engines", default="phonetic",
                        help="clip: comma-separated engines rendered side by side, e.g. phonetic,neural")
    render.set_defaults(func=cmd_render_frames)

    bake = sub.add_parser("bake", help="bake lip sync into a .blend (shape keys or mesh cache)")
    bake.add_argument("--audio")
    bake.add_argument("--head", help=".blend, .ply or .obj with a FLAME-topology mesh")
    bake.add_argument("--object", help="the mesh to animate when the .blend has several")
    bake.add_argument("--out", help="output .blend")
    bake.add_argument("--transcript")
    bake.add_argument("--engine", default="phonetic", help="one of: " + ", ".join(engine_names()))
    bake.add_argument("--mode", default="shapekeys", choices=("shapekeys", "meshcache"))
    bake.add_argument("--fps", type=float)
    bake.add_argument("--export-npy")
    bake.add_argument("--style", help="neural engine: speaking style (default: average of the voices)")
    bake.add_argument("--keys", default="reduced", choices=("reduced", "dense"),
                      help="shape keys: the fewest Bézier keys within 0.3 mm (default) or one per frame")
    bake.add_argument("--all-strips-on-channel", type=int, metavar="N",
                      help="--head .blend: bake every sound strip on channel N (the --audio strip goes on "
                           "channel 2), one action per strip as NLA strips at its frames, named after it")
    add_face_arguments(bake)
    bake.add_argument("--manifest", help="CSV of jobs: audio,head,out[,object,transcript,engine,mode,fps]")
    bake.add_argument("--stash", action="store_true",
                      help="move an action of the artist's on the head's shape keys to an NLA track (kept "
                           "unchanged) instead of refusing the bake")
    bake.add_argument("--overwrite", action="store_true", help="manifest: replace outputs that already exist")
    bake.add_argument("--allow-outside", action="store_true",
                      help="manifest: allow outputs outside the manifest's folder")
    bake.add_argument("--allow-truncated", action="store_true",
                      help="bake audio cut short (fewer samples than its header declares), with a warning")
    bake.set_defaults(func=cmd_bake)

    preview = sub.add_parser("preview", help="render a baked .blend to a movie with sound")
    preview.add_argument("blend")
    preview.add_argument("--out", required=True)
    preview.add_argument("--stills", help="also write 4 evenly spaced PNG frames to this folder")
    preview.set_defaults(func=cmd_preview)

    train = sub.add_parser("train", help="train the neural engine's network (training/train.py)")
    train.add_argument("--config", required=True, help="a JSON config, e.g. training/configs/voca.json")
    train.add_argument("--resume", action="store_true", help="continue from the run's last.pt")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a config value, e.g. --set train.epochs=10 --set name=quick")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("eval", help="lip-sync metrics of the engines on real speech (make eval)")
    evaluate.add_argument("--engine", default="all", help="'all' or one of: " + ", ".join(engine_names()))
    evaluate.add_argument("--audio-dir", help="folder searched recursively (default ../shared/assets/speech)")
    evaluate.add_argument("--transcripts", action="store_true",
                          help="also run with the transcript wherever one exists")
    evaluate.add_argument("--out", default="out/eval")
    evaluate.add_argument("--head", help="FLAME head (default flame_template.ply)")
    evaluate.add_argument("--fps", type=float, default=30.0)
    evaluate.add_argument("--no-plots", action="store_true")
    evaluate.set_defaults(func=cmd_eval)
    return parser


def main(argv=None) -> int:
    if argv is None and "--" in sys.argv:  # blender -b -P cli.py -- bake ...
        argv = sys.argv[sys.argv.index("--") + 1:]
    args = build_parser().parse_args(argv)
    from flame_lipsync.core import phones
    phones.set_workers(min(2, os.cpu_count() or 1))  # headless: phone-loop pieces on two cores
    import warnings
    warnings.showwarning = lambda message, *rest, **kw: print(f"warning: {message}", file=sys.stderr)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("error: interrupted (Ctrl+C): outputs not yet renamed into place were removed", file=sys.stderr)
        return 130
    except Exception as err:  # every failure is one line, never a traceback
        if os.environ.get("FLAME_LIPSYNC_DEBUG"):
            raise
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2
    return 0


def user_message(err: BaseException) -> str:
    """One line that says what happened (and, from our errors, what to do)."""
    from flame_lipsync.core.messages import user_message as message
    text = message(err, bug_hint="with the command line; FLAME_LIPSYNC_DEBUG=1 shows the traceback")
    return text.splitlines()[0]


def exit_now(code: int) -> None:
    """Leave without Blender's teardown: the bpy 4.5 module can hang in its C++
    static destructors at interpreter exit once a file has been saved."""
    if "bpy" in sys.modules:
        import os
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    bootstrap()
    exit_now(main())
