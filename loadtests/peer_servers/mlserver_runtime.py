"""Peer ``mlserver``: an MLServer custom runtime around ONNX Runtime.

MLServer serves ``/v2/models/{name}/infer`` itself (v2 JSON only: MLServer 1.7 has no
binary-data extension); its AdaptiveBatcher stacks requests along the first axis
(``max_batch_size`` / ``max_batch_time`` in the model-settings.json ``peers.py`` writes).
"""

from __future__ import annotations

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

from loadtests.peer_servers.common import Model


class PeerRuntime(MLModel):
    async def load(self) -> bool:
        self.model = Model()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(self.model.dtype, copy=False)
        y = self.model.run(x)
        return InferenceResponse(
            model_name=self.name,
            outputs=[NumpyCodec.encode_output(self.model.output_name, y)],
        )
