"""The one object passed between pipeline stages (audio -> engine -> motion -> bake)."""
from dataclasses import dataclass, field, replace

import numpy as np


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

    @property
    def frame_count(self) -> int:
        source = self.controls if self.controls is not None else self.offsets
        return 0 if source is None else len(source)

    def control(self, name: str) -> np.ndarray:
        return self.controls[:, self.control_names.index(name)]

    def with_(self, **changes) -> "Performance":
        return replace(self, **changes)
