"""DICOM bombs: tiny files whose headers ask for gigabytes are refused from the headers.

Without these guards, the JPEG case below (a 100x100 dataset whose frame declares
30000x30000) took pylibjpeg 20 s and 5 GB, and at 65000x65000 the process was
killed for memory; the deflate case (2 MB inflating to 2 GB) took 4 GB.
"""

from __future__ import annotations

import io
import struct
import zlib
from itertools import pairwise

import numpy as np
import pytest
from PIL import Image
from pydicom.encaps import encapsulate, get_frame
from pydicom.filereader import _read_file_meta_info, read_preamble

from serve_app.codecs.dicom import decode_dicom
from serve_app.errors import InvalidInput
from serve_app.settings import LimitsSettings
from tests.unit.test_dicom_codec import dataset, sample, to_bytes

LIMITS = LimitsSettings()


def with_frame(name: str, frame: bytes) -> bytes:
    """The sample ``name`` with its one frame replaced."""
    ds = dataset(name)
    ds.PixelData = encapsulate([frame])
    return to_bytes(ds)


def first_frame(name: str) -> bytearray:
    return bytearray(get_frame(dataset(name).PixelData, 0, number_of_frames=1))


def jpeg_declaring(width: int, height: int, components: int = 3) -> bytes:
    """A real 100x100 RGB baseline JPEG whose frame header is rewritten."""
    buffer = io.BytesIO()
    Image.new("RGB", (100, 100), (128, 64, 32)).save(buffer, "JPEG", quality=90)
    jpeg = bytearray(buffer.getvalue())
    sof = jpeg.index(b"\xff\xc0")
    struct.pack_into(">HHB", jpeg, sof + 5, height, width, components)
    return bytes(jpeg)


def refused(data: bytes, limits: LimitsSettings = LIMITS) -> InvalidInput:
    with pytest.raises(InvalidInput) as raised:
        decode_dicom(data, limits)
    assert raised.value.field == "file"
    return raised.value


def test_the_untouched_jpeg_frame_decodes() -> None:
    pixels = decode_dicom(with_frame("SC_rgb_jpeg_dcmtk.dcm", jpeg_declaring(100, 100)), LIMITS)

    assert pixels.pixels.shape == (100, 100, 3)


@pytest.mark.parametrize("side", [2049, 4000])  # small enough to fail cleanly if unguarded
def test_jpeg_frame_declaring_a_huge_size_is_refused_before_decoding(side: int) -> None:
    # A decoder that ran would fail with rule "dicom" (or never return): "range" and
    # the declared size show that the frame header was read first.
    error = refused(with_frame("SC_rgb_jpeg_dcmtk.dcm", jpeg_declaring(side, 100)))

    assert error.rule == "range"
    assert f"width {side} " in error.detail


def test_jpeg_frame_declaring_many_components_is_refused() -> None:
    error = refused(with_frame("SC_rgb_jpeg_dcmtk.dcm", jpeg_declaring(100, 100, 200)))

    assert (error.rule, error.detail) == ("dicom", "DICOM frame header declares 200 components")


def test_jpeg_ls_frame_header_is_read() -> None:
    frame = first_frame("MR_small_jpeg_ls_lossless.dcm")
    assert frame[2:4] == b"\xff\xf7"  # SOF55 right after SOI
    struct.pack_into(">H", frame, 2 + 5, 40_000)

    error = refused(with_frame("MR_small_jpeg_ls_lossless.dcm", bytes(frame)))

    assert (error.rule, error.detail) == ("range", "image height 40000 is outside 64..2048")


def test_jpeg_frame_without_a_frame_header_is_refused() -> None:
    error = refused(with_frame("SC_rgb_jpeg_dcmtk.dcm", b"\xff\xd8\xff\xda" + bytes(100)))

    assert error.rule == "dicom"


@pytest.mark.parametrize("name", ["MR_small_jp2klossless.dcm", "GDCMJ2K_TextGBR.dcm"])
def test_jpeg_2000_size_is_read_bare_and_inside_jp2_boxes(name: str) -> None:
    frame = first_frame(name)
    siz = frame.index(b"\xff\x4f\xff\x51") + 2  # GDCMJ2K_TextGBR wraps it in JP2 boxes
    struct.pack_into(">I", frame, siz + 6, 100_000)  # Xsiz

    error = refused(with_frame(name, bytes(frame)))

    assert (error.rule, error.detail) == ("range", "image width 100000 is outside 64..2048")


def rle_frame(*segments: bytes) -> bytes:
    offsets = np.cumsum([64, *(len(s) for s in segments[:-1])]).tolist()
    header = struct.pack("<16I", len(segments), *offsets, *[0] * (15 - len(segments)))
    return header + b"".join(segments)


def rle_planes(name: str) -> list[bytes]:
    frame = bytes(first_frame(name))
    count, *offsets = struct.unpack_from("<16I", frame)
    return [frame[start:end] for start, end in pairwise([*offsets[:count], len(frame)])]


def test_rle_segment_expanding_far_past_its_plane_is_refused() -> None:
    _, green, blue = rle_planes("SC_rgb_rle.dcm")
    bomb = b"\x81\x00" * 500_000  # 1 MB that pydicom would expand to 64 MB

    error = refused(with_frame("SC_rgb_rle.dcm", rle_frame(bomb, green, blue)))

    assert (error.rule, error.detail) == (
        "dicom",
        "DICOM RLE segment decodes to more than twice its plane",
    )


def test_rle_segment_with_some_padding_still_decodes() -> None:
    expected = decode_dicom(sample("SC_rgb_rle.dcm"), LIMITS).pixels
    red, green, blue = rle_planes("SC_rgb_rle.dcm")
    padded = red + b"\x9d\x00" * 10  # 10 runs of 100 zero bytes past the plane's end

    with pytest.warns(UserWarning, match="padding"):
        decoded = decode_dicom(with_frame("SC_rgb_rle.dcm", rle_frame(padded, green, blue)), LIMITS)

    np.testing.assert_array_equal(decoded.pixels, expected)


def deflated_with_padding(padding: int) -> bytes:
    """``image_dfl.dcm`` re-deflated with ``padding`` zero bytes of trailing padding."""
    raw = sample("image_dfl.dcm")
    fp = io.BytesIO(raw)
    read_preamble(fp, False)
    _read_file_meta_info(fp)
    start = fp.tell()
    dataset_bytes = zlib.decompress(raw[start:], -zlib.MAX_WBITS)
    trailing = struct.pack("<HH2sHI", 0xFFFC, 0xFFFC, b"OB", 0, padding)  # (FFFC,FFFC) OB
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflater.compress(dataset_bytes + trailing + bytes(padding)) + deflater.flush()
    return raw[:start] + body


def test_deflated_dataset_inflating_past_the_body_limit_is_refused() -> None:
    data = deflated_with_padding(16 << 20)
    assert len(data) < 1 << 20

    error = refused(data, LimitsSettings(max_body_bytes=1 << 20))

    assert error.detail == "deflated DICOM dataset inflates past 1048576 bytes"
    decoded = decode_dicom(data, LimitsSettings(max_body_bytes=32 << 20))
    np.testing.assert_array_equal(
        decoded.pixels, decode_dicom(sample("image_dfl.dcm"), LIMITS).pixels
    )
