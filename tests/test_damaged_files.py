"""Damaged data files and system errors in words (issue 13), bpy-free: every .npz the
add-on reads (rig fields, network weights) is refused, when damaged, with the file, the
problem and the fix, and leaves the file byte-identical; every OSError a user can meet
reads as the path, what happened and what to do, never "[Errno 28] ..."; a movie cut
short is recognised. Tiny files generated here."""
import contextlib
import errno
import hashlib
import io
import json
import os
import struct
import subprocess
import zipfile

import numpy as np
import pytest

from flame_lipsync import cli
from flame_lipsync.core import atomic
from flame_lipsync.core.messages import user_message
from flame_lipsync.core.npz import DataFileError, read_npz
from flame_lipsync.core.rig import CONTROLS, RIG_FILE, load_rig
from flame_lipsync.models import engine
from flame_lipsync.models.numpy_inference import read_weights, update_meta

WEIGHTS = engine.weights_path("neural_fast")


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rebuilt(source, target, drop=(), replace=None):
    """A copy of the .npz `source` without the arrays in `drop`, others replaced."""
    with np.load(source, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k not in drop}
    arrays.update(replace or {})
    np.savez(target, **arrays)
    return target


def damaged_member(source, target):
    """An uncompressed copy of `source` with one byte flipped inside its first array's data:
    the zip index is intact, that array's CRC-32 fails."""
    rebuilt(source, target)
    raw = bytearray(target.read_bytes())
    with zipfile.ZipFile(target) as archive:
        info = archive.infolist()[0]
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    raw[start + info.file_size - 1] ^= 0xFF
    target.write_bytes(bytes(raw))
    return target, info.filename.removesuffix(".npy")


RIG_CASES = {
    # name: (make the file, words the message must hold)
    "missing": (lambda p: None, "is missing"),
    "a folder": (lambda p: p.mkdir(), "is a folder"),
    "empty": (lambda p: p.write_bytes(b""), "is empty"),
    "text": (lambda p: p.write_text("fields = 1\n"), "is not an .npz file"),
    "a .npy": (lambda p: np.save(open(p, "wb"), np.zeros(3)), "is a single .npy array"),
    "truncated": (lambda p: p.write_bytes(RIG_FILE.read_bytes()[:RIG_FILE.stat().st_size // 2]),
                  "is cut short or damaged"),
    "no fields": (lambda p: rebuilt(RIG_FILE, p, drop=("fields",)), "has no array 'fields'"),
    "other controls": (lambda p: rebuilt(RIG_FILE, p, replace={"controls": np.array(CONTROLS[:3])}),
                       "built for other controls"),
}


@pytest.mark.parametrize("case", list(RIG_CASES))
def test_damaged_rig_fields_are_refused_naming_the_file_and_the_fix(case, tmp_path):
    make, words = RIG_CASES[case]
    path = tmp_path / "rig_fields.npz"
    make(path)
    before = digest(path) if path.is_file() else None
    load_rig.cache_clear()
    try:
        with pytest.raises(DataFileError) as caught:
            load_rig(path)
    finally:
        load_rig.cache_clear()
    message = str(caught.value)
    assert str(path) in message and words in message and "make rig" in message, message
    assert (digest(path) if path.is_file() else None) == before   # read, never changed


def test_an_array_failing_its_checksum_is_named(tmp_path):
    path, name = damaged_member(RIG_FILE, tmp_path / "rig_fields.npz")
    before = digest(path)
    with pytest.raises(DataFileError, match=rf"'{path}' is damaged: its array '{name}' cannot be read"
                                            r" \(.*CRC.*\); reinstall the add-on"):
        read_npz(path, "reinstall the add-on", "rig fields")
    assert digest(path) == before


WEIGHT_CASES = {
    "truncated": (lambda p: p.write_bytes(WEIGHTS.read_bytes()[:50_000]), "is cut short or damaged"),
    "not an npz": (lambda p: p.write_bytes(b"<html>404 Not Found</html>"), "is not an .npz file"),
    "bad meta": (lambda p: rebuilt(WEIGHTS, p, replace={"meta": np.array("{config: ")}),
                 "its 'meta' is not valid JSON"),
    "meta without config": (lambda p: rebuilt(WEIGHTS, p, replace={"meta": np.array("{}")}),
                            "no network description"),
    "other format": (lambda p: rebuilt(WEIGHTS, p, replace={"meta": np.array(json.dumps(
        {"format": "other/2", "config": {}}))}), "are not a flame-lipsync-voca/1 weights file"),
    "no norm": (lambda p: rebuilt(WEIGHTS, p, drop=("norm/mean",)), "has no array 'norm/mean'"),
}


@pytest.mark.parametrize("case", list(WEIGHT_CASES))
def test_damaged_weights_are_refused_naming_the_file_and_the_fix(case, tmp_path):
    if not WEIGHTS.is_file():
        pytest.skip("no shipped weights")
    make, words = WEIGHT_CASES[case]
    path = tmp_path / "neural_fast.npz"
    make(path)
    before = digest(path)
    with pytest.raises(DataFileError) as caught:
        read_weights(path)
    message = str(caught.value)
    assert str(path) in message and words in message and "python cli.py train" in message, message
    assert digest(path) == before


def test_a_missing_parameter_names_itself(tmp_path):
    if not WEIGHTS.is_file():
        pytest.skip("no shipped weights")
    with np.load(WEIGHTS) as data:
        first = next(k for k in data.files if k.startswith("param/"))
    path = rebuilt(WEIGHTS, tmp_path / "w.npz", drop=(first,))
    _, params, *_ = read_weights(path)
    with pytest.raises(DataFileError, match=rf"has no array '{first}'"):
        params[first.removeprefix("param/")]


def test_engine_meta_of_damaged_shipped_weights(tmp_path, monkeypatch):
    """The panel's style list and the engine registry read the meta: damaged, it says so."""
    if not WEIGHTS.is_file():
        pytest.skip("no shipped weights")
    (tmp_path / WEIGHTS.name).write_bytes(WEIGHTS.read_bytes()[:1000])
    monkeypatch.setattr(engine, "WEIGHTS_DIR", tmp_path)
    engine.weights_meta.cache_clear()
    try:
        with pytest.raises(DataFileError, match=rf"network weights '{tmp_path / WEIGHTS.name}' is cut short"):
            engine.weights_meta("neural_fast")
    finally:
        engine.weights_meta.cache_clear()


def test_calibration_rewrite_of_damaged_weights_keeps_the_file(tmp_path):
    if not WEIGHTS.is_file():
        pytest.skip("no shipped weights")
    path = tmp_path / "w.npz"
    path.write_bytes(WEIGHTS.read_bytes()[:70_000])
    before = digest(path)
    with pytest.raises(DataFileError, match="is cut short"):
        update_meta(path, gain=1.0)
    assert digest(path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


def test_calibration_rewrite_is_atomic(tmp_path):
    if not WEIGHTS.is_file():
        pytest.skip("no shipped weights")
    path = tmp_path / "w.npz"
    path.write_bytes(WEIGHTS.read_bytes())
    assert update_meta(path, note="calibrated")["note"] == "calibrated"
    assert read_weights(path)[4]["note"] == "calibrated"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]       # no temporary file left


def test_damaged_data_reads_as_a_user_error_in_the_cli(tmp_path):
    path = tmp_path / "rig.npz"
    path.write_bytes(b"PK\x03\x04 cut")
    with pytest.raises(DataFileError) as caught:
        read_npz(path, "reinstall the add-on")
    line = cli.user_message(caught.value)
    assert line.startswith(f"data file '{path}' is cut short") and "a bug" not in line


# ----------------------------------------------------------------------------- system errors in words

ERRNO_CASES = [
    (errno.ENOSPC, "could not write '{p}': the disk is full; free some space or write to another disk."),
    (errno.EDQUOT, "could not write '{p}': the disk quota is exhausted; free some space"),
    (errno.EROFS, "could not write '{p}': the file system is read-only; choose a writable folder."),
    (errno.EFBIG, "could not write '{p}': the file is too large for this file system; write to another disk."),
    (errno.EACCES, "could not use '{p}': permission denied; choose a folder you can write to."),
    (errno.EPERM, "could not use '{p}': permission denied; choose a folder you can write to."),
    (errno.ENOTDIR, "could not use '{p}': a file is in the way where a folder should be; rename or move"),
    (errno.EISDIR, "could not use '{p}': it is a folder; give a file name, not a folder."),
    (errno.ENAMETOOLONG, "could not use '{p}': the name is too long; choose a shorter path."),
    (errno.ENOENT, "could not use '{p}': it does not exist; check the path, or choose another folder."),
    (errno.EIO, "could not use '{p}': the disk reported an input/output error; check the disk"),
    (errno.EBUSY, "could not use '{p}': Device or resource busy; check the path."),
]


@pytest.mark.parametrize("code,expected", ERRNO_CASES, ids=[errno.errorcode[c] for c, _ in ERRNO_CASES])
def test_each_errno_reads_as_words_with_the_path_and_the_fix(code, expected):
    path = "/shots/seq010/sh020_Head_lipsync.pc2"
    err = OSError(code, os.strerror(code), path)
    for message in (user_message(err), cli.user_message(err)):
        assert message.startswith(expected.format(p=path)), message
        assert "Errno" not in message and "[" not in message


def test_numpy_full_disk_error_without_errno():
    message = user_message(OSError("1000 requested and 12 written"))
    assert message == "could not write: the disk is full; free some space or write to another disk."


def test_a_rename_names_both_paths():
    err = OSError(errno.EXDEV, os.strerror(errno.EXDEV), "/tmp/a", None, "/mnt/b")
    assert user_message(err).startswith("could not use '/tmp/a' to '/mnt/b': Invalid cross-device link")


def test_our_sentences_pass_through_and_bugs_say_so():
    ours = FileNotFoundError("audio file 'x.wav' does not exist")
    assert user_message(ours) == "audio file 'x.wav' does not exist"
    bug = user_message(KeyError("fields"))
    assert bug.startswith("unexpected KeyError: 'fields' (a bug: please report it") and "console" in bug
    assert "FLAME_LIPSYNC_DEBUG=1" in cli.user_message(KeyError("fields"))


def _real_error(action):
    try:
        action()
    except OSError as err:
        return err
    raise AssertionError("no OSError")


def test_real_system_errors_read_as_words(tmp_path):
    (tmp_path / "file").write_text("x")
    real = {
        "a file is in the way": _real_error(lambda: open(tmp_path / "file" / "out.pc2", "wb")),
        "it is a folder": _real_error(lambda: open(tmp_path, "wb")),
        "the name is too long": _real_error(lambda: open(tmp_path / ("x" * 300), "wb")),
        "it does not exist": _real_error(lambda: open(tmp_path / "none" / "a.pc2", "rb")),
    }
    for words, err in real.items():
        message = user_message(err)
        assert words in message and str(tmp_path) in message and "Errno" not in message, message


@contextlib.contextmanager
def tmpfs(folder, options):
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root and mount): real disk-full / read-only "
                    "errors skipped")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_real_full_disk_and_read_only_read_as_words(tmp_path):
    with tmpfs(tmp_path / "small", "size=16k") as small:
        def fill():
            with open(small / "big.bin", "wb") as handle:
                handle.write(b"\0" * 100_000)
                handle.flush()
                os.fsync(handle.fileno())
        err = _real_error(fill)
        assert user_message(err).startswith("could not write") and "the disk is full" in user_message(err)
    with tmpfs(tmp_path / "ro", "ro,size=16k") as ro:
        err = _real_error(lambda: open(ro / "x.pc2", "wb"))
        message = user_message(err)
        assert message == f"could not write '{ro / 'x.pc2'}': the file system is read-only; choose a writable folder."


def test_reading_a_file_gives_a_reading_fix():
    reason, todo = atomic.describe(PermissionError(errno.EACCES, "Permission denied", "/a.wav"), reading=True)
    assert reason == "permission denied" and "make the file readable" in todo


# ----------------------------------------------------------------------------- movies

def box(kind: bytes, payload: bytes = b"", size: int | None = None) -> bytes:
    return struct.pack(">I4s", len(payload) + 8 if size is None else size, kind) + payload


MOVIE = box(b"ftyp", b"isom\0\0\2\0") + box(b"free") + box(b"mdat", b"\1" * 100) + box(b"moov", b"\0" * 20)


@pytest.mark.parametrize("case,data", [
    ("finished", MOVIE),
    ("64-bit mdat", box(b"ftyp", b"isom") + struct.pack(">I4sQ", 1, b"mdat", 16 + 4) + b"\1" * 4 + box(b"moov")),
])
def test_complete_movie_passes(case, data, tmp_path):
    (tmp_path / "m.mp4").write_bytes(data)
    atomic.check_mp4(tmp_path / "m.mp4")


@pytest.mark.parametrize("case,data", [
    ("open-ended mdat (what a full disk leaves)", box(b"ftyp", b"isom") + box(b"free") + box(b"mdat", size=0) + b"\1" * 50),
    ("cut inside a box", MOVIE[:-10]),
    ("no index", MOVIE[:-28]),
    ("not a movie", b"RIFF....AVI LIST"),
    ("empty", b""),
])
def test_incomplete_movie_is_refused(case, data, tmp_path):
    (tmp_path / "m.mp4").write_bytes(data)
    with pytest.raises(atomic.WriteError, match="came out incomplete .*free some space"):
        atomic.check_mp4(tmp_path / "m.mp4")


def test_arrays_helper_reads_everything_once(tmp_path):
    path = tmp_path / "a.npz"
    buffer = io.BytesIO()
    np.savez_compressed(buffer, a=np.arange(3), b=np.ones(2))
    path.write_bytes(buffer.getvalue())
    arrays = read_npz(path, "fix it")
    assert sorted(arrays) == ["a", "b"] and arrays["a"].tolist() == [0, 1, 2]
    with pytest.raises(DataFileError, match=rf"'{path}' has no array 'c': .*; fix it\."):
        arrays["c"]
