"""Lookup tables a DICOM file may carry, bounded before pydicom expands any of them.

pydicom trusts LUT descriptors and expands *segmented* palette LUTs into Python
lists without limit: one 6-byte linear segment asks for 65,535 entries, so a
9 KB file held gigabytes. Here every descriptor is checked (at most 65,536
entries, 8 or 16 bits, data as long as the entries), and segmented data is
walked the way pydicom walks it, counting entries, never expanding them.
Refusals name the tag and the rule; field ``file`` like every DICOM refusal.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import Tag

from serve_app.errors import InvalidInput

MAX_ENTRIES = 2**16
"""A descriptor's first value is 16 bits; 0 means 65,536 entries."""
PALETTE_DEPTHS = (8, 16)
LUT_DEPTHS = range(8, 17)
"""Modality and VOI LUT entries may use 8..16 bits (stored in 8- or 16-bit words)."""
_CHANNELS = ("Red", "Green", "Blue", "Alpha")
_RED = "RedPaletteColorLookupTableDescriptor"
_DISCRETE, _LINEAR, _INDIRECT = 0, 1, 2


def _refuse(keyword: str, detail: str, rule: str) -> InvalidInput:
    tag = Tag(keyword)
    return InvalidInput(
        f"DICOM {keyword} ({tag.group:04X},{tag.element:04X}) {detail}", field="file", rule=rule
    )


def check_luts(ds: Dataset, little_endian: bool) -> None:
    """Refuse palette, modality or VOI LUTs that are malformed or expand past their bounds."""
    for channel in _CHANNELS:
        _check_palette(ds, channel, little_endian)
    for sequence in ("ModalityLUTSequence", "VOILUTSequence"):
        for item in ds.get(sequence) or ():
            if "LUTDescriptor" in item:
                entries, depth = descriptor(item, "LUTDescriptor", LUT_DEPTHS)
                if "LUTData" in item:
                    _check_length(item, "LUTData", entries, depth)


def descriptor(ds: Dataset, keyword: str, depths: range | tuple[int, ...]) -> tuple[int, int]:
    """The entries (0 read as 65,536) and bits per entry a LUT descriptor declares."""
    value = ds.get(keyword)
    values = list(value) if isinstance(value, MultiValue | list | tuple) else []
    if len(values) != 3 or not all(isinstance(v, int) for v in values):
        raise _refuse(keyword, "must be three integers", "lut-descriptor")
    entries, _, depth = values
    entries = entries or MAX_ENTRIES
    if not 0 < entries <= MAX_ENTRIES:
        raise _refuse(keyword, f"declares {entries} entries, not 1..{MAX_ENTRIES}", "lut-entries")
    if depth not in depths:
        raise _refuse(keyword, f"declares {depth} bits per entry", "lut-depth")
    return entries, depth


def _check_palette(ds: Dataset, channel: str, little_endian: bool) -> None:
    plain = f"{channel}PaletteColorLookupTableData"
    segmented = f"Segmented{channel}PaletteColorLookupTableData"
    if plain not in ds and segmented not in ds:
        return
    # NOTE: pydicom reads every channel by the red descriptor; each present one must hold too.
    keyword = f"{channel}PaletteColorLookupTableDescriptor"
    entries, depth = descriptor(ds, keyword if keyword in ds else _RED, PALETTE_DEPTHS)
    if plain in ds:
        _check_length(ds, plain, entries, depth)
    else:
        words = _words(ds[segmented].value, depth, little_endian)
        segmented_entries(words, depth, entries, segmented, little_endian)


def _check_length(ds: Dataset, keyword: str, entries: int, depth: int) -> None:
    """LUT data holds one entry per descriptor entry: 8-bit entries in bytes or words."""
    value = ds[keyword].value
    if isinstance(value, bytes):
        # NOTE: an odd number of bytes is padded to even; 8-bit entries may fill 16-bit words.
        widths = {1, 2} if depth <= 8 else {2}
        fits = any(len(value) in (entries * w, entries * w + 1) for w in widths)
    else:
        fits = len(value) == entries if isinstance(value, list | tuple) else entries == 1
    if not fits:
        raise _refuse(keyword, f"length does not match {entries} {depth}-bit entries", "lut-length")


def _words(data: bytes, depth: int, little_endian: bool) -> list[int]:
    """The data as pydicom unpacks it: bytes for 8-bit tables, else 16-bit words."""
    size = depth // 8
    dtype = np.dtype(f"{'<' if little_endian else '>'}u{size}")
    return np.frombuffer(data[: len(data) // size * size], dtype=dtype).tolist()


def segmented_entries(
    words: list[int], depth: int, limit: int, keyword: str, little_endian: bool = True
) -> int:
    """Entries segmented LUT data expands to, counted as pydicom expands it (PS3.3 C.7.9.2).

    Refused past ``limit`` entries, past ``limit`` segments walked (those an indirect
    segment re-reads included), for an unknown segment type, and for an indirect
    segment that points at another indirect one (pydicom would recurse).
    """
    walk = _Walk(words, depth, limit, keyword, little_endian)
    total = 0
    for opcode, length, target in walk.segments(0, 0):
        if opcode == _INDIRECT:
            for inner, inner_length, _ in walk.segments(target, length):
                if inner == _INDIRECT:
                    raise _refuse(keyword, "has an indirect segment to another", "lut-indirect")
                total = walk.bound(total + inner_length)
        else:
            total = walk.bound(total + length)
    return total


class _Walk:
    def __init__(
        self, words: list[int], depth: int, limit: int, keyword: str, little_endian: bool
    ) -> None:
        self.words, self.depth, self.limit, self.keyword = words, depth, limit, keyword
        self.little_endian = little_endian
        self.walked = 0

    def bound(self, total: int) -> int:
        if total > self.limit:
            raise _refuse(self.keyword, f"expands past its {self.limit} entries", "lut-entries")
        return total

    def segments(self, start: int, count: int) -> Iterator[tuple[int, int, int]]:
        """(opcode, length, indirect target) of each segment from ``start``; ``count`` 0: all."""
        words, offset, seen = self.words, start, 0
        while offset + 1 < len(words):
            opcode, length = words[offset], words[offset + 1]
            offset += 2
            seen += 1
            self.walked += 1
            # NOTE: every segment worth having adds an entry; this also bounds the work.
            if self.walked > self.limit:
                raise _refuse(self.keyword, f"has more than {self.limit} segments", "lut-segments")
            target = 0
            if opcode == _DISCRETE:
                offset += length
            elif opcode == _LINEAR:
                offset += 1
            elif opcode == _INDIRECT:
                target = self._target(offset)
                offset += 4 if self.depth == 8 else 2
            else:
                detail = f"has a segment of unknown type {opcode}"
                raise _refuse(self.keyword, detail, "lut-segment-type")
            yield opcode, length, target
            if seen == count:
                return

    def _target(self, offset: int) -> int:
        """Where an indirect segment points, read exactly as pydicom reads it (a word index)."""
        size = 4 if self.depth == 8 else 2
        part = self.words[offset : offset + size]
        part += [0] * (size - len(part))  # pydicom fails on a short one; any bound will do
        if size == 2:
            return part[1] << 16 | part[0]
        order = (3, 2, 1, 0) if self.little_endian else (2, 3, 0, 1)
        a, b, c, d = (part[i] for i in order)
        return (a << 8 | b) << 16 | (c << 8 | d)
