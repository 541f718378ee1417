"""`python -m services.auth`: serve the auth gRPC API."""

from services.auth.app import running
from services.auth.settings import AuthSettings
from zapcore.service_main import run_service

if __name__ == "__main__":
    run_service("auth", AuthSettings, running)
