"""Speed and memory of the phonetic engine on real speech (`make bench`).

Each case runs in a fresh subprocess so its peak RSS is its own. The floor
(just decoding the audio) is measured in the same run, so ratios hold on a
shared, noisy machine. Writes out/bench.json and prints a table.

    python tools/bench.py [--seconds 60] [--fps 30]
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.flame import SPEECH_ASSETS  # noqa: E402

LIBRIVOX = SPEECH_ASSETS / "librivox"


def make_long_clip(seconds: float, folder: Path) -> tuple[Path, Path]:
    """Concatenate the librivox clips (and transcripts) until `seconds` long."""
    import numpy as np
    import soundfile

    clips = sorted(LIBRIVOX.glob("*.wav"))
    if not clips:
        raise SystemExit(f"bench needs the shared speech clips at {LIBRIVOX}")
    audio, words, total = [], [], 0.0
    while total < seconds:
        for wav in clips:
            samples, rate = soundfile.read(wav, dtype="float32")
            audio.append(samples)
            words.append(wav.with_suffix(".txt").read_text().strip())
            total += len(samples) / rate
            if total >= seconds:
                break
    samples = np.concatenate(audio)[: int(seconds * rate)]
    wav_path, txt_path = folder / f"speech_{seconds:g}s.wav", folder / f"speech_{seconds:g}s.txt"
    soundfile.write(wav_path, samples, rate)
    # Words past the cut would confuse the aligner: keep the transcript's share.
    text = " ".join(words).split()
    txt_path.write_text(" ".join(text[: int(len(text) * seconds / total)]))
    return wav_path, txt_path


def worker(case: str, wav: str, txt: str, fps: float) -> dict:
    """One measured case, in this process."""
    timings = {}
    start = time.perf_counter()
    from core.audio import load_speech
    speech = load_speech(wav, fps=fps)
    timings["load"] = time.perf_counter() - start
    if case != "decode":
        from core import phonetic
        transcript = Path(txt).read_text() if case == "phonetic+transcript" else None
        performance = phonetic.animate(speech, fps=fps, transcript=transcript)
        timings.update(performance.metadata["timings"])
        timings["frames"] = performance.frame_count
    timings["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return timings


def run_case(case, wav, txt, fps):
    command = [sys.executable, __file__, "--worker", case, "--wav", str(wav), "--txt", str(txt), "--fps", str(fps)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"bench case {case} failed:\n{result.stderr}")
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row["process_wall"] = time.perf_counter() - start
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, nargs="+", default=[60.0])
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--worker")
    parser.add_argument("--wav")
    parser.add_argument("--txt")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.wav, args.txt, args.fps)))
        return
    results = {"fps": args.fps, "machine": machine(), "date": time.strftime("%Y-%m-%d"), "cases": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.seconds:
            wav, txt = make_long_clip(seconds, Path(tmp))
            for case in ("decode", "phonetic+transcript", "phonetic"):
                row = run_case(case, wav, txt, args.fps)
                row.update(case=case, seconds=seconds)
                results["cases"].append(row)
    out = ROOT / "out" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(table(results))
    print(f"\nwrote {out}")


def machine() -> str:
    import os
    import platform
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def table(results) -> str:
    lines = [f"| speech | case | load s | recognition s | coarticulation+offsets s | real-time factor | peak RSS MB |",
             "|---|---|---|---|---|---|---|"]
    for r in results["cases"]:
        work = r["load"] + r.get("recognition", 0) + r.get("coarticulation", 0)
        lines.append(f"| {r['seconds']:g} s | {r['case']} | {r['load']:.3f} | {r.get('recognition', 0):.2f} | "
                     f"{r.get('coarticulation', 0):.3f} | {r['seconds'] / work:.0f}x | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
