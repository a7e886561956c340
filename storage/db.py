"""Engine, sessions and migrations. SQLite (aiosqlite) or PostgreSQL (asyncpg) by URL."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

if TYPE_CHECKING:
    from social_mall.plugins import Module

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
log = logging.getLogger(__name__)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int | None = None, schema: str = "") -> AsyncEngine:
    """`schema` (PostgreSQL only) sets the search_path: tests use one schema per run.
    PostgreSQL: up to `pool_size` connections kept, `max_overflow` (default twice as many)
    more opened under a crowd and closed when returned."""
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
        url, pool_size=pool_size, max_overflow=pool_size * 2 if max_overflow is None else max_overflow,
        pool_recycle=1800,
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


def _packages(modules: Sequence[Module] | None) -> Sequence[Module]:
    """The module packages to include (None: every one installed)."""
    if modules is not None:
        return modules
    from social_mall.plugins import installed_modules

    return installed_modules()


def alembic_config(modules: Sequence[Module] | None = None) -> Config:
    """The core's migrations plus the Alembic branch of every module package in `modules`
    (None: every one installed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    extra = [str(m.migrations) for m in _packages(modules) if m.migrations is not None]
    if extra:
        for name in ("path_separator", "version_path_separator"):  # Alembic ≥ 1.16 reads the first
            cfg.set_main_option(name, "os")
        locations = os.pathsep.join([str(MIGRATIONS / "versions"), *extra])
        cfg.set_main_option("version_locations", locations.replace("%", "%%"))
    return cfg


def load_all_models(modules: Sequence[Module] | None = None) -> None:
    """Import every `storage/*_models.py` (built-in modules' tables) and the models of the
    module packages (None: every one installed) so Base.metadata knows them."""
    import pkgutil

    import storage

    for info in pkgutil.iter_modules(storage.__path__):
        if info.name.endswith("_models"):
            importlib.import_module(f"storage.{info.name}")
    for module in _packages(modules):
        if module.models:
            importlib.import_module(module.models)


def _set_aside_unknown(sync_conn: Connection, cfg: Config) -> list[str]:
    """Revisions in alembic_version that no script knows: the branch of a module package
    that was uninstalled. Alembic refuses to run with them; they are taken out for the
    upgrade and put back after, so re-installing the package finds its tables current."""
    if not inspect(sync_conn).has_table("alembic_version"):
        return []
    script = ScriptDirectory.from_config(cfg)
    unknown = []
    for (rev,) in sync_conn.execute(text("SELECT version_num FROM alembic_version")).all():
        try:
            script.get_revision(rev)
        except CommandError:
            unknown.append(rev)
    for rev in unknown:
        log.warning("migrate.unknown_revision", extra={"revision": rev})
        sync_conn.execute(text("DELETE FROM alembic_version WHERE version_num = :r"), {"r": rev})
    return unknown


async def migrate(engine: AsyncEngine, revision: str = "heads", *,
                  modules: Sequence[Module] | None = None) -> None:
    """Bring the schema to `revision` on this engine (SQLite and PostgreSQL alike).

    Modules keep their migrations on branches of their own off the core, so the default
    upgrades every head; module packages (`modules`, None: every one installed) bring
    their branch along."""

    def run(sync_conn: Connection) -> None:
        if revision == "heads" and _at_heads(sync_conn, modules):
            return  # nothing to do: Alembic (its scripts read, env.py run) isn't needed for that
        cfg = alembic_config(modules)
        cfg.attributes["connection"] = sync_conn
        aside = _set_aside_unknown(sync_conn, cfg)
        command.upgrade(cfg, revision)
        for rev in aside:
            sync_conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:r)"), {"r": rev})

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def unapplied_heads(engine: AsyncEngine, *, modules: Sequence[Module] | None = None) -> list[str]:
    """The migration heads (core and module branches) the database has not reached: empty
    when the schema is at head (`/readyz`; `bot.py migrate` brings it there)."""

    def run(sync_conn: Connection) -> list[str]:
        heads = _script_heads(modules)
        if not inspect(sync_conn).has_table("alembic_version"):
            return sorted(heads)
        have = {str(r) for (r,) in sync_conn.execute(text("SELECT version_num FROM alembic_version")).all()}
        return sorted(set(heads) - have)

    async with engine.connect() as conn:
        return await conn.run_sync(run)


def _at_heads(sync_conn: Connection, modules: Sequence[Module] | None) -> bool:
    """The database holds exactly the scripts' heads (a restart of a migrated deployment):
    one query against the heads read once per process, instead of Alembic reading every
    revision script again (~0.1 s a start)."""
    if not inspect(sync_conn).has_table("alembic_version"):
        return False
    have = {str(r) for (r,) in sync_conn.execute(text("SELECT version_num FROM alembic_version")).all()}
    return have == set(_script_heads(modules))


_HEADS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _script_heads(modules: Sequence[Module] | None) -> tuple[str, ...]:
    packages = _packages(modules)   # None: those installed now (a package may come or go)
    key = tuple(m.name for m in packages)
    if key not in _HEADS:
        _HEADS[key] = tuple(ScriptDirectory.from_config(alembic_config(packages)).get_heads())
    return _HEADS[key]


async def usable_connections(engine: AsyncEngine) -> int:
    """How many connections the PostgreSQL server behind `engine` gives ordinary roles:
    max_connections less the superuser-reserved ones."""
    async with engine.connect() as conn:
        most = int((await conn.execute(text("SHOW max_connections"))).scalar_one())
        reserved = int((await conn.execute(text("SHOW superuser_reserved_connections"))).scalar_one())
    return most - reserved
