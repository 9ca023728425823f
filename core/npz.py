"""Reading the .npz files the add-on ships or is given (rig fields, network weights), no bpy.

A missing, truncated, replaced or damaged file, or one from another version, is refused
with DataFileError naming the file, what is wrong and what to do; never "BadZipFile:
File is not a zip file", "Bad CRC-32" or "KeyError: 'fields'" from deep inside a bake.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from .atomic import describe


class DataFileError(ValueError):
    """A data file cannot be used; the message names it, the problem and the fix."""


class Arrays(dict):
    """The arrays of one .npz by name; asking for one it lacks raises DataFileError."""

    def __init__(self, path: Path, fix: str, arrays: dict, prefix: str = ""):
        super().__init__(arrays)
        self.path, self.fix, self.prefix = path, fix, prefix

    def __missing__(self, name):
        raise DataFileError(f"'{self.path}' has no array '{self.prefix}{name}': it was written by another "
                            f"version or for something else; {self.fix}.")

    def under(self, prefix: str) -> "Arrays":
        """The arrays named `prefix...`, by the rest of their name (e.g. "param/")."""
        return Arrays(self.path, self.fix, {k[len(prefix):]: v for k, v in self.items() if k.startswith(prefix)},
                      self.prefix + prefix)


def read_npz(path, fix: str, what: str = "data file") -> Arrays:
    """Every array of `path`, read now (a damaged member fails its checksum here, with
    its name, not halfway through a bake). `fix` says what to do, e.g. "reinstall the
    add-on"."""
    path = Path(path)

    def refused(problem: str) -> DataFileError:
        return DataFileError(f"{what} '{path}' {problem}; {fix}.")

    if not path.is_file():
        raise refused("is a folder, not a file" if path.is_dir() else "is missing")
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            magic = handle.read(6)
        if size == 0:
            raise refused("is empty (0 bytes)")
        if magic == b"\x93NUMPY":
            raise refused("is a single .npy array, not an .npz archive of arrays")
        if not magic.startswith(b"PK"):
            raise refused("is not an .npz file (it does not start like one: damaged or replaced by another file)")
        try:
            data = np.load(path, allow_pickle=False)
        except (zipfile.BadZipFile, EOFError, ValueError):
            raise refused(f"is cut short or damaged ({size} bytes; the archive's index at its end is "
                          "missing, as in a copy or download that stopped early)") from None
        with data:
            arrays = {}
            for name in data.files:
                try:
                    arrays[name] = data[name]
                except (zipfile.BadZipFile, EOFError, ValueError, zlib.error) as err:
                    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                    raise refused(f"is damaged: its array '{name}' cannot be read ({reason})") from None
    except OSError as err:
        reason, todo = describe(err, reading=True)
        raise DataFileError(f"{what} '{path}' cannot be read: {reason}; {todo}.") from None
    return Arrays(path, fix, arrays)
