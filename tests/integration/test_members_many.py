"""A crowd's first sights (`resolve_many`, the member desk's transaction): one member per
identity, created once, and on PostgreSQL the same statements whatever the crowd's size."""

from sqlalchemy import event as sa_event

from social_mall.members.service import resolve_many
from storage.db import session_factory
from storage.uow import uow_factory


async def test_a_crowd_is_resolved_in_statements_of_one_shape(engine, demo, backend):
    uows = uow_factory(session_factory(engine), {"member.joined": ["loyalty.welcome"]})
    sent: list[str] = []
    sa_event.listen(engine.sync_engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *rest: sent.append(statement))
    shapes: list[list[str]] = []
    got: list[list[tuple[int, bool]]] = []
    for crowd in ([("o-a", "")], [("o-b", "qr1"), ("o-a", ""), ("o-c", ""), ("o-b", "qr1"), ("o-d", "海报")]):
        del sent[:]
        async with uows() as uow:
            found = await resolve_many(uow, demo.id, "mp", crowd)
            await uow.commit()
        shapes.append([s for s in sent if not s.lstrip().upper().startswith(("BEGIN", "COMMIT"))])
        got.append([(m.id, created) for m, created in found])
    # o-a: created by the first crowd, found by the second; o-b: created once, then found
    a = got[0][0][0]
    assert got[0] == [(a, True)]
    (b, b_new), (a2, a_new), (c, c_new), (b2, b2_new), (d, d_new) = got[1]
    assert (a2, a_new) == (a, False) and b_new and c_new and d_new and (b2, b2_new) == (b, False)
    assert len({a, b, c, d}) == 4
    async with uows() as uow:
        assert await uow.outbox.count("member.joined") == 4
        for ext, member in (("o-a", a), ("o-b", b), ("o-c", c), ("o-d", d)):
            row = await uow.members.by_identity(demo.id, "mp", ext)
            assert row is not None and row.id == member
        assert (await uow.members.get(demo.id, b)).entry_source == "qr1"
        assert (await uow.members.get(demo.id, d)).entry_source == "海报"
    # the first crowd: SELECT, INSERT members, INSERT identities, INSERT outbox; the second the same
    assert len(shapes[0]) == len(shapes[1]) == 4
    if backend.name == "pg":
        assert shapes[0] == shapes[1]
