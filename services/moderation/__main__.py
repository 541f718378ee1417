"""`python -m services.moderation`: serve the moderation gRPC API."""

from services.moderation.app import running
from services.moderation.settings import ModerationSettings
from zapcore.service_main import run_service

if __name__ == "__main__":
    run_service("moderation", ModerationSettings, running)
