"""Upper-face eval (issue 12): blinks, brows and head motion, ours vs tracked talking faces.

    python tools/upper_face_eval.py [--out out/eval] [--clips NAME...]

Needs the tracks of tools/real_faces.py (out/tracks/summary.json: `make eval-real`) and,
for the per-clip A/V offsets, out/eval/real_faces.json (0 ms where absent). Per clip,
"ours" = pipeline.perform with the default Settings (phonetic engine, no transcript,
default LayerSettings) on the clip's own 16 kHz audio at the video's fps, posed on the
FLAME template. Both sides are measured with the same detectors on the same quantities:

  eye openness   lid gap 159-145 / 386-374 (mm): the tracker's `eye_open`; ours through
                 the MediaPipe->FLAME embedding on our vertices.
  brow height    brow (105, 66 / 334, 296) above the eye corners (mm), as the tracker.
  head rotation  tracked pitch/yaw/roll (deg); ours Performance.head_rotation (deg).
  pauses, F0     core.layers.analyse on the clip's audio (the prosody the layers hear:
                 quiet >= 250 ms = pause; accents = F0 maxima after a >= 1.5 st rise).

Blink detector (`detect_blinks`, tested on constructed signals): per frame the mean
openness of the two eyes against its running 80th percentile over +-1 s (the open-eye
baseline, which follows slow changes such as looking down); closure = 1 - open/baseline.
A blink is a run of frames with closure >= 0.35 (gaps of one frame bridged) lasting at
most 0.6 s (longer = eyes closed / looking down, not a blink), where at the deepest
frame each eye alone is >= 0.2 closed (both eyes blink together; a one-eye dip is a
tracking glitch or a wink). Onset = first frame of the run.

Scores: blink rate per minute of the clip (the clips are continuous speech; frames with
a face); share of blinks whose onset lies in a pause (from 0.2 s before its first quiet
frame to 0.2 s after its last: the phrase end and the pause); head-rotation std per axis
(clips >= 4 s for the range: a 1 s clip has no posture shifts) and its Pearson
correlation with the tracked rotation at the clip's A/V offset; brow raises (peaks of
the brow height over its running median, >= max(0.6 mm, 3 robust sd)) against the
nearest F0 accent: the share within +-0.3 s and the median signed lag; FDD on the
upper-face landmarks (the embedded MediaPipe landmarks on FLAME forehead + eye_region
vertices): per landmark the std over time of its distance from its median position,
mean over landmarks; FDD = tracked - ours (positive: ours moves less), beside the
tracker's noise floor (the same on the rigid nose-ridge landmarks, which should not move
in the head frame). Ours' vertex FDD against a still face (core.metrics, forehead +
eye_region vertices) shows ours is non-zero.

Outputs: out/eval/upper_face.json, upper_face.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from flame_lipsync import pipeline
from flame_lipsync.core import atomic
from flame_lipsync.core import metrics
from flame_lipsync.core.layers import analyse
from flame_lipsync.tools import rig_fit

TRACKS = Path("out/tracks")
EYES = ((159, 145), (386, 374))
EYE_CORNERS = ((33, 133), (362, 263))
BROWS = ((105, 66), (334, 296))
RIGID_NOSE = (4, 5, 6, 168, 195, 197)

BASELINE_S = 1.0          # running-percentile half window for the open-eye baseline
BASELINE_PCT = 80.0
CLOSURE = 0.35            # closure (1 - open/baseline) that counts as a blink frame
EACH_EYE = 0.2            # each eye alone at the deepest frame
MAX_BLINK_S = 0.6
PAUSE_MARGIN_S = 0.2
RAISE_MM = 0.6
RAISE_BASE_S = 1.5
RAISE_GAP_S = 0.4
ACCENT_WINDOW_S = 0.3
LONG_S = 4.0
AXES = ("pitch", "yaw", "roll")


# ---- detectors (pure numpy; tests/test_upper_face_eval.py) ----------------------------------

def running_percentile(x: np.ndarray, half: int, pct: float) -> np.ndarray:
    x = np.asarray(x, np.float64)
    out = np.full(len(x), np.nan)
    for i in range(len(x)):
        w = x[max(0, i - half):i + half + 1]
        w = w[np.isfinite(w)]
        if len(w):
            out[i] = np.percentile(w, pct)
    return out


def _runs(mask: np.ndarray, bridge: int = 1) -> list:
    """[(first, last)] runs of True, gaps of <= `bridge` frames bridged."""
    idx = np.flatnonzero(mask)
    if not len(idx):
        return []
    runs, start, prev = [], idx[0], idx[0]
    for i in idx[1:]:
        if i - prev > bridge + 1:
            runs.append((int(start), int(prev)))
            start = i
        prev = i
    runs.append((int(start), int(prev)))
    return runs


def detect_blinks(eye_open: np.ndarray, fps: float) -> list:
    """(T, 2) per-eye openness (any unit; NaN = no face) -> [(onset, deepest, last)] frames."""
    eye_open = np.asarray(eye_open, np.float64).reshape(len(eye_open), -1)
    half = max(1, int(round(BASELINE_S * fps)))
    base = np.stack([running_percentile(eye_open[:, e], half, BASELINE_PCT)
                     for e in range(eye_open.shape[1])], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        each = 1.0 - eye_open / base
    # mean of the eyes (NaN where no face: a frame is one face's, so both or neither)
    closure = each.mean(1)
    blinks = []
    for first, last in _runs(np.nan_to_num(closure, nan=0.0) >= CLOSURE):
        if (last - first + 1) / fps > MAX_BLINK_S:
            continue
        deepest = first + int(np.nanargmax(closure[first:last + 1]))
        if np.any(~(np.nan_to_num(each[deepest], nan=0.0) >= EACH_EYE)):
            continue
        blinks.append((first, deepest, last))
    return blinks


def in_pauses(frames, pauses, fps: float, margin_s: float = PAUSE_MARGIN_S) -> np.ndarray:
    """(len(frames),) bool: frame within [first - margin, last + margin] of a pause."""
    m = margin_s * fps
    frames = np.asarray(frames, np.float64)
    hit = np.zeros(len(frames), bool)
    for first, last in pauses:
        hit |= (frames >= first - m) & (frames <= last + m)
    return hit


def detect_raises(brow: np.ndarray, fps: float) -> np.ndarray:
    """(T,) brow height (mm; NaN = no face) -> frames of quick raises (peaks over the
    running median by >= max(RAISE_MM, 3 robust sd), at most one per RAISE_GAP_S)."""
    brow = np.asarray(brow, np.float64)
    base = running_percentile(brow, max(1, int(round(RAISE_BASE_S * fps))), 50.0)
    d = brow - base
    ok = np.isfinite(d)
    if ok.sum() < 3:
        return np.zeros(0, int)
    mad = np.median(np.abs(d[ok] - np.median(d[ok]))) * 1.4826
    thresh = max(RAISE_MM, 3.0 * mad)
    z = np.nan_to_num(d, nan=-np.inf)
    peak = np.r_[False, (z[1:-1] > z[:-2]) & (z[1:-1] >= z[2:]), False] & (z >= thresh)
    frames = np.flatnonzero(peak)
    kept = []
    gap = int(round(RAISE_GAP_S * fps))
    for f in frames[np.argsort(-z[frames], kind="stable")]:
        if all(abs(f - k) >= gap for k in kept):
            kept.append(int(f))
    return np.array(sorted(kept), int)


def accent_timing(raises, accents, fps: float, window_s: float = ACCENT_WINDOW_S) -> dict:
    """Raises vs F0 accents: share of raises within +-window of an accent, signed lags
    (raise - nearest accent, s)."""
    raises, accents = np.asarray(raises, np.float64), np.asarray(accents, np.float64)
    if not len(raises) or not len(accents):
        return {"raises": int(len(raises)), "on_accent_share": None, "median_lag_s": None, "lags_s": []}
    lags = np.array([(r - accents[np.argmin(np.abs(accents - r))]) / fps for r in raises])
    near = np.abs(lags) <= window_s
    return {"raises": int(len(raises)), "on_accent_share": float(near.mean()),
            "median_lag_s": float(np.median(lags[near])) if near.any() else None,
            "lags_s": lags.round(3).tolist()}


def motion_std(points: np.ndarray) -> np.ndarray:
    """(T, L, 3) -> (L,) std over time of each point's distance from its median position
    (frames with NaN dropped)."""
    p = np.asarray(points, np.float64)
    p = p[np.isfinite(p).all(axis=(1, 2))]
    if len(p) < 2:
        return np.full(points.shape[1], np.nan)
    return np.linalg.norm(p - np.median(p, 0), axis=-1).std(0)


def pearson(a, b) -> float | None:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or a[ok].std() < 1e-12 or b[ok].std() < 1e-12:
        return None
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def shift(x: np.ndarray, frames: int) -> np.ndarray:
    """out[t] = x[t + frames] (NaN past the ends): ours in the video's time."""
    x = np.asarray(x, np.float64)
    out = np.full(x.shape, np.nan)
    n = len(x)
    if frames >= 0:
        out[:n - frames] = x[frames:]
    else:
        out[-frames:] = x[:n + frames]
    return out


# ---- measures on meshes ------------------------------------------------------------------

def brow_height_mm(landmarks_mm: dict) -> np.ndarray:
    """{mediapipe id: (T, 3) mm} -> (T, 2) brow above eye corners (y), minus the template's."""
    emb = rig_fit.embedding()
    tpl = {i: p for i, p in zip(emb.mediapipe, emb.landmarks(emb.template) * 1000.0)}
    out = []
    for side in range(2):
        b = np.mean([landmarks_mm[i][:, 1] for i in BROWS[side]], 0) - \
            np.mean([landmarks_mm[i][:, 1] for i in EYE_CORNERS[side]], 0)
        t = np.mean([tpl[i][1] for i in BROWS[side]]) - np.mean([tpl[i][1] for i in EYE_CORNERS[side]])
        out.append(b - t)
    return np.stack(out, -1)


def upper_landmarks() -> tuple:
    """Embedded MediaPipe ids on FLAME forehead + eye_region vertices (all three corners)."""
    from flame_lipsync.tools.evaluate import load_masks
    masks, note = load_masks()
    if masks is None:
        raise SystemExit(note)
    emb = rig_fit.embedding()
    upper = set(int(v) for v in masks["upper_face"])
    ids = tuple(i for i, corners in zip(emb.mediapipe, emb.corners) if all(int(c) in upper for c in corners))
    return ids, masks["upper_face"]


def ours(wav: str, fps: float):
    speech = pipeline.load_audio(wav, fps=fps)
    performance = pipeline.perform(speech, fps, pipeline.Settings())
    emb = rig_fit.embedding()
    vertices = pipeline.pose(performance, emb.template.astype(np.float32))
    return speech, performance, vertices


# ---- contact sheet: docs/whole_face.png ----------------------------------------------------

def rotate_about_neck(vertices: np.ndarray, rotation: np.ndarray, head: np.ndarray) -> np.ndarray:
    """(T, V, 3) posed vertices turned by (T, 3) pitch, yaw, roll (radians, the bake's
    order: R = Ry(yaw) Rx(pitch) Rz(roll), operators/head_motion.quaternions) about the
    neck pivot (operators/head_motion.neck_pivot: what the owned empty turns about)."""
    from flame_lipsync.operators.head_motion import neck_pivot
    pivot = neck_pivot(np.asarray(head, np.float64)).astype(np.float64)
    out = np.empty_like(np.asarray(vertices, np.float64))
    for t, (pitch, yaw, roll) in enumerate(np.asarray(rotation, np.float64)):
        cx, sx, cy, sy, cz, sz = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw), np.cos(roll), np.sin(roll)
        rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
        ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
        r = ry @ rx @ rz
        out[t] = (vertices[t] - pivot) @ r.T + pivot
    return out


def pick_instants(perf, n: int = 8) -> list:
    """[(frame, label)]: rest, blink, brow raise, nod down, nod up, turn, tilt, open vowel:
    each the frame where our motion shows it most (distinct frames, >= 0.3 s apart)."""
    fps = perf.fps
    c = {name: perf.control(name) for name in ("blink_left", "brow_raise_inner", "jaw_open")}
    rot = np.degrees(perf.head_rotation) if perf.head_rotation is not None else np.zeros((perf.frame_count, 3))
    motion = c["blink_left"] + c["brow_raise_inner"] + c["jaw_open"] + np.abs(rot).sum(1) / 5
    wants = [("rest", -motion), ("blink", c["blink_left"]), ("brow raise", c["brow_raise_inner"] - c["blink_left"]),
             ("nod: chin down", rot[:, 0]), ("nod: chin up", -rot[:, 0]), ("turn", np.abs(rot[:, 1])),
             ("tilt", np.abs(rot[:, 2])), ("open vowel", c["jaw_open"] - c["blink_left"])]
    chosen = []
    gap = int(0.3 * fps)
    for label, score in wants[:n]:
        for f in np.argsort(-score, kind="stable"):
            if all(abs(int(f) - g) >= gap for g, _ in chosen):
                chosen.append((int(f), label))
                break
    return sorted(chosen)


def whole_face_sheet(wav, out: Path, fps: float = 30.0, size=(300, 340)) -> Path:
    """A clip at 8 instants of our motion (blink, brow raise, nods, turn, tilt...), front
    view of the whole head, head rotation applied about the neck pivot, Workbench."""
    import tempfile
    from flame_lipsync.blender.render import contact_sheet, render_heads
    from flame_lipsync.core.mesh_io import read_ply
    speech = pipeline.load_audio(wav, fps=fps)
    perf = pipeline.perform(speech, fps, pipeline.Settings())
    template, faces = read_ply(rig_fit.TEMPLATE_FILE)
    template = np.asarray(template, np.float32)
    picks = pick_instants(perf)
    frames = [f for f, _ in picks]
    posed = pipeline.pose(perf.with_(controls=perf.controls[frames],
                                     head_rotation=None if perf.head_rotation is None else perf.head_rotation[frames]),
                          template)
    rot = perf.head_rotation[frames] if perf.head_rotation is not None else np.zeros((len(frames), 3))
    heads = rotate_about_neck(posed, rot, template).astype(np.float32)
    labels = []
    for (f, label), r, w in zip(picks, np.degrees(rot), perf.controls[frames]):
        get = lambda n: w[perf.control_names.index(n)]  # noqa: E731
        labels.append(f"{f / fps:.2f} s {label}\nblink {get('blink_left'):.2f} brow {get('brow_raise_inner'):.2f} "
                      f"jaw {get('jaw_open'):.2f}  p/y/r {r[0]:+.1f} {r[1]:+.1f} {r[2]:+.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        images = render_heads(faces, list(heads), Path(tmp), [f"{i:02d}" for i in range(len(heads))],
                              size=size, view="face")
        return contact_sheet(images, labels, columns=4, out_path=Path(out), cell_px=size[0],
                             title=f"{Path(wav).stem}: phonetic + default layers; head p/y/r deg "
                                   f"(+p = chin down) about the neck pivot")


# ---- one clip ----------------------------------------------------------------------------

def score_clip(name: str, track: dict, wav: str, offset_ms: float, ids_upper: tuple, upper_vertices) -> dict:
    fps = float(track["grid_fps"])
    detected = np.asarray(track["detected"], bool)
    T = len(detected)
    k = int(round(offset_ms * fps / 1000.0))       # video frame t shows audio frame t + k
    speech, perf, vertices = ours(wav, fps)
    n = min(T, len(vertices))
    emb = rig_fit.embedding()
    ids = sorted(set(sum(EYES + EYE_CORNERS + BROWS, ())) | set(ids_upper) | set(RIGID_NOSE))
    lm = emb.landmarks(vertices[:n], ids) * 1000.0                       # (n, L, 3) mm
    our = {i: lm[:, j] for j, i in enumerate(ids)}
    prosody = analyse(speech, fps, len(vertices))
    minutes_real = detected.sum() / fps / 60.0
    minutes_ours = n / fps / 60.0

    # Blinks (frames in audio time for the pause test: tracked + k).
    real_eye = np.where(detected[:, None], track["eye_open"], np.nan)
    our_eye = np.stack([np.linalg.norm(our[a] - our[b], axis=-1) for a, b in EYES], -1)
    real_blinks = detect_blinks(real_eye, fps)
    our_blinks = detect_blinks(our_eye, fps)
    truth = np.round(np.array(perf.metadata.get("blinks", [])) * fps).astype(int)
    truth = truth[truth < n - 2]
    found = [b[0] for b in our_blinks]
    recall = (float(np.mean([any(abs(f - t) <= 2 for f in found) for t in truth])) if len(truth) else None)
    real_on = np.array([b[0] for b in real_blinks]) + k
    our_on = np.array(found)
    blinks = {
        "tracked": {"count": len(real_blinks), "per_min": len(real_blinks) / minutes_real if minutes_real else None,
                    "in_pauses": int(in_pauses(real_on, prosody.pauses, fps).sum()),
                    "onsets_s": (np.array([b[0] for b in real_blinks]) / fps).round(2).tolist()},
        "ours": {"count": len(our_blinks), "per_min": len(our_blinks) / minutes_ours,
                 "in_pauses": int(in_pauses(our_on, prosody.pauses, fps).sum()),
                 "generated": int(len(truth)), "detector_recall_on_ours": recall,
                 "onsets_s": (our_on / fps).round(2).tolist()},
    }
    for side in ("tracked", "ours"):
        b = blinks[side]
        b["pause_share"] = b["in_pauses"] / b["count"] if b["count"] else None

    # Head rotation (deg), ours moved into the video's time.
    real_rot = np.where(detected[:, None], track["rotation"], np.nan)
    our_rot = np.full((T, 3), np.nan)
    if perf.head_rotation is not None:
        our_rot[:n] = np.degrees(perf.head_rotation[:n])
    our_rot_v = np.stack([shift(our_rot[:, a], k) for a in range(3)], 1)
    head = {"tracked_std_deg": np.nanstd(real_rot, 0).tolist(),
            "ours_std_deg": np.nanstd(our_rot[:n], 0).tolist(),
            "r": [pearson(our_rot_v[:, a], real_rot[:, a]) for a in range(3)]}
    head["ratio"] = [o / t if t > 1e-9 else None for o, t in zip(head["ours_std_deg"], head["tracked_std_deg"])]

    # Brows vs F0 accents.
    real_brow = np.where(detected[:, None], track["brow_height"], np.nan).mean(1)  # NaN: no face
    our_brow = brow_height_mm(our).mean(1)
    real_raises = detect_raises(real_brow, fps) + k
    our_raises = detect_raises(our_brow, fps)
    brows = {"tracked": accent_timing(real_raises, prosody.accents, fps),
             "ours": accent_timing(our_raises, prosody.accents, fps),
             "accents": int(len(prosody.accents))}
    brows["tracked"]["per_min"] = brows["tracked"]["raises"] / minutes_real if minutes_real else None
    brows["ours"]["per_min"] = brows["ours"]["raises"] / minutes_ours

    # Upper-face dynamics on the landmarks (mm), and ours' vertex FDD vs a still face.
    lm_real = track["landmarks_mm"][:, list(ids_upper)].astype(np.float64)
    lm_real[~detected] = np.nan
    real_motion = float(np.nanmean(motion_std(lm_real)))
    our_motion = float(np.nanmean(motion_std(np.stack([our[i] for i in ids_upper], 1))))
    nose = track["landmarks_mm"][:, list(RIGID_NOSE)].astype(np.float64)
    nose[~detected] = np.nan
    ours_vertex = vertices[:n].astype(np.float64)
    fdd_still = metrics.upper_face_dynamics_deviation(ours_vertex, np.repeat(emb.template[None], n, 0),
                                                      upper_vertices, emb.template) if n > 1 else None
    fdd = {"tracked_motion_mm": real_motion, "ours_motion_mm": our_motion,
           "fdd_mm": real_motion - our_motion,
           "tracking_noise_floor_mm": float(np.nanmean(motion_std(nose))),
           "ours_vertex_fdd_vs_still_mm": fdd_still}
    return {"clip": name, "fps": fps, "frames": T, "seconds": T / fps,
            "face_seconds": float(detected.sum() / fps), "av_offset_ms": offset_ms,
            "pauses": len(prosody.pauses), "blinks": blinks, "head": head, "brows": brows, "fdd": fdd}


# ---- pooling + tables ----------------------------------------------------------------------

def _pct(values, q):
    v = np.array([x for x in values if x is not None and np.isfinite(x)], np.float64)
    return float(np.percentile(v, q)) if len(v) else None


def pooled(clips: list) -> dict:
    out = {"clips": len(clips), "seconds": float(sum(c["seconds"] for c in clips))}
    minutes = {"tracked": sum(c["face_seconds"] for c in clips) / 60.0,
               "ours": sum(c["seconds"] for c in clips) / 60.0}
    long = [c for c in clips if c["seconds"] >= LONG_S]
    b = {}
    for side in ("tracked", "ours"):
        count = sum(c["blinks"][side]["count"] for c in clips)
        paused = sum(c["blinks"][side]["in_pauses"] for c in clips)
        rates = [c["blinks"][side]["per_min"] for c in long]
        b[side] = {"count": count, "per_min": count / minutes[side] if minutes[side] else None,
                   "pause_share": paused / count if count else None,
                   "per_min_long_p10": _pct(rates, 10), "per_min_long_median": _pct(rates, 50),
                   "per_min_long_p90": _pct(rates, 90)}
    rec = [c["blinks"]["ours"]["detector_recall_on_ours"] for c in clips
           if c["blinks"]["ours"]["detector_recall_on_ours"] is not None]
    b["detector_recall_on_ours"] = float(np.mean(rec)) if rec else None
    b["ours_generated"] = sum(c["blinks"]["ours"]["generated"] for c in clips)
    out["blinks"] = b
    h = {"long_clips": len(long)}
    for side in ("tracked", "ours"):
        stds = np.array([c["head"][f"{side}_std_deg"] for c in long], np.float64)
        h[side] = {a: {"p10": _pct(stds[:, i], 10), "median": _pct(stds[:, i], 50),
                       "p90": _pct(stds[:, i], 90), "min": _pct(stds[:, i], 0), "max": _pct(stds[:, i], 100)}
                   for i, a in enumerate(AXES)} if len(long) else {}
    h["median_ratio"] = {a: (h["ours"][a]["median"] / h["tracked"][a]["median"]) if len(long) else None
                         for a in AXES}
    h["within_50pct"] = {a: (0.5 <= h["median_ratio"][a] <= 1.5) if len(long) else None for a in AXES}
    h["clips_within_50pct"] = {a: int(sum(1 for c in long if c["head"]["ratio"][i] is not None
                                         and 0.5 <= c["head"]["ratio"][i] <= 1.5)) for i, a in enumerate(AXES)}
    h["mean_r"] = {a: _mean([c["head"]["r"][i] for c in clips]) for i, a in enumerate(AXES)}
    out["head"] = h
    br = {}
    for side in ("tracked", "ours"):
        lags = [x for c in clips for x in c["brows"][side]["lags_s"]]
        near = [x for x in lags if abs(x) <= ACCENT_WINDOW_S]
        raises = sum(c["brows"][side]["raises"] for c in clips)
        br[side] = {"raises": raises, "per_min": raises / (out["seconds"] / 60.0),
                    "on_accent_share": len(near) / len(lags) if lags else None,
                    "median_lag_s": float(np.median(near)) if near else None}
    br["accents_per_min"] = sum(c["brows"]["accents"] for c in clips) / (out["seconds"] / 60.0)
    out["brows"] = br
    f = {key: _mean([c["fdd"][key] for c in clips]) for key in clips[0]["fdd"]}
    f["long"] = {key: _mean([c["fdd"][key] for c in long]) for key in clips[0]["fdd"]} if long else {}
    out["fdd"] = f
    return out


def _mean(values):
    v = [x for x in values if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else None


def _f(v, fmt="{:.2f}"):
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else fmt.format(v)


def verdicts(p: dict) -> list:
    """Plain sentences: where ours is outside the tracked range."""
    out = []
    b = p["blinks"]
    lo, hi = b["tracked"]["per_min_long_p10"], b["tracked"]["per_min_long_p90"]
    r = b["ours"]["per_min"]
    if lo is not None and r is not None:
        inside = lo <= r <= hi
        out.append(f"Blink rate: ours {r:.1f}/min vs tracked {b['tracked']['per_min']:.1f}/min pooled "
                   f"(clips >= {LONG_S:g} s: p10-p90 {lo:.1f}-{hi:.1f}/min): "
                   + ("inside the tracked range" if inside else "OUTSIDE the tracked range")
                   + ("; inside 15-30/min." if 15 <= r <= 30 else "; OUTSIDE 15-30/min."))
    ts, os_ = b["tracked"]["pause_share"], b["ours"]["pause_share"]
    if ts is not None and os_ is not None:
        out.append(f"Blinks in pauses/phrase ends: ours {100 * os_:.0f} % vs tracked {100 * ts:.0f} %: "
                   + ("at least the tracked share." if os_ >= ts else "BELOW the tracked share."))
    h = p["head"]
    for a in AXES:
        if h["tracked"]:
            t, o = h["tracked"][a], h["ours"][a]
            ok = h["within_50pct"][a]
            out.append(f"Head {a} std: ours median {o['median']:.2f} deg vs tracked median {t['median']:.2f} "
                       f"(p10-p90 {t['p10']:.2f}-{t['p90']:.2f}); ratio {h['median_ratio'][a]:.2f}: "
                       + ("within +-50 %." if ok else "OUTSIDE +-50 %.")
                       + f" {h['clips_within_50pct'][a]}/{h['long_clips']} long clips within +-50 %;"
                       f" correlation with the tracked {a}: mean r {_f(h['mean_r'][a])}.")
    br = p["brows"]
    out.append(f"Brow raises: ours {br['ours']['per_min']:.1f}/min, {_f(_pc(br['ours']['on_accent_share']), '{:.0f}')} % "
               f"within +-{ACCENT_WINDOW_S:g} s of an F0 accent; tracked {br['tracked']['per_min']:.1f}/min, "
               f"{_f(_pc(br['tracked']['on_accent_share']), '{:.0f}')} % (accents: {br['accents_per_min']:.1f}/min).")
    f = p["fdd"]
    out.append(f"Upper-face motion (landmarks): ours {f['ours_motion_mm']:.3f} mm vs tracked "
               f"{f['tracked_motion_mm']:.3f} mm (tracker noise floor on the rigid nose "
               f"{f['tracking_noise_floor_mm']:.3f} mm): FDD {f['fdd_mm']:+.3f} mm; ours' vertex FDD vs a "
               f"still face {f['ours_vertex_fdd_vs_still_mm']:+.3f} mm (non-zero).")
    return out


def _pc(x):
    return None if x is None else 100 * x


def markdown(result: dict) -> str:
    p = result["pooled"]
    lines = ["# Upper face: ours vs tracked talking faces (issue 12)", "",
             f"{p['clips']} clips, {p['seconds']:.0f} s, from `../shared/assets/video/` (MediaPipe tracks, "
             "tools/real_faces.py). Ours: `pipeline.perform` with the default Settings (phonetic, no "
             "transcript, default LayerSettings) on each clip's audio at the video's fps. Detectors and "
             "definitions: the docstring of tools/upper_face_eval.py.", "", "## Verdicts", ""]
    lines += [f"- {v}" for v in result["verdicts"]]
    b = p["blinks"]
    lines += ["", "## Pooled", "",
              "| measure | tracked | ours |", "|---|---|---|",
              f"| blinks | {b['tracked']['count']} | {b['ours']['count']} (generated {b['ours_generated']}, "
              f"detector recall on ours {_f(b['detector_recall_on_ours'])}) |",
              f"| blinks / min (all clips) | {_f(b['tracked']['per_min'], '{:.1f}')} | {_f(b['ours']['per_min'], '{:.1f}')} |",
              f"| blinks / min, clips >= {LONG_S:g} s: p10 / median / p90 | "
              f"{_f(b['tracked']['per_min_long_p10'], '{:.1f}')} / {_f(b['tracked']['per_min_long_median'], '{:.1f}')} / "
              f"{_f(b['tracked']['per_min_long_p90'], '{:.1f}')} | {_f(b['ours']['per_min_long_p10'], '{:.1f}')} / "
              f"{_f(b['ours']['per_min_long_median'], '{:.1f}')} / {_f(b['ours']['per_min_long_p90'], '{:.1f}')} |",
              f"| share of blinks in pauses | {_f(_pc(b['tracked']['pause_share']), '{:.0f}')} % | "
              f"{_f(_pc(b['ours']['pause_share']), '{:.0f}')} % |"]
    h = p["head"]
    for a in AXES:
        if h["tracked"]:
            t, o = h["tracked"][a], h["ours"][a]
            lines.append(f"| head {a} std deg, clips >= {LONG_S:g} s: p10 / median / p90 | {t['p10']:.2f} / "
                         f"{t['median']:.2f} / {t['p90']:.2f} | {o['p10']:.2f} / {o['median']:.2f} / {o['p90']:.2f} |")
    lines.append("| head r with tracked (pitch / yaw / roll, mean over clips) | - | " +
                 " / ".join(_f(h["mean_r"][a]) for a in AXES) + " |")
    br = p["brows"]
    lines += [f"| brow raises / min | {br['tracked']['per_min']:.1f} | {br['ours']['per_min']:.1f} |",
              f"| raises within +-{ACCENT_WINDOW_S:g} s of an F0 accent | {_f(_pc(br['tracked']['on_accent_share']), '{:.0f}')} % | "
              f"{_f(_pc(br['ours']['on_accent_share']), '{:.0f}')} % |",
              f"| median lag raise - accent (near ones), s | {_f(br['tracked']['median_lag_s'], '{:+.3f}')} | "
              f"{_f(br['ours']['median_lag_s'], '{:+.3f}')} |",
              f"| upper-face landmark motion mm | {p['fdd']['tracked_motion_mm']:.3f} (noise floor "
              f"{p['fdd']['tracking_noise_floor_mm']:.3f}) | {p['fdd']['ours_motion_mm']:.3f} |",
              f"| FDD tracked - ours, mm | {p['fdd']['fdd_mm']:+.3f} | |",
              f"| ours' vertex FDD vs still face (forehead + eye_region), mm | | "
              f"{p['fdd']['ours_vertex_fdd_vs_still_mm']:+.3f} |", "",
              "## Per clip", "",
              "| clip | s | blinks/min tracked | ours | pause share tracked | ours | head std tracked p/y/r | ours p/y/r | "
              "head r p/y/r | brow raises on accent tracked | ours | FDD mm |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in result["clips"]:
        bt, bo, hd, bw = c["blinks"]["tracked"], c["blinks"]["ours"], c["head"], c["brows"]
        lines.append(
            f"| {c['clip']} | {c['seconds']:.1f} | {_f(bt['per_min'], '{:.0f}')} | {_f(bo['per_min'], '{:.0f}')} | "
            f"{_f(_pc(bt['pause_share']), '{:.0f}')} | {_f(_pc(bo['pause_share']), '{:.0f}')} | "
            + "/".join(f"{x:.1f}" for x in hd["tracked_std_deg"]) + " | "
            + "/".join(f"{x:.1f}" for x in hd["ours_std_deg"]) + " | "
            + "/".join(_f(x) for x in hd["r"]) + " | "
            f"{bw['tracked']['raises']} ({_f(_pc(bw['tracked']['on_accent_share']), '{:.0f}')} %) | "
            f"{bw['ours']['raises']} ({_f(_pc(bw['ours']['on_accent_share']), '{:.0f}')} %) | "
            f"{c['fdd']['fdd_mm']:+.2f} |")
    if result["problems"]:
        lines += ["", "## Clips not scored", ""] + [f"- {x}" for x in result["problems"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/eval"))
    parser.add_argument("--tracks", type=Path, default=TRACKS)
    parser.add_argument("--clips", nargs="*", help="only these clip names (stems)")
    parser.add_argument("--sheet", type=Path, help="instead: render the contact sheet of --sheet-audio here")
    parser.add_argument("--sheet-audio", type=Path, help="speech for --sheet (default: the shared speech_22s.wav)")
    args = parser.parse_args(argv)
    if args.sheet:
        from flame_lipsync.core.flame import SPEECH_ASSETS
        print(f"wrote {whole_face_sheet(args.sheet_audio or SPEECH_ASSETS / 'speech_22s.wav', args.sheet)}")
        return 0
    summary = args.tracks / "summary.json"
    if not summary.is_file():
        print(f"no tracks at {summary}: run `make eval-real` (tools/real_faces.py) first")
        return 2
    offsets = {}
    real_faces = args.out / "real_faces.json"
    if real_faces.is_file():
        offsets = {c["clip"]: c["av_offset_ms"] for c in json.loads(real_faces.read_text())["clips"]}
    ids_upper, upper_vertices = upper_landmarks()
    clips, problems = [], []
    for entry in json.loads(summary.read_text()):
        name = Path(entry["video"]).stem
        if args.clips and name not in args.clips:
            continue
        if "error" in entry or entry.get("problems") or not entry.get("wav"):
            problems.append(f"{entry['video']}: " + "; ".join(entry.get("problems") or [entry.get("error", "no audio")]))
            continue
        t0 = time.perf_counter()
        try:
            track = rig_fit.load_track(entry["npz"])
            clip = score_clip(name, track, entry["wav"], offsets.get(name, 0.0), ids_upper, upper_vertices)
        except Exception as err:  # noqa: BLE001 - one clip must not stop the eval
            problems.append(f"{entry['video']}: scoring failed ({type(err).__name__}: {err})")
            print(problems[-1], flush=True)
            continue
        clips.append(clip)
        b, hd = clip["blinks"], clip["head"]
        print(f"{name}: {clip['seconds']:.1f} s, blinks/min tracked {_f(b['tracked']['per_min'], '{:.0f}')} "
              f"ours {b['ours']['per_min']:.0f}, head std tracked "
              + "/".join(f"{x:.1f}" for x in hd["tracked_std_deg"]) + " ours "
              + "/".join(f"{x:.1f}" for x in hd["ours_std_deg"])
              + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    if not clips:
        print("no clip could be scored")
        return 1
    result = {"clips": clips, "pooled": pooled(clips), "problems": problems,
              "upper_landmarks": list(ids_upper),
              "detector": {"closure": CLOSURE, "each_eye": EACH_EYE, "baseline_s": BASELINE_S,
                           "baseline_pct": BASELINE_PCT, "max_blink_s": MAX_BLINK_S,
                           "pause_margin_s": PAUSE_MARGIN_S, "raise_mm": RAISE_MM,
                           "accent_window_s": ACCENT_WINDOW_S}}
    result["verdicts"] = verdicts(result["pooled"])
    atomic.write_text(args.out / "upper_face.json", json.dumps(result, indent=1, default=float))
    atomic.write_text(args.out / "upper_face.md", markdown(result))
    for v in result["verdicts"]:
        print(v)
    print(f"wrote {args.out / 'upper_face.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
