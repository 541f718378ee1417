import pytest
from pydantic import ValidationError

from zapcore.settings import DEV_INTERNAL_SECRET, PlatformSettings

GOOD_SECRET = "p" * 64


def test_development_accepts_defaults() -> None:
    assert PlatformSettings(environment="development").internal_secret.get_secret_value()


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"internal_secret": DEV_INTERNAL_SECRET}, "ZAP_INTERNAL_SECRET"),
        ({"internal_secret": "short"}, "ZAP_INTERNAL_SECRET"),
        ({"debug": True}, "ZAP_DEBUG"),
        ({"redis_url": "redis://127.0.0.1:6379/0"}, "ZAP_REDIS_URL"),
    ],
)
def test_production_refuses_unsafe_values(overrides: dict[str, object], complaint: str) -> None:
    values = {
        "environment": "production",
        "internal_secret": GOOD_SECRET,
        "redis_url": "redis://:s3cret-long-password@redis:6379/0",
        **overrides,
    }
    with pytest.raises(ValidationError, match=complaint):
        PlatformSettings(**values)


def test_production_accepts_real_secrets() -> None:
    settings = PlatformSettings(
        environment="production",
        internal_secret=GOOD_SECRET,
        redis_url="redis://:s3cret-long-password@redis:6379/0",
    )
    assert settings.is_production
