"""Timed phones -> per-frame control weights.

Cohen-Massaro dominance blending: every phone pulls each control towards its
target with a dominance that is flat over the phone and decays exponentially
outside it, longer before the phone than after (visual speech anticipates
vowels). At each frame the control is the dominance-weighted mean of the
targets. Closures the audience checks (P/B/M) are then enforced exactly, and
the jaw, but not the lips, follows loudness (JALI's jaw/lip split).
"""
import numpy as np

from .rig import CONTROLS
from .visemes import BILABIALS, DIPHTHONGS, SILENCE, TIMING, VOWELS, viseme_for

# Timing: fitted to real faces (core/data/visemes_fitted.json, training/fit_visemes.py)
# where that file says so, hand values otherwise (core.visemes.HAND_TIMING).
ANTICIPATION = TIMING["anticipation"]   # dominance reaches this much further before a phone than after
LEAD = TIMING["lead"]                   # s: the mouth runs this far ahead of the audio's phones
REACH = 4.0             # decay constants after which a phone stops counting
MIN_HOLD = TIMING["min_hold"]           # s: shortest visible hold of a bilabial closure
CLOSED_JAW = 0.02       # jaw_open allowed while the lips are sealed
PAUSE = 0.20            # s: silences this long are pauses: the mouth settles
JAW_SETTLE = 0.06       # s: the jaw relaxes shut this fast after speech stops...
LIPS_SETTLE = 0.15      # s: ...then the lips come together
REST_CLOSE = 0.6        # lips_close weight of a mouth resting in a pause
GAIN_FLOOR = TIMING["gain_floor"]       # jaw scale of quiet speech...
GAIN_CEILING = TIMING["gain_ceiling"]   # ...and of the clip's loud speech

_JAW = CONTROLS.index("jaw_open")
_CLOSE = CONTROLS.index("lips_close")
_PRESS = CONTROLS.index("lips_press")
# Controls that part the lips: must be off while they are sealed.
_OPENING = [CONTROLS.index(c) for c in ("funnel", "upper_lip_raise", "lower_lip_down", "lower_lip_tuck")]


def split_diphthongs(phones):
    """AY -> AA + IH etc., each half taking half the time, so the shape glides."""
    out = []
    for p in phones:
        if p.label in DIPHTHONGS:
            first, second = DIPHTHONGS[p.label]
            mid = 0.5 * (p.start + p.end)
            out += [type(p)(first, p.start, mid), type(p)(second, mid, p.end)]
        else:
            out.append(p)
    return out


MIN_VOWEL = 0.090       # s: a vowel shorter than this still gets time to open
MIN_CONSONANT = 0.040   # s: what a neighbour may be shortened to


def enforce_min_durations(phones):
    """Lengthen short vowels into their neighbours' time (both sides equally,
    never leaving a neighbour shorter than MIN_CONSONANT). Timings only move
    inside the original span, so the audio stays in sync."""
    out = [[p.label, p.start, p.end] for p in phones]
    for k, (label, start, end) in enumerate(out):
        missing = MIN_VOWEL - (end - start)
        if label not in VOWELS or missing <= 0:
            continue
        for side, neighbour in ((0, k - 1), (1, k + 1)):
            if not 0 <= neighbour < len(out):
                continue
            n_label, n_start, n_end = out[neighbour]
            spare = max(0.0, (n_end - n_start) - MIN_CONSONANT)
            take = min(0.5 * missing, spare)
            if side == 0:
                out[neighbour][2] -= take
                out[k][1] -= take
            else:
                out[neighbour][1] += take
                out[k][2] += take
    return [type(p)(label, start, end) for p, (label, start, end) in zip(phones, out)]


def _target_rows(phones):
    """Per phone: control targets (C,) and dominances (C,), and its spread."""
    targets = np.zeros((len(phones), len(CONTROLS)), np.float32)
    dominance = np.zeros_like(targets)
    spread = np.zeros(len(phones), np.float32)
    for k, p in enumerate(phones):
        vis = viseme_for(p.label)
        targets[k, _JAW] = vis.jaw
        for name, value in vis.lips.items():
            targets[k, CONTROLS.index(name)] = value
        dominance[k] = vis.lip_dominance
        dominance[k, _JAW] = vis.jaw_dominance
        spread[k] = vis.spread
    return targets, dominance, spread


def phone_weights(phones, fps: float, n_frames: int, dominance, spread,
                  anticipation: float = None, lead: float = None):
    """Yield (k, frame slice, weight (frames,) * dominance (G,)) for every phone: its
    dominance, flat over the phone (moved `lead` s earlier), decaying exponentially
    outside it, `anticipation` times slower before it than after. The blend is linear
    in the targets for these weights (training/fit_visemes.py fits the targets so)."""
    anticipation = ANTICIPATION if anticipation is None else anticipation
    lead = LEAD if lead is None else lead
    times = np.arange(n_frames) / fps
    for k, p in enumerate(phones):
        start, end = p.start - lead, p.end - lead
        before, after = spread[k] * anticipation, spread[k]
        lo = np.searchsorted(times, start - REACH * before)
        hi = np.searchsorted(times, end + REACH * after, side="right")
        t = times[lo:hi]
        # Distance outside the phone, scaled by the side's decay constant.
        d = np.maximum(start - t, 0) / before + np.maximum(t - end, 0) / after
        yield k, slice(lo, hi), np.exp(-d)[:, None] * dominance[k][None]


def blend_targets(phones, fps: float, n_frames: int) -> np.ndarray:
    """Dominance-weighted targets at frame times t_i = i / fps -> (T, C)."""
    targets, dominance, spread = _target_rows(phones)
    numerator = np.zeros((n_frames, len(CONTROLS)), np.float64)
    denominator = np.full_like(numerator, 1e-9)
    for k, span, weight in phone_weights(phones, fps, n_frames, dominance, spread):
        numerator[span] += weight * targets[k][None]
        denominator[span] += weight
    return (numerator / denominator).astype(np.float32)


def _frames_of(start, end, fps, n_frames, min_hold):
    """Frames whose time falls in [start, end], at least min_hold long and at least
    one frame (the nearest), clipped to the clip."""
    centre = 0.5 * (start + end)
    half = max(0.5 * (end - start), 0.5 * min_hold)
    first = int(np.ceil((centre - half) * fps - 1e-6))
    last = int(np.floor((centre + half) * fps + 1e-6))
    if last < first:  # shorter than a frame: the nearest frame
        first = last = int(round(centre * fps))
    return max(first, 0), min(last, n_frames - 1)


def enforce_closures(controls, phones, fps):
    """Seal the lips over every P/B/M: jaw near shut, lips together and
    pressing harder towards the release (the occlusion builds before the burst)."""
    n = len(controls)
    for p in phones:
        if p.label not in BILABIALS:
            continue
        first, last = _frames_of(p.start, p.end, fps, n, MIN_HOLD)
        if first > last:
            continue
        span = np.arange(first, last + 1)
        controls[span, _JAW] = np.minimum(controls[span, _JAW], CLOSED_JAW)
        controls[span, _CLOSE] = 1.0
        controls[span[:, None], _OPENING] = 0.0
        ramp = np.linspace(0.6, 1.0, len(span)) if len(span) > 1 else np.ones(1)
        press = viseme_for(p.label).lips.get("lips_press", 0.4)
        controls[span, _PRESS] = np.maximum(controls[span, _PRESS], press * ramp)
    return controls


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def rest_in_pauses(controls, phones, fps):
    """In pauses the mouth relaxes (jaw shuts), then the lips meet at rest.
    A clip's leading/trailing silence has speech on one side only."""
    n = len(controls)
    times = np.arange(n) / fps
    clip_end = phones[-1].end if phones else 0.0
    for p in phones:
        if p.label != SILENCE or p.end - p.start < PAUSE - 1e-6:
            continue
        since = times - p.start if p.start > 0 else np.full(n, np.inf)
        until = p.end - times if p.end < clip_end else np.full(n, np.inf)
        inside = (times >= p.start) & (times <= p.end)
        edge = np.minimum(since, until)[inside]
        controls[inside, _JAW] *= 1 - _smoothstep(edge / JAW_SETTLE)
        close = REST_CLOSE * _smoothstep(edge / LIPS_SETTLE)
        controls[inside, _CLOSE] = np.maximum(controls[inside, _CLOSE], close)
    return controls


def loudness_gain(loudness: np.ndarray, floor=None, ceiling=None) -> np.ndarray:
    """Jaw scale per frame from the RMS envelope: quiet speech opens less,
    emphasis opens more. Relative to the clip's loud speech, so recording
    level does not matter."""
    floor = GAIN_FLOOR if floor is None else floor
    ceiling = GAIN_CEILING if ceiling is None else ceiling
    db = 20 * np.log10(np.maximum(loudness, 1e-6))
    reference = np.percentile(db, 95)
    level = np.clip((db - (reference - 30.0)) / 24.0, 0.0, 1.0)
    return (floor + (ceiling - floor) * level).astype(np.float32)


def coarticulate(phones, fps: float, n_frames: int, loudness=None) -> np.ndarray:
    """Timed phones (+ optional per-frame loudness) -> (T, C) control weights."""
    phones = split_diphthongs(phones)
    controls = blend_targets(enforce_min_durations(phones), fps, n_frames)
    if loudness is not None:
        controls[:, _JAW] *= loudness_gain(loudness)
    controls = rest_in_pauses(controls, phones, fps)
    controls = enforce_closures(controls, phones, fps)
    return np.clip(controls, 0.0, 1.0)
