"""What each hash survives, and what it costs in false matches, on synthetic media only.

Images: originals from the seeded generator (datasets/synthetic/generate.py) are the stored
list; every transform in datasets/synthetic/transforms.py at every strength makes one query per
original. Recall is the share of queries within the threshold of their own original; the
false-positive rate (FPR) is the share of (distractor, original) pairs within it, over
>= 10,000 generated distractors that were never stored. Each hasher is scored at its default
threshold and at the threshold its distractors put at FPR <= 1e-4. Query-side options (PDQ's
dihedral variants, trimmed borders) hash the query several ways and keep the closest, on both
the transformed copies and the distractors, so their false-positive cost is counted.

Videos: synthetic clips (make_videos.py) are stored, edited copies are queries; vPDQ and
TMK+PDQF decide with the reference rules; false positives are counted over every query against
every other stored clip.

    python benchmarks/bench_robustness.py            # everything: RESULTS.md section and plots
    python benchmarks/bench_robustness.py --quick    # a small run, printed only
    python benchmarks/bench_robustness.py --videos-only   # rerun the videos: their part of the section
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "datasets" / "synthetic"))

import generate  # noqa: E402
import make_videos  # noqa: E402
import transforms  # noqa: E402

import hashmatch  # noqa: E402

#: First generator index of the originals and of the distractors: past the committed images,
#: and far enough apart that the two sets never share an image.
ORIGINALS_START = 100
DISTRACTORS_START = 20_000
#: Distractors are drawn smaller than the originals (128-256 px a side) to generate 3x faster;
#: every hasher here shrinks its input to 64x64 or less before hashing.
DISTRACTOR_SIDES = (128, 256)
TARGET_FPR = 1e-4
PLOTS = ROOT / "benchmarks" / "plots"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## Robustness (python benchmarks/bench_robustness.py)"


# ---------------------------------------------------------------------------------------------
# Hashers: each turns RGB arrays into packed bit codes, stored side (n, bytes) and query side
# (n, variants, bytes); a query matches at the smallest distance over its variants.


@dataclass(frozen=True)
class Hasher:
    """A hash under test: its bit length, default threshold, and stored- and query-side hashing."""

    name: str
    bits: int
    default_threshold: int
    stored: Callable[[List[np.ndarray]], np.ndarray]
    query: Callable[[List[np.ndarray]], np.ndarray]
    note: str = ""


def _pdq_codes(images: List[np.ndarray], **options) -> np.ndarray:
    hashes = hashmatch.pdq_many(images, threads=1, **options)
    if options.get("dihedral"):
        return np.array([[np.frombuffer(h.bits, np.uint8) for h in variants] for variants in hashes])
    return np.array([np.frombuffer(h.bits, np.uint8) for h in hashes])


def _pdq_stored(images: List[np.ndarray]) -> np.ndarray:
    return _pdq_codes(images)


def _pdq_plain_query(images: List[np.ndarray]) -> np.ndarray:
    return _pdq_codes(images)[:, None]


def _pdq_dihedral_query(images: List[np.ndarray]) -> np.ndarray:
    return _pdq_codes(images, dihedral=True)


def _pdq_trim_query(images: List[np.ndarray]) -> np.ndarray:
    # As HashDB.match(..., trim_borders=True) looks up: the plain hash and the trimmed one.
    return np.stack([_pdq_codes(images), _pdq_codes(images, trim_borders=True)], axis=1)


def _pdq_dihedral_trim_query(images: List[np.ndarray]) -> np.ndarray:
    return np.concatenate([_pdq_codes(images, dihedral=True), _pdq_codes(images, dihedral=True, trim_borders=True)],
                          axis=1)


def _imagehash(fn_name: str) -> Callable[[List[np.ndarray]], np.ndarray]:
    def codes(images: List[np.ndarray]) -> np.ndarray:
        import imagehash

        fn = getattr(imagehash, fn_name)
        return np.array([np.packbits(fn(Image.fromarray(a)).hash.ravel()) for a in images])

    return codes


def _perception(cls_name: str) -> Callable[[List[np.ndarray]], np.ndarray]:
    def codes(images: List[np.ndarray]) -> np.ndarray:
        import perception.hashers as hashers

        hasher = getattr(hashers, cls_name)()
        return np.array([np.packbits(hasher.compute(a, hash_format="vector").astype(bool)) for a in images])

    return codes


def _as_query(stored: Callable[[List[np.ndarray]], np.ndarray]) -> Callable[[List[np.ndarray]], np.ndarray]:
    return lambda images: stored(images)[:, None]


def _peer(name: str, bits: int, stored: Callable, note: str) -> Hasher:
    # No peer ships a threshold; PDQ's 31 of 256 bits (12%) is scaled to the peer's length.
    return Hasher(name, bits, bits * 31 // 256, stored, _as_query(stored), note)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def hashers(names: Optional[Sequence[str]] = None) -> List[Hasher]:
    """The hashers benchmarked: ours, imagehash's, and perception's where it is installed."""
    found = [
        Hasher("PDQ", 256, 31, _pdq_stored, _pdq_plain_query, "hashmatch.pdq (bit-identical to pdqhash)"),
        Hasher("PDQ+dihedral", 256, 31, _pdq_stored, _pdq_dihedral_query, "query's 8 rotations/flips"),
        Hasher("PDQ+trim", 256, 31, _pdq_stored, _pdq_trim_query, "query plain and with borders trimmed"),
        Hasher("PDQ+dihedral+trim", 256, 31, _pdq_stored, _pdq_dihedral_trim_query, "16 query hashes"),
    ]
    if _has("imagehash"):
        found += [_peer("imagehash pHash", 64, _imagehash("phash"), "imagehash.phash"),
                  _peer("imagehash dHash", 64, _imagehash("dhash"), "imagehash.dhash")]
    if _has("perception"):
        found += [_peer("perception PHash", 64, _perception("PHash"), "perception.hashers.PHash"),
                  _peer("perception DHash", 64, _perception("DHash"), "perception.hashers.DHash"),
                  _peer("perception BlockMean", 968, _perception("BlockMean"), "perception.hashers.BlockMean")]
    return [h for h in found if names is None or h.name in names]


# ---------------------------------------------------------------------------------------------
# Work units, run in worker processes: generate from seeds, hash, return only the codes.


def _hash_distractors(args: Tuple[int, int, Tuple[str, ...]]) -> Dict[str, np.ndarray]:
    start, count, names = args
    images = generate.images(count, start=DISTRACTORS_START + start, sides=DISTRACTOR_SIDES)
    return {h.name: h.query(images) for h in hashers(names)}


def _hash_original(args: Tuple[int, Tuple[Tuple[str, object], ...], Tuple[str, ...]]) -> Dict[str, np.ndarray]:
    k, cases, names = args
    # Original k is image k of the family cycle from ORIGINALS_START, as generate.images counts.
    family = generate.FAMILIES[k % len(generate.FAMILIES)][0]
    original = np.asarray(generate.image(family, ORIGINALS_START + k // len(generate.FAMILIES)).convert("RGB"))
    queries = [transforms.apply(name, strength, original, np.random.default_rng([k, c]))
               for c, (name, strength) in enumerate(cases)]
    out = {}
    for h in hashers(names):
        out[h.name + "/stored"] = h.stored([original])[0]
        out[h.name] = h.query(queries)  # (cases, variants, bytes)
    return out


def _parallel(fn: Callable, jobs: List, workers: int) -> list:
    if workers <= 1:
        return [fn(j) for j in jobs]
    # Fork keeps the sys.path and imports set up above; each worker hashes on one thread.
    import multiprocessing

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(fn, jobs))


# ---------------------------------------------------------------------------------------------
# Scoring


def _words(codes: np.ndarray) -> np.ndarray:
    # Zero-padded to whole 64-bit words (968-bit BlockMean codes are 121 bytes): padding xors to 0.
    pad = -codes.shape[-1] % 8
    if pad:
        codes = np.concatenate([codes, np.zeros(codes.shape[:-1] + (pad,), np.uint8)], axis=-1)
    return np.ascontiguousarray(codes).view(np.uint64)


def min_distances(queries: np.ndarray, stored: np.ndarray) -> np.ndarray:
    """(nq, ns) Hamming distances, the smallest over each query's variants: (nq, v, B) vs (ns, B)."""
    q, s = _words(queries), _words(stored)
    return np.bitwise_count(q[:, :, None, :] ^ s[None, None]).sum(-1, dtype=np.int32).min(1)


@dataclass
class ImageScores:
    """Per hasher: distances of each case's queries to their originals, and the FPR curve."""

    cases: List[Tuple[str, object]]
    n_originals: int
    n_distractors: int
    positives: Dict[str, np.ndarray] = field(default_factory=dict)  # (cases, originals)
    fpr: Dict[str, np.ndarray] = field(default_factory=dict)  # FPR at each threshold 0..bits
    thresholds: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # (default, at TARGET_FPR)
    seconds: float = 0.0

    def recall(self, name: str, threshold: int) -> np.ndarray:
        """Recall of each case at a threshold."""
        return (self.positives[name] <= threshold).mean(axis=1)

    def fpr_at(self, name: str, threshold: int) -> float:
        """Share of (distractor, original) pairs within the threshold."""
        return float(self.fpr[name][threshold])


def run_images(n_originals: int, n_distractors: int, cases: Sequence[Tuple[str, object]],
               names: Optional[Sequence[str]] = None, workers: int = 2, log=print) -> ImageScores:
    """Hash originals, their transformed copies and the distractors; score every hasher."""
    t0 = time.perf_counter()
    chosen = tuple(h.name for h in hashers(names))
    cases = list(cases)
    results = _parallel(_hash_original, [(k, tuple(cases), chosen) for k in range(n_originals)], workers)
    log(f"  {n_originals} originals x {len(cases)} cases hashed ({time.perf_counter() - t0:.0f} s)")
    block = 250
    jobs = [(s, min(block, n_distractors - s), chosen) for s in range(0, n_distractors, block)]
    parts = _parallel(_hash_distractors, jobs, workers)
    log(f"  {n_distractors} distractors generated and hashed ({time.perf_counter() - t0:.0f} s)")
    scores = ImageScores(cases, n_originals, n_distractors)
    for h in hashers(chosen):
        stored = np.stack([r[h.name + "/stored"] for r in results])  # (originals, bytes)
        queries = np.stack([r[h.name] for r in results])  # (originals, cases, variants, bytes)
        own = np.array([min_distances(queries[k], stored[k:k + 1])[:, 0] for k in range(n_originals)])
        scores.positives[h.name] = own.T
        distractors = np.concatenate([p[h.name] for p in parts])
        counts = np.zeros(h.bits + 1, np.int64)
        for s in range(0, len(distractors), 500):
            d = min_distances(distractors[s:s + 500], stored)
            counts += np.bincount(d.ravel(), minlength=h.bits + 1)
        scores.fpr[h.name] = np.cumsum(counts) / (n_distractors * n_originals)
        within = np.nonzero(scores.fpr[h.name] <= TARGET_FPR)[0]
        scores.thresholds[h.name] = (h.default_threshold, int(within.max()) if len(within) else -1)
    scores.seconds = time.perf_counter() - t0
    return scores


# ---------------------------------------------------------------------------------------------
# Videos


@dataclass
class VideoScores:
    """Per video hasher and edit: how many edited copies matched their source, and false matches."""

    cases: List[Tuple[str, object]]
    n_clips: int
    matched: Dict[str, np.ndarray] = field(default_factory=dict)  # (cases, clips) bool
    similarity: Dict[str, np.ndarray] = field(default_factory=dict)  # (cases, clips), see _video_similarity
    false_matches: Dict[str, int] = field(default_factory=dict)
    pairs: int = 0
    seconds: float = 0.0


VIDEO_HASHERS = ("vPDQ", "vPDQ+trim", "vPDQ+dihedral", "TMK+PDQF")


def _video_job(args: Tuple[int, Tuple[Tuple[str, object], ...], str]) -> Tuple[dict, List[dict]]:
    k, cases, folder = args
    source = make_videos.nth_clip(k)
    stored_path = make_videos.render(source, Path(folder) / f"{source.name}.mp4")
    stored = hashmatch.video_hashes(stored_path, ("vpdq", "tmk_pdqf"), threads=1)
    # Copies are made from the stored file as a re-uploader has it: decoded, edited, encoded
    # again (a second generation), never from the pristine synthetic frames.
    played = make_videos.decoded(stored_path, source.name)
    queries = []
    for c, (name, strength) in enumerate(cases):
        edit = transforms.VIDEO_TRANSFORMS[name][strength]
        # An unedited copy is the stored file itself; every other edit transcodes it.
        path = stored_path if name == "identity" else make_videos.render(
            played, Path(folder) / f"{source.name}_{c}.mp4", edit, seed=k)
        # One decode: the plain frames are the first of the 8 dihedral variants.
        plain = hashmatch.video_hashes(path, ("vpdq", "tmk_pdqf"), threads=1, dihedral=True)
        queries.append({"vpdq": plain.vpdq, "tmk": plain.tmk,
                        "vpdq_trim": hashmatch.vpdq(path, threads=1, trim_borders=True),
                        "vpdq_dihedral": [frames for _, frames in plain.variants["vpdq"]]})
        if path != stored_path:
            path.unlink()
    return {"vpdq": stored.vpdq, "tmk": stored.tmk}, queries


def _video_similarity(hasher: str, query: dict, stored: dict) -> float:
    """vPDQ: percent of the query's unique good frames matched (the better of plain and trimmed
    for vPDQ+trim, the best of the 8 variants for vPDQ+dihedral); TMK+PDQF: the lower of the
    level-1 and level-2 scores."""
    if hasher == "TMK+PDQF":
        return min(query["tmk"].level1(stored["tmk"]), query["tmk"].level2(stored["tmk"]))
    if hasher == "vPDQ+dihedral":
        return float(max(hashmatch.vpdq_match(v, stored["vpdq"]).query_match_percent for v in query["vpdq_dihedral"]))
    percent = hashmatch.vpdq_match(query["vpdq"], stored["vpdq"]).query_match_percent
    if hasher == "vPDQ+trim":
        percent = max(percent, hashmatch.vpdq_match(query["vpdq_trim"], stored["vpdq"]).query_match_percent)
    return float(percent)


def _video_match(hasher: str, query: dict, stored: dict) -> bool:
    if hasher == "TMK+PDQF":
        return query["tmk"].is_match(stored["tmk"])
    if hasher == "vPDQ+dihedral":  # as HashDB.match(video, dihedral=True): any variant that matches
        return any(hashmatch.vpdq_match(v, stored["vpdq"]).is_match() for v in query["vpdq_dihedral"])
    found = hashmatch.vpdq_match(query["vpdq"], stored["vpdq"]).is_match()
    if hasher == "vPDQ+trim":
        found = found or hashmatch.vpdq_match(query["vpdq_trim"], stored["vpdq"]).is_match()
    return found


def run_videos(n_clips: int, cases: Sequence[Tuple[str, object]], workers: int = 2, log=print) -> VideoScores:
    """Render clips and their edits, hash them, and score each video hasher."""
    t0 = time.perf_counter()
    cases = list(cases)
    with tempfile.TemporaryDirectory() as folder:
        results = _parallel(_video_job, [(k, tuple(cases), folder) for k in range(n_clips)], workers)
    scores = VideoScores(cases, n_clips)
    stored = [r[0] for r in results]
    for hasher in VIDEO_HASHERS:
        scores.matched[hasher] = np.array([[_video_match(hasher, results[k][1][c], stored[k])
                                            for k in range(n_clips)] for c in range(len(cases))])
        scores.similarity[hasher] = np.array([[_video_similarity(hasher, results[k][1][c], stored[k])
                                               for k in range(n_clips)] for c in range(len(cases))])
        scores.false_matches[hasher] = sum(_video_match(hasher, q, stored[j])
                                           for k in range(n_clips) for q in results[k][1]
                                           for j in range(n_clips) if j != k)
    scores.pairs = n_clips * (n_clips - 1) * len(cases)
    scores.seconds = time.perf_counter() - t0
    log(f"  {n_clips} clips x {len(cases)} edits rendered, hashed and matched ({scores.seconds:.0f} s)")
    return scores


def video_cases(names: Optional[Sequence[str]] = None) -> List[Tuple[str, object]]:
    """Every (name, strength) of the named video edits (all by default)."""
    chosen = transforms.VIDEO_TRANSFORMS if names is None else {n: transforms.VIDEO_TRANSFORMS[n] for n in names}
    return [(name, s) for name, edits in chosen.items() for s in edits]


# ---------------------------------------------------------------------------------------------
# Output: markdown and plots


def _label(case: Tuple[str, object]) -> str:
    name, strength = case
    return name if strength is None else f"{name} {strength}"


def image_table(scores: ImageScores) -> str:
    """Markdown: recall per case and hasher, at the default threshold / at FPR 1e-4."""
    names = list(scores.positives)
    head = "| transform | " + " | ".join(names) + " |\n| --- |" + " ---: |" * len(names) + "\n"
    rows = []
    for c, case in enumerate(scores.cases):
        cells = []
        for n in names:
            d, t = scores.thresholds[n]
            cells.append(f"{scores.recall(n, d)[c]:.2f} / {scores.recall(n, t)[c]:.2f}")
        rows.append(f"| {_label(case)} | " + " | ".join(cells) + " |")
    mean = [f"**{scores.recall(n, scores.thresholds[n][0]).mean():.2f} / "
            f"{scores.recall(n, scores.thresholds[n][1]).mean():.2f}**" for n in names]
    rows.append("| **mean over cases** | " + " | ".join(mean) + " |")
    thresholds = [f"{scores.thresholds[n][0]} / {scores.thresholds[n][1]}" for n in names]
    rows.append("| threshold: default / at FPR <= 1e-4 (bits) | " + " | ".join(thresholds) + " |")
    fprs = [f"{scores.fpr_at(n, scores.thresholds[n][0]):.1e}" for n in names]
    rows.append("| FPR at the default threshold | " + " | ".join(fprs) + " |")
    return head + "\n".join(rows) + "\n"


def video_table(scores: VideoScores) -> str:
    """Markdown: share of edited copies matched, per edit and video hasher."""
    names = list(scores.matched)
    head = "| edit | " + " | ".join(names) + " |\n| --- |" + " ---: |" * len(names) + "\n"
    rows = [f"| {_label(case)} | " + " | ".join(f"{scores.matched[n][c].mean():.2f}" for n in names) + " |"
            for c, case in enumerate(scores.cases)]
    rows.append("| **mean over edits** | " + " | ".join(f"**{scores.matched[n].mean():.2f}**" for n in names) + " |")
    rows.append(f"| false matches of {scores.pairs} cross pairs | "
                + " | ".join(str(scores.false_matches[n]) for n in names) + " |")
    return head + "\n".join(rows) + "\n"


def plot_recall(scores: ImageScores, path: Path, names: Sequence[str]) -> Path:
    """Bar charts of recall per transform (mean over its strengths) for the named hashers, at the
    default threshold (top) and at FPR <= 1e-4 (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seen = list(dict.fromkeys(name for name, _ in scores.cases))
    fig, axes = plt.subplots(2, 1, figsize=(10, 6.4), dpi=80, sharex=True)
    width = 0.8 / len(names)
    for ax, which, label in ((axes[0], 0, "default threshold"), (axes[1], 1, "threshold at FPR <= 1e-4")):
        for i, n in enumerate(names):
            recall = scores.recall(n, scores.thresholds[n][which])
            means = [np.mean([r for (t, _), r in zip(scores.cases, recall) if t == name]) for name in seen]
            ax.bar(np.arange(len(seen)) + (i - (len(names) - 1) / 2) * width, means, width, label=n)
        ax.set_ylabel(f"recall\n{label}", fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(np.arange(len(seen)), seen, rotation=40, ha="right")
    axes[0].legend(fontsize=8, ncol=len(names), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.suptitle(f"Recall per transform, mean over strengths ({scores.n_originals} images, "
                 f"{scores.n_distractors:,} distractors)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_roc(scores: ImageScores, path: Path, subsets: Dict[str, Sequence[str]]) -> Path:
    """ROC curves (recall against FPR as the threshold grows), one panel per subset of transforms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(subsets), figsize=(5 * len(subsets), 4.2), dpi=80, squeeze=False)
    for ax, (title, chosen) in zip(axes[0], subsets.items()):
        rows = [c for c, (name, _) in enumerate(scores.cases) if name in chosen]
        for n in scores.positives:
            bits = len(scores.fpr[n]) - 1
            recall = [(scores.positives[n][rows] <= t).mean() for t in range(bits + 1)]
            # An FPR of 0 (no distractor pair that close) is drawn at the left edge.
            ax.plot(np.maximum(scores.fpr[n], 1e-7), recall, label=n, lw=1.4)
        ax.axvline(TARGET_FPR, color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlim(1e-7, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("false-positive rate (pairs with distractors)")
        ax.set_ylabel("recall")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def trim_cost(repeats: int = 50) -> Dict[str, float]:
    """Milliseconds for content_box and for PDQ on a 1080x1920 9:16 letterbox and a borderless 1920x1080 frame."""
    photo = generate.image("photo", ORIGINALS_START).convert("RGB")
    inner = np.asarray(photo.resize((1080, 1080)))
    boxed = np.zeros((1920, 1080, 3), np.uint8)
    boxed[420:1500] = inner
    plain = np.asarray(photo.resize((1920, 1080)))
    out = {}
    for name, pixels in (("letterbox", boxed), ("borderless", plain)):
        for what, fn in (("content_box", hashmatch.content_box), ("pdq", hashmatch.pdq)):
            start = time.perf_counter()
            for _ in range(repeats):
                fn(pixels)
            out[f"{what} {name}"] = (time.perf_counter() - start) / repeats * 1000
    return out


def _versions() -> str:
    import importlib.metadata as md

    from hashmatch import _core

    clones = ", ".join(f"{k} {_core.cpu_clone(k)}" for k in _core.cpu_clones())
    parts = [f"Python {platform.python_version()}", f"hashmatch {hashmatch.__version__} (SIMD clones: {clones})"]
    for pkg in ("numpy", "pillow", "imagehash", "perception", "av", "scikit-image"):
        try:
            parts.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            pass
    return ", ".join(parts)


VIDEO_PART_START = "Videos: "


def _video_part(videos: VideoScores, note: str = "") -> str:
    return f"""{VIDEO_PART_START}{videos.n_clips} clips (pans with zoom over generated images, moving shapes, three-scene
cuts; 320x240, 15 fps, 8 s, x264 CRF 23) are stored; each edit makes one copy of each by decoding
the stored file, editing its frames and encoding them again (a second generation). A copy
matches with the reference rules: vPDQ >= 80% of the query's unique frames within 31 bits,
TMK+PDQF level-1 and level-2 scores >= 0.7. `vPDQ+trim` also tries the query's frames with
borders trimmed (`hashmatch.vpdq(..., trim_borders=True)`); `vPDQ+dihedral` its frames in
their 8 rotations and flips (`HashDB.match(video, dihedral=True)`). False matches are counted over every
copy against every other stored clip ({videos.pairs} pairs): too few to fix a threshold at 1e-4.{note}

{video_table(videos)}"""


def write_video_results(videos: VideoScores) -> None:
    """Replace only the video part of RESULTS.md's robustness section (from a --videos-only run)."""
    old = RESULTS.read_text()
    start = old.index(SECTION)
    begin = old.index("\n" + VIDEO_PART_START, start) + 1
    end = old.index("\n![", begin) + 1
    note = (f"\nThis part is from `python benchmarks/bench_robustness.py --videos-only` "
            f"({time.strftime('%Y-%m-%d')}, {videos.seconds / 60:.1f} minutes; {_versions()}).")
    RESULTS.write_text(old[:begin] + _video_part(videos, note) + "\n" + old[end:])


def write_results(images: ImageScores, videos: VideoScores, total_seconds: float, plots: Sequence[Path],
                  cost: Dict[str, float]) -> None:
    """Replace (or append) the robustness section of RESULTS.md."""
    links = "\n".join(f"![{p.stem}](plots/{p.name})" for p in plots)
    text = f"""{SECTION}

Machine: {os.cpu_count()} vCPUs, shared; {_versions()}. Date: {time.strftime('%Y-%m-%d')}.
The whole run (generating every image and clip, hashing, scoring, plots) took
{total_seconds / 60:.1f} minutes with 2 worker processes.

Images: {images.n_originals} originals (the generator's five families in turn: dead leaves,
1/f noise, shapes on gradients, text, scikit-image photographs; indices {ORIGINALS_START} on) are
stored; each transform and strength makes one query per original; {images.n_distractors:,}
distractors (indices {DISTRACTORS_START} on, never stored, 128-256 px a side) give the false-positive rate over
{images.n_distractors * images.n_originals:,} (distractor, original) pairs. Each cell is recall at
the hasher's default threshold / at the threshold its distractors put at FPR <= 1e-4. PDQ's
default is 31 of 256 bits; the peers ship none, so theirs is the same 12% of their bits (7 of
64). `+dihedral` and `+trim` are query-side options (the stored hash is always plain PDQ):
`hashmatch.pdq(..., dihedral=True)` and `HashDB.match(..., trim_borders=True)`, which hash the
query 8 or 2 ways (16 for both) and keep the closest, distractors included. The PDQ quality
gate (>= 50) is not applied here: every query is scored.

{image_table(images)}
Border detection (`hashmatch.content_box`, in the core) costs
{cost['content_box letterbox']:.2f} ms on a 1080x1920 frame with 9:16 letterbox bars (it walks
every bar pixel) and {cost['content_box borderless']:.3f} ms on a borderless 1920x1080 frame,
against {cost['pdq letterbox']:.1f} and {cost['pdq borderless']:.1f} ms for its PDQ (one thread).

{_video_part(videos)}
{links}
"""
    old = RESULTS.read_text()
    if SECTION in old:
        start = old.index(SECTION)
        nxt = re.search(r"^## ", old[start + len(SECTION):], re.M)
        end = start + len(SECTION) + nxt.start() if nxt else len(old)
        new = old[:start] + text + ("\n" + old[end:] if nxt else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(new)


QUICK_IMAGE_CASES = [("identity", None), ("jpeg", 50), ("border", 10), ("letterbox", "9:16"), ("flip", "h")]
QUICK_VIDEO_CASES = [("identity", None), ("reencode", 33), ("letterbox", "9:16"), ("rotate90", 90)]
README_PLOT_HASHERS = ("PDQ", "PDQ+dihedral", "PDQ+trim", "imagehash pHash", "imagehash dHash")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; without --quick, write RESULTS.md's section and the plots."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 images, 5 transforms, 2,000 distractors, 2 clips")
    parser.add_argument("--originals", type=int, default=250)
    parser.add_argument("--distractors", type=int, default=10_000)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--videos-only", action="store_true", help="rerun only the videos and their part of RESULTS.md")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    if args.videos_only:
        videos = run_videos(args.clips, video_cases(), workers=args.workers)
        print(video_table(videos))
        write_video_results(videos)
        print(f"wrote the video part of {RESULTS.relative_to(ROOT)}")
        return 0
    if args.quick:
        images = run_images(40, 2000, QUICK_IMAGE_CASES, workers=args.workers)
        print(image_table(images))
        videos = run_videos(2, QUICK_VIDEO_CASES, workers=args.workers)
        print(video_table(videos))
        return 0
    print("images:")
    images = run_images(args.originals, args.distractors, transforms.cases(), workers=args.workers)
    print(image_table(images))
    print("videos:")
    videos = run_videos(args.clips, video_cases(), workers=args.workers)
    print(video_table(videos))
    PLOTS.mkdir(parents=True, exist_ok=True)
    ours = [n for n in README_PLOT_HASHERS if n in images.positives]
    plots = [plot_recall(images, PLOTS / "recall_per_transform.png", ours),
             plot_roc(images, PLOTS / "roc.png", {
                 "all transforms": [n for n in transforms.IMAGE_TRANSFORMS if n != "identity"],
                 "border and letterbox": ["border", "letterbox"]})]
    total = time.perf_counter() - t0
    write_results(images, videos, total, plots, trim_cost())
    print(f"wrote {RESULTS.relative_to(ROOT)} and {len(plots)} plots in {total / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
