"""`python -m services.graph`: serve the graph gRPC API."""

from services.graph.app import running
from services.graph.settings import GraphSettings
from zapcore.service_main import run_service

if __name__ == "__main__":
    run_service("graph", GraphSettings, running)
