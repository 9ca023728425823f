"""The articulation rig: named controls, each a displacement field on FLAME topology.

Fields are built by `python tools/build_rig.py` from ../shared/assets/flame and
committed as core/data/rig_fields.npz. Offsets are linear in the weights, so a
baked shape key per control reproduces the rig exactly.
"""
from functools import lru_cache
from pathlib import Path

import numpy as np

from .flame import VERTEX_COUNT

# The one list of control names (order = column order of Performance.controls).
CONTROLS = (
    "jaw_open",         # mandible rotation about the jaw hinge (~20 mm lip drop at 1)
    "lips_close",       # lip edges meet (closes the neutral's lip gap)
    "lips_press",       # lips roll in and thin (M/P/B occlusion, before release)
    "pucker",           # lips forward and narrow (OW, UW, W)
    "funnel",           # lips forward, flared open (SH, CH, JH, ER)
    "stretch",          # mouth corners pulled wide (IY, EH)
    "smile",            # corners out, up and back
    "upper_lip_raise",  # upper lip lifts off the teeth
    "lower_lip_down",   # lower lip drops away from the teeth
    "lower_lip_tuck",   # lower lip up and back under the upper teeth (F, V)
)

RIG_FILE = Path(__file__).resolve().parent / "data" / "rig_fields.npz"


class Rig:
    def __init__(self, fields: np.ndarray, region: np.ndarray,
                 anchor_index: np.ndarray | None = None, anchor_positions: np.ndarray | None = None):
        assert fields.shape == (len(CONTROLS), VERTEX_COUNT, 3)
        self.fields = fields.astype(np.float32)
        self.region = region.astype(bool)
        # Only region vertices ever move: work on that subset for speed.
        self.region_index = np.flatnonzero(self.region)
        self._region_fields = self.fields[:, self.region_index].reshape(len(CONTROLS), -1)
        self.anchor_index, self.anchor_positions = anchor_index, anchor_positions

    def offsets(self, weights: np.ndarray) -> np.ndarray:
        """(T, C) control weights -> (T, 5023, 3) float32 vertex offsets."""
        weights = np.asarray(weights, np.float32)
        out = np.zeros((len(weights), VERTEX_COUNT, 3), np.float32)
        out[:, self.region_index] = (weights @ self._region_fields).reshape(len(weights), -1, 3)
        return out

    def field(self, name: str) -> np.ndarray:
        return self.fields[CONTROLS.index(name)]

    def head_frame(self, head: np.ndarray) -> np.ndarray:
        """3x3 linear map (scale * rotation) from FLAME axes into the head's own
        coordinates: a head imported Z-up, scaled to centimetres or posed gets
        offsets that move its lips the same way (Umeyama fit on rigid anchors)."""
        source = self.anchor_positions - self.anchor_positions.mean(0)
        target = head[self.anchor_index] - head[self.anchor_index].mean(0)
        u, sigma, vt = np.linalg.svd(target.T @ source)
        d = np.sign(np.linalg.det(u @ vt))
        correction = np.diag([1.0, 1.0, d])
        rotation = u @ correction @ vt
        scale = (sigma * np.diag(correction)).sum() / (source ** 2).sum()
        return (scale * rotation).astype(np.float32)

    def fields_for(self, head: np.ndarray) -> np.ndarray:
        """(C, 5023, 3) fields expressed in `head`'s coordinates."""
        return self.fields @ self.head_frame(head).T


@lru_cache(maxsize=1)
def load_rig(path: Path = RIG_FILE) -> Rig:
    if not Path(path).is_file():
        raise FileNotFoundError(f"rig fields missing at {path}: run `python tools/build_rig.py`")
    data = np.load(path)
    if tuple(str(c) for c in data["controls"]) != CONTROLS:
        raise ValueError(f"{path} was built for other controls: rebuild with `python tools/build_rig.py`")
    return Rig(data["fields"], data["region"], data["anchor_index"], data["anchor_positions"])
