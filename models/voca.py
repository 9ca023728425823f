"""Speech -> face: VOCA (Cudeiro et al. 2019) with GDPnet's options (Liu et al.), in one file.

Read top to bottom:
  ModelConfig        every switch of the network (models/config.py)
  SpeechEncoder      16 feature frames around t (+ style one-hot) -> 4 strided convs -> 2 FC -> latent
                     (dense=True: each conv sees all earlier maps, GDPnet's dense connections)
  SqueezeExcite      GDPnet's channel attention in the decoder (identity at initialisation)
  PCAHead            latent -> k coefficients -> output; the output layer starts as the top-k
                     PCA basis of the training targets (VOCA's decoder initialisation)
  phone head         optional: latent -> logits over the 40 phones (phone_features.PHONES), trained
                     on the teacher's aligned phones; its bilabial posterior times lip seals
  MeshAutoencoder    GDPnet's geometry guidance: a small autoencoder over the target
                     representation whose latent the speech latent is pulled towards
  VOCA               the network: encoder -> [attention] -> heads
  TorchPredictor     audio -> per-frame controls / vertex offsets, chunked with crossfade

Two heads, both optional:
  "controls"  the articulation rig's 10 weights (core.rig.CONTROLS): bakes as editable shape keys,
              offsets = controls @ rig fields (linear)
  "vertices"  per-vertex offsets (5023 x 3, metres) from the template: VOCA's output
`ModelConfig.output` says which head drives `predict_offsets`.
Losses, PCA and the weights export are training-only: training/losses.py.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import features as feats
from .config import ModelConfig
from . import numpy_inference as npi
from .numpy_inference import LEAK  # LeakyReLU slope everywhere
from .phone_features import PHONES


def conv_lengths(cfg: ModelConfig) -> list[int]:
    """Time length of the input and of each conv output (kernel 3, stride 2, padding 1)."""
    lengths = [cfg.window]
    for _ in cfg.conv_channels:
        lengths.append((lengths[-1] + 1) // 2)
    return lengths


# ----------------------------------------------------------------------------- encoder

def pool_to(x: torch.Tensor, length: int) -> torch.Tensor:
    """Average-pool (B, C, L) to (B, C, length); L is a multiple of length."""
    factor = x.shape[-1] // length
    return x if factor == 1 else F.avg_pool1d(x, factor, factor)


class SpeechEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        widths = [cfg.n_features + cfg.n_styles]
        self.convs = nn.ModuleList()
        for out in cfg.conv_channels:
            c_in = sum(widths) if cfg.dense else widths[-1]
            self.convs.append(nn.Conv1d(c_in, out, kernel_size=3, stride=2, padding=1))
            widths.append(out)
        final = (sum(widths) if cfg.dense else widths[-1]) * conv_lengths(cfg)[-1]
        size = final + cfg.n_styles
        self.fcs = nn.ModuleList()
        for hidden in cfg.fc_sizes:
            self.fcs.append(nn.Linear(size, hidden))
            size = hidden
        self.to_latent = nn.Linear(size, cfg.latent)

    def forward(self, windows: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """windows (B, window, n_features) normalised; style (B, n_styles) -> latent (B, latent)"""
        x = windows.transpose(1, 2)
        x = torch.cat([x, style[:, :, None].expand(-1, -1, x.shape[-1])], dim=1)
        maps = [x]
        for conv in self.convs:
            if self.cfg.dense:
                length = maps[-1].shape[-1]
                inp = torch.cat([pool_to(m, length) for m in maps], dim=1)
            else:
                inp = maps[-1]
            maps.append(F.leaky_relu(conv(inp), LEAK))
        if self.cfg.dense:
            final = torch.cat([pool_to(m, maps[-1].shape[-1]) for m in maps], dim=1)
        else:
            final = maps[-1]
        h = torch.cat([final.flatten(1), style], dim=1)
        for fc in self.fcs:
            h = F.leaky_relu(fc(h), LEAK)
        return self.to_latent(h)


# ----------------------------------------------------------------------------- decoder

class SqueezeExcite(nn.Module):
    """z * 2 sigmoid(W2 act(W1 z)): a learned per-channel gate. W2 starts at zero, so the gate
    starts at exactly 1 and the decoder starts as the plain PCA decoder."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.squeeze = nn.Linear(channels, max(1, channels // reduction))
        self.excite = nn.Linear(max(1, channels // reduction), channels)
        nn.init.zeros_(self.excite.weight)
        nn.init.zeros_(self.excite.bias)

    def forward(self, z):
        return z * 2.0 * torch.sigmoid(self.excite(F.leaky_relu(self.squeeze(z), LEAK)))


class PCAHead(nn.Module):
    """latent -> k coefficients -> out_dim. `init_pca` sets the output layer to
    mean + coefficients @ (std * components): coefficient j is in standard deviations of PCA
    component j, so the layer reproduces the PCA reconstruction from whitened coefficients."""

    def __init__(self, latent: int, k: int, out_dim: int):
        super().__init__()
        self.coefficients = nn.Linear(latent, k)
        self.basis = nn.Linear(k, out_dim)

    @torch.no_grad()
    def init_pca(self, mean: np.ndarray, components: np.ndarray, std: np.ndarray):
        """mean (out_dim,), components (k, out_dim) orthonormal rows, std (k,)"""
        k = self.basis.in_features
        if components.shape != (k, self.basis.out_features):
            raise ValueError(f"PCA basis {components.shape} does not fit head ({k}, {self.basis.out_features})")
        self.basis.weight.copy_(torch.as_tensor(components * std[:, None]).T)
        self.basis.bias.copy_(torch.as_tensor(mean))

    def forward(self, z, rows=None):
        """rows: only these output rows (training on a vertex subset: a fraction of the cost)."""
        if rows is None:
            return self.basis(self.coefficients(z))
        return F.linear(self.coefficients(z), self.basis.weight[rows], self.basis.bias[rows])


# ----------------------------------------------------------------------------- geometry guidance

class MeshAutoencoder(nn.Module):
    """target (whitened PCA coefficients of the driving head's targets) -> latent -> target.
    Training only: its latent guides the speech latent (GDPnet); not exported."""

    def __init__(self, cfg: ModelConfig, k: int, out_dim: int):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(k, cfg.mesh_hidden), nn.LeakyReLU(LEAK),
                                     nn.Linear(cfg.mesh_hidden, cfg.latent))
        self.decoder = nn.Sequential(nn.Linear(cfg.latent, cfg.mesh_hidden), nn.LeakyReLU(LEAK),
                                     nn.Linear(cfg.mesh_hidden, k))
        self.register_buffer("pca_mean", torch.zeros(out_dim))
        self.register_buffer("pca_components", torch.zeros(k, out_dim))
        self.register_buffer("pca_std", torch.ones(k))

    @torch.no_grad()
    def set_pca(self, mean, components, std):
        self.pca_mean.copy_(torch.as_tensor(mean))
        self.pca_components.copy_(torch.as_tensor(components))
        self.pca_std.copy_(torch.as_tensor(std))

    def project(self, target, columns=None):
        """(N, out_dim) -> whitened coefficients (N, k); `columns`: target holds only those
        columns (exact when the others never move: their mean and components are zero)."""
        mean, comps = self.pca_mean, self.pca_components
        if columns is not None:
            mean, comps = mean[columns], comps[:, columns]
        return (target - mean) @ comps.T / self.pca_std

    def forward(self, target, columns=None):
        code = self.project(target, columns)
        latent = self.encoder(code)
        return latent, F.mse_loss(self.decoder(latent), code)


# ----------------------------------------------------------------------------- the network

class VOCA(nn.Module):
    def __init__(self, cfg: ModelConfig, with_training_parts: bool = True):
        super().__init__()
        self.cfg = cfg
        self.encoder = SpeechEncoder(cfg)
        self.attention = SqueezeExcite(cfg.latent, cfg.se_reduction) if cfg.attention else None
        self.heads = nn.ModuleDict()
        if "controls" in cfg.heads:
            self.heads["controls"] = PCAHead(cfg.latent, cfg.controls_k, cfg.n_controls)
        if "vertices" in cfg.heads:
            self.heads["vertices"] = PCAHead(cfg.latent, cfg.vertex_k, 3 * cfg.n_vertices)
        self.phone_head = nn.Linear(cfg.latent, len(PHONES)) if cfg.phone_head else None
        self.mesh_ae = None
        if with_training_parts and cfg.guidance != "none":
            k, dim = ((cfg.controls_k, cfg.n_controls) if cfg.output == "controls"
                      else (cfg.vertex_k, 3 * cfg.n_vertices))
            self.mesh_ae = MeshAutoencoder(cfg, k, dim)

    def forward(self, windows: torch.Tensor, style: torch.Tensor, heads=None, vertex_index=None) -> dict:
        """windows (B, window, n_features), style (B, n_styles) ->
        {'latent': (B, latent), 'controls': (B, n_controls), 'offsets': (B, n_vertices, 3),
         'phone_logits' and 'phones' (softmax) (B, 40) with the phone head}.
        vertex_index (LongTensor): offsets of those vertices only, (B, len(vertex_index), 3)."""
        latent = self.encoder(windows, style)
        z = self.attention(latent) if self.attention is not None else latent
        out = {"latent": latent}
        all_heads = heads is None
        heads = self.cfg.heads if heads is None else heads
        if "controls" in heads and "controls" in self.heads:
            out["controls"] = self.heads["controls"](z)
        if "vertices" in heads and "vertices" in self.heads:
            rows = None if vertex_index is None else (vertex_index[:, None] * 3 + torch.arange(3, device=z.device)).reshape(-1)
            out["offsets"] = self.heads["vertices"](z, rows).view(len(z), -1, 3)
            if vertex_index is not None:
                out["vertex_index"] = vertex_index
        if self.phone_head is not None and (all_heads or "phones" in heads):
            out["phone_logits"] = self.phone_head(z)
            out["phones"] = torch.softmax(out["phone_logits"], dim=-1)
        return out

    def inference_state_dict(self) -> dict:
        """What inference needs (no mesh autoencoder)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("mesh_ae.")}


# ----------------------------------------------------------------------------- weights file

def read_weights(path) -> tuple[ModelConfig, dict, np.ndarray, np.ndarray, dict]:
    """-> (config, {name: array}, norm mean, norm std, meta). Never unpickles."""
    _, params, mean, std, meta = npi.read_weights(path)
    return ModelConfig.from_dict(meta["config"]), params, mean, std, meta


# ----------------------------------------------------------------------------- inference

class TorchPredictor:
    """audio (16 kHz mono float) -> per-frame controls / offsets, in torch (CUDA when present).
    Same API and numbers as numpy_inference.NumpyModel."""

    backend = "torch"

    def __init__(self, model: VOCA, mean, std, device=None, meta: dict | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.cfg = model.cfg
        self.meta = meta or {}
        self.mean = torch.as_tensor(np.asarray(mean, np.float32), device=self.device)
        self.std = torch.as_tensor(np.asarray(std, np.float32), device=self.device)
        self.silence = (torch.as_tensor(feats.front_end_silence(self.cfg.front_end), device=self.device)
                        - self.mean) / self.std

    @property
    def style_names(self):
        return self.cfg.style_names

    def forward(self, windows, style) -> dict:
        """numpy windows (N, window, F) normalised, style (N, n_styles) -> numpy outputs."""
        with torch.no_grad():
            out = self.model(torch.as_tensor(windows, device=self.device),
                             torch.as_tensor(style, device=self.device))
        return {k: v.cpu().numpy() for k, v in out.items()}

    def _features(self, samples, phones=None):
        x = torch.as_tensor(np.asarray(samples, np.float32), device=self.device)
        f = feats.features_torch(x)
        if self.cfg.front_end == "mel+phones":  # heard by pocketsphinx, on the CPU
            if phones is None:
                phones = feats.front_end_features(samples, self.cfg.front_end)[:, feats.N_FEATURES:]
            f = torch.cat([f, torch.as_tensor(np.asarray(phones, np.float32), device=self.device)], 1)
        return (f - self.mean) / self.std

    def _run_frames(self, features, idx, style, heads, batch=4096):
        bank = torch.cat([features, self.silence[None]], dim=0)
        idx = torch.as_tensor(np.where(idx < 0, len(features), idx), device=self.device)
        style_t = torch.as_tensor(style, dtype=torch.float32, device=self.device)
        result = {}
        with torch.no_grad():
            for start in range(0, len(idx), batch):
                windows = bank[idx[start:start + batch]]
                out = self.model(windows, style_t[None].expand(len(windows), -1), heads=heads)
                for name in heads:
                    key = "offsets" if name == "vertices" else name
                    result.setdefault(key, []).append(out[key].reshape(len(windows), -1).cpu().numpy())
        return {k: np.concatenate(v) for k, v in result.items()}

    def predict_all(self, samples, fps: float = 30.0, style=None, heads=None,
                    chunk_seconds: float = 30.0, overlap_seconds: float = 1.0, phone_track=None) -> dict:
        return npi.predict_common(self, samples, fps, style, heads, chunk_seconds, overlap_seconds, phone_track)

    def predict(self, samples, fps: float = 30.0, style=None, **kw) -> np.ndarray:
        """-> (T, 10) float32 rig control weights, T = core.phonetic.frame_count(duration, fps)."""
        return self.predict_all(samples, fps, style, heads=("controls",), **kw)["controls"]

    def predict_offsets(self, samples, fps: float = 30.0, style=None, **kw) -> np.ndarray:
        """-> (T, 5023, 3) float32 vertex offsets (metres) from the head driving the output."""
        return npi.offsets_common(self, samples, fps, style, **kw)


def load_model(path, device=None) -> TorchPredictor:
    cfg, params, mean, std, meta = read_weights(path)
    model = VOCA(cfg, with_training_parts=False)
    model.load_state_dict({k: torch.as_tensor(v) for k, v in params.items()}, strict=True)
    return TorchPredictor(model, mean, std, device, meta)
