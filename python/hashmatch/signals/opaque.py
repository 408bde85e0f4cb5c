"""Formats hashmatch keeps but cannot compute or compare: proprietary hashes partners exchange."""

from __future__ import annotations

from .base import OpaqueSignal, register

register(OpaqueSignal("photodna", "image", external_names=(("ncmec", "PDNA", "image"), ("cybertipline", "PDNA", "image"))))
register(OpaqueSignal("netclean", "any", external_names=(("ncmec", "NETCLEAN", None),)))
register(OpaqueSignal("videntifier", "any", binary=True, external_names=(("ncmec", "VIDENTIFIER", None),)))
register(OpaqueSignal("ssvh_pdna", "video", binary=True, external_names=(("ncmec", "SSVH_PDNA", "video"),)))
# NCMEC's large-fingerprint documentation also spells SSVH_SAFER_HASH as TMK_SAFER_HASH.
register(OpaqueSignal("ssvh_safer_hash", "video", binary=True,
                      external_names=(("ncmec", "SSVH_SAFER_HASH", "video"), ("ncmec", "TMK_SAFER_HASH", "video"))))
