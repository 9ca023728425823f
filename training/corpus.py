"""Read the synthetic corpus that training/build_corpus.py writes (`make corpus`).

    from flame_lipsync.training.corpus import load_manifest, iter_utterances
    manifest = load_manifest("out/corpus")
    for utt in iter_utterances("out/corpus", "train"):
        utt.audio      # (n,) float32, 16 kHz mono
        utt.controls   # (T, 10) float32, frame i at t = i / utt.fps (core.rig.CONTROLS order)
        utt.voice      # "espeak:en-us+m3", ...: the speaking-style label

Splits are by voice: no val/test voice speaks in train. Augmented copies carry
`source` (the clean utterance's id) and `augmentation` (what was done); pass
augmented=False for clean speech only. The controls are head-independent; for
vertex targets on any FLAME-topology head use `vertex_offsets`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")


@dataclass
class Utterance:
    id: str
    split: str
    voice: str
    text: str
    audio: np.ndarray        # (n,) float32 mono
    rate: int                # Hz (16000)
    controls: np.ndarray     # (T, C) float32 teacher targets
    fps: float
    phones: list = field(default_factory=list)  # [(label, start s, end s)] tiling the audio
    source: str = ""         # clean utterance this was augmented from; "" when clean
    augmentation: dict = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.rate

    @property
    def augmented(self) -> bool:
        return bool(self.source)


def manifest_file(path) -> Path:
    path = Path(path)
    return path / "manifest.json" if path.is_dir() or path.suffix != ".json" else path


def load_manifest(path) -> dict:
    """The corpus manifest (a corpus folder or its manifest.json)."""
    file = manifest_file(path)
    if not file.is_file():
        raise FileNotFoundError(f"No corpus manifest at {file}: build the corpus with `make corpus` "
                                f"(or python training/build_corpus.py --out {file.parent}).")
    with open(file, encoding="utf-8") as f:
        manifest = json.load(f)
    if manifest.get("format") != FORMAT_VERSION:
        raise ValueError(f"{file} has corpus format {manifest.get('format')}, this code reads "
                         f"{FORMAT_VERSION}: rebuild it with `make corpus`.")
    manifest["_root"] = str(file.parent)
    return manifest


def load_utterance(file) -> Utterance:
    """One utterance's .npz (no pickle: every field is a plain array)."""
    with np.load(file, allow_pickle=False) as z:
        phones = [(str(l), float(a), float(b))
                  for l, a, b in zip(z["phone_labels"], z["phone_starts"], z["phone_ends"])]
        return Utterance(id=str(z["id"]), split=str(z["split"]), voice=str(z["voice"]),
                         text=str(z["text"]), audio=z["audio"].astype(np.float32, copy=False),
                         rate=int(z["rate"]), controls=z["controls"].astype(np.float32, copy=False),
                         fps=float(z["fps"]), phones=phones, source=str(z["source"]),
                         augmentation=json.loads(str(z["augmentation"])))


def select(manifest: dict, split: str | None = None, augmented: bool | None = None,
           voices=None) -> list[dict]:
    """Manifest records of one split (None: all), clean only (augmented=False),
    augmented only (True) or both (None), optionally only some voices."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split '{split}': choose one of {', '.join(SPLITS)}")
    voices = set(voices) if voices is not None else None
    return [u for u in manifest["utterances"]
            if (split is None or u["split"] == split)
            and (augmented is None or bool(u["source"]) == augmented)
            and (voices is None or u["voice"] in voices)]


def iter_utterances(path, split: str | None = None, augmented: bool | None = None,
                    voices=None, shuffle_seed: int | None = None) -> Iterator[Utterance]:
    """Utterances of `split` ("train", "val", "test" or None for all), loaded one
    at a time, in manifest order or shuffled by `shuffle_seed`."""
    manifest = path if isinstance(path, dict) else load_manifest(path)
    root = Path(manifest["_root"])
    records = select(manifest, split, augmented, voices)
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(records))
        records = [records[i] for i in order]
    for record in records:
        yield load_utterance(root / record["file"])


def voice_index(manifest: dict, split: str = "train") -> dict[str, int]:
    """Stable voice -> index map (the speaking-style one-hot) for a split's voices."""
    return {v: i for i, v in enumerate(sorted(manifest["splits"][split]))}


def vertex_offsets(controls, head=None) -> np.ndarray:
    """(T, C) controls -> (T, 5023, 3) vertex offsets in metres through the rig;
    with `head` ((5023, 3) vertices of any FLAME-topology head), in that head's
    own axes and scale (core.rig.Rig.fields_for)."""
    from ..core.rig import load_rig
    rig = load_rig()
    weights = np.asarray(controls, np.float32)
    if head is None:
        return rig.offsets(weights)
    fields = rig.fields_for(np.asarray(head, np.float32))
    return np.einsum("tc,cvk->tvk", weights, fields).astype(np.float32)
