"""Atomic, checked file writes (no bpy): every file the add-on produces (.blend, PC2,
.npy, movie) is written to a temporary file beside its target, checked, then renamed
over the target. A failure (disk full, read-only folder, a file where a folder should
be, a check that fails) leaves the previous file byte for byte as it was, removes the
temporary file, and raises `WriteError` with the path and what to do.
"""
from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

import numpy as np


class WriteError(RuntimeError):
    """A file could not be written; the message names the path, the reason and what to do."""


_REASONS = {
    errno.ENOSPC: ("the disk is full", "free some space or write to another disk"),
    errno.EDQUOT: ("the disk quota is exhausted", "free some space or write to another disk"),
    errno.EROFS: ("the file system is read-only", "choose a writable folder"),
    errno.EACCES: ("permission denied", "choose a folder you can write to"),
    errno.EPERM: ("permission denied", "choose a folder you can write to"),
    errno.ENOTDIR: ("a file is in the way where a folder should be",
                    "rename or move that file, or choose another output path"),
    errno.EISDIR: ("it is a folder", "give a file name, not a folder"),
    errno.ENAMETOOLONG: ("the name is too long", "choose a shorter path"),
    errno.EFBIG: ("the file is too large for this file system", "write to another disk"),
    errno.ENOENT: ("it does not exist", "check the path, or choose another folder"),
    errno.EIO: ("the disk reported an input/output error", "check the disk, or use another one"),
}
# Reading a file the user chose: the fix is about that file, not about a folder to write to.
_READ_REASONS = {
    errno.EACCES: ("permission denied", "make the file readable (check its permissions) or copy it "
                                        "to a folder you own"),
    errno.EPERM: ("permission denied", "make the file readable (check its permissions) or copy it "
                                       "to a folder you own"),
    errno.ENOENT: ("it does not exist", "check the path"),
    errno.EISDIR: ("it is a folder", "choose a file, not a folder"),
    errno.EIO: ("the disk reported a read error", "copy the file to another disk and try again"),
}


def describe(err: OSError, reading: bool = False) -> tuple[str, str]:
    """(what happened, what to do) for an OSError, in words; `reading`: the fix for a
    file that is read (permission: make it readable), else for one that is written."""
    if err.errno is None and "requested and" in str(err):   # numpy's tofile on a full disk
        return _REASONS[errno.ENOSPC]
    if reading and err.errno in _READ_REASONS:
        return _READ_REASONS[err.errno]
    reason, todo = _REASONS.get(err.errno, (err.strerror or str(err) or type(err).__name__,
                                            "check the path"))
    return reason, todo


def write_error(path, err: BaseException, kept: bool | None = None) -> WriteError:
    """A WriteError for `path`; kept=True says the previous file is untouched."""
    if isinstance(err, OSError):
        reason, todo = describe(err)
    else:
        reason, todo = str(err).splitlines()[0] if str(err) else type(err).__name__, "check the output path"
    tail = " (the previous file was left as it was)" if kept else ""
    return WriteError(f"could not write '{path}': {reason}{tail}; {todo}.")


def temp_beside(path) -> Path:
    """A hidden temporary name in the target's folder (same file system: rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def check_writable(path, what: str = "output") -> Path:
    """Refuse early, before any slow work, an output that cannot be written: its folder
    is a file, is read-only, or the path is a folder. Creates missing folders."""
    path = Path(path)
    if path.is_dir():
        raise WriteError(f"{what} '{path}' is a folder: give a file name (e.g. {path / 'shot'}{path.suffix}).")
    for parent in [path.parent, *path.parent.parents]:
        if parent.exists() and not parent.is_dir():
            raise WriteError(f"cannot write {what} '{path}': '{parent}' is a file where a folder should be; "
                             "rename or move that file, or choose another output path.")
        if parent.exists():
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(path, err) from None
    probe = temp_beside(path).with_suffix(".probe")
    try:
        with open(probe, "wb"):
            pass
    except OSError as err:
        raise write_error(path, err) from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return path


@contextlib.contextmanager
def replacing(path, verify=None):
    """`with replacing(target) as tmp:` write `tmp`; on a clean exit `verify(tmp)` runs
    (raise to refuse), the data is flushed to disk and `tmp` is renamed over `target`.
    On any failure `tmp` is removed, `target` is untouched and WriteError is raised
    (a non-OSError raised by the body is re-raised as it is)."""
    path = Path(path)
    tmp = temp_beside(path)
    existed = path.exists()
    try:
        try:
            yield tmp
            if not tmp.is_file():
                raise WriteError(f"could not write '{path}': nothing was written; check the output path.")
            if verify is not None:
                verify(tmp)
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as err:
            raise write_error(path, err, kept=existed) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def min_size(size: int):
    """A verify function: the file holds at least `size` bytes."""
    def verify(tmp: Path):
        got = tmp.stat().st_size
        if got < size:
            raise WriteError(f"could not write '{tmp}': {got} of {size} bytes reached the disk; "
                             "free some space or write to another disk.")
    return verify


def write_text(path, text: str) -> None:
    """A text file (reports, tables), atomically; its folder is made if missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        tmp.write_text(text)


def write_npy(path, array) -> None:
    """np.save, atomically and checked."""
    array = np.asanyarray(array)
    write_npy_blocks(path, array.shape, array.dtype, (array,))


def write_npy_blocks(path, shape, dtype, blocks) -> int:
    """Stream blocks (each (t, ...) of `shape[1:]`) into one .npy of `shape`, atomically:
    an hour of dialogue never sits in memory, and unlike a memory map a full disk is an
    error (not a crash). Returns the number of rows written."""
    dtype = np.dtype(dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    rows = 0
    with replacing(path) as tmp:
        with open(tmp, "wb") as handle:
            np.lib.format.write_array_header_2_0(handle, header) if _needs_v2(header) else \
                np.lib.format.write_array_header_1_0(handle, header)
            start = handle.tell()
            for block in blocks:
                block = np.ascontiguousarray(block, dtype=dtype)
                if block.shape[1:] != tuple(shape[1:]):
                    raise ValueError(f"block of shape {block.shape} does not fit an array of shape {tuple(shape)}")
                handle.write(block.tobytes())
                rows += len(block)
            handle.flush()
        if rows != shape[0]:
            raise ValueError(f"{rows} rows written, {shape[0]} expected")
        min_size(start + dtype.itemsize * int(np.prod(shape)))(tmp)
    return rows


def _needs_v2(header) -> bool:
    return len(repr(header)) + 12 > 65535


# --------------------------------------------------------------------------- .blend

BLEND_MAGIC = b"BLENDER"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"


def check_blend(path) -> None:
    """A saved .blend is complete: its header is Blender's and (uncompressed) its last
    block is ENDB; compressed files end in a complete zstd/gzip stream."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(16)
        handle.seek(max(0, size - 64))
        tail = handle.read()
    if head.startswith(BLEND_MAGIC):
        if b"ENDB" not in tail:
            raise WriteError(f"'{path}' was cut short ({size} bytes, no end block): the disk is probably "
                             "full; free some space or write to another disk.")
        return
    if head.startswith(ZSTD_MAGIC) or head.startswith(GZIP_MAGIC):
        _check_compressed(path, head)
        return
    raise WriteError(f"'{path}' is not a .blend file ({size} bytes); the save failed: free some space "
                     "or write to another disk.")


def _check_compressed(path: Path, head: bytes) -> None:
    if head.startswith(GZIP_MAGIC):
        import gzip
        try:
            with gzip.open(path, "rb") as handle:
                first = handle.read(7)
                while handle.read(1 << 20):
                    pass
        except (OSError, EOFError) as err:
            raise WriteError(f"'{path}' is damaged ({err}); free some space or write to another disk.") from None
        if first != BLEND_MAGIC:
            raise WriteError(f"'{path}' is not a .blend file; the save failed.")
        return
    # zstd: Blender writes seekable zstd, whose last frame is a seek table listing every
    # frame's compressed size; a file cut short has no table or sizes that do not add up.
    _check_seek_table(path)
    try:
        import zstandard
    except ImportError:
        return
    try:
        with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True) as reader:
            first = reader.read(7)
            while reader.read(1 << 20):
                pass
    except zstandard.ZstdError as err:
        raise WriteError(f"'{path}' is damaged ({err}); free some space or write to another disk.") from None
    if first != BLEND_MAGIC:
        raise WriteError(f"'{path}' is not a .blend file; the save failed.")


SEEKABLE_MAGIC = 0x8F92EAB1
SKIPPABLE_SEEK_TABLE = 0x184D2A5E


def _check_seek_table(path: Path) -> None:
    import struct
    size = path.stat().st_size
    cut = WriteError(f"'{path}' was cut short ({size} bytes, its zstd frames are incomplete): the disk is "
                     "probably full; free some space or write to another disk.")
    if size < 17:
        raise cut
    with open(path, "rb") as handle:
        handle.seek(size - 9)
        frames, descriptor, magic = struct.unpack("<IBI", handle.read(9))
        if magic != SEEKABLE_MAGIC:
            raise cut
        entry = 12 if descriptor & 0x80 else 8
        table = 8 + frames * entry + 9
        if table > size:
            raise cut
        handle.seek(size - table)
        skip_magic, skip_size = struct.unpack("<II", handle.read(8))
        if skip_magic != SKIPPABLE_SEEK_TABLE or skip_size != table - 8:
            raise cut
        raw = handle.read(frames * entry)
    compressed = sum(struct.unpack_from("<I", raw, k * entry)[0] for k in range(frames))
    if compressed + table != size:
        raise cut


# --------------------------------------------------------------------------- movie

def check_mp4(path) -> None:
    """A rendered .mp4 is complete: its top-level boxes tile the file and one is 'moov',
    the index the muxer writes when it closes the movie. Blender reports success for a
    movie cut short by a full disk; such a file has an open-ended 'mdat' and no 'moov'."""
    import struct
    path = Path(path)
    size, offset, kinds = path.stat().st_size, 0, set()
    cut = WriteError(f"'{path}' came out incomplete ({size} bytes, no movie index): the disk is "
                     "probably full; free some space or write to another disk.")
    with open(path, "rb") as handle:
        while offset < size:
            handle.seek(offset)
            head = handle.read(16)
            if len(head) < 8:
                raise cut
            length, kind = struct.unpack(">I4s", head[:8])
            if length == 1 and len(head) == 16:
                length = struct.unpack(">Q", head[8:])[0]
            elif length == 0:               # "to the end of the file": a muxer that never finished
                raise cut
            if length < 8 or offset + length > size:
                raise cut
            kinds.add(kind)
            offset += length
    if b"ftyp" not in kinds or b"moov" not in kinds:
        raise cut


# --------------------------------------------------------------------------- locks

@contextlib.contextmanager
def exclusive(path, what: str = "file"):
    """Hold an exclusive lock for `path` (a `.<name>.lock` beside it) while writing it:
    a second process writing the same file is refused at once, not interleaved. The
    lock dies with the process. Without fcntl (Windows) this is a no-op."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = Path(path)
    lock = path.with_name(f".{path.name}.lock")
    try:
        handle = open(lock, "a+")
    except OSError as err:
        raise write_error(path, err) from None
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WriteError(f"another bake is writing '{path}' right now; wait for it to finish, "
                             "or write this one to another file.") from None
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                lock.unlink()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


# --------------------------------------------------------------------------- jobs

class Staged:
    """The files of one job, all or nothing: `stage(target)` gives a temporary path
    beside `target`; `protect(target)` keeps the current content of a file another
    writer replaces in place (a hard link: no extra disk space). `commit()` renames
    every staged file over its target; on failure (or `rollback()`) staged files are
    removed and protected files get their previous content back (or are removed
    when they did not exist before). Use as a context manager."""

    def __init__(self):
        self.staged: list[tuple[Path, Path]] = []
        self.protected: list[tuple[Path | None, Path]] = []

    def stage(self, target, suffix: str = "") -> Path:
        target = Path(target)
        tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp{suffix or target.suffix}")
        self.staged.append((tmp, target))
        return tmp

    def protect(self, target) -> None:
        target = Path(target)
        backup = None
        if target.exists():
            backup = target.with_name(f".{target.name}.{os.getpid()}.bak")
            with contextlib.suppress(FileNotFoundError):
                backup.unlink()
            try:
                os.link(target, backup)
            except OSError:
                import shutil
                try:
                    shutil.copy2(target, backup)
                except OSError as err:
                    raise write_error(target, err, kept=True) from None
        self.protected.append((backup, target))

    def commit(self) -> None:
        for tmp, target in self.staged:
            try:
                os.replace(tmp, target)
            except OSError as err:
                raise write_error(target, err, kept=True) from None
        self.staged.clear()
        for backup, _ in self.protected:
            if backup is not None:
                with contextlib.suppress(OSError):
                    backup.unlink()
        self.protected.clear()

    def rollback(self) -> None:
        for tmp, _ in self.staged:
            for leftover in (tmp, Path(f"{tmp}@")):  # "@": Blender's own temporary save
                with contextlib.suppress(OSError):
                    leftover.unlink()
        self.staged.clear()
        for backup, target in self.protected:
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, target)
                else:
                    target.unlink()
        self.protected.clear()

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is not None:
            self.rollback()
        else:
            self.commit()
        return False
