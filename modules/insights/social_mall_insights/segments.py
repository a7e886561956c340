"""Segments by rules, evaluated to the members they hold (those with an official-account
openid: the ones a push can reach). Core facts (loyalty level, bought a category or a
product, a city in a saved address) come from the core's `members.audience`; the
module's own (RFM segment, last purchase before/after, spent over, acquisition kind, first
channel) from its member facts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timezone
from typing import Any

from sqlalchemy import select

from social_mall.members.audience import audience
from social_mall_insights.models import MemberFacts, Segment
from social_mall_insights.reports import rfm_scores
from social_mall_insights.rules import ACQ_ZH, SEGMENT_ORDER, SHANGHAI, segment_name
from storage.uow import UnitOfWork

CHANNEL = "mp"


@dataclass(frozen=True)
class Rules:
    rfm: tuple[str, ...] = ()
    level: str = ""
    last_before: str = ""       # YYYY-MM-DD (Shanghai): last purchase before that day
    last_after: str = ""        # on or after that day
    spent_over_fen: int = 0     # net spent more than
    city: str = ""              # a saved address holds it
    acq: tuple[str, ...] = ()   # acquisition kinds
    channel: str = ""           # first channel
    category: int = 0           # bought a product of that category
    product: int = 0            # bought that product
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d["rfm"], d["acq"] = list(self.rfm), list(self.acq)
        return d

    @staticmethod
    def of(d: Mapping[str, Any]) -> Rules:
        def s(k: str) -> str:
            v = d.get(k, "")
            return v if isinstance(v, str) else ""

        def n(k: str) -> int:
            v = d.get(k, 0)
            return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0

        def many(k: str) -> tuple[str, ...]:
            v = d.get(k, [])
            return tuple(x for x in v if isinstance(x, str)) if isinstance(v, list) else ()

        return Rules(many("rfm"), s("level"), s("last_before"), s("last_after"), n("spent_over_fen"), s("city"),
                     many("acq"), s("channel"), n("category"), n("product"))

    def describe(self) -> list[str]:
        out = []
        if self.rfm:
            out.append("RFM：" + "、".join(self.rfm))
        if self.level:
            out.append(f"会员等级：{self.level}")
        if self.last_after:
            out.append(f"最近购买不早于 {self.last_after}")
        if self.last_before:
            out.append(f"最近购买早于 {self.last_before}")
        if self.spent_over_fen:
            out.append(f"累计消费超过 ¥{self.spent_over_fen // 100}.{self.spent_over_fen % 100:02d}")
        if self.city:
            out.append(f"收货地址含「{self.city}」")
        if self.acq:
            out.append("来源：" + "、".join(ACQ_ZH.get(a, a) for a in self.acq))
        if self.channel:
            out.append(f"首次渠道：{self.channel}")
        if self.category:
            out.append(f"买过分类 #{self.category}")
        if self.product:
            out.append(f"买过商品 #{self.product}")
        return out or ["全部粉丝"]


def _day_start(day: str) -> datetime | None:
    try:
        d = date.fromisoformat(day)
    except ValueError:
        return None
    return datetime.combine(d, time(0), SHANGHAI).astimezone(timezone.utc)


async def members(uow: UnitOfWork, tenant: int, rules: Rules, now: datetime) -> list[tuple[int, str]]:
    """(member id, openid) of the segment, by member id."""
    reach = await audience(uow, tenant, CHANNEL, level=rules.level or None, bought_category=rules.category or None,
                           bought_product=rules.product or None, address_contains=rules.city or None)
    if not (rules.rfm or rules.last_before or rules.last_after or rules.spent_over_fen or rules.acq
            or rules.channel):
        return reach
    keep: set[int] | None = None
    if rules.rfm:
        names = {segment_name(n) for n in rules.rfm}
        keep = {m for m, (_s, name, _f) in (await rfm_scores(uow, tenant, now)).items() if name in names}
    q = select(MemberFacts.member_id).where(MemberFacts.tenant_id == tenant)
    before, after = _day_start(rules.last_before), _day_start(rules.last_after)
    if before is not None:
        q = q.where(MemberFacts.last_order_at < before)
    if after is not None:
        q = q.where(MemberFacts.last_order_at >= after)
    if rules.spent_over_fen:
        q = q.where(MemberFacts.paid_fen - MemberFacts.refunded_fen > rules.spent_over_fen)
    if rules.acq:
        q = q.where(MemberFacts.acq_kind.in_(rules.acq))
    if rules.channel:
        q = q.where(MemberFacts.first_channel == rules.channel)
    facts = {int(m) for (m,) in await uow.session.execute(q)}
    keep = facts if keep is None else keep & facts
    return [(m, o) for m, o in reach if m in keep]


async def save(uow: UnitOfWork, tenant: int, name: str, rules: Rules, now: datetime) -> int:
    row = Segment(tenant_id=tenant, name=name, rules=rules.to_json(), created_at=now)
    uow.session.add(row)
    await uow.session.flush()
    return int(row.id)


async def get(uow: UnitOfWork, tenant: int, segment_id: int) -> Segment | None:
    return (await uow.session.execute(select(Segment).where(Segment.tenant_id == tenant, Segment.id == segment_id))
            ).scalar_one_or_none()


async def listed(uow: UnitOfWork, tenant: int) -> list[Segment]:
    return list((await uow.session.execute(select(Segment).where(Segment.tenant_id == tenant)
                                           .order_by(Segment.id.desc()).limit(100))).scalars())


RFM_NAMES = SEGMENT_ORDER
