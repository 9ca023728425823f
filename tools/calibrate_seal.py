"""Choose where the neural engine seals the lips, on held-out training voices only.

    python tools/calibrate_seal.py models/weights/neural.npz [--write]

For each kind of evidence the network gives (its lips_close control; with a phone
head, also its posterior of M/P/B) and each threshold, the clean utterances of the
corpus's validation voices are animated and scored against the teacher's phones:
closure recall (lip gap <= 3 mm within 40 ms of each M/P/B), open-vowel rate
(>= rest + 4 mm) and false seals (sealed frames further than 40 ms from any M/P/B).
The rule: the highest closure recall that keeps >= 95 % of open vowels open (ties:
the higher threshold). --write stores it in the weights file's meta["seal"], which
models.engine reads. Never looks at the test recordings.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.coarticulation import enforce_closures  # noqa: E402
from core.flame import FLAME_ASSETS, LOWER_LIP_EDGE, UPPER_LIP_EDGE  # noqa: E402
from core.mesh_io import load_head  # noqa: E402
from core.metrics import BILABIALS, RefPhone, _bilabial_counts, _open_vowel_counts  # noqa: E402
from core.motion import predicted_closures  # noqa: E402
from core.rig import load_rig  # noqa: E402
from models import load_model  # noqa: E402
from models.corpus import iter_utterances  # noqa: E402
from models.engine import bilabial_posterior  # noqa: E402
from models.numpy_inference import has_phone_head, update_meta  # noqa: E402

THRESHOLDS = np.round(np.arange(0.20, 0.91, 0.05), 2)
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


def false_seal_frames(closures, phones, fps, n, tolerance=0.040):
    sealed = np.zeros(n, bool)
    for c in closures:
        sealed[int(round(c.start * fps)):int(round(c.end * fps)) + 1] = True
    near = np.zeros(n, bool)
    t = np.arange(n) / fps
    for p in phones:
        if p.label in BILABIALS:
            near |= (t >= p.start - tolerance) & (t <= p.end + tolerance)
    return int((sealed & ~near).sum()), int(sealed.sum())


def sweep(model, corpus, template, split="val"):
    gap_of = LipGap(template)
    evidences = ["lips_close"] + (["bilabial_posterior"] if has_phone_head(model.cfg) else [])
    counts = {(e, float(t)): np.zeros(6, int) for e in evidences for t in THRESHOLDS}
    n_utts = 0
    for utt in iter_utterances(corpus, split, augmented=False):
        heads = ("controls", "phones") if len(evidences) > 1 else ("controls",)
        out = model.predict_all(utt.audio, fps=utt.fps, heads=heads)
        raw = out["controls"]
        phones = [RefPhone(*p) for p in utt.phones]
        signals = {"lips_close": None}
        if "phones" in out:
            signals["bilabial_posterior"] = bilabial_posterior(out["phones"])
        for e in evidences:
            for t in THRESHOLDS:
                closures = predicted_closures(raw, utt.fps, float(t), signals[e])
                controls = np.clip(enforce_closures(raw.copy(), closures, utt.fps), 0.0, 2.0)
                gap = gap_of(controls)
                b = _bilabial_counts(gap, phones, utt.fps, 0.003, 0.040)
                o = _open_vowel_counts(gap, phones, utt.fps, gap_of.rest, 0.004, 0.060)
                f = false_seal_frames(closures, phones, utt.fps, len(gap))
                counts[(e, float(t))] += [b[0], b[1], o[0], o[1], f[0], f[1]]
        n_utts += 1
    return counts, n_utts


def choose(counts):
    best = None
    for (e, t), c in counts.items():
        recall, vowels = c[0] / max(c[1], 1), c[2] / max(c[3], 1)
        if vowels < MIN_OPEN_VOWELS:
            continue
        key = (recall, t)
        if best is None or key > best[0]:
            best = (key, {"evidence": e, "threshold": t, "val_closure_recall": round(recall, 4),
                          "val_open_vowels": round(vowels, 4),
                          "val_false_seal_frames": round(c[4] / max(c[5], 1), 4)})
    return best[1] if best else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights")
    parser.add_argument("--corpus", default=str(ROOT / "out" / "corpus"))
    parser.add_argument("--write", action="store_true", help="store the chosen rule in the weights file")
    args = parser.parse_args(argv)
    template, _ = load_head(FLAME_ASSETS / "flame_template.ply")
    model = load_model(args.weights, backend="numpy")
    counts, n = sweep(model, Path(args.corpus), template)
    print(f"{n} validation utterances; evidence, threshold: closures, open vowels, false-seal share")
    for (e, t), c in counts.items():
        print(f"  {e:18s} {t:.2f}: {c[0]}/{c[1]} = {c[0] / max(c[1], 1):.3f}   {c[2]}/{c[3]} = "
              f"{c[2] / max(c[3], 1):.3f}   {c[4]}/{c[5]} = {c[4] / max(c[5], 1):.3f}")
    rule = choose(counts)
    print("chosen:", json.dumps(rule))
    if rule and args.write:
        rule["chosen_on"] = f"{n} clean utterances of the corpus's validation voices (tools/calibrate_seal.py)"
        update_meta(args.weights, seal=rule)
        print(f"wrote meta['seal'] to {args.weights}")
    return 0 if rule else 1


if __name__ == "__main__":
    sys.exit(main())
