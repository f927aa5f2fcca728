from __future__ import annotations

import numpy as np
import pytest

from serve_app.runtime.batch import split, stack


def requests(sizes: list[int]) -> list[np.ndarray]:
    """Request i holds rows whose every value is 100*i + row, so rows are all distinct."""
    return [
        np.stack([np.full((2, 3), 100 * i + row, dtype=np.float32) for row in range(size)])
        for i, size in enumerate(sizes)
    ]


@pytest.mark.parametrize("sizes", [[1], [1, 1, 1], [2, 1, 3]])
def test_stack_then_split_gives_each_request_its_rows(sizes: list[int]) -> None:
    tensors = requests(sizes)

    batch, counts = stack(tensors)
    parts = split(batch, counts)

    assert counts == sizes
    assert batch.shape == (sum(sizes), 2, 3)
    assert len(parts) == len(tensors)
    for part, tensor in zip(parts, tensors, strict=True):
        np.testing.assert_array_equal(part, tensor)


def test_stack_keeps_request_order() -> None:
    batch, _ = stack(requests([2, 1, 3]))

    assert batch[:, 0, 0].tolist() == [0, 1, 100, 200, 201, 202]


def test_split_model_outputs_by_request() -> None:
    outputs = np.arange(12, dtype=np.float32).reshape(6, 2)  # one output row per input row

    parts = split(outputs, [2, 1, 3])

    assert [p.tolist() for p in parts] == [
        [[0, 1], [2, 3]],
        [[4, 5]],
        [[6, 7], [8, 9], [10, 11]],
    ]


@pytest.mark.parametrize(("rows", "sizes"), [(5, [2, 1, 3]), (7, [2, 1, 3]), (0, [1])])
def test_split_with_the_wrong_total_raises(rows: int, sizes: list[int]) -> None:
    with pytest.raises(ValueError, match=f"{rows} rows for {sum(sizes)} inputs"):
        split(np.zeros((rows, 2)), sizes)


def test_one_request_is_its_own_batch_and_is_not_copied() -> None:
    (tensor,) = requests([3])

    batch, counts = stack([tensor])

    assert batch is tensor and counts == [3]


def test_split_hands_out_views_not_copies() -> None:
    outputs = np.arange(12, dtype=np.float32).reshape(6, 2)

    assert all(np.shares_memory(part, outputs) for part in split(outputs, [2, 1, 3]))
