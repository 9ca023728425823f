"""Build the synthetic training corpus for the neural engine (teacher -> student).

    python training/build_corpus.py --out out/corpus [--sentences N] [--seed S]
    make corpus                      # installs the synthesizers, then runs this

Sentences (training/sentences.txt, then sentences generated from word lists) are
spoken by many voices of the offline synthesizers (espeak-ng accents x
variants, flite and festival voices), each utterance with its own rate and
pitch. The targets are the phonetic engine's controls from FORCED ALIGNMENT of
the clean synthesized audio to the known sentence (core.phonetic.animate with
the transcript): (T, 10) float32 at frame times i / 30 s, plus the phones.
An utterance is kept only if the alignment is usable: no fallback to phone-loop
recognition, loud audio inside the aligned speech, and, for espeak-ng (whose
library reports the phonemes it spoke and when), every aligned P/B/M within
60 ms of the synthesizer's own; otherwise it is synthesized again with other
prosody, and after ATTEMPTS tries recorded as rejected in the manifest.

Then augmented copies: noise (white / pink / babble of other train utterances)
at a random SNR, synthetic reverberation, pitch / formant / speed / tempo
shifts, gain, silence padding (models/augment.py). Where the timing changes
(speed, tempo, padding) the targets are recomputed by the teacher's own
coarticulation from the time-scaled phones; otherwise they are copied.

Whole voices are held out for validation and test (HELD_OUT); the manifest
records splits, voices, the command, the seed and the counts. Output:
    OUT/manifest.json
    OUT/utt/<id>.npz   audio (float32 16 kHz mono), controls (T, 10), fps, rate,
                       voice, text, split, phone_labels / phone_starts / phone_ends,
                       source (clean id of an augmented copy), augmentation (JSON)
Load it with models/corpus.py.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
from ..core.audio import Speech, loudness_envelope, speech_from_array
from ..core.rig import CONTROLS
from . import augment

SENTENCE_FILE = ROOT / "training" / "sentences.txt"
RATE = 16000
FPS = 30.0
FORMAT_VERSION = 1
MAX_DURATION = 20.0  # s: longer synthesized utterances are rejected
ATTEMPTS = 4  # syntheses (fresh prosody each) before an utterance is given up

# Defaults sized for ~10-15 minutes on a 2-core machine (see `make corpus`).
DEFAULT_SENTENCES = 750
DEFAULT_PER_SENTENCE = 2       # train voices speaking each sentence
DEFAULT_HELDOUT_SENTENCES = 60  # sentences spoken by each held-out voice
DEFAULT_AUGMENTED = 1           # augmented copies per clean utterance

# ------------------------------------------------------------------- sentences
# Word lists for generated sentences: bilabial-heavy, and every rarer phone
# (ZH, OY, UH, AW, TH, DH, CH, JH, NG, Y) appears in several words. All words are
# in pocketsphinx's cmudict; `generate_sentences` drops any sentence that is not.

NAMES = ("Pam Bob Mabel Pablo Emma Ben Molly Peter Bill Paul Tom Amy Jim Beth Sam George "
         "Judy Joe Ruth Zoe Hugh Roy Joy Owen Mike Barbara Bobby Philip Martha Jasmine "
         "Abby Ruby Maya Jacob Thomas Elizabeth Matthew Pamela Sophie Mary").split()
ADJECTIVES = ("big small purple brown empty bumpy plump warm cheap smooth beige yellow shiny "
              "noisy loyal huge rough thick cold pale damp happy simple broken famous wooden "
              "young lovely bright old tiny heavy soft sharp moist precious pink blue "
              "bumpy ample superb pleasant humble boring").split()
NOUNS = ("map pump bag lamp boat book bottle pebble drum pillow mirror treasure garage jacket "
         "cheese fish ship bench umbrella basket bubble pumpkin marble blanket piano pipe "
         "pocket rope comb whistle toy coin oyster cow owl house mouse shoe spoon moon "
         "hood puppy pony apple plum cabbage mop bucket bomb paper hammer helmet brush "
         "sandwich badge judge puzzle thermometer bathtub").split()
PAST = ("bought grabbed dropped brought moved pushed packed kept borrowed painted washed "
        "fixed found took opened measured stamped swapped buried polished wrapped sold "
        "showed threw chose bumped lost hid passed pulled").split()
BASE = ("buy grab drop bring move push pack keep borrow paint wash fix find take open "
        "measure stamp swap bury polish wrap sell show throw choose bump lose hide pass "
        "pull").split()
PLACES = ("the market|the museum|the beach|the pub|the bridge|the barn|the bathroom|the "
          "basement|the harbor|the temple|the pool|the boat|the playground|the bakery|the "
          "embassy|the pharmacy|the campsite|the orchard|the workshop|the garden|the "
          "mountain|the cupboard|the shop|the bus stop|the parking lot").split("|")
TIMES = ("by Monday|in the morning|at midnight|before supper|last summer|every September|"
         "in a moment|on Thursday|after the match|this afternoon|at noon|in the evening|"
         "by the end of the month|before breakfast|in November|every weekend").split("|")
PREPOSITIONS = "in|by|near|behind|beneath|above|beside|from|to|past".split("|")
INTERJECTIONS = "Oh|Well|Hmm|Look|Wait|Please|Yes|No|Okay|Listen|Wow|Hey".split("|")
PLURALS = ("maps pumps bags lamps boats books bottles pebbles drums pillows mirrors coins "
           "toys oysters spoons apples plums buckets puppies bubbles boxes").split()

TEMPLATES = (
    "{Name} {past} the {adj} {noun} {prep} {place}.",
    "Did {name} {base} the {adj} {noun} {time}?",
    "Why did {name} {base} the {noun}, and who {past} the {noun2}?",
    "{Interj}, {name}! Somebody {past} my {adj} {noun}.",
    "The {adj} {noun} is {prep} {place}; the {noun2} is not.",
    "{Name} and {name2} {past} a {adj} {noun} {time}, but {name3} {past2} it back.",
    "Where is the {adj} {noun} that {name} {past}?",
    "Please {base} the {noun} {prep} {place}, then {base2} the {noun2}.",
    "If the {noun} is {adj}, {base} it {time}.",
    "{Time}, {name} {past} {number} {plural} {prep} {place}.",
    "Is the {noun} {adj}, or is it {adj2}?",
    "{Interj}... maybe {name} {past} the {noun} {prep} {place}.",
    "Was it {name} who {past} the {adj} {noun}, or was it {name2}?",
    "My {adj} {noun} and your {adj2} {noun2} are both {prep} {place}.",
    "{Name} {past} the {noun}; {name2} {past2} the {noun2}; nobody {past3} the {noun3}.",
    "When will {name} {base} the {adj} {noun}?",
    "Remember: {base} the {noun} {time}, not {time2}.",
    "How many {plural} did {name} {base} {time}?",
    "{Name}, could you {base} the {adj} {noun} for me, please?",
    "{Time}, the {adj} {noun} was {prep} {place}, and {name} was happy.",
)


def read_sentences(path: Path = SENTENCE_FILE) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]


def _fill(template: str, rng: np.random.Generator) -> str:
    def pick(pool):
        return pool[int(rng.integers(len(pool)))]

    values = {}
    for key in re.findall(r"\{(\w+)\}", template):
        base = key.rstrip("0123456789").lower()
        pool = {"name": NAMES, "adj": ADJECTIVES, "noun": NOUNS, "past": PAST, "base": BASE,
                "place": PLACES, "time": TIMES, "prep": PREPOSITIONS, "interj": INTERJECTIONS,
                "plural": PLURALS}.get(base)
        if base == "number":
            value = str(int(rng.integers(2, 60)))
        else:
            value = pick(pool)
            while value in values.values() and len(pool) > 5:  # no "Pam and Pam"
                value = pick(pool)
        values[key] = value[0].upper() + value[1:] if key[0].isupper() else value
    return template.format(**values)


def generate_sentences(n: int, seed: int, base: list[str] | None = None) -> list[str]:
    """The first n of: the written sentences, then template sentences (seeded),
    all unique and made only of words the aligner's dictionary knows."""
    from ..core.phones import _dictionary, normalise_transcript
    sentences = list(base if base is not None else read_sentences())[:n]
    rng = np.random.default_rng([seed, 7])
    known, seen = _dictionary(), set(sentences)
    tries = 0
    while len(sentences) < n:
        tries += 1
        if tries > 100 * n:
            raise RuntimeError(f"could not generate {n} distinct sentences from the word lists")
        s = _fill(TEMPLATES[int(rng.integers(len(TEMPLATES)))], rng)
        words = re.findall(r"[a-z']+", s.lower())
        if s in seen or not all(w in known for w in words):
            continue
        if len(normalise_transcript(s)) < 3:
            continue
        seen.add(s)
        sentences.append(s)
    return sentences


# ---------------------------------------------------------------------- voices

@dataclass(frozen=True)
class Voice:
    engine: str  # "espeak" (espeak-ng), "flite" or "festival"
    name: str    # espeak "en-us+m3", flite "slt", festival "kal_diphone"

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.name}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9-]+", "_", self.id)

    @staticmethod
    def parse(text: str) -> "Voice":
        engine, _, name = text.partition(":")
        if engine not in SYNTHESIZERS or not name:
            raise ValueError(f"voice '{text}': write ENGINE:NAME with ENGINE one of "
                             f"{', '.join(SYNTHESIZERS)} (e.g. espeak:en-us+m3, flite:slt)")
        return Voice(engine, name)


SYNTHESIZERS = {"espeak": "espeak-ng", "flite": "flite", "festival": "text2wave"}

# espeak-ng: 8 English accents x 3 of its voice variants each (m1-m6, f1-f4, and the
# accent's own voice); variants m7 and f5 are never trained on (held out below).
_ESPEAK_TRAIN = {
    "en-us": ("", "m3", "f2"), "en": ("m1", "f1", "m6"), "en-gb-scotland": ("m2", "f3", "m4"),
    "en-gb-x-rp": ("m5", "f4", ""), "en-gb-x-gbclan": ("m3", "f1", "m2"),
    "en-gb-x-gbcwmd": ("", "f2", "m6"), "en-029": ("m1", "f3", "m5"),
    "en-us-nyc": ("m4", "f4", ""),
}
TRAIN_VOICES = tuple(
    [Voice("espeak", accent + (f"+{v}" if v else "")) for accent, vs in _ESPEAK_TRAIN.items() for v in vs]
    + [Voice("flite", "slt"), Voice("flite", "kal16"),
       Voice("festival", "kal_diphone"), Voice("festival", "cmu_us_slt_arctic_hts")])
# Held out entirely: speakers (synthesis models / variants) no train voice uses.
HELD_OUT = {
    "val": (Voice("espeak", "en-gb-x-rp+f5"), Voice("flite", "rms")),
    "test": (Voice("espeak", "en-us+m7"), Voice("flite", "awb"), Voice("festival", "ked_diphone")),
}
APT_PACKAGES = "espeak-ng festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts flite"


def synthesizer_available(engine: str) -> bool:
    return shutil.which(SYNTHESIZERS[engine]) is not None


def _festival_voices() -> set[str]:
    try:
        out = subprocess.run(["festival", "--pipe"], input="(print (voice.list))\n", text=True,
                             capture_output=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(re.findall(r"[\w-]+", out))


def _flite_voices() -> set[str]:
    try:
        out = subprocess.run(["flite", "-lv"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(out.split(":", 1)[-1].split())


def _espeak_voices() -> tuple[set[str], set[str]]:
    """(languages, variants) espeak-ng has: 'en-us', ... and 'm3', 'f2', ..."""
    def listing(arg):
        try:
            out = subprocess.run(["espeak-ng", arg], capture_output=True, text=True,
                                 timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            return []
        return [line.split() for line in out.splitlines()[1:] if len(line.split()) >= 5]
    languages = {row[1] for row in listing("--voices")} | {"en"}
    variants = {row[4].split("/", 1)[-1] for row in listing("--voices=variant")}
    return languages, variants


def usable_voices(voices) -> tuple[list[Voice], list[str]]:
    """The voices whose synthesizer and voice data are installed, and why the others are not."""
    festival = _festival_voices() if synthesizer_available("festival") else set()
    flite = _flite_voices() if synthesizer_available("flite") else set()
    languages, variants = _espeak_voices() if synthesizer_available("espeak") else (set(), set())
    ok, missing = [], []
    for v in voices:
        if not synthesizer_available(v.engine):
            missing.append(f"{v.id} ({SYNTHESIZERS[v.engine]} not installed)")
        elif v.engine == "festival" and v.name not in festival:
            missing.append(f"{v.id} (festival voice not installed)")
        elif v.engine == "flite" and v.name not in flite:
            missing.append(f"{v.id} (flite voice not installed)")
        elif v.engine == "espeak" and (v.name.split("+")[0] not in languages or (
                "+" in v.name and v.name.split("+", 1)[1] not in variants)):
            missing.append(f"{v.id} (espeak-ng has no such language or variant)")
        else:
            ok.append(v)
    return ok, missing


class _Espeak:
    """espeak-ng through its C library (libespeak-ng, installed with the espeak-ng
    package): the same synthesis as the command line, plus the synthesizer's own
    phoneme events, whose times check the aligner (see `bilabial_disagreement`)."""
    PHONEME_EVENT, WORD_EVENT, RATE, PITCH, RANGE, WORDGAP = 7, 1, 1, 3, 4, 7

    def __init__(self):
        import ctypes

        class Id(ctypes.Union):
            _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p),
                        ("string", ctypes.c_char * 8)]

        class Event(ctypes.Structure):
            _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                        ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                        ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                        ("user_data", ctypes.c_void_p), ("id", Id)]

        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short),
                                         ctypes.c_int, ctypes.POINTER(Event))
        self.lib = ctypes.CDLL("libespeak-ng.so.1")
        # AUDIO_OUTPUT_SYNCHRONOUS (2), espeakINITIALIZE_PHONEME_EVENTS (1)
        self.rate = self.lib.espeak_Initialize(2, 0, None, 1)
        if self.rate <= 0:
            raise RuntimeError("espeak-ng's library could not be initialised")
        self.chunks, self.events = [], []

        def collect(wav, n, events):
            if n > 0:
                self.chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
            i = 0
            while events[i].type != 0:  # espeakEVENT_LIST_TERMINATED
                e = events[i]
                if e.type == self.PHONEME_EVENT:
                    self.events.append((e.id.string.decode("ascii", "replace"), e.sample / self.rate))
                i += 1
            return 0

        self._callback = callback_type(collect)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def speak(self, voice: str, text: str, prosody: dict):
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice '{voice}'")
        for key, param in (("rate_wpm", self.RATE), ("pitch", self.PITCH),
                           ("pitch_range", self.RANGE), ("word_gap_10ms", self.WORDGAP)):
            self.lib.espeak_SetParameter(param, int(prosody[key]), 0)
        self.chunks, self.events = [], []
        data = text.encode("utf-8")
        # position 0, POS_CHARACTER, no end, espeakCHARS_UTF8
        if self.lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1, None, None) != 0:
            raise RuntimeError(f"espeak-ng could not speak {text!r}")
        self.lib.espeak_Synchronize()
        if not self.chunks:
            raise RuntimeError(f"espeak-ng produced no audio for {text!r}")
        audio = np.concatenate(self.chunks).astype(np.float32) / 32768.0
        return audio, self.rate, list(self.events)


_espeak = None


def _espeak_engine() -> _Espeak:
    global _espeak
    if _espeak is None:
        _espeak = _Espeak()
    return _espeak


def synthesize(voice: Voice, text: str, rng: np.random.Generator, workdir: str):
    """Speak `text`; returns (float32 16 kHz mono samples, prosody settings used,
    the synthesizer's phoneme events [(name, seconds)] or None where it gives none)."""
    import soundfile
    events = None
    if voice.engine == "espeak":
        prosody = {"rate_wpm": int(rng.integers(130, 196)), "pitch": int(rng.integers(30, 71)),
                   "pitch_range": int(rng.integers(30, 91)),
                   "word_gap_10ms": int(rng.choice([0, 0, 0, 1, 2]))}
        data, rate, events = _espeak_engine().speak(voice.name, text, prosody)
    else:
        wav = os.path.join(workdir, "tts.wav")
        prosody = {"duration_stretch": round(float(rng.uniform(0.85, 1.2)), 3)}
        if voice.engine == "flite":
            cmd = ["flite", "-voice", voice.name, "--setf",
                   f"duration_stretch={prosody['duration_stretch']}", "-t", text, "-o", wav]
        else:
            txt = os.path.join(workdir, "tts.txt")
            with open(txt, "w", encoding="utf-8") as f:
                f.write(text + "\n")
            cmd = ["text2wave", "-o", wav, "-eval", f"(voice_{voice.name})", "-eval",
                   f"(Parameter.set 'Duration_Stretch {prosody['duration_stretch']})", txt]
        if os.path.exists(wav):
            os.remove(wav)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0 or not os.path.exists(wav):
            raise RuntimeError(f"{voice.id} failed ({r.returncode}): {r.stderr.strip()[:300]}")
        data, rate = soundfile.read(wav, dtype="float32", always_2d=True)
    speech = speech_from_array(data, rate, RATE, FPS, source=voice.id)
    return speech.samples, prosody, events


# --------------------------------------------------------------------- teacher

# The aligner's default beams (pocketsphinx's 1e-48) lose the path on over half of
# espeak-ng's formant-synthesized utterances ("no alignment path": the engine then
# falls back to phone-loop recognition, useless as a target). Measured on 30 random
# espeak-ng utterances: default beams aligned 13, these 23-24 (and faster, with no
# fallback decode); on 24 flite/festival utterances, which both align, the
# controls are identical. Alignments that are still wrong are caught by the
# checks below and re-synthesized or rejected.
ALIGN_BEAMS = dict(beam=1e-100, pbeam=1e-100, wbeam=1e-80)


def widen_aligner_beams():
    """Give the phonetic engine an alignment decoder with ALIGN_BEAMS, in this
    process. Everything else (dictionary, passes, tiling, coarticulation) stays
    the engine's own; core.phones has no public setting for the beams. Returns
    the decoder it replaced (None if none was made yet), for `restore_aligner`."""
    from ..core import phones
    ps = phones._pocketsphinx()
    with phones._lock:
        previous = phones._decoders.get("align")
        phones._decoders["align"] = ps.Decoder(lm=None, bestpath=False, loglevel="FATAL",
                                               **ALIGN_BEAMS)
    return previous


def restore_aligner(previous) -> None:
    from ..core import phones
    with phones._lock:
        if previous is None:
            phones._decoders.pop("align", None)
        else:
            phones._decoders["align"] = previous


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def teacher(samples: np.ndarray, text: str):
    """Forced alignment + coarticulation by the phonetic engine.
    Returns (controls (T, C) float32, phones [(label, start, end)], problem or None)."""
    from ..core import phonetic
    handler = _Collect()
    log = logging.getLogger("core.phones")
    saved = log.level, log.propagate
    log.setLevel(logging.WARNING)  # collected here, not printed
    log.propagate = False
    log.addHandler(handler)
    try:
        perf = phonetic.animate(Speech(samples, RATE, "corpus"), fps=FPS, transcript=text,
                                with_offsets=False)
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]
    phones = [(str(l), float(a), float(b)) for l, a, b in perf.metadata["phones"]]
    problem = "; ".join(handler.messages) or _alignment_problem(samples, phones)
    return perf.controls.astype(np.float32), phones, problem


def _alignment_problem(samples, phones) -> str | None:
    """Sanity checks on an alignment that did not fail outright."""
    speech = [p for p in phones if p[0] != "SIL"]
    if not speech:
        return "no phones aligned"
    longest = max(b - a for _, a, b in speech)
    if longest > 0.8:
        return f"a {longest:.2f} s phone (alignment stretched over a mismatch)"
    # Loud frames (within 30 dB of the clip's peak) should lie in aligned speech.
    loud = loudness_envelope(Speech(samples, RATE, "corpus"), 100.0)
    db = 20 * np.log10(np.maximum(loud, 1e-8))
    t = np.arange(db.size) / 100.0
    in_speech = np.zeros(db.size, bool)
    for _, a, b in speech:
        in_speech |= (t >= a - 0.03) & (t <= b + 0.03)
    loud_frames = db > db.max() - 30
    outside = float(np.mean(~in_speech[loud_frames])) if loud_frames.any() else 0.0
    if outside > 0.10:
        return f"{outside:.0%} of loud audio lies outside the aligned speech"
    return None


BILABIAL_TOLERANCE = 0.060  # s: aligned P/B/M may sit this far from the synthesizer's


def bilabial_disagreement(events, phones) -> tuple[str | None, float]:
    """Compare the aligned P/B/M with espeak-ng's own phoneme events (the truth for
    synthesized speech): same count, and each aligned interval within
    BILABIAL_TOLERANCE of the event. Returns (problem or None, worst distance s)."""
    truth = [t for name, t in events if name in ("p", "b", "m")]
    aligned = [(a, b) for label, a, b in phones if label in ("P", "B", "M")]
    if len(truth) != len(aligned):
        return (f"espeak-ng spoke {len(truth)} bilabials, the aligner placed {len(aligned)}",
                float("inf"))
    worst = max((max(a - t, 0.0, t - b) for t, (a, b) in zip(truth, aligned)), default=0.0)
    if worst > BILABIAL_TOLERANCE:
        return f"an aligned bilabial is {worst * 1000:.0f} ms from espeak-ng's", worst
    return None, worst


def tile_phones(phones, duration: float):
    """Phones re-tiled over 0..duration (SIL in every gap), as the engine returns them."""
    from ..core.phones import _tile
    return _tile([(l, a, b) for l, a, b in phones if l != "SIL"], duration)


def recompute_targets(phones, samples: np.ndarray, n_frames: int) -> np.ndarray:
    """The teacher's controls for audio whose phones are known (after a timing change):
    the same coarticulation and loudness scaling as core.phonetic.animate."""
    from ..core.coarticulation import coarticulate
    tiled = tile_phones(phones, samples.size / RATE)
    loud = loudness_envelope(Speech(samples, RATE, "corpus"), FPS, n_frames)
    return coarticulate(tiled, FPS, n_frames, loud).astype(np.float32)


# ------------------------------------------------------------------------ jobs

def _save(path: Path, *, audio, controls, phones, voice, text, split, uid, source="",
          augmentation=None) -> None:
    labels = np.array([p[0] for p in phones], dtype="<U3")
    starts = np.array([p[1] for p in phones], dtype=np.float32)
    ends = np.array([p[2] for p in phones], dtype=np.float32)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp, audio=np.asarray(audio, np.float32), rate=np.int32(RATE),
        controls=np.asarray(controls, np.float32), fps=np.float32(FPS),
        control_names=np.array(CONTROLS), voice=np.str_(voice), text=np.str_(text),
        split=np.str_(split), id=np.str_(uid), phone_labels=labels, phone_starts=starts,
        phone_ends=ends, source=np.str_(source),
        augmentation=np.str_(json.dumps(augmentation or {})))
    os.replace(tmp, path)


def _worker_init():
    widen_aligner_beams()  # a pool process: for its whole life


def clean_job(job: dict) -> dict:
    """Synthesize one sentence with one voice, align it, check the alignment, save
    it. Up to ATTEMPTS syntheses with fresh prosody while the alignment is not
    usable; then the utterance is recorded as rejected, with the reasons."""
    voice = Voice.parse(job["voice"])
    rng = np.random.default_rng(job["rng"])
    record = {k: job[k] for k in ("id", "voice", "split", "sentence", "text")}
    problems = []
    with tempfile.TemporaryDirectory(prefix="corpus_") as work:
        for attempt in range(ATTEMPTS):
            try:
                samples, prosody, events = synthesize(voice, job["text"], rng, work)
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                problems.append(str(exc))
                continue
            if samples.size / RATE > MAX_DURATION:
                problems.append(f"{samples.size / RATE:.1f} s, longer than {MAX_DURATION} s")
                continue
            controls, phones, problem = teacher(samples, job["text"])
            check = {}
            if not problem and events is not None:
                problem, worst = bilabial_disagreement(events, phones)
                check = {"bilabial_error_ms": round(worst * 1000, 1)}
            if problem:
                problems.append(problem)
                continue
            path = Path(job["out"]) / "utt" / f"{job['id']}.npz"
            _save(path, audio=samples, controls=controls, phones=phones, voice=voice.id,
                  text=job["text"], split=job["split"], uid=job["id"])
            record.update(file=f"utt/{job['id']}.npz", duration=round(samples.size / RATE, 4),
                          frames=len(controls), source="", augmentation={},
                          prosody=prosody, attempts=attempt + 1, **check)
            return record
    record["rejected"] = problems
    return record


def choose_augmentation(rng: np.random.Generator) -> dict:
    """A random chain; every copy gets at least one effect."""
    aug = {}
    while not aug:
        if rng.random() < 0.35:
            kind = "speed" if rng.random() < 0.5 else "tempo"
            aug[kind] = round(float(rng.uniform(0.88, 1.12) if kind == "speed"
                                    else rng.uniform(0.85, 1.18)), 3)
        if rng.random() < 0.3:
            aug["pitch_semitones"] = round(float(rng.choice([-1, 1]) * rng.uniform(1.0, 4.0)), 2)
        if rng.random() < 0.3:
            aug["formant"] = round(float(rng.uniform(0.88, 1.14)), 3)
        if rng.random() < 0.35:
            aug["pad_before_s"] = round(float(rng.uniform(0.0, 0.8)), 3)
            aug["pad_after_s"] = round(float(rng.uniform(0.0, 0.8)), 3)
        if rng.random() < 0.3:
            aug["reverb"] = {"rt60_s": round(float(rng.uniform(0.15, 0.8)), 3),
                             "drr_db": round(float(rng.uniform(-3.0, 10.0)), 2)}
        if rng.random() < 0.7:
            kind = str(rng.choice(["white", "pink", "babble"]))
            aug["noise"] = {"kind": kind, "snr_db": round(float(rng.uniform(5.0, 30.0)), 2)}
        if rng.random() < 0.6:
            aug["gain_db"] = round(float(rng.uniform(-20.0, 6.0)), 2)
    return aug


def augment_job(job: dict) -> dict:
    """One augmented copy of a clean utterance (read back from disk)."""
    out = Path(job["out"])
    rng = np.random.default_rng(job["rng"])
    with np.load(out / job["source_file"]) as z:
        audio, controls = z["audio"], z["controls"]
        phones = [(str(l), float(a), float(b))
                  for l, a, b in zip(z["phone_labels"], z["phone_starts"], z["phone_ends"])]
    aug = dict(job["augmentation"])
    timing_changed = False
    factor = 1.0
    if "speed" in aug:
        factor = aug["speed"]
        audio = augment.speed(audio, factor)
    elif "tempo" in aug:
        factor = aug["tempo"]
        audio = augment.time_stretch(audio, factor, RATE)
    if factor != 1.0:
        timing_changed = True
    if "pitch_semitones" in aug:
        audio = augment.pitch_shift(audio, aug["pitch_semitones"], RATE)
    if "formant" in aug:
        audio = augment.formant_shift(audio, aug["formant"], RATE)
    shift = 0.0
    if "pad_before_s" in aug:
        n_before = int(round(aug["pad_before_s"] * RATE))
        n_after = int(round(aug["pad_after_s"] * RATE))
        shift = n_before / RATE
        audio = np.concatenate([np.zeros(n_before, np.float32), audio, np.zeros(n_after, np.float32)])
        timing_changed = True
    phones = [(p.label, p.start, p.end)
              for p in tile_phones(augment.scale_phones(phones, factor, shift), audio.size / RATE)]
    from ..core.phonetic import frame_count
    n_frames = frame_count(audio.size / RATE, FPS)
    if timing_changed:
        # Teacher targets for the new timing, from the clean (pre-noise) audio.
        controls = recompute_targets(phones, audio, n_frames)
        aug["targets"] = "recomputed from time-scaled phones"
    else:
        aug["targets"] = "copied (timing unchanged)"
    if "reverb" in aug:
        ir = augment.exponential_ir(RATE, aug["reverb"]["rt60_s"], rng, aug["reverb"]["drr_db"])
        audio = augment.reverberate(audio, ir)
    if "noise" in aug:
        kind = aug["noise"]["kind"]
        if kind == "white":
            noise = augment.white_noise(audio.size, rng)
        elif kind == "pink":
            noise = augment.pink_noise(audio.size, rng)
        else:
            sources = []
            for f in job["babble_files"]:
                with np.load(out / f) as z:
                    sources.append(z["audio"])
            noise = augment.babble_noise(audio.size, sources, rng, talkers=len(sources))
            aug["noise"]["talkers"] = job["babble_ids"]
        audio = augment.add_noise(audio, noise, aug["noise"]["snr_db"])
    if "gain_db" in aug:
        audio = augment.change_gain(audio, aug["gain_db"])
    audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
    path = out / "utt" / f"{job['id']}.npz"
    _save(path, audio=audio, controls=controls, phones=phones, voice=job["voice"],
          text=job["text"], split=job["split"], uid=job["id"], source=job["source"],
          augmentation=aug)
    return {"id": job["id"], "voice": job["voice"], "split": job["split"],
            "sentence": job["sentence"], "text": job["text"], "file": f"utt/{job['id']}.npz",
            "duration": round(audio.size / RATE, 4), "frames": int(n_frames),
            "source": job["source"], "augmentation": aug}


# ----------------------------------------------------------------------- build

def plan_clean(sentences, train, held_out, seed, per_sentence, heldout_sentences, out):
    """Who says what: every sentence by `per_sentence` train voices (balanced),
    each held-out voice a random `heldout_sentences` of them."""
    rng = np.random.default_rng([seed, 1])
    jobs = []
    order = [train[i] for i in rng.permutation(len(train))] if train else []
    cursor = 0
    for s_index, text in enumerate(sentences):
        chosen = []
        for _ in range(min(per_sentence, len(order))):
            chosen.append(order[cursor % len(order)])
            cursor += 1
        for v in chosen:
            jobs.append(("train", s_index, text, v))
    for split, voices in held_out.items():
        for v in voices:
            picks = sorted(rng.choice(len(sentences), min(heldout_sentences, len(sentences)),
                                      replace=False))
            jobs += [(split, int(i), sentences[i], v) for i in picks]
    return [{"id": f"{s:05d}_{v.slug}", "voice": v.id, "split": split, "sentence": s,
             "text": text, "rng": [seed, 2, k], "out": str(out)}
            for k, (split, s, text, v) in enumerate(jobs)]


def plan_augmented(clean_records, copies, seed, out):
    rng = np.random.default_rng([seed, 3])
    babble_pool = [r for r in clean_records if r["split"] == "train"]
    jobs = []
    for k, r in enumerate(clean_records):
        for c in range(copies):
            aug = choose_augmentation(rng)
            talkers = [b for b in babble_pool if b["voice"] != r["voice"]] or babble_pool
            n_talkers = int(rng.integers(3, 7))
            picks = [talkers[i] for i in rng.choice(len(talkers), min(n_talkers, len(talkers)),
                                                    replace=False)] if talkers else []
            if "noise" in aug and aug["noise"]["kind"] == "babble" and not picks:
                aug["noise"]["kind"] = "pink"
            jobs.append({"id": f"{r['id']}_aug{c + 1}", "voice": r["voice"], "split": r["split"],
                         "sentence": r["sentence"], "text": r["text"], "source": r["id"],
                         "source_file": r["file"], "augmentation": aug,
                         "babble_files": [b["file"] for b in picks],
                         "babble_ids": [b["id"] for b in picks],
                         "rng": [seed, 4, k, c], "out": str(out)})
    return jobs


def _run(fn, jobs, workers, label):
    results, start = [], time.perf_counter()
    step = max(1, len(jobs) // 20)
    pool = previous = None
    if workers <= 1:  # in this process: put the engine's own aligner back afterwards
        previous = widen_aligner_beams()
        iterator = map(fn, jobs)
    else:
        pool = ProcessPoolExecutor(workers, initializer=_worker_init)
        iterator = pool.map(fn, jobs, chunksize=4)
    try:
        for i, r in enumerate(iterator, 1):
            results.append(r)
            if i % step == 0 or i == len(jobs):
                el = time.perf_counter() - start
                print(f"  {label}: {i}/{len(jobs)}  {el:6.0f} s elapsed, "
                      f"~{el / i * (len(jobs) - i):.0f} s left", flush=True)
    finally:
        if pool:
            pool.shutdown()
        else:
            restore_aligner(previous)
    return results


def _versions() -> dict:
    out = {}
    for engine, exe in SYNTHESIZERS.items():
        if not shutil.which(exe):
            continue
        cmd = {"espeak": ["espeak-ng", "--version"], "flite": ["flite", "--version"],
               "festival": ["festival", "--version"]}[engine]
        try:
            text = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
            out[engine] = " ".join(text.split())[:120]
        except (OSError, subprocess.TimeoutExpired):
            pass
    from importlib.metadata import PackageNotFoundError, version
    try:
        out["pocketsphinx"] = version("pocketsphinx")
    except PackageNotFoundError:
        pass
    return out


def build(out: Path, n_sentences: int = DEFAULT_SENTENCES, seed: int = 0,
          train_voices=TRAIN_VOICES, held_out=HELD_OUT, per_sentence: int = DEFAULT_PER_SENTENCE,
          heldout_sentences: int = DEFAULT_HELDOUT_SENTENCES, augmented: int = DEFAULT_AUGMENTED,
          workers: int | None = None, sentence_file: Path | None = None,
          command: str | None = None) -> dict:
    start = time.perf_counter()
    out = Path(out)
    all_voices = list(train_voices) + [v for vs in held_out.values() for v in vs]
    usable, missing = usable_voices(all_voices)
    if missing:
        print("Voices left out (install with `make corpus` or apt-get install "
              f"{APT_PACKAGES}):\n  " + "\n  ".join(missing))
    train = [v for v in train_voices if v in usable]
    held = {s: [v for v in vs if v in usable] for s, vs in held_out.items()}
    if not train:
        raise SystemExit("No train voice can be synthesized: install espeak-ng "
                         f"(apt-get install {APT_PACKAGES}) or run `make corpus`.")
    base = read_sentences(sentence_file) if sentence_file else None
    sentences = generate_sentences(n_sentences, seed, base)

    if out.exists():
        shutil.rmtree(out / "utt", ignore_errors=True)
        (out / "manifest.json").unlink(missing_ok=True)
    (out / "utt").mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1

    clean_jobs = plan_clean(sentences, train, held, seed, per_sentence, heldout_sentences, out)
    print(f"{len(sentences)} sentences, {len(train)} train voices, "
          f"{sum(map(len, held.values()))} held-out voices: {len(clean_jobs)} clean utterances, "
          f"{len(clean_jobs) * augmented} augmented copies, {workers} workers")
    t0 = time.perf_counter()
    results = _run(clean_job, clean_jobs, workers, "synthesize + align")
    clean_seconds = time.perf_counter() - t0
    clean = [r for r in results if "rejected" not in r]
    rejected = [{k: r[k] for k in ("id", "voice", "split", "text", "rejected")}
                for r in results if "rejected" in r]
    t0 = time.perf_counter()
    aug_records = _run(augment_job, plan_augmented(clean, augmented, seed, out), workers,
                       "augment") if augmented else []
    augment_seconds = time.perf_counter() - t0
    utterances = sorted(clean + aug_records, key=lambda r: r["id"])

    splits = {"train": [v.id for v in train], **{s: [v.id for v in vs] for s, vs in held.items()}}
    voice_split = {v: s for s, vs in splits.items() for v in vs}
    voices = {}
    for v in train + [v for vs in held.values() for v in vs]:
        mine = [u for u in utterances if u["voice"] == v.id]
        voices[v.id] = {"engine": v.engine, "name": v.name, "split": voice_split[v.id],
                        "clean": sum(1 for u in mine if not u["source"]),
                        "augmented": sum(1 for u in mine if u["source"]),
                        "rejected": sum(1 for r in rejected if r["voice"] == v.id),
                        "hours": round(sum(u["duration"] for u in mine) / 3600, 4)}
    counts = {}
    for s in splits:
        mine = [u for u in utterances if u["split"] == s]
        counts[s] = {"voices": len(splits[s]),
                     "clean": sum(1 for u in mine if not u["source"]),
                     "augmented": sum(1 for u in mine if u["source"]),
                     "sentences": len({u["sentence"] for u in mine}),
                     "hours": round(sum(u["duration"] for u in mine) / 3600, 4)}
    size = sum(f.stat().st_size for f in (out / "utt").glob("*.npz"))
    manifest = {
        "format": FORMAT_VERSION,
        "description": "Synthetic speech (offline TTS) with the phonetic engine's forced-alignment "
                       "controls as targets; see training/build_corpus.py.",
        "build_command": command or f"python training/build_corpus.py --out {out} "
                                    f"--sentences {n_sentences} --seed {seed}",
        "seed": seed, "rate": RATE, "fps": FPS, "controls": list(CONTROLS),
        "rest_pose": augment.REST_POSE.tolist(),
        "teacher": {"engine": "phonetic", "mode": "forced alignment", "fps": FPS,
                    "aligner_beams": {k: float(v) for k, v in ALIGN_BEAMS.items()}},
        "tools": _versions(),
        "sentences": {"count": len(sentences),
                      "written": min(len(base if base is not None else read_sentences()), len(sentences)),
                      "file": str(sentence_file or SENTENCE_FILE.relative_to(ROOT)),
                      "per_sentence_train_voices": per_sentence,
                      "heldout_sentences_per_voice": heldout_sentences},
        "splits": splits, "split_by": "voice", "voices": voices, "counts": counts,
        "total": {"utterances": len(utterances), "clean": len(clean), "augmented": len(aug_records),
                  "rejected": len(rejected),
                  "hours": round(sum(u["duration"] for u in utterances) / 3600, 4),
                  "clean_hours": round(sum(u["duration"] for u in clean) / 3600, 4),
                  "bytes": size},
        "timing_s": {"synthesize_align": round(clean_seconds, 1),
                     "augment": round(augment_seconds, 1),
                     "total": round(time.perf_counter() - start, 1), "workers": workers},
        "voices_left_out": missing,
        "rejected": rejected,
        "utterances": utterances,
    }
    with open(out / "manifest.json", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    t = manifest["total"]
    print(f"Wrote {out}: {t['utterances']} utterances ({t['clean']} clean, {t['augmented']} "
          f"augmented, {t['rejected']} rejected), {t['hours']:.2f} h, {size / 1e6:.0f} MB, "
          f"{manifest['timing_s']['total']:.0f} s")
    return manifest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "out" / "corpus")
    p.add_argument("--sentences", type=int, default=DEFAULT_SENTENCES,
                   help=f"sentences in all (written ones first, then generated; default "
                        f"{DEFAULT_SENTENCES})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sentence-file", type=Path, help="use these sentences instead of "
                   "training/sentences.txt (one a line, '#' comments)")
    p.add_argument("--voices", help="comma-separated train voices ENGINE:NAME "
                   "(default: the built-in list)")
    p.add_argument("--val-voices", help="comma-separated held-out validation voices")
    p.add_argument("--test-voices", help="comma-separated held-out test voices")
    p.add_argument("--per-sentence", type=int, default=DEFAULT_PER_SENTENCE,
                   help="train voices speaking each sentence")
    p.add_argument("--heldout-sentences", type=int, default=DEFAULT_HELDOUT_SENTENCES,
                   help="sentences spoken by each held-out voice")
    p.add_argument("--augmented", type=int, default=DEFAULT_AUGMENTED,
                   help="augmented copies per clean utterance (0: none)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--apt-packages", action="store_true",
                   help="print the Debian packages the voices need, and exit")
    args = p.parse_args(argv)
    if args.apt_packages:
        print(APT_PACKAGES)
        return 0

    def voices(text, default):
        if text is None:
            return tuple(default)
        return tuple(Voice.parse(v.strip()) for v in text.split(",") if v.strip())

    train = voices(args.voices, TRAIN_VOICES)
    held = {"val": voices(args.val_voices, HELD_OUT["val"]),
            "test": voices(args.test_voices, HELD_OUT["test"])}
    overlap = set(train) & (set(held["val"]) | set(held["test"]))
    if overlap or set(held["val"]) & set(held["test"]):
        raise SystemExit(f"a voice cannot be in two splits: {sorted(v.id for v in overlap)}")
    command = "python training/build_corpus.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    build(args.out, args.sentences, args.seed, train, held, args.per_sentence,
          args.heldout_sentences, args.augmented, args.workers, args.sentence_file, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
