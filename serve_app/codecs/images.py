"""PNG and JPEG through Pillow; Pillow's errors become ours here and nowhere else."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from serve_app.codecs.limits import check_dimensions
from serve_app.codecs.types import DecodedImage, ImageFormat
from serve_app.errors import InvalidInput, UnsupportedMediaType
from serve_app.settings import LimitsSettings

PIL_FORMATS = {ImageFormat.PNG: "PNG", ImageFormat.JPEG: "JPEG"}

GREY_MODES = {"1", "L", "LA"}
WIDE_GREY_MODES = {"I;16", "I;16B", "I;16L", "I"}
"""16-bit grey PNGs open in one of these, depending on the file and Pillow version."""


def decode_image(data: bytes, fmt: ImageFormat, limits: LimitsSettings) -> DecodedImage:
    """Decode a PNG or JPEG to (height, width, 1 or 3) uint8 or uint16 pixels.

    The header is read first and its declared size checked against ``limits``
    before any pixel is decoded; Pillow's decompression-bomb guard stays on.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[PIL_FORMATS[fmt]])
            check_dimensions(image.width, image.height, limits, field="file")
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # NOTE: Pillow checks for bombs inside Image.open, before check_dimensions can run.
        raise InvalidInput(
            f"image is larger than {limits.max_side}x{limits.max_side} pixels",
            field="file",
            rule="range",
        ) from None
    except UnidentifiedImageError:
        raise InvalidInput(
            f"file is not a readable {fmt.value.upper()} image", field="file", rule=fmt.value
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(
            f"{fmt.value.upper()} data is truncated or corrupt", field="file", rule=fmt.value
        ) from exc
    return DecodedImage(pixels=_to_array(image), format=fmt)


def _to_array(image: Image.Image) -> np.ndarray:
    if image.mode in WIDE_GREY_MODES:
        wide = np.asarray(image).astype(np.int64)
        if wide.min() < 0 or wide.max() > 65535:
            raise UnsupportedMediaType(
                "only 8 and 16 bit images are supported", field="file", rule="bit-depth"
            )
        return wide.astype(np.uint16)[:, :, np.newaxis]
    pixels = np.asarray(image.convert("L" if image.mode in GREY_MODES else "RGB"))
    return pixels[:, :, np.newaxis] if pixels.ndim == 2 else pixels


def encode_png(unit: np.ndarray) -> bytes:
    """(height, width, 1 or 3) values in 0..1 as an 8-bit grey or RGB PNG."""
    levels = np.rint(np.clip(unit, 0.0, 1.0) * 255).astype(np.uint8)
    image = Image.fromarray(levels[:, :, 0] if levels.shape[2] == 1 else levels)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
