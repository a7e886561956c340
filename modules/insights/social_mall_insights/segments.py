"""Segments by rules, evaluated to the members they hold (those with an official-account
openid: the ones a push can reach). Core facts (loyalty level, bought a category or a
product, a city in a saved address, a member tag) come from the core's `members.audience`;
groups other modules keep (a company's buyers) through the core's `MemberGroups` seam
(`reg.add_member_groups`: this module never knows whose groups they are); the module's own
(RFM segment, last purchase before/after, spent over, acquisition kind, first channel) from
its member facts.

A rule that names something gone — a member tag deleted since (`member_tag.deleted`
rewrites the rule: the tag's id out, its name kept as `tag_gone`, so a later tag that gets
the same id is never matched), a tag id that no longer exists, a group its module no longer
offers — is broken (`problems`): the segment holds nobody (its condition is never dropped,
which would widen it), the console says why, and it is refused for campaigns, coupons and
auto-tagging until rebuilt.

A segment may tag its members (`Segment.tag_id`): the job `insights.segment_tags` gives the
core tag to the segment's members and takes it from those who left (source
"segment:<id>"; tags given by hand stay)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timezone
from typing import Any

from sqlalchemy import select, update

from social_mall.members import tags as core_tags
from social_mall.members.audience import MemberGroups, audience
from social_mall_insights.models import MemberFacts, Segment
from social_mall_insights.reports import rfm_by_segment, rfm_members
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
    city: str = ""              # a saved address holds it, or the last location sent was there
    acq: tuple[str, ...] = ()   # acquisition kinds
    channel: str = ""           # first channel
    category: int = 0           # bought a product of that category
    product: int = 0            # bought that product
    tag: int = 0                # holds that member tag (the core's)
    group: str = ""             # "<kind>:<id>": a member of a module's group (MemberGroups)
    tag_gone: str = ""          # the name of the tag the rule named, deleted since: nobody matches
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
                     many("acq"), s("channel"), n("category"), n("product"), n("tag"), s("group"), s("tag_gone"))

    def group_ref(self) -> tuple[str, int] | None:
        kind, _, raw = self.group.partition(":")
        if not (kind and raw.isascii() and raw.isdigit() and 0 < len(raw) <= 18):
            return None
        return kind, int(raw)

    def describe(self, names: Mapping[str, str] | None = None) -> list[str]:
        """The rules in words; `names` may name a tag ("tag:3") or a group ("company:12").
        Given `names`, a tag or group it doesn't know is gone (deleted, or its module
        switched off): the rule says so, since such a segment holds nobody."""
        gone = names is not None
        names = names or {}
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
            out.append(f"城市：{self.city}（收货地址或发来的位置）")
        if self.acq:
            out.append("来源：" + "、".join(ACQ_ZH.get(a, a) for a in self.acq))
        if self.channel:
            out.append(f"首次渠道：{self.channel}")
        if self.category:
            out.append(f"买过分类 #{self.category}")
        if self.product:
            out.append(f"买过商品 #{self.product}")
        if self.tag:
            out.append("标签：" + names.get(f"tag:{self.tag}", f"#{self.tag}（已删除）"))
        if self.tag_gone:
            out.append(f"标签：{self.tag_gone}（已删除）")
        if self.group:
            group = names.get(self.group)
            out.append(group if group else
                       f"{self.group}（已不存在：无人满足，请修改或删除此人群）" if gone else self.group)
        return out or ["全部粉丝"]


def _day_start(day: str) -> datetime | None:
    try:
        d = date.fromisoformat(day)
    except ValueError:
        return None
    return datetime.combine(d, time(0), SHANGHAI).astimezone(timezone.utc)


async def problems(uow: UnitOfWork, tenant: int, rules: Rules,
                   groups: Mapping[str, MemberGroups] | None = None) -> list[str]:
    """Why the rules are broken, in words (empty: they are sound): a tag deleted since, a
    tag id that is not the tenant's, a group nobody offers (its module off, the group gone)."""
    out = []
    if rules.tag_gone:
        out.append(f"标签「{rules.tag_gone}」已删除")
    if rules.tag and await core_tags.tag_name(uow, tenant, rules.tag) is None:
        out.append(f"标签 #{rules.tag} 不存在（已删除）")
    if rules.group:
        ref = rules.group_ref()
        kind = (groups or {}).get(ref[0]) if ref is not None else None
        if kind is None or ref is None or ref[1] not in {i for i, _n in await kind.options(uow, tenant)}:
            out.append(f"所属「{rules.group}」已不存在")
    return out


Shared = dict[tuple[object, ...], Any]
"""Reads several segments' evaluation share within one page (`members(…, shared=)`): the
openids of a core filter, the member facts, every buyer's RFM segment."""


async def members(uow: UnitOfWork, tenant: int, rules: Rules, now: datetime,
                  groups: Mapping[str, MemberGroups] | None = None, *,
                  shared: Shared | None = None) -> list[tuple[int, str]]:
    """(member id, openid) of the segment, by member id. `groups`: the registry's member
    groups (a rule on a kind nobody registers, a module switched off, holds nobody); a rule
    on a deleted tag holds nobody. A city rule takes a saved address in that city or the city
    of the last location the member sent (a place name WeChat gave). `shared`: a dict kept
    across the segments of one page: segments with the same core filter (most: none) read
    the openids once, and the member facts and every buyer's RFM segment are read once and
    filtered per segment in Python (alone, a segment filters them in SQL: `_facts_sql`,
    `rfm_members`; the same members)."""
    if rules.tag_gone:
        return []
    memo: Shared = shared if shared is not None else {}
    key: tuple[object, ...] = ("reach", tenant, rules.level, rules.category, rules.product, rules.city, rules.tag)
    if key not in memo:
        found = await audience(uow, tenant, CHANNEL, level=rules.level or None,
                               bought_category=rules.category or None, bought_product=rules.product or None,
                               address_contains=rules.city or None, tag=rules.tag or None)
        if rules.city:
            located = {int(m) for (m,) in await uow.session.execute(select(MemberFacts.member_id).where(
                MemberFacts.tenant_id == tenant, MemberFacts.city == rules.city.strip().removesuffix("市")))}
            if located:
                by_address = {m for m, _ in found}
                more = [(m, o) for m, o in await audience(
                    uow, tenant, CHANNEL, level=rules.level or None, bought_category=rules.category or None,
                    bought_product=rules.product or None, tag=rules.tag or None)
                    if m in located and m not in by_address]
                found = sorted(found + more)
        memo[key] = found
    reach: list[tuple[int, str]] = memo[key]
    keep: set[int] | None = None
    if rules.group:
        ref = rules.group_ref()
        kind = (groups or {}).get(ref[0]) if ref is not None else None
        keep = await kind.members(uow, tenant, ref[1]) if kind is not None and ref is not None else set()
    names = tuple(sorted({segment_name(n) for n in rules.rfm}))
    before, after = _day_start(rules.last_before), _day_start(rules.last_after)
    on_facts = before is not None or after is not None or bool(rules.spent_over_fen or rules.acq or rules.channel)
    if shared is not None:     # a page of segments: one pass over the reach, facts and RFM read once
        return await _from_shared(uow, tenant, memo, key, keep, rules, names, before, after, on_facts, now)
    if names:                  # one segment: its RFM members chosen in SQL
        rfm = await rfm_members(uow, tenant, names)
        keep = rfm if keep is None else keep & rfm
    if on_facts:               # and the member facts filtered in SQL
        facts = await _facts_sql(uow, tenant, rules, before, after)
        keep = facts if keep is None else keep & facts
    return reach if keep is None else [(m, o) for m, o in reach if m in keep]


async def _from_shared(uow: UnitOfWork, tenant: int, memo: Shared, key: tuple[object, ...],
                       keep: set[int] | None, rules: Rules, names: tuple[str, ...], before: datetime | None,
                       after: datetime | None, on_facts: bool, now: datetime) -> list[tuple[int, str]]:
    """`members` for a page: the member facts and every buyer's RFM segment read once (memo),
    the members by RFM segment, acquisition kind and first channel kept as sets; a segment
    intersects its sets (in C) and checks its dates and amount only on what is left."""
    reach: list[tuple[int, str]] = memo[key]          # the openids of the segment's core filter
    ids_key: tuple[object, ...] = ("ids", *key)
    if ids_key not in memo:
        memo[ids_key] = {m for m, _o in reach}
    cand: set[int] = memo[ids_key] if keep is None else memo[ids_key] & keep
    if names:
        if ("rfm", tenant) not in memo:
            memo[("rfm", tenant)] = await rfm_by_segment(uow, tenant)
        rfm_sets: dict[str, set[int]] = memo[("rfm", tenant)]
        cand = cand & set().union(*(rfm_sets.get(n, set()) for n in names))
    if on_facts:
        if ("facts", tenant) not in memo:
            facts: dict[int, tuple[datetime | None, int]] = {}
            by_acq: dict[str, set[int]] = {}
            by_channel: dict[str, set[int]] = {}
            for m, last, net, acq, ch in await uow.session.execute(select(
                    MemberFacts.member_id, MemberFacts.last_order_at, MemberFacts.paid_fen - MemberFacts.refunded_fen,
                    MemberFacts.acq_kind, MemberFacts.first_channel).where(MemberFacts.tenant_id == tenant)):
                facts[int(m)] = (_aware(last), int(net))
                by_acq.setdefault(str(acq), set()).add(int(m))
                by_channel.setdefault(str(ch), set()).add(int(m))
            memo[("facts", tenant)] = (facts, by_acq, by_channel)
        facts_of, acq_sets, channel_sets = memo[("facts", tenant)]
        cand = cand & facts_of.keys()
        if rules.acq:
            cand = cand & set().union(*(acq_sets.get(a, set()) for a in rules.acq))
        if rules.channel:
            cand = cand & channel_sets.get(rules.channel, set())
        spent = rules.spent_over_fen
        if before is not None or after is not None or spent:
            cand = {m for m in cand for last, net in (facts_of[m],)
                    if (before is None or (last is not None and last < before))
                    and (after is None or (last is not None and last >= after)) and (not spent or net > spent)}
    return [(m, o) for m, o in reach if m in cand]


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=timezone.utc) if at is not None and at.tzinfo is None else at


async def _facts_sql(uow: UnitOfWork, tenant: int, rules: Rules, before: datetime | None,
                     after: datetime | None) -> set[int]:
    q = select(MemberFacts.member_id).where(MemberFacts.tenant_id == tenant)
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
    return {int(m) for (m,) in await uow.session.execute(q)}


PAGE_COUNTED = 20   # the segments 人群 counts (newest first)


async def page_counts(uow: UnitOfWork, tenant: int, segs: Sequence[Segment], now: datetime,
                      groups: Mapping[str, MemberGroups] | None = None
                      ) -> tuple[dict[int, list[str]], dict[int, int]]:
    """What 人群 shows per segment: its problems (a rule on something gone), and the live
    count of the first PAGE_COUNTED sound ones, evaluated together (`Shared`)."""
    broken = {seg.id: await problems(uow, tenant, Rules.of(seg.rules), groups) for seg in segs}
    shared: Shared = {}
    counts = {seg.id: len(await members(uow, tenant, Rules.of(seg.rules), now, groups, shared=shared))
              for seg in segs[:PAGE_COUNTED] if not broken[seg.id]}
    return broken, counts


async def save(uow: UnitOfWork, tenant: int, name: str, rules: Rules, now: datetime, *, tag_id: int | None = None) -> int:
    row = Segment(tenant_id=tenant, name=name, rules=rules.to_json(), created_at=now, tag_id=tag_id)
    uow.session.add(row)
    await uow.session.flush()
    return int(row.id)


async def get(uow: UnitOfWork, tenant: int, segment_id: int) -> Segment | None:
    return (await uow.session.execute(select(Segment).where(Segment.tenant_id == tenant, Segment.id == segment_id))
            ).scalar_one_or_none()


async def listed(uow: UnitOfWork, tenant: int) -> list[Segment]:
    return list((await uow.session.execute(select(Segment).where(Segment.tenant_id == tenant)
                                           .order_by(Segment.id.desc()).limit(100))).scalars())


async def names(uow: UnitOfWork, tenant: int, groups: Mapping[str, MemberGroups] | None = None
                ) -> dict[str, str]:
    """"tag:<id>" → the tag's name, "<kind>:<id>" → 「<label>：<group name>」: what rules show."""
    out = {f"tag:{t.id}": t.name for t in await core_tags.list_tags(uow, tenant)}
    for key, g in (groups or {}).items():
        out.update((f"{key}:{i}", f"{g.label}：{n}") for i, n in await g.options(uow, tenant))
    return out


async def tag_rules(uow: UnitOfWork, tenant: int) -> dict[int, str]:
    """Tag id → 「分群「name」」 for the tags segments keep up (the console's tag list)."""
    rows = await uow.session.execute(select(Segment.tag_id, Segment.name).where(
        Segment.tenant_id == tenant, Segment.tag_id.is_not(None)).order_by(Segment.id))
    out: dict[int, str] = {}
    for tag_id, name in rows:
        if tag_id is not None:
            out.setdefault(int(tag_id), f"分群「{name}」")
    return out


async def let_go_of_tag(uow: UnitOfWork, tenant: int, tag_id: int) -> int:
    """A deleted tag: the segments that kept it up stop (their hourly upkeep no longer
    touches it, even should a new tag get its id). How many let go."""
    done = await uow.session.execute(update(Segment).where(Segment.tenant_id == tenant, Segment.tag_id == tag_id)
                                     .values(tag_id=None))
    return int(getattr(done, "rowcount", 0) or 0)


async def forget_tag(uow: UnitOfWork, tenant: int, tag_id: int, name: str) -> int:
    """A deleted tag: the segments whose rules name it keep its name as `tag_gone` (they
    now hold nobody, and say so) instead of its id (a later tag may get the same id). How
    many segments changed."""
    changed = 0
    for seg in list((await uow.session.execute(select(Segment).where(Segment.tenant_id == tenant))).scalars()):
        rules = dict(seg.rules or {})
        if tag_id and rules.get("tag") == tag_id:
            rules["tag"], rules["tag_gone"] = 0, name or f"#{tag_id}"
            seg.rules = rules
            changed += 1
    if changed:
        await uow.session.flush()
    return changed


def rule_source(segment_id: int) -> str:
    return f"segment:{segment_id}"


async def sync_tags(uow: UnitOfWork, now: datetime, groups: Mapping[str, MemberGroups] | None = None,
                    *, tenant: int | None = None) -> int:
    """Every segment with a tag (of `tenant`, or of every tenant) tags exactly its members
    now; idempotent. Returns the tags given plus taken. A segment whose tag was deleted
    is left alone, and so is one whose rules are broken (`problems`): its tag stays as it
    was rather than being taken from everyone."""
    q = select(Segment).where(Segment.tag_id.is_not(None))
    if tenant is not None:
        q = q.where(Segment.tenant_id == tenant)
    moved = 0
    for seg in list((await uow.session.execute(q.order_by(Segment.id))).scalars()):
        tag_id = int(seg.tag_id or 0)
        if await core_tags.tag_name(uow, seg.tenant_id, tag_id) is None:
            continue
        rules = Rules.of(seg.rules)
        if await problems(uow, seg.tenant_id, rules, groups):
            continue
        people = await members(uow, seg.tenant_id, rules, now, groups)
        given, taken = await core_tags.sync_rule_tag(uow, seg.tenant_id, tag_id, rule_source(seg.id),
                                                     [m for m, _o in people], now=now)
        moved += given + taken
    return moved


RFM_NAMES = SEGMENT_ORDER
