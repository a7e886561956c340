"""Engine, sessions and migrations. SQLite (aiosqlite) or PostgreSQL (asyncpg) by URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, pool_size: int = 10, schema: str = "") -> AsyncEngine:
    """`schema` (PostgreSQL only) sets the search_path: tests use one schema per run."""
    if is_sqlite(url):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # A few pooled connections: aiosqlite runs each connection on a thread of its own,
        # and opening one per unit of work (thread + pragmas) cost more than the query.
        # Every transaction is BEGIN IMMEDIATE (one writer at a time), so more wouldn't help.
        engine = create_async_engine(url, poolclass=AsyncAdaptedQueuePool, pool_size=2, max_overflow=0,
                                     connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        return engine
    connect_args = {"server_settings": {"search_path": schema}} if schema else {}
    # No pre-ping: it costs a round trip on every checkout (two per chat message);
    # connections are recycled instead, and a dead one fails that one request.
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size * 2, pool_recycle=1800,
        connect_args=connect_args,
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is off; `begin` below opens IMMEDIATE
    # transactions so concurrent writers queue on the lock instead of failing late.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def load_all_models() -> None:
    """Import every `storage/*_models.py` (module tables) so Base.metadata knows them."""
    import importlib
    import pkgutil

    import storage

    for info in pkgutil.iter_modules(storage.__path__):
        if info.name.endswith("_models"):
            importlib.import_module(f"storage.{info.name}")


async def migrate(engine: AsyncEngine, revision: str = "heads") -> None:
    """Bring the schema to `revision` on this engine (SQLite and PostgreSQL alike).

    Modules keep their migrations on branches of their own off the core's 0001, so the
    default upgrades every head."""

    def run(sync_conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)
