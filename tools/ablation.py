"""Ablation table for the neural engine: each trained variant on voices it never
heard (the corpus test split) and on real recordings (librivox, no transcript).

    python tools/ablation.py out/train/abl_voca out/train/abl_voca_dense ... [--out docs/ablation.md]

Held-out voices: mean mouth-vertex error (mm) against the teacher (the phonetic
engine with forced alignment) and lip-gap closure recall at the teacher's M/P/B.
Real speech: the issue's lip-sync criteria on the five librivox clips, for the raw
network and as the engine runs it (lips sealed by the weights' calibrated rule,
tools/calibrate_engine.py; lips_close >= 0.45 for files without one).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from flame_lipsync.core.audio import load_speech
from flame_lipsync.core.flame import FLAME_ASSETS, LOWER_LIP_EDGE, SPEECH_ASSETS, UPPER_LIP_EDGE
from flame_lipsync.core.mesh_io import load_head
from flame_lipsync.core.metrics import RefPhone, closure_events, lip_gap, load_reference_phones, sync_lag
from flame_lipsync.core.metrics import _bilabial_counts, _open_vowel_counts, _pause_frames
from flame_lipsync.core.rig import load_rig
from flame_lipsync.core.coarticulation import enforce_closures
from flame_lipsync.models import load_model
from flame_lipsync.models.engine import predict_controls, seal_rule
from flame_lipsync.models.numpy_inference import front_end, has_phone_head
from flame_lipsync.training.corpus import iter_utterances



def mouth_vertices():
    """Rig-region vertices: everything the teacher can move."""
    return load_rig().region_index


def held_out(model, corpus: Path, template, split="test"):
    rig = load_rig()
    index = mouth_vertices()
    errors, hits, total = [], 0, 0
    for utt in iter_utterances(corpus, split, augmented=False):
        predicted = model.predict(utt.audio, fps=utt.fps)
        n = min(len(predicted), len(utt.controls))
        diff = (rig.offsets(predicted[:n]) - rig.offsets(utt.controls[:n]))[:, index]
        errors.append(np.linalg.norm(diff, axis=2).mean() * 1000)
        gap = lip_gap(template[None] + rig.offsets(predicted[:n]))
        phones = [RefPhone(*p) for p in utt.phones]
        h, t = _bilabial_counts(gap, phones, utt.fps, 0.003, 0.040)
        hits, total = hits + h, total + t
    return float(np.mean(errors)), hits, total


def real_speech(model, template, sealed=False):
    """The lip-sync criteria on librivox: the raw network, or (sealed) as the engine runs it,
    lips sealed by the weights' own rule (models.engine.seal_rule)."""
    rest = float(np.linalg.norm(template[UPPER_LIP_EDGE] - template[LOWER_LIP_EDGE]))
    counts = np.zeros(8, int)
    lags = []
    for wav in sorted((SPEECH_ASSETS / "librivox").glob("*.wav")):
        reference = load_reference_phones(wav.with_suffix(".phone.json"))
        speech = load_speech(wav)
        if sealed:
            controls, closures = predict_controls(model, speech.samples, 30.0)
            controls = np.clip(enforce_closures(controls, closures, 30.0), 0.0, 2.0)
        else:
            controls = model.predict(speech.samples, fps=30.0)
        gap = lip_gap(template[None] + load_rig().offsets(controls))
        b = _bilabial_counts(gap, reference, 30.0, 0.003, 0.040)
        pause = _pause_frames(reference, 30.0, len(gap), 0.2, 0.06)
        o = _open_vowel_counts(gap, reference, 30.0, rest, 0.004, 0.060)
        counts += [b[0], b[1], int(np.sum(gap[pause] <= 0.003)), len(pause), o[0], o[1],
                   *closure_events(gap, reference, 30.0)]
        lags.append(sync_lag(gap, reference, 30.0)[0])
    return counts, lags


def row(run: Path, corpus: Path, template) -> dict:
    history = json.loads((run / "history.json").read_text())
    model = load_model(run / "model.npz", backend="numpy")
    start = time.perf_counter()
    mm, hits, total = held_out(model, corpus, template)
    counts, lags = real_speech(model, template)
    sealed, sealed_lags = real_speech(model, template, sealed=True)
    cfg = model.cfg
    channel = model.meta.get("data", {}).get("augment_channel")
    variant = "VOCA" + ("+dense" if cfg.dense else "") + ("+attention" if cfg.attention else "") \
        + (f"+{cfg.guidance}" if cfg.guidance != "none" else "") \
        + ("+phone head" if has_phone_head(cfg) else "") + (" +channel aug." if channel else "") \
        + (", input mel+phones" if front_end(cfg) != "mel" else "")
    rule = seal_rule(model)
    return {"run": run.name, "variant": variant, "epochs": len(history),
            "train_minutes": history[-1]["seconds"] / 60, "val_mouth_mm": min(h["val_mouth_mm"] for h in history),
            "test_mouth_mm": mm, "test_bilabial": [hits, total], "real_counts": counts.tolist(),
            "real_lags": lags, "sealed_counts": sealed.tolist(), "sealed_lags": sealed_lags,
            "seal": f"{rule['evidence']} >= {rule['threshold']}", "eval_seconds": time.perf_counter() - start}


def markdown(rows) -> str:
    lines = ["| variant | epochs | train min | val mouth mm | test voices mouth mm | test voices M/P/B closed "
             "| librivox M/P/B closed | pause rest | open vowels | sync lags "
             "| engine: seal rule | engine: M/P/B closed | engine: closures away from M/P/B | engine: pause rest "
             "| engine: open vowels | engine: lags |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c, e = r["real_counts"], r["sealed_counts"]
        frac = lambda h, t: f"{h / t:.2f} ({h}/{t})" if t else "–"  # noqa: E731
        lines.append(f"| {r['variant']} | {r['epochs']} | {r['train_minutes']:.1f} | {r['val_mouth_mm']:.3f} "
                     f"| {r['test_mouth_mm']:.3f} | {frac(*r['test_bilabial'])} | {frac(c[0], c[1])} "
                     f"| {frac(c[2], c[3])} | {frac(c[4], c[5])} | {r['real_lags']} "
                     f"| {r['seal']} | {frac(e[0], e[1])} | {e[6]} of {e[7]} | {frac(e[2], e[3])} | {frac(e[4], e[5])} "
                     f"| {r['sealed_lags']} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--corpus", default=str(ROOT / "out" / "corpus"))
    parser.add_argument("--out", default=str(ROOT / "out" / "ablation.md"))
    args = parser.parse_args(argv)
    template, _ = load_head(FLAME_ASSETS / "flame_template.ply")
    rows = [row(Path(r), Path(args.corpus), template) for r in args.runs]
    table = markdown(rows)
    Path(args.out).write_text(table + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print(table)


if __name__ == "__main__":
    main()
