"""Pure-numpy inference for the VOCA/GDPnet network (never imports torch).

Reads the .npz weights file written by `training.losses.export_weights` (no pickle) and gives the
same numbers as `models.voca.TorchPredictor` (tested to 1e-5), so the add-on animates in a
Blender without torch.

Also home of the inference driver shared by both backends (`predict_common`): long audio is
cut into chunks of output frames; each chunk's audio is taken with enough context that its
features equal those of the whole clip, and neighbouring chunks overlap and are crossfaded
linearly, so there is no seam and memory stays bounded by the chunk length.
"""
from __future__ import annotations

import json

import numpy as np

from ..core.cancel import check as check_cancel

from ..core import atomic
from ..core.npz import DataFileError, read_npz
from ..core.phonetic import frame_count
from ..core.rig import load_rig

from . import features as feats
from .config import ModelConfig

FORMAT = "flame-lipsync-voca/1"  # written by training.losses.export_weights
LEAK = 0.2  # LeakyReLU slope (models.voca uses this one)


# ----------------------------------------------------------------------------- config / file

WEIGHTS_FIX = "reinstall the add-on, or train the weights again from a checkout (python cli.py train)"


def read_weights(path):
    data = read_npz(path, WEIGHTS_FIX, "network weights")
    meta = read_meta(data)
    if meta.get("format") != FORMAT:
        raise DataFileError(f"network weights '{path}' are not a {FORMAT} weights file (format "
                            f"{meta.get('format')!r}); {WEIGHTS_FIX}.")
    params = data.under("param/")  # a missing parameter names itself and the file
    for name in params:
        params[name] = np.asarray(params[name], np.float32)
    mean, std = data["norm/mean"].astype(np.float32), data["norm/std"].astype(np.float32)
    return ModelConfig.from_dict(meta["config"]), params, mean, std, meta


def read_meta(data) -> dict:
    """The weights file's JSON header ("meta"), checked: a dict with a "config"."""
    try:
        meta = json.loads(str(data["meta"]))
    except json.JSONDecodeError as err:
        raise DataFileError(f"network weights '{data.path}' have a damaged header: its 'meta' is not valid "
                            f"JSON ({err.msg}); {WEIGHTS_FIX}.") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise DataFileError(f"network weights '{data.path}' have no network description in their 'meta' "
                            f"header; {WEIGHTS_FIX}.")
    return meta


def front_end(cfg) -> str:
    return getattr(cfg, "front_end", "mel")  # weights from before the option: log-mel


def has_phone_head(cfg) -> bool:
    return bool(getattr(cfg, "phone_head", False))


def output_heads(cfg) -> tuple:
    """Head names predict_all accepts: the regression heads (+ 'phones')."""
    return tuple(cfg.heads) + (("phones",) if has_phone_head(cfg) else ())


# ----------------------------------------------------------------------------- layers

def leaky_relu(x):
    return np.where(x > 0, x, np.float32(LEAK) * x)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def sigmoid(x):
    return np.float32(0.5) * (np.float32(1.0) + np.tanh(np.float32(0.5) * x))


def linear(p, name, x):
    return x @ p[name + ".weight"].T + p[name + ".bias"]


def conv1d_stride2(p, name, x):
    """Conv1d(kernel 3, stride 2, padding 1) on (B, C, L) -> (B, O, ceil(L / 2))."""
    w, b = p[name + ".weight"], p[name + ".bias"]
    n, c, length = x.shape
    out_len = (length - 1) // 2 + 1
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1)))
    patches = np.stack([xp[:, :, k:k + 2 * (out_len - 1) + 1:2] for k in range(3)], axis=-1)
    patches = patches.transpose(0, 2, 1, 3).reshape(n, out_len, c * 3)
    return (patches @ w.reshape(len(w), -1).T + b).transpose(0, 2, 1)


def pool_to(x, length):
    factor = x.shape[-1] // length
    return x if factor == 1 else x.reshape(x.shape[0], x.shape[1], length, factor).mean(-1)


# ----------------------------------------------------------------------------- the network

class NumpyModel:
    """Same API as models.voca.TorchPredictor: predict / predict_offsets / predict_all."""

    backend = "numpy"

    def __init__(self, cfg: Config, params: dict, mean, std, meta: dict | None = None):
        self.cfg, self.p, self.meta = cfg, params, meta or {}
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.silence = (feats.front_end_silence(front_end(cfg)) - self.mean) / self.std

    @property
    def style_names(self):
        return self.cfg.style_names

    def encode(self, windows, style):
        cfg, p = self.cfg, self.p
        x = np.asarray(windows, np.float32).transpose(0, 2, 1)
        style = np.asarray(style, np.float32)
        x = np.concatenate([x, np.broadcast_to(style[:, :, None], (len(x), style.shape[1], x.shape[-1]))], 1)
        maps = [x]
        for i in range(len(cfg.conv_channels)):
            if cfg.dense:
                inp = np.concatenate([pool_to(m, maps[-1].shape[-1]) for m in maps], 1)
            else:
                inp = maps[-1]
            maps.append(leaky_relu(conv1d_stride2(p, f"encoder.convs.{i}", inp)))
        if cfg.dense:
            final = np.concatenate([pool_to(m, maps[-1].shape[-1]) for m in maps], 1)
        else:
            final = maps[-1]
        h = np.concatenate([final.reshape(len(final), -1), style], 1)
        for i in range(len(cfg.fc_sizes)):
            h = leaky_relu(linear(p, f"encoder.fcs.{i}", h))
        return linear(p, "encoder.to_latent", h)

    def forward(self, windows, style, heads=None) -> dict:
        cfg, p = self.cfg, self.p
        latent = self.encode(windows, style)
        z = latent
        if cfg.attention:
            z = z * 2.0 * sigmoid(linear(p, "attention.excite", leaky_relu(linear(p, "attention.squeeze", z))))
        out = {"latent": latent}
        heads = cfg.heads if heads is None else heads
        if "controls" in heads and "controls" in cfg.heads:
            out["controls"] = linear(p, "heads.controls.basis", linear(p, "heads.controls.coefficients", z))
        if "vertices" in heads and "vertices" in cfg.heads:
            v = linear(p, "heads.vertices.basis", linear(p, "heads.vertices.coefficients", z))
            out["offsets"] = v.reshape(len(v), cfg.n_vertices, 3)
        if "phones" in heads and has_phone_head(cfg):
            out["phones"] = softmax(linear(p, "phone_head", z))
        return out

    # driver hooks (see predict_common)
    def _features(self, samples, phones=None):
        return (feats.front_end_features(samples, front_end(self.cfg), phones) - self.mean) / self.std

    def _run_frames(self, features, idx, style, heads, batch=2048):
        bank = np.concatenate([features, self.silence[None]], 0).astype(np.float32)
        idx = np.where(idx < 0, len(features), idx)
        result = {}
        for start in range(0, len(idx), batch):
            windows = bank[idx[start:start + batch]]
            out = self.forward(windows, np.broadcast_to(style, (len(windows), len(style))), heads)
            for name in heads:
                key = "offsets" if name == "vertices" else name
                result.setdefault(key, []).append(out[key].reshape(len(windows), -1))
        return {k: np.concatenate(v) for k, v in result.items()}

    def predict_all(self, samples, fps: float = 30.0, style=None, heads=None,
                    chunk_seconds: float = 30.0, overlap_seconds: float = 1.0, phone_track=None) -> dict:
        return predict_common(self, samples, fps, style, heads, chunk_seconds, overlap_seconds, phone_track)

    def predict(self, samples, fps: float = 30.0, style=None, **kw) -> np.ndarray:
        """-> (T, 10) float32 rig control weights, T = core.phonetic.frame_count(duration, fps)."""
        return self.predict_all(samples, fps, style, heads=("controls",), **kw)["controls"]

    def predict_offsets(self, samples, fps: float = 30.0, style=None, **kw) -> np.ndarray:
        """-> (T, 5023, 3) float32 vertex offsets (metres) from the head driving the output."""
        return offsets_common(self, samples, fps, style, **kw)


def load_model(path) -> NumpyModel:
    cfg, params, mean, std, meta = read_weights(path)
    return NumpyModel(cfg, params, mean, std, meta)


# ----------------------------------------------------------------------------- shared driver

def style_vector(cfg, style) -> np.ndarray:
    """None: the average of all training styles (for an unknown speaker); int: that index;
    str: that style name; array: weights over the styles (normalised to sum 1)."""
    n = cfg.n_styles
    if style is None:
        return np.full(n, 1.0 / n, np.float32)
    if isinstance(style, str):
        if style not in cfg.style_names:
            raise ValueError(f"unknown speaking style {style!r}: choose one of {', '.join(cfg.style_names)}")
        style = cfg.style_names.index(style)
    if isinstance(style, (int, np.integer)):
        if not 0 <= style < n:
            raise ValueError(f"speaking style {style} out of range 0..{n - 1}")
        out = np.zeros(n, np.float32)
        out[style] = 1.0
        return out
    out = np.asarray(style, np.float32).reshape(-1)
    if out.shape != (n,) or out.sum() <= 0:
        raise ValueError(f"style weights must be {n} non-negative numbers with a positive sum")
    return out / out.sum()


def chunk_spans(n_frames: int, chunk: int, overlap: int):
    """[(start, stop)] covering 0..n_frames; neighbours share `overlap` frames."""
    if n_frames <= chunk:
        return [(0, n_frames)]
    step = chunk - overlap
    spans, start = [], 0
    while True:
        stop = min(start + chunk, n_frames)
        spans.append((start, stop))
        if stop == n_frames:
            return spans
        start += step


def needs_phone_track(cfg) -> bool:
    return front_end(cfg) == "mel+phones"


def predict_common(model, samples, fps, style, heads, chunk_seconds, overlap_seconds, phone_track=None) -> dict:
    """Both backends: audio -> {'controls': (T, C), 'offsets': (T, V*3), 'phones': (T, 40)} with
    chunking + crossfade.

    `model` provides `cfg`, `_features(samples, phones) -> normalised (n, F)` and
    `_run_frames(features, local window indices, style, heads) -> {name: (n, D)}`.
    The phone front end hears the whole clip once (`phone_track`: phone_features.phone_posteriors
    of `samples`, computed here when not given), so every chunk sees the same phones."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    cfg = model.cfg
    heads = tuple(cfg.heads if heads is None else heads)
    missing = set(heads) - set(output_heads(cfg))
    if missing:
        raise ValueError(f"this model has no {'/'.join(sorted(missing))} head (it has {', '.join(output_heads(cfg))})")
    samples = np.asarray(samples, np.float32).reshape(-1)
    style = style_vector(cfg, style)
    n_frames = frame_count(len(samples) / feats.SAMPLE_RATE, fps)
    n_feat = feats.n_feature_frames(len(samples))
    chunk = max(2, int(round(chunk_seconds * fps))) if np.isfinite(chunk_seconds) else n_frames
    overlap = min(int(round(overlap_seconds * fps)), chunk // 2)
    spans = chunk_spans(n_frames, chunk, overlap)
    if needs_phone_track(cfg) and phone_track is None:
        from .phone_features import phone_posteriors
        phone_track = phone_posteriors(samples)

    total = weight = None
    for number, (a, b) in enumerate(spans):
        check_cancel()  # the job's Esc lands between chunks
        idx = feats.window_indices(np.arange(a, b), fps, cfg.window, n_feat)
        valid = idx[idx >= 0]
        if valid.size:  # audio for these feature frames, with context so they equal the whole clip's
            s0 = max(0, (int(valid.min()) - 2) * feats.HOP)
            s1 = min(len(samples), (int(valid.max()) + 2) * feats.HOP)
            first = s0 // feats.HOP
            phones = (None if phone_track is None else
                      phone_track[first:first + feats.n_feature_frames(s1 - s0)])
            features = model._features(samples[s0:s1], phones)
            idx = np.where(idx >= 0, idx - first, -1)
        else:
            features = model._features(np.zeros(0, np.float32),
                                       None if phone_track is None else phone_track[:0])
        out = model._run_frames(features, idx, style, heads)
        ramp = np.ones(b - a, np.float32)
        if overlap and number > 0:
            ramp[:overlap] = (np.arange(overlap) + 0.5) / overlap
        if overlap and number < len(spans) - 1:
            ramp[-overlap:] = np.minimum(ramp[-overlap:], 1.0 - (np.arange(overlap) + 0.5) / overlap)
        if total is None:
            total = {k: np.zeros((n_frames, v.shape[1]), np.float32) for k, v in out.items()}
            weight = np.zeros((n_frames, 1), np.float32)
        for k, v in out.items():
            total[k][a:b] += ramp[:, None] * v
        weight[a:b, 0] += ramp
    return {k: v / weight for k, v in total.items()}


def offsets_common(model, samples, fps, style, **kw) -> np.ndarray:
    cfg = model.cfg
    if cfg.output == "controls":
        return load_rig().offsets(model.predict(samples, fps, style, **kw))
    flat = model.predict_all(samples, fps, style, heads=("vertices",), **kw)["offsets"]
    return flat.reshape(len(flat), cfg.n_vertices, 3)


def update_meta(path, **fields):
    """Rewrite a weights file with `fields` merged into its JSON meta (calibration results)."""
    arrays = read_npz(path, WEIGHTS_FIX, "network weights")
    meta = read_meta(arrays)
    meta.update(fields)
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic.replacing(path) as tmp, open(tmp, "wb") as handle:  # a failed write keeps the weights
        np.savez_compressed(handle, **arrays)
    return meta
