import json

from zap.auth.v1 import auth_pb2
from zapcore.grpc_client import retry_service_config


def test_only_idempotent_methods_are_retried() -> None:
    service = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
    config = json.loads(retry_service_config(service))
    retried = {name["method"] for name in config["methodConfig"][0]["name"]}
    assert {"GetUser", "GetUsers", "GetSigningKeys", "UpdateProfile"} <= retried
    assert not retried & {"Register", "Login", "Refresh", "Logout", "RequestDeletion"}
    policy = config["methodConfig"][0]["retryPolicy"]
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
