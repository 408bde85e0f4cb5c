"""Video hashing speed: ours against the reference tools `vpdq` and `tmkpy`.

Run: python benchmarks/bench_video.py [--seconds 60] [--repeats 2]
Makes a synthetic 640x360 30-fps H.264 clip (tests/videos.py style: pans over photographs)
and prints seconds of hashing per minute of video, best of --repeats, for vpdq.computeHash,
tmkpy.hashVideo (it runs the system ffmpeg), and hashmatch's vpdq(), tmk() and
video_hashes() (all four formats in one decode pass). Needs the `test` extra.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import hashmatch  # noqa: E402
from videos import pan, photo, scenes, write_video  # noqa: E402


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of `repeats` runs of fn(), in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def make_clip(path: Path, seconds: int) -> Path:
    """Six scenes, each a pan over a different photograph, 640x360 at 30 fps."""
    fps, size = 30, (640, 360)
    n = seconds * fps
    names = ["astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry"]
    each = (n + len(names) - 1) // len(names)
    parts = [pan(photo(name), *size, each, seed) for seed, name in enumerate(names)]
    return write_video(path, scenes(*parts, frames_each=each), n, fps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import tmkpy
    import vpdq

    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", args.seconds)
        per_minute = 60.0 / args.seconds
        runs: Dict[str, Callable[[], object]] = {
            "vpdq.computeHash (reference)": lambda: vpdq.computeHash(str(clip)),
            "tmkpy.hashVideo (reference)": lambda: tmkpy.hashVideo(str(clip), ffmpeg),
            "hashmatch.vpdq": lambda: hashmatch.vpdq(clip),
            "hashmatch.tmk": lambda: hashmatch.tmk(clip),
            "hashmatch.video_hashes (vpdq + tmk_pdqf + md5 + sha256)": lambda: hashmatch.video_hashes(clip),
        }
        devnull = os.open(os.devnull, os.O_WRONLY)
        saved = os.dup(2)
        results = {}
        for name, fn in runs.items():
            os.dup2(devnull, 2)  # tmkpy's ffmpeg writes its progress to our stderr
            try:
                results[name] = best_seconds(fn, args.repeats) * per_minute
            finally:
                os.dup2(saved, 2)
        info = hashmatch.video_info(clip)

    print(f"Machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, hashmatch {hashmatch.__version__}")
    print(f"Clip: {args.seconds} s, {info.width}x{info.height}, {info.fps:.0f} fps, {info.codec}; "
          f"best of {args.repeats}\n")
    ref_vpdq = results["vpdq.computeHash (reference)"]
    ref_tmk = results["tmkpy.hashVideo (reference)"]
    print("| hasher | s per minute of video | vs vpdq | vs tmkpy |")
    print("| --- | ---: | ---: | ---: |")
    for name, s in results.items():
        print(f"| `{name}` | {s:.2f} | {ref_vpdq / s:.2f}x | {ref_tmk / s:.2f}x |")


if __name__ == "__main__":
    main()
