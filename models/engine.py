"""The neural engine: speech -> network -> rig controls (no transcript needed).

Same contract as core.phonetic.animate, so the UI, CLI, eval and bench treat
both engines alike. Weights ship in models/weights/neural.npz (see its model
card, models/weights/README.md); torch runs them when installed, else numpy.
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
# lips_close above this is sealed (core.motion.predicted_closures). Chosen on
# the corpus's validation voices: the highest closure recall that keeps >= 95 % of
# open vowels open (0.45: recall 0.78 -> 0.87, open vowels 0.99 -> 0.95).
SEAL_THRESHOLD = 0.45
WEIGHTS = Path(__file__).resolve().parent / "weights" / "neural.npz"


def available() -> bool:
    return WEIGHTS.is_file()


@lru_cache(maxsize=4)
def _model(backend: str = "auto", device: str | None = None):
    from . import load_model
    if not WEIGHTS.is_file():
        raise FileNotFoundError(f"neural engine weights missing at {WEIGHTS}: "
                                "reinstall the add-on or train them (python cli.py train)")
    if device == "cpu" and backend == "auto":
        backend = "numpy"  # CPU chosen: same numbers, no torch import
    return load_model(WEIGHTS, backend=backend, device=None if backend == "numpy" else device)


def style_names() -> tuple[str, ...]:
    return tuple(_model().style_names) if available() else ()


def animate(speech, fps: float = 30.0, transcript: str | None = None, first_frame: int = 1,
            with_offsets: bool = True, style=None, backend: str = "auto", seal: bool = True,
            device: str | None = None):
    start = time.perf_counter()
    model = _model(backend, device)
    samples = speech.samples if speech.rate == 16000 else resample(speech.samples, speech.rate, 16000)
    loaded = time.perf_counter()
    controls = model.predict(samples, fps=fps, style=style)
    # Sealed closures are recorded as phones, so smoothing/intensity keep them sealed.
    closures = predicted_closures(controls, fps, SEAL_THRESHOLD) if seal else []
    controls = np.clip(enforce_closures(controls, closures, fps), 0.0, 2.0)
    timings = {"model_load": loaded - start, "inference": time.perf_counter() - loaded}
    offsets = load_rig().offsets(controls) if with_offsets else None
    return Performance(
        fps=fps, first_frame=first_frame, controls=controls, control_names=CONTROLS, offsets=offsets,
        metadata={"engine": NAME, "mode": "network", "transcript": "",
                  "phones": [(p.label, p.start, p.end) for p in closures],
                  "transcript_ignored": bool(transcript), "style": style,
                  "backend": model.backend, "source": speech.source, "timings": timings})
