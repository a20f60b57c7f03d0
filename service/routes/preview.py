"""POST /preview: the uploaded image as the service decoded it, as a small JPEG any browser can show.

Browsers cannot display HEIC or TIFF; the page asks for this preview when its
own attempt fails. It goes through the same decode rule as /predict (format
from the bytes, EXIF orientation, the model's colour, transparency on white),
so what the person sees is what the model was given, before resizing.
"""

from __future__ import annotations

import io

from fastapi import APIRouter, Request, Response
from PIL import Image
from starlette.concurrency import run_in_threadpool

from core.contract import Color
from core.errors import ImageRejected, UndecodableImage
from core.imaging import DecodeOptions, load_image
from service.deps import Authorized, FetcherDep, ModelDep, SettingsDep
from service.fetch import ImageURL
from service.schemas import ERROR_RESPONSES, predict_request_body
from service.upload import read_one_image

router = APIRouter(tags=["predict"], dependencies=[Authorized], responses=ERROR_RESPONSES)
PREVIEW_SIDE = 512  # longest side of the preview, in pixels


def preview_jpeg(data: bytes, color: Color, options: DecodeOptions) -> bytes:
    try:
        img = load_image(data, color, options)
        img.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.BILINEAR)
    except ImageRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - a decoder broke on these bytes: the client's input, as in /predict
        raise UndecodableImage(f"the image could not be decoded: {type(exc).__name__}: {exc}") from exc
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


@router.post(
    "/preview",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "a JPEG at most 512 px on its longest side"}},
    openapi_extra=predict_request_body(),
)
async def preview(request: Request, model: ModelDep, settings: SettingsDep, fetcher: FetcherDep) -> Response:
    """A downscaled JPEG of the image as decoded for the model (for formats a browser cannot show)."""
    data = await read_one_image(request, settings.max_upload_bytes)
    if isinstance(data, ImageURL):
        data = await fetcher.fetch(data.url)
    options = DecodeOptions(max_pixels=settings.max_pixels)
    jpeg = await run_in_threadpool(preview_jpeg, data, model.contract.input.color, options)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
