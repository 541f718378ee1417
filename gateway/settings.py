"""Gateway settings (env prefix ZAP_GATEWAY_)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from zapcore.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ZAP_GATEWAY_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Proxies whose X-Forwarded-For is believed (CIDRs); nobody else's is.
    trusted_proxies: list[str] = Field(default_factory=list)
    allowed_hosts: list[str] = Field(default_factory=lambda: ["*"])
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Budget for one upstream call; a dead service answers 503 well within it.
    upstream_timeout_seconds: float = Field(default=3.0, gt=0)
    docs_enabled: bool = True
    # `limits` notation, e.g. "600/minute"; several separated by ";".
    rate_limit_ip: str = "3000/minute"
    rate_limit_user: str = "1200/minute"
    rate_limit_login: str = "20/minute"
    rate_limit_register: str = "10/minute"
    # How often the JWKS is re-read from auth, and the least time between forced re-reads.
    jwks_refresh_seconds: float = 300.0
    jwks_min_refresh_seconds: float = 10.0

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ip_network(network, strict=False)
        return value

    def proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        return [ip_network(network, strict=False) for network in self.trusted_proxies]

    def check_production(self) -> None:
        if "*" in self.allowed_hosts:
            raise ValueError("refusing to start in production: ZAP_GATEWAY_ALLOWED_HOSTS is '*'")
        if "*" in self.cors_origins:
            raise ValueError("refusing to start in production: ZAP_GATEWAY_CORS_ORIGINS has '*'")
