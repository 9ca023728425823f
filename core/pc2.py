"""PC2 point-cache files (3ds Max / Blender MeshCache "PC2" format). No bpy.

Layout (little endian)::

    char[12] b"POINTCACHE2\\0"
    int32    version      (1)
    int32    numPoints
    float32  startFrame
    float32  sampleRate   (frames between samples)
    int32    numSamples
    float32  xyz[numSamples][numPoints][3]

``write_pc2`` streams: it accepts one (T, N, 3) array or any iterable of
chunks, each (t, N, 3) or a single frame (N, 3), so a 600 s x 30 fps x 5023
vertex take (~1.1 GB) never sits twice in memory. It writes to a temporary
file beside the target and renames it at the end, so a failed or cancelled
write (an exception raised by the chunk iterator) leaves any previous file
untouched and no partial file behind; a full disk or read-only folder raises
`core.atomic.WriteError` naming the path.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterable, Union

import numpy as np

from .atomic import min_size, replacing

MAGIC = b"POINTCACHE2\0"
VERSION = 1
_HEADER = struct.Struct("<12siiffi")
HEADER_SIZE = _HEADER.size          # 32 bytes
_F32 = np.dtype("<f4")

Frames = Union[np.ndarray, Iterable[np.ndarray]]


class PC2Error(ValueError):
    """A PC2 file or frame data that cannot be read or written as PC2."""


BLOCK_FRAMES = 256   # conversion/checks work on this many frames at a time


def _chunks(frames: Frames):
    """Yield float32 little-endian (t, N, 3) blocks of at most BLOCK_FRAMES frames."""
    if isinstance(frames, np.ndarray):
        frames = (frames,)
    for chunk in frames:
        chunk = np.asarray(chunk)
        if chunk.ndim == 2:
            chunk = chunk[None]
        if chunk.ndim != 3 or chunk.shape[-1] != 3:
            raise PC2Error(f"PC2 frames must be (T, N, 3) or (N, 3) chunks, got shape {chunk.shape}")
        for i in range(0, len(chunk), BLOCK_FRAMES):
            yield np.ascontiguousarray(chunk[i:i + BLOCK_FRAMES], dtype=_F32)


def write_pc2(path, frames: Frames, start_frame: float, sample_rate: float = 1.0) -> int:
    """Write `frames` to a PC2 file at `path`; return the number of samples written.

    `start_frame` and `sample_rate` go into the header (in frames). All chunks
    must have the same point count; at least one frame is required.
    """
    path = Path(path)
    if not np.isfinite(start_frame) or not np.isfinite(sample_rate) or sample_rate <= 0:
        raise PC2Error(f"PC2 start_frame/sample_rate must be finite and sample_rate > 0, "
                       f"got {start_frame}, {sample_rate}")
    points, samples = None, 0
    with replacing(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"\0" * HEADER_SIZE)             # patched once the count is known
            for chunk in _chunks(frames):
                if points is None:
                    points = chunk.shape[1]
                    if points == 0:
                        raise PC2Error("PC2 frames have no points")
                elif chunk.shape[1] != points:
                    raise PC2Error(f"PC2 chunk has {chunk.shape[1]} points, expected {points}")
                if not np.isfinite(chunk).all():
                    raise PC2Error(f"PC2 frames {samples}..{samples + len(chunk) - 1} contain NaN/inf")
                chunk.tofile(f)                      # no extra copy of the chunk
                samples += len(chunk)
            if samples == 0:
                raise PC2Error("no frames to write to the PC2 file")
            f.seek(0)
            f.write(_HEADER.pack(MAGIC, VERSION, points, float(start_frame),
                                 float(sample_rate), samples))
        min_size(HEADER_SIZE + points * samples * 12)(tmp)   # every frame reached the disk
    return samples


def read_pc2_header(path) -> tuple[int, float, float, int]:
    """(numPoints, startFrame, sampleRate, numSamples) of a PC2 file, validated."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(HEADER_SIZE)
    if len(head) < HEADER_SIZE:
        raise PC2Error(f"{path}: too short for a PC2 header")
    magic, version, points, start, rate, samples = _HEADER.unpack(head)
    if magic != MAGIC:
        raise PC2Error(f"{path}: not a PC2 file (magic {magic!r})")
    if version != VERSION:
        raise PC2Error(f"{path}: unsupported PC2 version {version}")
    expected = HEADER_SIZE + points * samples * 12
    size = path.stat().st_size
    if points <= 0 or samples < 0 or size < expected:
        raise PC2Error(f"{path}: header says {samples} samples x {points} points "
                       f"({expected} bytes) but the file has {size} bytes")
    return points, start, rate, samples


def read_pc2(path, mmap: bool = False) -> tuple[np.ndarray, float, float]:
    """Return (frames (T, N, 3) float32, start_frame, sample_rate).

    With mmap=True the frames are a read-only memory map (for long caches).
    """
    points, start, rate, samples = read_pc2_header(path)
    if mmap:
        frames = np.memmap(path, _F32, "r", HEADER_SIZE, (samples, points, 3))
    else:
        frames = np.fromfile(path, _F32, samples * points * 3, offset=HEADER_SIZE)
        frames = frames.reshape(samples, points, 3).astype(np.float32, copy=False)
    return frames, float(start), float(rate)
