from __future__ import annotations

import pytest

from serve_app.codecs.limits import check_dimensions
from serve_app.errors import InvalidInput
from serve_app.settings import LimitsSettings

LIMITS = LimitsSettings(min_side=64, max_side=2048)


@pytest.mark.parametrize(("width", "height"), [(64, 64), (2048, 2048), (64, 2048), (500, 300)])
def test_sizes_within_bounds_pass(width: int, height: int) -> None:
    check_dimensions(width, height, LIMITS)  # no exception


@pytest.mark.parametrize(
    ("width", "height", "dimension", "value"),
    [
        (63, 100, "width", 63),
        (2049, 100, "width", 2049),
        (100, 63, "height", 63),
        (100, 2049, "height", 2049),
        (0, 100, "width", 0),
        (-5, 100, "width", -5),
    ],
)
def test_out_of_bounds_names_the_dimension(
    width: int, height: int, dimension: str, value: int
) -> None:
    with pytest.raises(InvalidInput) as info:
        check_dimensions(width, height, LIMITS)

    assert (info.value.field, info.value.rule) == (dimension, "range")
    assert f"{dimension} {value} is outside 64..2048" in info.value.detail


def test_given_field_is_blamed() -> None:
    with pytest.raises(InvalidInput) as info:
        check_dimensions(100, 5000, LIMITS, field="file")

    assert (info.value.field, info.value.rule) == ("file", "range")
    assert "height" in info.value.detail


def test_custom_limits_are_used() -> None:
    limits = LimitsSettings(min_side=1, max_side=8)

    check_dimensions(1, 8, limits)
    with pytest.raises(InvalidInput):
        check_dimensions(9, 8, limits)
