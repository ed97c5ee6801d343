"""The Open Inference Protocol (KServe v2) over the same model, keys, limits and audit record.

Input: one BYTES tensor named ``description``. Outputs: ``score`` (FP32), ``flagged`` (BOOL) and
``category`` (BYTES). Health and readiness are open, as probes expect; metadata and inference need a
``screening`` key.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from serving import schemas, scoring
from serving.app import ERRORS, ScreeningKey, ServedDep, context_of, run_scoring, unready

router = APIRouter(prefix="/v2", tags=["open inference protocol"])


def _check_name(served: scoring.Served, model_name: str) -> None:
    if model_name != served.info.name:
        raise HTTPException(404, f"no model named {model_name!r}; this server serves {served.info.name!r}")


@router.get("")
async def server_metadata(request: Request) -> dict[str, Any]:
    """Server name, version and protocol extensions."""
    return {"name": "dualscreen", "version": "1", "extensions": []}


@router.get("/health/live")
async def live() -> dict[str, bool]:
    """The server is alive."""
    return {"live": True}


@router.get("/health/ready", responses={503: {"description": "not ready"}})
async def ready(request: Request) -> JSONResponse:
    """A verified model is loaded and the database takes writes."""
    ok = not await unready(request.app)
    return JSONResponse({"ready": ok}, status_code=200 if ok else 503)


@router.get(
    "/models/{model_name}/ready", responses={404: {"model": schemas.Problem}, 503: {"description": "not loaded"}}
)
async def model_ready(model_name: str, request: Request) -> JSONResponse:
    """Whether the named model is loaded."""
    served: scoring.Served | None = request.app.state.served
    if served is None:
        return JSONResponse({"name": model_name, "ready": False}, status_code=503)
    _check_name(served, model_name)
    return JSONResponse({"name": model_name, "ready": True})


V2_ERRORS = {**ERRORS, 404: {"model": schemas.Problem, "description": "no model by that name"}}


@router.get("/models/{model_name}", response_model=schemas.ModelMetadata, responses=V2_ERRORS)
async def model_metadata(model_name: str, key: ScreeningKey, served: ServedDep) -> schemas.ModelMetadata:
    """The model's name, version and tensors."""
    _check_name(served, model_name)
    return schemas.ModelMetadata(
        name=served.info.name,
        versions=[served.info.version],
        platform="dualscreen-flagger",
        inputs=[schemas.TensorSpec(name="description", datatype="BYTES", shape=[-1])],
        outputs=[
            schemas.TensorSpec(name="score", datatype="FP32", shape=[-1]),
            schemas.TensorSpec(name="flagged", datatype="BOOL", shape=[-1]),
            schemas.TensorSpec(name="category", datatype="BYTES", shape=[-1]),
        ],
    )


@router.post("/models/{model_name}/infer", response_model=schemas.InferResponse, responses=V2_ERRORS)
async def infer(
    model_name: str, body: schemas.InferRequest, request: Request, key: ScreeningKey, served: ServedDep
) -> schemas.InferResponse:
    """Score a BYTES tensor of descriptions."""
    _check_name(served, model_name)
    tensor = body.inputs[0]
    if tensor.name != "description":
        raise HTTPException(422, f"inputs[0].name is {tensor.name!r}; send one BYTES input named 'description'")
    if math.prod(tensor.shape) != len(tensor.data) or any(d < 1 for d in tensor.shape):
        raise HTTPException(422, f"inputs[0].shape {tensor.shape} does not match {len(tensor.data)} data elements")
    if any(not d.strip() for d in tensor.data):
        raise HTTPException(422, "inputs[0].data has a blank description; send the goods description as declared")
    items = [schemas.Item(description=d) for d in tensor.data]
    results = await run_scoring(request, served, key, items, explain=False)
    n = len(results)
    return schemas.InferResponse(
        model_name=served.info.name,
        model_version=served.info.version,
        id=body.id or context_of(request)["request_id"],
        outputs=[
            schemas.InferOutput(name="score", shape=[n], datatype="FP32", data=[r.score for r in results]),
            schemas.InferOutput(name="flagged", shape=[n], datatype="BOOL", data=[r.flagged for r in results]),
            schemas.InferOutput(name="category", shape=[n], datatype="BYTES", data=[r.category for r in results]),
        ],
    )
