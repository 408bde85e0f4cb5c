"""Video hashing speed: ours against the reference tools `vpdq` and `tmkpy`.

Run: python benchmarks/bench_video.py [--seconds 60] [--repeats 2] [--encoding x264|phone] [--size 640x360]
Makes a synthetic 30-fps H.264 clip (640x360 unless --size) (tests/videos.py style: pans over photographs)
and prints wall and CPU seconds of hashing per minute of video (the fastest of --repeats
runs; CPU includes child processes), for vpdq.computeHash,
tmkpy.hashVideo (it runs the system ffmpeg), and hashmatch's vpdq(), tmk() and
video_hashes() (all four formats in one decode pass). Needs the `test` extra.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import hashmatch  # noqa: E402
from hashmatch import _core  # noqa: E402
from videos import encode, pan, photo, scenes, write_video  # noqa: E402


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (tmkpy's ffmpeg runs as a child)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def best_seconds(fn: Callable[[], object], repeats: int) -> Tuple[float, float]:
    """(wall, CPU) seconds of the fastest of `repeats` runs of fn()."""
    best = (float("inf"), 0.0)
    for _ in range(repeats):
        start, cpu = time.perf_counter(), cpu_seconds()
        fn()
        best = min(best, (time.perf_counter() - start, cpu_seconds() - cpu))
    return best


#: x264 settings per --encoding: the default is x264's own GOP (keyint 250, scene cuts) with
#: B-frames; "phone" is how phones record: a keyframe a second and no B-frames.
ENCODINGS = {"x264": None, "phone": {"crf": "23", "preset": "veryfast", "bf": "0", "g": "30"}}


def make_clip(path: Path, seconds: int, encoding: str = "x264", size: Tuple[int, int] = (640, 360)) -> Path:
    """Six scenes, each a pan over a different photograph, at 30 fps."""
    fps = 30
    n = seconds * fps
    names = ["astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry"]
    each = (n + len(names) - 1) // len(names)
    parts = [pan(photo(name), *size, each, seed) for seed, name in enumerate(names)]
    frames = scenes(*parts, frames_each=each)
    if ENCODINGS[encoding] is None:
        return write_video(path, frames, n, fps)
    return encode(path, frames, n, fps, "libx264", ENCODINGS[encoding])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--size", default="640x360", help="frame size WxH (default 640x360)")
    ap.add_argument("--encoding", choices=sorted(ENCODINGS), default="x264",
                    help="x264: default GOP with B-frames; phone: a keyframe a second, no B-frames")
    args = ap.parse_args()

    import tmkpy
    import vpdq

    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    with tempfile.TemporaryDirectory() as tmp:
        width, height = (int(x) for x in args.size.lower().split("x"))
        clip = make_clip(Path(tmp) / "clip.mp4", args.seconds, args.encoding, (width, height))
        per_minute = 60.0 / args.seconds
        runs: Dict[str, Callable[[], object]] = {
            "vpdq.computeHash (reference)": lambda: vpdq.computeHash(str(clip)),
            "tmkpy.hashVideo (reference)": lambda: tmkpy.hashVideo(str(clip), ffmpeg),
            "hashmatch.vpdq": lambda: hashmatch.vpdq(clip),
            "hashmatch.tmk": lambda: hashmatch.tmk(clip),
            "hashmatch.video_hashes (vpdq + tmk_pdqf + md5 + sha256)": lambda: hashmatch.video_hashes(clip),
        }
        load = os.getloadavg()
        devnull = os.open(os.devnull, os.O_WRONLY)
        saved = os.dup(2)
        results = {}
        for name, fn in runs.items():
            os.dup2(devnull, 2)  # tmkpy's ffmpeg writes its progress to our stderr
            try:
                wall, cpu = best_seconds(fn, args.repeats)
                results[name] = (wall * per_minute, cpu * per_minute)
            finally:
                os.dup2(saved, 2)
        info = hashmatch.video_info(clip)

    print(f"Machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, hashmatch {hashmatch.__version__}")
    print("SIMD clones run: " + ", ".join(f"{k} {_core.cpu_clone(k)}" for k in _core.cpu_clones()))  # cpp/cpu.hpp
    print(f"Clip: {args.seconds} s, {info.width}x{info.height}, {info.fps:.0f} fps, {info.codec} ({args.encoding}); "
          f"best of {args.repeats}; load average before/after: {load[0]:.2f} / {os.getloadavg()[0]:.2f}\n")
    ref_vpdq = results["vpdq.computeHash (reference)"][0]
    ref_tmk = results["tmkpy.hashVideo (reference)"][0]
    print("| hasher | wall s per minute of video | CPU s per minute | wall vs vpdq | wall vs tmkpy |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (wall, cpu) in results.items():
        print(f"| `{name}` | {wall:.2f} | {cpu:.2f} | {ref_vpdq / wall:.2f}x | {ref_tmk / wall:.2f}x |")


if __name__ == "__main__":
    main()
