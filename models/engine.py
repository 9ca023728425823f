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

try:  # inside the add-on package (flame_lipsync.models) or from the checkout
    from ..core.audio import resample
    from ..core.coarticulation import enforce_closures
    from ..core.motion import predicted_closures
    from ..core.performance import Performance
    from ..core.rig import CONTROLS, load_rig
except ImportError:
    from core.audio import resample
    from core.coarticulation import enforce_closures
    from core.motion import predicted_closures
    from core.performance import Performance
    from core.rig import CONTROLS, load_rig

NAME = "neural"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
# engine name -> (weights file, what the UI says)
VARIANTS = {
    "neural": ("neural.npz", "Network on the spectrum + the phones pocketsphinx hears (no transcript; "
                             "best on real speech)"),
    "neural_fast": ("neural_fast.npz", "Network on the spectrum only (no transcript, no recogniser; "
                                       "about 1000x real time)"),
}
WEIGHTS = WEIGHTS_DIR / VARIANTS[NAME][0]
# Where the lips are sealed (core.motion.predicted_closures): the weights file's
# meta["seal"] = {"evidence": "lips_close" | "bilabial_posterior", "threshold": t},
# chosen on the corpus's validation voices by tools/calibrate_seal.py (highest
# closure recall keeping >= 95 % of open vowels open). Files without it: lips_close
# >= 0.45, chosen the same way for the first shipped network.
DEFAULT_SEAL = {"evidence": "lips_close", "threshold": 0.45}


def weights_path(variant: str = NAME) -> Path:
    if variant not in VARIANTS:
        raise ValueError(f"unknown neural engine '{variant}': choose one of {', '.join(VARIANTS)}")
    return WEIGHTS_DIR / VARIANTS[variant][0]


def available(variant: str = NAME) -> bool:
    return weights_path(variant).is_file()


def names() -> tuple[str, ...]:
    """The neural engines whose weights ship."""
    return tuple(v for v in VARIANTS if available(v))


@lru_cache(maxsize=8)
def _model(backend: str = "auto", device: str | None = None, variant: str = NAME):
    from . import load_model
    path = weights_path(variant)
    if not path.is_file():
        raise FileNotFoundError(f"{variant} engine weights missing at {path}: "
                                "reinstall the add-on or train them (python cli.py train)")
    if device == "cpu" and backend == "auto":
        backend = "numpy"  # CPU chosen: same numbers, no torch import
    return load_model(path, backend=backend, device=None if backend == "numpy" else device)


def style_names(variant: str = NAME) -> tuple[str, ...]:
    return tuple(_model(variant=variant).style_names) if available(variant) else ()


def seal_rule(model) -> dict:
    return dict(model.meta.get("seal") or DEFAULT_SEAL)


def bilabial_posterior(phones: np.ndarray) -> np.ndarray:
    """(T, 40) phone posteriors -> (T,) P(M or P or B)."""
    from .phone_features import BILABIAL_CLASSES, PHONE_INDEX
    return phones[:, [PHONE_INDEX[p] for p in BILABIAL_CLASSES]].sum(1)


def predict_controls(model, samples, fps, style=None, seal=True, rule=None, phone_track=None):
    """-> (raw controls (T, 10), predicted closures as timed "M" phones).
    Sealed closures are recorded as phones, so smoothing/intensity keep them sealed.
    phone_track: what the recogniser heard, for the phone front end (computed when None)."""
    rule = rule or seal_rule(model)
    if not seal:
        return model.predict_all(samples, fps=fps, style=style, heads=("controls",),
                                 phone_track=phone_track)["controls"], []
    if rule["evidence"] == "bilabial_posterior":
        out = model.predict_all(samples, fps=fps, style=style, heads=("controls", "phones"),
                                phone_track=phone_track)
        evidence = bilabial_posterior(out["phones"])
        controls = out["controls"]
    elif rule["evidence"] == "lips_close":
        controls = model.predict_all(samples, fps=fps, style=style, heads=("controls",),
                                     phone_track=phone_track)["controls"]
        evidence = None
    else:
        raise ValueError(f"unknown seal evidence {rule['evidence']!r} in the weights file")
    return controls, predicted_closures(controls, fps, float(rule["threshold"]), evidence)


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
