from __future__ import annotations

from serve_app.codecs.dicom import decode_dicom
from serve_app.codecs.images import decode_image
from serve_app.codecs.sandbox import DecoderPool
from serve_app.codecs.types import DecodedImage, EncodedImage, ImageFormat
from serve_app.errors import InvalidInput
from serve_app.settings import DecodingSettings, LimitsSettings


def decode(image: EncodedImage, limits: LimitsSettings) -> DecodedImage:
    """Decode an uploaded file by its sniffed format, in this process."""
    if image.format is ImageFormat.DICOM:
        return decode_dicom(image.data, limits, image.frame)
    if image.frame is not None:
        raise InvalidInput("frame applies to DICOM files only", field="frame", rule="dicom-only")
    return decode_image(image.data, image.format, limits)


class Decoder:
    """Decode uploads: the formats ``decoding.isolated`` names in a ``DecoderPool`` worker,
    the others in this process."""

    def __init__(self, decoding: DecodingSettings, limits: LimitsSettings) -> None:
        self.limits = limits
        self.isolated = {ImageFormat(name) for name in decoding.isolated}
        self.pool = DecoderPool(decoding, limits)

    def __call__(self, image: EncodedImage) -> DecodedImage:
        if image.format in self.isolated:
            return self.pool.decode(image)
        return decode(image, self.limits)
