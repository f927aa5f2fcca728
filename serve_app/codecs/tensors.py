"""Tensors as the Open Inference Protocol (KServe v2) carries them: datatypes, JSON data
and the binary-data extension's bytes, checked before anything is allocated."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from serve_app.errors import InvalidInput, PayloadTooLarge

BYTES = "BYTES"
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
"""The protocol's fixed-size datatypes; ``BYTES`` (length-prefixed strings) besides."""
NAMES: dict[np.dtype, str] = {dtype: name for name, dtype in DATATYPES.items()}
LENGTH = struct.Struct("<I")
"""A ``BYTES`` element's length prefix in binary data: 4 bytes, little-endian."""


def datatype_of(dtype: np.dtype) -> str:
    """The protocol's name of a numpy dtype (an ONNX tensor's)."""
    return NAMES[np.dtype(dtype)]


@dataclass(frozen=True)
class Tensor:
    """One named tensor: a numpy array, or for ``BYTES`` a flat list of byte strings."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray | list[bytes]

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1


def element_count(name: str, datatype: str, shape: Sequence[int], max_bytes: int) -> int:
    """Elements of a declared shape, refused before allocation when its data could not
    fit in ``max_bytes`` (the body limit): a huge shape costs nothing."""
    if datatype != BYTES and datatype not in DATATYPES:
        raise InvalidInput(
            f"input {name}: datatype {datatype!r} is not one of {[*DATATYPES, BYTES]}",
            field=f"inputs.{name}.datatype",
            rule="datatype",
        )
    count = math.prod(shape)  # Python ints: no overflow
    size = DATATYPES[datatype].itemsize if datatype != BYTES else LENGTH.size
    if count * size > max_bytes:
        raise PayloadTooLarge(
            f"input {name}: shape {list(shape)} holds more than the body limit of "
            f"{max_bytes} bytes",
            field=f"inputs.{name}.shape",
            rule="max-size",
        )
    return count


def from_binary(name: str, datatype: str, shape: tuple[int, ...], data: bytes) -> Tensor:
    """A tensor from its binary-data bytes (exactly its elements, nothing more)."""
    field = f"inputs.{name}.parameters.binary_data_size"
    count = math.prod(shape)
    if datatype == BYTES:
        elements = list(_length_prefixed(name, data, field))
        if len(elements) != count:
            raise InvalidInput(
                f"input {name}: {len(elements)} BYTES elements for shape {list(shape)}",
                field=field,
                rule="element-count",
            )
        return Tensor(name, datatype, shape, elements)
    dtype = DATATYPES[datatype]
    if len(data) != count * dtype.itemsize:
        raise InvalidInput(
            f"input {name}: {len(data)} bytes for shape {list(shape)} of {datatype}"
            f" ({count * dtype.itemsize} expected)",
            field=field,
            rule="element-count",
        )
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    if dtype.kind == "b" and not np.isin(np.frombuffer(data, np.uint8), (0, 1)).all():
        raise InvalidInput(f"input {name}: BOOL bytes must be 0 or 1", field=field, rule="bool")
    return Tensor(name, datatype, shape, array)


def _length_prefixed(name: str, data: bytes, field: str) -> Iterator[bytes]:
    view, at = memoryview(data), 0
    while at < len(view):
        if at + LENGTH.size > len(view):
            raise InvalidInput(
                f"input {name}: a BYTES element's length prefix is cut short",
                field=field,
                rule="bytes-element",
            )
        (length,) = LENGTH.unpack_from(view, at)
        at += LENGTH.size
        if at + length > len(view):
            raise InvalidInput(
                f"input {name}: a BYTES element is longer than the data left",
                field=field,
                rule="bytes-element",
            )
        yield bytes(view[at : at + length])
        at += length


def from_json(name: str, datatype: str, shape: tuple[int, ...], data: Any) -> Tensor:
    """A tensor from JSON ``data``: a flat row-major list or nested lists of the shape."""
    field = f"inputs.{name}.data"
    flat = _flatten(data, name, field)
    count = math.prod(shape)
    if len(flat) != count:
        raise InvalidInput(
            f"input {name}: {len(flat)} elements for shape {list(shape)} ({count} expected)",
            field=field,
            rule="element-count",
        )
    if datatype == BYTES:
        if not all(isinstance(v, str) for v in flat):
            raise InvalidInput(
                f"input {name}: BYTES elements in JSON are strings", field=field, rule="datatype"
            )
        return Tensor(name, datatype, shape, [v.encode() for v in flat])
    dtype = DATATYPES[datatype]
    _check_json_values(flat, dtype, name, field)
    try:
        array = np.array(flat, dtype=dtype)
    except OverflowError:
        raise InvalidInput(
            f"input {name}: a value is out of {datatype}'s range", field=field, rule="range"
        ) from None
    return Tensor(name, datatype, shape, array.reshape(shape))


def _flatten(data: Any, name: str, field: str) -> list[Any]:
    if not isinstance(data, list):
        raise InvalidInput(f"input {name}: data must be a list", field=field, rule="type")
    if not any(isinstance(v, list) for v in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:  # NOTE: iterative: a deeply nested body cannot exhaust the stack
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def _check_json_values(flat: list[Any], dtype: np.dtype, name: str, field: str) -> None:
    """Values of the datatype's kind: no strings, no booleans for numbers, no floats for
    integers, in range; NaN and infinity are not JSON and never arrive here."""
    if dtype.kind == "b":
        ok = all(isinstance(v, bool) for v in flat)
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        ok = all(
            isinstance(v, int) and not isinstance(v, bool) and info.min <= v <= info.max
            for v in flat
        )
    else:
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat)
        if ok and dtype.itemsize < 8:
            finite = float(np.finfo(dtype).max)
            ok = all(abs(v) <= finite for v in flat)
    if not ok:
        raise InvalidInput(
            f"input {name}: every element must be a {NAMES[dtype]} value",
            field=field,
            rule="datatype",
        )


def to_json_data(tensor: Tensor) -> list[Any]:
    """A tensor's elements as a flat JSON list."""
    if isinstance(tensor.data, list):
        return [v.decode("utf-8", "replace") for v in tensor.data]
    return tensor.data.reshape(-1).tolist()


def to_binary(tensor: Tensor) -> bytes:
    """A tensor's binary-data bytes."""
    if isinstance(tensor.data, list):
        return b"".join(LENGTH.pack(len(v)) + v for v in tensor.data)
    return np.ascontiguousarray(tensor.data).tobytes()
