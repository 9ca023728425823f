"""Contact sheets for looking at the rig and the engine (committed under docs/).

    python cli.py render-frames rig --out docs/rig_controls.png
    python cli.py render-frames clip --audio A --transcript T --reference J --out S.png
"""
import tempfile
from pathlib import Path

import numpy as np
from flame_lipsync.core.flame import FLAME_ASSETS, SHARED_HEADS
from flame_lipsync.core.mesh_io import load_head, recentred
from flame_lipsync.core.rig import CONTROLS, load_rig



def shared_heads():
    """The four shared FLAME heads, DECA's recentred onto the template."""
    if not FLAME_ASSETS.is_dir():
        raise FileNotFoundError(f"shared heads not found at {FLAME_ASSETS}")
    template, faces = load_head(FLAME_ASSETS / SHARED_HEADS[0])
    heads = {}
    for name in SHARED_HEADS:
        vertices, _ = load_head(FLAME_ASSETS / name)
        heads[name] = recentred(vertices, template) if name.endswith(".obj") else vertices
    return heads, faces


def rig_sheet(out: Path, view: str = "mouth") -> Path:
    """Rows: the four heads; columns: neutral, then every control at weight 1."""
    from flame_lipsync.blender.render import contact_sheet, render_heads

    heads, faces = shared_heads()
    rig = load_rig()
    stills, labels = [], []
    for head_name, vertices in heads.items():
        fields = rig.fields_for(vertices)
        for control in ("neutral",) + CONTROLS:
            offset = 0 if control == "neutral" else fields[CONTROLS.index(control)]
            stills.append(vertices + offset)
            labels.append(f"{head_name.split('.')[0][:14]}\n{control}")
    with tempfile.TemporaryDirectory() as tmp:
        images = render_heads(faces, stills, Path(tmp), [f"{i:03d}" for i in range(len(stills))],
                              size=(220, 220), view=view)
        return contact_sheet(images, labels, columns=len(CONTROLS) + 1, out_path=out,
                             title="Rig controls at weight 1 on the four shared FLAME heads")


def three_quarter(vertices, degrees=55.0):
    """The head turned about its vertical axis (FLAME +Y), around the mouth."""
    a = np.radians(degrees)
    turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]], np.float32)
    centre = vertices.mean(0)
    return (vertices - centre) @ turn.T + centre


def _pick_frames(phones, fps, n_frames, groups, per_group=4):
    """Frames at the middle of the first few phones of each group."""
    picks = []
    for title, labels in groups:
        chosen = [p for p in phones if p.label in labels and p.end - p.start >= 0.03][:per_group]
        for p in chosen:
            frame = min(int(round(0.5 * (p.start + p.end) * fps)), n_frames - 1)
            picks.append((frame, f"{title}: {p.label} @{p.start:.2f}s"))
    return picks


def clip_strip(out: Path, audio: str, transcript: str | None, reference: str | None,
               head: str | None = None, fps: float = 30.0, engines=("phonetic",)) -> Path:
    """Frames of a clip at its M/P/B, F/V and open-vowel phones: for one engine,
    front and three-quarter views; for several, their front views side by side."""
    from flame_lipsync import pipeline
    from flame_lipsync.core.metrics import RefPhone, load_reference_phones
    from flame_lipsync.core.visemes import BILABIALS, LABIODENTALS, OPEN_VOWELS
    from flame_lipsync.blender.render import contact_sheet, render_heads

    head_vertices, faces = load_head(head or FLAME_ASSETS / SHARED_HEADS[0])
    speech = pipeline.load_audio(audio, fps=fps)
    performances = [pipeline.perform(speech, fps, pipeline.Settings(engine=engine, transcript=transcript))
                    for engine in engines]
    if reference:
        phones = load_reference_phones(reference)
    else:
        phones = [RefPhone(*p) for p in performances[0].metadata["phones"]]
    groups = [("closed", BILABIALS), ("F/V", LABIODENTALS), ("open", OPEN_VOWELS)]
    picks = _pick_frames(phones, fps, min(p.frame_count for p in performances), groups)
    stills, labels = [], []
    for f, label in picks:
        for engine, performance in zip(engines, performances):
            posed = pipeline.pose(performance.with_(controls=performance.controls[f:f + 1]), head_vertices)[0]
            stills.append(posed)
            labels.append(f"frame {f}\n{label}" if engine == engines[0] else f"({engine})")
            if len(engines) == 1:  # three-quarter: protrusion and the F/V tuck show from the side
                stills.append(three_quarter(posed))
                labels.append("(3/4 view)")
    per_pick = max(2, len(engines))
    with tempfile.TemporaryDirectory() as tmp:
        images = render_heads(faces, stills, Path(tmp), [f"{i:03d}" for i in range(len(stills))],
                              size=(240, 240), view="mouth")
        mode = "with" if transcript else "without"
        title = (f"{Path(audio).name}: {' vs '.join(engines)}, {mode} transcript, {fps:g} fps"
                 + ("  (left: first engine)" if len(engines) > 1 else ""))
        return contact_sheet(images, labels, columns=3 * per_pick, out_path=out, title=title)
