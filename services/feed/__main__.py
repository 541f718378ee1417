"""`python -m services.feed`: serve the feed gRPC API."""

from services.feed.app import running
from services.feed.settings import FeedSettings
from zapcore.service_main import run_service

if __name__ == "__main__":
    run_service("feed", FeedSettings, running)
