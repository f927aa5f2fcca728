"""What a DICOM file may expand to, read from its headers before anything is inflated.

pydicom and its decoder plugins trust the bytes: a deflated dataset is inflated
whole, a JPEG or JPEG 2000 frame is decoded at the size its own header declares
(whatever *Rows* and *Columns* say), an RLE segment is expanded to its end. A
1 KB file can so ask for gigabytes. These checks read only headers.
"""

from __future__ import annotations

import io
import struct
import zlib
from itertools import pairwise

from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    JPEG2000TransferSyntaxes,
    JPEGLSTransferSyntaxes,
    JPEGTransferSyntaxes,
    RLELossless,
)

from serve_app.codecs.limits import check_dimensions
from serve_app.errors import InvalidInput, UnsupportedMediaType
from serve_app.settings import LimitsSettings

MAX_COMPONENTS = 4
"""Most colour components a frame header may declare (grey, RGB, RGB + alpha)."""

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
"""Start-of-frame markers: JPEG processes 0xC0..0xCF less DHT, JPG, DAC; JPEG-LS 0xF7."""
_JPEG_NO_LENGTH = {0x01, *range(0xD0, 0xDA)}  # TEM, RSTn, SOI, EOI
_J2K_SOC_SIZ = b"\xff\x4f\xff\x51"
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  "
_INFLATE_CHUNK = 1 << 20


def _invalid(detail: str) -> InvalidInput:
    return InvalidInput(detail, field="file", rule="dicom")


def check_inflated_size(data: bytes, limit: int) -> None:
    """Refuse a deflated dataset that inflates past ``limit`` bytes, counting in chunks."""
    fp = io.BytesIO(data)
    read_preamble(fp, True)
    # NOTE: pydicom has no public way to read the meta group from a buffer and
    # report where the dataset starts; this private reader is what dcmread uses.
    meta = _read_file_meta_info(fp)
    if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    pending, inflated = data[fp.tell() :], 0
    while not inflater.eof and inflated <= limit:
        chunk = inflater.decompress(pending, _INFLATE_CHUNK)
        if not chunk and not inflater.unconsumed_tail:
            break  # input used up; pydicom reports a stream cut short
        inflated += len(chunk)
        pending = inflater.unconsumed_tail
    if inflated > limit:
        raise _invalid(f"deflated DICOM dataset inflates past {limit} bytes")


def check_frame(frame: bytes, syntax: UID, rows: int, columns: int, limits: LimitsSettings) -> None:
    """Refuse a compressed frame whose own header asks for more than ``limits`` allow.

    JPEG, JPEG-LS and JPEG 2000 frames are decoded at the size their header
    declares, so that size is checked like a PNG's; RLE segments are counted,
    not expanded, and may hold at most one plane of padding.
    """
    if syntax in JPEGTransferSyntaxes or syntax in JPEGLSTransferSyntaxes:
        width, height, components = _jpeg_header(frame)
    elif syntax in JPEG2000TransferSyntaxes:
        width, height, components = _j2k_header(frame)
    elif syntax == RLELossless:
        _check_rle(frame, rows * columns)
        return
    else:
        # NOTE: only syntaxes whose frame headers we read may be decoded at all.
        raise UnsupportedMediaType(
            f"DICOM transfer syntax {syntax.name[:64]} is not accepted",
            field="file",
            rule="transfer-syntax",
        )
    check_dimensions(width, height, limits, field="file")
    if not 0 < components <= MAX_COMPONENTS:
        raise _invalid(f"DICOM frame header declares {components} components")


def _jpeg_header(frame: bytes) -> tuple[int, int, int]:
    """Width, height and components of a JPEG or JPEG-LS frame header (SOFn)."""
    if not frame.startswith(b"\xff\xd8"):
        raise _invalid("DICOM JPEG frame does not start with SOI")
    pos = 2
    while pos + 4 <= len(frame) and frame[pos] == 0xFF:
        marker = frame[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker in _JPEG_NO_LENGTH:
            pos += 2
        elif marker in _JPEG_SOF and pos + 10 <= len(frame):
            height, width = struct.unpack_from(">HH", frame, pos + 5)
            return width, height, frame[pos + 9]
        elif marker == 0xDA:  # a scan before any frame header
            break
        else:
            pos += 2 + int.from_bytes(frame[pos + 2 : pos + 4], "big")
    raise _invalid("DICOM JPEG frame has no readable frame header")


def _j2k_header(frame: bytes) -> tuple[int, int, int]:
    """Width, height and components of a JPEG 2000 codestream's SIZ, bare or in JP2 boxes."""
    codestream = _jp2_codestream(frame) if frame.startswith(_JP2_SIGNATURE) else frame
    if not codestream.startswith(_J2K_SOC_SIZ) or len(codestream) < 42:
        raise _invalid("DICOM JPEG 2000 frame has no readable SIZ header")
    x, y, x_offset, y_offset = struct.unpack_from(">IIII", codestream, 8)
    (components,) = struct.unpack_from(">H", codestream, 40)
    return x - x_offset, y - y_offset, components


def _jp2_codestream(frame: bytes) -> bytes:
    pos = 0
    while pos + 8 <= len(frame):
        length, kind = struct.unpack_from(">I4s", frame, pos)
        header = 8
        if length == 1 and pos + 16 <= len(frame):
            (length,) = struct.unpack_from(">Q", frame, pos + 8)
            header = 16
        if kind == b"jp2c":
            return frame[pos + header :]
        if length < header:
            break
        pos += length
    raise _invalid("DICOM JPEG 2000 frame has no codestream box")


def _check_rle(frame: bytes, plane: int) -> None:
    """Count each segment's decoded length the way pydicom's RLE decoder slices them."""
    if len(frame) < 64:
        raise _invalid("DICOM RLE frame is shorter than its header")
    count, *offsets = struct.unpack_from("<16I", frame)
    if count > 15:
        raise _invalid(f"DICOM RLE header declares {count} segments")
    for start, end in pairwise([*offsets[:count], len(frame)]):
        if _rle_length(frame, start, min(end, len(frame)), 2 * plane) > 2 * plane:
            raise _invalid("DICOM RLE segment decodes to more than twice its plane")


def _rle_length(data: bytes, pos: int, end: int, stop: int) -> int:
    """Bytes that ``data[pos:end]`` decodes to, counting no further than past ``stop``."""
    length = 0
    while pos < end and length <= stop:
        header = data[pos]
        if header > 128:  # the next byte, 257 - header times
            length += 257 - header
            pos += 2
        elif header < 128:  # the next header + 1 bytes, literally
            length += header + 1
            pos += header + 2
        else:
            pos += 1
    return length
