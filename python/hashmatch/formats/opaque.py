"""Formats hashmatch keeps but cannot compute or compare: proprietary hashes partners exchange."""

from __future__ import annotations

from .base import OpaqueFormat, register

for _name, _media, _binary in [("photodna", "image", False), ("netclean", "any", False),
                               ("videntifier", "any", True), ("ssvh_pdna", "video", True),
                               ("ssvh_safer_hash", "video", True)]:
    register(OpaqueFormat(_name, _media, _binary))
