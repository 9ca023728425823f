"""Phone front end: what pocketsphinx's phone loop hears, as per-frame phone posteriors.

VOCA fed its network DeepSpeech's per-frame character posteriors for speaker
independence. The recogniser here is pocketsphinx (core.phones.recognize, the
phonetic engine's no-transcript path); its Python API gives the 1-best phone
sequence, not a lattice, so each 50 fps feature frame gets a one-hot over the
40 phones (39 ARPAbet + SIL): a hard posterior. Columns follow PHONES.

The same 40 phones are the classes of the network's phone head (models.voca),
whose targets are the teacher's forced-aligned phones.
"""
from __future__ import annotations

import numpy as np

from ..core.phones import ARPABET, SIL

from . import features as feats

PHONES = tuple(sorted(ARPABET)) + (SIL,)
PHONE_INDEX = {p: i for i, p in enumerate(PHONES)}
BILABIAL_CLASSES = ("B", "M", "P")


def phone_frames(phones, n_frames: int, rate: float) -> np.ndarray:
    """(n_frames,) int64 index into PHONES of the phone sounding at time i / rate;
    phones are (label, start, end) tiling the audio. Unknown labels and times past
    the last phone count as SIL."""
    out = np.full(n_frames, PHONE_INDEX[SIL], np.int64)
    if not phones or n_frames == 0:
        return out
    phones = [tuple(p) if isinstance(p, (tuple, list)) else (p.label, p.start, p.end) for p in phones]
    labels = [PHONE_INDEX.get(str(p[0]), PHONE_INDEX[SIL]) for p in phones]
    starts = np.array([float(p[1]) for p in phones])
    ends = np.array([float(p[2]) for p in phones])
    times = np.arange(n_frames) / rate
    which = np.searchsorted(starts, times, side="right") - 1
    inside = (which >= 0) & (times < ends[np.clip(which, 0, None)] + 1e-9)
    out[inside] = np.asarray(labels)[which[inside]]
    return out


def one_hot(indices: np.ndarray) -> np.ndarray:
    out = np.zeros((len(indices), len(PHONES)), np.float32)
    out[np.arange(len(indices)), indices] = 1.0
    return out


def _recognize(samples):
    from ..core.phones import recognize
    return recognize(samples, feats.SAMPLE_RATE)


def phone_posteriors(samples: np.ndarray) -> np.ndarray:
    """16 kHz mono -> (features.n_feature_frames(len), 40) float32 one-hot phone-loop phones
    (all SIL for empty or silent audio)."""
    samples = np.asarray(samples, np.float32).reshape(-1)
    n = feats.n_feature_frames(len(samples)) if samples.size else 0
    if n == 0:
        return np.zeros((0, len(PHONES)), np.float32)
    if not np.any(samples):
        return one_hot(np.full(n, PHONE_INDEX[SIL]))
    return one_hot(phone_frames(_recognize(samples), n, feats.FEATURE_RATE))


def phone_indices(samples: np.ndarray) -> np.ndarray:
    """Like phone_posteriors, as (n,) int8 indices into PHONES (compact, for caches)."""
    return phone_posteriors(samples).argmax(1).astype(np.int8) if len(samples) else np.zeros(0, np.int8)


def cache_path(corpus_root, file: str, cache_root=None):
    """Where the phone-loop indices of corpus file `file` (relative to the corpus) are cached:
    beside the corpus in <corpus>_phone_features/ (gitignored under out/)."""
    from pathlib import Path
    root = Path(cache_root) if cache_root else Path(str(corpus_root).rstrip("/") + "_phone_features")
    return (root / file).with_suffix(".npy")
