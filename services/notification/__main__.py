"""`python -m services.notification`: serve the notification gRPC API."""

from services.notification.app import running
from services.notification.settings import NotificationSettings
from zapcore.service_main import run_service

if __name__ == "__main__":
    run_service("notification", NotificationSettings, running)
