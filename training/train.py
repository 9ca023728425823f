"""Training: `python cli.py train --config training/configs/voca.json [--resume]`.

A config file (JSON) has four sections, each a dataclass here or in voca.py:
  "model": ModelConfig   (voca.py)        "data": DataConfig
  "train": TrainConfig                    "loss": LossWeights (voca.py)

Data: the TTS corpus (`training.corpus`: one .npz per utterance with `audio` float32 16 kHz and
`controls` (T, 10) at 30 fps, manifest.json with splits by voice) or VOCASET (`training.vocaset`).
Every animation frame becomes one training example: the 16-frame feature window around it
(features.window_indices), its style (voice) one-hot and its targets; a batch holds
`batch_size` runs of `seq_len` consecutive frames so the velocity loss sees motion.

Runs on CPU (CUDA when present), seeded and resumable at epoch boundaries: `last.pt` after
every epoch, `best.pt` whenever the held-out-voice score improves (both plain state dicts,
loaded with torch.load(weights_only=True)). Writes `loss.png`, `history.json` and exports the
best weights as one .npz (training/losses.py export_weights) that torch and numpy inference load.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from ..core.phonetic import frame_count
from ..core.rig import CONTROLS, load_rig

from ..models import features as feats
from ..models.config import ModelConfig
from ..models.phone_features import cache_path, one_hot, phone_frames
from ..models.voca import VOCA
from .losses import LossWeights, export_weights, losses, pca

PROJECT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- config

@dataclass
class DataConfig:
    format: str = "corpus"       # 'corpus' (training.corpus) | 'vocaset' | 'synthetic' (a toy corpus made here)
    path: str = "out/corpus"     # relative paths are from the project root
    fps: float = 30.0
    max_utterances: int = 0      # per split, 0 = all
    include_augmented: bool = True  # corpus train split: also the corpus's augmented copies (val: clean only)
    augment: bool = False        # on-the-fly augmentation each epoch (see `augmenter`)
    augment_channel: bool = False  # ... including random microphone / codec colouring (augment.colour)
    phone_dropout: float = 0.0   # mel+phones front end: share of windows whose heard phones are hidden
                                 # (set to their mean), so the network also listens to the spectrum
    sentences_per_subject: int = 0  # vocaset only, 0 = all


@dataclass
class TrainConfig:
    seed: int = 0
    epochs: int = 30
    batch_size: int = 64         # sequences per step
    seq_len: int = 2             # consecutive frames per sequence (velocity loss needs >= 2)
    steps_per_epoch: int = 0     # 0: every frame once per epoch
    lr: float = 1e-3
    lr_min: float = 1e-5         # cosine decay to this over all epochs
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    patience: int = 0            # stop after this many epochs without a better val score (0: never)
    device: str = "auto"         # 'auto' | 'cpu' | 'cuda'
    threads: int = 1             # torch CPU threads (0: torch's default). 1 is fastest for this small
                                 # network on a shared 2-core machine (OpenMP spin-waits under load)
    out_dir: str = ""            # default out/train/<name>
    export: str = ""             # default <out_dir>/model.npz
    log_every: float = 0.1       # progress line every this fraction of an epoch


def _dataclass_from(cls, d: dict | None):
    d = dict(d or {})
    known = {f.name for f in fields(cls)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    return cls(**d)


@dataclass
class RunConfig:
    name: str
    model: dict
    data: DataConfig
    train: TrainConfig
    loss: LossWeights

    @classmethod
    def load(cls, source) -> "RunConfig":
        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"training config '{path}' does not exist")
            d = json.loads(path.read_text())
            d.setdefault("name", path.stem)
        else:
            d = dict(source)
        unknown = set(d) - {"name", "model", "data", "train", "loss", "comment"}
        if unknown:
            raise ValueError(f"unknown config sections: {sorted(unknown)}")
        ModelConfig.from_dict(dict(d.get("model", {})))  # validate early
        return cls(d.get("name", "run"), dict(d.get("model", {})), _dataclass_from(DataConfig, d.get("data")),
                   _dataclass_from(TrainConfig, d.get("train")), _dataclass_from(LossWeights, d.get("loss")))

    def to_dict(self) -> dict:
        return {"name": self.name, "model": self.model, "data": asdict(self.data),
                "train": asdict(self.train), "loss": asdict(self.loss)}

    @property
    def out_dir(self) -> Path:
        return _project_path(self.train.out_dir or f"out/train/{self.name}")


def _project_path(p) -> Path:
    p = Path(p)
    return p if p.is_absolute() else PROJECT / p


# ----------------------------------------------------------------------------- data

@dataclass
class Utterance:
    name: str
    style: str                         # voice / subject
    audio: np.ndarray                  # (n,) float32 16 kHz
    controls: np.ndarray | None = None  # (T, C) float32
    offsets: np.ndarray | None = None   # (T, V*3) float32 metres
    phones: np.ndarray | None = None    # (T,) int64 teacher phone per frame (phone_features.PHONES)
    heard: np.ndarray | None = None     # (n feature frames,) int8 phone-loop phones (cached front end)

    def features(self, front_end: str, audio=None) -> np.ndarray:
        """Front-end features of this utterance's audio (or of `audio`, an augmented copy)."""
        if front_end == "mel" or audio is not None:
            return feats.front_end_features(self.audio if audio is None else audio, front_end)
        if self.heard is None:
            raise ValueError(f"utterance {self.name}: no cached phone-loop phones "
                             "(run python -m flame_lipsync.training.cache_phone_features)")
        return feats.front_end_features(self.audio, front_end, phones=one_hot(self.heard))

    @property
    def n_frames(self) -> int:
        return len(self.controls if self.controls is not None else self.offsets)


def _get(item, *names):
    for name in names:
        if isinstance(item, dict) and name in item:
            return item[name]
        if not isinstance(item, dict) and hasattr(item, name):
            return getattr(item, name)
        if hasattr(item, "files") and name in item.files:  # NpzFile
            return item[name]
    return None


def _fit_length(arr: np.ndarray, n: int) -> np.ndarray:
    """Targets to exactly n frames (the corpus may count the last frame differently)."""
    if len(arr) >= n:
        return arr[:n]
    return np.concatenate([arr, np.repeat(arr[-1:], n - len(arr), 0)])


def load_utterances(data: DataConfig, split: str, heard_phones: bool = False) -> list[Utterance]:
    """`heard_phones`: also load each utterance's cached phone-loop phones
    (training/cache_phone_features.py) for the mel+phones front end."""
    path = _project_path(data.path)
    out = []
    if data.format == "vocaset":
        from . import vocaset
        for seq in vocaset.load_split(path, split, data.fps,
                                      sentences_per_subject=data.sentences_per_subject or None):
            out.append(Utterance(f"{seq.subject}/{seq.sentence}", seq.subject, seq.audio,
                                 offsets=seq.offsets.reshape(len(seq.offsets), -1)))
            if data.max_utterances and len(out) >= data.max_utterances:
                break
        return out
    if data.format not in ("corpus", "synthetic"):
        raise ValueError(f"unknown data format {data.format!r}: use 'corpus', 'vocaset' or 'synthetic'")
    from . import corpus
    if data.format == "synthetic" and not corpus.manifest_file(path).is_file():
        write_synthetic_corpus(path)
    augmented = None if (split == "train" and data.include_augmented) else False
    manifest = corpus.load_manifest(path)
    files = {r["id"]: r["file"] for r in manifest["utterances"]}
    items = corpus.iter_utterances(manifest, split, augmented=augmented)
    for i, item in enumerate(items):
        audio = np.asarray(_get(item, "audio", "samples"), np.float32).reshape(-1)
        controls = np.asarray(_get(item, "controls"), np.float32)
        if controls.ndim != 2 or controls.shape[1] != len(CONTROLS):
            raise ValueError(f"corpus utterance {i} of '{split}' has controls {controls.shape}, expected (T, {len(CONTROLS)})")
        fps = _get(item, "fps")
        if fps is not None and abs(float(fps) - data.fps) > 1e-6:
            raise ValueError(f"corpus utterance {i} of '{split}' is at {fps} fps; the config says data.fps={data.fps}")
        rate = _get(item, "rate")
        if rate is not None and int(rate) != feats.SAMPLE_RATE:
            raise ValueError(f"corpus utterance {i} of '{split}' is at {rate} Hz; the network takes {feats.SAMPLE_RATE}")
        n = frame_count(len(audio) / feats.SAMPLE_RATE, data.fps)
        if abs(len(controls) - n) > 2:
            raise ValueError(f"corpus utterance {i} of '{split}': {len(controls)} control frames for "
                             f"{len(audio) / feats.SAMPLE_RATE:.2f} s of audio at {data.fps} fps (expected {n})")
        name = str(_get(item, "name", "id", "utterance") or f"{split}{i:05d}")
        voice = str(_get(item, "voice", "speaker", "style") or "voice")
        phones = _get(item, "phones")
        labels = phone_frames(phones, n, data.fps) if phones is not None and len(phones) else None
        heard = None
        if heard_phones:
            cached = cache_path(path, files.get(name, f"{name}.npz"))
            if not cached.is_file():
                raise FileNotFoundError(f"no cached phone-loop phones for {name} at {cached}: "
                                        "run python -m flame_lipsync.training.cache_phone_features first")
            heard = np.load(cached).astype(np.int64)
        out.append(Utterance(name, voice, audio, controls=_fit_length(controls, n), phones=labels, heard=heard))
        if data.max_utterances and len(out) >= data.max_utterances:
            break
    return out


def augmenter(channel: bool = False):
    """The on-the-fly augmentation, (samples, rate, rng) -> samples, or None without training.augment.

    `training.augment.augment` when that module defines one; otherwise a policy built here from its
    length-preserving primitives (so the targets stay valid): gain +-6 dB, white or pink noise at
    5-30 dB SNR (half the time), a synthetic room (RT60 0.15-0.7 s, a third of the time); with
    `channel` (data.augment_channel), first a random microphone/codec colouring (70 %). A function
    that changes the length is taken as a speed change: targets are re-timed (window_indices)."""
    try:
        from . import augment
    except ImportError:
        return None
    if callable(getattr(augment, "augment", None)):
        return augment.augment

    def policy(samples, rate, rng):
        out = augment.change_gain(samples, rng.uniform(-6.0, 6.0))
        if channel and rng.random() < 0.7:
            out = augment.colour(out, rate, rng)
        if rng.random() < 0.5:
            noise = (augment.white_noise if rng.random() < 0.5 else augment.pink_noise)(len(out), rng)
            out = augment.add_noise(out, noise, rng.uniform(5.0, 30.0))
        if rng.random() < 1 / 3:
            out = augment.reverberate(out, augment.exponential_ir(rate, rng.uniform(0.15, 0.7), rng))
        return np.clip(out, -1.0, 1.0).astype(np.float32)
    return policy


class FrameSet:
    """All frames of a list of utterances as flat tensors: a feature bank (normalised, last row =
    silence), each frame's window indices into it, its style index and targets."""

    def __init__(self, utterances, fps, window, styles, mean, std, device, features=None, time_scales=None,
                 front_end="mel"):
        self.utterances = utterances
        banks, index, style, controls, offsets, labels, starts = [], [], [], [], [], [], []
        base = frame_base = 0
        features = features or [u.features(front_end) for u in utterances]
        for u, f, scale in zip(utterances, features, time_scales or [1.0] * len(utterances)):
            idx = feats.window_indices(np.arange(u.n_frames), fps, window, len(f), scale)
            index.append(np.where(idx >= 0, idx + base, -1))
            banks.append(f)
            style.append(np.full(u.n_frames, styles.get(u.style, -1)))
            if u.controls is not None:
                controls.append(u.controls)
            if u.offsets is not None:
                offsets.append(u.offsets)
            if u.phones is not None:
                labels.append(u.phones)
            starts.append(frame_base + np.arange(u.n_frames))
            base += len(f)
            frame_base += u.n_frames
        bank = np.concatenate(banks + [feats.front_end_silence(front_end)[None]])
        bank = (bank - mean) / std
        index = np.concatenate(index)
        index[index < 0] = len(bank) - 1
        self.n_frames = frame_base
        self.bank = torch.as_tensor(bank.astype(np.float32), device=device)
        self.index = torch.as_tensor(index, device=device)
        self.style = torch.as_tensor(np.concatenate(style), device=device)
        self.controls = (torch.as_tensor(np.concatenate(controls), device=device)
                         if len(controls) == len(utterances) and controls else None)
        self.offsets = (torch.as_tensor(np.concatenate(offsets), device=device)
                        if len(offsets) == len(utterances) and offsets else None)
        self.phones = (torch.as_tensor(np.concatenate(labels), device=device)
                       if len(labels) == len(utterances) and labels else None)
        self.utterance_starts = starts
        self.device = device

    def sequence_starts(self, seq_len: int) -> np.ndarray:
        """Global frame indices where a run of seq_len frames stays inside one utterance."""
        return np.concatenate([s[: max(len(s) - seq_len + 1, 0)] for s in self.utterance_starts])

    def batch(self, frames, n_styles: int):
        """frames: LongTensor of global frame indices -> (windows, style one-hot, controls, offsets, phones)."""
        windows = self.bank[self.index[frames]]
        style_idx = self.style[frames]
        onehot = torch.zeros(len(frames), n_styles, device=self.device)
        known = style_idx >= 0
        onehot[known, style_idx[known]] = 1.0
        onehot[~known] = 1.0 / n_styles  # unseen voice: the average style
        controls = self.controls[frames] if self.controls is not None else None
        offsets = self.offsets[frames].view(len(frames), -1, 3) if self.offsets is not None else None
        phones = self.phones[frames] if self.phones is not None else None
        return windows, onehot, controls, offsets, phones


# ----------------------------------------------------------------------------- synthetic data

def write_synthetic_corpus(root, voices=("va", "vb", "vc", "vd", "ve"), utterances_per_voice: int = 3,
                           seconds: float = 2.0, fps: float = 30.0, seed: int = 0,
                           split=(("train", 3), ("val", 1), ("test", 1))) -> Path:
    """A tiny corpus in the format of training.corpus (what training/build_corpus.py writes), learnable
    from audio: tone bursts whose loudness opens the jaw and whose formant band rounds the lips;
    silence closes them. For tests and smoke runs; the real corpus is `make corpus`."""
    from . import corpus

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sr = feats.SAMPLE_RATE
    split_of, start = {}, 0
    for name, count in split:
        split_of.update({v: name for v in voices[start:start + count]})
        start += count
    records = []
    for v, voice in enumerate(voices):
        (root / voice).mkdir(exist_ok=True)
        for n in range(utterances_per_voice):
            samples = int(seconds * sr)
            t = np.arange(samples) / sr
            syllables = rng.uniform(2.0, 4.0)
            envelope = np.clip(np.sin(2 * np.pi * syllables * t / 2) * 1.5, 0, 1) ** 2
            rounded = (np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) > 0).astype(np.float64)
            formant = np.where(rounded > 0, 400.0, 1800.0)
            audio = envelope * (0.3 * np.sin(2 * np.pi * (110 + 25 * v) * t)
                                + 0.3 * np.sin(2 * np.pi * np.cumsum(formant) / sr))
            audio += rng.normal(0, 1e-3, samples)
            n_frames = frame_count(seconds, fps)
            ft = np.arange(n_frames) / fps
            env_f, round_f = np.interp(ft, t, envelope), np.interp(ft, t, rounded)
            controls = np.zeros((n_frames, len(CONTROLS)), np.float32)
            controls[:, CONTROLS.index("jaw_open")] = 0.8 * env_f * (1 - 0.5 * round_f)
            controls[:, CONTROLS.index("pucker")] = 0.7 * env_f * round_f
            controls[:, CONTROLS.index("stretch")] = 0.5 * env_f * (1 - round_f)
            controls[:, CONTROLS.index("lips_close")] = np.clip(1 - 4 * env_f, 0, 1)
            uid, file = f"{voice}-{n:04d}", f"{voice}/{n:04d}.npz"
            np.savez(root / file, id=uid, split=split_of.get(voice, "train"), voice=voice, text="synthetic",
                     audio=audio.astype(np.float32), rate=sr, controls=controls, fps=fps,
                     phone_labels=np.array([], "<U1"), phone_starts=np.zeros(0), phone_ends=np.zeros(0),
                     source="", augmentation="{}")
            records.append({"id": uid, "file": file, "split": split_of.get(voice, "train"), "voice": voice,
                            "source": ""})
    splits = {name: sorted(v for v in voices if split_of.get(v) == name) for name, _ in split}
    manifest = {"format": corpus.FORMAT_VERSION, "synthetic": True, "sample_rate": sr, "fps": fps,
                "controls": list(CONTROLS), "splits": splits, "utterances": records}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


# ----------------------------------------------------------------------------- progress, plots

class Progress:
    """Progress lines (no tqdm): a bar every `every` of the epoch, with loss, speed and ETA."""

    def __init__(self, epoch, epochs, total, every=0.1, stream=sys.stderr):
        self.epoch, self.epochs, self.total, self.stream = epoch, epochs, total, stream
        self.marks = max(1, int(round(total * every)))
        self.start = time.perf_counter()

    def update(self, step, loss, frames):
        if step != self.total and (step % self.marks or self.total - step < self.marks // 2):
            return
        elapsed = time.perf_counter() - self.start
        done = step / max(self.total, 1)
        bar = "#" * int(20 * done) + "-" * (20 - int(20 * done))
        eta = elapsed / max(done, 1e-9) - elapsed
        print(f"epoch {self.epoch}/{self.epochs} [{bar}] {100 * done:3.0f}% {step}/{self.total} "
              f"loss {loss:.4g} {frames / max(elapsed, 1e-9):,.0f} frames/s eta {eta:.0f}s",
              file=self.stream, flush=True)


def plot_history(history: list[dict], path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].plot(epochs, [h["train_loss"] for h in history], label="train total")
    axes[0].plot(epochs, [h["val_loss"] for h in history], label="val total (held-out voices)")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("epoch")
    axes[0].legend()
    axes[1].plot(epochs, [h["val_mouth_mm"] for h in history], color="C2")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("val mean mouth-vertex error (mm)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ----------------------------------------------------------------------------- training

def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def target_pca(controls, offsets, rig_fields: np.ndarray, k: int) -> dict:
    """PCA of the training targets for each head: {'controls': (mean, components, std),
    'vertices': (...)}, k' = min(k, rank). Vertex targets made by the rig from controls use the
    exact low-rank route; without control targets (VOCASET) the controls head starts from the
    least-squares rig weights of the offsets."""
    if controls is not None:
        return {"controls": pca(controls, min(k, controls.shape[1])),
                "vertices": pca(controls, k, basis=rig_fields)}
    region = np.abs(rig_fields).sum(0) > 0
    fit, *_ = np.linalg.lstsq(rig_fields[:, region].T, offsets[:, region].T, rcond=None)
    return {"controls": pca(fit.T, min(k, rig_fields.shape[0])), "vertices": pca(offsets, k)}


def init_from_pca(model: VOCA, bases: dict):
    """Output layers of both heads from the PCA of the training targets (VOCA's decoder init);
    the mesh autoencoder projects the driving head's targets with the same basis."""
    for name, head in model.heads.items():
        head.init_pca(*bases[name])
    if model.mesh_ae is not None:
        model.mesh_ae.set_pca(*bases[model.cfg.output])


def evaluate(model: VOCA, data: FrameSet, run: RunConfig, rig_fields_t, vertex_weight, active_t, region_t) -> dict:
    """Mean loss terms over all val sequences and the mouth-vertex error (mm) of the driving head.
    `region_t` indexes the mouth vertices within the active subset `active_t` (None: all)."""
    model.eval()
    cfg = model.cfg
    seq = run.train.seq_len
    starts = data.sequence_starts(seq)[::seq]
    sums, count, err_sum, err_n = {}, 0, 0.0, 0
    fields = rig_fields_t.view(cfg.n_controls, cfg.n_vertices, 3)
    if active_t is not None:
        fields = fields[:, active_t]
    fields = fields[:, region_t].reshape(cfg.n_controls, -1)
    with torch.no_grad():
        for i in range(0, len(starts), 256):
            frames = torch.as_tensor(starts[i:i + 256], device=data.device)[:, None] + torch.arange(seq, device=data.device)
            frames = frames.reshape(-1)
            windows, style, controls, offsets, phones = data.batch(frames, cfg.n_styles)
            out = model(windows, style, vertex_index=active_t)
            terms = losses(model, out, controls, offsets, rig_fields_t, vertex_weight, run.loss, seq, phones)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(frames)
            count += len(frames)
            if offsets is not None:
                target = (offsets if active_t is None else offsets[:, active_t])[:, region_t]
            else:
                target = (controls @ fields).view(len(frames), -1, 3)
            if cfg.output == "vertices":
                pred = out["offsets"][:, region_t]
            else:
                pred = (out["controls"] @ fields).view(len(frames), -1, 3)
            err = torch.linalg.norm(pred - target, dim=-1) * 1000.0
            err_sum += float(err.sum())
            err_n += err.numel()
    model.train()
    result = {f"val_{k}": v / max(count, 1) for k, v in sums.items()}
    result["val_loss"] = result.pop("val_total", float("nan"))
    result["val_mouth_mm"] = err_sum / max(err_n, 1)
    return result


def _lr(run: RunConfig, step: int, total: int) -> float:
    t = run.train
    return t.lr_min + 0.5 * (t.lr - t.lr_min) * (1 + math.cos(math.pi * min(step / max(total, 1), 1.0)))


def train(config, resume: bool = False, log=None) -> dict:
    """Train from a config (path or dict). Returns a summary dict (best score, export path, ...)."""
    run = RunConfig.load(config)
    threads = torch.get_num_threads()
    if run.train.threads:
        torch.set_num_threads(run.train.threads)
    try:
        return _train(run, resume, log or (lambda *a: print(*a, file=sys.stderr, flush=True)))
    finally:
        torch.set_num_threads(threads)


def _train(run: RunConfig, resume: bool, log) -> dict:
    t = run.train
    if t.seq_len < 1 or t.batch_size < 1 or t.epochs < 1:
        raise ValueError("seq_len, batch_size and epochs must be at least 1")
    device = _device(t.device)
    out_dir = run.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    checkpoint = None
    if resume:
        if not last_path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {last_path}")
        checkpoint = torch.load(last_path, map_location="cpu", weights_only=True)
        if checkpoint["config"]["model"] != run.model:
            raise ValueError(f"--resume: {last_path} was trained with another model config")

    # data
    started = time.perf_counter()
    front_end = ModelConfig.from_dict(dict(run.model)).front_end
    heard = front_end == "mel+phones"
    if heard and run.data.augment:
        raise ValueError("the mel+phones front end reads cached phone-loop phones, which on-the-fly "
                         "augmentation would invalidate: set data.augment=false (the corpus's own "
                         "augmented copies still train)")
    train_utts = load_utterances(run.data, "train", heard)
    val_utts = load_utterances(run.data, "val", heard)
    if not train_utts:
        raise ValueError(f"no training utterances in {run.data.path} ({run.data.format})")
    rig = load_rig()
    rig_fields = rig.fields.reshape(len(CONTROLS), -1).astype(np.float64)
    styles = sorted({u.style for u in train_utts})

    train_features = [u.features(front_end) for u in train_utts]
    if checkpoint is not None:
        model_dict = checkpoint["resolved_model"]
        mean, std = checkpoint["norm_mean"].numpy(), checkpoint["norm_std"].numpy()
    else:
        model_dict = dict(run.model, n_styles=len(styles), style_names=styles)
        k = ModelConfig.from_dict(model_dict).pca_components
        bases = target_pca(np.concatenate([u.controls for u in train_utts]) if train_utts[0].controls is not None else None,
                           np.concatenate([u.offsets for u in train_utts]) if train_utts[0].controls is None else None,
                           rig_fields, k)
        model_dict.update(controls_k=len(bases["controls"][1]), vertex_k=len(bases["vertices"][1]))
        mean, std = feats.feature_stats(train_features)
    cfg = ModelConfig.from_dict(model_dict)
    style_index = {name: i for i, name in enumerate(cfg.style_names)}
    train_set = FrameSet(train_utts, run.data.fps, cfg.window, style_index, mean, std, device, train_features,
                         front_end=front_end)
    val_set = (FrameSet(val_utts, run.data.fps, cfg.window, style_index, mean, std, device, front_end=front_end)
               if val_utts else None)
    log(f"data: {len(train_utts)} train utterances ({train_set.n_frames} frames, {len(styles)} styles), "
        f"{len(val_utts)} val ({val_set.n_frames if val_set else 0} frames) in {time.perf_counter() - started:.1f}s")

    # model
    torch.manual_seed(t.seed)
    model = VOCA(cfg).to(device)
    if checkpoint is None:
        init_from_pca(model, bases)
    else:
        model.load_state_dict(checkpoint["model"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    if checkpoint is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
    rig_fields_t = torch.as_tensor(rig_fields, dtype=torch.float32, device=device)
    lip = np.zeros(cfg.n_vertices, np.float32)
    lip_fields = rig.fields[[CONTROLS.index("lips_close"), CONTROLS.index("lips_press")]]
    lip_norm = np.linalg.norm(lip_fields, axis=-1).max(0)
    lip[lip_norm > 0.1 * lip_norm.max()] = 1.0
    vertex_weight = torch.as_tensor(1.0 + (run.loss.lip_weight - 1.0) * lip, device=device)
    # vertices that move in the training targets: the vertex head trains on those only (the rig
    # moves 961 of 5023: 5x less work); the others keep their PCA initialisation (no motion)
    if train_set.controls is not None:
        active = rig.region_index
    else:
        moving = np.flatnonzero(np.abs(train_set.offsets.view(train_set.n_frames, -1, 3).cpu().numpy()).max((0, 2)) > 0)
        active = None if len(moving) == cfg.n_vertices else moving
    active_t = None if active is None else torch.as_tensor(active, device=device)
    region = rig.region_index if active is None else np.flatnonzero(np.isin(active, rig.region_index))
    region_t = torch.as_tensor(region, device=device)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f} M parameters, heads {cfg.heads} (output: {cfg.output}), "
        f"dense={cfg.dense} attention={cfg.attention} guidance={cfg.guidance}, k={cfg.controls_k}/{cfg.vertex_k}, "
        f"device {device}")

    history = list(checkpoint["history"]) if checkpoint else []
    best = dict(checkpoint["best"]) if checkpoint else {"epoch": 0, "score": float("inf")}
    first_epoch = checkpoint["epoch"] + 1 if checkpoint else 1
    starts_all = train_set.sequence_starts(t.seq_len)
    steps = t.steps_per_epoch or max(1, len(starts_all) // t.batch_size)
    total_steps = steps * t.epochs
    augment = augmenter(run.data.augment_channel) if run.data.augment else None
    if run.data.augment and augment is None:
        log("data.augment is on but training.augment is not importable: training without on-the-fly augmentation")
    export_path = _project_path(t.export) if t.export else out_dir / "model.npz"
    train_started = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)  # resumed: time adds up

    def save(path, epoch):
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                    "history": history, "best": best, "config": run.to_dict(), "resolved_model": cfg.to_dict(),
                    "norm_mean": torch.as_tensor(mean), "norm_std": torch.as_tensor(std)}, path)

    for epoch in range(first_epoch, t.epochs + 1):
        rng = np.random.default_rng([t.seed, epoch])
        data = train_set
        if augment is not None:
            augmented, scales = [], []
            for u in train_utts:
                a = np.asarray(augment(u.audio, feats.SAMPLE_RATE, rng), np.float32)
                augmented.append(u.features(front_end, audio=a))
                scales.append(len(a) / max(len(u.audio), 1))
            data = FrameSet(train_utts, run.data.fps, cfg.window, style_index, mean, std, device,
                            features=augmented, time_scales=scales, front_end=front_end)
        order = rng.permutation(starts_all)
        if len(order) < steps * t.batch_size:
            order = np.concatenate([order, rng.choice(starts_all, steps * t.batch_size - len(order))])
        progress = Progress(epoch, t.epochs, steps, t.log_every)
        running, frames_seen = 0.0, 0
        for step in range(1, steps + 1):
            global_step = (epoch - 1) * steps + step - 1
            for group in optimizer.param_groups:
                group["lr"] = _lr(run, global_step, total_steps)
            starts = torch.as_tensor(order[(step - 1) * t.batch_size: step * t.batch_size], device=device)
            frames = (starts[:, None] + torch.arange(t.seq_len, device=device)).reshape(-1)
            windows, style, controls, offsets, phones = data.batch(frames, cfg.n_styles)
            if run.data.phone_dropout and front_end == "mel+phones":
                hidden = torch.rand(len(windows), device=device) < run.data.phone_dropout
                windows[hidden, :, feats.N_FEATURES:] = 0.0  # normalised: the training mean
            out = model(windows, style, vertex_index=active_t)
            terms = losses(model, out, controls, offsets, rig_fields_t, vertex_weight, run.loss, t.seq_len, phones)
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            if t.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            optimizer.step()
            running += terms["total"].item()
            frames_seen += len(frames)
            progress.update(step, running / step, frames_seen)
        record = {"epoch": epoch, "train_loss": running / steps, "lr": _lr(run, epoch * steps, total_steps),
                  "seconds": time.perf_counter() - train_started}
        if val_set is not None:
            record.update(evaluate(model, val_set, run, rig_fields_t, vertex_weight, active_t, region_t))
        else:  # no held-out voices: judge on the training set (said in the log)
            record.update(evaluate(model, train_set, run, rig_fields_t, vertex_weight, active_t, region_t))
        history.append(record)
        improved = record["val_mouth_mm"] < best["score"]
        if improved:
            best = {"epoch": epoch, "score": record["val_mouth_mm"]}
        save(last_path, epoch)
        if improved:
            save(best_path, epoch)
        (out_dir / "history.json").write_text(json.dumps(history, indent=1))
        plot_history(history, out_dir / "loss.png")
        log(f"epoch {epoch}: train {record['train_loss']:.4g}  val {record['val_loss']:.4g}  "
            f"val mouth error {record['val_mouth_mm']:.3f} mm{'  (best)' if improved else ''}"
            f"{'' if val_set else ' [no val split: scored on train]'}")
        if t.patience and epoch - best["epoch"] >= t.patience:
            log(f"early stop: no better val score for {t.patience} epochs")
            break

    # export the best weights
    best_state = torch.load(best_path if best_path.is_file() else last_path, map_location="cpu", weights_only=True)
    model.load_state_dict(best_state["model"])
    export_weights(model, export_path, mean, std, extra={
        "name": run.name, "trained_epochs": len(history), "best_epoch": best["epoch"],
        "val_mouth_mm": best["score"], "data": asdict(run.data), "train": asdict(t), "loss": asdict(run.loss),
        "train_seconds": history[-1]["seconds"] if history else 0.0,
        "train_styles": list(cfg.style_names)})
    size = export_path.stat().st_size
    log(f"exported {export_path} ({size / 1e6:.2f} MB) from epoch {best['epoch']} "
        f"(val mouth error {best['score']:.3f} mm); curves in {out_dir / 'loss.png'}")
    return {"export": str(export_path), "best_epoch": best["epoch"], "best_score": best["score"],
            "history": history, "out_dir": str(out_dir), "size_bytes": size}


def main(argv=None) -> int:
    import argparse
    parser = argparse.ArgumentParser(description="train the neural lip-sync network")
    parser.add_argument("--config", required=True)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    train(args.config, resume=args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
