"""Speech -> face: VOCA (Cudeiro et al. 2019) with GDPnet's options (Liu et al.), in one file.

Read top to bottom:
  ModelConfig        every switch of the network
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
  losses             position + velocity on controls and/or vertices (+ lip weighting) + guidance
  TorchPredictor     audio -> per-frame controls / vertex offsets, chunked with crossfade

Two heads, both optional:
  "controls"  the articulation rig's 10 weights (core.rig.CONTROLS): bakes as editable shape keys,
              offsets = controls @ rig fields (linear)
  "vertices"  per-vertex offsets (5023 x 3, metres) from the template: VOCA's output
`ModelConfig.output` says which head drives `predict_offsets`.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

try:  # inside the add-on package (flame_lipsync.models) or from the checkout
    from ..core.flame import VERTEX_COUNT
    from ..core.rig import CONTROLS
except ImportError:
    from core.flame import VERTEX_COUNT
    from core.rig import CONTROLS

from . import features as feats
from . import numpy_inference as npi
from .numpy_inference import LEAK  # LeakyReLU slope everywhere
from .phone_features import PHONES


# ----------------------------------------------------------------------------- config

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


def hsic_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 - normalised HSIC between two batches of latents (Gaussian kernels, median bandwidth).
    0 when the two are perfectly dependent; invariant to scale, unlike Huber."""
    def centred_gram(a):
        d = torch.cdist(a, a) ** 2
        bandwidth = d.detach()[d.detach() > 0].median() if (d.detach() > 0).any() else d.new_tensor(1.0)
        k = torch.exp(-d / bandwidth.clamp_min(1e-8))
        return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()
    kx, ky = centred_gram(x), centred_gram(y)
    return 1.0 - (kx * ky).sum() / torch.sqrt((kx * kx).sum() * (ky * ky).sum()).clamp_min(1e-12)


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


# ----------------------------------------------------------------------------- losses

@dataclass
class LossWeights:
    controls: float = 1.0          # position loss on the controls head (needs control targets)
    controls_velocity: float = 1.0
    vertices: float = 1.0          # position loss on the vertex head, mm^2 (needs vertex targets)
    vertices_velocity: float = 1.0
    rig_vertices: float = 0.0      # controls head through the rig fields vs vertex targets, mm^2
    lip_weight: float = 1.0        # extra weight of lip-region vertices in vertex losses
    guidance: float = 0.1          # Huber / HSIC between speech latent and mesh latent
    mesh_reconstruction: float = 1.0
    phones: float = 0.0            # cross-entropy of the phone head against the teacher's phones


def _position_velocity(pred, target, weight=None):
    """pred/target (B, S, D...) sequences of S consecutive frames -> (position, velocity) MSE."""
    err = (pred - target) ** 2
    vel = ((pred[:, 1:] - pred[:, :-1]) - (target[:, 1:] - target[:, :-1])) ** 2
    if weight is not None:  # (V,) per-vertex weights over (B, S, V, 3)
        w = weight[:, None] / weight.mean()
        return (err * w).mean(), (vel * w).mean() if pred.shape[1] > 1 else err.new_zeros(())
    return err.mean(), vel.mean() if pred.shape[1] > 1 else err.new_zeros(())


def losses(model: VOCA, out: dict, controls=None, offsets=None, rig_fields=None,
           vertex_weight=None, w: LossWeights = LossWeights(), seq_len: int = 1, phones=None) -> dict:
    """Loss terms for one batch of B sequences of `seq_len` frames (flattened to B*seq_len).

    controls (B*S, C) and/or offsets (B*S, V, 3) metres; rig_fields (C, V*3) lets vertex
    targets be made from control targets and the controls head be judged on vertices. When the
    model ran on a vertex subset (out['vertex_index']), vertex terms use those vertices only
    (targets, weights and rig fields are cut to match). phones (B*S,): PHONES indices."""
    cfg = model.cfg
    terms = {}

    def seq(x):
        return x.reshape(-1, seq_len, *x.shape[1:])

    index = out.get("vertex_index")
    if index is not None:
        if offsets is not None and offsets.shape[1] == cfg.n_vertices:
            offsets = offsets[:, index]
        if rig_fields is not None:
            rig_fields = rig_fields.view(len(rig_fields), cfg.n_vertices, 3)[:, index].reshape(len(rig_fields), -1)
        if vertex_weight is not None:
            vertex_weight = vertex_weight[index]
    if offsets is None and controls is not None and rig_fields is not None and (
            "offsets" in out or w.rig_vertices):
        offsets = (controls @ rig_fields).view(len(controls), -1, 3)
    if "controls" in out and controls is not None:
        terms["controls"], terms["controls_velocity"] = _position_velocity(seq(out["controls"]), seq(controls))
    if "offsets" in out and offsets is not None:
        terms["vertices"], terms["vertices_velocity"] = _position_velocity(
            seq(out["offsets"] * 1000.0), seq(offsets * 1000.0), vertex_weight)
    if w.rig_vertices and "controls" in out and offsets is not None and rig_fields is not None:
        rigged = (out["controls"] @ rig_fields).view(len(out["controls"]), -1, 3)
        terms["rig_vertices"], _ = _position_velocity(seq(rigged * 1000.0), seq(offsets * 1000.0), vertex_weight)
    if model.mesh_ae is not None:
        columns = None
        if cfg.output == "controls":
            target = controls
        else:
            target = offsets.reshape(len(offsets), -1) if offsets is not None else None
            if index is not None:
                columns = (index[:, None] * 3 + torch.arange(3, device=index.device)).reshape(-1)
        if target is not None:
            mesh_latent, terms["mesh_reconstruction"] = model.mesh_ae(target, columns)
            if cfg.guidance == "huber":
                terms["guidance"] = F.huber_loss(out["latent"], mesh_latent.detach(), delta=1.0)
            else:
                terms["guidance"] = hsic_loss(out["latent"], mesh_latent.detach())
    if "phone_logits" in out and phones is not None:
        terms["phones"] = F.cross_entropy(out["phone_logits"], phones)
    total = sum(getattr(w, name) * value for name, value in terms.items())
    terms["total"] = total
    return terms


def pca(data: np.ndarray, k: int, basis: np.ndarray | None = None, max_rows: int = 20000, seed: int = 0):
    """Top-k PCA of the rows of `data` (N, D), or of `data @ basis` when `basis` (r, D) is given
    (targets made by a linear rig: exact without forming the N x D matrix).

    Returns mean (D,), components (k', D) orthonormal, std (k',) with k' = min(k, rank)."""
    data = np.asarray(data, np.float64)
    if len(data) > max_rows:
        data = data[np.random.default_rng(seed).choice(len(data), max_rows, replace=False)]
    mean_low = data.mean(0)
    centred = data - mean_low
    if basis is not None:
        basis = np.asarray(basis, np.float64)
        q, r = np.linalg.qr(basis.T)              # basis.T = q r, q (D, r) orthonormal
        _, s, vt = np.linalg.svd(centred @ r.T, full_matrices=False)
        components = (q @ vt.T).T
        mean = mean_low @ basis
    else:
        if data.shape[1] > 4096 and k < min(data.shape) // 2:
            u, s, v = torch.svd_lowrank(torch.as_tensor(centred), q=min(k + 10, min(data.shape)), niter=6)
            s, components = s.numpy(), v.numpy().T
        else:
            _, s, components = np.linalg.svd(centred, full_matrices=False)
        mean = mean_low
    std = s / math.sqrt(max(len(data) - 1, 1))
    rank = int((s > s[0] * 1e-6).sum()) if s.size and s[0] > 0 else 0
    k = max(1, min(k, rank))
    return mean.astype(np.float32), components[:k].astype(np.float32), np.maximum(std[:k], 1e-8).astype(np.float32)


# ----------------------------------------------------------------------------- weights file

FORMAT = npi.FORMAT  # the weights file format, defined once (in the torch-free module)


def export_weights(model: VOCA, path, mean: np.ndarray, std: np.ndarray, extra: dict | None = None):
    """Write the inference weights as one .npz (no pickle): parameters under 'param/<name>',
    feature normalisation under 'norm/mean', 'norm/std', and a JSON 'meta' string with the
    config. Both TorchPredictor and numpy_inference.NumpyModel read it."""
    meta = {"format": FORMAT, "config": model.cfg.to_dict(), **(extra or {})}
    arrays = {f"param/{k}": v.detach().cpu().float().numpy() for k, v in model.inference_state_dict().items()}
    arrays["norm/mean"] = np.asarray(mean, np.float32)
    arrays["norm/std"] = np.asarray(std, np.float32)
    arrays["meta"] = np.array(json.dumps(meta))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)


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
