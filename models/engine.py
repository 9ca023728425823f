"""The neural engines: speech -> network -> rig controls (no transcript needed).

Same contract as core.phonetic.animate, so the UI, CLI, eval and bench treat
every engine alike. Two networks ship (model card: models/weights/README.md),
one per audio front end; torch runs them when installed, else numpy:
  neural       log-mel + the phones pocketsphinx's phone loop hears (the default:
               it generalises best to real speech; the recogniser sets its speed)
  neural_fast  log-mel only: ~1000x real time, no recogniser
"""
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from .numpy_inference import has_phone_head

from ..core.audio import resample
from ..core.coarticulation import enforce_closures, rest_in_pauses
from ..core.metrics import RefPhone
from ..core.motion import predicted_closures, smooth_controls
from ..core.performance import Performance
from ..core.rig import CONTROLS, load_rig

NAME = "neural"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
# engine name -> (weights file, what the UI says)
VARIANTS = {
    "neural": ("neural.npz", "Network on the spectrum + the phones pocketsphinx hears (no transcript)"),
    "neural_fast": ("neural_fast.npz", "Network on the spectrum only (no transcript, no recogniser; "
                                       "about 1000x real time)"),
}
WEIGHTS = WEIGHTS_DIR / VARIANTS[NAME][0]
# Where the lips are sealed (core.motion.predicted_closures): the weights file's
# meta["seal"] = {"evidence": "lips_close" | "bilabial_posterior", "threshold": t},
# chosen on the corpus's validation voices by training/calibrate_engine.py (highest
# closure recall keeping >= 95 % of open vowels open). Files without it: lips_close
# >= 0.45, chosen the same way for the first shipped network.
DEFAULT_SEAL = {"evidence": "lips_close", "threshold": 0.45}
# A regression network shrinks towards the mean: it opens vowels less than its
# teacher. meta["articulation"] = {"smooth": sigma in frames at 30 fps, "gain": g}
# undoes that: the shapes (all controls but lip contact) are smoothed, then scaled
# by g so the mean open-vowel opening on the validation voices matches the teacher
# (training/calibrate_engine.py). Files without it: as the network says.
DEFAULT_ARTICULATION = {"smooth": 0.0, "gain": 1.0}


def weights_path(variant: str = NAME) -> Path:
    if variant not in VARIANTS:
        raise ValueError(f"unknown neural engine '{variant}': choose one of {', '.join(VARIANTS)}")
    return WEIGHTS_DIR / VARIANTS[variant][0]


def available(variant: str = NAME) -> bool:
    return weights_path(variant).is_file()


@lru_cache(maxsize=8)
def weights_meta(variant: str = NAME) -> dict:
    """The weights file's JSON header alone (no parameters loaded)."""
    from ..core.npz import read_npz
    from .numpy_inference import WEIGHTS_FIX, read_meta
    return read_meta(read_npz(weights_path(variant), WEIGHTS_FIX, "network weights"))


def uses_recogniser(variant: str = NAME) -> bool:
    """Whether the network hears pocketsphinx's phones beside the spectrum."""
    return weights_meta(variant)["config"].get("front_end", "mel") == "mel+phones"


def names() -> tuple[str, ...]:
    """The neural engines whose weights ship."""
    return tuple(v for v in VARIANTS if available(v))


def _model(backend: str = "auto", device: str | None = None, variant: str = NAME):
    """The variant's network, loaded once per process for each (backend, device)."""
    if backend == "auto":  # torch only for a GPU: on the CPU numpy gives the same numbers
        backend = "torch" if device in ("cuda", "mps") else "numpy"  # without importing torch
    return _load(backend, None if backend == "numpy" else device, variant)


@lru_cache(maxsize=8)
def _load(backend: str, device: str | None, variant: str):
    from . import load_model
    return load_model(weights_path(variant), backend=backend, device=device)  # missing: DataFileError


def style_names(variant: str = NAME) -> tuple[str, ...]:
    return tuple(_model(variant=variant).style_names) if available(variant) else ()


def seal_rule(model) -> dict:
    return dict(model.meta.get("seal") or DEFAULT_SEAL)


def articulation_rule(model) -> dict:
    return dict(model.meta.get("articulation") or DEFAULT_ARTICULATION)


def articulate(controls: np.ndarray, fps: float, rule: dict) -> np.ndarray:
    """Smooth, then scale every control but lip contact (lips_close is not an amplitude)."""
    out = smooth_controls(controls, fps, float(rule.get("smooth", 0.0)))
    keep = CONTROLS.index("lips_close")
    contact = out[:, keep].copy()
    out *= np.float32(rule.get("gain", 1.0))
    out[:, keep] = contact
    return out


def bilabial_posterior(phones: np.ndarray) -> np.ndarray:
    """(T, 40) phone posteriors -> (T,) P(M or P or B)."""
    from .phone_features import BILABIAL_CLASSES, PHONE_INDEX
    return phones[:, [PHONE_INDEX[p] for p in BILABIAL_CLASSES]].sum(1)


def network_outputs(model, samples, fps, style=None, phone_track=None) -> dict:
    """{'controls': (T, 10), 'phones': (T, 40) with a phone head, 'heard': (T, 40) what the
    recogniser heard at each frame, with the phone front end}. phone_track: the recogniser's
    phone_features.phone_posteriors of `samples` (computed here when None and needed)."""
    from .numpy_inference import needs_phone_track
    heads = ("controls", "phones") if has_phone_head(model.cfg) else ("controls",)
    if needs_phone_track(model.cfg) and phone_track is None:
        from .phone_features import phone_posteriors
        phone_track = phone_posteriors(samples)
    out = model.predict_all(samples, fps=fps, style=style, heads=heads, phone_track=phone_track)
    if phone_track is not None and len(phone_track):
        n = len(out["controls"])
        at = np.clip(np.floor(np.arange(n) * (50.0 / fps) + 0.5).astype(int), 0, len(phone_track) - 1)
        out["heard"] = np.asarray(phone_track)[at]
    return out


# what may say "the lips are closed here": the network's lips_close control, its phone
# head's P(M|P|B), the M/P/B the recogniser heard (phone front end), either or both of the last two
SEAL_EVIDENCE = ("lips_close", "bilabial_posterior", "heard_bilabial", "heard_or_posterior",
                 "heard_and_posterior")


def seal_evidence(out: dict, kind: str):
    """(T,) evidence of a bilabial closure, or None for the lips_close control."""
    if kind == "bilabial_posterior":
        return bilabial_posterior(out["phones"])
    if kind.startswith("heard"):
        if "heard" not in out:
            raise ValueError(f"seal evidence '{kind}' needs the phone front end")
        heard = bilabial_posterior(out["heard"])  # 0 or 1: passes any threshold <= 1
        if kind == "heard_bilabial":
            return heard
        combine = np.maximum if kind == "heard_or_posterior" else np.minimum
        return combine(heard, bilabial_posterior(out["phones"]))
    return None


def heard_pauses(phones: np.ndarray, fps: float):
    """The network's own P(SIL) >= 0.5, as timed phones tiling the clip ("SIL" / "speech"),
    for core.coarticulation.rest_in_pauses. P(SIL) is smoothed (sigma 1 frame at 30 fps)
    first: per-frame decisions flicker, and a single doubtful frame would split a pause."""
    from .phone_features import PHONE_INDEX, SIL
    p_sil = smooth_controls(phones[:, [PHONE_INDEX[SIL]]], fps, 1.0)[:, 0]
    silent = (p_sil >= 0.5).astype(np.int8)
    edges = np.flatnonzero(np.diff(silent)) + 1
    bounds = np.concatenate([[0], edges, [len(silent)]])
    return [RefPhone(SIL if silent[a] else "speech", a / fps, b / fps)
            for a, b in zip(bounds[:-1], bounds[1:])]


def shape_controls(out: dict, fps: float, articulation: dict, rule: dict, seal: bool = True):
    """Network outputs -> (controls (T, 10) before sealing, predicted closures as timed "M"
    phones): articulated (gain), resting in the pauses the phone head hears (as the phonetic
    engine rests in the pauses it recognises), closures where the evidence passes the rule."""
    if seal and rule["evidence"] not in SEAL_EVIDENCE:
        raise ValueError(f"unknown seal evidence {rule['evidence']!r} in the weights file")
    controls = articulate(out["controls"], fps, articulation)
    if "phones" in out:
        controls = rest_in_pauses(controls, heard_pauses(out["phones"], fps), fps)
    if not seal:
        return controls, []
    evidence = seal_evidence(out, rule["evidence"])
    return controls, predicted_closures(controls, fps, float(rule["threshold"]), evidence, rule.get("peak"))


def predict_controls(model, samples, fps, style=None, seal=True, rule=None, phone_track=None,
                     articulation=None):
    """-> (controls (T, 10) before sealing, predicted closures as timed "M" phones).
    Sealed closures are recorded as phones, so smoothing/intensity keep them sealed.
    rule / articulation: override the weights file's (calibration)."""
    out = network_outputs(model, samples, fps, style, phone_track)
    return shape_controls(out, fps, articulation or articulation_rule(model), rule or seal_rule(model), seal)


def animate(speech, fps: float = 30.0, transcript: str | None = None, first_frame: int = 1,
            with_offsets: bool = True, style=None, backend: str = "auto", seal: bool = True,
            device: str | None = None, variant: str = NAME):
    from .numpy_inference import needs_phone_track
    start = time.perf_counter()
    model = _model(backend, device, variant)
    samples = speech.samples if speech.rate == 16000 else resample(speech.samples, speech.rate, 16000)
    loaded = time.perf_counter()
    timings = {"model_load": loaded - start}
    track = None
    if needs_phone_track(model.cfg):  # the recogniser: timed on its own, as the phonetic engine's
        from .phone_features import phone_posteriors
        track = phone_posteriors(samples)
        timings["recognition"] = time.perf_counter() - loaded
    inferring = time.perf_counter()
    controls, closures = predict_controls(model, samples, fps, style, seal, phone_track=track)
    controls = np.clip(enforce_closures(controls, closures, fps), 0.0, 2.0)
    timings["inference"] = time.perf_counter() - inferring
    offsets = load_rig().offsets(controls) if with_offsets else None
    return Performance(
        fps=fps, first_frame=first_frame, controls=controls, control_names=CONTROLS, offsets=offsets,
        metadata={"engine": variant, "mode": "network", "transcript": "",
                  "phones": [(p.label, p.start, p.end) for p in closures],
                  "transcript_ignored": bool(transcript), "style": style,
                  "backend": model.backend, "source": speech.source, "timings": timings})
