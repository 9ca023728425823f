"""Calibrate how the neural engine turns a network's output into a performance, on the
corpus's held-out validation voices only (never on the test recordings).

    python -m flame_lipsync.training.calibrate_engine models/weights/neural.npz [--write]

The engine's own steps (models.engine.shape_controls) are what is calibrated; they
include resting in the pauses the phone head hears.
1+2. Gain and smoothing: a regression network shrinks towards the mean, so vowels open
   less than the teacher's. For each Gaussian sigma (frames at 30 fps, 0-2), the shapes
   (every control but lip contact) are scaled so the mean peak lip opening over the open
   vowels equals the teacher's; the sigma whose smoothed, scaled output has the lowest
   mean mouth-vertex error against the teacher wins (scaling also scales frame-to-frame
   noise, which smoothing takes back).
3. Seal: for each kind of evidence (the lips_close control; with a phone head, also its
   posterior of M/P/B) and threshold: closure recall (lip gap <= 3 mm within 40 ms of
   each M/P/B), seal precision (seals overlapping an M/P/B +- 40 ms: a seal anywhere else
   is lips slamming shut mid-word), open-vowel rate (>= rest + 4 mm). The rule: the best
   F1 of recall and precision that keeps >= 95 % of open vowels open (ties: the higher
   threshold).
--write stores meta["articulation"] and meta["seal"] in the weights file; models.engine
reads them.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from ..core.coarticulation import enforce_closures
from ..core.flame import FLAME_ASSETS, LOWER_LIP_EDGE, UPPER_LIP_EDGE
from ..core.mesh_io import load_head
from ..core.metrics import BILABIALS, OPEN_VOWELS, RefPhone, _bilabial_counts, _frames_between
from ..core.metrics import _open_vowel_counts
from ..core.rig import load_rig
from ..models import load_model
from .corpus import iter_utterances
from ..models.engine import DEFAULT_SEAL, SEAL_EVIDENCE, network_outputs, shape_controls
from ..models.numpy_inference import has_phone_head, update_meta

SIGMAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
THRESHOLDS = np.round(np.concatenate([[0.05, 0.1, 0.15], np.arange(0.20, 0.91, 0.05)]), 2)
MIN_OPEN_VOWELS = 0.95


class LipGap:
    """Lip gap (metres) of the template driven by controls: two vertices are enough."""

    def __init__(self, template):
        fields = load_rig().fields
        self.upper, self.lower = template[UPPER_LIP_EDGE], template[LOWER_LIP_EDGE]
        self.f_upper, self.f_lower = fields[:, UPPER_LIP_EDGE], fields[:, LOWER_LIP_EDGE]
        self.rest = float(np.linalg.norm(self.upper - self.lower))

    def __call__(self, controls):
        up = self.upper + controls @ self.f_upper
        low = self.lower + controls @ self.f_lower
        return np.linalg.norm(up - low, axis=1)


class Validation:
    """The network's outputs and the teacher's targets on every clean validation utterance."""

    def __init__(self, model, corpus, split="val", augmented=None):
        self.has_phone_head = has_phone_head(model.cfg)
        self.items = []
        for utt in iter_utterances(corpus, split, augmented=augmented):
            out = network_outputs(model, utt.audio, utt.fps)
            n = min(len(out["controls"]), len(utt.controls))
            self.items.append(({k: np.asarray(v)[:n] for k, v in out.items()}, utt.controls[:n],
                               [RefPhone(*p) for p in utt.phones], utt.fps))


def unsealed(out, fps, articulation):
    return shape_controls(out, fps, articulation, DEFAULT_SEAL, seal=False)[0]


def open_vowel_peaks(gap, phones, fps, rest):
    return [gap[f].max() - rest for p in phones
            if p.label in OPEN_VOWELS and p.end - p.start >= 0.06 - 1e-9
            for f in [_frames_between(p.start, p.end, fps, len(gap))] if len(f)]


def mouth_error_mm(val, articulation):
    rig = load_rig()
    region = rig.region_index
    fields = rig.fields[:, region].reshape(len(rig.fields), -1)
    errors = []
    for out, teacher, _, fps in val.items:
        diff = ((unsealed(out, fps, articulation) - teacher) @ fields).reshape(len(teacher), -1, 3)
        errors.append(np.linalg.norm(diff, axis=2).mean())
    return float(np.mean(errors)) * 1000


def mean_peak(val, gap_of, articulation=None):
    peaks = []
    for out, teacher, phones, fps in val.items:
        controls = teacher if articulation is None else unsealed(out, fps, articulation)
        peaks += open_vowel_peaks(gap_of(controls), phones, fps, gap_of.rest)
    return float(np.mean(peaks)) * 1000


def matching_gain(val, gap_of, sigma, target) -> float:
    """The gain whose mean open-vowel peak equals the teacher's (`target`, mm). The gap is
    nearly linear in the controls: a few fixed-point steps converge."""
    gain = 1.0
    for _ in range(4):
        gain *= target / mean_peak(val, gap_of, {"smooth": sigma, "gain": gain})
    return round(gain, 3)


def calibrate_articulation(val, gap_of, log=print) -> dict:
    """Smoothing and gain together: for each sigma the gain that restores the teacher's
    vowel openings, then the sigma whose (sigma, gain) has the lowest mouth-vertex error."""
    target = mean_peak(val, gap_of)
    candidates = {}
    for sigma in SIGMAS:
        gain = matching_gain(val, gap_of, sigma, target)
        candidates[sigma] = (gain, mouth_error_mm(val, {"smooth": sigma, "gain": gain}))
    log("smoothing sigma -> matching gain, mean mouth-vertex error (mm): "
        + ", ".join(f"{s:g}: {g:.3f}, {e:.3f}" for s, (g, e) in candidates.items()))
    sigma = min(candidates, key=lambda s: candidates[s][1])
    gain, error = candidates[sigma]
    rule = {"smooth": sigma, "gain": gain,
            "val_open_vowel_peak_mm": round(mean_peak(val, gap_of, {"smooth": sigma, "gain": gain}), 2),
            "val_open_vowel_peak_mm_before": round(mean_peak(val, gap_of, {"smooth": 0.0, "gain": 1.0}), 2),
            "teacher_open_vowel_peak_mm": round(target, 2), "val_mouth_mm": round(error, 3),
            "val_mouth_mm_before": round(mouth_error_mm(val, {"smooth": 0.0, "gain": 1.0}), 3)}
    log(f"articulation: {json.dumps(rule)}")
    return rule


def true_seals(closures, phones, tolerance=0.040):
    """(seals overlapping a teacher M/P/B +- tolerance, all seals): closure precision."""
    bilabials = [p for p in phones if p.label in BILABIALS]
    hits = sum(any(c.start <= b.end + tolerance and c.end >= b.start - tolerance for b in bilabials)
               for c in closures)
    return hits, len(closures)


def sweep_seal(val, gap_of, articulation):
    first = val.items[0][0] if val.items else {}
    evidences = ["lips_close"] + (["bilabial_posterior"] if "phones" in first else []) \
        + (["heard_bilabial", "heard_or_posterior", "heard_and_posterior"] if "heard" in first else [])
    counts = {(e, float(t)): np.zeros(6, int) for e in evidences
              for t in (THRESHOLDS if e != "heard_bilabial" else [0.5])}  # heard: one-hot
    # per rule: closures hit / M/P/B, open vowels open / open vowels, true seals / seals
    for out, _, phones, fps in val.items:
        for e in evidences:
            for t in (THRESHOLDS if e != "heard_bilabial" else [0.5]):
                shaped, closures = shape_controls(out, fps, articulation, {"evidence": e, "threshold": float(t)})
                gap = gap_of(np.clip(enforce_closures(shaped, closures, fps), 0.0, 2.0))
                b = _bilabial_counts(gap, phones, fps, 0.003, 0.040)
                o = _open_vowel_counts(gap, phones, fps, gap_of.rest, 0.004, 0.060)
                f = true_seals(closures, phones)
                counts[(e, float(t))] += [b[0], b[1], o[0], o[1], f[0], f[1]]
    return counts


def choose(counts, evidence=None):
    """Best closure F1 (recall of the M/P/B, precision of the seals) keeping >= 95 % of open
    vowels open; ties: the higher threshold. `evidence`: only that kind."""
    best = None
    for (e, t), c in counts.items():
        if evidence and e != evidence:
            continue
        recall, vowels, precision = c[0] / max(c[1], 1), c[2] / max(c[3], 1), c[4] / max(c[5], 1)
        if vowels < MIN_OPEN_VOWELS:
            continue
        f1 = 2 * recall * precision / max(recall + precision, 1e-9)
        key = (round(f1, 6), t)
        if best is None or key > best[0]:
            best = (key, {"evidence": e, "threshold": t, "val_closure_f1": round(f1, 4),
                          "val_closure_recall": round(recall, 4), "val_seal_precision": round(precision, 4),
                          "val_open_vowels": round(vowels, 4)})
    return best[1] if best else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights")
    parser.add_argument("--corpus", default=str(ROOT / "out" / "corpus"))
    parser.add_argument("--write", action="store_true", help="store the chosen rules in the weights file")
    parser.add_argument("--evidence", choices=SEAL_EVIDENCE,
                        help="seal evidence to use (its threshold is still chosen here). Synthetic "
                             "validation voices cannot say which kind holds up on real speech: that is "
                             "measured on real recordings (tools/ablation.py, make eval) and given here")
    parser.add_argument("--clean-only", action="store_true",
                        help="only the clean validation utterances (default: also their augmented copies: "
                             "noise, rooms, pitch/speed; real recordings are rarely clean)")
    args = parser.parse_args(argv)
    template, _ = load_head(FLAME_ASSETS / "flame_template.ply")
    model = load_model(args.weights, backend="numpy")
    val = Validation(model, Path(args.corpus), augmented=False if args.clean_only else None)
    gap_of = LipGap(template)
    kind = "clean" if args.clean_only else "clean + augmented"
    print(f"{len(val.items)} {kind} validation utterances")
    articulation = calibrate_articulation(val, gap_of)
    counts = sweep_seal(val, gap_of, articulation)
    print("seal evidence, threshold: M/P/B closed, open vowels open, seals at an M/P/B (precision)")
    for (e, t), c in counts.items():
        print(f"  {e:18s} {t:.2f}: {c[0]}/{c[1]} = {c[0] / max(c[1], 1):.3f}   {c[2]}/{c[3]} = "
              f"{c[2] / max(c[3], 1):.3f}   {c[4]}/{c[5]} = {c[4] / max(c[5], 1):.3f}")
    for e in sorted({e for e, _ in counts}):
        print(f"best for {e}: {json.dumps(choose(counts, e))}")
    rule = choose(counts, args.evidence)
    print("chosen seal:", json.dumps(rule))
    if rule and args.write:
        source = f"{len(val.items)} {kind} utterances of the corpus's validation voices (training/calibrate_engine.py)"
        update_meta(args.weights, articulation=dict(articulation, chosen_on=source),
                    seal=dict(rule, chosen_on=source))
        print(f"wrote meta['articulation'] and meta['seal'] to {args.weights}")
    return 0 if rule else 1


if __name__ == "__main__":
    sys.exit(main())
