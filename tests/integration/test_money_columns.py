"""The schema the migrations build (on both backends) is the schema the models declare,
and every amount of money in it (fen), every points/growth counter and the stock are
64-bit: an INTEGER column overflows at 2^31 − 1 fen (¥21,474,836.47) on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import BigInteger, Integer, text
from sqlalchemy.engine import Connection

from storage.models import Base

#: counters that are not named *_fen but grow with money (points per yuan, growth per yuan)
COUNTERS = {
    ("skus", "stock"), ("loyalty_accounts", "points"), ("loyalty_accounts", "growth"), ("loyalty_points", "delta"),
    ("loyalty_levels", "min_growth"), ("order_discounts", "points_used"),
    ("loyalty_order_state", "earned_points"), ("loyalty_order_state", "earned_growth"),
    ("loyalty_order_state", "returned_points"), ("loyalty_order_state", "clawed_points"),
    ("loyalty_order_state", "clawed_growth"),
}


def _wide() -> list[tuple[str, str]]:
    return sorted((t.name, c.name) for t in Base.metadata.tables.values() for c in t.columns
                  if c.name.endswith("_fen") or (t.name, c.name) in COUNTERS)


def test_every_money_column_is_declared_64_bit():
    wide = _wide()
    assert ("orders", "total_fen") in wide and ("referral_ledger", "amount_fen") in wide and len(wide) >= 45
    narrow = [(t, c) for t, c in wide if not isinstance(Base.metadata.tables[t].c[c].type, BigInteger)]
    assert narrow == []


def _same_on_sqlite(op: object) -> bool:
    """INTEGER declared where the model says BIGINT: one and the same 64-bit storage on SQLite
    (the migration widens the columns on PostgreSQL only)."""
    if not (isinstance(op, list) and len(op) == 1 and isinstance(op[0], tuple) and op[0][0] == "modify_type"):
        return False
    was, now = op[0][5], op[0][6]
    return isinstance(was, Integer) and isinstance(now, Integer)


def _on_partition(op: object, partitions: set[str]) -> bool:
    """A partition of a table partitioned on PostgreSQL (a month of an event log: created by
    its migration and jobs) or one of its indexes: reflected as a table of its own, absent from
    the models, which declare the partitioned parent only."""
    if not (isinstance(op, tuple) and op[0] in ("remove_table", "remove_index")):
        return False
    obj = op[1]
    table = obj.name if op[0] == "remove_table" else (obj.table.name if obj.table is not None else "")
    return table in partitions


async def test_the_migrated_schema_matches_the_models(engine, backend):
    def diff(conn: Connection) -> list[object]:
        partitions = {str(r[0]) for r in conn.execute(text("SELECT relname FROM pg_class WHERE relispartition"))} \
            if backend.name == "pg" else set()
        ops = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        return [op for op in ops if not (backend.name == "sqlite" and _same_on_sqlite(op))
                and not _on_partition(op, partitions)]

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_every_money_column_is_bigint_on_postgresql(engine, backend):
    if backend.name != "pg":   # SQLite keeps every INTEGER in up to 8 bytes, whatever it is declared as
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TEMP TABLE wide (n INTEGER)"))
            await conn.execute(text("INSERT INTO wide VALUES (:n)"), {"n": 2**62})
            assert await conn.scalar(text("SELECT n FROM wide")) == 2**62
        return
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema()"))).all()
    types = {(t, c): d for t, c, d in rows}
    assert {tc: types.get(tc) for tc in _wide() if types.get(tc) != "bigint"} == {}
