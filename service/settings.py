"""All service settings, read from the environment in one typed place.

Every field is an environment variable of the same name in capitals
(``MAX_UPLOAD_BYTES=1000000``). ``docs/service.md`` lists them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
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
    intra_op_threads: int = Field(
        0, ge=0, description="onnxruntime intra-op threads per instance; 0 = sized from the CPU quota"
    )
    decode_threads: int = Field(0, ge=0, description="threads that decode and preprocess; 0 = sized from the CPU quota")
    ort_spinning: bool = Field(
        False, description="let idle onnxruntime threads spin (burns CPU the decoder needs on small machines)"
    )
    providers: str = Field("CPUExecutionProvider", description="comma-separated onnxruntime execution providers")
    jpeg_draft: bool = Field(False, description="let the JPEG decoder downscale big photos (faster, not bit-exact)")
    cors_origins: str = Field(
        "", description="comma-separated origins whose pages may call the API; empty (default) = same-origin only"
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

    # Holding under overload, slow clients and hostile bodies (docs/service.md, "Limits").
    model_sha256: str | None = Field(
        None, description="expected sha256 of MODEL_PATH; unset: the MODEL_PATH.sha256 file export wrote, if any"
    )
    max_in_flight: int = Field(
        0, ge=0, description="predict requests admitted at once (reading, decoding, inferring); 0 = from the CPUs"
    )
    max_queue: int = Field(0, ge=0, description="requests waiting for a slot; 0 = 4 x MAX_IN_FLIGHT; beyond: 503")
    request_timeout_s: float = Field(
        10.0, gt=0, description="deadline for the server's share of a request (queue, decode, inference); then 503"
    )
    memory_budget_bytes: int = Field(
        0, ge=0, description="bytes request bodies and decoded pixels may hold at once; 0 = half the memory limit"
    )
    large_image_pixels: int = Field(
        4_000_000, gt=0, description="images above this decode in their own lane, so small ones never queue behind"
    )
    header_timeout_s: float = Field(10.0, gt=0, description="time a client has to send its request line and headers")
    body_timeout_s: float = Field(
        10.0, gt=0, description="time a client has to send its body, plus 1 s per BODY_MIN_RATE bytes received"
    )
    body_min_rate: int = Field(64 * 1024, gt=0, description="bytes/s that extend BODY_TIMEOUT_S (slow links)")
    keep_alive_timeout_s: float = Field(5.0, gt=0, description="an idle keep-alive connection is closed after this")
    max_connections: int = Field(
        512, gt=0, description="open connections; past it each new request is answered 503 and its connection closed"
    )
    linger_seconds: float = Field(
        30.0, ge=0, description="after an early refusal, read and discard the rest of the body this long at most"
    )
    linger_bytes: int = Field(128 * 1024 * 1024, ge=0, description="... and at most this many bytes")
    drain_seconds: float = Field(
        5.0, ge=0, description="after SIGTERM, /readyz answers 503 this long while requests are still served"
    )
    shutdown_timeout_s: float = Field(
        10.0, gt=0, description="then requests in flight get this long to finish before they are cancelled"
    )

    @field_validator("api_key")
    @classmethod
    def _api_key_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("API_KEY is set but empty; unset it to serve without a key, or give it a value")
        return value

    # Scaling with the cores (issue 15; core/sizing.py). INTRA_OP_THREADS is per instance,
    # and INTRA_OP_THREADS / DECODE_THREADS = 0 follow the plan that core.sizing makes.
    inference_instances: int = Field(
        0, ge=0, description="onnxruntime sessions with their own batch in flight; 0 = sized from the CPUs and model"
    )
    latency_session: bool = Field(
        True, description="with several instances, one more session on all their cores serves lone requests"
    )
    cpus: int = Field(0, ge=0, description="CPUs to size for; 0 = the cgroup CPU quota, else the affinity mask")

    @property
    def threads(self) -> int:
        # One session's threads if it had the machine; the layout served is app.state.instances.plan.
        return self.intra_op_threads or cpu_quota()

    @property
    def decoders(self) -> int:
        # Inference already keeps every core busy; decoding costs a few ms per image,
        # so half the quota is plenty and more threads only fight onnxruntime's.
        return self.decode_threads or max(1, cpu_quota() // 2)
