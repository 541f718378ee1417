"""media's settings (env prefix ZAP_MEDIA_)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from zapcore.settings import PlatformSettings, ServiceSettings, is_placeholder

ImageType = Literal["jpeg", "png", "webp", "gif"]
MIB = 1024 * 1024


class MediaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ZAP_MEDIA_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/zap_media"
    grpc_port: int = 50054

    # --- object store ---------------------------------------------------------------------
    # Any S3-compatible endpoint (https://s3.<region>.amazonaws.com, MinIO...). Empty means
    # the embedded development store (moto's server mode, started by `make up` and the tests)
    # on 127.0.0.1:embedded_s3_port; production refuses it.
    s3_endpoint_url: str = ""
    embedded_s3_port: int = Field(default=50080, ge=1, le=65535)
    # Where clients send presigned uploads, when it differs from where the service reaches
    # the store (Compose: the service dials http://minio:9000, browsers localhost:9000).
    s3_public_endpoint_url: str = ""
    s3_bucket: str = "zap-media"
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr = SecretStr("zap-dev-access-key")
    s3_secret_access_key: SecretStr = SecretStr("zap-dev-secret-key")
    # Base of every variant URL (a CDN in front of the bucket). Empty means the store itself
    # (`<endpoint>/<bucket>`), which only the embedded development store serves publicly.
    cdn_base_url: str = ""
    # ACL of variant objects. Default: public-read on the embedded development store (it is
    # its own "CDN"), private everywhere else (the CDN reads the bucket with origin access).
    variant_acl: Literal["private", "public-read"] | None = None
    # Seconds the service waits at start for the store to answer before giving up.
    store_startup_timeout_seconds: float = Field(default=30.0, gt=0)

    # --- uploads --------------------------------------------------------------------------
    allowed_types: list[ImageType] = ["jpeg", "png", "webp", "gif"]
    max_bytes_jpeg: int = Field(default=20 * MIB, ge=1)
    max_bytes_png: int = Field(default=20 * MIB, ge=1)
    max_bytes_webp: int = Field(default=20 * MIB, ge=1)
    max_bytes_gif: int = Field(default=10 * MIB, ge=1)
    # A presigned upload is valid this long; the client uploads right after asking.
    presign_expiry_seconds: int = Field(default=300, ge=30, le=3600)
    # Presigned uploads per user (`limits` notation, ";"-separated).
    presign_rate_limit: str = "60/minute;600/day"
    # Uploads never completed, and raw uploads re-sent after processing, are deleted this long
    # after their presigned upload expired.
    stale_upload_grace_seconds: int = Field(default=600, ge=0)

    # --- processing -----------------------------------------------------------------------
    # Decompression-bomb bound: images with more pixels are refused before they are decoded
    # (Pillow only warns at its own MAX_IMAGE_PIXELS).
    max_pixels: int = Field(default=40_000_000, ge=1)
    max_dimension: int = Field(default=16_000, ge=16)
    # Variants fit in a square of this many pixels (never upscaled); "original" keeps its size.
    thumbnail_px: int = Field(default=320, ge=16)
    medium_px: int = Field(default=1080, ge=16)
    jpeg_quality: int = Field(default=85, ge=30, le=95)
    webp_quality: int = Field(default=82, ge=30, le=100)
    # Child processes that decode and encode images (Pillow holds the GIL through much of
    # its work, so threads do not use more cores); one image each at a time. Each child may
    # map at most render_memory_limit_mib (0: no limit), a last line against hostile files.
    render_processes: int = Field(default=2, ge=1)
    render_memory_limit_mib: int = Field(default=1536, ge=0)
    # Jobs in flight per worker (each holds its download while it waits for a child).
    worker_max_jobs: int = Field(default=4, ge=1)
    # A media stuck in "processing" this long (its job was lost, crashed or ran out of tries)
    # is queued again by the upkeep (every minute); one still processing after
    # processing_give_up_after_seconds fails, with a reason the client can show.
    processing_retry_after_seconds: int = Field(default=120, ge=10)
    processing_give_up_after_seconds: int = Field(default=1800, ge=60)

    @model_validator(mode="after")
    def _gives_up_after_retrying(self) -> MediaSettings:
        if self.processing_give_up_after_seconds <= self.processing_retry_after_seconds:
            raise ValueError(
                "processing_give_up_after_seconds must exceed processing_retry_after_seconds"
            )
        return self

    @field_validator("s3_endpoint_url", "s3_public_endpoint_url", "cdn_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def uses_embedded_store(self) -> bool:
        return not self.s3_endpoint_url

    @property
    def endpoint_url(self) -> str:
        return self.s3_endpoint_url or f"http://127.0.0.1:{self.embedded_s3_port}"

    @property
    def upload_endpoint_url(self) -> str:
        return self.s3_public_endpoint_url or self.endpoint_url

    @property
    def public_base_url(self) -> str:
        """What variant keys are appended to, to make their URLs."""
        return self.cdn_base_url or f"{self.upload_endpoint_url}/{self.s3_bucket}"

    @property
    def object_acl(self) -> Literal["private", "public-read"]:
        if self.variant_acl is not None:
            return self.variant_acl
        return "public-read" if self.uses_embedded_store else "private"

    def max_bytes(self, kind: ImageType) -> int:
        limits: dict[ImageType, int] = {
            "jpeg": self.max_bytes_jpeg,
            "png": self.max_bytes_png,
            "webp": self.max_bytes_webp,
            "gif": self.max_bytes_gif,
        }
        return limits[kind]

    def secrets(self) -> dict[str, str]:
        return {
            **super().secrets(),
            "ZAP_MEDIA_S3_SECRET_ACCESS_KEY": self.s3_secret_access_key.get_secret_value(),
        }

    def production_problems(self, platform: PlatformSettings) -> list[str]:
        problems = super().production_problems(platform)
        if self.uses_embedded_store:
            problems.append("ZAP_MEDIA_S3_ENDPOINT_URL must name the object store")
        if urlsplit(self.cdn_base_url).scheme != "https":
            problems.append("ZAP_MEDIA_CDN_BASE_URL must be an https URL")
        if self.object_acl != "private":
            problems.append("ZAP_MEDIA_VARIANT_ACL must be private (serve media through the CDN)")
        # No access key id: the store's credentials come from the environment (an IAM role).
        if self.s3_access_key_id.get_secret_value():
            if is_placeholder(self.s3_access_key_id.get_secret_value()):
                problems.append("ZAP_MEDIA_S3_ACCESS_KEY_ID must be a real key id")
            if is_placeholder(self.s3_secret_access_key.get_secret_value()):
                problems.append("ZAP_MEDIA_S3_SECRET_ACCESS_KEY must be a real key")
        elif self.s3_secret_access_key.get_secret_value():
            problems.append("ZAP_MEDIA_S3_SECRET_ACCESS_KEY must be a real key")
        return problems


Settings = MediaSettings
