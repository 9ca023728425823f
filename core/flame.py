"""Facts about FLAME topology, stated once for the whole project."""
from pathlib import Path

VERTEX_COUNT = 5023
FACE_COUNT = 9976

# Lip-edge vertices on the mouth midline; their distance is the "lip gap"
# used by every metric (2.0 mm on the neutral template).
UPPER_LIP_EDGE = 3546
LOWER_LIP_EDGE = 3504

# FLAME's face list, as a fingerprint: sha256 of the triangles, each sorted, rows
# sorted, int32 little endian (core.mesh_io.face_list_digest). The same for all four
# shared heads; 5023 vertices in another order, or other faces, give another one.
FACE_LIST_SHA256 = "cb2e0bc686b21ecbd4b1d090ee78d903dadb5346bc64ea6791a158cf67b48fbd"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_ASSETS = PROJECT_ROOT.parent / "shared" / "assets"
FLAME_ASSETS = SHARED_ASSETS / "flame"
SPEECH_ASSETS = SHARED_ASSETS / "speech"

# The four shared heads (all share one face list).
SHARED_HEADS = (
    "flame_template.ply",
    "flame_registered_mesh.ply",
    "FLAME_sample.ply",
    "deca_head_template.obj",
)
