"""Refuse ONNX files that would make ONNX Runtime read other files: external tensor data.

A tensor may say its bytes live in another file (``data_location: EXTERNAL`` with a
``location``). ONNX Runtime resolves that path against the process's working directory
and refuses only absolute paths and ``..``, so a weightless upload naming
``data/dev-secrets/...`` would make the server read its own secrets into a model's
weights and answer them back as outputs. A model here is one self-contained file, so
any external tensor, wherever it hides, refuses the whole file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from google.protobuf.message import DecodeError
from onnx import AttributeProto, GraphProto, ModelProto, SparseTensorProto, TensorProto

from serve_app.catalog.store import TamperedModel
from serve_app.errors import InvalidInput

log = logging.getLogger(__name__)

RULE = "external-data"


def _is_external(tensor: TensorProto) -> bool:
    return tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data) > 0


def _sparse(sparse: SparseTensorProto) -> Iterator[TensorProto]:
    yield sparse.values
    yield sparse.indices


def _attribute_tensors(
    attributes: Iterable[AttributeProto], graphs: list[tuple[str, GraphProto]], where: str
) -> Iterator[tuple[str, TensorProto]]:
    """The tensors an attribute holds; its subgraphs are queued on ``graphs``."""
    for attribute in attributes:
        at = f"{where} attribute {attribute.name[:64]!r}"
        if attribute.HasField("t"):
            yield at, attribute.t
        yield from ((at, t) for t in attribute.tensors)
        if attribute.HasField("sparse_tensor"):
            yield from ((at, t) for t in _sparse(attribute.sparse_tensor))
        for sparse in attribute.sparse_tensors:
            yield from ((at, t) for t in _sparse(sparse))
        if attribute.HasField("g"):
            graphs.append((f"{at} subgraph", attribute.g))
        graphs.extend((f"{at} subgraph", g) for g in attribute.graphs)


def tensors(model: ModelProto) -> Iterator[tuple[str, TensorProto]]:
    """Every tensor of the model, with where it is: graphs and their subgraphs (If, Loop,
    Scan bodies, at any depth), functions, and training graphs ONNX Runtime may read."""
    # NOTE: a worklist, not recursion: an upload's nesting depth is the attacker's choice.
    graphs: list[tuple[str, GraphProto]] = [("graph", model.graph)]
    for info in model.training_info:
        graphs += [("training initialization", info.initialization)]
        graphs += [("training algorithm", info.algorithm)]
    for function in model.functions:
        where = f"function {function.name[:64]!r}"
        yield from _attribute_tensors(function.attribute_proto, graphs, where)
        for node in function.node:
            yield from _attribute_tensors(node.attribute, graphs, f"{where} node")
    while graphs:
        where, graph = graphs.pop()
        yield from ((f"{where} initializer", t) for t in graph.initializer)
        for sparse in graph.sparse_initializer:
            yield from ((f"{where} sparse initializer", t) for t in _sparse(sparse))
        for node in graph.node:
            yield from _attribute_tensors(node.attribute, graphs, f"{where} node")


def external_tensors(model: ModelProto) -> list[str]:
    """Where each tensor that stores its data outside the file is (never its location)."""
    return [where for where, tensor in tensors(model) if _is_external(tensor)]


def parse_model(data: bytes) -> ModelProto:
    """The ONNX file ``data`` parsed (nothing loaded); ``InvalidInput`` (field ``file``,
    rule ``onnx``) if it does not parse."""
    model = ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError):
        raise InvalidInput(
            "file is not an ONNX model (it does not parse)", field="file", rule="onnx"
        ) from None
    return model


def external_data_error(model: ModelProto) -> InvalidInput | None:
    """The refusal (field ``file``, rule ``external-data``) of a model any tensor of which
    stores its data outside the file, naming where the tensor is, never its location."""
    found = external_tensors(model)
    if not found:
        return None
    more = f" and {len(found) - 1} more" if len(found) > 1 else ""
    return InvalidInput(
        f"a tensor ({found[0]}{more}) stores its data outside the model file; "
        "embed every tensor in the file (external data is refused)",
        field="file",
        rule=RULE,
    )


def refuse_external_data(data: bytes) -> None:
    """Raise ``InvalidInput`` (field ``file``, rule ``external-data``) if any tensor of the
    ONNX file ``data`` stores its data outside it; ``onnx`` if it is no ONNX model at all."""
    error = external_data_error(parse_model(data))
    if error is not None:
        raise error


def refuse_stored_external_data(data: bytes, ref: str) -> None:
    """Raise ``TamperedModel`` (field ``model``, rule ``external-data``) if the stored file
    of ``ref`` has external tensors: registered before uploads were checked, it must not
    serve. Logged with the version only, never the path it names."""
    try:
        refuse_external_data(data)
    except InvalidInput as error:
        if error.rule != RULE:
            raise
        log.error("refused %s: its model file reads tensors from other files", ref)
        raise TamperedModel(
            f"model file for {ref} stores tensors outside itself (external data); "
            "it may not serve: register a self-contained file as a new version",
            field="model",
            rule=RULE,
        ) from None
