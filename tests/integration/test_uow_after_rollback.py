"""`uow.after_rollback` runs whenever the unit of work's transaction did not commit — also
when its commit fails, or when it never opened a session — and never after a commit. The
chat checkout relies on it to undo an order the order desk committed for a step that then
failed (flows/checkout.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from storage.models import Tenant


async def test_after_rollback_runs_when_nothing_was_opened_and_the_block_fails(uows):
    ran = []

    async def undo():
        ran.append("undo")
    with pytest.raises(RuntimeError):
        async with uows() as uow:
            uow.after_rollback(undo)
            raise RuntimeError("the step failed before touching the database")
    assert ran == ["undo"]


async def test_after_rollback_runs_when_the_commit_fails_and_not_after_a_commit(uows):
    ran = []

    async def undo():
        ran.append("undo")
    with pytest.raises(Exception):
        async with uows() as uow:
            uow.after_rollback(undo)
            uow.session.add(Tenant())   # no code, no name: the commit's flush fails
            await uow.commit()
    assert ran == ["undo"]
    async with uows() as uow:
        uow.after_rollback(undo)
        await uow.session.execute(text("SELECT 1"))
        await uow.commit()
    async with uows() as uow:
        await uow.rollback()           # a later rollback of another unit of work runs nothing of ours
    assert ran == ["undo"]
