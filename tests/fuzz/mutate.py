"""A small deterministic mutator: the in-suite fuzzing when atheris/libFuzzer is not driving."""

from __future__ import annotations

import random
from typing import List

_INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\xff" * 8,
                b"\n", b",", b"[", b"{", b'"', b"\r\n", b"-1", b"1e309", b"NaN", b"0" * 40]


def mutate(data: bytes, rng: random.Random, corpus: List[bytes]) -> bytes:
    """One to four random edits of data: bit flips, byte sets, inserts, deletes, splices."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            i = min(pos, len(buf) - 1)
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 2:
            buf[pos:pos] = rng.choice(_INTERESTING)
        elif op == 3 and buf:
            del buf[pos:pos + rng.randint(1, 16)]
        elif op == 4 and corpus:
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            buf[pos:] = other[cut:]
        elif op == 5 and buf:
            i = min(pos, len(buf) - 1)
            buf[i:i + 4] = rng.randrange(-2 ** 31, 2 ** 31).to_bytes(4, "little", signed=True)
        elif op == 6 and len(buf) > 1:
            j = rng.randrange(len(buf))
            buf[pos:pos] = buf[j:j + rng.randint(1, 32)]
    return bytes(buf)
