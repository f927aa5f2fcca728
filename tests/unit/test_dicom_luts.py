"""LUT bombs: palette, modality and VOI LUTs are bounded before pydicom expands them.

Before the guard, ``segmented_lut_bomb(1000)`` (a 22 KB file) made pydicom build
three Python lists of 65.5 million entries: gigabytes, and seconds of CPU.
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, pixel_array
from pydicom.pixels.processing import _expand_segmented_lut
from pydicom.sequence import Sequence

from serve_app.codecs.dicom import decode_dicom
from serve_app.codecs.dicom_luts import segmented_entries
from serve_app.errors import InvalidInput
from serve_app.settings import LimitsSettings
from tests.dicoms import palette_dicom, segmented_lut_bomb, to_bytes
from tests.unit.test_dicom_codec import dataset

LIMITS = LimitsSettings()
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns of bad values
# Discrete 0..27, linear to 65535 over 100 entries, the first segment again, linear to 0.
LEGIT_SEGMENTS = [0, 28, *range(28), 1, 100, 65535, 2, 1, 0, 0, 1, 100, 0]


def refused(data: bytes, rule: str, keyword: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as raised:
        decode_dicom(data, LIMITS)
    error = raised.value
    assert (error.status, error.field, error.rule) == (422, "file", rule)
    assert keyword in error.detail
    return error


def read(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def test_segmented_lut_bomb_is_refused_before_expansion() -> None:
    data = segmented_lut_bomb(1000)
    assert len(data) < 32 * 1024

    refused(data, "lut-entries", "SegmentedRedPaletteColorLookupTableData (0028,1221)")


def test_legitimate_segmented_lut_decodes_as_pydicom_expands_it() -> None:
    data = palette_dicom(segments=LEGIT_SEGMENTS)
    ds = read(data)
    expected = apply_color_lut(pixel_array(ds), ds)

    pixels = decode_dicom(data, LIMITS).pixels

    np.testing.assert_allclose(pixels, expected / 65535.0, atol=1e-6)
    assert len(_expand_segmented_lut(tuple(LEGIT_SEGMENTS), "<H")) == 256


@pytest.mark.parametrize(
    "words",
    [
        LEGIT_SEGMENTS,
        [0, 3, 5, 6, 7, 2, 0, 9, 0, 1, 10, 900],  # an indirect segment of count 0: to the end
        [0, 1, 7, 1, 65535, 9],  # a single long linear segment
        [0, 2, 1, 2, 0],  # a trailing null word
    ],
)
def test_the_walk_counts_what_pydicom_expands(words: list[int]) -> None:
    expanded = _expand_segmented_lut(tuple(words), "<H")

    counted = segmented_entries(words, 16, 2**16, "SegmentedRedPaletteColorLookupTableData")

    assert counted == len(expanded)


def test_the_plain_palette_sample_still_decodes() -> None:
    pixels = decode_dicom(dataset_bytes("examples_palette.dcm"), LIMITS).pixels

    assert pixels.shape == (350, 800, 3)


def dataset_bytes(name: str) -> bytes:
    return to_bytes(dataset(name))


@pytest.mark.parametrize(
    ("words", "rule"),
    [
        ([0, 1, 0, *[1, 65535, 65535] * 2], "lut-entries"),
        ([0, 1, 0, *[0, 0] * 300], "lut-segments"),
        ([0, 1, 0, 2, 1, 3, 0], "lut-indirect"),  # an indirect segment pointing at itself
        ([0, 1, 0, 7, 1, 0], "lut-segment-type"),
    ],
    ids=["past-entries", "empty-segments", "indirect-to-indirect", "unknown-type"],
)
def test_hostile_segmented_luts_are_refused(words: list[int], rule: str) -> None:
    refused(palette_dicom(segments=words), rule, "SegmentedRedPaletteColorLookupTableData")


def test_indirect_segments_cannot_multiply_work() -> None:
    # 100 empty segments, then 1000 indirect segments each re-reading all of them.
    words = [0, 1, 0, *[0, 0] * 100, *[2, 100, 3, 0] * 1000]

    refused(palette_dicom(segments=words), "lut-segments", "SegmentedRed")


def with_descriptor(vr: str, value: list[int]) -> bytes:
    ds = read(palette_dicom())
    del ds["RedPaletteColorLookupTableDescriptor"]
    ds.add_new("RedPaletteColorLookupTableDescriptor", vr, value)
    return to_bytes(ds)


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (with_descriptor("UL", [4_000_000_000, 0, 16]), "lut-entries"),
        (with_descriptor("US", [256, 0, 12]), "lut-depth"),
        (with_descriptor("US", [256, 0]), "lut-descriptor"),
        (with_descriptor("US", [255, 0, 16]), "lut-length"),
    ],
    ids=["uint32-entries", "12-bit", "two-values", "length-mismatch"],
)
def test_palette_descriptors_are_validated(data: bytes, rule: str) -> None:
    refused(data, rule, "RedPaletteColorLookupTable")


def with_lut(sequence: str, descriptor_vr: str, descriptor: list[int], data: bytes) -> bytes:
    ds = dataset("MR_small.dcm")
    item = Dataset()
    item.add_new("LUTDescriptor", descriptor_vr, descriptor)
    item.add_new("LUTData", "OW", data)
    setattr(ds, sequence, Sequence([item]))
    return to_bytes(ds)


@pytest.mark.parametrize("sequence", ["ModalityLUTSequence", "VOILUTSequence"])
def test_modality_and_voi_luts_are_bounded(sequence: str) -> None:
    ramp = np.arange(4096, dtype="<u2").tobytes()
    # Four billion entries: the VOI path would have allocated np.arange of them.
    refused(with_lut(sequence, "UL", [4_000_000_000, 0, 16], ramp), "lut-entries", "LUTDescriptor")
    refused(with_lut(sequence, "US", [4096, 0, 32], ramp), "lut-depth", "LUTDescriptor")
    refused(with_lut(sequence, "US", [8192, 0, 16], ramp), "lut-length", "LUTData")

    assert decode_dicom(with_lut(sequence, "US", [4096, 0, 16], ramp), LIMITS).pixels.shape


def test_big_endian_indirect_offsets_are_read_as_pydicom_reads_them() -> None:
    # 8-bit: discrete (2), linear (3) at byte 4, indirect: once more the segment at byte 4.
    words = [0, 2, 1, 2, 1, 3, 9, 2, 1, 0, 4, 0, 0]
    keyword = "SegmentedRedPaletteColorLookupTableData"

    counted = segmented_entries(words, 8, 256, keyword, little_endian=False)

    assert counted == len(_expand_segmented_lut(tuple(words), ">B")) == 8
