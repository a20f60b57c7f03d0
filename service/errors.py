"""Every refusal is ``{"error": {"code", "message", "request_id"}}`` with a status that says what to fix.

Domain errors (``core.errors``) know what went wrong, not how HTTP says it; this
module is the one place that maps them to statuses, and the one handler that
answers every refusal, whether raised by a route, by the decoder or by FastAPI.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import ClassifierError, ImageTooLarge, NotAnImage
from service import request_id
from service.schemas import ErrorBody, ErrorDetail, Refusal, RefusalDetail

log = logging.getLogger("service")


class ApiError(ClassifierError):
    """A refusal decided by the HTTP layer (body size, auth, body shape): it carries its status."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers


class Overloaded(ApiError):
    """A request shed to protect the service: 503 with ``Retry-After``; ``reason`` labels the metric."""

    def __init__(self, reason: str, message: str, retry_after: int = 1) -> None:
        super().__init__(503, "overloaded", message, {"Retry-After": str(max(1, retry_after))})
        self.reason = reason


# Domain errors by class; the most specific class wins. Everything else a client sent is a 400.
_STATUS: dict[type[ClassifierError], int] = {NotAnImage: 415, ImageTooLarge: 413}


def status_of(exc: ClassifierError) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    return next((_STATUS[k] for k in type(exc).__mro__ if k in _STATUS), 400)


def error_body(exc: ClassifierError) -> ErrorBody:
    """The JSON shape of a refusal; batch items use it for their own errors."""
    return ErrorBody(error=ErrorDetail(code=exc.code, message=exc.message))


V2_PREFIX = "/v2"  # the Open Inference Protocol's paths, whose errors are {"error": "<message>"}


def refusal(exc: ClassifierError, request: Request | None = None) -> JSONResponse:
    """The answer to a refused request: its error, with the request id in the body and the header.

    The v2 protocol's paths keep that protocol's shape (the id is in their header only).
    """
    rid = request_id.current_id() or request_id.new_id()
    request_id.note(outcome=exc.code)
    headers = {**(exc.headers if isinstance(exc, ApiError) and exc.headers else {}), request_id.HEADER: rid}
    body: dict = Refusal(error=RefusalDetail(code=exc.code, message=exc.message, request_id=rid)).model_dump()
    if request is not None and (request.url.path + "/").startswith(V2_PREFIX + "/"):
        body = {"error": exc.message}  # what Triton/KServe clients read
    return JSONResponse(body, status_code=status_of(exc), headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Route our errors, FastAPI's validation errors and stray HTTP errors through ``refusal``."""

    @app.exception_handler(ClassifierError)
    async def _refused(request: Request, exc: ClassifierError) -> JSONResponse:
        if isinstance(exc, Overloaded):  # shed inside the route (memory, deadline): counted with the others
            request.app.state.metrics.shed.labels(exc.reason).inc()
        return refusal(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return refusal(ApiError(422, "invalid_parameters", "; ".join(parts) or "invalid request"), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return refusal(ApiError(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None)), request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return refusal(
            ApiError(500, "internal_error", "the server failed on this request; it has been logged"), request
        )
