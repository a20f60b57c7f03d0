"""POST /predict and /predict/batch: images in whatever form the client sends them."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.deps import Authorized, PredictorDep, SettingsDep, TopKDep
from service.schemas import ERROR_RESPONSES, ErrorBody, Prediction, batch_request_body, predict_request_body
from service.upload import read_many_images, read_one_image

router = APIRouter(tags=["predict"], dependencies=[Authorized], responses=ERROR_RESPONSES)


@router.post("/predict", openapi_extra=predict_request_body())
async def predict(request: Request, predictor: PredictorDep, settings: SettingsDep, top_k: TopKDep) -> Prediction:
    """Classify one image: multipart (field `file` or any one file field), raw bytes, or JSON base64.

    The format is read from the bytes, never from the file name or declared type.
    """
    data = await read_one_image(request, settings.max_upload_bytes)
    return await predictor.predict(data, top_k)


@router.post("/predict/batch", openapi_extra=batch_request_body())
async def predict_batch(
    request: Request, predictor: PredictorDep, settings: SettingsDep, top_k: TopKDep
) -> list[Prediction | ErrorBody]:
    """Classify several images (multipart files or JSON `images`); answers in input order.

    A bad item answers with its own `{"error": ...}` instead of failing the batch.
    """
    items = await read_many_images(request, settings.max_upload_bytes, settings.max_batch_items)
    return await predictor.predict_many(items, top_k)
