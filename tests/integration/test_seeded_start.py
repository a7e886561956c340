"""The suite's `mall` fixture starts from a copy of what an app's first start leaves (the
demo shop seeded: tests/conftest.py). That copy, started again, must leave exactly what a
first start on an empty database leaves: the same rows in every table, the same outbox
(nothing delivered by the copy's making that a first start would leave pending), the same
demo order still waiting for payment, the same next ids."""

from __future__ import annotations

from sqlalchemy import func, select, text

from storage.models import Base
from tests.conftest import first_start


async def state(engine) -> dict[str, object]:
    async with engine.connect() as conn:
        counts = {t.name: (await conn.execute(select(func.count()).select_from(t))).scalar()
                  for t in Base.metadata.sorted_tables}
        outbox = (await conn.execute(text(
            "SELECT topic, subscriber, status, attempts FROM outbox ORDER BY id"))).all()
        orders = (await conn.execute(text("SELECT id, status, total_fen FROM orders ORDER BY id"))).all()
        products = (await conn.execute(text("SELECT max(id) FROM products"))).scalar()
    return {"counts": counts, "outbox": [tuple(r) for r in outbox], "orders": [tuple(r) for r in orders],
            "last_product": products}


async def test_the_seeded_copy_started_again_is_what_a_first_start_leaves(request, backend, engine, tmp_path):
    await first_start(backend, tmp_path / "fresh")
    fresh = await state(engine)
    assert fresh["counts"]["products"] >= 20 and fresh["orders"] and fresh["outbox"]

    if backend.name == "sqlite":
        request.getfixturevalue("seeded_sqlite").copy_to(tmp_path / "test.db")
    else:
        async with engine.begin() as conn:
            await request.getfixturevalue("seeded_pg").restore(conn)
    await engine.dispose()   # SQLite: the file under the engine was replaced
    await first_start(backend, tmp_path / "again")
    assert await state(engine) == fresh
