from services.auth.models import Base
from zapcore.migrations import run_env

run_env(Base.metadata)
