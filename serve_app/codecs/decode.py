from __future__ import annotations

from serve_app.codecs.dicom import decode_dicom
from serve_app.codecs.images import decode_image
from serve_app.codecs.types import DecodedImage, EncodedImage, ImageFormat
from serve_app.errors import InvalidInput
from serve_app.settings import LimitsSettings


def decode(image: EncodedImage, limits: LimitsSettings) -> DecodedImage:
    """Decode an uploaded file by its sniffed format."""
    if image.format is ImageFormat.DICOM:
        return decode_dicom(image.data, limits, image.frame)
    if image.frame is not None:
        raise InvalidInput("frame applies to DICOM files only", field="frame", rule="dicom-only")
    return decode_image(image.data, image.format, limits)
