"""The neural engine's model, front end, training loop, numpy inference and VOCASET loader.

Fast (well under 90 s): tiny configs, generated data, one torch thread.
"""
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from flame_lipsync.core.flame import VERTEX_COUNT  # noqa: E402
from flame_lipsync.core.rig import CONTROLS, load_rig  # noqa: E402
from flame_lipsync.models import features as feats  # noqa: E402
from flame_lipsync.models import numpy_inference as npi  # noqa: E402
from flame_lipsync.models import voca  # noqa: E402
from flame_lipsync.training import losses as training_losses  # noqa: E402
from flame_lipsync.training.train import train, write_synthetic_corpus  # noqa: E402

SMALL = dict(conv_channels=(8, 8, 16, 16), fc_sizes=(32,), latent=12, n_styles=3, style_names=("a", "b", "c"),
             controls_k=6, vertex_k=8)
SWITCHES = [dict(), dict(dense=True), dict(attention=True), dict(guidance="huber"), dict(guidance="hsic"),
            dict(dense=True, attention=True, guidance="hsic"), dict(heads=("controls",)),
            dict(heads=("vertices",), output="vertices"), dict(output="vertices", guidance="huber")]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small ops: threads only add spin-wait on a busy 2-core box
    yield
    torch.set_num_threads(threads)


def speech_like(seconds=3.0, seed=0):
    """Tone bursts with noise: enough structure for features and a model to see."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    env = np.clip(np.sin(2 * np.pi * 1.7 * t), 0, 1)
    y = env * (0.3 * np.sin(2 * np.pi * 140 * t) + 0.2 * np.sin(2 * np.pi * 900 * t)) + rng.normal(0, 0.01, t.size)
    y[: 4000] = 0.0  # digital silence at the start
    return y.astype(np.float32)


def random_model(seed=0, scale=0.3, **switches):
    torch.manual_seed(seed)
    cfg = voca.ModelConfig(**dict(SMALL, **switches))
    model = voca.VOCA(cfg)
    with torch.no_grad():  # move every parameter off its initial value (SE gate included)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale * (p.std() if p.numel() > 1 and p.std() > 0 else 0.1))
    return model


# ----------------------------------------------------------------------------- features

def test_filterbank_equals_librosa():
    librosa = pytest.importorskip("librosa")
    ours = feats.mel_filterbank()
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=40)
    assert ours.shape == ref.shape == (40, 257)
    assert np.abs(ours - ref).max() <= 1e-9


def test_features_numpy_torch_librosa_agree():
    librosa = pytest.importorskip("librosa")
    y = speech_like(2.5)
    f_np = feats.features_numpy(y)
    f_t = feats.features_torch(torch.as_tensor(y)).numpy()
    assert f_np.shape == (feats.n_feature_frames(len(y)), 41) == f_t.shape
    diff_torch = np.abs(f_np - f_t).max()
    mel_ref = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, hop_length=320, n_mels=40).T
    log_ref = np.log(mel_ref + feats.MEL_FLOOR)
    diff_librosa = np.abs(f_np[:, :40] - log_ref).max()
    mel_np, _ = feats.mel_power_numpy(y)
    rel_librosa = np.abs(mel_np - mel_ref).max() / mel_ref.max()
    print(f"\nfeatures max |numpy - torch| = {diff_torch:.2e}, log-mel max |numpy - librosa| = {diff_librosa:.2e}, "
          f"mel power rel. diff {rel_librosa:.2e}")
    assert diff_torch <= 1e-5
    assert diff_librosa <= 1e-4
    assert rel_librosa <= 1e-5
    # digital silence gives exactly the padding vector
    np.testing.assert_allclose(f_np[2], feats.silence_features(), atol=1e-6)


def test_window_indices_centre_and_pad():
    idx = feats.window_indices(np.arange(4), 30.0, 16, 100)
    assert idx.shape == (4, 16)
    assert list(idx[0, :8]) == [-1] * 8 and idx[0, 8] == 0  # frame 0: centred on feature 0
    assert idx[3, 8] == 5  # t = 0.1 s -> feature frame 5
    assert (feats.window_indices([300], 30.0, 16, 100) == -1).all()


# ----------------------------------------------------------------------------- model

@pytest.mark.parametrize("switches", SWITCHES, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "voca")
def test_forward_shapes_and_losses(switches):
    model = random_model(**switches)
    cfg = model.cfg
    b, s = 4, 2
    windows = torch.randn(b * s, cfg.window, cfg.n_features)
    style = torch.eye(3)[torch.arange(b * s) % 3]
    out = model(windows, style)
    assert out["latent"].shape == (b * s, cfg.latent)
    if "controls" in cfg.heads:
        assert out["controls"].shape == (b * s, len(CONTROLS))
    if "vertices" in cfg.heads:
        assert out["offsets"].shape == (b * s, VERTEX_COUNT, 3)
    assert (model.mesh_ae is not None) == (cfg.guidance != "none")
    fields = torch.as_tensor(load_rig().fields.reshape(len(CONTROLS), -1))
    controls = torch.rand(b * s, len(CONTROLS))
    terms = training_losses.losses(model, out, controls, None, fields, None,
                        training_losses.LossWeights(rig_vertices=1.0, lip_weight=2.0), seq_len=s)
    assert torch.isfinite(terms["total"])
    if cfg.guidance != "none":
        assert "guidance" in terms and "mesh_reconstruction" in terms
    terms["total"].backward()
    assert model.encoder.convs[0].weight.grad is not None


def test_pca_init_reproduces_pca_reconstruction():
    rng = np.random.default_rng(0)
    # vertex targets made by the rig from controls (as the corpus), and a generic matrix (as VOCASET)
    fields = load_rig().fields.reshape(len(CONTROLS), -1).astype(np.float64)
    controls = rng.uniform(0, 1, (300, len(CONTROLS))) * rng.uniform(0.2, 1, len(CONTROLS))
    mean, comps, std = training_losses.pca(controls, 50, basis=fields)
    assert comps.shape == (10, fields.shape[1])  # k = min(50, rank)
    direct = training_losses.pca(controls @ fields, 10)  # the same PCA on the full matrix
    np.testing.assert_allclose(np.abs(comps @ direct[1].T), np.eye(10), atol=1e-4)
    np.testing.assert_allclose(std, direct[2], rtol=1e-4)

    cfg = voca.ModelConfig(**dict(SMALL, vertex_k=10, controls_k=10))
    model = voca.VOCA(cfg)
    model.heads["vertices"].init_pca(mean, comps, std)
    targets = (controls @ fields).astype(np.float32)
    coeffs = ((targets - mean) @ comps.T) / std  # whitened PCA coefficients
    with torch.no_grad():
        out = model.heads["vertices"].basis(torch.as_tensor(coeffs, dtype=torch.float32)).numpy()
    reconstruction = mean + ((targets - mean) @ comps.T) @ comps
    np.testing.assert_allclose(out, reconstruction, atol=1e-6)
    np.testing.assert_allclose(out, targets, atol=1e-6)  # rank 10: the reconstruction is exact
    # and with the SE gate at its initial value the decoder is the plain PCA decoder
    model = voca.VOCA(voca.ModelConfig(**dict(SMALL, vertex_k=10, controls_k=10, attention=True)))
    z = torch.randn(5, cfg.latent)
    assert torch.allclose(model.attention(z), z)


def test_pca_k_is_min_of_50_and_rank():
    data = np.random.default_rng(1).normal(size=(40, 7)) @ np.random.default_rng(2).normal(size=(7, 300))
    _, comps, _ = training_losses.pca(data, 50)
    assert comps.shape == (7, 300)


# ----------------------------------------------------------------------------- numpy == torch

@pytest.mark.parametrize("switches", SWITCHES[:6] + SWITCHES[7:8], ids=lambda s: ",".join(s) or "voca")
def test_numpy_forward_equals_torch(switches):
    model = random_model(**switches).eval()
    cfg = model.cfg
    params = {k: v.numpy() for k, v in model.inference_state_dict().items()}
    numpy_model = npi.NumpyModel(voca.ModelConfig.from_dict(cfg.to_dict()), params, np.zeros(41), np.ones(41))
    rng = np.random.default_rng(0)
    windows = rng.normal(size=(32, cfg.window, cfg.n_features)).astype(np.float32)
    style = np.eye(3, dtype=np.float32)[np.arange(32) % 3]
    with torch.no_grad():
        ref = model(torch.as_tensor(windows), torch.as_tensor(style))
    got = numpy_model.forward(windows, style)
    for key, value in ref.items():
        assert np.abs(got[key] - value.numpy()).max() <= 1e-5, key


def test_exported_file_numpy_equals_torch(tmp_path):
    model = random_model(dense=True, attention=True, guidance="hsic")
    rng = np.random.default_rng(0)
    mean, std = rng.normal(-5, 1, 41).astype(np.float32), rng.uniform(1, 3, 41).astype(np.float32)
    path = tmp_path / "w.npz"
    training_losses.export_weights(model, path, mean, std)
    with np.load(path, allow_pickle=False) as data:  # readable without pickle
        assert not any(k.startswith("param/mesh_ae") for k in data.files)
    torch_model, numpy_model = voca.load_model(path, device="cpu"), npi.load_model(path)
    y = speech_like(2.0)
    for style in (None, 1, "c", [0.2, 0.3, 0.5]):
        a = torch_model.predict(y, 30.0, style)
        b = numpy_model.predict(y, 30.0, style)
        assert a.shape == b.shape == (61, 10)
        assert np.abs(a - b).max() <= 1e-5
    va, vb = torch_model.predict_offsets(y, 25.0), numpy_model.predict_offsets(y, 25.0)
    assert va.shape == vb.shape == (51, VERTEX_COUNT, 3)
    assert np.abs(va - vb).max() <= 1e-5
    rig_offsets = load_rig().offsets(numpy_model.predict(y, 25.0))  # output='controls': the rig drives
    np.testing.assert_allclose(vb, rig_offsets, atol=1e-7)
    with pytest.raises(ValueError, match="unknown speaking style"):
        numpy_model.predict(y, 30.0, "nobody")


def test_export_size_of_full_model(tmp_path):
    model = voca.VOCA(voca.ModelConfig(n_styles=40, dense=True, attention=True))  # 50 PCA components
    path = tmp_path / "w.npz"
    training_losses.export_weights(model, path, np.zeros(41), np.ones(41))
    size = path.stat().st_size
    assert size < 20e6
    print(f"\nfull-size export (k=50 vertex basis, 40 styles): {size / 1e6:.1f} MB")


# ----------------------------------------------------------------------------- long audio

def test_chunked_equals_unchunked_both_backends(tmp_path):
    model = random_model(attention=True)
    path = tmp_path / "w.npz"
    training_losses.export_weights(model, path, np.full(41, -6, np.float32), np.full(41, 3, np.float32))
    y = np.tile(speech_like(3.0), 3)  # 9 s
    for predictor in (npi.load_model(path), voca.load_model(path, device="cpu")):
        whole = predictor.predict_all(y, 30.0, 0, chunk_seconds=float("inf"))
        chunked = predictor.predict_all(y, 30.0, 0, chunk_seconds=2.0, overlap_seconds=0.5)
        for key in whole:
            assert chunked[key].shape == whole[key].shape
            assert np.abs(chunked[key] - whole[key]).max() <= 1e-5, (predictor.backend, key)
        # (equal to the unchunked curve, so no seam in the lip-gap curve either)


def test_crossfade_blends_overlaps():
    spans = npi.chunk_spans(100, 30, 10)
    assert spans[0] == (0, 30) and spans[-1][1] == 100
    assert all(b[0] == a[1] - 10 for a, b in zip(spans, spans[1:]))


# ----------------------------------------------------------------------------- training

def tiny_config(tmp_path, corpus, **train):
    return {
        "name": "tiny",
        "model": {"conv_channels": [8, 8, 16, 16], "fc_sizes": [32], "latent": 12},
        "data": {"format": "corpus", "path": str(corpus)},
        "train": dict({"epochs": 3, "batch_size": 16, "seq_len": 2, "lr": 3e-3, "out_dir": str(tmp_path / "run"),
                       "log_every": 1.0, "threads": 1}, **train),
        "loss": {"lip_weight": 2.0},
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_synthetic_corpus(tmp_path_factory.mktemp("corpus"), seconds=2.0)


def test_synthetic_corpus_reads_with_models_corpus(corpus):
    from flame_lipsync.training import corpus as corpus_api
    manifest = corpus_api.load_manifest(corpus)
    assert set(manifest["splits"]) == {"train", "val", "test"}
    assert not set(manifest["splits"]["train"]) & set(manifest["splits"]["val"])  # held-out voices
    utt = next(corpus_api.iter_utterances(corpus, "val"))
    assert utt.audio.dtype == np.float32 and utt.controls.shape == (61, 10) and utt.voice == "vd"


def test_tiny_training_reduces_loss_and_exports(tmp_path, corpus):
    summary = train(tiny_config(tmp_path, corpus, epochs=8, patience=0), log=lambda *a: None)
    history = summary["history"]
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert min(h["val_mouth_mm"] for h in history) < history[0]["val_mouth_mm"]
    run = tmp_path / "run"
    for name in ("last.pt", "best.pt", "loss.png", "history.json", "model.npz"):
        assert (run / name).is_file(), name
    state = torch.load(run / "best.pt", weights_only=True)  # no pickle needed
    assert state["epoch"] == summary["best_epoch"]
    predictor = npi.load_model(summary["export"])
    assert predictor.cfg.style_names == ("va", "vb", "vc")
    assert predictor.predict(speech_like(1.0), 30.0).shape == (31, 10)


def test_resume_continues_from_checkpoint(tmp_path, corpus):
    """Interrupted after epoch 2 and resumed (through the CLI) == trained straight through."""
    straight = train(tiny_config(tmp_path / "a", corpus, epochs=3, steps_per_epoch=4), log=lambda *a: None)
    cfg = tiny_config(tmp_path / "b", corpus, epochs=3, steps_per_epoch=4)

    def interrupt(message):
        if message.startswith("epoch 2:"):
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(cfg, log=interrupt)
    assert torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=True)["epoch"] == 2
    with pytest.raises(ValueError, match="another model config"):
        train(dict(cfg, model=dict(cfg["model"], latent=13)), resume=True, log=lambda *a: None)

    path = tmp_path / "b.json"
    path.write_text(json.dumps(cfg))
    from flame_lipsync import cli
    assert cli.main(["train", "--config", str(path), "--resume"]) == 0  # the CLI subcommand
    a = torch.load(tmp_path / "a" / "run" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=True)
    assert b["epoch"] == 3 and len(b["history"]) == 3
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], atol=1e-6, rtol=1e-5)
    assert straight["history"][-1]["train_loss"] == pytest.approx(b["history"][-1]["train_loss"], rel=1e-5)


# ----------------------------------------------------------------------------- VOCASET

@pytest.fixture(scope="module")
def vocaset_dir(tmp_path_factory):
    from flame_lipsync.training import vocaset
    return vocaset.write_synthetic(tmp_path_factory.mktemp("vocaset"), sentences=2, seconds=0.5, first_frame=1)


def test_vocaset_loader_split_and_fps(vocaset_dir):
    from flame_lipsync.training import vocaset
    train_seqs = vocaset.load_split(vocaset_dir, "train")
    assert {s.subject for s in train_seqs} == set(vocaset.TRAIN_SUBJECTS) and len(train_seqs) == 16
    assert {s.subject for s in vocaset.load_split(vocaset_dir, "val")} == set(vocaset.VAL_SUBJECTS)
    assert {s.subject for s in vocaset.load_split(vocaset_dir, "test")} == set(vocaset.TEST_SUBJECTS)
    assert len(vocaset.TRAIN_SUBJECTS) == 8 and not set(vocaset.TRAIN_SUBJECTS) & set(vocaset.VAL_SUBJECTS + vocaset.TEST_SUBJECTS)

    seq = train_seqs[0]
    verts = np.load(vocaset_dir / "data_verts.npy")
    index = vocaset.load_pickle(vocaset_dir / "subj_seq_to_idx.pkl")[seq.subject][seq.sentence]
    templates = vocaset.load_pickle(vocaset_dir / "templates.pkl")
    assert seq.fps == 30.0 and seq.offsets.shape == (15, VERTEX_COUNT, 3)  # captured 1..29 at 60 fps -> 0..14
    assert seq.audio.dtype == np.float32 and len(seq.audio) == 8000  # 22 kHz int16 -> 16 kHz float
    assert 0.1 < np.abs(seq.audio).max() <= 1.0
    for i in (1, 7, 14):  # frame i at 30 fps = captured frame 2i
        np.testing.assert_allclose(seq.offsets[i], verts[index[2 * i]] - templates[seq.subject], atol=1e-7)
    # captured frame 0 is missing (first_frame=1): frame 0 takes the nearest captured one
    np.testing.assert_allclose(seq.offsets[0], verts[index[1]] - templates[seq.subject], atol=1e-7)


def test_vocaset_pickles_are_latin1_protocol2_and_safe(vocaset_dir, tmp_path):
    from flame_lipsync.training import vocaset
    raw = (vocaset_dir / "raw_audio_fixed.pkl").read_bytes()
    assert raw[:2] == b"\x80\x02"  # protocol 2, as the Python 2 originals
    with open(vocaset_dir / "templates.pkl", "rb") as handle:
        assert len(pickle.load(handle, encoding="latin1")) == 12

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Evil(), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        vocaset.load_pickle(tmp_path / "evil.pkl")


def test_vocaset_training_vertex_head(tmp_path, vocaset_dir):
    cfg = {
        "name": "vocaset-tiny",
        "model": {"conv_channels": [8, 8, 16, 16], "fc_sizes": [32], "latent": 12, "output": "vertices"},
        "data": {"format": "vocaset", "path": str(vocaset_dir), "sentences_per_subject": 1},
        "train": {"epochs": 2, "batch_size": 16, "out_dir": str(tmp_path / "run"), "log_every": 1.0},
        "loss": {"controls": 0, "controls_velocity": 0, "rig_vertices": 1.0},
    }
    summary = train(cfg, log=lambda *a: None)
    predictor = npi.load_model(summary["export"])
    assert predictor.cfg.style_names == tuple(sorted(__import__("flame_lipsync.training.vocaset", fromlist=["x"]).TRAIN_SUBJECTS))
    assert predictor.cfg.output == "vertices"
    y = speech_like(1.0)
    offsets = predictor.predict_offsets(y, 30.0)
    assert offsets.shape == (31, VERTEX_COUNT, 3)
    torch_offsets = voca.load_model(summary["export"], device="cpu").predict_offsets(y, 30.0)
    assert np.abs(offsets - torch_offsets).max() <= 1e-5


# ----------------------------------------------------------------------------- odds and ends

def test_numpy_path_never_imports_torch(tmp_path):
    import subprocess
    model = random_model()
    path = tmp_path / "w.npz"
    training_losses.export_weights(model, path, np.zeros(41), np.ones(41))
    code = ("import sys; import numpy as np; from flame_lipsync import models; "
            "m = models.load_model(%r, backend='numpy'); c = m.predict(np.zeros(8000, np.float32), 30.0); "
            "assert c.shape == (16, 10) and m.backend == 'numpy'; "
            "assert 'torch' not in sys.modules and 'librosa' not in sys.modules and 'bpy' not in sys.modules" % str(path))
    subprocess.run([sys.executable, "-c", code], check=True)
    assert __import__("flame_lipsync.models", fromlist=["x"]).load_model(path).backend == "torch"  # auto: torch when installed


def test_vertex_subset_forward_matches_full():
    model = random_model(guidance="hsic", output="vertices").eval()
    index = torch.as_tensor(load_rig().region_index)
    windows, style = torch.randn(6, 16, 41), torch.eye(3)[torch.arange(6) % 3]
    with torch.no_grad():
        full, part = model(windows, style), model(windows, style, vertex_index=index)
    torch.testing.assert_close(part["offsets"], full["offsets"][:, index])
    outside = np.setdiff1d(np.arange(VERTEX_COUNT), index.numpy())
    offsets = torch.randn(6, VERTEX_COUNT, 3) * 1e-3
    offsets[:, outside] = 0  # nothing moves outside the region, so the PCA basis is zero there
    comps = np.linalg.qr(np.random.default_rng(0).normal(size=(3 * VERTEX_COUNT, 8)))[0].T.reshape(8, VERTEX_COUNT, 3)
    comps[:, outside] = 0
    model.mesh_ae.set_pca(np.zeros(3 * VERTEX_COUNT, np.float32), comps.reshape(8, -1).astype(np.float32),
                          np.ones(8, np.float32))
    a = training_losses.losses(model, full, None, offsets, None, None, seq_len=2)
    b = training_losses.losses(model, part, None, offsets, None, None, seq_len=2)
    expected = (((full["offsets"] - offsets)[:, index] * 1000) ** 2).mean()
    torch.testing.assert_close(b["vertices"], expected)
    torch.testing.assert_close(a["mesh_reconstruction"], b["mesh_reconstruction"])
    torch.testing.assert_close(a["guidance"], b["guidance"])


def test_augmentation_hook_is_called(tmp_path, corpus, monkeypatch):
    import types
    calls = []

    def augment(samples, rate, rng):  # louder and 10 % slower: targets are re-timed
        calls.append(len(samples))
        slow = np.interp(np.arange(int(len(samples) * 1.1)) / 1.1, np.arange(len(samples)), samples)
        return (slow * rng.uniform(1.5, 2.0)).astype(np.float32)
    monkeypatch.setitem(sys.modules, "flame_lipsync.training.augment", types.SimpleNamespace(augment=augment))
    from flame_lipsync import training
    monkeypatch.setattr(training, "augment", sys.modules["flame_lipsync.training.augment"], raising=False)
    cfg = tiny_config(tmp_path, corpus, epochs=2, steps_per_epoch=2)
    cfg["data"]["augment"] = True
    summary = train(cfg, log=lambda *a: None)
    assert len(calls) == 2 * 9 and np.isfinite(summary["best_score"])


def test_default_augmentation_policy_keeps_length():
    pytest.importorskip("flame_lipsync.training.augment")
    from flame_lipsync.training.train import augmenter
    policy = augmenter()
    y = speech_like(1.0)
    for seed in range(4):
        out = policy(y, 16000, np.random.default_rng(seed))
        assert out.shape == y.shape and out.dtype == np.float32 and np.abs(out).max() <= 1.0


# ----------------------------------------------------------------------------- phone head, phone front end

def test_phone_frames_follow_the_phones():
    from flame_lipsync.models.phone_features import PHONE_INDEX, PHONES, phone_frames
    phones = [("SIL", 0.0, 0.1), ("M", 0.1, 0.2), ("AA", 0.2, 0.5), ("XYZ", 0.5, 0.6)]
    idx = phone_frames(phones, 35, 50.0)  # 0.7 s at 50 fps: past the last phone is SIL
    names = [PHONES[i] for i in idx]
    assert names[:5] == ["SIL"] * 5 and names[5:10] == ["M"] * 5 and names[10:25] == ["AA"] * 15
    assert names[25:] == ["SIL"] * 10  # unknown label and beyond the end
    assert len(PHONES) == 40 and PHONES[PHONE_INDEX["B"]] == "B"


def test_phone_head_numpy_equals_torch_and_cross_entropy_trains():
    model = random_model(attention=True, phone_head=True).eval()
    cfg = model.cfg
    params = {k: v.numpy() for k, v in model.inference_state_dict().items()}
    numpy_model = npi.NumpyModel(voca.ModelConfig.from_dict(cfg.to_dict()), params, np.zeros(41), np.ones(41))
    rng = np.random.default_rng(0)
    windows = rng.normal(size=(16, cfg.window, cfg.n_features)).astype(np.float32)
    style = np.eye(3, dtype=np.float32)[np.arange(16) % 3]
    with torch.no_grad():
        ref = model(torch.as_tensor(windows), torch.as_tensor(style))
    got = numpy_model.forward(windows, style, heads=("controls", "phones"))
    assert got["phones"].shape == (16, 40)
    np.testing.assert_allclose(got["phones"].sum(1), 1.0, atol=1e-5)
    assert np.abs(got["phones"] - ref["phones"].numpy()).max() <= 1e-5
    assert np.abs(got["controls"] - ref["controls"].numpy()).max() <= 1e-5
    # the cross-entropy term exists and a few steps on fixed labels lower it
    model.train()
    labels = torch.as_tensor(rng.integers(0, 40, 16))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    first = None
    for _ in range(20):
        out = model(torch.as_tensor(windows), torch.as_tensor(style))
        terms = training_losses.losses(model, out, phones=labels, w=training_losses.LossWeights(phones=1.0))
        first = first if first is not None else float(terms["phones"])
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
    assert float(terms["phones"]) < 0.5 * first


def test_phone_front_end_exports_and_both_backends_agree(tmp_path):
    model = random_model(phone_head=True, front_end="mel+phones")
    assert model.cfg.n_features == 81
    rng = np.random.default_rng(1)
    mean = np.concatenate([rng.normal(-5, 1, 41), np.full(40, 0.02)]).astype(np.float32)
    std = np.concatenate([rng.uniform(1, 3, 41), np.full(40, 0.15)]).astype(np.float32)
    path = tmp_path / "w.npz"
    training_losses.export_weights(model, path, mean, std)
    y = speech_like(2.0)
    a = voca.load_model(path, device="cpu").predict_all(y, 30.0, heads=("controls", "phones"))
    b = npi.load_model(path).predict_all(y, 30.0, heads=("controls", "phones"))
    for key in ("controls", "phones"):
        assert a[key].shape == b[key].shape and a[key].shape[0] == 61
        assert np.abs(a[key] - b[key]).max() <= 1e-5, key
    long = np.tile(y, 4)  # 8 s in 2 s chunks: the phones are heard once, over the whole clip
    numpy_model = npi.load_model(path)
    whole = numpy_model.predict_all(long, 30.0, heads=("controls", "phones"), chunk_seconds=float("inf"))
    chunked = numpy_model.predict_all(long, 30.0, heads=("controls", "phones"), chunk_seconds=2.0,
                                      overlap_seconds=0.5)
    for key in whole:
        assert np.abs(chunked[key] - whole[key]).max() <= 1e-5, key
    silence = feats.front_end_silence("mel+phones")
    assert silence.shape == (81,) and silence[41:].sum() == 1.0  # padding hears SIL
    with pytest.raises(ValueError, match="unknown front end"):
        voca.ModelConfig(front_end="mfcc")


def test_channel_colouring_keeps_length_and_level_and_low_passes():
    from flame_lipsync.training import augment
    y = np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32)
    responses = [augment.channel_response(16000, 257, np.random.default_rng(s)) for s in range(40)]
    assert all(np.isfinite(r).all() and (r >= 0).all() for r in responses)
    assert min(r[-1] / r[64] for r in responses) < 0.05  # some are band-limited (codec, telephone)
    out = augment.colour(y, 16000, np.random.default_rng(3))
    assert out.shape == y.shape and out.dtype == np.float32
    assert abs(np.sqrt(np.mean(out ** 2)) - np.sqrt(np.mean(y ** 2))) < 1e-4
