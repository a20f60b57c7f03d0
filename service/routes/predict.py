"""POST /predict: one image in whatever form the client sends it."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from service.deps import ModelDep, SettingsDep
from service.errors import ApiError
from service.imaging import DecodeOptions
from service.predictor import predict_one

router = APIRouter(tags=["predict"])


async def read_image_bytes(request: Request) -> bytes:
    """The image from a multipart file field or a raw body."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        files = [v for v in form.values() if hasattr(v, "read")]
        if len(files) != 1:
            raise ApiError(400, "missing_file", "send exactly one file, e.g. -F 'file=@photo.jpg'")
        return await files[0].read()
    return await request.body()


@router.post("/predict")
async def predict(request: Request, model: ModelDep, settings: SettingsDep, top_k: int = Query(3, ge=1)) -> dict:
    """Classify one image: multipart field `file`, or the raw bytes as the body."""
    if top_k > len(model.contract.labels):
        raise ApiError(422, "invalid_parameters", f"top_k must be at most {len(model.contract.labels)}")
    data = await read_image_bytes(request)
    options = DecodeOptions(max_pixels=settings.max_pixels)
    return await run_in_threadpool(predict_one, model, data, top_k, options)
