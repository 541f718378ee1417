"""auth's settings (env prefix ZAP_AUTH_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from zapcore.settings import PlatformSettings, ServiceSettings


class AuthSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ZAP_AUTH_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/zap_auth"
    grpc_port: int = 50051
    # PEM files of EC P-256 private keys, one per key id (file name without .pem).
    # The newest name signs; every key in the folder stays published in the JWKS.
    signing_keys_dir: Path = Path(".local/keys/auth")
    # Generate a signing key when the folder is empty (never in production).
    generate_missing_key: bool = True
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=900)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=3600)
    # Argon2id, OWASP password storage cheat sheet: m=19 MiB, t=2, p=1.
    argon2_memory_kib: int = Field(default=19456, ge=8192)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_parallelism: int = Field(default=1, ge=1)
    # Threads that hash passwords, off the event loop; each holds argon2_memory_kib while it runs.
    hash_workers: int = Field(default=2, ge=1)
    # Failed logins allowed per (account, client IP) and per account, per window.
    login_failures_per_client: int = 5
    login_failures_per_account: int = 50
    login_failure_window_seconds: int = 900
    deletion_grace_days: int = Field(default=30, ge=0)
    # The services that remove their part of a deleted account and report a receipt.
    deletion_services: list[str] = ["feed", "graph", "media", "moderation", "notification"]
    # A deletion still missing one of their receipts this long after it was announced is
    # announced again (then again after as long), and counts as overdue this long after
    # it was made (zap_account_deletions_overdue).
    deletion_reannounce_after_seconds: int = Field(default=600, ge=0)

    def production_problems(self, platform: PlatformSettings) -> list[str]:
        problems = super().production_problems(platform)
        keys = sorted(self.signing_keys_dir.glob("*.pem"))
        if not keys:
            problems.append(f"ZAP_AUTH_SIGNING_KEYS_DIR ({self.signing_keys_dir}) has no key")
        others = [v for v in {**platform.secrets(), **self.secrets()}.values() if v]
        for key in keys:
            if key.stat().st_mode & 0o077:
                problems.append(f"signing key {key.name} must be readable by its owner only")
            pem = key.read_text()
            # The JWT key must be distinct from every other secret, never a copy of one.
            if any(secret in pem for secret in others):
                problems.append(f"signing key {key.name} contains another secret")
        return problems


Settings = AuthSettings
