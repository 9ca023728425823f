"""The engines a user can pick, by name (UI enum, CLI --engine, eval, bench), each
declaring what it can do so callers never guess from its name."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from ..core import phonetic
from ..models import engine as neural


@dataclass(frozen=True)
class Engine:
    name: str
    animate: Callable  # (speech, fps, transcript, first_frame, with_offsets, **options) -> Performance
    description: str
    uses_transcript: bool   # a transcript changes the result (forced alignment)
    has_styles: bool        # offers speaking styles (`style=` option)
    uses_torch: bool        # runs on torch when present (GPU, `device=` option); numpy otherwise
    uses_recogniser: bool   # runs pocketsphinx on the audio

    def styles(self) -> tuple[str, ...]:
        return neural.style_names(self.name) if self.has_styles else ()


def _registry() -> dict[str, Engine]:
    engines = {phonetic.NAME: Engine(
        phonetic.NAME, phonetic.animate, "Phones from pocketsphinx, coarticulated visemes (no model)",
        uses_transcript=True, has_styles=False, uses_torch=False, uses_recogniser=True)}
    for name in neural.names():  # a network ships its weights; without them it is not offered
        engines[name] = Engine(
            name, functools.partial(neural.animate, variant=name), neural.VARIANTS[name][1],
            uses_transcript=False, has_styles=True, uses_torch=True,
            uses_recogniser=neural.uses_recogniser(name))
    return engines


ENGINES: dict[str, Engine] = _registry()


def get(name: str) -> Engine:
    if name not in ENGINES:
        known = ", ".join(ENGINES)
        if name in neural.VARIANTS:
            raise ValueError(f"engine '{name}' is not installed: its weights "
                             f"({neural.weights_path(name).name}) are missing; choose one of {known}")
        raise ValueError(f"unknown engine '{name}': choose one of {known}")
    return ENGINES[name]


def run_engine(name: str, speech, fps: float, transcript: str | None = None,
               first_frame: int = 1, with_offsets: bool = True, **options):
    engine = get(name)
    if not engine.has_styles:
        options.pop("style", None)
    if not engine.uses_torch:
        options.pop("device", None)
    return engine.animate(speech, fps=fps, transcript=transcript, first_frame=first_frame,
                          with_offsets=with_offsets, **options)
