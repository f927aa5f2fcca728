"""Rescale and window values that are NaN, infinite or overflow never become pixels.

Before the check, a RescaleSlope of NaN decoded to an image of NaN, which the
model answered with NaN and the response schema accepted.
"""

from __future__ import annotations

import numpy as np
import pytest

from serve_app.codecs.dicom import decode_dicom
from serve_app.errors import InvalidInput
from serve_app.settings import LimitsSettings
from tests.dicoms import grey_dicom

LIMITS = LimitsSettings()
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns of bad values


@pytest.mark.parametrize(
    ("scaling", "named"),
    [
        ({"RescaleSlope": "NaN"}, "RescaleSlope"),
        ({"RescaleIntercept": "-inf"}, "RescaleIntercept"),
        ({"RescaleSlope": "1e308"}, "RescaleSlope"),  # finite, but 4095 x 1e308 is not
        ({"WindowCenter": "NaN", "WindowWidth": "400"}, "WindowCenter"),
        ({"WindowCenter": "2048", "WindowWidth": "inf"}, "WindowWidth"),
        ({"WindowCenter": ["2048", "NaN"], "WindowWidth": ["400", "400"]}, "WindowCenter"),
    ],
    ids=["nan-slope", "inf-intercept", "overflowing-slope", "nan-center", "inf-width", "second"],
)
def test_non_finite_scaling_is_refused_naming_the_attribute(scaling, named) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_dicom(grey_dicom(**scaling), LIMITS)

    error = raised.value
    assert (error.status, error.field, error.rule) == (422, "file", "finite")
    assert named in error.detail


@pytest.mark.parametrize(
    "scaling",
    [
        {},
        {"RescaleSlope": "2", "RescaleIntercept": "-1024"},
        {"WindowCenter": "2048", "WindowWidth": "1e308"},
    ],
)
def test_finite_scaling_decodes_to_finite_pixels(scaling) -> None:
    pixels = decode_dicom(grey_dicom(**scaling), LIMITS).pixels

    assert np.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= 1
