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


async def test_after_commit_runs_once_after_a_commit_and_never_after_a_failure(uows):
    """`uow.after_commit` (what primes memory with rows just written: a group-buy team's
    admission pool) runs after the commit only; a failed commit, a rollback or a block left
    by an exception drop it, and a failing one leaves the commit standing."""
    ran = []

    async def follow():
        ran.append("follow")

    async def broken():
        raise RuntimeError("memory unreachable")
    with pytest.raises(Exception):
        async with uows() as uow:
            uow.after_commit(follow)
            uow.session.add(Tenant())   # the commit's flush fails
            await uow.commit()
    async with uows() as uow:
        uow.after_commit(follow)
        await uow.session.execute(text("SELECT 1"))
        await uow.rollback()
    with pytest.raises(RuntimeError):
        async with uows() as uow:
            uow.after_commit(follow)
            raise RuntimeError("the step failed")
    assert ran == []
    async with uows() as uow:
        uow.after_commit(broken)
        uow.after_commit(follow)
        await uow.session.execute(text("SELECT 1"))
        await uow.commit()
        assert ran == ["follow"]
        await uow.commit()             # once: a second commit runs nothing of the first's
    assert ran == ["follow"]
