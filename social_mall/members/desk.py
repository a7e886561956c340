"""First sights in batches: a crowd of new members at once.

A QR campaign or a flash-sale announcement brings thousands of people who have never
written to the account within minutes, and each one's first message must find or create
its member before the flow can run. One transaction per newcomer spends a pool connection,
a commit and ~6 statements of Python each (and on the embedded SQLite default, one turn of
the single writer lock each: the crowd queues on it).

The desk gathers the first sights that arrive while a batch is in flight and resolves the
next lot in one transaction (`sight_many`: per tenant and channel one SELECT, one INSERT of
the new members, one INSERT … ON CONFLICT DO NOTHING of their identities, and the events).
A batch costs about as much as a single sight, so under a crowd the cost per newcomer
falls with the batch size, and a lone newcomer waits for nobody.

The guarantees are `resolve_member`'s: one member per identity whatever runs at once
(another worker's batch or single sight that takes an identity first keeps it; the rows
made for it here go), one member.joined per member created, one member.entered per sight
through a scene. If a batch fails as a whole, it is rolled back and each sight runs alone,
so one bad sight never takes the others with it.

A sight through the desk commits in the desk's own transaction, not the caller's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError

from social_mall.desk import Desk, desk_of
from social_mall.errors import MallError
from social_mall.members.service import note_entry, resolve_many, resolve_member
from social_mall.views import MemberView
from storage.uow import UnitOfWork, UowFactory

MAX_BATCH = 200
DESK = "members.sights"

Sighted = tuple[MemberView, bool]  # the member, and whether this sight created it


@dataclass(frozen=True)
class Sighting:
    """A channel identity seen writing; `scene`: the QR code or link it came through
    ("" for none), its entry source if it is new, noted as member.entered either way."""

    tenant: int
    channel: str
    external_id: str
    scene: str = ""


async def sight_many(uow: UnitOfWork, sightings: Sequence[Sighting]) -> list[Sighted]:
    """The members behind `sightings` (created on first sight), in order, in the caller's
    unit of work (uncommitted)."""
    groups: dict[tuple[int, str], list[int]] = defaultdict(list)
    for i, s in enumerate(sightings):
        groups[(s.tenant, s.channel)].append(i)
    out: list[Sighted | None] = [None] * len(sightings)
    for (tenant, channel), idx in groups.items():
        found = await resolve_many(uow, tenant, channel,
                                   [(sightings[i].external_id, sightings[i].scene) for i in idx])
        for i, got in zip(idx, found):
            out[i] = got
    done = [got for got in out if got is not None]
    assert len(done) == len(sightings)
    for s, (member, created) in zip(sightings, done):
        if s.scene:
            await note_entry(uow, s.tenant, member.id, channel=s.channel, scene=s.scene, first_time=created)
    return done


async def sight_alone(uow: UnitOfWork, s: Sighting) -> Sighted:
    """One sight in the caller's unit of work (uncommitted), through `resolve_member`."""
    member, created = await resolve_member(uow, s.tenant, s.channel, s.external_id, entry_source=s.scene)
    if s.scene:
        await note_entry(uow, s.tenant, member.id, channel=s.channel, scene=s.scene, first_time=created)
    return member, created


class SightDesk(Desk[Sighting, Sighted]):
    """One per deployment process (kept on the unit-of-work factory): sights that arrive
    while a batch is being written wait for the next batch, which takes them all
    (social_mall/desk.py: FIFO, bounded lots, one answer per sight)."""

    def __init__(self, uows: UowFactory, max_batch: int = MAX_BATCH) -> None:
        super().__init__("members", uows, sight_many, sight_alone, max_batch=max_batch,
                         expected=(MallError, DBAPIError), retry_singly=(MallError, DBAPIError))

    async def sight(self, s: Sighting) -> Sighted:
        return await self.submit(s)

    @property
    def sights(self) -> int:  # the sights written in whole batches (bench, tests)
        return self.done


async def first_sight(uow: UnitOfWork, s: Sighting) -> Sighted:
    """The member behind `s`, created on first sight, through this deployment's desk:
    committed in the desk's own transaction (with any crowd that came at once). A unit of
    work made outside a factory has no desk: the sight then runs in it, uncommitted."""
    desk = desk_of(uow, DESK, SightDesk)
    if desk is None:
        return await sight_alone(uow, s)
    return await desk.sight(s)
