"""What every benchmarked Python app shares: the secret, the payload and the environment it reads."""

import os

# A fixed, benchmark-only signing key (never used outside bench/).
SECRET = "bench-only-secret-key-7f3a9c1e5b2d8f4a6c0e9b3d7a1f5c8e"
LIFETIME = 14 * 24 * 3600
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/fastapi_sessions_bench")
STORE = os.environ.get("BENCH_STORE", "memory")


def payload(size: int) -> str:
    """A session payload of ``size`` bytes as JSON (ASCII, so bytes equal characters)."""
    return "x" * max(size, 0)
