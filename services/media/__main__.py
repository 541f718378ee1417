"""`python -m services.media`: serve the media gRPC API."""

from services.media.app import running
from services.media.settings import MediaSettings
from zapcore.service_main import run_service

if __name__ == "__main__":
    run_service("media", MediaSettings, running)
