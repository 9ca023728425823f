"""Training-only parts of the network: loss terms (position + velocity, geometry
guidance), the PCA that initialises the output heads, and the weights export."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..models.numpy_inference import FORMAT
from ..models.voca import VOCA


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
