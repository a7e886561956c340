"""`serve --workers N` says what to set when N workers could ask PostgreSQL for more
connections than it gives: each worker keeps SOCIAL_MALL_DATABASE_POOL_SIZE connections
and opens up to SOCIAL_MALL_DATABASE_MAX_OVERFLOW more under a crowd; past the server's
limit those requests fail with "too many clients"."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from bot import connection_budget
from social_mall.settings import Settings
from storage.db import create_engine, usable_connections


def settings_for(backend, pool: int, overflow: int) -> Settings:
    return Settings(database_url=backend.db_url, database_schema=backend.schema,
                    database_pool_size=pool, database_max_overflow=overflow)


def server_limit(backend) -> int:
    async def ask() -> int:
        engine = create_engine(backend.db_url, schema=backend.schema)
        try:
            return await usable_connections(engine)
        finally:
            await engine.dispose()
    return asyncio.run(ask())


def test_workers_that_could_outgrow_the_servers_connections_are_told_what_to_set(backend):
    if backend.name == "sqlite":     # one file, no connection limit to outgrow
        assert connection_budget(settings_for(backend, 10, 20), 64) is None
        return
    limit = server_limit(backend)
    quarter = max(limit // 4, 1)
    fits = settings_for(backend, quarter, quarter)
    assert connection_budget(fits, 2) is None                  # 2 × (limit/4 + limit/4) ≤ limit
    told = connection_budget(fits, 3)
    assert told is not None
    assert f"3 workers × {2 * quarter}" in told and f"= {6 * quarter}" in told and f"gives {limit}" in told
    assert "SOCIAL_MALL_DATABASE_POOL_SIZE" in told and f"at most {limit // 3}" in told


def test_an_unreachable_server_is_left_to_the_workers_to_report():
    settings = Settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none",
                        database_pool_size=50, database_max_overflow=50)
    assert connection_budget(settings, 8) is None


def test_the_pool_settings_reach_the_engine_and_refuse_nonsense():
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:5432/test", pool_size=3, max_overflow=1)
    assert (engine.pool.size(), engine.pool._max_overflow) == (3, 1)      # type: ignore[attr-defined]
    default = create_engine("postgresql+asyncpg://postgres@127.0.0.1:5432/test", pool_size=4)
    assert default.pool._max_overflow == 8                                # type: ignore[attr-defined]
    for bad in ({"database_pool_size": 0}, {"database_max_overflow": -1}):
        with pytest.raises(ValidationError):
            Settings(**bad)
