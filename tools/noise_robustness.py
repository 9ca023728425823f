"""Lip-sync criteria on the librivox clips with added noise, per engine, no transcript.

    python tools/noise_robustness.py [--snr 20 10] [--noise pink] [--out out/noise.md]

The reference phones come from the clean recordings; noise is pink (speech-shaped
noise is closer to real rooms than white), seeded, added at the given SNR.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from flame_lipsync.core.audio import load_speech, speech_from_array
from flame_lipsync.pipeline.engines import ENGINES, run_engine
from flame_lipsync.core.flame import FLAME_ASSETS, LOWER_LIP_EDGE, SPEECH_ASSETS, UPPER_LIP_EDGE
from flame_lipsync.core.mesh_io import load_head
from flame_lipsync.core.metrics import closure_events, lip_gap, load_reference_phones, sync_lag
from flame_lipsync.core.metrics import _bilabial_counts, _open_vowel_counts, _pause_frames
from flame_lipsync.training.augment import add_noise, pink_noise, white_noise

NOISES = {"pink": pink_noise, "white": white_noise}


def criteria(engine, snr, noise, template, seed=0):
    rest = float(np.linalg.norm(template[UPPER_LIP_EDGE] - template[LOWER_LIP_EDGE]))
    counts, lags = np.zeros(8, int), []
    rng = np.random.default_rng(seed)
    for wav in sorted((SPEECH_ASSETS / "librivox").glob("*.wav")):
        reference = load_reference_phones(wav.with_suffix(".phone.json"))
        speech = load_speech(wav)
        samples = speech.samples
        if snr is not None:
            samples = add_noise(samples, NOISES[noise](len(samples), rng), snr)
        noisy = speech_from_array(samples, speech.rate, speech.rate, source=f"{wav.name} @ {snr} dB")
        gap = lip_gap(template[None] + run_engine(engine, noisy, 30.0).offsets)
        pause = _pause_frames(reference, 30.0, len(gap), 0.2, 0.06)
        counts += [*_bilabial_counts(gap, reference, 30.0, 0.003, 0.040),
                   int(np.sum(gap[pause] <= 0.003)), len(pause),
                   *_open_vowel_counts(gap, reference, 30.0, rest, 0.004, 0.060),
                   *closure_events(gap, reference, 30.0)]
        lags.append(sync_lag(gap, reference, 30.0)[0])
    return counts, lags


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--snr", type=float, nargs="+", default=[20.0, 10.0])
    parser.add_argument("--noise", default="pink", choices=tuple(NOISES))
    parser.add_argument("--out", default=str(ROOT / "out" / "noise.md"))
    args = parser.parse_args(argv)
    template, _ = load_head(FLAME_ASSETS / "flame_template.ply")
    frac = lambda h, t: f"{h / t:.2f} ({h}/{t})" if t else "–"  # noqa: E731
    lines = [f"| engine (no transcript) | {args.noise} noise | M/P/B closed | pause rest | open vowels | sync lags "
             "| closures away from M/P/B |",
             "|---|---|---|---|---|---|---|"]
    for engine in ENGINES:
        for snr in [None] + args.snr:
            c, lags = criteria(engine, snr, args.noise, template)
            label = "clean" if snr is None else f"{snr:g} dB SNR"
            lines.append(f"| {engine} | {label} | {frac(c[0], c[1])} | {frac(c[2], c[3])} "
                         f"| {frac(c[4], c[5])} | {lags} | {c[6]} of {c[7]} |")
            print(lines[-1], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
