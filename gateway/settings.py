"""Gateway settings (env prefix ZAP_GATEWAY_)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network

from limits import parse_many
from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from zapcore.settings import PlatformSettings, ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ZAP_GATEWAY_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Proxies whose X-Forwarded-For is believed (CIDRs); nobody else's is.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Whether clients reach the gateway through a proxy (an ingress, a load balancer): then
    # production refuses to start unless trusted_proxies names it (and not everyone), since
    # every client would otherwise share the proxy's address and its rate limits.
    behind_proxy: bool = False
    allowed_hosts: list[str] = Field(default_factory=lambda: ["*"])
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Budget for one upstream call; a dead service answers 503 well within it.
    upstream_timeout_seconds: float = Field(default=3.0, gt=0)
    # Calls in a row that end UNAVAILABLE or DEADLINE_EXCEEDED before an upstream's circuit
    # opens, and how long it stays open (its calls answer 503 at once) before a retry.
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=5.0, gt=0)
    # Unset: on in development, off in production.
    docs_enabled: bool | None = None
    # `limits` notation, e.g. "600/minute"; several separated by ";".
    rate_limit_ip: str = "3000/minute"
    rate_limit_user: str = "1200/minute"
    rate_limit_login: str = "20/minute"
    rate_limit_register: str = "10/minute"
    # Access tokens whose signature this process has checked, remembered until their `exp`
    # (least recently used out first): each token's ES256 check is made once, not per request.
    verified_tokens_remembered: int = Field(default=50_000, ge=1)
    # How often the JWKS is re-read from auth, and the least time between forced re-reads.
    jwks_refresh_seconds: float = 300.0
    jwks_min_refresh_seconds: float = 10.0
    # --- WebSocket /ws/notifications/ ---
    # Messages waiting for one client; a client that lets more pile up is closed (1013).
    ws_send_queue_size: int = Field(default=64, ge=1)
    # A client whose socket accepts nothing for this long is closed (1013).
    ws_send_timeout_seconds: float = Field(default=10.0, gt=0)
    # How often an open socket re-checks its token against the deny-list (logout, deletion).
    ws_token_check_seconds: float = Field(default=15.0, gt=0)
    # When the notification service drops a stream (a restart), the gateway resumes it from
    # the last cursor this many times in a row before closing the socket (1013).
    ws_resume_attempts: int = Field(default=3, ge=0)
    # Largest message a client may send (it only ever sends {"type": "ping"}).
    ws_max_message_bytes: int = Field(default=4096, ge=128)
    # Compression costs memory on every connection for small JSON messages: off by default.
    ws_per_message_deflate: bool = False
    # Sockets one user may have open at once, across every gateway (the next is closed with
    # 4429). Each holds a slot in Redis for a lease its gateway renews while it is open: the
    # slots of a gateway that dies are free again within one lease.
    ws_max_sockets_per_user: int = Field(default=5, ge=1)
    ws_socket_lease_seconds: float = Field(default=60.0, ge=1)

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ip_network(network, strict=False)
        return value

    def proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        return [ip_network(network, strict=False) for network in self.trusted_proxies]

    @field_validator("rate_limit_ip", "rate_limit_user", "rate_limit_login", "rate_limit_register")
    @classmethod
    def _rate_limit_configured(cls, value: str) -> str:
        # An empty or unparsable limit would silently mean "no limit".
        if not value.strip():
            raise ValueError("a rate limit is required")
        parse_many(value)
        return value

    def docs_on(self, platform: PlatformSettings) -> bool:
        """/docs and /openapi.json: on in development, off in production unless enabled."""
        if self.docs_enabled is not None:
            return self.docs_enabled
        return not platform.is_production

    def production_problems(self, platform: PlatformSettings) -> list[str]:
        problems = super().production_problems(platform)
        if not self.allowed_hosts or "*" in self.allowed_hosts:
            problems.append("ZAP_GATEWAY_ALLOWED_HOSTS must name the hosts (no '*')")
        if "*" in self.cors_origins:
            problems.append("ZAP_GATEWAY_CORS_ORIGINS must name the origins (no '*')")
        networks = self.proxy_networks()
        if self.behind_proxy and not networks:
            problems.append(
                "ZAP_GATEWAY_TRUSTED_PROXIES must name the ingress's addresses"
                " (ZAP_GATEWAY_BEHIND_PROXY is on)"
            )
        if any(network.prefixlen == 0 for network in networks):
            problems.append(
                "ZAP_GATEWAY_TRUSTED_PROXIES must not trust every address (anyone could"
                " forge X-Forwarded-For)"
            )
        return problems
