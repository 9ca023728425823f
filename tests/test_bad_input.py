"""Bad input and faults, bpy-free (issue 13): a corpus generated here (tiny files), each
case asserting the error, its message, and that nothing was lost: inputs byte-identical,
an existing output byte-identical after a failed write, no partial files left.
The Blender side (bakes, saves, the artist's data) is tests/blender/test_bad_input_blender.py."""
import contextlib
import hashlib
import math
import os
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from flame_lipsync import cli
from flame_lipsync.core import atomic, audio
from flame_lipsync.core.audio import AudioError, load_speech
from flame_lipsync.core.flame import FLAME_ASSETS, PROJECT_ROOT
from flame_lipsync.core.mesh_io import MeshError, load_head
from flame_lipsync.core.pc2 import write_pc2

RATE = 16000


# ----------------------------------------------------------------------------- corpus

def speechlike(seconds=1.5, rate=RATE, amp=0.3):
    """A voiced, syllable-modulated harmonic signal: speech-band energy like a voice."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = np.clip(np.sin(2 * np.pi * 3.5 * t), 0, None) ** 0.5
    return (amp * x / np.abs(x).max() * env).astype(np.float32)


def wav_bytes(samples, rate=RATE, declared_frames=None, bits=16, fmt_tag=1):
    """A PCM/float WAV; declared_frames lets the header claim more data than is there."""
    samples = np.asarray(samples)
    if fmt_tag == 3:
        data = samples.astype("<f4").tobytes()
        bits = 32
    else:
        data = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    block = bits // 8
    size = (declared_frames if declared_frames is not None else len(data) // block) * block
    fmt = struct.pack("<HHIIHH", fmt_tag, 1, rate, rate * block, block, bits)
    return (b"RIFF" + struct.pack("<I", 36 + size) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", size) + data)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder: Path) -> dict:
    """Every file under folder (hidden ones too) -> sha256: what 'nothing lost' compares."""
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(params=["soundfile", "numpy"])
def decoder(request, monkeypatch):
    """Run each audio case with libsndfile and with core.audio_numpy (no soundfile)."""
    if request.param == "numpy":
        real = audio._optional
        monkeypatch.setattr(audio, "_optional", lambda name: None if name in ("soundfile", "aud") else real(name))
    elif audio._optional("soundfile") is None:
        pytest.skip("soundfile is not installed")
    return request.param


AUDIO_CASES = {
    # name: (file bytes, message fragment)
    "truncated": (lambda: wav_bytes(speechlike(1.0), declared_frames=2 * RATE), "cut short"),
    "rate_1hz": (lambda: wav_bytes(speechlike(1.0), rate=1), "sample rate of 1 Hz"),
    "rate_1mhz": (lambda: wav_bytes(speechlike(1.0), rate=1_000_000), "outside 4 kHz-384 kHz"),
    "dc_only": (lambda: wav_bytes(np.full(RATE, 0.5, np.float32)), "no speech in it"),
    "noise_-80dB": (lambda: wav_bytes(np.random.default_rng(0).normal(0, 10 ** (-80 / 20), RATE).astype(np.float32),
                                      fmt_tag=3), "no speech in it"),
    "digital_silence": (lambda: wav_bytes(np.zeros(RATE, np.float32)), "digital silence"),
    "garbage": (lambda: os.urandom(3000), "could not be decoded"),
    "text_renamed": (lambda: b"hello, this is not audio\n" * 40, "could not be decoded"),
    "empty_file": (lambda: b"", "could not be decoded"),
    "nan_float": (lambda: wav_bytes(np.full(RATE, np.nan, np.float32), fmt_tag=3), "NaN"),
    "one_sample": (lambda: wav_bytes(speechlike(1.0)[:3]), "shorter than one animation frame"),
}


@pytest.mark.parametrize("case", sorted(AUDIO_CASES))
def test_bad_audio_is_refused_with_a_reason(case, decoder, tmp_path):
    make, fragment = AUDIO_CASES[case]
    path = tmp_path / f"{case}.wav"
    path.write_bytes(make())
    before = tree(tmp_path)
    with pytest.raises(AudioError) as info:
        load_speech(path)
    message = str(info.value)
    assert fragment in message, message
    assert str(path) in message and "\n" not in message
    assert tree(tmp_path) == before                      # the input is byte-identical


def test_truncated_audio_names_the_missing_seconds_and_bakes_with_the_flag(decoder, tmp_path):
    path = tmp_path / "cut.wav"
    path.write_bytes(wav_bytes(speechlike(1.0), declared_frames=3 * RATE))
    with pytest.raises(AudioError, match=r"declares 3\.00 s but the file holds 1\.00 s \(2\.00 s missing"):
        load_speech(path)
    token = audio.ALLOW_TRUNCATED.set(True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            speech = load_speech(path)
    finally:
        audio.ALLOW_TRUNCATED.reset(token)
    assert abs(speech.duration - 1.0) < 1e-3
    assert any("2.00 s missing" in str(w.message) for w in caught)


@pytest.mark.parametrize("offset", [0.0, 0.4])
def test_valid_speech_still_loads_with_or_without_dc_offset(offset, decoder, tmp_path):
    path = tmp_path / "ok.wav"
    path.write_bytes(wav_bytes(np.clip(speechlike(1.5, amp=0.3) + offset, -1, 1)))
    speech = load_speech(path)
    assert abs(speech.duration - 1.5) < 1e-3


def test_streaming_wav_header_without_length_is_not_called_truncated(tmp_path):
    path = tmp_path / "stream.wav"
    data = bytearray(wav_bytes(speechlike(1.0)))
    data[40:44] = struct.pack("<I", 0xFFFFFFFF)    # "unknown length", as live recorders write
    path.write_bytes(bytes(data))
    assert audio.declared_frames(path) is None


@pytest.mark.parametrize("case,fragment", [("missing", "does not exist"), ("folder", "is a folder")])
def test_audio_path_that_is_not_a_file(case, fragment, tmp_path):
    path = tmp_path / "dialogue.wav"
    if case == "folder":
        path.mkdir()
    with pytest.raises(AudioError, match=fragment):
        load_speech(path)


# ----------------------------------------------------------------------------- meshes

@pytest.fixture(scope="module")
def flame():
    path = FLAME_ASSETS / "flame_template.ply"
    if not path.is_file():
        pytest.skip(f"shared assets not found at {path}")
    return load_head(path)


def obj_text(vertices, faces, one_based=True):
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    lines += [f"f {a + one_based} {b + one_based} {c + one_based}" for a, b, c in faces]
    return "\n".join(lines) + "\n"


def ply_bytes(vertices, faces, ascii=False):
    head = (f"ply\nformat {'ascii' if ascii else 'binary_little_endian'} 1.0\nelement vertex {len(vertices)}\n"
            "property float x\nproperty float y\nproperty float z\n"
            f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n").encode()
    if ascii:
        body = "".join(f"{x} {y} {z}\n" for x, y, z in vertices) + "".join(f"3 {a} {b} {c}\n" for a, b, c in faces)
        return head + body.encode()
    rows = np.zeros(len(faces), [("n", "u1"), ("i", "<i4", (3,))])
    rows["n"], rows["i"] = 3, faces
    return head + np.asarray(vertices, "<f4").tobytes() + rows.tobytes()


def _shuffled(v, f):
    perm = np.random.default_rng(1).permutation(len(v))      # new index of each old vertex
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(len(v))
    return v[inverse], perm[f]       # the same surface, FLAME's vertices in another order


def _other_faces(v, f):
    g = f.copy()
    g[0] = [g[0][0], g[0][1], (g[0][2] + 7) % len(v)]
    return v, g


MESH_CASES = {
    # name: (writer(v, f) -> (suffix, bytes), message fragment)
    "obj_index_out_of_range": (lambda v, f: (".obj", obj_text(v, np.vstack([f[:-1], [[0, 1, 99999]]])).encode()),
                               "outside 0..5022"),
    "obj_negative_index_too_far": (lambda v, f: (".obj", (obj_text(v, f[:-1]) + "f -1 -2 -9999\n").encode()),
                                   "outside 0..5022"),
    "obj_index_zero": (lambda v, f: (".obj", (obj_text(v, f[:-1]) + "f 0 1 2\n").encode()), "none of them 0"),
    "obj_nan_coordinate": (lambda v, f: (".obj", obj_text(np.vstack([v[:10], [[np.nan, 0, 0]], v[11:]]), f).encode()),
                           "NaN or infinite"),
    "obj_inf_coordinate": (lambda v, f: (".obj", obj_text(np.vstack([v[:3], [[0, np.inf, 0]], v[4:]]), f).encode()),
                           "NaN or infinite"),
    "obj_malformed_vertex": (lambda v, f: (".obj", ("v 1.0 2.0\n" + obj_text(v, f)).encode()), "line 1 is damaged"),
    "obj_text_in_face": (lambda v, f: (".obj", (obj_text(v, f) + "f a b c\n").encode()), "is damaged"),
    "ply_binary_truncated": (lambda v, f: (".ply", ply_bytes(v, f)[:-5000]), "cut short"),
    "ply_ascii_truncated": (lambda v, f: (".ply", ply_bytes(v, f, ascii=True)[:-200000]), "cut short"),
    "ply_bad_header": (lambda v, f: (".ply", b"ply\nformat binary_little_endian 1.0\nelement vertex lots\nend_header\n"),
                       "is damaged"),
    "ply_not_ply": (lambda v, f: (".ply", b"solid cube\nfacet normal 0 0 1\n"), "not a PLY file"),
    "ply_index_out_of_range": (lambda v, f: (".ply", ply_bytes(v, np.vstack([f[:-1], [[0, 1, 7000]]]))),
                               "outside 0..5022"),
    "ply_nan_coordinate": (lambda v, f: (".ply", ply_bytes(np.vstack([[[np.nan] * 3], v[1:]]), f)), "NaN or infinite"),
    "shuffled_vertex_order": (lambda v, f: (".obj", obj_text(*_shuffled(v, f)).encode()), "not FLAME topology"),
    "other_faces": (lambda v, f: (".ply", ply_bytes(*_other_faces(v, f))), "not FLAME topology"),
    "no_faces": (lambda v, f: (".ply", ply_bytes(v, f[:0])), "its 0 faces are not FLAME's"),
    "missing_faces": (lambda v, f: (".ply", ply_bytes(v, f[:-10])), "its 9966 faces"),
    "wrong_vertex_count": (lambda v, f: (".obj", obj_text(v[:100], f[:0]).encode()), "expects 5023 vertices, got 100"),
    "unsupported_format": (lambda v, f: (".stl", b"solid x\n"), "unsupported mesh format"),
}


@pytest.mark.parametrize("case", sorted(MESH_CASES))
def test_bad_head_file_is_refused_before_blender_sees_it(case, flame, tmp_path):
    v, f = flame
    suffix, data = MESH_CASES[case][0](v, f)
    path = tmp_path / f"{case}{suffix}"
    path.write_bytes(data)
    before = tree(tmp_path)
    with pytest.raises(MeshError) as info:
        load_head(path)
    message = str(info.value)
    assert MESH_CASES[case][1] in message, message
    assert "\n" not in message and str(path) in message
    assert tree(tmp_path) == before


@pytest.mark.parametrize("variant", ["reordered_faces", "flipped_winding", "obj_negative_indices", "ascii_ply"])
def test_flame_head_in_other_spellings_still_loads(variant, flame, tmp_path):
    v, f = flame
    if variant == "reordered_faces":
        path, data = tmp_path / "h.ply", ply_bytes(v, f[::-1])
    elif variant == "flipped_winding":
        path, data = tmp_path / "h.ply", ply_bytes(v, f[:, ::-1])
    elif variant == "ascii_ply":
        path, data = tmp_path / "h.ply", ply_bytes(v, f, ascii=True)
    else:   # OBJ's relative indices: -1 is the latest vertex
        lines = [f"v {x} {y} {z}" for x, y, z in v] + [f"f {a - len(v)} {b - len(v)} {c - len(v)}" for a, b, c in f]
        path, data = tmp_path / "h.obj", ("\n".join(lines) + "\n").encode()
    path.write_bytes(data)
    got, faces = load_head(path)
    assert got.shape == (5023, 3) and faces.shape == (9976, 3)


def test_face_fingerprint_matches_every_shared_head(flame):
    from flame_lipsync.core.flame import SHARED_HEADS
    for name in SHARED_HEADS:
        if (FLAME_ASSETS / name).is_file():
            load_head(FLAME_ASSETS / name)


# ----------------------------------------------------------------------------- atomic writes

def _mount(folder: Path, options: str) -> bool:
    if os.name != "posix" or os.geteuid() != 0:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


@contextlib.contextmanager
def small_disk(tmp_path, size="256k", prepare=None):
    """A real, small file system (tmpfs) at tmp_path/disk; skipped where it cannot mount."""
    folder = tmp_path / "disk"
    if not _mount(folder, f"size={size}"):
        pytest.skip("cannot mount a small tmpfs here (needs root and mount): disk-full test skipped")
    try:
        if prepare:
            prepare(folder)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@contextlib.contextmanager
def read_only_folder(tmp_path):
    """A folder writes fail in: a read-only tmpfs (root ignores chmod), else chmod 555."""
    folder = tmp_path / "ro"
    if _mount(folder, "ro,size=64k"):
        try:
            yield folder
        finally:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        return
    folder.mkdir()
    folder.chmod(0o555)
    try:
        probe = folder / "probe"
        try:
            probe.write_bytes(b"")
            probe.unlink()
            pytest.skip("cannot make a read-only folder here")
        except OSError:
            pass
        yield folder
    finally:
        folder.chmod(0o755)


def _frames(t=60):
    return np.random.default_rng(0).normal(size=(t, 5023, 3)).astype(np.float32)


def test_pc2_on_a_full_disk_keeps_the_previous_cache(tmp_path):
    def prepare(folder):
        write_pc2(folder / "shot.pc2", _frames(2), 1)
    with small_disk(tmp_path, "256k", prepare) as folder:
        before = tree(folder)
        with pytest.raises(atomic.WriteError, match=r"could not write '.*shot\.pc2': the disk is full .*previous"):
            write_pc2(folder / "shot.pc2", _frames(60), 1)
        assert tree(folder) == before                       # old cache intact, no temporary file


def test_npy_on_a_full_disk_leaves_nothing(tmp_path):
    with small_disk(tmp_path, "256k") as folder:
        with pytest.raises(atomic.WriteError, match="the disk is full"):
            atomic.write_npy(folder / "v.npy", _frames(60))
        assert tree(folder) == {}


def test_pc2_into_a_read_only_folder(tmp_path):
    with read_only_folder(tmp_path) as folder:
        with pytest.raises(atomic.WriteError, match="read-only|permission denied"):
            write_pc2(folder / "shot.pc2", _frames(2), 1)
        assert tree(folder) == {}


def test_a_file_where_the_folder_should_be(tmp_path):
    (tmp_path / "shots").write_text("not a folder")
    with pytest.raises(atomic.WriteError, match="is a file where a folder should be"):
        atomic.check_writable(tmp_path / "shots" / "a" / "shot.blend")
    assert (tmp_path / "shots").read_text() == "not a folder"


def test_output_that_is_a_folder(tmp_path):
    with pytest.raises(atomic.WriteError, match="is a folder: give a file name"):
        atomic.check_writable(tmp_path)


def test_failed_job_puts_the_previous_files_back(tmp_path):
    cache = tmp_path / "shot_Head_lipsync.pc2"
    write_pc2(cache, _frames(2), 1)
    new_file = tmp_path / "new.pc2"
    before = tree(tmp_path)
    with pytest.raises(KeyError):
        with atomic.Staged() as staged:
            staged.protect(cache)
            staged.protect(new_file)
            write_pc2(cache, _frames(3), 1)            # replaced in place by its writer...
            write_pc2(new_file, _frames(3), 1)
            staged.stage(tmp_path / "shot.blend", ".blend").write_bytes(b"BLENDER partial")
            raise KeyError("the job failed after writing")
    assert tree(tmp_path) == before                    # ...and put back; new files removed


def test_second_writer_of_one_file_is_refused(tmp_path):
    target = tmp_path / "shot.blend"
    with atomic.exclusive(target):
        with pytest.raises(atomic.WriteError, match="another bake is writing"):
            with atomic.exclusive(target):
                pass
    with atomic.exclusive(target):   # released: free again
        pass
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("case", ["plain_cut", "zstd_cut", "not_blend", "empty"])
def test_incomplete_blend_is_detected(case, tmp_path):
    path = tmp_path / "x.blend"
    if case == "plain_cut":
        path.write_bytes(b"BLENDER-v405REND" + os.urandom(4000))
    elif case == "zstd_cut":
        path.write_bytes(atomic.ZSTD_MAGIC + os.urandom(5000))
    elif case == "not_blend":
        path.write_bytes(b"PK\x03\x04" + os.urandom(100))
    else:
        path.write_bytes(b"")
    with pytest.raises(atomic.WriteError):
        atomic.check_blend(path)


# ----------------------------------------------------------------------------- CLI: fps, transcript

def _cli(*args, cwd=PROJECT_ROOT):
    return subprocess.run([sys.executable, "cli.py", *args], capture_output=True, text=True, cwd=str(cwd))


@pytest.mark.parametrize("fps", ["0", "inf", "nan", "1e9", "-24", "0.5", "241"])
def test_fps_out_of_range_is_refused(fps, tmp_path):
    audio_file = tmp_path / "a.wav"
    audio_file.write_bytes(wav_bytes(speechlike(1.0)))
    before = tree(tmp_path)
    for command in (["animate", "--audio", str(audio_file), "--head", "h.ply", "--export-npy", str(tmp_path / "v.npy")],
                    ["bake", "--audio", str(audio_file), "--head", "h.ply", "--out", str(tmp_path / "o.blend")]):
        result = _cli(*command, f"--fps={fps}")
        assert result.returncode == 2, result.stderr
        assert "must be between 1 and 240 frames per second" in result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert tree(tmp_path) == before


def test_fps_check_values():
    assert cli.check_fps("29.97") == 29.97 and cli.check_fps(None) is None
    with pytest.raises(ValueError, match="number of frames"):
        cli.check_fps("fast")


def test_transcript_path_that_does_not_exist_is_not_aligned_as_words(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="transcript file '.*qa/rel/tmp.txt' does not exist"):
        cli.resolve_transcript("qa/rel/tmp.txt")
    text, path = cli.resolve_transcript("hello there world")
    assert text == "hello there world" and path is None
    assert "using the text given (3 words)" in capsys.readouterr().err


def test_transcript_file_is_read_and_said(tmp_path, capsys):
    words = tmp_path / "words.txt"
    words.write_bytes("\ufeffhello world".encode("utf-8"))
    assert cli.resolve_transcript(str(words)) == ("hello world", words)
    assert f"read from the file {words}" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(ValueError, match="is empty"):
        cli.resolve_transcript(str(tmp_path / "empty.txt"))
    with pytest.raises(ValueError, match="is a folder"):
        cli.resolve_transcript(str(tmp_path))


def test_transcript_missing_through_the_cli(tmp_path):
    audio_file = tmp_path / "a.wav"
    audio_file.write_bytes(wav_bytes(speechlike(1.0)))
    result = _cli("bake", "--audio", str(audio_file), "--head", "h.ply", "--out", str(tmp_path / "o.blend"),
                  "--transcript", "qa/rel/tmp.txt")
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o.blend").exists()


# ----------------------------------------------------------------------------- manifests

def manifest(tmp_path, text, name="jobs.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _inputs(tmp_path):
    (tmp_path / "a.wav").write_bytes(wav_bytes(speechlike(1.0)))
    (tmp_path / "head.ply").write_bytes(b"ply\n")
    return tmp_path / "a.wav", tmp_path / "head.ply"


def test_manifest_with_bom_and_semicolons_reads(tmp_path):
    _inputs(tmp_path)
    path = manifest(tmp_path, "\ufeffaudio;head;out;fps\na.wav;head.ply;shots/s1.blend;25\n")
    jobs = cli.plan_manifest(path)
    assert jobs[0]["audio"] == str(tmp_path / "a.wav")          # relative to the manifest's folder
    assert jobs[0]["out"] == str(tmp_path / "shots" / "s1.blend") and jobs[0]["fps"] == "25"


def test_manifest_tab_separated_reads(tmp_path):
    _inputs(tmp_path)
    assert cli.plan_manifest(manifest(tmp_path, "audio\thead\tout\na.wav\thead.ply\to.blend\n"))[0]["out"] \
        == str(tmp_path / "o.blend")


MANIFEST_CASES = {
    "missing_column": ("audio,out\na.wav,o.blend\n", "has no column 'head'"),
    "misspelt_column": ("audio,head,ouput\na.wav,head.ply,o.blend\n", "has no column 'out'"),
    "empty": ("", "is empty"),
    "header_only": ("audio,head,out\n", "has a header but no jobs"),
    "empty_cell": ("audio,head,out\na.wav,,o.blend\n", "job 1 has no head"),
    "extra_fields": ("audio,head,out\na.wav,head.ply,o.blend,x.blend\n", "has 4 fields but the header has 3"),
    "duplicate_column": ("audio,head,out,out\na.wav,head.ply,o.blend,p.blend\n", "names the column(s) out twice"),
    "duplicate_outs": ("audio,head,out\na.wav,head.ply,o.blend\na.wav,head.ply,./o.blend\n",
                       "jobs 1 and 2 both write"),
    "duplicate_npy": ("audio,head,out,export_npy\na.wav,head.ply,o.blend,v.npy\na.wav,head.ply,p.blend,v.npy\n",
                      "both write"),
    "out_is_audio": ("audio,head,out\na.wav,head.ply,a.wav\n", "is the audio of job 1"),
    "out_is_head": ("audio,head,out\na.wav,head.ply,head.ply\n", "is the head of job 1"),
    "out_is_later_head": ("audio,head,out\na.wav,head.ply,h2.blend\na.wav,h2.blend,o.blend\n",
                          "is the head of job 2"),
    "out_not_blend": ("audio,head,out\na.wav,head.ply,o.txt\n", "must be a .blend"),
    "out_outside": ("audio,head,out\na.wav,head.ply,../elsewhere/o.blend\n", "outside the manifest's folder"),
    "out_exists": ("audio,head,out\na.wav,head.ply,old.blend\n", "already exists (pass --overwrite"),
    "cache_exists": ("audio,head,out,mode\na.wav,head.ply,s.blend,meshcache\n", "mesh cache"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_bad_manifest_is_refused_before_any_job_runs(case, tmp_path):
    shots = tmp_path / "shots"  # the manifest's folder; tmp_path around it catches writes outside
    shots.mkdir()
    _inputs(shots)
    (shots / "old.blend").write_bytes(b"BLENDER the artist's previous take")
    (shots / "s_Head_lipsync.pc2").write_bytes(b"POINTCACHE2\0 previous take")
    text, fragment = MANIFEST_CASES[case]
    path = manifest(shots, text)
    before = tree(tmp_path)
    result = _cli("bake", "--manifest", str(path))
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert tree(tmp_path) == before                           # nothing written, nothing replaced


def test_manifest_flags_allow_what_they_name(tmp_path):
    _inputs(tmp_path)
    (tmp_path / "old.blend").write_bytes(b"BLENDER")
    assert cli.plan_manifest(manifest(tmp_path, "audio,head,out\na.wav,head.ply,old.blend\n"), overwrite=True)
    assert cli.plan_manifest(manifest(tmp_path, "audio,head,out\na.wav,head.ply,../x/o.blend\n"), allow_outside=True)


def test_manifest_that_does_not_exist(tmp_path):
    result = _cli("bake", "--manifest", str(tmp_path / "nope.csv"))
    assert result.returncode == 2 and "manifest" in result.stderr and "does not exist" in result.stderr


def test_200_shot_manifest_plans_200_distinct_caches(tmp_path):
    """The issue's failure: 100 mesh-cache jobs from one audio shared one PC2. The plan
    (checked before any job runs) gives each shot its own cache beside its .blend."""
    _inputs(tmp_path)
    rows = ["audio,head,out,mode"] + [f"a.wav,head.ply,shots/shot_{k:03d}.blend,{'meshcache' if k % 2 else 'shapekeys'}"
                                      for k in range(200)]
    rows += [f"a.wav,head.ply,cache/shot_{k:03d}.blend,meshcache" for k in range(200)]
    jobs = cli.plan_manifest(manifest(tmp_path, "\n".join(rows) + "\n"))
    caches = [str(target) for job in jobs for what, target in job["outputs"] if what == "mesh cache"]
    assert len(caches) == 300 and len(set(caches)) == 300
    outs = [job["out"] for job in jobs]
    assert len(set(outs)) == 400
