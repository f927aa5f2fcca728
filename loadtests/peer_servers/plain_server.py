"""Peer ``plain``: one uvicorn process, FastAPI, ONNX Runtime called inline, no batching.

The Open Inference Protocol's ``POST /v2/models/{name}/infer`` with the binary-data
extension (or JSON ``data``), answered as v2 JSON. Like the naive FastAPI peer of the
earlier peer run, the endpoint blocks the event loop while the model runs.
Run: ``uvicorn loadtests.peer_servers.plain_server:app`` with ``PEER_*`` set (``common``).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from loadtests.peer_servers.common import MODEL_NAME, BadRequest, Model

app = FastAPI()
model = Model()


@app.get("/v2/health/ready")
async def ready() -> dict:
    return {"ready": True}


@app.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request) -> JSONResponse:
    if name != MODEL_NAME:
        return JSONResponse({"error": f"unknown model {name}"}, status_code=404)
    body = await request.body()
    try:
        x = model.parse(body, request.headers.get("inference-header-content-length"))
    except BadRequest as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(model.answer(model.run(x)))
