"""Saved Hamming indexes as mapped segments: exact after every kind of change, shared, and checked."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
import random
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from hashmatch import HashDB, IndexCorruptError
from hashmatch.index import HammingIndex

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import codes as synthetic  # noqa: E402  (benchmarks/codes.py: clustered PDQ-like codes)

RADII = (0, 4, 16, 31, 47, 70)
KNOBS = dict(force_mih=True, mih_min_rows=64, tail_min_rows=64)


def make_codes(kind: str, n: int, seed: int) -> np.ndarray:
    return synthetic.uniform(n, seed) if kind == "random" else synthetic.mixed(n, seed, frames=25)


class Truth:
    """The codes an index should hold, searched by brute force."""

    def __init__(self) -> None:
        self.rows = {}

    def add(self, codes, ids) -> None:
        for c, i in zip(codes, ids):
            self.rows[int(i)] = c

    def remove(self, ids) -> None:
        for i in ids:
            self.rows.pop(int(i), None)

    def range_search(self, queries, radius):
        ids = np.array(sorted(self.rows), np.int64)
        if not len(ids):
            return [[] for _ in queries]
        codes = np.stack([self.rows[i] for i in ids.tolist()])
        dist = np.unpackbits(queries[:, None, :] ^ codes[None], axis=2).sum(axis=2)
        return [sorted((int(dist[q, j]), int(ids[j])) for j in np.nonzero(dist[q] <= radius)[0])
                for q in range(len(queries))]


def as_lists(result):
    lims, distances, ids = result
    return [list(zip(distances[lims[q]:lims[q + 1]].tolist(), ids[lims[q]:lims[q + 1]].tolist()))
            for q in range(len(lims) - 1)]


def assert_exact(index: HammingIndex, truth: Truth, queries: np.ndarray) -> None:
    assert len(index) == len(truth.rows)
    for radius in RADII:
        assert as_lists(index.range_search(queries, radius, threads=2)) == truth.range_search(queries, radius), radius
    # k nearest: the first k of a range search at 256, ties by id.
    everything = truth.range_search(queries, 256)
    distances, ids = index.search(queries, 5)
    for q in range(len(queries)):
        want = everything[q][:5] + [(-1, -1)] * (5 - len(everything[q][:5]))
        assert list(zip(distances[q].tolist(), ids[q].tolist())) == want


def query_set(codes: np.ndarray, seed: int) -> np.ndarray:
    return synthetic.queries(codes, 40, seed)


@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_exact_after_adds_removes_merges_save_and_open(tmp_path, kind):
    rng = np.random.default_rng(1)
    base = make_codes(kind, 3000, seed=2)
    truth = Truth()
    built = HammingIndex()
    built.add(base, np.arange(3000))
    truth.add(base, np.arange(3000))
    path = tmp_path / "ix"
    built.save(path, tag=1)
    index = HammingIndex.open(path, merges=True, **KNOBS)
    assert index.segments == 1 and index.backend == "mih"
    queries = query_set(base, 3)
    assert_exact(index, truth, queries)

    next_id = 3000
    for step in range(6):
        # Adds (some near-duplicates of held codes), removes of segment rows and of delta rows.
        adds = np.concatenate([make_codes(kind, 150, seed=10 + step),
                               synthetic.flip(base[rng.integers(0, 3000, 50)], rng.uniform(0, 10, 50), rng)])
        ids = np.arange(next_id, next_id + len(adds))
        next_id += len(adds)
        index.apply_delta(adds=(adds, ids), tag=None)
        truth.add(adds, ids)
        held = np.array(sorted(truth.rows))
        gone = rng.choice(held, 120, replace=False)
        assert index.remove(gone) == 120
        truth.remove(gone)
        assert index.remove(gone[:10]) == 0  # never twice
        assert_exact(index, truth, queries)
        with pytest.raises(Exception, match="already in the index"):
            index.add(truth.rows[int(held[~np.isin(held, gone)][0])], [int(held[~np.isin(held, gone)][0])])
        if step % 2 == 1:
            index.apply_delta(tag=100 + step)
            index.merge()
            assert HammingIndex.saved_tag(path) == 100 + step
            assert_exact(index, truth, queries)
            reopened = HammingIndex.open(path, **KNOBS)
            reopened.verify()
            assert_exact(reopened, truth, queries)
    # Past HAMMING_MAX_SEGMENTS (or many dead rows) a merge rewrites everything as one segment.
    assert 1 <= index.segments <= 4
    other = tmp_path / "copy"
    index.save(other, tag=9)
    again = HammingIndex.load(other)
    assert_exact(again, truth, queries)
    assert sorted(again.ids().tolist()) == sorted(truth.rows)
    assert again.max_id() == max(truth.rows)


def test_merges_start_by_themselves_and_only_at_tagged_states(tmp_path, monkeypatch):
    from hashmatch.index import hamming

    monkeypatch.setattr(hamming, "HAMMING_MERGE_MIN_ROWS", 500)
    base = synthetic.uniform(2000, 5)
    built = HammingIndex()
    built.add(base, np.arange(2000))
    path = tmp_path / "ix"
    built.save(path, tag=1)
    index = HammingIndex.open(path, merges=True)
    more = synthetic.uniform(600, 6)
    index.apply_delta(adds=(more, np.arange(2000, 2600)))  # untagged: no merge
    time.sleep(0.2)
    assert index.segments == 1 and HammingIndex.saved_tag(path) == 1
    index.apply_delta(tag=2)
    for _ in range(200):
        if index.segments == 2:
            break
        time.sleep(0.05)
    assert index.segments == 2 and HammingIndex.saved_tag(path) == 2
    truth = Truth()
    truth.add(base, np.arange(2000))
    truth.add(more, np.arange(2000, 2600))
    queries = query_set(base, 7)
    assert as_lists(index.range_search(queries, 31)) == truth.range_search(queries, 31)


_CHILD = r"""
import sys, numpy as np
from hashmatch.index import HammingIndex
sys.path.insert(0, sys.argv[3])
import codes as synthetic
path, batches = sys.argv[1], int(sys.argv[2])
index = HammingIndex.open(path, merges=True)
for k in range(1, batches + 1):
    more = synthetic.mixed(4000, 100 + k, frames=25)
    index.apply_delta(adds=(more, np.arange(k * 100000, k * 100000 + 4000)), tag=k)
    print("merging", k, flush=True)
    index.merge()
    print("merged", k, flush=True)
"""


def test_a_merge_killed_halfway_leaves_the_old_file_valid(tmp_path):
    base = synthetic.mixed(60000, 8, frames=25)
    built = HammingIndex()
    built.add(base, np.arange(60000))
    path = tmp_path / "ix"
    built.save(path, tag=0)
    queries = query_set(base, 9)
    bench = str(Path(__file__).resolve().parents[1] / "benchmarks")
    for delay in (0.0, 0.02, 0.06, 0.15):
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), "50", bench], stdout=subprocess.PIPE,
                                 text=True)
        try:
            line = child.stdout.readline()
            assert line.startswith("merging"), line
            time.sleep(delay)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        tag = HammingIndex.saved_tag(path)
        index = HammingIndex.load(path)  # verified: the old file or the new one, whole
        truth = Truth()
        truth.add(base, np.arange(60000))
        for k in range(1, tag + 1):
            truth.add(synthetic.mixed(4000, 100 + k, frames=25), np.arange(k * 100000, k * 100000 + 4000))
        assert len(index) == len(truth.rows)
        assert as_lists(index.range_search(queries, 31)) == truth.range_search(queries, 31)
        # Start the next round from a fresh base file.
        built.save(path, tag=0)


_READER = r"""
import sys, numpy as np, hashlib
from hashmatch.index import HammingIndex
index = HammingIndex.open(sys.argv[1])
index.verify()
queries = np.load(sys.argv[2])
lims, d, i = index.range_search(queries, 31)
print(hashlib.sha256(lims.tobytes() + d.tobytes() + i.tobytes()).hexdigest(), len(index), flush=True)
"""


def test_two_processes_opened_on_one_file_return_identical_results(tmp_path):
    base = synthetic.mixed(20000, 11, frames=25)
    built = HammingIndex()
    built.add(base, np.arange(20000) * 7 + 5)
    path = tmp_path / "ix"
    built.save(path)
    queries = query_set(base, 12)
    np.save(tmp_path / "q.npy", queries)
    runs = [subprocess.Popen([sys.executable, "-c", _READER, str(path), str(tmp_path / "q.npy")],
                             stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [r.communicate(timeout=120)[0].split() for r in runs]
    lims, d, i = built.range_search(queries, 31)
    mine = hashlib.sha256(lims.tobytes() + d.tobytes() + i.tobytes()).hexdigest()
    assert outs[0] == outs[1] == [mine, "20000"]


def _saved(tmp_path, n=5000):
    base = synthetic.uniform(n, 13)
    built = HammingIndex()
    built.add(base, np.arange(n))
    path = tmp_path / "ix"
    built.save(path, tag=3)
    return path, base


def _segment_offset(path) -> int:
    head = Path(path).read_bytes()[:4096]
    return struct.unpack_from("<Q", head, 48)[0]  # the first segment table entry's offset


@pytest.mark.parametrize("where", ["codes", "table", "ids"])
def test_a_bitflipped_segment_is_detected(tmp_path, where):
    path, base = _saved(tmp_path)
    at = _segment_offset(path) + {"codes": 1024 + 32 * 100 + 5, "table": 1024 + 32 * 5000 + 4 * 5000 + 64 * 300,
                                  "ids": 1024 + 32 * 5000 + 8}[where]
    data = bytearray(path.read_bytes())
    data[at] ^= 0x08
    path.write_bytes(bytes(data))
    index = HammingIndex.open(path)  # opens at once: the check runs in the background
    with pytest.raises(IndexCorruptError):
        index.verify()
    assert index.damaged()
    with pytest.raises(IndexCorruptError):
        index.range_search(base[:3], 31)
    with pytest.raises(IndexCorruptError):
        HammingIndex.load(path)
    assert HammingIndex.load_if_tagged(path, 3) is None


@pytest.mark.parametrize("cut", [1, 4096, 20000])
def test_a_truncated_segment_is_detected_at_open(tmp_path, cut):
    path, _ = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - cut])
    with pytest.raises(IndexCorruptError):
        HammingIndex.open(path)
    assert HammingIndex.open_if_tagged(path, 3) is None


def test_a_damaged_segment_header_is_detected_at_open(tmp_path):
    path, _ = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[_segment_offset(path) + 16] ^= 0x40  # the segment's row count
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError):
        HammingIndex.open(path)


def test_format_1_files_still_load(tmp_path):
    base = synthetic.uniform(300, 14)
    ids = np.arange(300, dtype="<i8") * 3
    header = struct.pack("<8sIIqQ", b"HMHAMIDX", 1, 1, 42, 300)
    payload = header + base.tobytes() + ids.tobytes()
    path = tmp_path / "v1"
    path.write_bytes(payload + hashlib.blake2b(payload, digest_size=32).digest())
    assert HammingIndex.saved_tag(path) == 42
    index = HammingIndex.open_if_tagged(path, 42)
    assert index is not None and len(index) == 300
    truth = Truth()
    truth.add(base, ids)
    assert as_lists(index.range_search(base[:20], 40)) == truth.range_search(base[:20], 40)


def test_the_store_opens_its_saved_index_by_mmap_and_rebuilds_a_damaged_one(tmp_path):
    path = tmp_path / "s.db"
    rng = random.Random(15)
    hexes = [rng.getrandbits(256).to_bytes(32, "big").hex() for _ in range(400)]
    with HashDB(path) as db:
        ids = db.add_many(hexes)
    index_file = Path(f"{path}.pdq-index")
    with HashDB(path) as db:  # opened by mmap, caught up through the delta
        assert [m.entry_id for m in db.match(hexes[7], max_distance=0)] == [ids[7]]
        assert db.indexes.hamming["pdq"].segments == 1
        more = db.add_many([rng.getrandbits(256).to_bytes(32, "big").hex() for _ in range(5)])
        db.remove(ids[3])
        assert [m.entry_id for m in db.match(hexes[3], max_distance=0)] == []
        assert len(more) == 5
    data = bytearray(index_file.read_bytes())
    data[_segment_offset(index_file) + 1024 + 32 * 50 + 1] ^= 0x01  # one bit of one code
    index_file.write_bytes(bytes(data))
    with HashDB(path) as db:
        try:  # wait for the background check of the file opened (it may have failed already)
            db.indexes.hamming["pdq"].verify()
        except IndexCorruptError:
            pass
        live = [k for k in range(400) if k != 3]
        for k in live:
            assert [m.entry_id for m in db.match(hexes[k], max_distance=0)] == [ids[k]]
        assert not db.indexes.hamming["pdq"].damaged() and db.indexes.hamming["pdq"].segments == 0  # rebuilt
    assert HammingIndex.load(index_file) is not None  # closing saved the rebuilt index, intact
    os.remove(index_file)


@pytest.mark.parametrize("copies", [1000, 70000])
def test_buckets_too_full_for_narrow_directories(tmp_path, copies):
    # Copies of one code pile into one bucket of every table: 1,000 are past what a block of
    # uint8 offsets holds (uint16 then), 70,000 past uint16 offsets (plain uint32 starts then).
    rng = np.random.default_rng(16)
    one = synthetic.uniform(1, 17)
    base = np.concatenate([np.repeat(one, copies, axis=0), synthetic.uniform(5000, 18),
                           synthetic.flip(np.repeat(one, 300, axis=0), rng.uniform(1, 30, 300), rng)])
    ids = rng.permutation(len(base)).astype(np.int64) * 11
    path = tmp_path / "ix"
    HammingIndex.build(path, base, ids)
    index = HammingIndex.open(path, **KNOBS)
    index.verify()
    truth = Truth()
    truth.add(base, ids)
    queries = np.concatenate([one, synthetic.queries(base, 10, 19)])
    for radius in (0, 12, 31):
        assert as_lists(index.range_search(queries, radius)) == truth.range_search(queries, radius)
