"""Open Inference Protocol v2 (KServe / Seldon): health, metadata and BYTES-tensor inference.

`text` (or `title`) holds one product title per element; optional `description` and `id`
inputs line up with it. Outputs: `category` (path), `category_id` and `confidence`, each of
shape [N] (or [N, top_k] with the `top_k` parameter).
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from .. import __version__
from ..predictions import missing_language, primary_language
from .auth import require_scope
from .deps import registry, require_json
from .problems import ApiProblem
from .routes_v1 import _records, model_ref
from .schemas import (
    InferOutput,
    InferParameters,
    InferRequest,
    InferResponse,
    Live,
    ModelMetadata,
    ModelName,
    ProductIn,
    Ready,
    ServerMetadata,
    TensorMeta,
)
from .serving import ModelRegistry

health_router = APIRouter(prefix="/v2", tags=["inference protocol v2"])
router = APIRouter(
    prefix="/v2", tags=["inference protocol v2"], dependencies=[Depends(require_scope("classify"))]
)
Registry = Annotated[ModelRegistry, Depends(registry)]
OUTPUTS = ("category", "category_id", "confidence")


@health_router.get("", response_model=ServerMetadata, summary="Server metadata")
async def server_metadata() -> ServerMetadata:
    return ServerMetadata(name="taxonomist", version=__version__, extensions=[])


@health_router.get("/health/live", response_model=Live)
async def live() -> Live:
    return Live(live=True)


@health_router.get("/health/ready", response_model=Ready, responses={503: {"model": Ready}})
async def ready(models: Registry) -> Ready | JSONResponse:
    if not models.ready:
        return JSONResponse({"ready": False}, status_code=503)
    return Ready(ready=True)


@health_router.get("/models/{name}/ready", response_model=Ready, responses={503: {"model": Ready}})
async def model_ready(name: ModelName, models: Registry) -> Ready | JSONResponse:
    if name not in models.names():
        raise ApiProblem(404, f"no model named '{name}'")
    if not models.is_served(name):
        return JSONResponse({"ready": False}, status_code=503)
    return Ready(ready=True)


@router.get("/models/{name}", response_model=ModelMetadata, summary="Model metadata")
async def model_metadata(name: ModelName, models: Registry) -> ModelMetadata:
    served = models.get(name)
    return ModelMetadata(
        name=name,
        versions=[served.version] if served.version else [],
        platform="taxonomist",
        inputs=[
            TensorMeta(name="text", datatype="BYTES", shape=[-1]),
            TensorMeta(name="description", datatype="BYTES", shape=[-1]),
            TensorMeta(name="id", datatype="BYTES", shape=[-1]),
        ],
        outputs=[
            TensorMeta(name="category", datatype="BYTES", shape=[-1, -1]),
            TensorMeta(name="category_id", datatype="BYTES", shape=[-1, -1]),
            TensorMeta(name="confidence", datatype="FP32", shape=[-1, -1]),
        ],
    )


def _column(body: InferRequest, name: str, count: int | None) -> list[str] | None:
    found = [i for i in body.inputs if i.name == name]
    if not found:
        return None
    if len(found) > 1:
        raise ApiProblem(400, f"input '{name}' given twice")
    tensor = found[0]
    if math.prod(tensor.shape) != len(tensor.data):
        raise ApiProblem(
            400, f"input '{name}': shape {tensor.shape} does not hold {len(tensor.data)} elements"
        )
    if count is not None and len(tensor.data) != count:
        raise ApiProblem(400, f"input '{name}' has {len(tensor.data)} elements; 'text' has {count}")
    return list(tensor.data)


@router.post(
    "/models/{name}/infer",
    response_model=InferResponse,
    dependencies=[Depends(require_json)],
    summary="Classify BYTES tensors",
)
async def infer(
    name: ModelName, body: InferRequest, request: Request, response: Response, models: Registry
) -> InferResponse:
    served = models.get(name)
    params = body.parameters or InferParameters()
    texts = _column(body, "text", None) or _column(body, "title", None)
    if texts is None:
        raise ApiProblem(400, "no 'text' input: send the product titles as a BYTES tensor")
    descriptions = _column(body, "description", len(texts))
    ids = _column(body, "id", len(texts))
    try:
        products = [
            ProductIn(
                id=ids[i] if ids else None,
                title=text,
                description=descriptions[i] if descriptions else None,
            )
            for i, text in enumerate(texts)
        ]
    except ValueError as exc:
        raise ApiProblem(400, f"bad input element: {exc}") from None
    records, _ = _records(products, served, request, None)
    preds, classifier = await models.batcher(name).submit(records, params.language, params.top_k)
    k = params.top_k
    paths: list[str] = []
    cids: list[str] = []
    confs: list[float] = []
    for pred in preds:
        cands = list(pred.candidates[:k])
        for j in range(k):
            if j < len(cands):
                names = classifier.taxonomy.localized_path(cands[j].category_id, params.language)
                paths.append(" > ".join(names))
                cids.append(cands[j].category_id)
                confs.append(float(cands[j].confidence))
            else:
                paths.append("")
                cids.append("")
                confs.append(0.0)
    shape = [len(preds)] if k == 1 else [len(preds), k]
    wanted = {o.name for o in body.outputs} if body.outputs else set(OUTPUTS)
    unknown = wanted - set(OUTPUTS)
    if unknown:
        raise ApiProblem(400, f"unknown output(s) {sorted(unknown)}; choose from {list(OUTPUTS)}")
    tensors = {
        "category": InferOutput(name="category", datatype="BYTES", shape=shape, data=paths),
        "category_id": InferOutput(name="category_id", datatype="BYTES", shape=shape, data=cids),
        "confidence": InferOutput(name="confidence", datatype="FP32", shape=shape, data=confs),
    }
    ref = model_ref(served, classifier)
    # the tensors have no room for a note: the header says which names came back (v1's
    # classify also says why, in `warnings`)
    missing = missing_language(classifier.taxonomy, params.language)
    response.headers["Content-Language"] = (
        primary_language(classifier.taxonomy) if missing else params.language
    )
    return InferResponse(
        model_name=name,
        model_version=ref.version,
        id=body.id,
        outputs=[tensors[n] for n in OUTPUTS if n in wanted],
    )
