"""Fewer keys for animators: the dense bake (one key per frame per control) reduced to
Bézier keys with auto-clamped handles, as few as the greedy search below finds, such
that at every frame every vertex the rig moves stays within `tolerance` metres of the
dense bake, and the lips stay sealed where the dense bake seals them.

Blender evaluates what we write, so the curve model here is Blender's own: auto-clamped
handles (``BKE_nurb_handle_calc`` with HD_AUTO_ANIM, F-curve auto smoothing 'NONE',
constant extrapolation: the first and last keys get flat handles) and the F-curve Bézier
evaluation (``BKE_fcurve_correct_bezpart`` + solving x(t) = frame). The Blender-side
test checks ``FCurve.evaluate`` against `evaluate` at every frame.

The search, per control: keys at the ends (and the pinned frames: each sealed closure's
first and last frame); add the worst frame of every segment that breaks that control's
share of the tolerance until none does; then, jointly over all controls (the offsets add
up on shared vertices), add keys where the summed vertex error still breaks the tolerance,
and finally drop every key whose removal keeps every frame within it. The result has no
key that can be removed alone (locally minimal; not proven globally fewest).

Never imports bpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cancel import check as check_cancel

from .flame import LOWER_LIP_EDGE, UPPER_LIP_EDGE
from .metrics import CLOSED_GAP

AUTO_HANDLE = 2.5614        # Blender's auto-handle length factor (curve.cc)
DEFAULT_TOLERANCE = 0.0003  # metres (0.3 mm)
SEAL_WEIGHT = 0.99          # lips_close at or above this: the engine sealed the lips (P/B/M)
SEAL_FRACTION = 0.1         # sealed frames keep a tenth of the tolerance (0.03 mm at 0.3 mm)
WATCHED_PER_CONTROL = 24    # vertices per control the search checks (see reduce_keys)
MOVING = 1e-7               # metres: vertices a field moves less than this are not checked


# --------------------------------------------------------------------------
# Blender's curve: auto-clamped handles and Bézier evaluation


def auto_clamped_handles(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) handles, each (K, 2), of keys (x, y) with auto-clamped handles, as
    Blender computes them for an F-curve with constant extrapolation and no smoothing."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    k = len(x)
    left = np.stack([x, y], 1)
    right = left.copy()
    if k < 2:
        return left, right
    # Neighbours; the ends mirror their one neighbour (curve.cc).
    px, py = np.empty(k), np.empty(k)
    nx, ny = np.empty(k), np.empty(k)
    px[1:], py[1:] = x[:-1], y[:-1]
    nx[:-1], ny[:-1] = x[1:], y[1:]
    px[0], py[0] = 2 * x[0] - x[1], 2 * y[0] - y[1]
    nx[-1], ny[-1] = 2 * x[-1] - x[-2], 2 * y[-1] - y[-2]
    len_a, len_b = x - px, nx - x
    len_a = np.where(len_a == 0, 1.0, len_a)
    len_b = np.where(len_b == 0, 1.0, len_b)
    tx = (nx - x) / len_b + (x - px) / len_a
    ty = (ny - y) / len_b + (y - py) / len_a
    length = tx * AUTO_HANDLE
    len_a = np.minimum(len_a, 5.0 * len_b)
    len_b = np.minimum(len_b, 5.0 * len_a)
    with np.errstate(divide="ignore", invalid="ignore"):
        fa = np.where(length != 0, len_a / length, 0.0)
        fb = np.where(length != 0, len_b / length, 0.0)
    lx, ly = x - tx * fa, y - ty * fa
    rx, ry = x + tx * fb, y + ty * fb
    # Clamp (interior keys): flat at extrema, never beyond a neighbour's value.
    d1, d2 = py - y, ny - y
    extremum = ((d1 <= 0) & (d2 <= 0)) | ((d1 >= 0) & (d2 >= 0))
    rising = d1 <= 0
    lclamp = np.where(rising, py > ly, py < ly)
    rclamp = np.where(rising, ny < ry, ny > ry)
    interior = np.zeros(k, bool)
    interior[1:-1] = True
    left_v = interior & (extremum | lclamp)
    right_v = interior & (extremum | rclamp)
    ly = np.where(interior & extremum, y, np.where(interior & lclamp, py, ly))
    ry = np.where(interior & extremum, y, np.where(interior & rclamp, ny, ry))
    h1x, h2x = lx - x, x - rx
    with np.errstate(divide="ignore", invalid="ignore"):
        ry_from_left = y + ((y - ly) / h1x) * h2x
        ly_from_right = y + ((y - ry) / h2x) * h1x
    ry = np.where(left_v, ry_from_left, ry)
    ly = np.where(~left_v & right_v, ly_from_right, ly)
    # Constant extrapolation: the first and last keys ease in and out (flat handles).
    ly[[0, -1]] = y[[0, -1]]
    ry[[0, -1]] = y[[0, -1]]
    return np.stack([lx, ly], 1), np.stack([rx, ry], 1)


def evaluate(x: np.ndarray, y: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """The auto-clamped Bézier F-curve through keys (x, y), evaluated at `frames`."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    frames = np.asarray(frames, np.float64)
    if len(x) == 1:
        return np.full(frames.shape, y[0])
    left, right = auto_clamped_handles(x, y)
    out = np.where(frames <= x[0], y[0], y[-1])
    inside = (frames > x[0]) & (frames < x[-1])
    f = frames[inside]
    s = np.searchsorted(x, f, side="right") - 1
    x0, y0, x3, y3 = x[s], y[s], x[s + 1], y[s + 1]
    x1, y1 = right[s, 0].copy(), right[s, 1].copy()
    x2, y2 = left[s + 1, 0].copy(), left[s + 1, 1].copy()
    # BKE_fcurve_correct_bezpart: handles longer than the interval are shortened.
    h1, h2 = x0 - x1, x3 - x2
    total, span = np.abs(h1) + np.abs(h2), x3 - x0
    fac = np.where(total > span, span / np.where(total > 0, total, 1.0), 1.0)
    x1, y1 = x0 - fac * (x0 - x1), y0 - fac * (y0 - y1)
    x2, y2 = x3 - fac * (x3 - x2), y3 - fac * (y3 - y2)
    # Solve x(t) = f on [0, 1] (x(t) is monotonic here), then y(t).
    # Power basis x(t) = a t^3 + b t^2 + c t + x0; Newton from the linear guess (x'(t) > 0
    # for handles inside the interval), kept in [0, 1].
    a = x3 - x0 + 3 * (x1 - x2)
    b = 3 * (x0 - 2 * x1 + x2)
    c = 3 * (x1 - x0)
    t = (f - x0) / span
    for _ in range(8):
        slope = (3 * a * t + 2 * b) * t + c
        t = np.clip(t - (((a * t + b) * t + c) * t + x0 - f) / np.where(slope > 1e-12, slope, 1e-12), 0.0, 1.0)
    u = 1 - t
    out[inside] = u * u * u * y0 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t * t * t * y3
    return out


# --------------------------------------------------------------------------
# The reduction


@dataclass
class Reduction:
    keys: list[np.ndarray]      # per control: frame indices (0-based) that keep a key
    values: np.ndarray          # (T, C) what the reduced curves give at every frame
    max_error: float            # metres: the largest vertex distance from the dense bake
    sealed: np.ndarray          # (T,) frames where the dense bake's lips are sealed

    @property
    def key_count(self) -> int:
        return int(sum(len(k) for k in self.keys))


def sealed_frames(weights: np.ndarray, control_names) -> np.ndarray:
    """(T,) frames where the dense bake seals the lips: the engines and the motion stage
    set `lips_close` to 1 over every P/B/M closure (core.coarticulation.enforce_closures)."""
    weights = np.asarray(weights)
    names = list(control_names)
    if "lips_close" not in names:
        return np.zeros(len(weights), bool)
    return weights[:, names.index("lips_close")] >= SEAL_WEIGHT


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2], edges[1::2] - 1))


def _local(frames, keys, values, k_lo, k_hi, without=None):
    """The curve over frames keys[k_lo]..keys[k_hi] (inclusive), from the keys around them
    (one more each side, so the handles there are Blender's), optionally without key `without`."""
    lo, hi = max(k_lo - 1, 0), min(k_hi + 2, len(keys))
    idx = keys[lo:hi]
    if without is not None:
        idx = idx[idx != without]
    span = np.arange(keys[k_lo], keys[k_hi] + 1)
    return span, evaluate(frames[idx], values[idx], frames[span])


def _greedy(frames, values, budget, keys):
    """Add the worst frame of each segment breaking `budget` until none does."""
    keys = np.unique(keys)
    while True:
        approx = evaluate(frames[keys], values[keys], frames)
        ratio = np.abs(approx - values) / budget
        bad = np.flatnonzero(ratio > 1.0)
        if not len(bad):
            return keys, approx
        segment = np.searchsorted(keys, bad, side="right")
        worst = {}
        for s, f in zip(segment, bad):
            if s not in worst or ratio[f] > ratio[worst[s]]:
                worst[s] = f
        keys = np.unique(np.concatenate([keys, list(worst.values())]))


def reduce_keys(weights: np.ndarray, fields: np.ndarray, tolerance: float = DEFAULT_TOLERANCE,
                control_names=(), pinned=(), head: np.ndarray | None = None) -> Reduction:
    """Fewest auto-clamped Bézier keys (as found by a greedy search) for dense per-frame
    `weights` (T, C) of rig `fields` (C, N, 3), metres.

    Every frame, every vertex stays within `tolerance` metres of the dense pose. With
    `control_names`, frames where the dense lips are sealed (`sealed_frames`) keep every
    vertex within a tenth of the tolerance, and `lips_close` keeps a key on the first and
    last frame of each closure (flat between: the seal is exact). With the FLAME `head`
    (N, 3), frames whose dense lip gap is near the metrics' closed threshold
    (core.metrics.CLOSED_GAP) keep the gap on the same side of it, so the closures counted
    are the dense bake's. `pinned`:
    frame indices that always keep a key (e.g. the ends of a re-baked range).
    """
    if tolerance <= 0:
        raise ValueError(f"the key tolerance must be > 0 metres, got {tolerance}")
    # Blender stores values as float32: the dense bake is the float32 curve.
    values = np.asarray(weights, np.float32).astype(np.float64)
    fields = np.asarray(fields, np.float64)
    count, controls = values.shape
    if fields.shape[0] != controls:
        raise ValueError(f"fields must be ({controls}, N, 3), got {fields.shape}")
    frames = np.arange(count, dtype=np.float64)
    names = list(control_names)
    if names and len(names) != controls:
        raise ValueError(f"{len(names)} control names for {controls} curves")
    sealed = sealed_frames(values, names) if names else np.zeros(count, bool)
    limit = np.where(sealed, tolerance * SEAL_FRACTION, tolerance)
    if head is not None and fields.shape[1] > max(UPPER_LIP_EDGE, LOWER_LIP_EDGE):
        head = np.asarray(head, np.float64)
        gap = np.linalg.norm(head[UPPER_LIP_EDGE] - head[LOWER_LIP_EDGE]
                             + values @ (fields[:, UPPER_LIP_EDGE] - fields[:, LOWER_LIP_EDGE]), axis=1)
        # Each lip edge moves at most `limit`, so the gap changes by at most twice that.
        limit = np.minimum(limit, np.maximum(0.49 * np.abs(gap - CLOSED_GAP), 1e-7))
    common = {0, count - 1} | {int(p) for p in pinned if 0 <= int(p) < count}
    seal = {int(f) for run in _runs(sealed) for f in run}
    fixed = [common | seal if n == "lips_close" else common for n in (names or [""] * controls)]

    moving = np.linalg.norm(fields, axis=2).max(0) > MOVING
    all_flat = fields[:, moving].reshape(controls, -1)           # (C, 3V)
    all_reach = np.linalg.norm(fields[:, moving], axis=2)        # (C, V)
    scale = np.maximum(all_reach.max(1), 1e-12)                  # metres per unit weight
    # The search checks a few hundred vertices, those each control moves most (where the
    # error peaks); a check on every moving vertex follows, and any vertex it finds out of
    # tolerance joins the checked set and the search goes on: same guarantee, ~10x less work.
    watched = np.unique(np.argsort(-all_reach, axis=1)[:, :WATCHED_PER_CONTROL])

    def watch(vertices):
        nonlocal flat, reach
        flat = all_flat.reshape(controls, -1, 3)[:, vertices].reshape(controls, -1)
        reach = all_reach[:, vertices]
    flat = reach = None
    watch(watched)

    keys, approx = [], np.empty_like(values)
    for c in range(controls):
        check_cancel()  # the UI job's Esc lands between controls
        k, approx[:, c] = _greedy(frames, values[:, c], 0.5 * limit / scale[c], np.array(sorted(fixed[c])))
        keys.append(k)

    def error(rows, offsets):
        squared = offsets.reshape(len(rows), -1, 3) ** 2
        return np.sqrt(squared.sum(2).max(1))

    def add_keys_until_within():
        # Jointly: offsets of several controls add up on shared vertices.
        while True:
            diff = (approx - values) @ flat
            err = error(frames, diff)
            bad = err > limit
            if not bad.any():
                return
            for a, b in _runs(bad):
                t = a + int(np.argmax(err[a:b + 1] - limit[a:b + 1]))
                v = int(np.argmax(np.linalg.norm(diff[t].reshape(-1, 3), axis=1)))
                c = int(np.argmax(np.abs(approx[t] - values[t]) * reach[:, v]))
                keys[c] = np.unique(np.append(keys[c], t))
                approx[:, c] = evaluate(frames[keys[c]], values[keys[c], c], frames)

    def watch_what_breaks() -> bool:
        """Check every moving vertex; watch the worst of each frame out of tolerance."""
        per_vertex = np.linalg.norm(((approx - values) @ all_flat).reshape(count, -1, 3), axis=2)
        bad = per_vertex.max(1) > limit
        if not bad.any():
            return False
        nonlocal watched
        watched = np.union1d(watched, np.unique(per_vertex[bad].argmax(1)))
        watch(watched)
        return True

    add_keys_until_within()
    while watch_what_breaks():
        add_keys_until_within()

    # Drop every key whose removal keeps all frames within the tolerance.
    diff = (approx - values) @ flat
    for c in np.argsort(-scale):
        k = keys[c]
        i = 1
        while i < len(k) - 1:
            if k[i] in fixed[c]:
                i += 1
                continue
            span, curve = _local(frames, k, values[:, c], max(i - 2, 0), min(i + 2, len(k) - 1), without=k[i])
            trial = diff[span] + np.outer(curve - approx[span, c], flat[c])
            if (error(span, trial) <= limit[span]).all():
                diff[span], approx[span, c] = trial, curve
                k = np.delete(k, i)
            else:
                i += 1
        keys[c] = k
    while watch_what_breaks():  # the drop pass saw the watched vertices only
        add_keys_until_within()
    max_error = float(error(frames, (approx - values) @ all_flat).max()) if count else 0.0
    return Reduction(keys=keys, values=approx, max_error=max_error, sealed=sealed)
