"""The neural engines as the add-on runs them: network definition (voca.py), its config
(config.py), features, numpy inference, shipped weights. Never imports bpy; training
lives apart, in training/ (not shipped).

    from flame_lipsync.models import load_model
    model = load_model("models/weights/<name>.npz")          # torch when installed, else numpy
    controls = model.predict(samples_16k, fps=30.0, style=None)  # (T, 10) rig weights
    offsets = model.predict_offsets(samples_16k, fps=30.0)       # (T, 5023, 3) metres

Importing this package imports neither torch nor librosa.
"""


def load_model(path, backend: str = "auto", device=None):
    """backend 'auto' (torch if importable, else numpy), 'torch' or 'numpy'."""
    if backend not in ("auto", "torch", "numpy"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'numpy', got {backend!r}")
    if backend in ("auto", "torch"):
        try:
            import torch  # noqa: F401
        except ImportError:
            if backend == "torch":
                raise
        else:
            from .voca import load_model as load_torch
            return load_torch(path, device=device)
    from .numpy_inference import load_model as load_numpy
    return load_numpy(path)
