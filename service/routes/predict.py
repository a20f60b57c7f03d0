"""POST /predict and /predict/batch: images in whatever form the client sends them."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service import tracing
from service.deps import Authorized, FetcherDep, MinConfidenceDep, PredictorDep, SettingsDep, TopKDep
from service.fetch import ImageURL, resolve_items
from service.schemas import ERROR_RESPONSES, ErrorBody, Prediction, batch_request_body, predict_request_body
from service.upload import read_many_images, read_one_image

router = APIRouter(tags=["predict"], dependencies=[Authorized], responses=ERROR_RESPONSES)


@router.post("/predict", openapi_extra=predict_request_body())
async def predict(
    request: Request,
    predictor: PredictorDep,
    settings: SettingsDep,
    top_k: TopKDep,
    min_confidence: MinConfidenceDep,
    fetcher: FetcherDep,
) -> Prediction:
    """Classify one image: multipart (field `file` or any one file field), raw bytes, JSON base64 or JSON `url`.

    The format is read from the bytes, never from the file name or declared type.
    """
    with tracing.span("receive"):  # the body, and the image behind a URL
        data = await read_one_image(request, settings.max_upload_bytes)
        if isinstance(data, ImageURL):
            data = await fetcher.fetch(data.url)
    answer = await predictor.predict(data, top_k, min_confidence)
    tracing.responding()
    return answer


@router.post("/predict/batch", openapi_extra=batch_request_body())
async def predict_batch(
    request: Request,
    predictor: PredictorDep,
    settings: SettingsDep,
    top_k: TopKDep,
    min_confidence: MinConfidenceDep,
    fetcher: FetcherDep,
) -> list[Prediction | ErrorBody]:
    """Classify several images (multipart files or JSON `images`, each base64 or `{"url": ...}`); answers in order.

    A bad item answers with its own `{"error": ...}` instead of failing the batch.
    """
    with tracing.span("receive"):  # the body, and any URL it names
        items = await resolve_items(
            await read_many_images(request, settings.max_upload_bytes, settings.max_batch_items), fetcher
        )
    answers = await predictor.predict_many(items, top_k, min_confidence)
    tracing.responding()
    return answers
