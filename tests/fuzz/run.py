#!/usr/bin/env python3
"""Run one fuzz target: ``python tests/fuzz/run.py TARGET --seconds N`` (atheris, coverage-guided).

Seeds come from targets.SEEDS plus the saved corpus in tests/fuzz/corpus/TARGET/; new
interesting inputs go to a scratch directory (--work), crashing inputs to --artifacts.
Without atheris (or with --simple) a deterministic mutator runs in-process instead.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))


def corpus_dir(target: str) -> str:
    """The saved regression inputs of a target."""
    return os.path.join(HERE, "corpus", target)


def saved_inputs(target: str) -> list:
    """The regression corpus of target, as bytes (sorted by file name)."""
    folder = corpus_dir(target)
    if not os.path.isdir(folder):
        return []
    return [open(os.path.join(folder, n), "rb").read() for n in sorted(os.listdir(folder))]


def run_simple(target: str, seconds: float, runs: int, seed: int) -> int:
    """Mutate the seeds and corpus in-process; returns the number of executions."""
    from tests.fuzz.mutate import mutate
    from tests.fuzz.targets import SEEDS, TARGETS, run_one

    if target not in TARGETS:
        sys.exit(f"unknown target {target!r}; known: {', '.join(sorted(TARGETS))}")
    corpus = SEEDS[target]() + saved_inputs(target)
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    n = 0
    for data in corpus:
        run_one(target, data)
        n += 1
    while n < runs and time.monotonic() < deadline:
        data = mutate(rng.choice(corpus), rng, corpus)
        try:
            run_one(target, data)
        except BaseException:
            sys.stderr.write(f"finding in {target}: input {data!r:.300}\n")
            raise
        n += 1
    return n


def run_atheris(target: str, seconds: float, runs: int, work: str, artifacts: str, extra: list) -> None:
    """Hand the target to atheris/libFuzzer with the seeds written into a scratch corpus."""
    import atheris

    # Pillow too: its format plugins parse headers in Python, coverage there guides image inputs.
    # And the targets: for the native core, the harness's branches (op, shape, layout) are the
    # only coverage signal libFuzzer gets.
    with atheris.instrument_imports(include=["hashmatch", "PIL", "tests.fuzz"]):
        from tests.fuzz.targets import SEEDS, TARGETS, run_one

    if target not in TARGETS:
        sys.exit(f"unknown target {target!r}; known: {', '.join(sorted(TARGETS))}")
    os.makedirs(work, exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    for i, data in enumerate(SEEDS[target]()):
        with open(os.path.join(work, f"seed-{i}"), "wb") as f:
            f.write(data)
    argv = [sys.argv[0], work]
    if os.path.isdir(corpus_dir(target)):
        argv.append(corpus_dir(target))
    argv += [f"-max_total_time={int(seconds)}", "-timeout=30", "-rss_limit_mb=2048", "-max_len=65536",
             f"-artifact_prefix={artifacts.rstrip('/')}/", "-print_final_stats=1"]
    if runs:
        argv.append(f"-runs={runs}")
    atheris.Setup(argv + extra, lambda data: run_one(target, data))
    atheris.Fuzz()


def main() -> None:
    # hashmatch is imported only inside run_atheris, under atheris's import instrumentation:
    # a module imported before it would run without coverage feedback.
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="a name in tests/fuzz/targets.py TARGETS")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--runs", type=int, default=0, help="stop after this many executions (0: no limit)")
    parser.add_argument("--simple", action="store_true", help="the built-in mutator instead of atheris")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", help="scratch corpus directory (default: a temporary one)")
    parser.add_argument("--artifacts", default=os.path.join(tempfile.gettempdir(), "hashmatch-fuzz-artifacts"))
    args, extra = parser.parse_known_args()
    try:
        import atheris  # noqa: F401
    except ImportError:
        args.simple = True
    if args.simple:
        n = run_simple(args.target, args.seconds, args.runs or 10 ** 12, args.seed)
        print(f"{args.target}: {n} executions, no findings")
        return
    run_atheris(args.target, args.seconds, args.runs,
                args.work or tempfile.mkdtemp(prefix=f"hashmatch-fuzz-{args.target}-"), args.artifacts, extra)


if __name__ == "__main__":
    main()
