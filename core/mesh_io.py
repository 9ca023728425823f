"""Read head meshes (PLY binary/ascii, OBJ) as numpy arrays, and check topology."""
import hashlib
from pathlib import Path

import numpy as np

from .flame import FACE_COUNT, FACE_LIST_SHA256, VERTEX_COUNT


class MeshError(ValueError):
    """A head file that cannot be read or is not FLAME topology."""


_PLY_TYPES = {
    "char": "i1", "uchar": "u1", "short": "i2", "ushort": "u2", "int": "i4",
    "uint": "u4", "float": "f4", "double": "f8", "int8": "i1", "uint8": "u1",
    "int16": "i2", "uint16": "u2", "int32": "i4", "uint32": "u4",
    "float32": "f4", "float64": "f8",
}


def _parse_ply_header(data: bytes):
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise MeshError("not a PLY file (no 'ply' magic / end_header)")
    body_start = data.index(b"\n", end) + 1
    elements, fmt = [], None
    for line in data[:end].decode("ascii", "replace").splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "format":
            fmt = words[1]
        elif words[0] == "element":
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property" and elements:
            elements[-1][2].append(words[1:])
    return fmt, elements, body_start


def read_ply(path) -> tuple[np.ndarray, np.ndarray]:
    """Return (vertices (N,3) float32, triangles (F,3) int32)."""
    data = Path(path).read_bytes()
    try:
        return _read_ply(data, path)
    except MeshError as err:
        if str(path) in str(err):
            raise
        raise MeshError(f"{path}: {err}; export the head again as PLY or OBJ") from None
    except (ValueError, IndexError, KeyError, StopIteration, UnicodeDecodeError) as err:
        short = isinstance(err, StopIteration) or "buffer is smaller" in str(err)
        what = "is cut short (fewer vertices/faces than its header declares)" if short else \
            f"is damaged ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'unreadable'})"
        raise MeshError(f"{path} {what}: export the head again as PLY or OBJ") from None


def _read_ply(data: bytes, path) -> tuple[np.ndarray, np.ndarray]:
    fmt, elements, pos = _parse_ply_header(data)
    vertices = faces = None
    if fmt == "ascii":
        lines = iter(data[pos:].decode("ascii").split("\n"))
        for name, count, props in elements:
            rows = [next(lines).split() for _ in range(count)]
            if name == "vertex":
                vertices = np.array([[float(r[i]) for i in range(3)] for r in rows], np.float32)
            elif name == "face":
                faces = np.array([[int(x) for x in r[1:4]] for r in rows], np.int32)
        return _checked(vertices, faces, path)
    endian = "<" if fmt == "binary_little_endian" else ">"
    for name, count, props in elements:
        if props and props[0][0] == "list":
            # Assume triangles (FLAME): fixed-size rows, checked below.
            count_t, index_t = _PLY_TYPES[props[0][1]], _PLY_TYPES[props[0][2]]
            row = np.dtype([("n", endian + count_t), ("idx", endian + index_t, (3,))])
            block = np.frombuffer(data, row, count, pos)
            if np.any(block["n"] != 3):
                raise MeshError(f"{path}: only triangle meshes are supported")
            pos += row.itemsize * count
            if name == "face":
                faces = block["idx"].astype(np.int32)
        else:
            row = np.dtype([(p[1], endian + _PLY_TYPES[p[0]]) for p in props])
            block = np.frombuffer(data, row, count, pos)
            pos += row.itemsize * count
            if name == "vertex":
                vertices = np.stack([block["x"], block["y"], block["z"]], 1).astype(np.float32)
    return _checked(vertices, faces, path)


def read_obj(path) -> tuple[np.ndarray, np.ndarray]:
    vertices, faces = [], []
    for number, line in enumerate(Path(path).read_text(errors="replace").splitlines(), 1):
        try:
            if line.startswith("v "):
                xyz = [float(x) for x in line.split()[1:4]]
                if len(xyz) != 3:
                    raise ValueError("a vertex needs x y z")
                vertices.append(xyz)
            elif line.startswith("f "):
                # OBJ indices start at 1; negative ones count back from the latest vertex.
                idx = [int(w.split("/")[0]) for w in line.split()[1:]]
                if len(idx) < 3 or 0 in idx:
                    raise ValueError("a face needs at least 3 vertex indices, none of them 0")
                idx = [i - 1 if i > 0 else len(vertices) + i for i in idx]
                faces.extend([idx[0], idx[i], idx[i + 1]] for i in range(1, len(idx) - 1))
        except ValueError as err:
            raise MeshError(f"{path} line {number} is damaged ({err}): export the head again "
                            "as PLY or OBJ") from None
    return _checked(np.array(vertices, np.float32).reshape(-1, 3), np.array(faces, np.int64).reshape(-1, 3), path)


def _checked(vertices, faces, path):
    """Refuse what would crash or mislead Blender: no vertices, NaN/inf coordinates,
    face indices outside the vertex list."""
    if vertices is None or len(vertices) == 0:
        raise MeshError(f"{path}: no vertices found")
    faces = faces if faces is not None else np.zeros((0, 3), np.int32)
    bad = ~np.isfinite(vertices).all(axis=1)
    if bad.any():
        raise MeshError(f"{path}: {int(bad.sum())} vertices have NaN or infinite coordinates "
                        f"(first: vertex {int(np.flatnonzero(bad)[0])}); export the head again")
    if len(faces):
        out = (faces < 0) | (faces >= len(vertices))
        if out.any():
            row = int(np.flatnonzero(out.any(axis=1))[0])
            raise MeshError(f"{path}: face {row} uses vertex index {int(faces[row][out[row]][0])}, outside "
                            f"0..{len(vertices) - 1} ({int(out.any(axis=1).sum())} faces do); the file is "
                            "damaged: export the head again")
    return vertices, faces.astype(np.int32)


def read_mesh(path) -> tuple[np.ndarray, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise MeshError(f"{path}: file not found")
    readers = {".ply": read_ply, ".obj": read_obj}
    if path.suffix.lower() not in readers:
        raise MeshError(f"{path}: unsupported mesh format '{path.suffix}' (use .ply or .obj)")
    try:
        return readers[path.suffix.lower()](path)
    except OSError as err:
        from .atomic import describe
        reason, todo = describe(err, reading=True)
        raise MeshError(f"{path}: could not be read: {reason}; {todo}") from None


def check_flame_topology(vertex_count: int, what: str = "mesh") -> None:
    if vertex_count != VERTEX_COUNT:
        raise MeshError(
            f"{what} is not FLAME topology: expects {VERTEX_COUNT} vertices, got {vertex_count}. "
            "Use a head registered to FLAME (e.g. flame_template.ply).")


def face_list_digest(faces) -> str:
    """Fingerprint of a triangle list, independent of face order and winding."""
    f = np.sort(np.asarray(faces, np.int64).reshape(-1, 3), axis=1)
    f = f[np.lexsort(f.T[::-1])]
    return hashlib.sha256(f.astype("<i4").tobytes()).hexdigest()


def check_flame_faces(faces, what: str = "mesh") -> None:
    """The faces are FLAME's: 5023 vertices alone could be another mesh, or FLAME's
    vertices in another order (the animation would land off the mouth)."""
    faces = np.asarray(faces).reshape(-1, 3)
    if len(faces) != FACE_COUNT or face_list_digest(faces) != FACE_LIST_SHA256:
        raise MeshError(
            f"{what} has {VERTEX_COUNT} vertices but is not FLAME topology: its {len(faces)} faces are not "
            f"FLAME's {FACE_COUNT} (vertex order or connectivity differs). Use a head registered to FLAME "
            "(e.g. flame_template.ply) with its vertex order and faces unchanged.")


def recentred(vertices: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Move a head so its centroid matches the template's (DECA's head sits ~1.3 m up)."""
    return vertices - vertices.mean(0) + template.mean(0)


def load_head(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a FLAME head file; raise MeshError naming the problem otherwise."""
    vertices, faces = read_mesh(path)
    check_flame_topology(len(vertices), str(path))
    check_flame_faces(faces, str(path))
    return vertices, faces
