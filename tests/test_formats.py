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
