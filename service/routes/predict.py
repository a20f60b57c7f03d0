"""POST /predict and /predict/batch: images in whatever form the client sends them."""

from __future__ import annotations

from fastapi import APIRouter, Request

from core.errors import ImageRejected
from service import tracing
from service.deps import Authorized, FetcherDep, MinConfidenceDep, PredictorDep, SettingsDep, TopKDep
from service.fetch import ImageURL, resolve_items
from service.hints import explain_rejection
from service.schemas import (
    ERROR_RESPONSES,
    BatchError,
    BatchItem,
    BatchPrediction,
    ErrorBody,
    Prediction,
    batch_request_body,
    predict_request_body,
)
from service.upload import Upload, media_type, read_many_images, read_one_image

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
    try:
        answer = await predictor.predict(data, top_k, min_confidence)
    except ImageRejected as exc:
        raise explain_rejection(media_type(request), data, exc) from exc
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
) -> list[BatchPrediction | BatchError]:
    """Classify several images (multipart files or JSON `images`, each base64 or `{"url": ...}`); answers in order.

    A bad item answers with its own `{"error": ...}` instead of failing the batch; every
    answer echoes its `item` (index, field name, file name).
    """
    with tracing.span("receive"):  # the body, and any URL it names
        uploads = await read_many_images(request, settings.max_upload_bytes, settings.max_batch_items)
        items = await resolve_items([u.data for u in uploads], fetcher)
    answers = await predictor.predict_many(items, top_k, min_confidence)
    tracing.responding()
    return [_named(answer, i, u) for i, (answer, u) in enumerate(zip(answers, uploads, strict=True))]


def _named(answer: Prediction | ErrorBody, index: int, upload: Upload) -> BatchPrediction | BatchError:
    item = BatchItem(index=index, field=upload.field, filename=upload.filename)
    if isinstance(answer, Prediction):
        return BatchPrediction(**answer.model_dump(), item=item)
    return BatchError(**answer.model_dump(), item=item)
