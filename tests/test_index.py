"""HammingIndex: exact against a numpy brute force on every backend, radius, and mutation path."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashmatch import HammingIndex, HashFormatError, InputTypeError, InvalidInputError, _core

POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.int32)
RADII = list(range(0, 65)) + [128, 256]


def brute_distances(queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
    if len(codes) == 0:
        return np.zeros((len(queries), 0), np.int32)
    return POPCOUNT[queries[:, None, :] ^ codes[None, :, :]].sum(axis=2)


def brute_range(dist, ids, radius):
    """Expected (lims, distances, ids) from a distance matrix: inclusive, sorted by (distance, id)."""
    lims, ds, out = [0], [], []
    for row in dist:
        sel = np.nonzero(row <= radius)[0]
        order = np.lexsort((ids[sel], row[sel]))
        ds.extend(row[sel][order].tolist())
        out.extend(ids[sel][order].tolist())
        lims.append(len(out))
    return lims, ds, out


def assert_range_exact(index, queries, codes, ids, radii=RADII):
    dist = brute_distances(queries, codes)
    for radius in radii:
        lims, d, i = index.range_search(queries, radius)
        assert lims.dtype == np.int64 and d.dtype == np.int32 and i.dtype == np.int64
        exp_lims, exp_d, exp_i = brute_range(dist, ids, radius)
        assert lims.tolist() == exp_lims, f"radius {radius}"
        assert d.tolist() == exp_d, f"radius {radius}"
        assert i.tolist() == exp_i, f"radius {radius}"


def assert_knn_exact(index, queries, codes, ids, k):
    d, i = index.search(queries, k)
    assert d.shape == (len(queries), k) and i.shape == (len(queries), k)
    dist = brute_distances(queries, codes)
    for q, row in enumerate(dist):
        order = np.lexsort((ids, row))[:k]
        exp_d = row[order].tolist() + [-1] * (k - len(order))
        exp_i = ids[order].tolist() + [-1] * (k - len(order))
        assert d[q].tolist() == exp_d and i[q].tolist() == exp_i


def flip_bits(code: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    bits = np.unpackbits(code)
    bits[rng.choice(256, count, replace=False)] ^= 1
    return np.packbits(bits)


def random_codes(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 32), dtype=np.uint8)


def clustered_codes(centres, per_centre, seed):
    """Near-duplicates planted at distances 0..40 around random centres (and the centres)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (centres, 32), dtype=np.uint8)
    rows = [base]
    for c in base:
        rows.append(np.stack([flip_bits(c, int(rng.integers(0, 41)), rng) for _ in range(per_centre)]))
    return np.concatenate(rows), base


def queries_near(codes, count, seed):
    rng = np.random.default_rng(seed)
    picks = codes[rng.choice(len(codes), count, replace=False)]
    near = np.stack([flip_bits(c, int(rng.integers(0, 33)), rng) for c in picks])
    return np.concatenate([near, random_codes(3, seed + 1)])


def forced_mih(**kw):
    return HammingIndex(mih_min_rows=0, force_mih=True, tail_min_rows=kw.pop("tail_min_rows", 64), **kw)


def flat_only():
    return HammingIndex(mih_min_rows=10 ** 9)


BACKENDS = {
    "flat": flat_only,
    "mih": forced_mih,
    # The scalar POPCNT scan, where the CPU would otherwise get the AVX-512 one.
    "flat-portable": lambda: HammingIndex(mih_min_rows=10 ** 9, portable_kernels=True),
}


@pytest.fixture(scope="module")
def clustered():
    codes, centres = clustered_codes(40, 30, seed=1)
    ids = np.random.default_rng(2).permutation(len(codes)).astype(np.int64) * 7 - 3000
    queries = np.concatenate([centres[:12], queries_near(codes, 12, seed=3)])
    return codes, ids, queries


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_range_search_random_codes_all_radii(backend):
    codes = random_codes(1500, seed=10)
    ids = np.arange(len(codes), dtype=np.int64) * 2 + 5
    index = BACKENDS[backend]()
    index.add(codes, ids)
    assert index.backend == backend.split("-")[0] and len(index) == len(codes)
    assert_range_exact(index, queries_near(codes, 10, seed=11), codes, ids)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_range_search_clustered_codes_all_radii(backend, clustered):
    codes, ids, queries = clustered
    index = BACKENDS[backend]()
    index.add(codes, ids)
    assert index.backend == backend.split("-")[0]
    assert_range_exact(index, queries, codes, ids)


def test_forced_mih_really_probes_every_tested_radius(clustered):
    codes, ids, _ = clustered
    index = forced_mih()
    index.add(codes, ids)
    assert index._core.substrings >= 8
    assert all(index._core.probes_at(r) for r in RADII)


def test_default_switch_point_between_flat_and_mih():
    threshold = _core.HAMMING_MIH_MIN_ROWS
    codes = random_codes(threshold + 50, seed=20)
    ids = np.arange(len(codes), dtype=np.int64)
    queries = queries_near(codes, 6, seed=21)
    index = HammingIndex()
    index.add(codes[: threshold - 1], ids[: threshold - 1])
    assert index.backend == "flat"
    assert_range_exact(index, queries, codes[: threshold - 1], ids[: threshold - 1], radii=[0, 31])
    index.add(codes[threshold - 1:], ids[threshold - 1:])
    assert index.backend == "mih"
    # The cost model probes at the PDQ threshold and scans at large radii; both are exact.
    assert index._core.probes_at(31) and not index._core.probes_at(128)
    assert_range_exact(index, queries, codes, ids, radii=[0, 15, 31, 40, 128, 256])
    # Falling far below the threshold drops the tables again.
    assert index.remove(ids[: threshold - 100]) == threshold - 100
    assert index.backend == "flat"
    assert_range_exact(index, queries, codes[threshold - 100:], ids[threshold - 100:], radii=[31])


def test_heavy_duplicates_with_default_settings():
    # Thousands of copies of a few codes fill single buckets: the per-query guard scans instead
    # of probing for those queries, and results stay exact either way.
    rng = np.random.default_rng(70)
    spread = random_codes(3000, seed=71)
    centres = random_codes(3, seed=72)
    copies = np.concatenate([np.repeat(centres, 1500, axis=0),
                             np.stack([flip_bits(centres[i % 3], i % 6, rng) for i in range(600)])])
    codes = np.concatenate([spread, copies])
    ids = np.arange(len(codes), dtype=np.int64)[::-1].copy()
    index = HammingIndex()
    index.add(codes, ids)
    assert index.backend == "mih"
    queries = np.concatenate([centres, flip_bits(centres[0], 3, rng)[None], spread[:3]])
    assert_range_exact(index, queries, codes, ids, radii=[0, 3, 31])
    assert_knn_exact(index, queries, codes, ids, k=7)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_incremental_adds_removes_and_readds(backend, clustered):
    codes, ids, queries = clustered
    index = BACKENDS[backend]()
    half = len(codes) // 2
    index.add(codes[:half], ids[:half])
    # Small batches grow the unindexed tail past its limit several times (merges).
    for start in range(half, len(codes), 37):
        index.add(codes[start:start + 37], ids[start:start + 37])
    assert len(index) == len(codes)
    assert_range_exact(index, queries, codes, ids, radii=[0, 5, 31, 40, 64])

    rng = np.random.default_rng(30)
    gone = rng.choice(len(codes), len(codes) // 3, replace=False)
    unknown = np.array([10 ** 12, -(10 ** 12)], np.int64)
    assert index.remove(np.concatenate([ids[gone], unknown])) == len(gone)
    assert index.remove(ids[gone[:5]]) == 0  # already gone
    keep = np.setdiff1d(np.arange(len(codes)), gone)
    assert len(index) == len(keep)
    assert_range_exact(index, queries, codes[keep], ids[keep], radii=[0, 5, 31, 40, 64, 256])

    # Removed ids may come back with other codes; the old codes must not.
    back = gone[:50]
    new_codes = random_codes(len(back), seed=31)
    index.add(new_codes, ids[back])
    all_codes = np.concatenate([codes[keep], new_codes])
    all_ids = np.concatenate([ids[keep], ids[back]])
    assert_range_exact(index, np.concatenate([queries, new_codes[:3]]), all_codes, all_ids, radii=[0, 31, 64])
    assert index.ids().tolist() == sorted(all_ids.tolist())
    assert index.max_id() == int(all_ids.max())
    assert_knn_exact(index, queries[:6], all_codes, all_ids, k=9)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_knn_matches_brute_force_with_padding(backend, clustered):
    codes, ids, queries = clustered
    index = BACKENDS[backend]()
    index.add(codes, ids)
    for k in (1, 5, 40):
        assert_knn_exact(index, queries, codes, ids, k)
    small = BACKENDS[backend]()
    small.add(codes[:3], ids[:3])
    d, i = small.search(queries[:2], 5)
    assert (d[:, 3:] == -1).all() and (i[:, 3:] == -1).all()
    assert_knn_exact(small, queries[:2], codes[:3], ids[:3], k=5)


def test_save_load_round_trip_and_tags(tmp_path, clustered):
    codes, ids, queries = clustered
    index = forced_mih()
    index.add(codes, ids)
    index.remove(ids[:100])
    path = tmp_path / "index.hmi"
    index.save(path, tag=42)
    assert [p.name for p in tmp_path.iterdir()] == ["index.hmi"]  # no temp file left behind
    loaded = HammingIndex.load(path)
    assert len(loaded) == len(codes) - 100
    assert loaded.ids().tolist() == sorted(ids[100:].tolist())
    assert_range_exact(loaded, queries, codes[100:], ids[100:], radii=[0, 31, 64, 256])
    again = HammingIndex.load_if_tagged(path, 42)
    assert again is not None and len(again) == len(loaded)
    assert HammingIndex.load_if_tagged(path, 41) is None  # stale
    assert HammingIndex.load_if_tagged(tmp_path / "missing.hmi", 42) is None
    index.save(path)  # untagged overwrite
    assert HammingIndex.load_if_tagged(path, 42) is None
    assert len(HammingIndex.load(path)) == len(loaded)


def test_empty_index_save_load_and_search(tmp_path):
    index = HammingIndex()
    assert len(index) == 0 and index.max_id() == -1 and index.ids().tolist() == []
    lims, d, i = index.range_search(np.zeros(32, np.uint8), 256)
    assert lims.tolist() == [0, 0] and len(d) == 0 and len(i) == 0
    d, i = index.search(np.zeros((2, 32), np.uint8), 3)
    assert (d == -1).all() and (i == -1).all()
    index.save(tmp_path / "e.hmi", tag=0)
    assert len(HammingIndex.load_if_tagged(tmp_path / "e.hmi", 0)) == 0


@pytest.fixture()
def saved(tmp_path):
    index = HammingIndex()
    index.add(random_codes(300, seed=40), np.arange(300))
    path = tmp_path / "index.hmi"
    index.save(path, tag=7)
    return path


@pytest.mark.parametrize("damage", ["truncate", "truncate_header", "bitflip_codes", "bitflip_ids",
                                    "bitflip_digest", "bitflip_header", "magic", "append"])
def test_damaged_files_are_detected(saved, damage):
    data = bytearray(saved.read_bytes())
    if damage == "truncate":
        data = data[:-100]
    elif damage == "truncate_header":
        data = data[:10]
    elif damage == "bitflip_codes":
        data[32 + 1000] ^= 0x10
    elif damage == "bitflip_ids":
        data[len(data) - 32 - 8 * 5] ^= 0x01
    elif damage == "bitflip_digest":
        data[-1] ^= 0x80
    elif damage == "bitflip_header":
        data[24] ^= 0x01  # the count
    elif damage == "magic":
        data[:8] = b"NOTANIDX"
    elif damage == "append":
        data += b"\0"
    saved.write_bytes(bytes(data))
    with pytest.raises(HashFormatError):
        HammingIndex.load(saved)
    assert HammingIndex.load_if_tagged(saved, 7) is None


def test_input_forms_are_equivalent():
    codes = random_codes(5, seed=50)
    index = HammingIndex()
    index.add([bytes(c) for c in codes[:2]], [1, 2])
    index.add(b"".join(bytes(c) for c in codes[2:4]), np.array([3, 4], np.uint32))
    index.add(codes[4], 5)
    expected = index.range_search(codes, 0)
    assert expected[0].tolist() == [0, 1, 2, 3, 4, 5]
    assert expected[2].tolist() == [1, 2, 3, 4, 5]
    single = index.range_search(bytes(codes[2]), 0)
    assert single[0].tolist() == [0, 1] and single[2].tolist() == [3]
    assert index.range_search(codes[2], 0)[2].tolist() == [3]
    assert index.range_search(codes[2].tolist(), 0)[2].tolist() == [3]  # a list of byte values
    assert index.range_search(codes[2], 10 ** 30)[0].tolist() == [0, 5]  # past 256 is 256
    assert index.range_search([], 0)[0].tolist() == [0]  # no queries


@pytest.mark.parametrize("call, error, words", [
    (lambda ix: ix.add(np.zeros((2, 32), np.float32), [1, 2]), InputTypeError, "uint8"),
    (lambda ix: ix.add([[1, 2]], [7]), InvalidInputError, "(n, 32)"),
    (lambda ix: ix.add(object(), [7]), InvalidInputError, "codes"),
    (lambda ix: ix.add(np.zeros((2, 31), np.uint8), [1, 2]), InvalidInputError, "(n, 32)"),
    (lambda ix: ix.add(np.zeros((2, 32), np.uint8), [1]), InvalidInputError, "one id per code"),
    (lambda ix: ix.add(np.zeros((2, 32), np.uint8), [1.0, 2.0]), InputTypeError, "integers"),
    (lambda ix: ix.add(np.zeros((2, 32), np.uint8), [3, 3]), InvalidInputError, "repeats"),
    (lambda ix: ix.add(np.zeros((1, 32), np.uint8), [1]), InvalidInputError, "already"),
    (lambda ix: ix.add(b"\0" * 33, [9]), InvalidInputError, "32-byte"),
    (lambda ix: ix.add([b"\0" * 31], [9]), InvalidInputError, "32 bytes"),
    (lambda ix: ix.add("00" * 32, [9]), InputTypeError, "bytes.fromhex"),
    (lambda ix: ix.range_search(np.zeros((1, 32), np.uint8), -1), InvalidInputError, "radius"),
    (lambda ix: ix.range_search(np.zeros((1, 32), np.uint8), 3.5), InputTypeError, "radius"),
    (lambda ix: ix.range_search(np.full((1, 32), 300), 3), InvalidInputError, "0..255"),
    (lambda ix: ix.range_search(np.zeros((1, 32), bool), 3), InputTypeError, "queries"),
    (lambda ix: ix.search(np.zeros((1, 32), np.uint8), 0), InvalidInputError, "k"),
    (lambda ix: ix.search(np.zeros((1, 32), np.uint8), 2 ** 40), InvalidInputError, "k"),
    (lambda ix: ix.range_search(np.zeros((1, 32), np.uint8), 3, threads=10 ** 6), InvalidInputError, "threads"),
    (lambda ix: ix.save("unused", tag=2 ** 63), InvalidInputError, "tag"),
    (lambda ix: ix.remove([[1, 2]]), InvalidInputError, "1-D"),
    (lambda ix: ix.save("unused", tag="x"), InputTypeError, "tag"),
])
def test_bad_input_raises_typed_errors(call, error, words):
    index = HammingIndex()
    index.add(np.zeros((1, 32), np.uint8), [1])
    with pytest.raises(error, match=None) as info:
        call(index)
    assert words in str(info.value)
    assert len(index) == 1  # a failed call changes nothing


@pytest.mark.parametrize("kwargs, error", [
    ({"substrings": 4}, InvalidInputError),
    ({"substrings": "12"}, InputTypeError),
    ({"mih_min_rows": -1}, InvalidInputError),
    ({"tail_min_rows": 1.5}, InputTypeError),
])
def test_bad_constructor_knobs_raise_typed_errors(kwargs, error):
    with pytest.raises(error):
        HammingIndex(**kwargs)


@pytest.mark.parametrize("asked, used", [(20, 20), (8, 16)])  # 8 x 32 bits would need 128 GB
def test_explicit_substring_count_is_used_within_a_memory_bound(clustered, asked, used):
    codes, ids, queries = clustered
    index = HammingIndex(mih_min_rows=0, force_mih=True, substrings=asked)
    index.add(codes, ids)
    assert index._core.substrings == used
    assert index.memory_bytes() < 50 * 2 ** 20
    assert_range_exact(index, queries, codes, ids, radii=[0, 7, 8, 19, 20, 31, 40])


def test_load_rejects_duplicate_ids_as_format_error(tmp_path):
    import hashlib
    import struct

    header = struct.pack("<8sIIqQ", b"HMHAMIDX", 1, 0, 0, 2)
    body = header + bytes(64) + struct.pack("<qq", 5, 5)
    path = tmp_path / "dup.hmi"
    path.write_bytes(body + hashlib.blake2b(body, digest_size=32).digest())
    with pytest.raises(HashFormatError, match="invalid entries"):
        HammingIndex.load(path)
    assert HammingIndex.load_if_tagged(path, None) is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), force=st.booleans())
def test_random_operation_sequences_match_a_model(data, force):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    index = forced_mih(tail_min_rows=data.draw(st.integers(0, 40), label="tail")) if force else HammingIndex()
    centres = rng.integers(0, 256, (4, 32), dtype=np.uint8)
    model = {}
    next_id = 0
    for _ in range(data.draw(st.integers(1, 6), label="steps")):
        if model and data.draw(st.booleans(), label="remove"):
            held = sorted(model)
            drop = rng.choice(held, int(rng.integers(1, len(held) + 1)), replace=False)
            assert index.remove(drop) == len(drop)
            for i in drop.tolist():
                del model[i]
        else:
            n = data.draw(st.integers(1, 120), label="n")
            near = np.stack([flip_bits(centres[rng.integers(0, 4)], int(rng.integers(0, 41)), rng) for _ in range(n)])
            index.add(near, np.arange(next_id, next_id + n))
            model.update({next_id + j: near[j] for j in range(n)})
            next_id += n
    held = sorted(model)
    codes = np.stack([model[i] for i in held]) if held else np.zeros((0, 32), np.uint8)
    ids = np.array(held, np.int64)
    radius = data.draw(st.sampled_from([0, 1, 7, 12, 31, 40, 64, 256]), label="radius")
    assert_range_exact(index, np.concatenate([centres, rng.integers(0, 256, (2, 32), dtype=np.uint8)]),
                       codes, ids, radii=[radius])
    assert len(index) == len(held)


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch, saved):
    before = saved.read_bytes()
    index = HammingIndex()
    index.add(random_codes(10, seed=60), np.arange(10))

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        index.save(saved, tag=8)
    monkeypatch.undo()
    assert saved.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in saved.parent.iterdir()) == ["index.hmi"]
