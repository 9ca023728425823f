"""Audio without optional packages: a WAV/AIFF reader and a band-limited resampler
in plain numpy, used by `core.audio` when `soundfile` or `soxr` cannot be imported
(an artist's Blender bundles neither).

Both give the numbers of the packages they stand in for:
- `read_wav_aiff` returns what `soundfile.read(path, dtype="float32", always_2d=True)`
  returns for uncompressed WAV/AIFF: integer PCM divided by 2**(bits-1) (8-bit WAV is
  unsigned, offset 128), floats as stored. Tested bit-identical on the shared clips.
- `resample` is a linear-phase Kaiser-windowed sinc built to soxr's "HQ" specification
  (passband to 91.3% of the lower Nyquist, stopband from 100%, 20-bit rejection), with
  soxr's output length and time alignment (output sample n sits at input time
  n * from_rate / to_rate). On the shared speech clips it differs from soxr by -67 to
  -112 dB RMS; the differences lie in the ~91-100% transition band only (7.3-8 kHz at 16 kHz,
  above the 6.8 kHz upper edge of pocketsphinx's en-us filterbank).

Never imports bpy; raises `DecodeError`, which `core.audio` turns into a user message.
"""
from __future__ import annotations

import math
import struct

import numpy as np
from numpy.lib.stride_tricks import as_strided

# soxr "HQ" (what core.audio asks soxr for) is specified as 20-bit precision with the
# passband ending at 91.3% of Nyquist. Kaiser's design to that spec (0.913, 125 dB)
# matches soxr to -58..-84 dB RMS on the shared clips; 0.914 / 130 dB, fitted to soxr's
# measured transition band, to -67..-91 dB (tests/test_audio_numpy.py holds the bounds).
PASSBAND = 0.914        # fraction of the lower Nyquist kept flat
STOPBAND_DB = 130.0     # rejection (20 bits = 120 dB, plus margin)
_BLOCK = 1 << 21        # samples per matrix block (16 MB of float64): bounds memory


class DecodeError(ValueError):
    """The file cannot be read here. `recognised` is False when it is not WAV/AIFF at
    all (another decoder may read it), True when it is WAV/AIFF but damaged or in an
    encoding this reader does not handle."""

    def __init__(self, reason: str, recognised: bool = True):
        super().__init__(reason)
        self.recognised = recognised


# ------------------------------------------------------------------------- decode

def read_wav_aiff(path) -> tuple[np.ndarray, int]:
    """Uncompressed WAV (PCM 8/16/24/32-bit, float 32/64, WAVE_FORMAT_EXTENSIBLE) or
    AIFF/AIFC (PCM, 'sowt', 'fl32', 'fl64') -> (float32 array (frames, channels), rate)."""
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) >= 12 and data[:4] in (b"RIFF", b"RIFX") and data[8:12] == b"WAVE":
        return _wav(data, big_endian=data[:4] == b"RIFX")
    if len(data) >= 12 and data[:4] == b"FORM" and data[8:12] in (b"AIFF", b"AIFC"):
        return _aiff(data, compressed=data[8:12] == b"AIFC")
    raise DecodeError("not a WAV or AIFF file", recognised=False)


def _chunks(data: bytes, start: int, big_endian: bool):
    """(id, payload) of the RIFF/IFF chunks after `start`; a chunk cut short by the
    end of the file yields what is there (as libsndfile reads a truncated data chunk)."""
    fmt = ">I" if big_endian else "<I"
    pos = start
    while pos + 8 <= len(data):
        cid = data[pos:pos + 4]
        (size,) = struct.unpack(fmt, data[pos + 4:pos + 8])
        yield cid, data[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)  # chunks are padded to an even size


WAVE_PCM, WAVE_FLOAT, WAVE_EXTENSIBLE = 0x0001, 0x0003, 0xFFFE


def _wav(data: bytes, big_endian: bool):
    fmt_chunk = payload = None
    for cid, body in _chunks(data, 12, big_endian):
        if cid == b"fmt ":
            fmt_chunk = body
        elif cid == b"data":
            payload = body
            break
    if fmt_chunk is None or len(fmt_chunk) < 16 or payload is None:
        raise DecodeError("WAV header is incomplete (no 'fmt ' or 'data' chunk)")
    e = ">" if big_endian else "<"
    tag, channels, rate, _, block, bits = struct.unpack(e + "HHIIHH", fmt_chunk[:16])
    if tag == WAVE_EXTENSIBLE and len(fmt_chunk) >= 26:
        tag = struct.unpack(e + "H", fmt_chunk[24:26])[0]  # first two bytes of the GUID
    if tag == WAVE_PCM:
        kind = "uint" if bits == 8 else "int"
    elif tag == WAVE_FLOAT:
        kind = "float"
    else:
        raise DecodeError(f"WAV encoding 0x{tag:04x} is compressed (only PCM and float WAV "
                          f"are read without soundfile)")
    return _samples(payload, kind, bits, channels, block, rate, e)


def _aiff(data: bytes, compressed: bool):
    comm = ssnd = None
    for cid, body in _chunks(data, 12, big_endian=True):
        if cid == b"COMM":
            comm = body
        elif cid == b"SSND":
            ssnd = body
    if comm is None or len(comm) < 18 or ssnd is None or len(ssnd) < 8:
        raise DecodeError("AIFF header is incomplete (no 'COMM' or 'SSND' chunk)")
    channels, frames, bits = struct.unpack(">hIh", comm[:8])
    rate = _extended(comm[8:18])
    codec = comm[18:22] if compressed and len(comm) >= 22 else b"NONE"
    kinds = {b"NONE": ("int", ">"), b"twos": ("int", ">"), b"sowt": ("int", "<"),
             b"fl32": ("float", ">"), b"FL32": ("float", ">"),
             b"fl64": ("float", ">"), b"FL64": ("float", ">")}
    if codec not in kinds:
        raise DecodeError(f"AIFF-C encoding '{codec.decode('latin-1')}' is compressed (only "
                          f"PCM and float AIFF are read without soundfile)")
    kind, e = kinds[codec]
    if kind == "float":
        bits = 64 if codec.lower() == b"fl64" else 32
    (offset,) = struct.unpack(">I", ssnd[:4])
    width = (bits + 7) // 8
    payload = ssnd[8 + offset:8 + offset + frames * width * channels]
    return _samples(payload, kind, bits, channels, width * max(channels, 1), rate, e)


def _extended(raw: bytes) -> float:
    """IEEE 754 80-bit extended (AIFF sample rate) -> float."""
    exponent, mantissa = struct.unpack(">HQ", raw)
    sign = -1.0 if exponent & 0x8000 else 1.0
    exponent &= 0x7FFF
    if exponent == 0 and mantissa == 0:
        return 0.0
    return sign * mantissa * 2.0 ** (exponent - 16383 - 63)


def _samples(payload: bytes, kind: str, bits: int, channels: int, block: int, rate, e: str):
    if channels < 1 or bits not in (8, 16, 24, 32, 64) or (kind == "float" and bits not in (32, 64)) \
            or (kind != "float" and bits == 64):
        raise DecodeError(f"unsupported sample format ({channels} channels, {bits}-bit {kind})")
    rate = int(round(rate))
    if rate <= 0:
        raise DecodeError(f"invalid sample rate {rate}")
    width = bits // 8
    if block != width * channels:
        raise DecodeError(f"unsupported sample layout ({block}-byte frames for {channels} x {bits}-bit)")
    frames = len(payload) // block
    raw = np.frombuffer(payload, np.uint8, count=frames * block)
    if kind == "float":
        out = raw.view(f"{e}f{width}").astype(np.float32)
    elif bits == 8:
        out = raw.astype(np.float32)
        out = (out - 128.0) / 128.0 if kind == "uint" else (raw.view(np.int8) / 128.0).astype(np.float32)
    elif bits == 24:  # three bytes, sign-extended into int32 via the top byte
        b = raw.reshape(-1, 3).astype(np.int32)
        lo, hi = (0, 2) if e == "<" else (2, 0)
        value = b[:, lo] | (b[:, 1] << 8) | (b[:, hi] << 16)
        value = np.where(value & 0x800000, value - 0x1000000, value)
        out = (value / float(1 << 23)).astype(np.float32)
    else:
        out = (raw.view(f"{e}i{width}") / float(1 << (bits - 1))).astype(np.float32)
    return out.reshape(-1, channels), rate


# ----------------------------------------------------------------------- resample

def output_length(n: int, from_rate: int, to_rate: int) -> int:
    """round(n * to / from), halves up, in integers (soxr's output length)."""
    return (2 * n * int(to_rate) + int(from_rate)) // (2 * int(from_rate))


def resample(samples, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling of a 1-D signal, float32 out (see the module docstring).

    Polyphase: the rate ratio is reduced to up/down; output samples sharing a phase
    use one filter, applied as one matrix product over a strided view of the input.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"resample expects a 1-D signal, got shape {x.shape}")
    if int(from_rate) != from_rate or int(to_rate) != to_rate or from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive integers (got {from_rate}, {to_rate})")
    from_rate, to_rate = int(from_rate), int(to_rate)
    if from_rate == to_rate:
        return x.astype(np.float32)
    g = math.gcd(from_rate, to_rate)
    up, down = to_rate // g, from_rate // g
    n_out = output_length(x.size, from_rate, to_rate)
    out = np.zeros(n_out, np.float64)
    if n_out == 0 or x.size == 0:
        return out.astype(np.float32)

    ratio = min(1.0, up / down)                 # cutoff relative to the input Nyquist
    transition = (1.0 - PASSBAND) * ratio        # width, fraction of the input Nyquist
    beta = 0.1102 * (STOPBAND_DB - 8.7)          # Kaiser's formulas for the window...
    half = ((STOPBAND_DB - 7.95) / (2.285 * math.pi * transition) + 1) / 2  # ...and its length
    cutoff = ratio * (1.0 + PASSBAND) / 2        # centre of the transition band
    k = int(math.ceil(half))
    taps = np.arange(-k + 1, k + 1)              # input offsets around floor(t)
    width = taps.size

    pad = k + 1
    xp = np.concatenate([np.zeros(pad), x, np.zeros(k + down + 2)])  # zeros beyond the ends
    step = xp.strides[0]
    rows_per_block = max(1, _BLOCK // width)
    norm = np.i0(beta)
    for phase in range(min(up, n_out)):
        base, rem = divmod(phase * down, up)     # output `phase` sits at input base + rem/up
        d = rem / up - taps                      # distance from each tap to that instant
        window = np.i0(beta * np.sqrt(np.clip(1.0 - (d / half) ** 2, 0.0, None))) / norm
        h = cutoff * np.sinc(cutoff * d) * np.where(np.abs(d) <= half, window, 0.0)
        count = (n_out - phase + up - 1) // up   # outputs with this phase
        first = pad + base - k + 1
        for m0 in range(0, count, rows_per_block):
            m1 = min(count, m0 + rows_per_block)
            view = as_strided(xp[first + m0 * down:], shape=(m1 - m0, width),
                              strides=(down * step, step), writeable=False)
            out[phase + m0 * up:phase + m1 * up:up] = view @ h
    return out.astype(np.float32)
