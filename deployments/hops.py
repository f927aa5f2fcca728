from __future__ import annotations

from functools import cached_property

from ray.serve.handle import DeploymentHandle

LARGE_PAYLOAD_BYTES = 1024 * 1024
"""Above this a message goes through Ray's object store instead of inline.

NOTE: in throughput-optimized mode handle calls travel over gRPC, whose messages
are capped at 4 MiB by default; a 2048x2048 float32 image is 16 MiB, and a
coalesced batch of 16 preprocessed 256x256 images is just over 4 MiB.
"""


class Hop:
    """A deployment handle that picks inline or by-reference transport by payload size."""

    def __init__(self, handle: DeploymentHandle) -> None:
        self.inline = handle

    @cached_property
    def by_reference(self) -> DeploymentHandle:
        return self.inline.options(_by_reference=True)

    def __call__(self, payload_bytes: int) -> DeploymentHandle:
        return self.by_reference if payload_bytes > LARGE_PAYLOAD_BYTES else self.inline
