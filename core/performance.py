"""The one object passed between pipeline stages (audio -> engine -> motion -> bake)."""
from dataclasses import dataclass, field, replace

import numpy as np

from .rig import CONTROL_LAYERS, LAYER_OF


@dataclass
class Performance:
    fps: float
    first_frame: int = 1
    # Per-frame articulation controls (T, C), named by `control_names`.
    controls: np.ndarray | None = None
    control_names: tuple[str, ...] = ()
    # Per-frame vertex offsets from the neutral head (T, 5023, 3), metres.
    offsets: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)
    # Head rotation per frame (T, 3), radians, about the head's own FLAME axes:
    # pitch about +x (positive = chin down, a nod), yaw about +y, roll about +z.
    # None: the head does not move (what every engine gives; the head layer adds it).
    head_rotation: np.ndarray | None = None

    @property
    def frame_count(self) -> int:
        source = self.controls if self.controls is not None else self.offsets
        return 0 if source is None else len(source)

    def control(self, name: str) -> np.ndarray:
        return self.controls[:, self.control_names.index(name)]

    def layer_of(self, name: str) -> str:
        """The layer ("mouth", "eyes", "brows", "emotion") that writes control `name`."""
        return LAYER_OF[name]

    def layer_columns(self, layer: str) -> list[int]:
        """Column indices of `controls` that belong to `layer` (the bake's F-curve group)."""
        if layer not in CONTROL_LAYERS:
            raise ValueError(f"unknown layer '{layer}': one of {', '.join(CONTROL_LAYERS)}")
        return [i for i, name in enumerate(self.control_names) if LAYER_OF.get(name) == layer]

    def with_(self, **changes) -> "Performance":
        return replace(self, **changes)
