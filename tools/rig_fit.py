"""Fit the rig to tracked real faces: the real control trajectory paired with the real audio.

Reads tracks written by tools/face_tracking.py (in .venv-track); runs in the main .venv.

    python tools/rig_fit.py out/tracks/<sha>.npz... --out out/fits

Per frame: the head pose (similarity fit of the rigid landmarks - nose and eye corners -
of the FLAME template onto the tracked ones), then the ten mouth controls whose offsets,
carried to the landmarks through the MediaPipe->FLAME embedding, best reproduce the 40
tracked lip landmarks in the head frame (mm of the template):

    min_w  sum_t |A w_t - (b_t - rest)|^2 + ridge |w_t|^2 + smooth |w_t - w_t-1|^2,
    0 <= w <= 2

A = the rig fields at the lip landmarks, b_t = tracked - template. `rest` is the
speaker's own neutral mouth against the template: the part of the median residual that
the rig cannot express (projected out of the span of A), so it absorbs shape (thicker
lips, another lip line) but never motion the rig can make. Frames without a face carry
no data term; their controls are reported NaN (never guessed).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from flame_lipsync.core.flame import FLAME_ASSETS, LOWER_LIP_EDGE, UPPER_LIP_EDGE
from flame_lipsync.core.mesh_io import read_ply
from flame_lipsync.core.rig import CONTROLS, load_rig

EMBEDDING_FILE = FLAME_ASSETS / "mediapipe_landmark_embedding.npz"
TEMPLATE_FILE = FLAME_ASSETS / "flame_template.ply"

# MediaPipe indices; the same sets as tools/face_tracking.py (which imports nothing of
# the product, so they are stated there too).
RIGID = (4, 5, 6, 168, 195, 197, 33, 133, 362, 263)  # nose ridge + eye corners: no rig control moves them
LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181,
        185, 191, 267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402,
        405, 409, 415)
UPPER_INNER, LOWER_INNER = 13, 14
CORNERS = (61, 291)

RIDGE = 0.05      # mm^2 per unit control^2
SMOOTH = 0.5      # mm^2 per unit control change per frame
BOUNDS = (0.0, 2.0)


# The shared embedding puts 13 (upper inner lip) on the inner curl of FLAME's upper lip,
# 2.8 mm below and 2.2 mm behind where the lips meet: sealed lips read 3.2 mm apart and a
# jaw_open of 1 reads 20.9 mm against a 24.4 mm lip gap. The two midline inner-lip points
# are pinned to FLAME's lip-contact vertices instead (14 already sits within 0.1 mm of
# its one), so closed reads closed and the track and our lip gap measure the same points.
PINNED = {13: UPPER_LIP_EDGE, 14: LOWER_LIP_EDGE}

# Bumped whenever the fit's inputs change (the embedding, the rig, the solver): names
# the rig-fit cache beside each track.
FIT_VERSION = 2


def fit_cache(track_npz: Path) -> Path:
    return Path(track_npz).with_name(f"{Path(track_npz).stem}_fit{FIT_VERSION}.npz")


class Embedding:
    """105 MediaPipe landmarks located on FLAME faces by barycentric coordinates."""

    def __init__(self, path: Path = EMBEDDING_FILE, template_path: Path = TEMPLATE_FILE):
        for p in (path, template_path):
            if not Path(p).is_file():
                raise FileNotFoundError(f"shared asset missing: {p} (clone the project beside ../shared)")
        data = np.load(path)
        _, faces = read_ply(template_path)
        self.mediapipe = tuple(int(i) for i in data["landmark_indices"])
        self.corners = np.asarray(faces)[data["lmk_face_idx"].astype(np.int64)]   # (105, 3)
        self.bary = data["lmk_b_coords"].astype(np.float64)                         # (105, 3)
        self.template, _ = read_ply(template_path)                                  # metres
        for mediapipe_id, vertex in PINNED.items():
            row = self.mediapipe.index(mediapipe_id)
            self.corners[row] = vertex
            self.bary[row] = (1.0, 0.0, 0.0)

    def index(self, mediapipe_ids) -> np.ndarray:
        """Rows of the embedding for MediaPipe landmark ids."""
        return np.array([self.mediapipe.index(i) for i in mediapipe_ids])

    def landmarks(self, vertices, ids=None) -> np.ndarray:
        """(..., 5023, 3) -> (..., L, 3) landmark positions (same units)."""
        v = np.asarray(vertices, np.float64)
        rows = slice(None) if ids is None else self.index(ids)
        tri = v[..., self.corners[rows], :]                                         # (..., L, 3, 3)
        return np.einsum("lk,...lkd->...ld", self.bary[rows], tri)


@lru_cache(maxsize=1)
def embedding() -> Embedding:
    return Embedding()


def aperture_mm(vertices) -> np.ndarray:
    """Inner-lip aperture through the embedded landmarks 13-14, mm, from (..., 5023, 3)
    vertices in metres: the same measure as the tracker's `aperture`."""
    lm = embedding().landmarks(vertices, (UPPER_INNER, LOWER_INNER)) * 1000.0
    return np.linalg.norm(lm[..., 0, :] - lm[..., 1, :], axis=-1)


def mouth_width_mm(vertices) -> np.ndarray:
    lm = embedding().landmarks(vertices, CORNERS) * 1000.0
    return np.linalg.norm(lm[..., 0, :] - lm[..., 1, :], axis=-1)


def lip_gap_mm(vertices) -> np.ndarray:
    v = np.asarray(vertices)
    return np.linalg.norm(v[..., UPPER_LIP_EDGE, :] - v[..., LOWER_LIP_EDGE, :], axis=-1) * 1000.0


def similarity(source: np.ndarray, target: np.ndarray):
    """Umeyama: s, R, t minimising |s R source + t - target|; rows are points."""
    ms, mt = source.mean(0), target.mean(0)
    a, b = source - ms, target - mt
    u, sigma, vt = np.linalg.svd(b.T @ a)
    c = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ c @ vt
    scale = (sigma * np.diag(c)).sum() / (a ** 2).sum()
    return scale, rotation, mt - scale * rotation @ ms


# ---- tracks on a uniform frame grid -------------------------------------------------------

def load_track(path) -> dict:
    """A tracker .npz on a uniform grid at its nominal fps: a video that drops frames
    (variable frame rate) gets NaN / not-detected rows where no frame was shown."""
    with np.load(path) as data:
        track = {k: data[k] for k in data.files}
    times = track["times"]
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / float(track["fps"])
    fps = 1.0 / step if step > 0 else float(track["fps"])
    if abs(fps - round(fps)) < 0.02:
        fps = float(round(fps))
    elif abs(fps - 29.97) < 0.02:
        fps = 30000 / 1001
    slots = np.round(times * fps).astype(np.int64)
    n = int(slots.max()) + 1 if len(slots) else 0
    if n != len(times) or np.any(np.diff(slots) <= 0):
        keep = np.concatenate([[True], np.diff(slots) > 0])   # one frame per slot
        slots = slots[keep]
        for key, value in list(track.items()):
            if isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == len(times):
                value = value[keep]
                fill = False if value.dtype == bool else np.nan
                grid = np.full((n,) + value.shape[1:], fill, dtype=value.dtype if value.dtype == bool
                               else np.float64)
                grid[slots] = value
                track[key] = grid
        track["times"] = np.arange(n) / fps
        shown = np.zeros(n, bool)
        shown[slots] = True
    else:
        shown = np.ones(n, bool)
    track["shown"] = shown          # a frame of the video fell in this slot
    track["grid_fps"] = fps
    return track


# ---- the fit ----------------------------------------------------------------------------

@dataclass
class Fit:
    controls: np.ndarray        # (T, 10), NaN where no face
    residual_mm: np.ndarray     # (T,) RMS over the lip landmarks, NaN where no face
    rest_mm: np.ndarray         # (40, 3) speaker's neutral mouth vs the template (outside the rig)
    rotation: np.ndarray        # (T, 3, 3) template head frame -> camera
    scale: np.ndarray           # (T,) px per mm
    translation: np.ndarray     # (T, 3) px
    head_mm: np.ndarray         # (T, 40, 3) tracked lip landmarks in the head frame, mm

    @property
    def residual(self) -> float:
        return float(np.nanmean(self.residual_mm))


def lip_basis():
    """A (120, 10): mm of lip-landmark motion per unit control; template lips (40, 3) mm."""
    emb = embedding()
    rig = load_rig()
    fields = emb.landmarks(rig.fields, LIPS) * 1000.0          # (10, 40, 3): linear in vertices
    template = emb.landmarks(emb.template, LIPS) * 1000.0
    return fields.reshape(len(CONTROLS), -1).T, template


def head_pose(landmarks_cam: np.ndarray):
    """(T, 478, 3) camera-frame landmarks -> per-frame similarity from the template's
    rigid landmarks (mm) and the lip landmarks in the head frame (T, 40, 3) mm."""
    emb = embedding()
    rigid_template = emb.landmarks(emb.template, RIGID) * 1000.0
    T = len(landmarks_cam)
    rotation = np.full((T, 3, 3), np.nan)
    scale = np.full(T, np.nan)
    translation = np.full((T, 3), np.nan)
    head = np.full((T, len(LIPS), 3), np.nan)
    ok = np.isfinite(landmarks_cam[:, list(RIGID)]).all(axis=(1, 2))
    for t in np.flatnonzero(ok):
        s, r, tr = similarity(rigid_template, landmarks_cam[t, list(RIGID)].astype(np.float64))
        rotation[t], scale[t], translation[t] = r, s, tr
        head[t] = (landmarks_cam[t, list(LIPS)] - tr) @ r / s
    return rotation, scale, translation, head, ok


def solve_controls(A: np.ndarray, targets: np.ndarray, valid: np.ndarray,
                   ridge: float = RIDGE, smooth: float = SMOOTH, max_iter: int = 5000) -> np.ndarray:
    """Bounded, temporally smooth least squares over all frames at once: the normal
    equations are block-tridiagonal (sparse); the bounds by L-BFGS-B from the clipped
    unbounded optimum."""
    from scipy import sparse
    from scipy.optimize import minimize
    from scipy.sparse.linalg import spsolve

    T, C = len(targets), A.shape[1]
    AtA = A.T @ A
    data = sparse.kron(sparse.diags(valid.astype(np.float64)), sparse.csr_matrix(AtA))
    H = data + ridge * sparse.identity(T * C)
    if T > 1 and smooth > 0:
        diff = sparse.diags([-np.ones(T - 1), np.ones(T - 1)], [0, 1], shape=(T - 1, T))
        H = H + smooth * sparse.kron(diff.T @ diff, sparse.identity(C))
    H = sparse.csr_matrix(H)
    g = (np.where(valid[:, None], targets, 0.0) @ A).reshape(-1)
    lo, hi = BOUNDS
    x0 = np.clip(spsolve(sparse.csc_matrix(H), g), lo, hi)   # unbounded optimum, clipped

    def cost(x):
        hx = H @ x
        return 0.5 * x @ hx - g @ x, hx - g
    result = minimize(cost, x0, jac=True, method="L-BFGS-B", bounds=[(lo, hi)] * len(x0),
                      options={"maxiter": max_iter, "ftol": 1e-12, "gtol": 1e-8})
    return result.x.reshape(T, C)


def fit_lips(head_mm: np.ndarray, valid: np.ndarray, iterations: int = 3,
             ridge: float = RIDGE, smooth: float = SMOOTH):
    """(T, 40, 3) head-frame lip landmarks (mm) -> controls (T, 10), rest (40, 3),
    per-frame residual (T,) mm."""
    A, template = lip_basis()
    b = (head_mm - template[None]).reshape(len(head_mm), -1)
    b = np.where(valid[:, None], b, 0.0)
    outside = np.eye(A.shape[0]) - A @ np.linalg.pinv(A)      # projector off the rig's span
    rest = np.zeros(A.shape[0])
    for _ in range(iterations):
        w = solve_controls(A, b - rest, valid, ridge, smooth)
        resid = b - w @ A.T
        rest = outside @ np.median(resid[valid], axis=0) if valid.any() else rest
    resid = (b - rest - w @ A.T).reshape(len(b), -1, 3)
    per_frame = np.sqrt((resid ** 2).sum(-1).mean(-1))
    w = np.where(valid[:, None], w, np.nan)
    return w, rest.reshape(-1, 3), np.where(valid, per_frame, np.nan)


def fit_track(track: dict, **options) -> Fit:
    rotation, scale, translation, head, ok = head_pose(track["landmarks_cam"])
    valid = ok & np.asarray(track["detected"], bool)
    controls, rest, residual = fit_lips(head, valid, **options)
    return Fit(controls, residual, rest, rotation, scale, translation, head)


def real_lip_landmarks(controls: np.ndarray) -> np.ndarray:
    """Fitted controls -> the lip landmarks (T, 40, 3) mm on the template (no rest)."""
    A, template = lip_basis()
    return template[None] + (np.asarray(controls) @ A.T).reshape(len(controls), -1, 3)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tracks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("out/fits"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.tracks:
        track = load_track(path)
        name = str(track.get("source", path.stem))
        if not np.asarray(track["detected"]).any():
            print(f"{name}: no face in any frame, nothing to fit")
            continue
        fit = fit_track(track)
        out = args.out / f"{path.stem}_fit.npz"
        np.savez_compressed(out, controls=fit.controls, control_names=np.array(CONTROLS),
                            residual_mm=fit.residual_mm, rest_mm=fit.rest_mm, fps=track["grid_fps"])
        print(f"{name}: {len(fit.controls)} frames, lip residual {fit.residual:.2f} mm -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
