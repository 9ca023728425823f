"""Motion layers after the engine: the whole face speaks (issue 12).

    performance = apply_layers(performance, speech, LayerSettings(seed=3))

Stages, each `apply(performance, prosody, settings, seed) -> Performance`:
emotion (arousal gain on the mouth, preset pose: squint, cheek raise) -> eyes (blinks)
-> brows (raises/furrow, times the emotion's brow gain, plus its preset brows) -> head
(Performance.head_rotation, radians). Controls become ALL_CONTROLS (mouth first);
`core.rig.CONTROL_LAYERS` says which layer writes which column. A layer switched off
writes zeros in its own columns (head: head_rotation None) and leaves every other
column bit-identical; each layer draws from its own seeded random stream.
"""
from dataclasses import dataclass, field

import numpy as np

from ..cancel import check as check_cancel

from ..audio import Speech
from ..performance import Performance
from ..rig import load_rig
from . import brows, emotion, eyes, head
from .brows import BrowSettings
from .common import with_all_controls
from .emotion import PRESETS, EmotionSettings
from .eyes import EyeSettings
from .head import HeadSettings
from .prosody import Prosody, analyse

__all__ = ["LayerSettings", "apply_layers", "analyse", "Prosody", "PRESETS",
           "EyeSettings", "BrowSettings", "HeadSettings", "EmotionSettings"]


@dataclass
class LayerSettings:
    """What the UI / CLI toggles: per layer on/off and intensity, the emotion preset
    and strength, one seed. The nested settings hold the finer parameters."""
    eyes: bool = True
    eyes_intensity: float = 1.0
    brows: bool = True
    brows_intensity: float = 1.0
    head: bool = True
    head_intensity: float = 1.0
    emotion: bool = True
    emotion_intensity: float = 1.0
    emotion_preset: str = "neutral"
    emotion_strength: float = 0.5
    seed: int = 0
    eye: EyeSettings = field(default_factory=EyeSettings)
    brow: BrowSettings = field(default_factory=BrowSettings)
    head_motion: HeadSettings = field(default_factory=HeadSettings)
    emotion_detail: EmotionSettings = field(default_factory=EmotionSettings)

    def resolved(self):
        from dataclasses import replace
        return (replace(self.emotion_detail, enabled=self.emotion, intensity=self.emotion_intensity,
                        preset=self.emotion_preset, strength=self.emotion_strength),
                replace(self.eye, enabled=self.eyes, intensity=self.eyes_intensity),
                replace(self.brow, enabled=self.brows, intensity=self.brows_intensity),
                replace(self.head_motion, enabled=self.head, intensity=self.head_intensity))


def apply_layers(performance: Performance, speech: Speech, settings: LayerSettings | None = None,
                 prosody: Prosody | None = None) -> Performance:
    """Performance (mouth controls from any engine) -> Performance with ALL_CONTROLS and
    head_rotation. Offsets, if the input had them, are recomputed from all controls on
    the template frame (the rig's linear fields)."""
    settings = settings or LayerSettings()
    if performance.controls is None:
        raise ValueError("the motion layers need per-frame controls (the engine gave only offsets)")
    n = performance.frame_count
    prosody = prosody or analyse(speech, performance.fps, n)
    if prosody.frame_count != n:
        raise ValueError(f"prosody has {prosody.frame_count} frames, the performance {n}")
    emo, eye, brow, head_settings = settings.resolved()
    out = with_all_controls(performance)
    check_cancel()  # between layers: the job's Esc lands within one of them
    out = emotion.apply(out, prosody, emo, settings.seed)
    out = eyes.apply(out, prosody, eye, settings.seed)
    check_cancel()
    gain, bias = emotion.brow_modulation(out, n)
    out = brows.apply(out, prosody, brow, settings.seed, gain=gain, bias=bias)
    out = head.apply(out, prosody, head_settings, settings.seed)
    check_cancel()
    offsets = None
    if performance.offsets is not None:
        offsets = load_rig().offsets_named(out.controls, out.control_names)
    layers = {"eyes": settings.eyes, "brows": settings.brows, "head": settings.head,
              "emotion": settings.emotion, "seed": settings.seed}
    return out.with_(offsets=offsets, controls=out.controls.astype(np.float32),
                     metadata={**out.metadata, "layers": layers})
