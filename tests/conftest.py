"""Shared fixtures. Every storage-touching test runs on two backends:

* `sqlite`: SQLite file + in-process key-value store (the embedded default)
* `pg`:     PostgreSQL (SOCIAL_MALL_TEST_PG) + Redis (SOCIAL_MALL_TEST_REDIS)

PostgreSQL and Redis are not optional: if they cannot be reached the `pg` tests fail
(set SOCIAL_MALL_TEST_PG="" to leave that backend out of a local run on purpose).
Each pytest process works in its own PostgreSQL schema and Redis key prefix, so two
runs on one machine do not see each other.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from social_mall.demo import DemoCredentials, seed_demo
from social_mall.tenants import TenantView
from storage.db import create_engine, load_all_models, migrate, session_factory
from storage.kv import MemoryKV, RedisKV
from storage.models import Base
from storage.uow import UowFactory, uow_factory

PG_URL = os.environ.get("SOCIAL_MALL_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SOCIAL_MALL_TEST_REDIS", "redis://127.0.0.1:6379/15")
SCHEMA = f"t_{os.getpid()}_{uuid.uuid4().hex[:6]}"
BACKENDS = ["sqlite", "pg"] if PG_URL else ["sqlite"]
load_all_models()  # module tables join Base.metadata (truncation between tests)

TEST_TOKEN = "test_token_123"
TEST_APP_ID = "wx0123456789abcdef"
TEST_APP_SECRET = "test_app_secret_0123456789abcdef"
TEST_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
DEMO_CREDS = DemoCredentials(
    wechat_app_id=TEST_APP_ID, wechat_token=TEST_TOKEN, wechat_aes_key=TEST_AES_KEY,
    wechat_app_secret=TEST_APP_SECRET,
)


@dataclass(frozen=True)
class Backend:
    name: str
    db_url: str
    redis_url: str  # "" → in-process store
    schema: str = ""


def _pg_engine() -> AsyncEngine:
    return create_engine(PG_URL, schema=SCHEMA, pool_size=20)


def _clean_slate_function(schema: str) -> str:
    """A function in the run's schema that empties every model table and restarts the
    sequences used since: a clean slate in one round trip. DELETE of a few small tables
    costs far less than TRUNCATE of all of them (a new file per table and index: ~0.4 s a
    test); foreign-key triggers are off inside it (session_replication_role), so the order
    doesn't matter."""
    names = ", ".join(f"'{t.name}'" for t in Base.metadata.sorted_tables)
    return f"""
CREATE OR REPLACE FUNCTION "{schema}".clean_slate() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE t text; s record;
BEGIN
  SET LOCAL session_replication_role = replica;
  FOREACH t IN ARRAY ARRAY[{names}]::text[] LOOP
    EXECUTE format('DELETE FROM %I.%I', '{schema}', t);
  END LOOP;
  FOR s IN SELECT sequencename FROM pg_sequences WHERE schemaname = '{schema}' AND last_value IS NOT NULL LOOP
    EXECUTE format('ALTER SEQUENCE %I.%I RESTART', '{schema}', s.sequencename);
  END LOOP;
END $fn$"""


async def clean_pg(conn, schema: str = SCHEMA) -> None:
    """Empty this run's PostgreSQL schema (every model table; ids start at 1 again)."""
    await conn.execute(text(f'SELECT "{schema}".clean_slate()'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "template.db"

    async def build() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await migrate(engine)
        await engine.dispose()

    asyncio.run(build())
    return path


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    async def up() -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        admin = create_async_engine(PG_URL)
        try:
            async with admin.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"'))
        finally:
            await admin.dispose()
        engine = _pg_engine()
        await migrate(engine)
        async with engine.begin() as conn:
            await conn.execute(text(_clean_slate_function(SCHEMA)))
        await engine.dispose()

    async def down() -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        admin = create_async_engine(PG_URL)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}_seed" CASCADE'))
        await admin.dispose()

    try:
        asyncio.run(up())
    except OSError as exc:
        pytest.fail(f"PostgreSQL at {PG_URL} is unreachable: {exc}")
    yield SCHEMA
    asyncio.run(down())


# -- the demo shop as a first start leaves it ------------------------------------------
# An app's first start seeds the demo shop (~0.2 s: the tenant, its catalog, the modules'
# demo data, the demo order). A test that uses `mall` starts from a copy of what such a
# start left (a SQLite file; on PostgreSQL a snapshot of the seeded rows and sequences,
# restored in one call), so its own start finds the shop seeded, as any later start does.
# Made once per process by a real start of the app with the suite's settings, remade after
# SEED_MAX_AGE (the demo order must still be unpaid and unexpired, as at a first start).
# tests/integration/test_seeded_start.py checks that the copy is what a first start leaves.
SEED_MAX_AGE = 600.0  # s


async def first_start(backend: "Backend", data_dir: Path) -> None:
    """Start and stop the app once on `backend` as the `mall` fixture would (no requests)."""
    from aiohttp import web

    from bot import build_app

    runner = web.AppRunner(build_app(app_settings(backend, data_dir, "http://127.0.0.1:9"), auto_setup=True))
    await runner.setup()
    await runner.cleanup()


def _run_aside(coro) -> None:
    """Run `coro` to its end on a loop of its own in another thread (a sync fixture may run
    while the test's event loop is set: asyncio.run here would unset it)."""
    import threading

    failed: list[BaseException] = []

    def go() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            failed.append(exc)

    thread = threading.Thread(target=go)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


class SeededSqlite:
    def __init__(self, template: Path, workdir: Path) -> None:
        self.template, self.workdir, self.path = template, workdir, workdir / "seeded.db"
        self.made: float | None = None   # monotonic time of the copy (a box up < SEED_MAX_AGE reads small)

    def copy_to(self, db: Path) -> None:
        import sqlite3
        import time

        if self.made is None or time.monotonic() - self.made > SEED_MAX_AGE:
            work = self.workdir / "build"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            shutil.copy(self.template, work / "test.db")
            _run_aside(first_start(Backend("sqlite", f"sqlite+aiosqlite:///{work / 'test.db'}", ""), work))
            conn = sqlite3.connect(work / "test.db")
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")   # everything in the main file
            finally:
                conn.close()
            shutil.copy(work / "test.db", self.path)
            self.made = time.monotonic()
        shutil.copy(self.path, db)


@pytest.fixture(scope="session")
def seeded_sqlite(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> SeededSqlite:
    return SeededSqlite(sqlite_template, tmp_path_factory.mktemp("seeded"))


class SeededPg:
    """The seeded rows of this run's schema kept in tables of a schema of their own, and a
    function that empties the run's schema and puts them (and the sequences) back."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.made = workdir, None
        self.snap = f"{SCHEMA}_seed"

    async def restore(self, conn) -> None:
        import time

        if self.made is None or time.monotonic() - self.made > SEED_MAX_AGE:
            await self._make()
            self.made = time.monotonic()
        await conn.execute(text(f'SELECT "{SCHEMA}".restore_seed()'))

    async def _make(self) -> None:
        eng = _pg_engine()
        try:
            async with eng.begin() as conn:
                await clean_pg(conn)
            await first_start(Backend("pg", PG_URL, REDIS_URL, SCHEMA), self.workdir)
            async with eng.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.snap}" CASCADE'))
                await conn.execute(text(f'CREATE SCHEMA "{self.snap}"'))
                seeded = []
                for t in Base.metadata.sorted_tables:
                    if (await conn.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{SCHEMA}"."{t.name}")'))).scalar():
                        await conn.execute(text(f'CREATE TABLE "{self.snap}"."{t.name}" AS '
                                                f'SELECT * FROM "{SCHEMA}"."{t.name}"'))
                        seeded.append(t.name)
                sequences = {name: int(v) for name, v in (await conn.execute(text(
                    "SELECT sequencename, last_value FROM pg_sequences "
                    "WHERE schemaname = :s AND last_value IS NOT NULL"), {"s": SCHEMA})).all()}
                await conn.execute(text(_restore_function(seeded, sequences, self.snap)))
        finally:
            await eng.dispose()


def _restore_function(seeded: list[str], sequences: dict[str, int], snap: str) -> str:
    inserts = "".join(f'  INSERT INTO "{SCHEMA}"."{t}" SELECT * FROM "{snap}"."{t}";\n' for t in seeded)
    setvals = "".join(f"  PERFORM setval('\"{SCHEMA}\".\"{name}\"', {v}, true);\n" for name, v in sequences.items())
    kept = ", ".join(f"'{name}'" for name in sequences) or "''"
    return f"""
CREATE OR REPLACE FUNCTION "{SCHEMA}".restore_seed() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE s record;
BEGIN
  PERFORM "{SCHEMA}".clean_slate();
  SET LOCAL session_replication_role = replica;
{inserts}{setvals}  FOR s IN SELECT sequencename FROM pg_sequences WHERE schemaname = '{SCHEMA}'
           AND last_value IS NOT NULL AND sequencename NOT IN ({kept}) LOOP
    EXECUTE format('ALTER SEQUENCE %I.%I RESTART', '{SCHEMA}', s.sequencename);
  END LOOP;
END $fn$"""


@pytest.fixture(scope="session")
def seeded_pg(pg_schema: str, tmp_path_factory: pytest.TempPathFactory) -> SeededPg:
    return SeededPg(tmp_path_factory.mktemp("seeded_pg"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        db = tmp_path / "test.db"
        if "mall" in request.fixturenames:   # the demo shop as a first start left it
            request.getfixturevalue("seeded_sqlite").copy_to(db)
        else:
            shutil.copy(request.getfixturevalue("sqlite_template"), db)
        return Backend("sqlite", f"sqlite+aiosqlite:///{db}", "")
    request.getfixturevalue("pg_schema")
    return Backend("pg", PG_URL, REDIS_URL, SCHEMA)


@pytest.fixture
async def engine(request: pytest.FixtureRequest, backend: Backend) -> AsyncIterator[AsyncEngine]:
    if backend.name == "sqlite":
        eng = create_engine(backend.db_url)
    else:  # a clean slate in this run's schema (for `mall`: the demo shop as a first start left it)
        seeded = request.getfixturevalue("seeded_pg") if "mall" in request.fixturenames else None
        eng = _pg_engine()
        async with eng.begin() as conn:
            if seeded is not None:
                await seeded.restore(conn)
            else:
                await clean_pg(conn)
    yield eng
    await eng.dispose()


@pytest.fixture
async def kv(backend: Backend) -> AsyncIterator[MemoryKV | RedisKV]:
    if not backend.redis_url:
        yield MemoryKV()
        return
    store = RedisKV(backend.redis_url, prefix=f"test:{uuid.uuid4().hex}:")
    if not await store.ping():
        pytest.fail(f"Redis at {backend.redis_url} is unreachable")
    yield store
    keys = [k async for k in store.redis.scan_iter(match=store.prefix + "*")]
    if keys:
        await store.redis.delete(*keys)
    await store.close()


@pytest.fixture
def uows(engine: AsyncEngine) -> UowFactory:
    return uow_factory(session_factory(engine), {})


@pytest.fixture
async def other_worker(backend: Backend) -> AsyncIterator[UowFactory]:
    """A second "worker": its own engine and connection pool on the same database."""
    eng = create_engine(backend.db_url, schema=backend.schema) if backend.name == "pg" else \
        create_engine(backend.db_url)
    yield uow_factory(session_factory(eng), {})
    await eng.dispose()


@pytest.fixture
async def demo(uows: UowFactory) -> TenantView:
    async with uows() as uow:
        tenant = await seed_demo(uow, DEMO_CREDS)
        await uow.commit()
    return tenant


# -- the real app against fakes of WeChat's servers ------------------------------------

@pytest.fixture
async def fake_wechat(aiohttp_server):
    from tests.fakes.wechat_api import FakeWeChatAPI

    fake = FakeWeChatAPI(app_id=TEST_APP_ID, app_secret=TEST_APP_SECRET)
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake


def app_settings(backend: Backend, tmp_path: Path, fake_base_url: str, **overrides):
    from pydantic import SecretStr

    from social_mall.settings import Settings

    values = dict(
        database_url=backend.db_url, database_schema=backend.schema, redis_url=backend.redis_url,
        kv_prefix=f"test:{uuid.uuid4().hex}:", data_dir=tmp_path / "var",
        wechat_token=SecretStr(TEST_TOKEN), wechat_app_id=TEST_APP_ID,
        wechat_app_secret=SecretStr(TEST_APP_SECRET), wechat_aes_key=SecretStr(TEST_AES_KEY),
        wechat_api_base=fake_base_url, secret_key=SecretStr("test-secret"), scheduler_enabled=False,
        # The suite pays the demo tenant through the sandbox on both backends: an explicit
        # choice (on PostgreSQL + Redis, or with these test credentials, "auto" is off).
        sandbox_pay="on", sandbox_pay_tenants=["demo"],
        # tests build their own campaigns, coupons and flash prices: the demo shop's showcase
        # (tests/e2e/test_demo_showcase.py turns it on) would change what they list and price
        demo_showcase=False,
        # refunds of one order go to the gateway a minute apart in production; the suite's
        # scripts refund in quick succession (test_refund_spacing.py turns it on)
        refund_spacing_seconds=0,
    )
    values.update(overrides)
    _sandbox_platform_key(Path(values["data_dir"]))
    return Settings(**values)


_SANDBOX_KEY: list[object] = []


def _sandbox_platform_key(data_dir: Path) -> None:
    """The sandbox pay platform's key pair, made once per pytest process and placed in
    each app's data directory (a new RSA-2048 key per app start cost ~50 ms a test)."""
    from social_mall.payments import wxpay_v3 as wx

    target = data_dir / "sandbox_pay_platform"
    if target.exists():
        return
    if not _SANDBOX_KEY:
        _SANDBOX_KEY.append(wx.generate_keypair())
    pair = _SANDBOX_KEY[0]
    assert isinstance(pair, wx.KeyPair)
    target.mkdir(mode=0o700, parents=True)
    for name, data in ((wx._SERIAL_FILE, (pair.serial + "\n").encode("ascii")), (wx._PRIVATE_FILE, pair.private_pem)):
        (target / name).write_bytes(data)
        (target / name).chmod(0o600)


@dataclass
class Mall:
    """A running app (aiohttp TestClient) plus handles the tests need."""

    client: object
    app: object
    settings: object
    fake: object

    @property
    def svc(self):
        from handlers.context import SERVICES

        return self.app[SERVICES]

    async def settle(self) -> None:
        """Let slow-path replies and kicked outbox runs finish, then deliver whatever is
        due until nothing is left (subscribers may emit further events)."""
        svc = self.svc
        for _ in range(50):
            if svc.background:
                await asyncio.wait(list(svc.background), timeout=5)
            await svc.outbox.drain()
            delivered = await svc.outbox.run_once()
            if not svc.background and not delivered:
                return


@pytest.fixture
async def fresh_backend(backend, tmp_path):
    """An empty database of the backend's kind (nothing migrated yet): for migrations
    run step by step (a revision's data move, a module's branch)."""
    if backend.name == "sqlite":
        yield Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}", "")
        return
    schema = f"fresh_{uuid.uuid4().hex[:10]}"
    from sqlalchemy.ext.asyncio import create_async_engine

    admin = create_async_engine(PG_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield Backend("pg", PG_URL, backend.redis_url, schema)
    async with admin.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await admin.dispose()


def seed_row(conn, table, made: Iterator[int], /, **given):
    """Insert one row into a reflected `table` for a migration test (a database at an older
    revision, no models to lean on): `given` values, and a plain value of its type for any
    other required column (numbers from `made`). The new row's id."""
    from datetime import datetime, timezone

    from sqlalchemy import insert

    values = dict(given)
    for c in table.columns:
        if c.name in values or c.primary_key or c.nullable or c.server_default is not None:
            continue
        py = c.type.python_type
        values[c.name] = (datetime(2026, 1, 1, tzinfo=timezone.utc) if py is datetime
                          else False if py is bool else next(made) if py is int else {} if py is dict
                          else f"m{next(made)}")
    return int(conn.execute(insert(table).values(**values)).inserted_primary_key[0])


async def tables_and_versions(b: Backend) -> tuple[set[str], set[str]]:
    engine = create_engine(b.db_url, schema=b.schema)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            versions = {r[0] for r in await conn.execute(text("SELECT version_num FROM alembic_version"))}
    finally:
        await engine.dispose()
    return names, versions


@pytest.fixture
async def mall(backend, engine, fake_wechat, aiohttp_client, tmp_path) -> Mall:
    from bot import build_app

    settings = app_settings(backend, tmp_path, fake_wechat.base_url)
    app = build_app(settings, auto_setup=True)
    client = await aiohttp_client(app)
    app_url = str(client.make_url("")).rstrip("/")
    from handlers.context import SERVICES

    app[SERVICES].public_base_url = app_url
    return Mall(client, app, settings, fake_wechat)
