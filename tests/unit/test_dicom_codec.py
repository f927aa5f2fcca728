"""DICOM codec against the real sample files that ship inside pydicom."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, pixel_array
from pydicom.sequence import Sequence

from serve_app.codecs.dicom import decode_dicom
from serve_app.codecs.types import ImageFormat
from serve_app.errors import InvalidInput, MedAIError, UnsupportedMediaType
from serve_app.settings import LimitsSettings

LIMITS = LimitsSettings()
MR_SAME_PIXELS = [
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
]
# The same 100x100 colour picture through different colour spaces and codecs.
RGB_SAME_PICTURE = [
    ("SC_rgb_jpeg_gdcm.dcm", 0.0),  # lossless JPEG, RGB
    ("SC_ybr_full_422_uncompressed.dcm", 0.03),  # native YBR_FULL_422
    ("SC_rgb_jpeg_dcmtk.dcm", 0.03),  # baseline JPEG, YBR_FULL
    ("SC_rgb_dcmtk_+eb+cy+n2.dcm", 0.03),  # baseline JPEG, YBR_FULL
]
PATIENT_NAME, PATIENT_ID = "Doe^Jane", "PID-0042-SECRET"


def sample_path(name: str) -> str:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom sample {name} is not installed")
    return str(path)


def sample(name: str) -> bytes:
    return Path(sample_path(name)).read_bytes()


def dataset(name: str) -> Dataset:
    return pydicom.dcmread(sample_path(name))


def to_bytes(ds: Dataset, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, **kwargs)
    return buffer.getvalue()


def decode(name: str, frame: int | None = None) -> np.ndarray:
    return decode_dicom(sample(name), LIMITS, frame).pixels


def mr_small_result() -> np.ndarray:
    return decode("MR_small.dcm")


# --- greyscale -------------------------------------------------------------------------


def test_ct_applies_rescale_and_spans_zero_to_one() -> None:
    image = decode_dicom(sample("CT_small.dcm"), LIMITS)

    assert image.pixels.shape == (128, 128, 1)
    assert image.pixels.dtype == np.float32
    assert (image.format, image.frame, image.frames, image.modality) == (
        ImageFormat.DICOM,
        0,
        1,
        "CT",
    )
    # No VOI in the file: the frame's own min..max becomes 0..1.
    assert image.pixels.min() == 0.0
    assert image.pixels.max() == 1.0
    assert len(np.unique(image.pixels)) > 100


def test_ct_normalisation_follows_hounsfield_order() -> None:
    ds = dataset("CT_small.dcm")
    hounsfield = apply_modality_lut(pixel_array(ds), ds)
    expected = (hounsfield - hounsfield.min()) / (hounsfield.max() - hounsfield.min())

    np.testing.assert_allclose(decode("CT_small.dcm")[..., 0], expected, atol=1e-6)


def test_mr_uses_its_window() -> None:
    ds = dataset("MR_small.dcm")
    assert (ds.WindowCenter, ds.WindowWidth) == (600, 1600)
    stored = pixel_array(ds).astype(float)
    # DICOM PS3.3 C.11.2.1.2.1 LINEAR window, scaled to 0..1.
    expected = np.clip((stored - (600 - 0.5)) / (1600 - 1) + 0.5, 0.0, 1.0)

    pixels = mr_small_result()

    assert pixels.shape == (64, 64, 1)
    assert pixels.dtype == np.float32
    np.testing.assert_allclose(pixels[..., 0], expected, atol=1e-6)
    assert pixels.max() == 1.0 and pixels.min() > 0.0


@pytest.mark.parametrize("name", MR_SAME_PIXELS)
def test_every_transfer_syntax_gives_the_same_pixels(name: str) -> None:
    np.testing.assert_allclose(decode(name), mr_small_result(), atol=1e-6)


def test_file_without_preamble_decodes_the_same() -> None:
    data = sample("MR_small.dcm")
    assert data[128:132] == b"DICM"

    np.testing.assert_array_equal(decode_dicom(data[132:], LIMITS).pixels, mr_small_result())


def test_bare_dataset_without_file_meta_decodes_the_same() -> None:
    ds = dataset("MR_small.dcm")
    del ds.file_meta
    ds.preamble = None
    data = to_bytes(ds, implicit_vr=True, little_endian=True, enforce_file_format=False)
    assert data.startswith(b"\x08\x00\x08\x00")  # straight into (0008,0008), no DICM

    np.testing.assert_array_equal(decode_dicom(data, LIMITS).pixels, mr_small_result())


def test_monochrome1_is_inverted() -> None:
    ds = dataset("MR_small.dcm")
    ds.PhotometricInterpretation = "MONOCHROME1"

    inverted = decode_dicom(to_bytes(ds), LIMITS).pixels

    np.testing.assert_allclose(inverted, 1.0 - mr_small_result(), atol=1e-6)


def window_ct(center: object, width: object) -> tuple[np.ndarray, np.ndarray]:
    ds = dataset("CT_small.dcm")
    hounsfield = apply_modality_lut(pixel_array(ds), ds)
    ds.WindowCenter, ds.WindowWidth = center, width
    return decode_dicom(to_bytes(ds), LIMITS).pixels[..., 0], hounsfield


def test_window_clips_to_zero_and_one_at_its_edges() -> None:
    ds = dataset("CT_small.dcm")
    hounsfield = apply_modality_lut(pixel_array(ds), ds)
    low, high = np.percentile(hounsfield, [25, 75])
    center, width = round((low + high) / 2), round(high - low)

    pixels, hounsfield = window_ct(center, width)

    below = hounsfield <= center - 0.5 - (width - 1) / 2
    above = hounsfield > center - 0.5 + (width - 1) / 2
    assert below.any() and above.any()
    assert np.all(pixels[below] == 0.0)
    assert np.all(pixels[above] == 1.0)
    inside = pixels[~below & ~above]
    assert inside.size and np.all((inside > 0.0) & (inside < 1.0))
    # Monotonic inside the window: brighter tissue stays brighter.
    order = np.argsort(hounsfield[~below & ~above])
    assert np.all(np.diff(inside[order]) >= 0)


def test_first_of_several_windows_is_used() -> None:
    first_only, _ = window_ct(40, 400)
    first_of_two, _ = window_ct([40, 3000], [400, 10])

    np.testing.assert_array_equal(first_of_two, first_only)


def test_sigmoid_window_is_half_at_its_center() -> None:
    ds = dataset("CT_small.dcm")
    hounsfield = apply_modality_lut(pixel_array(ds), ds)
    center = float(np.percentile(hounsfield, 50, method="nearest"))
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = center, 200, "SIGMOID"

    pixels = decode_dicom(to_bytes(ds), LIMITS).pixels[..., 0]

    assert pixels.min() >= 0.0 and pixels.max() <= 1.0
    np.testing.assert_allclose(pixels[hounsfield == center], 0.5, atol=1e-6)
    order = np.argsort(hounsfield, axis=None)
    assert np.all(np.diff(pixels.ravel()[order]) >= 0)


def test_voi_lut_is_preferred_and_scaled_by_the_bits_it_uses() -> None:
    ds = dataset("MR_small.dcm")  # also has a window, which the LUT overrides
    stored = pixel_array(ds)
    low, high = int(stored.min()), int(stored.max())
    # A 12-bit ramp in a LUT whose descriptor declares 16 bits, as many scanners write.
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [high - low + 1, low, 16])
    ramp = np.rint(np.linspace(0, 4095, high - low + 1)).astype("<u2")
    item.add_new("LUTData", "OW", ramp.tobytes())
    ds.VOILUTSequence = Sequence([item])

    pixels = decode_dicom(to_bytes(ds), LIMITS).pixels[..., 0]

    np.testing.assert_allclose(pixels, (stored - low) / (high - low), atol=1 / 4095)
    assert (pixels.min(), pixels.max()) == (0.0, 1.0)


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the bad input
def test_zero_number_of_frames_means_one() -> None:
    ds = dataset("MR_small.dcm")
    ds.NumberOfFrames = 0

    image = decode_dicom(to_bytes(ds), LIMITS)

    assert (image.frame, image.frames) == (0, 1)
    np.testing.assert_array_equal(image.pixels, mr_small_result())


def test_constant_image_maps_to_zero() -> None:
    ds = dataset("CT_small.dcm")
    ds.PixelData = np.full((128, 128), 700, dtype="<i2").tobytes()

    pixels = decode_dicom(to_bytes(ds), LIMITS).pixels

    assert pixels.shape == (128, 128, 1)
    assert not pixels.any()


@pytest.mark.parametrize("name", ["JPEG2000.dcm", "JPGExtended.dcm"])
def test_tall_nuclear_medicine_images_decode(name: str) -> None:
    image = decode_dicom(sample(name), LIMITS)

    assert image.pixels.shape == (1024, 256, 1)
    assert image.modality == "NM"
    assert image.pixels.min() == 0.0
    assert image.pixels.max() == 1.0


def test_deflated_transfer_syntax_decodes() -> None:
    pixels = decode("image_dfl.dcm")

    assert pixels.shape == (512, 512, 1)
    assert pixels.min() == 0.0
    assert pixels.max() == 1.0


# --- colour ----------------------------------------------------------------------------


def test_rgb_is_scaled_by_bits_stored() -> None:
    expected = pixel_array(dataset("SC_rgb_rle.dcm")) / 255.0

    pixels = decode("SC_rgb_rle.dcm")

    assert pixels.shape == (100, 100, 3)
    assert pixels.dtype == np.float32
    np.testing.assert_allclose(pixels, expected, atol=1e-6)


@pytest.mark.parametrize(("name", "mean_error"), RGB_SAME_PICTURE)
def test_ybr_and_jpeg_colour_come_back_as_rgb(name: str, mean_error: float) -> None:
    reference = decode("SC_rgb_rle.dcm")

    pixels = decode(name)

    assert pixels.shape == (100, 100, 3)
    # Mean error, as lossy JPEG blurs the sharp colour bars of this picture.
    assert np.abs(pixels - reference).mean() <= mean_error + 1e-6
    assert np.abs(pixels - reference).max() <= 0.05


def test_large_rgb_file_decodes() -> None:
    image = decode_dicom(sample("examples_rgb_color.dcm"), LIMITS)

    assert image.pixels.shape == (240, 320, 3)
    assert image.modality == "US"
    assert 0.0 <= image.pixels.min() < image.pixels.max() <= 1.0


def test_jpeg_2000_reversible_colour_decodes_to_rgb() -> None:
    pixels = decode("GDCMJ2K_TextGBR.dcm")

    assert pixels.shape == (400, 400, 3)
    # A colour picture, not three copies of one grey channel.
    assert not np.array_equal(pixels[..., 0], pixels[..., 1])


def test_palette_colour_is_expanded_to_rgb() -> None:
    ds = dataset("examples_palette.dcm")
    indices = pixel_array(ds)
    assert ds.RedPaletteColorLookupTableDescriptor[2] == 16
    red_lut = np.frombuffer(ds.RedPaletteColorLookupTableData, dtype="<u2")

    pixels = decode("examples_palette.dcm")

    assert pixels.shape == (350, 800, 3)
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0
    assert not np.array_equal(pixels[..., 0], pixels[..., 2])
    first = ds.RedPaletteColorLookupTableDescriptor[1]
    np.testing.assert_allclose(
        pixels[..., 0], red_lut[np.asarray(indices, dtype=int) - first] / 65535.0, atol=1e-6
    )


# --- frames ----------------------------------------------------------------------------


def test_two_frames_default_to_the_middle_one() -> None:
    single = decode("SC_rgb_rle.dcm")

    default = decode_dicom(sample("SC_rgb_rle_2frame.dcm"), LIMITS)
    first = decode_dicom(sample("SC_rgb_rle_2frame.dcm"), LIMITS, frame=0)

    assert (default.frame, default.frames) == (1, 2)
    assert (first.frame, first.frames) == (0, 2)
    # pydicom's second frame is the first one inverted.
    np.testing.assert_allclose(first.pixels, single, atol=1e-6)
    np.testing.assert_allclose(default.pixels, 1.0 - single, atol=1e-6)


@pytest.mark.parametrize("frame", [2, -1, 99])
def test_frame_out_of_range_is_rejected(frame: int) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_dicom(sample("SC_rgb_rle_2frame.dcm"), LIMITS, frame=frame)

    assert (raised.value.field, raised.value.rule) == ("frame", "range")
    assert "0..1" in raised.value.detail


def test_thirty_frame_ybr_jpeg_uses_frame_fifteen() -> None:
    all_frames = pixel_array(dataset("examples_ybr_color.dcm"))

    image = decode_dicom(sample("examples_ybr_color.dcm"), LIMITS)

    assert (image.frame, image.frames) == (15, 30)
    assert image.pixels.shape == (240, 320, 3)
    np.testing.assert_allclose(image.pixels, all_frames[15] / 255.0, atol=1e-6)
    assert not np.allclose(image.pixels, all_frames[0] / 255.0)


def test_single_frame_rejects_any_other_frame() -> None:
    assert decode_dicom(sample("MR_small.dcm"), LIMITS, frame=0).frame == 0
    with pytest.raises(InvalidInput) as raised:
        decode_dicom(sample("MR_small.dcm"), LIMITS, frame=1)
    assert raised.value.field == "frame"


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the bad input
def test_malformed_number_of_frames_is_invalid_input() -> None:
    ds = dataset("MR_small.dcm")
    ds.NumberOfFrames = 7
    element = b"\x28\x00\x08\x00IS\x02\x007 "
    data = to_bytes(ds)
    assert data.count(element) == 1

    with pytest.raises(InvalidInput) as raised:
        decode_dicom(data.replace(element, b"\x28\x00\x08\x00IS\x02\x00x "), LIMITS)

    assert (raised.value.field, raised.value.rule) == ("file", "dicom")
    assert "NumberOfFrames" in raised.value.detail


# --- limits ----------------------------------------------------------------------------


def test_smallest_side_passes_at_the_default_minimum() -> None:
    assert LIMITS.min_side == 64
    assert decode_dicom(sample("MR_small.dcm"), LIMITS).pixels.shape == (64, 64, 1)


@pytest.mark.parametrize(
    "limits", [LimitsSettings(min_side=65), LimitsSettings(max_side=63)], ids=["min", "max"]
)
def test_dimensions_out_of_limits_are_rejected(limits: LimitsSettings) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_dicom(sample("MR_small.dcm"), limits)

    assert (raised.value.field, raised.value.rule) == ("file", "range")


def test_dimensions_are_checked_before_pixels_are_decoded() -> None:
    data = sample("MR_truncated.dcm")
    with pytest.raises(InvalidInput) as truncated:
        decode_dicom(data, LIMITS)
    assert truncated.value.rule == "dicom"

    with pytest.raises(InvalidInput) as raised:
        decode_dicom(data, LimitsSettings(min_side=65))

    assert (raised.value.field, raised.value.rule) == ("file", "range")


# --- rejections ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a dicom file at all" * 10,
        b"\x89PNG\r\n\x1a\n" + bytes(200),
        b"\0" * 128 + b"DICM" + bytes(range(256)) * 8,
        b"\0" * 128 + b"DICM" + np.random.default_rng(7).bytes(4096),
    ],
    ids=["empty", "text", "png", "dicm-then-pattern", "dicm-then-random"],
)
def test_bytes_that_are_not_dicom_are_invalid_input(data: bytes) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_dicom(data, LIMITS)

    assert raised.value.field == "file"
    assert raised.value.rule in ("dicom", "dicom-pixel-data")


def test_truncated_native_pixel_data_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_dicom(sample("MR_truncated.dcm"), LIMITS)

    assert raised.value.detail == "DICOM pixel data is truncated"
    assert (raised.value.field, raised.value.rule) == ("file", "dicom")


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the bad input
@pytest.mark.parametrize(
    "name", ["MR_small.dcm", "MR_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm", "JPGExtended.dcm"]
)
def test_files_cut_anywhere_raise_only_our_errors(name: str) -> None:
    ds = dataset(name)
    if "DataSetTrailingPadding" in ds:
        del ds.DataSetTrailingPadding  # padding after the pixels can be cut harmlessly
    data = to_bytes(ds)
    # Losing only the 4-byte length of the final sequence delimiter still decodes.
    ends = [*range(0, len(data) - 4, 29), *range(len(data) - 40, len(data) - 4)]
    for end in ends:
        with pytest.raises(InvalidInput):
            decode_dicom(data[:end], LIMITS)


def test_dataset_without_pixel_data_is_rejected() -> None:
    ds = dataset("MR_small.dcm")
    del ds.PixelData

    with pytest.raises(InvalidInput) as raised:
        decode_dicom(to_bytes(ds), LIMITS)

    assert (raised.value.field, raised.value.rule) == ("file", "dicom-pixel-data")


def test_missing_rows_is_invalid_input() -> None:
    ds = dataset("MR_small.dcm")
    del ds.Rows

    with pytest.raises(InvalidInput) as raised:
        decode_dicom(to_bytes(ds), LIMITS)

    assert "Rows" in raised.value.detail


def relabelled(name: str, syntax: str) -> bytes:
    """``name`` with its transfer syntax replaced by ``syntax``, pixels untouched.

    pydicom 3.0.2 refuses to write a DICOM syntax it does not know (JPEG XL), so
    write a private placeholder of the same length and patch the bytes.
    """
    ds = dataset(name)
    placeholder = "2." + "9" * (len(syntax) - 2)
    ds.file_meta.TransferSyntaxUID = placeholder
    data = to_bytes(ds, implicit_vr=False, little_endian=True)
    assert data.count(placeholder.encode()) == 1
    return data.replace(placeholder.encode(), syntax.encode())


@pytest.mark.parametrize(
    ("syntax", "named"),
    [
        ("1.2.840.10008.1.2.4.110", "1.2.840.10008.1.2.4.110"),
        ("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile"),
        ("1.2.826.0.1.3680043.2.1143.999", "1.2.826.0.1.3680043.2.1143.999"),
    ],
    ids=["jpeg-xl", "mpeg2", "private"],
)
def test_transfer_syntax_without_decoder_is_unsupported(syntax: str, named: str) -> None:
    with pytest.raises(UnsupportedMediaType) as raised:
        decode_dicom(relabelled("MR_small_RLE.dcm", syntax), LIMITS)

    assert (raised.value.field, raised.value.rule) == ("file", "transfer-syntax")
    assert named in raised.value.detail


def test_unsupported_photometric_interpretation() -> None:
    ds = dataset("SC_rgb_rle.dcm")
    ds.PhotometricInterpretation = "YBR_PARTIAL_420"

    with pytest.raises(UnsupportedMediaType) as raised:
        decode_dicom(to_bytes(ds), LIMITS)

    assert raised.value.rule == "photometric-interpretation"
    assert "YBR_PARTIAL_420" in raised.value.detail


def test_four_samples_per_pixel_is_unsupported() -> None:
    ds = dataset("SC_rgb_rle.dcm")
    ds.SamplesPerPixel = 4

    with pytest.raises(UnsupportedMediaType) as raised:
        decode_dicom(to_bytes(ds), LIMITS)

    assert raised.value.rule == "dicom-samples"


def test_unsupported_bit_depth() -> None:
    ds = dataset("MR_small.dcm")
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 12, 12, 11

    with pytest.raises(UnsupportedMediaType) as raised:
        decode_dicom(to_bytes(ds), LIMITS)

    assert raised.value.rule == "dicom-bits"


def test_photometric_and_samples_must_agree() -> None:
    ds = dataset("MR_small.dcm")
    ds.PhotometricInterpretation = "RGB"

    with pytest.raises(InvalidInput) as raised:
        decode_dicom(to_bytes(ds), LIMITS)

    assert raised.value.rule == "dicom"


def test_invalid_window_width_is_invalid_input() -> None:
    ds = dataset("MR_small.dcm")
    ds.WindowWidth = 0

    with pytest.raises(InvalidInput) as raised:
        decode_dicom(to_bytes(ds), LIMITS)

    assert raised.value.rule == "dicom"


# --- privacy ---------------------------------------------------------------------------


def with_patient(mutate: Callable[[Dataset], None]) -> bytes:
    ds = dataset("MR_small_RLE.dcm")
    ds.PatientName, ds.PatientID = PATIENT_NAME, PATIENT_ID
    mutate(ds)
    return to_bytes(ds)


def _set(keyword: str, value: object) -> Callable[[Dataset], None]:
    return lambda ds: setattr(ds, keyword, value)


def _delete_pixels(ds: Dataset) -> None:
    del ds.PixelData


def _truncate_pixels(ds: Dataset) -> None:
    ds.PixelData = ds.PixelData[:600]


def _no_decoder(ds: Dataset) -> None:
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no decoder


@pytest.mark.parametrize(
    ("mutate", "limits", "frame"),
    [
        (_delete_pixels, LIMITS, None),
        (_truncate_pixels, LIMITS, None),
        (_no_decoder, LIMITS, None),
        (_set("PhotometricInterpretation", "CMYK"), LIMITS, None),
        (_set("WindowWidth", 0), LIMITS, None),
        (lambda ds: None, LimitsSettings(min_side=65), None),
        (lambda ds: None, LIMITS, 5),
    ],
    ids=["no-pixels", "truncated", "no-decoder", "photometric", "window", "limits", "frame"],
)
def test_errors_never_carry_patient_data(
    mutate: Callable[[Dataset], None], limits: LimitsSettings, frame: int | None
) -> None:
    with pytest.raises(MedAIError) as raised:
        decode_dicom(with_patient(mutate), limits, frame)

    rendered = repr(raised.value.to_problem()) + str(raised.value)
    for secret in (PATIENT_NAME, PATIENT_ID, "Doe", "Jane"):
        assert secret not in rendered
    assert isinstance(raised.value, (InvalidInput, UnsupportedMediaType))
