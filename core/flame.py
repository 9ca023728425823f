"""Facts about FLAME topology, stated once for the whole project."""
from pathlib import Path

VERTEX_COUNT = 5023
FACE_COUNT = 9976

# Lip-edge vertices on the mouth midline; their distance is the "lip gap"
# used by every metric (2.0 mm on the neutral template).
UPPER_LIP_EDGE = 3546
LOWER_LIP_EDGE = 3504

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
