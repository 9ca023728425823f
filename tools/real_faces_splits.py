"""The real-face table by split: the speakers the phonetic engine's visemes were fitted
on (training/fit_visemes.py) vs. the whole speakers held out from that fit, and the
French clip alone. Reads out/eval/real_faces.json, writes out/eval/real_faces_splits.md.

    python tools/real_faces_splits.py [--eval out/eval/real_faces.json]
"""
import argparse
import json
from pathlib import Path

import numpy as np

from flame_lipsync.training.fit_visemes import HELD_OUT_PREFIXES, held_out

ROOT = Path(__file__).resolve().parent.parent
METRICS = (("r", "r"), ("closure_f1", "closure F1"), ("amplitude_ratio", "amplitude"),
           ("width_r", "width r"), ("lve_mm", "LVE mm"))


def mean(clips, predictor, metric):
    values = [c["scores"][predictor].get(metric) for c in clips]
    values = [v for v in values if v is not None]
    return float(np.nanmean(values)) if values else float("nan")


def rows(clips, predictors):
    out = []
    for p in predictors:
        cells = [f"{mean(clips, p, m):.3f}" if m == "r" else f"{mean(clips, p, m):.2f}" for m, _ in METRICS]
        lag = np.mean([abs(c["scores"][p]["lag_ms"]) for c in clips])
        above = ("-" if p == "loudness" else
                 f"{np.mean([c['scores'][p]['r'] > c['scores']['loudness']['r'] for c in clips]):.0%}")
        out.append(f"| {p} | " + " | ".join(cells).replace("nan", "-") + f" | {lag:.0f} | {above} |")
    return out


def report(results: dict) -> str:
    predictors = results["predictors"]
    header = ["| predictor | " + " | ".join(name for _, name in METRICS) + " | abs lag ms | above loudness |",
              "|---|" + "---|" * (len(METRICS) + 2)]
    lines = [f"Held out of the viseme fit (whole speakers/sources): {', '.join(p.rstrip('_') + '*' for p in HELD_OUT_PREFIXES)}.", ""]
    for split, chosen in (("fitted speakers", lambda c: not held_out(c["clip"])),
                          ("held-out speakers", lambda c: held_out(c["clip"]))):
        for sub, longer in (("all", lambda c: True), (">= 4 s", lambda c: c["seconds"] >= 4.0)):
            clips = [c for c in results["clips"] if chosen(c) and longer(c)]
            lines += [f"#### {split}, {sub} ({len(clips)} clips)", ""] + header + rows(clips, predictors) + [""]
    french = [c for c in results["clips"] if c["clip"] == "dfrf_french"]
    if french:
        lines += ["#### dfrf_french (French, held out)", ""] + header + rows(french, predictors) + [""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval", default=str(ROOT / "out" / "eval" / "real_faces.json"))
    args = parser.parse_args(argv)
    path = Path(args.eval)
    text = report(json.loads(path.read_text()))
    out = path.with_name("real_faces_splits.md")
    out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
