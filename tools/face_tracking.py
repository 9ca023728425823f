"""Track real talking-face video with MediaPipe Face Mesh (dev/eval tool, never shipped).

Runs in its own environment (`make venv-track` -> .venv-track: mediapipe 0.10.14, the last
release whose wheel carries the face-mesh model, so it runs offline). Imports numpy,
mediapipe and PyAV only, nothing of the product.

    .venv-track/bin/python tools/face_tracking.py VIDEO... --out out/tracks [--jobs 2]

Per video, cached by the file's sha256 (re-runs are free):
  out/tracks/<sha>.npz   the arrays below
  out/tracks/<sha>.wav   its audio, 16 kHz mono 16-bit, sample 0 = the first video frame

Arrays (T = video frames; frames without a face: NaN and detected = False, never guessed):
  detected      (T,)        bool   MediaPipe found a face
  times         (T,)        s      frame time from the first video frame
  video_start   ()          s      the first video frame's time in the file (the WAV's 0)
  landmarks     (T, 478, 3)        MediaPipe's raw output: x, y in [0, 1] of the image
                                   width/height (y down), z in units of the width
  landmarks_cam (T, 478, 3) px     camera frame: x right, y up, z towards the viewer
                                   (the FLAME axes), pixels of the analysed image
  landmarks_mm  (T, 478, 3) mm     head frame: head pose removed, millimetres of the FLAME
                                   template (similarity fit of the rigid landmarks -
                                   nose ridge and eye corners - onto their FLAME positions from
                                   mediapipe_landmark_embedding.npz)
  rotation      (T, 3)      deg    head pitch, yaw, roll (R = Rz(roll) Ry(yaw) Rx(pitch),
                                   FLAME head frame -> camera)
  translation   (T, 3)      mm     position of the FLAME origin in the camera frame,
                                   divided by the scale (x, y in mm at the face's depth)
  scale         (T,)        px/mm
  pose_residual (T,)        mm     RMS of the rigid landmarks after the pose fit
  aperture      (T,)        mm     inner-lip opening, landmarks 13-14 (upper/lower inner
                                   lip on the midline; both are embedded on FLAME)
  mouth_width   (T,)        mm     lip corners 61-291
  protrusion    (T,)        mm     lips forward: mean z of 0 and 17 (outer lip midline)
                                   minus their z on the FLAME template
  lip_contact   (T,)        bool   aperture < CONTACT_MM
  eye_open      (T, 2)      mm     lid gap, subject's right (159-145) and left (386-374)
  brow_height   (T, 2)      mm     brow (105, 66 / 334, 296) above the eye corners,
                                   minus the same on the template (0 = template brow)
A video without a face, without audio, or unreadable prints one line naming the file and
the problem; the batch goes on (exit status 1 if any video failed).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import wave
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

VERSION = 2                  # bump when the arrays change: cached tracks are recomputed
AUDIO_RATE = 16000
MAX_SIDE = 720               # frames larger than this are scaled down before tracking
CONTACT_MM = 1.0             # inner-lip aperture below this = lips touch (same for ours)
N_LANDMARKS = 478

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "assets"
EMBEDDING = SHARED / "flame" / "mediapipe_landmark_embedding.npz"
TEMPLATE = SHARED / "flame" / "flame_template.ply"

# MediaPipe indices (all are among the 105 embedded on FLAME).
RIGID = (4, 5, 6, 168, 195, 197, 33, 133, 362, 263)  # nose ridge + eye corners: no rig control moves them
UPPER_INNER, LOWER_INNER = 13, 14
CORNERS = (61, 291)
LIP_MID_OUTER = (0, 17)
EYES = ((159, 145), (386, 374))           # subject's right, left (upper lid, lower lid)
EYE_CORNERS = ((33, 133), (362, 263))
BROWS = ((105, 66), (334, 296))


class TrackError(Exception):
    """A video that cannot be tracked; the message names the problem."""


# ---- FLAME template + embedding ----------------------------------------------------------

def read_ply_vertices(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) float64 and triangles (F, 3) of a binary little-endian or ASCII PLY
    with float x y z vertices and uchar-count int faces (the shared FLAME files)."""
    data = Path(path).read_bytes()
    end = data.index(b"end_header") + len(b"end_header")
    end = data.index(b"\n", end) + 1
    header = data[:end].decode("ascii").splitlines()
    fmt = next(l.split()[1] for l in header if l.startswith("format"))
    counts, props, current = {}, {}, None
    for line in header:
        parts = line.split()
        if parts and parts[0] == "element":
            current = parts[1]
            counts[current] = int(parts[2])
            props[current] = []
        elif parts and parts[0] == "property" and current:
            props[current].append(parts[1:])
    nv, nf = counts.get("vertex", 0), counts.get("face", 0)
    if fmt == "ascii":
        rows = data[end:].decode("ascii").split("\n")
        verts = np.array([[float(x) for x in r.split()[:3]] for r in rows[:nv]])
        faces = np.array([[int(x) for x in r.split()[1:4]] for r in rows[nv:nv + nf]])
        return verts, faces
    if fmt != "binary_little_endian":
        raise ValueError(f"{path}: PLY format {fmt} not supported")
    sizes = {"float": "f4", "float32": "f4", "double": "f8", "uchar": "u1", "uint8": "u1",
             "int": "i4", "int32": "i4", "uint": "u4", "short": "i2", "ushort": "u2"}
    vdtype = np.dtype([(p[1], "<" + sizes[p[0]]) for p in props["vertex"]])
    vertex = np.frombuffer(data, vdtype, nv, end)
    verts = np.stack([vertex["x"], vertex["y"], vertex["z"]], 1).astype(np.float64)
    offset = end + nv * vdtype.itemsize
    face_dtype = np.dtype([("n", "u1"), ("i", "<i4", 3)])  # triangles only (FLAME)
    faces = np.frombuffer(data, face_dtype, nf, offset)
    if nf and not np.all(faces["n"] == 3):
        raise ValueError(f"{path}: only triangle faces are supported")
    return verts, faces["i"].astype(np.int64)


def embedded_template_mm() -> dict[int, np.ndarray]:
    """MediaPipe index -> its position on the FLAME template (mm)."""
    for path in (EMBEDDING, TEMPLATE):
        if not path.is_file():
            raise FileNotFoundError(f"shared asset missing: {path} (clone the project beside ../shared)")
    emb = np.load(EMBEDDING)
    verts, faces = read_ply_vertices(TEMPLATE)
    tri = verts[faces[emb["lmk_face_idx"].astype(np.int64)]]          # (105, 3, 3)
    points = np.einsum("lk,lkd->ld", emb["lmk_b_coords"], tri) * 1000.0
    return {int(i): p for i, p in zip(emb["landmark_indices"], points)}


def similarity(source: np.ndarray, target: np.ndarray):
    """Umeyama: s, R, t minimising |s R source + t - target|; rows are points."""
    ms, mt = source.mean(0), target.mean(0)
    a, b = source - ms, target - mt
    u, sigma, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    c = np.diag([1.0, 1.0, d])
    rotation = u @ c @ vt
    scale = (sigma * np.diag(c)).sum() / (a ** 2).sum()
    return scale, rotation, mt - scale * rotation @ ms


def euler_deg(rotation: np.ndarray) -> np.ndarray:
    """pitch, yaw, roll (degrees) with R = Rz(roll) Ry(yaw) Rx(pitch)."""
    yaw = np.arcsin(np.clip(-rotation[2, 0], -1, 1))
    pitch = np.arctan2(rotation[2, 1], rotation[2, 2])
    roll = np.arctan2(rotation[1, 0], rotation[0, 0])
    return np.degrees([pitch, yaw, roll])


def measures(mm: np.ndarray, template: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
    """Mouth/eye/brow measures from head-frame landmarks (..., 478, 3) in mm."""
    def dist(i, j):
        return np.linalg.norm(mm[..., i, :] - mm[..., j, :], axis=-1)
    lips_z = mm[..., list(LIP_MID_OUTER), 2].mean(-1)
    template_lips_z = np.mean([template[i][2] for i in LIP_MID_OUTER])

    def brow(side):
        b = mm[..., list(BROWS[side]), 1].mean(-1) - mm[..., list(EYE_CORNERS[side]), 1].mean(-1)
        t = (np.mean([template[i][1] for i in BROWS[side]])
             - np.mean([template[i][1] for i in EYE_CORNERS[side]]))
        return b - t
    aperture = dist(UPPER_INNER, LOWER_INNER)
    return {
        "aperture": aperture,
        "mouth_width": dist(*CORNERS),
        "protrusion": lips_z - template_lips_z,
        "lip_contact": aperture < CONTACT_MM,
        "eye_open": np.stack([dist(*EYES[0]), dist(*EYES[1])], -1),
        "brow_height": np.stack([brow(0), brow(1)], -1),
    }


# ---- video -------------------------------------------------------------------------------

def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _open(path: Path):
    import av
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise TrackError(f"cannot be read as video ({type(err).__name__}: {err})") from None
    if not container.streams.video:
        container.close()
        raise TrackError("has no video stream")
    return container


def extract_audio(path: Path, start: float, out_wav: Path) -> float:
    """Audio -> 16 kHz mono 16-bit WAV whose sample 0 is at time `start` (the first video
    frame; padded with silence or trimmed). Returns its duration in s."""
    import av
    container = _open(path)
    try:
        if not container.streams.audio:
            raise TrackError("has no audio track")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
        chunks, first_time = [], None
        try:
            for frame in container.decode(stream):
                if first_time is None and frame.time is not None:
                    first_time = float(frame.time)
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as err:
            raise TrackError(f"audio track cannot be decoded ({err})") from None
    finally:
        container.close()
    samples = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
    if samples.size == 0:
        raise TrackError("has an empty audio track")
    shift = int(round(((first_time or 0.0) - start) * AUDIO_RATE))
    if shift > 0:
        samples = np.concatenate([np.zeros(shift, np.int16), samples])
    elif shift < 0:
        samples = samples[-shift:]
    if np.abs(samples).max() < 4:
        raise TrackError("has a silent audio track")
    _atomic_wav(out_wav, samples)
    return samples.size / AUDIO_RATE


def _atomic_wav(path: Path, samples: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".wav.part")
    os.close(fd)
    with wave.open(tmp, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(AUDIO_RATE)
        w.writeframes(samples.astype("<i2").tobytes())
    os.replace(tmp, path)


def track_frames(path: Path, max_frames: int | None = None) -> dict[str, np.ndarray]:
    """Run Face Mesh over the video's frames -> the arrays of the module docstring."""
    import av
    import mediapipe as mp

    template = embedded_template_mm()
    rigid_template = np.array([template[i] for i in RIGID])
    container = _open(path)
    stream = container.streams.video[0]
    fps = float(stream.average_rate or stream.guessed_rate or 0)
    raw, times, size = [], [], None
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1,
                                           refine_landmarks=True, min_detection_confidence=0.5,
                                           min_tracking_confidence=0.5)
    first = None
    try:
        for frame in container.decode(stream):
            if max_frames is not None and len(raw) >= max_frames:
                break
            if size is None:
                k = min(1.0, MAX_SIDE / max(frame.width, frame.height))
                size = (int(round(frame.width * k / 2) * 2), int(round(frame.height * k / 2) * 2))
            image = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
            t = float(frame.time) if frame.time is not None else len(raw) / fps
            first = t if first is None else first
            times.append(t - first)
            result = mesh.process(image)
            if result.multi_face_landmarks:
                lm = result.multi_face_landmarks[0].landmark
                raw.append(np.array([(p.x, p.y, p.z) for p in lm], np.float64))
            else:
                raw.append(np.full((N_LANDMARKS, 3), np.nan))
    except av.error.FFmpegError as err:
        if not raw:
            raise TrackError(f"video stream cannot be decoded ({err})") from None
        print(f"{path}: decoding stopped after {len(raw)} frames ({err})", file=sys.stderr)
    finally:
        mesh.close()
        container.close()
    if not raw:
        raise TrackError("has no decodable video frames")
    if not fps and len(times) > 1:
        fps = 1.0 / np.median(np.diff(times))
    landmarks = np.stack(raw)
    detected = ~np.isnan(landmarks[:, 0, 0])
    w, h = size
    cam = np.stack([landmarks[..., 0] * w, -landmarks[..., 1] * h, -landmarks[..., 2] * w], -1)

    T = len(landmarks)
    mm = np.full_like(cam, np.nan)
    rotation = np.full((T, 3), np.nan)
    translation = np.full((T, 3), np.nan)
    scale = np.full(T, np.nan)
    residual = np.full(T, np.nan)
    for i in np.flatnonzero(detected):
        s, r, t = similarity(rigid_template, cam[i, list(RIGID)])
        mm[i] = (cam[i] - t) @ r / s
        rotation[i] = euler_deg(r)
        translation[i] = t / s
        scale[i] = s
        residual[i] = np.sqrt(np.mean(np.sum((mm[i, list(RIGID)] - rigid_template) ** 2, 1)))
    out = {
        "detected": detected, "times": np.asarray(times), "landmarks": landmarks.astype(np.float32),
        "landmarks_cam": cam.astype(np.float32), "landmarks_mm": mm.astype(np.float32),
        "rotation": rotation, "translation": translation, "scale": scale,
        "pose_residual": residual, "fps": np.float64(fps), "image_size": np.array(size),
        "video_start": np.float64(first),
    }
    out.update(measures(mm, template))
    out["lip_contact"] = out["lip_contact"] & detected
    return out


# ---- cache + batch -----------------------------------------------------------------------

def track_video(path, out_dir, max_frames: int | None = None, force: bool = False) -> dict:
    """Track one video (cached). Returns {"video", "sha", "npz", "wav" (or None), "frames",
    "detection_rate", "problems": [one-line messages]}; raises TrackError when unusable."""
    path = Path(path)
    if not path.is_file():
        raise TrackError("does not exist" if not path.is_dir() else "is a folder, not a video")
    out_dir = Path(out_dir)
    digest = sha256(path)
    stem = digest if max_frames is None else f"{digest}_first{max_frames}"
    npz, wav = out_dir / f"{stem}.npz", out_dir / f"{stem}.wav"
    problems = []
    cached = None
    if npz.is_file() and not force:
        with np.load(npz) as data:
            if int(data["version"]) == VERSION:
                cached = {k: data[k] for k in ("detected", "fps")}
                audio_problem = str(data["audio_problem"])
    if cached is None:
        arrays = track_frames(path, max_frames)
        audio_problem = ""
        try:
            extract_audio(path, float(arrays["video_start"]), wav)
        except TrackError as err:
            audio_problem = str(err)
        arrays.update(version=np.int64(VERSION), sha256=np.str_(digest), source=np.str_(path.name),
                      audio_problem=np.str_(audio_problem), contact_mm=np.float64(CONTACT_MM))
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".npz.part")
        os.close(fd)
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, npz)
        cached = arrays
    detected = cached["detected"]
    if audio_problem:
        problems.append(audio_problem)
    if not detected.any():
        problems.append(f"no face found in any of its {len(detected)} frames")
    return {"video": str(path), "sha": digest, "npz": str(npz),
            "wav": str(wav) if wav.is_file() and not audio_problem else None,
            "frames": int(len(detected)), "fps": float(cached["fps"]),
            "detection_rate": float(detected.mean()), "problems": problems}


def _job(args):
    path, out_dir, max_frames, force = args
    try:
        return track_video(path, out_dir, max_frames, force)
    except TrackError as err:
        return {"video": str(path), "error": f"{path}: {err}"}
    except Exception as err:  # noqa: BLE001 - one broken file must not stop the batch
        return {"video": str(path), "error": f"{path}: tracking failed ({type(err).__name__}: {err})"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("out/tracks"))
    parser.add_argument("--max-frames", type=int, default=None,
                        help="track only the first N frames (tests; cached separately)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="ignore the cache")
    parser.add_argument("--summary", type=Path, help="write the per-video results as JSON")
    args = parser.parse_args(argv)
    jobs = [(v, args.out, args.max_frames, args.force) for v in args.videos]
    if args.jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(_job, jobs))
    else:
        results = [_job(j) for j in jobs]
    failed = 0
    for r in results:
        if "error" in r:
            failed += 1
            print(r["error"])
            continue
        for p in r["problems"]:
            print(f"{r['video']}: {p}")
        failed += bool(r["problems"])
        print(f"{Path(r['video']).name}: {r['frames']} frames at {r['fps']:g} fps, face in "
              f"{100 * r['detection_rate']:.1f} % -> {r['npz']}")
    if args.summary:
        import json
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(results, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
