"""The network's configuration: one dataclass shared by the torch model (models.voca),
the numpy inference (models.numpy_inference) and training. Torch-free."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..core.flame import VERTEX_COUNT
from ..core.rig import CONTROLS
from . import features as feats


@dataclass
class ModelConfig:
    n_features: int = feats.N_FEATURES      # log-mel (40) + log loudness (+ 40 phones: set from front_end)
    front_end: str = "mel"                   # 'mel' | 'mel+phones' (features.FRONT_ENDS)
    window: int = 16                         # feature frames (50 fps) per animation frame
    conv_channels: tuple = (32, 32, 64, 64)  # 4 strided convs over time: 16 -> 8 -> 4 -> 2 -> 1
    fc_sizes: tuple = (128,)                 # hidden FC layers; with `latent` these are VOCA's 2 FC
    latent: int = 50                         # speech latent size
    n_styles: int = 8                        # speaking-style one-hot (training voices / subjects)
    style_names: tuple = ()                  # name of each style index (voices, VOCASET subjects)
    dense: bool = False                      # GDPnet dense encoder connections
    attention: bool = False                  # GDPnet squeeze-excitation in the decoder
    se_reduction: int = 4
    guidance: str = "none"                   # 'none' | 'huber' | 'hsic' (geometry guidance)
    mesh_hidden: int = 64                    # mesh autoencoder width
    n_controls: int = len(CONTROLS)
    control_names: tuple = CONTROLS
    n_vertices: int = VERTEX_COUNT
    pca_components: int = 50                 # requested k; the heads use min(k, rank of the targets)
    heads: tuple = ("controls", "vertices")  # which heads exist
    phone_head: bool = False                 # + a classifier of the sounding phone (phone_features.PHONES)
    output: str = "controls"                 # which head drives predict_offsets
    controls_k: int = 0                      # actual PCA sizes, set from the data (0: not yet)
    vertex_k: int = 0

    def __post_init__(self):
        self.conv_channels = tuple(self.conv_channels)
        self.fc_sizes = tuple(self.fc_sizes)
        self.style_names = tuple(self.style_names)
        self.control_names = tuple(self.control_names)
        self.heads = tuple(self.heads)
        if self.guidance not in ("none", "huber", "hsic"):
            raise ValueError(f"guidance must be 'none', 'huber' or 'hsic', got {self.guidance!r}")
        if not self.heads or set(self.heads) - {"controls", "vertices"}:
            raise ValueError(f"heads must be a non-empty subset of ('controls', 'vertices'), got {self.heads}")
        if self.output not in self.heads:
            raise ValueError(f"output head {self.output!r} is not among heads {self.heads}")
        if self.dense and self.window % (2 ** len(self.conv_channels)):
            raise ValueError("dense connections need window divisible by 2 ** number of convs")
        if self.style_names and len(self.style_names) != self.n_styles:
            raise ValueError(f"{len(self.style_names)} style names for n_styles={self.n_styles}")
        self.n_features = feats.n_front_end_features(self.front_end)
        self.controls_k = self.controls_k or min(self.pca_components, self.n_controls)
        self.vertex_k = self.vertex_k or min(self.pca_components, 3 * self.n_vertices)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)
