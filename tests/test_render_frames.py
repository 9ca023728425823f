"""Workbench stills of FLAME heads and the contact sheet (real bpy, headless)."""
import numpy as np
import pytest

pytest.importorskip("bpy")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from matplotlib.image import imread  # noqa: E402

from flame_lipsync.core.flame import LOWER_LIP_EDGE  # noqa: E402
from flame_lipsync.core.mesh_io import read_mesh  # noqa: E402
from flame_lipsync.blender.render import _framing, contact_sheet, render_heads  # noqa: E402


def _lip_dropped(vertices: np.ndarray, drop: float = 0.008) -> np.ndarray:
    """The head with its lower lip pulled down (a crude open mouth)."""
    lip = vertices[LOWER_LIP_EDGE]
    weight = np.clip(1 - np.linalg.norm(vertices[:, :2] - lip[:2], axis=1) / 0.03, 0, 1)
    weight[(vertices[:, 1] > lip[1] + 0.001) | (vertices[:, 2] < lip[2] - 0.012)] = 0
    moved = vertices.copy()
    moved[:, 1] -= drop * weight
    return moved


@pytest.fixture
def template(flame_dir):
    return read_mesh(flame_dir / "flame_template.ply")


def _pixel(point, centre, scale, size):
    """Image (row, col) of a world point for the orthographic framing."""
    w, h = size
    px_per_m = max(w, h) / scale
    col = w / 2 + (point[0] - centre[0]) * px_per_m
    row = h / 2 - (point[1] - centre[1]) * px_per_m
    return int(round(row)), int(round(col))


def test_render_two_heads_face_view(template, tmp_path):
    vertices, faces = template
    heads = [vertices, _lip_dropped(vertices)]
    size = (200, 160)
    paths = render_heads(faces, heads, tmp_path, ["rest", "open"], size=size, view="face")

    assert [p.name for p in paths] == ["rest.png", "open.png"]
    images = [imread(p)[..., :3] for p in paths]
    for img in images:
        assert img.shape == (size[1], size[0], 3)
        assert img.std() > 0.05, "render is blank"

    # The mouth region differs; the forehead (far from the lips) does not.
    centres, scale = _framing(heads, "face", size[0] / size[1])
    row, col = _pixel(vertices[LOWER_LIP_EDGE], centres[0], scale, size)
    diff = np.abs(images[0] - images[1]).mean(-1)
    mouth = diff[row - 12:row + 12, col - 15:col + 15]
    assert mouth.mean() > 0.01, "lowering the lip did not change the mouth"
    assert diff[: size[1] // 4].mean() < 0.002, "framing moved between heads"


def test_render_mouth_view_and_contact_sheet(template, tmp_path):
    vertices, faces = template
    # Same head lifted 1.3 m (as DECA's): mouth framing follows the geometry.
    lifted = vertices + np.array([0.0, 1.3, 0.0], np.float32)
    heads = [vertices, lifted, _lip_dropped(vertices)]
    paths = render_heads(faces, heads, tmp_path / "mouth", ["rest", "lifted", "open"],
                         size=(128, 128), view="mouth")
    rest, lifted_img, open_img = (imread(p)[..., :3] for p in paths)
    assert rest.std() > 0.02
    assert np.abs(rest - lifted_img).mean() < 0.005, "framing depends on head position"
    centre = np.abs(rest - open_img).mean(-1)[44:84, 34:94]
    assert centre.mean() > 0.02, "mouth close-up does not show the lip change"

    sheet = contact_sheet(paths, ["rest", "lifted", "open"], columns=2,
                          out_path=tmp_path / "sheet.png", title="mouth")
    assert sheet.is_file()
    img = imread(sheet)
    assert img.shape[1] >= 2 * 128 and img.shape[0] >= 2 * 128
    assert sheet.stat().st_size < 1_500_000


def test_render_heads_rejects_bad_arguments(template, tmp_path):
    vertices, faces = template
    with pytest.raises(ValueError, match="names"):
        render_heads(faces, [vertices], tmp_path, ["a", "b"])
    with pytest.raises(ValueError, match="view"):
        render_heads(faces, [vertices], tmp_path, ["a"], view="side")
