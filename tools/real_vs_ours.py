"""docs/real_vs_ours.png: real video frames beside our rendered head at the same instants.

    python tools/real_vs_ours.py [--clips mead_W015_level_1_neutral_030 edtalk_uncrop_Obama]

Two clips, six instants each chosen from the audio alone: the two loudest frames (open
vowels), two bilabial closures (M/P/B from the phonetic engine, no transcript) and two
pauses (the quietest frames between speech). The clip's own A/V offset (from `make eval`'s
out/eval/real_faces.json) is applied, as the eval does: our frame f beside video frame f - k.
Left: the video frame (decoded by PyAV in
.venv-track, cropped to a 70 mm window around the tracked mouth); right: the phonetic engine's head at that
frame, rendered with Workbench (bpy, main .venv; the render's mouth view). Needs the tracks of tools/real_faces.py
(cached in out/tracks; tracked here when missing).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from flame_lipsync.core import face_metrics as fm
from flame_lipsync.core.mesh_io import read_ply
from flame_lipsync.tools import real_faces, rig_fit

DEFAULT_CLIPS = ("mead_W015_level_1_neutral_030", "edtalk_uncrop_Obama")
ENGINE = "phonetic"
BILABIALS = {"M", "P", "B"}

# Runs in .venv-track: save the given video frames as PNG crops.
DUMP_FRAMES = r"""
import sys, json, av
from PIL import Image
video, jobs = sys.argv[1], json.loads(sys.argv[2])
want = {int(j["frame"]): j for j in jobs}
with av.open(video) as c:
    for i, frame in enumerate(c.decode(video=0)):
        if i in want:
            j = want[i]
            img = frame.to_image().crop(tuple(int(v) for v in j["box"])).resize((320, 320))
            img.save(j["png"])
        if i >= max(want):
            break
"""


def choose_instants(wav: str, fps: float, n_frames: int, phones) -> list[tuple[int, str]]:
    """[(frame, why)]: two loud vowels, two bilabials, two pauses, at least 0.3 s apart."""
    env = fm.rms_envelope(real_faces.read_wav(wav), 16000, fps, n_frames)
    gap = max(1, int(0.3 * fps))
    chosen: list[tuple[int, str]] = []

    def take(candidates, why, count=2):
        got = 0
        for f in candidates:
            if got == count:
                break
            if 2 <= f < n_frames - 2 and all(abs(f - c) >= gap for c, _ in chosen):
                chosen.append((int(f), why))
                got += 1
    take(np.argsort(-env), "loud vowel")
    bil = [p for p in phones if p[0] in BILABIALS]
    bil.sort(key=lambda p: env[min(n_frames - 1, int(round(p[1] * fps)))])  # quietest = closure
    take([int(round((p[1] + p[2]) / 2 * fps)) for p in bil], "bilabial " + "/".join(sorted(BILABIALS)))
    speech = np.flatnonzero(env > 0.2 * env.max())
    inside = np.arange(speech.min(), speech.max()) if len(speech) else np.arange(n_frames)
    take(inside[np.argsort(env[inside])], "pause")
    take(np.argsort(-env), "loud vowel", 6 - len(chosen))   # short clips: fill with vowels
    return sorted(chosen)


def mouth_box(landmarks: np.ndarray, px_per_mm: float, width: int, height: int) -> list[float]:
    """Square crop centred between the lip corners, as wide as the render's mouth window
    (render MOUTH_WINDOW, 70 mm of the template); landmarks normalised to the image."""
    corners = landmarks[list(rig_fit.CORNERS), :2] * (width, height)
    cx, cy = corners.mean(0)
    half = 35.0 * px_per_mm
    return [cx - half, cy - half, cx + half, cy + half]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", nargs=2, default=list(DEFAULT_CLIPS))
    parser.add_argument("--tracks", type=Path, default=Path("out/tracks"))
    parser.add_argument("--out", type=Path, default=Path("docs/real_vs_ours.png"))
    args = parser.parse_args(argv)
    try:
        from flame_lipsync.blender.render import render_heads
    except ImportError:  # before the layout change
        from flame_lipsync.operators.render_frames import render_heads
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    videos = [real_faces.VIDEOS / f"{c}.mp4" for c in args.clips]
    tracked = real_faces.track_all(videos, args.tracks, 2, summary_name="summary_real_vs_ours.json")
    template, faces = read_ply(rig_fit.TEMPLATE_FILE)
    work = Path(tempfile.mkdtemp(prefix="real_vs_ours_"))
    offsets_ms = _av_offsets_ms()
    rows = []
    for clip, entry in zip(args.clips, tracked):
        if "error" in entry or not entry.get("wav"):
            print(f"{clip}: cannot be used ({entry.get('error') or entry.get('problems')})")
            return 1
        track = rig_fit.load_track(entry["npz"])
        fps = float(track["grid_fps"])
        controls, vertices, metadata = real_faces.predict(ENGINE, entry["wav"], fps)
        k = int(round(offsets_ms.get(clip, 0.0) * fps / 1000.0))   # video frames the face runs early
        n = min(len(vertices), len(track["aperture"]) + k)
        instants = [(f, why) for f, why in choose_instants(entry["wav"], fps, n, metadata.get("phones", []))
                    if 0 <= f - k < len(track["aperture"])]
        # The video's own frame index for a grid slot (VFR clips drop slots).
        frame_of_slot = np.cumsum(track["shown"]) - 1
        w, h = (int(v) for v in track["image_size"])
        full = _full_size(entry)
        jobs, cells = [], []
        for f, why in instants:
            v = f - k                                                # the video's grid slot for our frame f
            g = v if track["detected"][v] else np.flatnonzero(track["detected"])[0]
            full_w, full_h = full
            png = work / f"{clip}_{f}_real.png"
            jobs.append({"frame": int(frame_of_slot[v]), "png": str(png),
                         "box": mouth_box(track["landmarks"][g], track["scale"][g] * full_w / w, full_w, full_h)})
            cells.append({"frame": f, "why": why, "real_png": png,
                          "real_mm": float(track["aperture"][v]),
                          "ours_mm": float(rig_fit.lip_gap_mm(vertices[f]))})
        subprocess.run([str(real_faces.TRACK_PY), "-c", DUMP_FRAMES, entry["video"], json.dumps(jobs)],
                       check=True)
        names = [f"{clip}_{c['frame']}_ours" for c in cells]
        paths = render_heads(faces, [vertices[c["frame"]] for c in cells], work, names, (320, 320), "mouth")
        for c, p in zip(cells, paths):
            c["ours_png"] = p
        rows.append((clip, fps, k * 1000.0 / fps, cells))

    fig, axes = plt.subplots(4, 6, figsize=(18, 14), dpi=80)
    for ax in axes.ravel():
        ax.set_axis_off()
    for r, (clip, fps, offset_ms, cells) in enumerate(rows):
        for col, c in enumerate(cells):
            for k, (key, label) in enumerate((("real_png", f"real {c['real_mm']:.1f} mm"),
                                              ("ours_png", f"{ENGINE} {c['ours_mm']:.1f} mm"))):
                ax = axes[2 * r + k, col]
                ax.set_axis_on()
                ax.imshow(plt.imread(str(c[key])))
                ax.set_xticks([])
                ax.set_yticks([])
                title = f"{c['frame'] / fps:.2f} s, {c['why']}\n" if k == 0 else ""
                ax.set_title(title + label, fontsize=9)
        axes[2 * r, 0].set_ylabel(f"{clip}\nvideo (A/V offset {offset_ms:+.0f} ms applied)", fontsize=9)
        axes[2 * r + 1, 0].set_ylabel(f"{clip}\nours ({ENGINE})", fontsize=9)
    fig.suptitle("Real talking faces (top of each pair) vs. our head at the same instant "
                 "(phonetic engine on the clip's audio, no transcript), 70 mm mouth windows; "
                 "lip aperture in mm: tracked 13-14 vs. rig lip gap", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.stem + ".part.png")
    fig.savefig(tmp)
    tmp.replace(args.out)
    print(f"wrote {args.out}")
    return 0


def _av_offsets_ms() -> dict:
    """Per-clip A/V offsets (ms) the eval measured; none before `make eval` has run."""
    path = real_faces.PROJECT_ROOT / "out" / "eval" / "real_faces.json"
    if not path.is_file():
        print("note: out/eval/real_faces.json not found: no A/V offsets applied (run `make eval` first)")
        return {}
    return {c["clip"]: float(c["av_offset_ms"]) for c in json.loads(path.read_text())["clips"]}


def _full_size(entry):
    """The video's own frame size (the track's landmarks are normalised, so any size
    with the same aspect works; the crop is taken on the full frame)."""
    probe = subprocess.run([str(real_faces.TRACK_PY), "-c",
                            "import av,sys; c=av.open(sys.argv[1]); s=c.streams.video[0]; "
                            "print(s.codec_context.width, s.codec_context.height)", entry["video"]],
                           capture_output=True, text=True, check=True)
    return tuple(int(v) for v in probe.stdout.split())


if __name__ == "__main__":
    sys.exit(main())
