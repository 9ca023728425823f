"""The engines a user can pick, by name (UI enum, CLI --engine, eval, bench)."""
import functools

from . import phonetic

try:  # inside the add-on package or from the checkout
    from ..models import engine as neural
except ImportError:
    from models import engine as neural

# name -> (animate(speech, fps, transcript, first_frame, with_offsets) -> Performance, description)
ENGINES = {
    phonetic.NAME: (phonetic.animate, "Phones from pocketsphinx, coarticulated visemes (no model)"),
}
for _name in neural.names():  # a network ships its weights; without them it is not offered
    ENGINES[_name] = (functools.partial(neural.animate, variant=_name), neural.VARIANTS[_name][1])


def run_engine(name: str, speech, fps: float, transcript: str | None = None,
               first_frame: int = 1, with_offsets: bool = True, **options):
    if name not in ENGINES:
        raise ValueError(f"unknown engine '{name}': choose one of {', '.join(ENGINES)}")
    return ENGINES[name][0](speech, fps=fps, transcript=transcript, first_frame=first_frame,
                            with_offsets=with_offsets, **options)
