"""The protocol-neutral inference path: resolve model, decode, preprocess, run, interpret.

The Ray preprocessing deployment and the in-process backend both use it; only
``call_model`` differs (a Serve handle call, or a local ONNX Runtime session).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import numpy as np

from serve_app.codecs.decode import decode
from serve_app.codecs.types import DecodedImage, EncodedImage
from serve_app.errors import NotFound
from serve_app.preprocessing import prepare
from serve_app.registry.spec import ModelSpec
from serve_app.runtime.postprocess import Interpretation, interpret
from serve_app.settings import Settings

ModelCall = Callable[[str, np.ndarray], Awaitable[np.ndarray]]
"""Run one preprocessed (1, ...) tensor through the named model; return its output rows."""


@dataclass(frozen=True)
class Prediction:
    model_name: str
    model_version: str
    labels: list[str]
    interpretation: Interpretation
    frame: int | None = None
    frames: int | None = None


class Pipeline:
    def __init__(self, settings: Settings, specs: Mapping[str, ModelSpec], call_model: ModelCall):
        self.settings = settings
        self.specs = dict(specs)
        self.call_model = call_model

    def resolve(self, ref: str | None) -> ModelSpec:
        """The served spec for ``name`` or ``name:version`` (default model when ``None``)."""
        name, _, version = (ref or self.settings.default_model).partition(":")
        spec = self.specs.get(name)
        if spec is None:
            raise NotFound(f"model {name} is not served", field="model", rule="served")
        if version and version != spec.version:
            raise NotFound(
                f"model {name}:{version} is not served ({name} serves {spec.version})",
                field="model",
                rule="served",
            )
        return spec

    def preprocess(
        self, image: DecodedImage | EncodedImage, spec: ModelSpec
    ) -> tuple[np.ndarray, DecodedImage]:
        decoded = decode(image, self.settings.limits) if isinstance(image, EncodedImage) else image
        return prepare(decoded, spec), decoded

    async def infer(self, image: DecodedImage | EncodedImage, ref: str | None) -> Prediction:
        spec = self.resolve(ref)
        # NOTE: decoding is CPU-bound; off the event loop so other requests keep flowing.
        tensor, decoded = await asyncio.to_thread(self.preprocess, image, spec)
        rows = await self.call_model(spec.name, tensor)
        return Prediction(
            model_name=spec.name,
            model_version=spec.version,
            labels=spec.metadata.labels,
            interpretation=interpret(rows[0], spec.metadata),
            frame=decoded.frame,
            frames=decoded.frames,
        )
