"""Run the phone loop once over every corpus utterance and cache its per-frame phones,
so networks with the phone front end (model.front_end = "mel+phones") can train.

    python -m flame_lipsync.training.cache_phone_features [--corpus out/corpus]

Resumable (existing files are kept); ~0.06 s of decoding per second of audio.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from .corpus import load_manifest, load_utterance
from ..models.phone_features import cache_path, phone_indices


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(ROOT / "out" / "corpus"))
    args = parser.parse_args(argv)
    manifest = load_manifest(args.corpus)
    records = manifest["utterances"]
    start, done = time.perf_counter(), 0
    for i, record in enumerate(records):
        target = cache_path(args.corpus, record["file"])
        if target.is_file():
            continue
        utt = load_utterance(Path(manifest["_root"]) / record["file"])
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, phone_indices(utt.audio))
        done += 1
        if done % 100 == 0:
            print(f"{i + 1}/{len(records)} utterances, {time.perf_counter() - start:.0f} s", flush=True)
    print(f"cached {done} new of {len(records)} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
