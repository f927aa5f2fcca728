"""The Open Inference Protocol (KServe v2, Triton's HTTP/REST) on the wire: the one place
its bodies are read and written, the binary-data extension included.

A request is a JSON header, followed (when ``Inference-Header-Content-Length`` says how
long the header is) by the inputs' raw bytes in order, each ``binary_data_size`` long.
Outputs come back as JSON ``data``, or as raw bytes after the JSON header when asked for
with ``binary_data`` (per output) or ``binary_data_output`` (all).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
)

from serve_app.codecs.tensors import (
    Tensor,
    element_count,
    from_binary,
    from_json,
    to_binary,
    to_json_data,
)
from serve_app.errors import InvalidInput, MalformedRequest, PayloadTooLarge

HEADER_LENGTH = "inference-header-content-length"
"""The binary-data extension's header: how many bytes of the body are the JSON header."""
BINARY_SIZE = "binary_data_size"
PATIENT_ID = "patient_id"
MAX_DIMS = 8
MAX_TENSORS = 16

Scalar = StrictBool | StrictInt | StrictFloat | str | None
Parameters = dict[Annotated[str, Field(max_length=128)], Scalar]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputTensor(_Strict):
    name: str = Field(min_length=1, max_length=256)
    shape: list[Annotated[int, Field(ge=0, le=2**40)]] = Field(max_length=MAX_DIMS)
    datatype: str = Field(max_length=16)
    parameters: Parameters | None = Field(None, max_length=16)
    data: Any = None


class RequestedOutput(_Strict):
    name: str = Field(min_length=1, max_length=256)
    parameters: Parameters | None = Field(None, max_length=16)


class InferRequestHeader(_Strict):
    id: str | None = Field(None, max_length=256)
    parameters: Parameters | None = Field(None, max_length=16)
    inputs: list[InputTensor] = Field(min_length=1, max_length=MAX_TENSORS)
    outputs: list[RequestedOutput] | None = Field(None, max_length=MAX_TENSORS)


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    """``-1`` for a dimension of any size."""


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ErrorBody(BaseModel):
    error: str


@dataclass(frozen=True)
class InferCall:
    """A parsed v2 inference request: its inputs, and how each output is to be sent."""

    id: str | None
    inputs: list[Tensor]
    outputs: dict[str, bool] | None
    """Requested output name to whether it goes as binary data; ``None``: every output."""
    binary_by_default: bool
    patient_id: str | None = None
    """The request's ``patient_id`` parameter: pseudonymized before it is stored."""

    def binary(self, name: str) -> bool:
        if self.outputs is not None and name in self.outputs:
            return self.outputs[name]
        return self.binary_by_default


def parse_infer(
    body: bytes, header_length: str | None, max_bytes: int, max_json_bytes: int
) -> InferCall:
    """The request in ``body``; ``header_length`` is the extension's header, if sent.

    The JSON part is held to ``max_json_bytes`` (as ``/infer``'s body is: a JSON list
    costs many times its size while parsed); raw tensor bytes to ``max_bytes``.
    """
    json_part, binary = _split(body, header_length)
    if len(json_part) > max_json_bytes:
        raise PayloadTooLarge(
            f"the JSON part exceeds {max_json_bytes} bytes (limits.max_json_body_bytes);"
            " send tensors as binary data",
            field="body",
            rule="max-size",
        )
    try:
        header = InferRequestHeader.model_validate_json(json_part)
    except ValidationError as exc:
        raise _invalid(exc) from None
    inputs, at = [], 0
    for tensor in header.inputs:
        shape = tuple(tensor.shape)
        element_count(tensor.name, tensor.datatype, shape, max_bytes)  # before allocating
        size = (tensor.parameters or {}).get(BINARY_SIZE)
        if size is None:
            if tensor.data is None:
                raise InvalidInput(
                    f"input {tensor.name}: neither data nor {BINARY_SIZE}",
                    field=f"inputs.{tensor.name}.data",
                    rule="required",
                )
            inputs.append(from_json(tensor.name, tensor.datatype, shape, tensor.data))
            continue
        if tensor.data is not None or not isinstance(size, int) or isinstance(size, bool):
            raise InvalidInput(
                f"input {tensor.name}: {BINARY_SIZE} is a byte count, and there is no data",
                field=f"inputs.{tensor.name}.parameters.{BINARY_SIZE}",
                rule="binary-data",
            )
        if size < 0 or at + size > len(binary):
            raise InvalidInput(
                f"input {tensor.name}: {BINARY_SIZE} {size} runs past the body's binary data",
                field=f"inputs.{tensor.name}.parameters.{BINARY_SIZE}",
                rule="binary-data",
            )
        inputs.append(from_binary(tensor.name, tensor.datatype, shape, binary[at : at + size]))
        at += size
    if at != len(binary):
        raise InvalidInput(
            f"{len(binary) - at} bytes of binary data belong to no input",
            field=f"inputs.parameters.{BINARY_SIZE}",
            rule="binary-data",
        )
    if len({t.name for t in inputs}) != len(inputs):
        raise InvalidInput("inputs are named twice", field="inputs.name", rule="unique")
    requested = None
    if header.outputs is not None:
        requested = {o.name: _flag(o.parameters, "binary_data") for o in header.outputs}
    patient = (header.parameters or {}).get(PATIENT_ID)
    if patient is not None and not (isinstance(patient, str) and 0 < len(patient) <= 128):
        raise InvalidInput(
            f"parameters.{PATIENT_ID} is a string of 1 to 128 characters",
            field=f"parameters.{PATIENT_ID}",
            rule="string",
        )
    default = _flag(header.parameters, "binary_data_output")
    return InferCall(header.id, inputs, requested, default, patient)


def _flag(parameters: dict[str, Any] | None, name: str) -> bool:
    return (parameters or {}).get(name) is True


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
        raise MalformedRequest(
            f"Inference-Header-Content-Length must be a byte count within the body's"
            f" {len(body)} bytes",
            field="inference-header-content-length",
            rule="binary-data",
        )
    length = int(header_length)
    return body[:length], body[length:]


def _invalid(exc: ValidationError) -> InvalidInput | MalformedRequest:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "body"
    if first["type"] in ("json_invalid", "model_type"):
        return MalformedRequest(
            "the request header is not a JSON object", field="body", rule="json"
        )
    return InvalidInput(f"{field}: {first['msg']}", field=field, rule=first["type"])


def encode_infer(
    model_name: str, model_version: str, request_id: str | None, outputs: list[Tensor],
    binary: set[str],
) -> tuple[bytes, dict[str, str]]:  # fmt: skip
    """The response body and its headers: outputs named in ``binary`` as raw bytes after
    the JSON header, the rest as JSON data."""
    described, raw = [], []
    for tensor in outputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
        }
        if tensor.name in binary:
            data = to_binary(tensor)
            entry["parameters"] = {BINARY_SIZE: len(data)}
            raw.append(data)
        else:
            entry["data"] = to_json_data(tensor)
        described.append(entry)
    header: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        header["id"] = request_id
    header["outputs"] = described
    encoded = json.dumps(header, separators=(",", ":")).encode()
    if not raw:
        return encoded, {"content-type": "application/json"}
    return encoded + b"".join(raw), {
        "content-type": "application/octet-stream",
        HEADER_LENGTH: str(len(encoded)),
    }
