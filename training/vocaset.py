"""VOCASET-format loader (Cudeiro et al. 2019), for anyone who has the licence-gated data.

The folder holds the four files of the public release:
  data_verts.npy          (N, 5023, 3) float32 registered meshes, 60 fps, all sequences stacked
  raw_audio_fixed.pkl     subject -> sentence -> {'audio': samples, 'sample_rate': Hz}
  templates.pkl           subject -> (5023, 3) neutral mesh
  subj_seq_to_idx.pkl     subject -> sentence -> {frame number: row of data_verts}
(pickles written by Python 2, read with encoding='latin1'; frame k is at t = k / 60 s).

`load_split(root, 'train')` gives `Sequence`s with 16 kHz mono audio and vertex offsets from the
subject's template at 30 fps (every other 60 fps frame), split 8/2/2 by subject as in
VOCA / FaceFormer. Pickles are read with an unpickler that only builds numpy arrays and plain
containers: a crafted file cannot run code.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.flame import VERTEX_COUNT

TRAIN_SUBJECTS = (
    "FaceTalk_170728_03272_TA", "FaceTalk_170904_00128_TA", "FaceTalk_170725_00137_TA",
    "FaceTalk_170915_00223_TA", "FaceTalk_170811_03274_TA", "FaceTalk_170913_03279_TA",
    "FaceTalk_170904_03276_TA", "FaceTalk_170912_03278_TA",
)
VAL_SUBJECTS = ("FaceTalk_170811_03275_TA", "FaceTalk_170908_03277_TA")
TEST_SUBJECTS = ("FaceTalk_170809_00138_TA", "FaceTalk_170731_00024_TA")
SPLITS = {"train": TRAIN_SUBJECTS, "val": VAL_SUBJECTS, "test": TEST_SUBJECTS}
CAPTURE_FPS = 60
FILES = ("data_verts.npy", "raw_audio_fixed.pkl", "templates.pkl", "subj_seq_to_idx.pkl")


@dataclass
class Sequence:
    subject: str
    sentence: str
    audio: np.ndarray      # (n,) float32, 16 kHz mono, [-1, 1]
    offsets: np.ndarray    # (T, 5023, 3) float32 metres from `template`, frame i at t = i / fps
    template: np.ndarray   # (5023, 3) float32
    fps: float


# ----------------------------------------------------------------------------- safe pickles

class _SafeUnpickler(pickle.Unpickler):
    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
        ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
        ("__builtin__", "dict"), ("__builtin__", "list"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a VOCASET pickle")
        return super().find_class(module, name)


def load_pickle(path):
    with open(path, "rb") as handle:
        return _SafeUnpickler(handle, encoding="latin1").load()


# ----------------------------------------------------------------------------- loading

def _as_float_audio(audio) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim == 2:  # (n, channels) or (channels, n): mix to mono
        audio = audio.mean(axis=1 if audio.shape[0] > audio.shape[1] else 0)
    if np.issubdtype(audio.dtype, np.integer):
        return (audio.astype(np.float32) / float(np.iinfo(audio.dtype).max + 1)).astype(np.float32)
    audio = audio.astype(np.float32)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return audio / 32768.0 if peak > 1.5 else audio  # int16-scaled floats (as VOCA's tools wrote)


def check_folder(root) -> Path:
    root = Path(root)
    missing = [f for f in FILES if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(f"VOCASET folder {root} lacks {', '.join(missing)}: point the config's "
                                f"data.path at the folder with the four files of the VOCASET release")
    return root


def load_split(root, split: str = "train", fps: float = 30.0, subjects=None,
               sentences_per_subject: int | None = None) -> list[Sequence]:
    """Sequences of one split ('train' / 'val' / 'test', or explicit `subjects`).

    `fps` must divide 60 (30: every other captured frame). Captured frame k becomes frame k / step;
    frames the capture lacks (gaps, a first frame number above 0) take the nearest captured one."""
    from ..core.audio import resample

    root = check_folder(root)
    step = CAPTURE_FPS / fps
    if abs(step - round(step)) > 1e-9 or step < 1:
        raise ValueError(f"fps must divide {CAPTURE_FPS}, got {fps}")
    step = int(round(step))
    subjects = SPLITS[split] if subjects is None else tuple(subjects)
    verts = np.load(root / "data_verts.npy", mmap_mode="r")
    if verts.ndim != 3 or verts.shape[1:] != (VERTEX_COUNT, 3):
        raise ValueError(f"data_verts.npy has shape {verts.shape}, expected (N, {VERTEX_COUNT}, 3)")
    audio = load_pickle(root / "raw_audio_fixed.pkl")
    templates = load_pickle(root / "templates.pkl")
    index = load_pickle(root / "subj_seq_to_idx.pkl")
    out = []
    for subject in subjects:
        if subject not in index:
            continue  # a partial copy of the dataset: use what is there
        template = np.asarray(templates[subject], np.float32)
        names = sorted(index[subject])
        if sentences_per_subject:
            names = names[:sentences_per_subject]
        for sentence in names:
            if sentence not in audio.get(subject, {}):
                continue
            frames = index[subject][sentence]
            numbers = np.array(sorted(int(k) for k in frames))
            rows = np.array([frames[k] for k in sorted(frames, key=int)])
            wanted = np.arange(0, numbers.max() // step + 1) * step
            nearest = np.clip(np.searchsorted(numbers, wanted), 0, len(numbers) - 1)
            before = np.clip(nearest - 1, 0, len(numbers) - 1)
            nearest = np.where(np.abs(numbers[before] - wanted) <= np.abs(numbers[nearest] - wanted), before, nearest)
            offsets = np.asarray(verts[rows[nearest]], np.float32) - template[None]
            record = audio[subject][sentence]
            samples = _as_float_audio(record["audio"])
            rate = int(record["sample_rate"])
            if rate != 16000:
                samples = resample(samples, rate, 16000)
            out.append(Sequence(subject, sentence, samples.astype(np.float32), offsets, template, float(fps)))
    return out


# ----------------------------------------------------------------------------- a synthetic copy (tests)

def write_synthetic(root, subjects=None, sentences: int = 2, seconds: float = 1.0, sample_rate: int = 22000,
                    seed: int = 0, first_frame: int = 0) -> Path:
    """Write a small dataset in exactly the VOCASET layout (protocol-2 pickles, int16 audio at
    22 kHz, 60 fps meshes): the mouth opens with the loudness of a tone burst, so there is
    something to learn. Returns the folder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    subjects = subjects or TRAIN_SUBJECTS + VAL_SUBJECTS + TEST_SUBJECTS
    base = rng.normal(0, 0.05, (VERTEX_COUNT, 3)).astype(np.float32)
    direction = np.zeros((VERTEX_COUNT, 3), np.float32)
    direction[: VERTEX_COUNT // 10, 1] = -0.01  # a "jaw" that drops 1 cm
    verts, audio, templates, index = [], {}, {}, {}
    row = 0
    for s, subject in enumerate(subjects):
        templates[subject] = base + rng.normal(0, 0.002, base.shape).astype(np.float32)
        audio[subject], index[subject] = {}, {}
        for n in range(sentences):
            sentence = f"sentence{n + 1:02d}"
            n_samples = int(seconds * sample_rate)
            t = np.arange(n_samples) / sample_rate
            envelope = 0.5 - 0.5 * np.cos(2 * np.pi * t * rng.uniform(1.5, 3.0))
            wave = envelope * np.sin(2 * np.pi * (150 + 20 * s) * t) * 0.5
            audio[subject][sentence] = {"audio": (wave * 32767).astype(np.int16), "sample_rate": sample_rate}
            n_frames = int(seconds * CAPTURE_FPS)
            frame_env = np.interp(np.arange(n_frames) / CAPTURE_FPS, t, envelope)
            index[subject][sentence] = {}
            for k in range(first_frame, n_frames):
                verts.append(templates[subject] + frame_env[k] * direction)
                index[subject][sentence][k] = row
                row += 1
    np.save(root / "data_verts.npy", np.stack(verts).astype(np.float32))
    for name, obj in (("raw_audio_fixed.pkl", audio), ("templates.pkl", templates), ("subj_seq_to_idx.pkl", index)):
        with open(root / name, "wb") as handle:
            pickle.dump(obj, handle, protocol=2)
    return root
