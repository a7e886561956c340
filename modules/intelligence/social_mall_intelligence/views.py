"""Product views and recommendation clicks, heard through the core's activity sink
(`reg.add_activity_sink`, social_mall/activity.py): the module keeps its own counters and
never reads another module's tables (the insights module records the same activities
for its own reports).

On the chat path the sink only counts in memory (a dict update); the job `intel.views`
writes the counts every FLUSH_SECONDS in one transaction of upserts:
- `intel_view_hours` (tenant, product, hour) += views: dynamic pricing's demand signal;
- `intel_member_views` (tenant, member, product) += views, last seen: the browsing half of
  the recommendation model's histories (anonymous H5 views count for demand only);
- `intel_clicks`: a view whose source is a recommendation's tracking token
  `rec.<placement>` (the 「猜你喜欢」 list carries it into the shop's listing; an H5 link may
  carry it as `?src=rec.<placement>`) is a click of that placement.

Counts are not money: a worker killed between two flushes loses at most FLUSH_SECONDS of
views. The buffer is bounded (MAX_KEYS distinct keys; beyond, views are dropped and
counted in `dropped`) so a flood of views can't grow a worker's memory without bound; a
failed flush puts its counts back (within the same bound) for the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from social_mall import activity
from social_mall.activity import Activity
from social_mall_intelligence.models import Click, MemberView, ViewHour
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

FLUSH_SECONDS = 10
MAX_KEYS = 50_000
TOKEN = "rec."                         # a recommendation's tracking token: rec.<placement>
PLACEMENTS = frozenset({"for_me", "related", "paid"})   # recommendations.FOR_ME, RELATED, PAID


def token(placement: str) -> str:
    """The tracking token a recommendation's listing or link carries."""
    return TOKEN + placement


def placement_of(source: str) -> str:
    """The placement a view's source names ("" when it is no recommendation's token)."""
    if source.startswith(TOKEN) and source[len(TOKEN):] in PLACEMENTS:
        return source[len(TOKEN):]
    return ""


def hour_of(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


class ViewCounter:
    """The activity sink (`__call__`, on the chat path: memory only) and its flush."""

    def __init__(self, *, max_keys: int = MAX_KEYS) -> None:
        self.max_keys = max_keys
        self.dropped = 0
        self._hours: dict[tuple[int, int, datetime], int] = {}
        self._members: dict[tuple[int, int, int], tuple[int, datetime]] = {}
        self._clicks: list[tuple[int, int, int, str, str, datetime]] = []

    def __call__(self, a: Activity) -> None:
        if a.kind != activity.PRODUCT_VIEW or a.ref <= 0:
            return
        if len(self._hours) + len(self._members) + len(self._clicks) >= self.max_keys:
            self.dropped += 1
            return
        key = (a.tenant_id, a.ref, hour_of(a.at))
        self._hours[key] = self._hours.get(key, 0) + 1
        if a.member_id > 0:
            mk = (a.tenant_id, a.member_id, a.ref)
            n, _ = self._members.get(mk, (0, a.at))
            self._members[mk] = (n + 1, a.at)
        placement = placement_of(a.source)
        if placement:
            self._clicks.append((a.tenant_id, a.member_id, a.ref, placement, a.channel[:16], a.at))

    @property
    def pending(self) -> int:
        return len(self._hours) + len(self._members) + len(self._clicks)

    async def flush(self, uows: Callable[[], Any]) -> int:
        """Write what was counted since the last flush (one transaction); the keys written."""
        hours, members, clicks = self._hours, self._members, self._clicks
        if not (hours or members or clicks):
            return 0
        self._hours, self._members, self._clicks = {}, {}, []
        try:
            async with uows() as uow:
                await write(uow, hours, members, clicks)
                await uow.commit()
        except Exception:
            self._put_back(hours, members, clicks)
            raise
        return len(hours) + len(members) + len(clicks)

    def _put_back(self, hours: dict[tuple[int, int, datetime], int],
                  members: dict[tuple[int, int, int], tuple[int, datetime]],
                  clicks: list[tuple[int, int, int, str, str, datetime]]) -> None:
        for k, n in hours.items():
            if k in self._hours or self.pending < self.max_keys:
                self._hours[k] = self._hours.get(k, 0) + n
        for mk, (n, at) in members.items():
            if mk in self._members or self.pending < self.max_keys:
                m, last = self._members.get(mk, (0, at))
                self._members[mk] = (m + n, max(at, last))
        room = max(0, self.max_keys - self.pending)
        self._clicks[:0] = clicks[:room]


CHUNK = 1_000   # rows per statement (PostgreSQL takes at most 32,767 parameters)


async def write(uow: UnitOfWork, hours: dict[tuple[int, int, datetime], int],
                members: dict[tuple[int, int, int], tuple[int, datetime]],
                clicks: list[tuple[int, int, int, str, str, datetime]]) -> None:
    ins: Any = pg_insert if uow.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    rows = [{"tenant_id": t, "product_id": p, "hour": h, "views": n} for (t, p, h), n in sorted(hours.items())]
    for i in range(0, len(rows), CHUNK):
        stmt = ins(ViewHour).values(rows[i:i + CHUNK])
        await uow.session.execute(stmt.on_conflict_do_update(
            index_elements=["tenant_id", "product_id", "hour"], set_={"views": ViewHour.views + stmt.excluded.views}))
    rows = [{"tenant_id": t, "member_id": m, "product_id": p, "views": n, "last_at": at}
            for (t, m, p), (n, at) in sorted(members.items())]
    for i in range(0, len(rows), CHUNK):
        stmt = ins(MemberView).values(rows[i:i + CHUNK])
        await uow.session.execute(stmt.on_conflict_do_update(
            index_elements=["tenant_id", "member_id", "product_id"],
            set_={"views": MemberView.views + stmt.excluded.views, "last_at": stmt.excluded.last_at}))
    if clicks:
        uow.session.add_all([Click(tenant_id=t, member_id=m, product_id=p, placement=pl, channel=ch, at=at)
                             for t, m, p, pl, ch, at in clicks])
        await uow.session.flush()
