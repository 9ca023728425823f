"""The phonetic engine: speech -> phones (pocketsphinx) -> coarticulated rig controls.

With a transcript the phones come from forced alignment; without one, from
phone-loop recognition. No trained model is needed, and the output is the
teacher signal for the neural engine.
"""
import math
import time

from .audio import Speech, loudness_envelope
from .coarticulation import coarticulate
from .performance import Performance
from .rig import CONTROLS, load_rig

NAME = "phonetic"


def frame_count(duration: float, fps: float) -> int:
    """Frames at t = i/fps covering the whole clip, last frame included."""
    return int(math.floor(round(duration * fps, 6))) + 1


def animate(speech: Speech, fps: float = 30.0, transcript: str | None = None,
            first_frame: int = 1, with_offsets: bool = True) -> Performance:
    from . import phones as recogniser  # pocketsphinx loads only when used

    timings = {}
    start = time.perf_counter()
    if transcript and transcript.strip():
        phones = recogniser.align(speech.samples, transcript, speech.rate)
        mode = "forced alignment"
    else:
        phones = recogniser.recognize(speech.samples, speech.rate)
        mode = "phone loop"
    timings["recognition"] = time.perf_counter() - start

    start = time.perf_counter()
    n_frames = frame_count(speech.duration, fps)
    loudness = loudness_envelope(speech, fps, n_frames)
    controls = coarticulate(phones, fps, n_frames, loudness)
    offsets = load_rig().offsets(controls) if with_offsets else None
    timings["coarticulation"] = time.perf_counter() - start
    return Performance(
        fps=fps, first_frame=first_frame, controls=controls, control_names=CONTROLS,
        offsets=offsets,
        metadata={"engine": NAME, "mode": mode, "transcript": transcript or "",
                  "phones": [(p.label, p.start, p.end) for p in phones],
                  "source": speech.source, "timings": timings})
