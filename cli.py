"""Headless entry point.

    python cli.py animate --audio A [--transcript T] [--engine phonetic] --head H.ply --fps 30 --export-npy V.npy
    python cli.py render-frames rig --out docs/rig_controls.png
    python cli.py render-frames clip --audio A [--transcript T] [--reference J.phone.json] --out S.png
    python cli.py bake --audio A --head H(.blend|.ply|.obj) [--object NAME] --out O.blend [--transcript T]
                       [--engine NAME] [--mode shapekeys|meshcache] [--fps F] [--export-npy V.npy]
    python cli.py bake --manifest jobs.csv     (columns: audio,head,out[,object,transcript,engine,mode,fps])
    python cli.py preview O.blend --out preview.mp4
    python cli.py train --config models/configs/voca.json [--resume]
    python cli.py eval --engine NAME|all [--audio-dir DIR] [--transcripts] [--out out/eval]
    blender -b -P cli.py -- bake ...           (same arguments inside Blender)

Bad input ends with exit status 2 and a one-line reason on stderr.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

def read_transcript(value: str | None) -> str | None:
    """--transcript takes the text itself or a path to a .txt file."""
    if value and value.endswith(".txt"):
        path = Path(value)
        if not path.is_file():
            raise FileNotFoundError(f"transcript file '{path}' does not exist")
        return path.read_text(errors="replace")
    return value


def run_engine(engine: str, audio: str, fps: float, transcript: str | None, style: str | None = None):
    from core.audio import load_speech
    from core.engines import run_engine as run

    options = {"style": style} if style else {}
    return run(engine, load_speech(audio, fps=fps), fps, read_transcript(transcript), **options)


def cmd_animate(args) -> None:
    import numpy as np

    from core.mesh_io import load_head

    if args.fps <= 0:
        raise ValueError(f"--fps must be positive, got {args.fps}")
    head, _ = load_head(args.head)  # check the head before the slow part
    performance = run_engine(args.engine, args.audio, args.fps, args.transcript, args.style)
    from core.rig import load_rig
    # Offsets are in FLAME axes; a posed or scaled head gets them in its own frame.
    frame = load_rig().head_frame(head)
    vertices = (head[None] + performance.offsets @ frame.T).astype(np.float32)
    out = Path(args.export_npy)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, vertices)
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in performance.metadata["timings"].items())
    print(f"wrote {out}: {vertices.shape[0]} frames at {args.fps:g} fps "
          f"({performance.metadata['mode']}; {timings})", file=sys.stderr)


def cmd_render_frames(args) -> None:
    from tools import contact_sheets

    if args.what == "rig":
        contact_sheets.rig_sheet(Path(args.out))
    else:
        contact_sheets.clip_strip(Path(args.out), args.audio, read_transcript(args.transcript),
                                  args.reference, args.head, args.fps, tuple(args.engines.split(",")))
    print(f"wrote {args.out}", file=sys.stderr)


def addon():
    """The add-on, registered, from this checkout (same operators as the UI)."""
    import addon_package
    module = addon_package.load_addon()
    import bpy
    if not hasattr(bpy.types.Scene, "flame_lipsync"):
        module.register()
    return module


BAKE_FIELDS = ("audio", "head", "out", "object", "transcript", "engine", "mode", "fps", "export_npy", "style")


def bake_one(job: dict) -> str:
    addon()
    from flame_lipsync.operators import headless
    fps = float(job["fps"]) if job.get("fps") else None
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return headless.bake(job["audio"], job["head"], job["out"], job.get("object") or None,
                         read_transcript(job.get("transcript") or None), job.get("engine") or "phonetic",
                         job.get("mode") or "shapekeys", fps, job.get("export_npy") or None,
                         job.get("style") or None)


def cmd_bake(args) -> None:
    if not args.manifest:
        missing = [f"--{f}" for f in ("audio", "head", "out") if not getattr(args, f)]
        if missing:
            raise ValueError(f"bake needs {', '.join(missing)} (or --manifest jobs.csv)")
        print(bake_one({f: getattr(args, f, None) for f in BAKE_FIELDS}), file=sys.stderr)
        return
    import csv
    with open(args.manifest, newline="") as handle:
        jobs = list(csv.DictReader(handle))
    failures = 0
    results = []
    for number, job in enumerate(jobs, 1):
        print(f"job {number}/{len(jobs)}: {job.get('audio')} -> {job.get('out')}", file=sys.stderr)
        try:
            results.append((number, "ok", bake_one({k.strip(): (v or "").strip() for k, v in job.items()})))
        except Exception as err:  # keep going: one bad shot must not stop the batch
            failures += 1
            results.append((number, "FAILED", str(err).splitlines()[0]))
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
    from tools import evaluate
    evaluate.run_from_args(args)


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
    from models.train import train
    config = config_with_overrides(args.config, args.set) if args.set else args.config
    summary = train(config, resume=args.resume)
    print(f"wrote {summary['export']}", file=sys.stderr)


def engine_names():
    from core.engines import ENGINES
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
    animate.set_defaults(func=cmd_animate)

    render = sub.add_parser("render-frames", help="Workbench stills and contact sheets")
    render.add_argument("what", choices=("rig", "clip"))
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
    bake.add_argument("--manifest", help="CSV of jobs: audio,head,out[,object,transcript,engine,mode,fps]")
    bake.set_defaults(func=cmd_bake)

    preview = sub.add_parser("preview", help="render a baked .blend to a movie with sound")
    preview.add_argument("blend")
    preview.add_argument("--out", required=True)
    preview.add_argument("--stills", help="also write 4 evenly spaced PNG frames to this folder")
    preview.set_defaults(func=cmd_preview)

    train = sub.add_parser("train", help="train the neural engine's network (models/train.py)")
    train.add_argument("--config", required=True, help="a JSON config, e.g. models/configs/voca.json")
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
    from core.audio import AudioError
    from core.mesh_io import MeshError

    try:
        args.func(args)
    except (AudioError, MeshError, FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"error: {str(err).splitlines()[0] if str(err) else type(err).__name__}", file=sys.stderr)
        return 2
    return 0


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
    exit_now(main())
