"""All service settings, read from the environment in one typed place.

Every field is an environment variable of the same name in capitals
(``MAX_UPLOAD_BYTES=1000000``). ``docs/service.md`` lists them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.runtime import cpu_quota


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, protected_namespaces=())

    model_path: Path = Field(Path("artifacts/demo/model.onnx"), description="ONNX file written by export")
    host: str = Field("0.0.0.0", description="interface uvicorn binds (python -m service)")
    port: int = Field(8000, description="port uvicorn listens on (python -m service)")
    api_key: str | None = Field(None, description="when set, /predict* and /v1/model need X-API-Key or a Bearer token")
    max_upload_bytes: int = Field(20 * 1024 * 1024, gt=0, description="largest request body, counted while it streams")
    max_pixels: int = Field(40_000_000, gt=0, description="largest image (width x height), read from the header")
    max_batch_items: int = Field(32, gt=0, description="most images in one /predict/batch request")
    max_batch_size: int = Field(8, gt=0, description="most images in one micro-batched inference")
    batch_wait_ms: float = Field(
        2.0, ge=0, description="longest a micro-batch waits for company, only while other requests are decoding"
    )
    intra_op_threads: int = Field(0, ge=0, description="onnxruntime intra-op threads; 0 = the CPU quota")
    decode_threads: int = Field(
        0, ge=0, description="threads that decode and preprocess; 0 = half the CPU quota (at least 1)"
    )
    ort_spinning: bool = Field(
        False, description="let idle onnxruntime threads spin (burns CPU the decoder needs on small machines)"
    )
    providers: str = Field("CPUExecutionProvider", description="comma-separated onnxruntime execution providers")
    jpeg_draft: bool = Field(False, description="let the JPEG decoder downscale big photos (faster, not bit-exact)")
    cors_origins: str = Field(
        "*", description="comma-separated origins whose pages may call the API; empty = same-origin only"
    )
    default_top_k: int = Field(3, gt=0, description="top_k when the query does not give one (capped at the labels)")
    warmup_rounds: int = Field(2, ge=0, description="dummy inferences at startup before /readyz turns green")
    log_level: str = Field("info", description="log level of the service and uvicorn (debug also logs probes)")

    # Operations (issue 16): log format and optional OpenTelemetry tracing.
    log_format: Literal["auto", "json", "plain"] = Field(
        "auto", description="json: one object per line; plain: for a terminal; auto: plain on a TTY, else json"
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP collector base URL (e.g. http://otel-collector:4318); unset = no tracing"
    )
    otel_service_name: str = Field("image-classifier", description="service.name on exported spans")

    # Answers a client can trust, and images by URL (issue 14).
    min_confidence: float = Field(
        0.0, ge=0, le=1, description='below this confidence the answer is "label": null, "unknown": true (0 = never)'
    )
    url_allowed_hosts: str = Field(
        "",
        description='hosts {"url": ...} may fetch from (comma-separated, *.example.com allowed); empty = URL input off',
    )
    url_allowed_networks: str = Field(
        "", description="private/loopback/link-local networks (CIDR, comma-separated) URL fetches may still reach"
    )
    url_allow_http: bool = Field(False, description="also fetch plain http:// URLs (https only by default)")
    url_connect_timeout_s: float = Field(3.0, gt=0, description="URL fetch: DNS + TCP/TLS connect timeout, seconds")
    url_read_timeout_s: float = Field(10.0, gt=0, description="URL fetch: the whole response must arrive within this")

    @property
    def threads(self) -> int:
        return self.intra_op_threads or cpu_quota()

    @property
    def decoders(self) -> int:
        # Inference already keeps every core busy; decoding costs a few ms per image,
        # so half the quota is plenty and more threads only fight onnxruntime's.
        return self.decode_threads or max(1, cpu_quota() // 2)
