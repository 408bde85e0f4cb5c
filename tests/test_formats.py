"""The format registry: names, codecs, round trips, python-threatexchange compatibility, name mapping."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import hashmatch
from hashmatch import HashFormatError, formats
from hashmatch.signals.vpdq import VPDQFrame


def _pdq_hexes(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [bytes(r).hex() for r in rng.integers(0, 256, size=(n, 32), dtype=np.uint8)]


def _frames(seed: int, n: int = 6) -> list:
    return [VPDQFrame(i, 60 + i, h, i * 1.0) for i, h in enumerate(_pdq_hexes(n, seed))]


def test_registry_names_follow_python_threatexchange():
    assert {"pdq", "vpdq", "video_md5", "video_sha256", "md5", "sha256"} <= set(formats.names())
    assert {"photodna", "videntifier", "ssvh_safer_hash"} <= set(formats.names(matchable=False))
    assert formats.get("PDQ").name == "pdq"  # case-insensitive lookup
    with pytest.raises(HashFormatError, match="unknown format name 'pdqq'"):
        formats.get("pdqq")


@pytest.mark.parametrize("fmt, value", [
    ("pdq", "A" * 64), ("md5", "d41d8cd98f00b204e9800998ecf8427e"), ("video_md5", "D41D8CD98F00B204E9800998ECF8427E"),
    ("sha256", hashlib.sha256(b"x").hexdigest()), ("video_sha256", hashlib.sha256(b"y").hexdigest()),
    ("sha1", hashlib.sha1(b"z").hexdigest()),
])
def test_text_formats_round_trip_canonical(fmt, value):
    canonical = formats.validate(fmt, "  " + value + "\n")
    assert canonical == value.lower()
    assert formats.dumps(fmt, formats.loads(fmt, canonical)) == canonical
    assert formats.distance(fmt, canonical, value) == 0


@pytest.mark.parametrize("fmt, bad, why", [
    ("pdq", "a" * 63, "64"), ("pdq", "g" * 64, "non-hex"), ("md5", "a" * 31, "32 hex"),
    ("video_md5", "z" * 32, "non-hex"), ("sha256", "", "64 hex"), ("vpdq", "[1]", "hex,quality,timestamp"),
    ("vpdq", "", "no frames"), ("vpdq", "0,100," + "a" * 64, "frame_number"),
])
def test_malformed_values_name_the_source(fmt, bad, why):
    with pytest.raises(HashFormatError, match=f"list.csv:7.*{why}"):
        formats.loads(fmt, bad, source="list.csv:7")


def test_vpdq_signal_and_text_forms():
    frames = _frames(1)
    signal = formats.dumps("vpdq", frames)
    back = formats.loads("vpdq", signal)
    assert [(f.hex, f.quality, f.timestamp) for f in back] == [(f.hex, f.quality, f.timestamp) for f in frames]
    text = hashmatch.signals.vpdq.dumps(frames)
    assert formats.loads("vpdq", text) == frames  # the reference's text lines are accepted too
    assert formats.distance("vpdq", frames, frames) == 100.0
    assert formats.is_match("vpdq", frames, frames) and not formats.is_match("vpdq", frames, _frames(2))


def test_python_threatexchange_parses_ours_and_agrees_on_distances():
    from threatexchange.extensions.vpdq.vpdq_util import json_to_vpdq, vpdq_to_json  # noqa: F401
    from threatexchange.signal_type.md5 import VideoMD5Signal
    from threatexchange.signal_type.pdq.signal import PdqSignal
    from threatexchange.extensions.vpdq.vpdq import VPDQSignal

    a, b = _pdq_hexes(2, 3)
    for h in (a, b):
        assert PdqSignal.validate_signal_str(formats.dumps("pdq", hashmatch.PDQ.from_hex(h))) == h
    assert PdqSignal.compare_hash(a, b).match == formats.is_match("pdq", a, b)
    assert PdqSignal.compare_hash(a, b).distance.distance == formats.distance("pdq", a, b)
    md5 = hashlib.md5(b"video").hexdigest()
    assert VideoMD5Signal.validate_signal_str(formats.dumps("video_md5", md5)) == md5
    frames, others = _frames(4), _frames(5)
    ours, theirs = formats.dumps("vpdq", frames), formats.dumps("vpdq", others)
    assert VPDQSignal.validate_signal_str(ours) == ours
    result = VPDQSignal.compare_hash(ours, ours)
    assert result.match and formats.is_match("vpdq", ours, ours)
    assert VPDQSignal.compare_hash(ours, theirs).match == formats.is_match("vpdq", ours, theirs) is False


def test_opaque_values_kept_exactly_never_matched():
    value = "  some proprietary PhotoDNA string == "
    assert formats.loads("photodna", value) == value.strip()
    blob = bytes(range(256))
    assert formats.loads("videntifier", blob) == blob and formats.dumps("videntifier", blob) == blob
    with pytest.raises(hashmatch.InvalidInputError, match="cannot be compared"):
        formats.distance("photodna", "a", "a")


def test_external_names_both_ways():
    assert formats.from_external("ncmec", "PDQ") == "pdq"
    assert formats.from_external("ncmec", "MD5", media_type="video") == "video_md5"
    assert formats.from_external("ncmec", "md5", media_type="image") == "md5"
    assert formats.from_external("stopncii", "VideoTMK") == "tmk_pdqf"
    assert formats.from_external("cybertipline", "SHA256", "video") == "video_sha256"
    with pytest.raises(HashFormatError, match="media type"):
        formats.from_external("ncmec", "MD5")
    with pytest.raises(HashFormatError, match="unknown ncmec hash type"):
        formats.from_external("ncmec", "FOO")
    with pytest.raises(HashFormatError, match="known: MD5, NETCLEAN"):  # the system's name in any case
        formats.from_external(" NCMEC", "FOO")
    assert formats.to_external("stopncii", "pdq") == "ImagePDQ"
    assert formats.to_external("ncmec", "tmk_pdqf") == "TMK_PDQF"
    assert formats.table()["video_md5"] == {"ncmec": "MD5", "stopncii": "VideoMD5", "cybertipline": "MD5"}
    with pytest.raises(HashFormatError):
        formats.to_external("stopncii", "photodna")


# ---- the match threshold, compared with python-threatexchange where the decision flips ----------

BOUNDARY = (30, 31, 32, 33)  # PDQ's threshold is distance <= 31


def _flipped(hex_: str, count: int, rng: np.random.Generator) -> str:
    bits = rng.choice(256, count, replace=False)
    return f"{int(hex_, 16) ^ sum(1 << int(b) for b in bits):064x}"


@pytest.mark.parametrize("d", BOUNDARY)
def test_pdq_decision_at_the_threshold_agrees_with_python_threatexchange(d):
    from threatexchange.signal_type.pdq.signal import PdqSignal

    rng = np.random.default_rng(d)
    for a in _pdq_hexes(20, seed=100 + d):
        b = _flipped(a, d, rng)
        theirs = PdqSignal.compare_hash(a, b)
        assert theirs.distance.distance == d == formats.distance("pdq", a, b) == hashmatch.distance(a, b)
        assert theirs.match == formats.is_match("pdq", a, b) == (d <= 31)
    index = hashmatch.HammingIndex()
    stored = _pdq_hexes(20, seed=100 + d)
    index.add(np.array([np.frombuffer(bytes.fromhex(h), np.uint8) for h in stored]), np.arange(20))
    rng = np.random.default_rng(d)
    queries = np.array([np.frombuffer(bytes.fromhex(_flipped(h, d, rng)), np.uint8) for h in stored])
    lims, distances, _ = index.range_search(queries)  # radius 31, inclusive
    assert np.diff(lims).tolist() == [int(d <= 31)] * 20 and distances.tolist() == [d] * int(d <= 31) * 20


def test_hash_database_decides_at_the_threshold_as_python_threatexchange(tmp_path):
    from threatexchange.signal_type.pdq.signal import PdqSignal

    rng = np.random.default_rng(9)
    stored = _pdq_hexes(len(BOUNDARY), seed=400)
    with hashmatch.HashDB(tmp_path / "b.db") as db:
        ids = db.add_many(stored, source="list", qualities=[100] * len(stored))
        for entry, a, d in zip(ids, stored, BOUNDARY):
            b = _flipped(a, d, rng)
            found = [(m.entry_id, m.distance) for m in db.match(b)]
            assert found == ([(entry, d)] if PdqSignal.compare_hash(a, b).match else []), d


@pytest.mark.parametrize("d", BOUNDARY)
@pytest.mark.parametrize("matched_frames", [10, 8, 7])
def test_vpdq_decision_at_the_thresholds_agrees_with_python_threatexchange(d, matched_frames):
    from threatexchange.extensions.vpdq.vpdq import VPDQSignal
    from threatexchange.extensions.vpdq.vpdq_brute_matcher import match_VPDQ_hash_brute
    from threatexchange.extensions.vpdq.vpdq_util import json_to_vpdq

    # 10 query frames: `matched_frames` at distance d from their stored frame, the rest at 40.
    # With d <= 31 the query matches 100%, 80% (the video threshold: a match) or 70% (none).
    rng = np.random.default_rng([d, matched_frames])
    stored = [VPDQFrame(i, 80, h, float(i)) for i, h in enumerate(_pdq_hexes(10, seed=200 + d))]
    query = [VPDQFrame(f.frame_number, 80, _flipped(f.hex, d if i < matched_frames else 40, rng), f.timestamp)
             for i, f in enumerate(stored)]
    ours_q, ours_s = formats.dumps("vpdq", query), formats.dumps("vpdq", stored)
    theirs = VPDQSignal.compare_hash(ours_q, ours_s)
    percent = matched_frames * 10.0 if d <= 31 else 0.0
    assert theirs.distance.query_match_percent == pytest.approx(percent)
    assert formats.distance("vpdq", query, stored) == pytest.approx(percent)
    assert theirs.match == formats.is_match("vpdq", query, stored) == (percent >= 80.0)
    ours = hashmatch.vpdq_match(query, stored)
    brute = match_VPDQ_hash_brute(json_to_vpdq(ours_q), json_to_vpdq(ours_s), 50, 31)
    assert ours.query_match_percent == pytest.approx(brute.query_match_percent)
    assert ours.compared_match_percent == pytest.approx(brute.compared_match_percent)
    assert ours.is_match() == theirs.match


@pytest.mark.parametrize("quality", [49, 50])
def test_vpdq_quality_gate_agrees_with_python_threatexchange(quality):
    from threatexchange.extensions.vpdq.vpdq import VPDQSignal

    # 3 frames copied exactly, 2 unrelated ones at `quality`: below 50 they are not counted (3 of
    # 3 match, a match); at 50 they are (3 of 5, 60%, no match).
    rng = np.random.default_rng(quality)
    stored = [VPDQFrame(i, 90, h, float(i)) for i, h in enumerate(_pdq_hexes(5, seed=300))]
    query = [VPDQFrame(f.frame_number, 90 if i < 3 else quality, f.hex if i < 3 else _flipped(f.hex, 60, rng),
                       f.timestamp) for i, f in enumerate(stored)]
    theirs = VPDQSignal.compare_hash(formats.dumps("vpdq", query), formats.dumps("vpdq", stored))
    assert theirs.match == formats.is_match("vpdq", query, stored) == (quality < 50)
    assert theirs.distance.query_match_percent == pytest.approx(formats.distance("vpdq", query, stored))
    assert formats.distance("vpdq", query, stored) == pytest.approx(100.0 if quality < 50 else 60.0)
