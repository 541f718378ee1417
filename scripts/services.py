"""The services `make up` runs, and each one's settings as the environment configures them."""

from __future__ import annotations

import importlib

from zapcore.settings import ServiceSettings

SERVICES = ("auth", "feed", "graph", "media", "moderation", "notification")


def service_settings(service: str) -> ServiceSettings:
    settings: ServiceSettings = importlib.import_module(f"services.{service}.settings").Settings()
    return settings
