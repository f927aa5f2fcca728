from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property

import numpy as np
from ray.serve.handle import DeploymentHandle

from serve_app.catalog.spec import ModelSpec

LARGE_PAYLOAD_BYTES = 1024 * 1024
"""Above this a message goes through Ray's object store instead of inline.

NOTE: in throughput-optimized mode handle calls travel over gRPC, whose messages
are capped at 4 MiB by default; a 2048x2048 float32 image is 16 MiB, and a
coalesced batch of 16 preprocessed 256x256 images is just over 4 MiB.
"""


class RunnerCalls:
    """``ModelCall`` over the model runner deployments: a version's tensor to its model's
    runner, inline or by reference by size."""

    def __init__(self, runners: Mapping[str, DeploymentHandle]) -> None:
        self.hops = {name: Hop(handle) for name, handle in runners.items()}

    async def __call__(self, spec: ModelSpec, tensor: np.ndarray) -> np.ndarray:
        return await self.hops[spec.name](tensor.nbytes).infer.remote(tensor, spec.sha256)


class Hop:
    """A deployment handle that picks inline or by-reference transport by payload size."""

    def __init__(self, handle: DeploymentHandle) -> None:
        self.inline = handle

    @cached_property
    def by_reference(self) -> DeploymentHandle:
        return self.inline.options(_by_reference=True)

    def __call__(self, payload_bytes: int) -> DeploymentHandle:
        return self.by_reference if payload_bytes > LARGE_PAYLOAD_BYTES else self.inline
