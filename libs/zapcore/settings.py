"""Settings shared by every process, and the base every service's settings extend.

Platform-wide values use the `ZAP_` prefix (`ZAP_ENVIRONMENT`, `ZAP_INTERNAL_SECRET`...);
each service adds its own class with its own prefix (`ZAP_AUTH_DATABASE_URL`...).
Production mode refuses development defaults instead of running with them.
"""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_INTERNAL_SECRET = "dev-only-internal-secret-change-me-in-production-0000000000"
MIN_SECRET_LENGTH = 50
DEFAULT_DB_PASSWORDS = frozenset({"", "postgres", "password", "root", "admin", "zap", "changeme"})
# Values templates, tutorials and development setups ship with, refused for every secret.
PLACEHOLDER_SECRETS = DEFAULT_DB_PASSWORDS | {
    "secret",
    "redis",
    "default",
    "test",
    "dummy",
    "pass",
    "123456",
    "minioadmin",
    "minio123",
    "zap-dev-access-key",
    "zap-dev-secret-key",
    DEV_INTERNAL_SECRET,
    # AWS's documentation examples.
    "akiaiosfodnn7example",
    "wjalrxutnfemi/k7mdeng/bpxrficyexamplekey",
}
# A value containing one of these was never replaced by a real secret.
_PLACEHOLDER_MARKS = (
    "changeme",
    "change-me",
    "change_me",
    "changeit",
    "replaceme",
    "replace-me",
    "replace_me",
    "placeholder",
    "dev-only",
    "example",
)


def is_placeholder(secret: str) -> bool:
    """Whether `secret` is empty, a known default, or a template's placeholder."""
    value = secret.strip().lower()
    return value in PLACEHOLDER_SECRETS or any(mark in value for mark in _PLACEHOLDER_MARKS)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    # One JSON object a line: what log collectors (Loki, CloudWatch...) parse.
    JSON = "json"
    # Aligned, human-readable lines for a developer's terminal.
    CONSOLE = "console"


class PlatformSettings(BaseSettings):
    """Values every ZAP process shares."""

    model_config = SettingsConfigDict(env_prefix="ZAP_", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    debug: bool = False
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.JSON
    # Signs the internal identity that travels between services, and service cursors.
    internal_secret: SecretStr = SecretStr(DEV_INTERNAL_SECRET)
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Where each service listens, as host:port; the gateway and workers dial these.
    auth_target: str = "127.0.0.1:50051"
    feed_target: str = "127.0.0.1:50052"
    graph_target: str = "127.0.0.1:50053"
    media_target: str = "127.0.0.1:50054"
    moderation_target: str = "127.0.0.1:50055"
    notification_target: str = "127.0.0.1:50056"
    # OpenTelemetry traces: "" (off), "otlp" (OTLP over gRPC to otel_endpoint) or "console".
    otel_exporter: str = ""
    # The collector for "otlp" (http://collector:4317); empty: OTEL_EXPORTER_OTLP_* or default.
    otel_endpoint: str = ""

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    def secrets(self) -> dict[str, str]:
        """The platform's secrets by setting name, for checks that no two are the same."""
        return {
            "ZAP_INTERNAL_SECRET": self.internal_secret.get_secret_value(),
            "ZAP_REDIS_URL's password": urlsplit(self.redis_url).password or "",
        }

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> PlatformSettings:
        if not self.is_production:
            return self
        problems = []
        if self.debug:
            problems.append("ZAP_DEBUG must be off")
        secret = self.internal_secret.get_secret_value()
        if is_placeholder(secret) or len(secret) < MIN_SECRET_LENGTH:
            problems.append(
                f"ZAP_INTERNAL_SECRET must be a fresh secret of {MIN_SECRET_LENGTH}+ characters"
            )
        if not redis_has_password(self.redis_url):
            problems.append("ZAP_REDIS_URL must carry a non-default password")
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self


class ServiceSettings(BaseSettings):
    """Base of one service's settings; subclasses set `env_prefix` and defaults."""

    model_config = SettingsConfigDict(extra="ignore")

    database_url: str = ""
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 0
    # Prometheus scrape port for this process; 0 disables the endpoint.
    metrics_port: int = 0
    # The same for the service's worker process, if it has one.
    worker_metrics_port: int = 0
    # Seconds in-flight calls get to finish after SIGTERM before they are cancelled.
    shutdown_grace_seconds: float = 10.0
    # Deadline applied to calls that arrive without one.
    default_deadline_seconds: float = 10.0
    # gRPC server reflection; unset means on in development and off in production.
    reflection: bool | None = None
    db_pool_size: int = Field(default=10, ge=1)

    @property
    def env_prefix(self) -> str:
        return str(self.model_config.get("env_prefix", ""))

    def reflection_enabled(self, platform: PlatformSettings) -> bool:
        if self.reflection is not None:
            return self.reflection
        return not platform.is_production

    def secrets(self) -> dict[str, str]:
        """This service's secrets by setting name (subclasses add theirs)."""
        if not self.database_url:
            return {}
        return {f"{self.env_prefix}DATABASE_URL's password": _password(self.database_url)}

    def production_problems(self, platform: PlatformSettings) -> list[str]:
        """What makes these settings unsafe for production; subclasses extend the list."""
        problems = []
        if self.database_url:
            password = _password(self.database_url)
            user = urlsplit(self.database_url).username or ""
            database = urlsplit(self.database_url).path.lstrip("/")
            if is_placeholder(password) or password.lower() in (user.lower(), database.lower()):
                problems.append(f"{self.env_prefix}DATABASE_URL must carry a real password")
        problems.extend(shared_secrets({**platform.secrets(), **self.secrets()}))
        return problems

    def check_production(self, platform: PlatformSettings) -> None:
        """Refuse to start with unsafe values (called at start-up in production mode)."""
        problems = self.production_problems(platform)
        if problems:
            raise UnsafeForProduction(problems)


class UnsafeForProduction(ValueError):
    """Start-up refused: the production checklist found these problems."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("refusing to start in production: " + "; ".join(problems))
        self.problems = problems


def shared_secrets(secrets: dict[str, str]) -> list[str]:
    """One problem per pair of settings that hold the same secret (a leak of one is both)."""
    problems = []
    names = [name for name, value in secrets.items() if value]
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            if secrets[first] == secrets[second]:
                problems.append(f"{first} and {second} must be different secrets")
    return problems


def _password(url: str) -> str:
    return urlsplit(url).password or ""


def redis_has_password(url: str) -> bool:
    """True when a Redis URL carries a password that is not an obvious default."""
    return not is_placeholder(urlsplit(url).password or "")
