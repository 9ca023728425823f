"""Phone timings from speech with pocketsphinx: forced alignment to a transcript,
or phone-loop (allphone) recognition when there is none.

Everything returned tiles the audio: phones are sorted, gap-free, start at 0 and
end at the audio's duration, with silence, noise and fillers all called "SIL".
"""
import functools
import hashlib
import logging
import os
import re
import sys
import threading
from dataclasses import dataclass

import numpy as np

from .cancel import Cancelled as RecognitionCancelled  # noqa: F401  (the name callers catch)
from .cancel import cancellable  # noqa: F401  (recognition checks between pieces)
from .cancel import check as _check_cancel

log = logging.getLogger(__name__)

RATE = 16000  # the packaged en-us acoustic model is 16 kHz
SIL = "SIL"

# Forced alignment keeps a state trellis for the whole utterance, so memory grows
# with duration x transcript length (about 9.5 GB for 10 minutes in one piece).
# Longer audio is word-aligned once, then phone-aligned piece by piece, cut in pauses.
ALIGN_PIECE_S = 60.0  # audio up to this long is aligned in one piece
ALIGN_TARGET_S = 30.0  # otherwise cut at the first pause after this much audio...
# ...or at a word boundary when a piece reaches ALIGN_PIECE_S without one.
# Phone-loop pieces, cut at the quietest 10 ms of a piece's last RECOGNIZE_SEARCH_S. Short,
# because pocketsphinx holds the GIL through a piece: in the add-on (one process) a piece
# is how long Blender's UI waits and how late Esc lands (~0.3 s for 6 s here).
RECOGNIZE_PIECE_S = 6.0
RECOGNIZE_SEARCH_S = 2.0
SILENT_PEAK = 1e-4  # below this peak (-80 dBFS) a piece holds no sound at all

# Phone-loop settings, measured on the five librivox clips against their
# reference alignments (phone error rate / bilabial M,P,B hits):
#   lw 6.5 (default) 0.54 / 20 of 29;  lw 2.0 0.46 / 25 of 29;  lw 4: 0.57; lw 1: 0.49.
# The phone LM is weak evidence, so weighting it less lets the acoustics speak.
# beam/pbeam 1e-20 (CMU's phoneme-recognition recipe) scores the same as 1e-40;
# 1e-10 loses accuracy (0.55). pip/wip made no measurable difference.
# Context-dependent phones (allphone_ci=False) score better (0.38 / 28 of 29) but
# run at 2x real time against 0.05x, too slow for minutes of dialogue.
ALLPHONE_SETTINGS = dict(beam=1e-20, pbeam=1e-20, lw=2.0, allphone_ci=True)

ARPABET = frozenset(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG "
    "OW OY P R S SH T TH UH UW V W Y Z ZH".split()
)


@dataclass(frozen=True)
class Phone:
    label: str  # ARPAbet without stress digits, upper case, or "SIL"
    start: float  # seconds
    end: float  # seconds


class RecognitionError(RuntimeError):
    """Speech could not be turned into phones; the message says what to do."""


# Phone-loop pieces are decoded independently (fresh features each), so they can run
# in parallel processes with the very same phones. Off by default: inside Blender's UI
# the add-on stays in one process; the headless CLI turns it on (`set_workers`).
_workers = 1


def set_workers(count: int) -> None:
    """Decode phone-loop pieces in up to `count` processes (Linux: fork) ; 1 = in process."""
    global _workers
    _workers = max(1, int(count))


# --------------------------------------------------------------------- decoders

# pocketsphinx decoders are not thread-safe, and one decode must finish before
# the next starts; Blender may call from a worker thread.
_lock = threading.RLock()


def _pocketsphinx():
    try:
        import pocketsphinx
    except ImportError as exc:
        raise RecognitionError(
            "pocketsphinx is not installed, so phones cannot be recognised. "
            "Install the extension's bundled wheels (or `pip install pocketsphinx`)."
        ) from exc
    return pocketsphinx


_decoders: dict = {}


def _decoder(kind: str):
    """One decoder per kind ("align" or "recognize"), made on first use: loading
    the model takes ~0.3 s, too slow to repeat per call."""
    with _lock:
        if kind not in _decoders:
            _decoders[kind] = _new_decoder(kind)
        return _decoders[kind]


def _new_decoder(kind: str):
    ps = _pocketsphinx()
    try:
        if kind == "align":
            # bestpath off, as pocketsphinx's own `align` command does: bestpath
            # rescoring drops optional pauses and picks other pronunciations.
            return ps.Decoder(lm=None, bestpath=False, loglevel="FATAL")
        phone_lm = ps.get_model_path("en-us/en-us-phone.lm.bin")
        return ps.Decoder(lm=None, allphone=phone_lm, loglevel="FATAL", **ALLPHONE_SETTINGS)
    except (RuntimeError, ValueError, OSError) as exc:
        raise RecognitionError(
            f"pocketsphinx could not load its en-us model ({exc}). Reinstall pocketsphinx."
        ) from exc


def _decode(decoder, pcm: bytes, fresh: bool = True) -> None:
    if fresh:  # feature state (cepstral mean etc.) carries over between utterances,
        decoder.reinit_feat()  # which made results depend on what was decoded before
    decoder.start_utt()
    try:
        decoder.process_raw(pcm, full_utt=True)  # full_utt: normalise over all of it
    finally:
        decoder.end_utt()  # never leave the cached decoder mid-utterance


# ------------------------------------------------------------------ transcripts

@functools.lru_cache(maxsize=None)
def _dictionary() -> frozenset:
    path = _pocketsphinx().get_model_path("en-us/cmudict-en-us.dict")
    with open(path, encoding="utf-8") as f:
        return frozenset(line.split(" ", 1)[0].split("(", 1)[0] for line in f if line.strip())


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))
_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth",
            "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}


def _number_words(n: int) -> list[str]:
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + (_number_words(n % 10) if n % 10 else [])
    for size, name in _SCALES:
        if n >= size:
            return _number_words(n // size) + [name] + (_number_words(n % size) if n % size else [])
    raise AssertionError("unreachable")


def _spell_number(token: str) -> list[str] | None:
    """'42' -> forty two, '21st' -> twenty first; None when not a number we spell."""
    m = re.fullmatch(r"(\d{1,12}|\d{1,3}(?:,\d{3})+)(st|nd|rd|th)?", token)
    if not m:
        return None
    n = int(m.group(1).replace(",", ""))
    if 1100 <= n < 2000 and n % 100 and len(m.group(1)) == 4:  # 1984: nineteen eighty four
        words = _number_words(n // 100) + ["oh"] * (n % 100 < 10) + _number_words(n % 100)
    else:
        words = _number_words(n)
    if m.group(2):
        last = words[-1]
        regular = last[:-1] + "ieth" if last.endswith("y") else last + "th"
        words[-1] = _ORDINAL.get(last, regular)
    return words


def normalise_transcript(text: str) -> list[str]:
    """Lower-case words the pronunciation dictionary can take, in spoken order.

    Punctuation goes, numbers are spelled out, hyphenated words are split unless
    the dictionary has them whole. Unknown words are dropped with a warning:
    alignment then stretches the neighbouring words over them.
    """
    known = _dictionary()
    text = text.lower().replace("\u2019", "'").replace("&", " and ").replace("%", " percent ")
    words, unknown = [], []
    for token in re.findall(r"\d{1,3}(?:,\d{3})+(?:st|nd|rd|th)?|[a-z0-9'.\-]+", text):
        whole = token.strip("'-")  # keeps "a.m." but not a full stop after a word
        token = token.strip("'.-")
        if "." in token and whole in known:
            words.append(whole)
            continue
        if token in known:  # "don't", "twenty-one"
            words.append(token)
            continue
        for part in filter(None, re.split(r"[.\-]+", token)):
            part = part.strip("'")
            spelled = _spell_number(part)
            if spelled:
                words.extend(spelled)
            elif part in known:
                words.append(part)
            elif part:
                unknown.append(part)
    if unknown:
        log.warning("Not in the pronunciation dictionary, left out of the alignment: %s",
                    ", ".join(sorted(set(unknown))))
    return words


# ------------------------------------------------------------------------ audio

def _prepare(samples, rate: int) -> np.ndarray:
    audio = np.asarray(samples, dtype=np.float32)
    if audio.ndim > 1:  # tolerate (n, channels)
        audio = audio.mean(axis=1)
    if audio.size == 0:
        raise RecognitionError("The sound is empty: there is no speech to find phones in. "
                               "Pick a sound strip or file that contains dialogue.")
    if rate != RATE:
        try:
            import soxr
            audio = soxr.resample(audio, rate, RATE).astype(np.float32)
        except ImportError:  # no anti-aliasing, but speech energy is mostly < 4 kHz
            n = int(round(audio.size * RATE / rate))
            audio = np.interp(np.arange(n) * rate / RATE, np.arange(audio.size), audio)
            audio = audio.astype(np.float32)
    if np.isfinite(audio.sum(dtype=np.float64)):  # the usual case: no copy of the clip
        return audio
    return np.nan_to_num(audio)


def _pcm(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def _label(name: str) -> str:
    name = name.upper().rstrip("012")
    return name if name in ARPABET else SIL  # SIL, +NSN+, +SPN+, <s> ...


def _tile(raw, duration: float) -> list[Phone]:
    """(label, start, end) in any order -> sorted, gap-free, SILs merged, 0..duration."""
    out: list[Phone] = []

    def put(label, start, end):
        if end - start <= 1e-9:
            return
        if out and out[-1].label == label == SIL:
            out[-1] = Phone(SIL, out[-1].start, end)
        else:
            out.append(Phone(label, start, end))

    t = 0.0
    for label, start, end in sorted(raw, key=lambda p: p[1]):
        end = min(end, duration)
        if start - t > 1e-9:
            put(SIL, t, start)
        else:  # overlaps and rounding crumbs (pieces' offsets): go on from t exactly
            start = t
        if end - start > 1e-9:
            put(_label(label), start, end)
            t = end
    put(SIL, t, duration)
    if out:  # end exactly at the duration despite float rounding
        out[-1] = Phone(out[-1].label, out[-1].start, duration)
    return out


# -------------------------------------------------------------------- recognise

def _recognize_spans(audio: np.ndarray, frate: int) -> list[tuple[int, int]]:
    """Sample spans of the phone-loop pieces, cut at the quietest 10 ms near each limit
    (from the audio alone, so they are the same however the pieces are decoded)."""
    hop = RATE // frate
    spans, begin = [], 0
    while begin < audio.size:
        end = audio.size
        if end - begin > RECOGNIZE_PIECE_S * RATE:
            stop = begin + int(RECOGNIZE_PIECE_S * RATE)
            look = stop - hop * int(RECOGNIZE_SEARCH_S * frate)
            energy = np.square(audio[look:stop].reshape(-1, hop)).sum(axis=1)
            end = look + hop * int(np.argmin(energy))
        spans.append((begin, end))
        begin = end
    return spans


def _recognize_piece(pcm: bytes, t0: float) -> list[tuple]:
    decoder = _decoder("recognize")
    frate = decoder.config["frate"]
    with _lock:
        _decode(decoder, pcm)
        return [(s.word, t0 + s.start_frame / frate, t0 + (s.end_frame + 1) / frate)
                for s in decoder.seg() or ()]


def _fresh_worker() -> None:
    _decoders.clear()  # a forked worker makes its own decoder, never the parent's


def _recognize_raw(audio: np.ndarray, offset: float = 0.0) -> list[tuple]:
    """Phone loop over pieces cut at quiet moments; (label, start, end) in seconds."""
    frate = _decoder("recognize").config["frate"]
    # A digitally silent piece is silence: decoded, its batch CMN divides nothing by
    # nothing and the phone loop "hears" whatever its previous utterances left.
    jobs = [(_pcm(audio[begin:end]), offset + begin / RATE) for begin, end in _recognize_spans(audio, frate)
            if np.abs(audio[begin:end]).max(initial=0.0) >= SILENT_PEAK]
    workers = min(_workers, len(jobs))
    if workers > 1 and sys.platform.startswith("linux"):
        return _recognize_in_processes(jobs, workers)
    raw = []
    for pcm, t0 in jobs:
        _check_cancel()
        raw += _recognize_piece(pcm, t0)
    return raw


def _recognize_in_processes(jobs, workers: int) -> list[tuple]:
    import multiprocessing
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_fresh_worker)
    try:
        pending = [pool.apply_async(_recognize_piece, job) for job in jobs]
        raw = []
        for result in pending:
            while not result.ready():
                _check_cancel()  # a cancel stops the workers at once (terminate below)
                result.wait(0.05)
            raw += result.get()
        pool.close()
        return raw
    finally:
        pool.terminate()
        pool.join()


# ------------------------------------------------------------ recent results

# A re-bake of the same strip (another intensity, a layer switched off, the other bake
# mode) asks for the same phones again: recognition is most of a bake's time (~4 s a
# minute), so the last few results are kept, keyed by the very samples and transcript.
REMEMBERED = 8
_remembered: dict = {}


def _remembering(kind: str, audio: np.ndarray, words, find) -> list[Phone]:
    digest = hashlib.sha1(np.ascontiguousarray(audio)).digest()  # no copy: an hour is 230 MB
    key = (kind, digest, audio.size, tuple(words or ()))
    with _lock:
        found = _remembered.pop(key, None)
    if found is None:
        heard = _Warnings()
        log.addHandler(heard)
        try:
            phones = tuple(find())  # a cancel or failure raises here: nothing is kept
        finally:
            log.removeHandler(heard)
        found = (phones, heard.records)
    else:  # the user hears the same warnings (a failed alignment, unknown words) again
        for record in found[1]:
            log.handle(record)
    with _lock:
        _remembered[key] = found  # most recent last
        while len(_remembered) > REMEMBERED:
            _remembered.pop(next(iter(_remembered)))
    return list(found[0])


class _Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def forget_recent() -> None:
    """Drop the remembered results (tests, or to time recognition itself)."""
    with _lock:
        _remembered.clear()


def recognize(samples, rate: int = RATE) -> list[Phone]:
    """Phones heard in the audio with no transcript (phone-loop recognition).

    Roughly half the phones are wrong (see ALLPHONE_SETTINGS), but timing and the
    open/closed-mouth classes are usable; prefer `align` when a transcript exists.
    """
    audio = _prepare(samples, rate)
    return _remembering("recognize", audio, None,
                        lambda: _tile(_recognize_raw(audio), audio.size / RATE))


# ------------------------------------------------------------------------ align

class _AlignFailed(Exception):
    pass


def _align_words(decoder, pcm: bytes, words: list[str]) -> None:
    """First pass: word-level alignment; leaves the word segmentation in the decoder."""
    try:
        decoder.set_align_text(" ".join(words))
        _decode(decoder, pcm)
    except RuntimeError as exc:
        raise _AlignFailed(str(exc)) from exc
    if decoder.hyp() is None:  # the search found no path through the transcript
        raise _AlignFailed("no alignment path")


def _align_phones(pcm: bytes, words: list[str], offset: float) -> list[tuple]:
    """Both passes on one piece: word alignment, then phone alignment within it."""
    decoder = _decoder("align")
    frate = decoder.config["frate"]
    _align_words(decoder, pcm, words)
    try:
        decoder.set_alignment()
        _decode(decoder, pcm, fresh=False)  # as pocketsphinx's `align` does
        alignment = decoder.get_alignment()
    except RuntimeError as exc:
        raise _AlignFailed(str(exc)) from exc
    if alignment is None:
        raise _AlignFailed("no phone alignment")
    return [(p.name, offset + p.start / frate, offset + (p.start + p.duration) / frate)
            for p in alignment.phones()]


def _pieces(segments, frate: int):
    """Cut a word segmentation into (first frame, end frame, words) pieces at pauses."""
    target, longest = ALIGN_TARGET_S * frate, ALIGN_PIECE_S * frate
    pieces, begin, words = [], 0, []
    for word, first, last in segments:
        filler = word.startswith(("<", "["))
        if filler and word == "<sil>" and words and first - begin >= target:
            cut = (first + last + 1) // 2  # middle of the pause
            pieces.append((begin, cut, words))
            begin, words = cut, []
        elif not filler:
            if words and last + 1 - begin > longest:  # no pause in time: cut between words
                pieces.append((begin, first, words))
                begin, words = first, []
            words.append(word.split("(", 1)[0])  # "and(2)" -> "and": re-chosen per piece
    if words:
        pieces.append((begin, None, words))
    elif pieces:  # trailing silence joins the last piece
        pieces[-1] = (pieces[-1][0], None, pieces[-1][2])
    return pieces


def _align_raw(audio: np.ndarray, words: list[str]) -> list[tuple]:
    if audio.size <= ALIGN_PIECE_S * RATE:
        with _lock:
            return _align_phones(_pcm(audio), words, 0.0)
    decoder = _decoder("align")
    frate = decoder.config["frate"]
    hop = RATE // frate
    with _lock:
        _align_words(decoder, _pcm(audio), words)
        segments = [(s.word, s.start_frame, s.end_frame) for s in decoder.seg()]
    raw = []
    for first, end, piece_words in _pieces(segments, frate):
        piece = audio[first * hop: None if end is None else end * hop]
        _check_cancel()
        try:
            with _lock:
                raw += _align_phones(_pcm(piece), piece_words, first / frate)
        except _AlignFailed as exc:
            log.warning("Alignment failed for %.1f-%.1f s (%s); recognising phones there instead.",
                        first / frate, (first * hop + piece.size) / RATE, exc)
            raw += _recognize_raw(piece, first / frate)
    return raw


def align(samples, transcript: str, rate: int = RATE) -> list[Phone]:
    """Phones of `transcript` placed on the audio (forced alignment).

    Falls back to `recognize` (with a warning) when no transcript word is in the
    dictionary or the transcript cannot be fitted to the audio at all.
    """
    audio = _prepare(samples, rate)
    words = normalise_transcript(transcript)
    if not words:
        log.warning("The transcript has no words to align; recognising phones instead.")
        return recognize(audio)
    return _remembering("align", audio, words, lambda: _align_or_recognize(audio, words))


def _align_or_recognize(audio: np.ndarray, words: list[str]) -> list[Phone]:
    try:
        raw = _align_raw(audio, words)
    except _AlignFailed as exc:
        log.warning("The transcript could not be aligned to the audio (%s); recognising phones "
                    "instead. Check that the transcript matches what is said.", exc)
        return recognize(audio)
    return _tile(raw, audio.size / RATE)
