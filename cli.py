"""Headless entry point.

    python cli.py animate --audio A [--transcript T] [--engine phonetic] --head H.ply --fps 30 --export-npy V.npy
    python cli.py render-frames rig --out docs/rig_controls.png
    python cli.py render-frames clip --audio A [--transcript T] [--reference J.phone.json] --out S.png

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


def run_engine(engine: str, audio: str, fps: float, transcript: str | None):
    from core.audio import load_speech
    from core.engines import run_engine as run

    return run(engine, load_speech(audio, fps=fps), fps, read_transcript(transcript))


def cmd_animate(args) -> None:
    import numpy as np

    from core.mesh_io import load_head

    if args.fps <= 0:
        raise ValueError(f"--fps must be positive, got {args.fps}")
    head, _ = load_head(args.head)  # check the head before the slow part
    performance = run_engine(args.engine, args.audio, args.fps, args.transcript)
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
                                  args.reference, args.head, args.fps)
    print(f"wrote {args.out}", file=sys.stderr)


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
    animate.set_defaults(func=cmd_animate)

    render = sub.add_parser("render-frames", help="Workbench stills and contact sheets")
    render.add_argument("what", choices=("rig", "clip"))
    render.add_argument("--out", required=True)
    render.add_argument("--audio")
    render.add_argument("--transcript")
    render.add_argument("--reference", help="a *.phone.json whose phones choose the frames")
    render.add_argument("--head", help="head to animate (default: the FLAME template)")
    render.add_argument("--fps", type=float, default=30.0)
    render.set_defaults(func=cmd_render_frames)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from core.audio import AudioError
    from core.mesh_io import MeshError

    try:
        args.func(args)
    except (AudioError, MeshError, FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
